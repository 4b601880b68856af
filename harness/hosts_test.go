package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"ringbench/backends"
	"ringbench/meters"
	"ringbench/workloads"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		err  string
	}{
		{"ssh", []string{"ssh"}, ""},
		{"  ssh  -p 2222\t-i /k  ", []string{"ssh", "-p", "2222", "-i", "/k"}, ""},
		{`ssh -o "ProxyCommand=ssh -W %h:%p jump"`, []string{"ssh", "-o", "ProxyCommand=ssh -W %h:%p jump"}, ""},
		{`ssh -o 'User=a b' x`, []string{"ssh", "-o", "User=a b", "x"}, ""},
		{`a"b c"'d e'f`, []string{"ab cd ef"}, ""},
		{`say "a \"q\" \\ \n"`, []string{"say", `a "q" \ \n`}, ""},
		{`a\ b \'c`, []string{"a b", "'c"}, ""},
		{`x ''`, []string{"x", ""}, ""},
		{`ssh $HOME ~/k`, []string{"ssh", "$HOME", "~/k"}, ""},
		{`ssh 'x`, nil, "unclosed '"},
		{`ssh "x`, nil, `unclosed "`},
		{`ssh x\`, nil, `trailing \`},
		{"   ", nil, "empty command"},
	} {
		got, err := SplitCommand(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitCommand(%q) = %q, %v; want error %q", tc.line, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []int
		err  string
	}{
		{"0", []int{0}, ""},
		{"0-3", []int{0, 1, 2, 3}, ""},
		{"4,0-1, 2", []int{0, 1, 2, 4}, ""},
		{"1,1,0-1", []int{0, 1}, ""},
		{"", nil, "empty item"},
		{"0,,1", nil, "empty item"},
		{"a", nil, "not a CPU number"},
		{"-1", nil, "not a CPU number"},
		{"3-1", nil, "bad range"},
		{"1-x", nil, "bad range"},
		{"0-100000", nil, "too long"},
	} {
		got, err := ParseCPUList(tc.list)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCPUList(%q) = %v, %v; want error %q", tc.list, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tc.list, got, err, tc.want)
		}
	}
}

func TestHostsConfigCheck(t *testing.T) {
	ok := HostsConfig{ClientHost: "bench@gen1", ServerAddr: "192.0.2.1", ClientCPUs: "0-3", SSH: "ssh -J jump"}
	s, err := ok.settings()
	if err != nil {
		t.Fatalf("settings(%+v): %v", ok, err)
	}
	if s.dest != "bench@gen1" || s.addr.String() != "192.0.2.1" || !reflect.DeepEqual(s.clientCPUs, []int{0, 1, 2, 3}) ||
		!reflect.DeepEqual(s.ssh, []string{"ssh", "-J", "jump"}) || s.remoteDir != DefaultRemoteDir {
		t.Errorf("settings = %+v", s)
	}
	if s, _ := (HostsConfig{ClientHost: "g", ServerAddr: "192.0.2.1"}).settings(); !reflect.DeepEqual(s.ssh, []string{"ssh"}) {
		t.Errorf("default ssh = %q, want ssh", s.ssh)
	}
	for _, tc := range []struct {
		mod  func(*HostsConfig)
		want string
	}{
		{func(c *HostsConfig) { c.ClientHost = "" }, "needs --client-host"},
		{func(c *HostsConfig) { c.ClientHost = "-oProxyCommand=sh" }, "cannot start with '-'"},
		{func(c *HostsConfig) { c.ClientHost = "a b" }, "no spaces"},
		{func(c *HostsConfig) { c.ServerAddr = "" }, "needs --server-addr"},
		{func(c *HostsConfig) { c.ServerAddr = "gen1" }, "not an IP address"},
		{func(c *HostsConfig) { c.ServerAddr = "127.0.0.1" }, "cannot reach it"},
		{func(c *HostsConfig) { c.ServerAddr = "0.0.0.0" }, "cannot reach it"},
		{func(c *HostsConfig) { c.ClientCPUs = "x" }, "--client-cpus"},
		{func(c *HostsConfig) { c.SSH = `ssh "` }, "--ssh"},
		{func(c *HostsConfig) { c.RemoteDir = "tmp" }, "absolute path"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Check(%+v) = %v, want one line with %q", c, err, tc.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/tmp/x": "'/tmp/x'", "a'b": `'a'\''b'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestProfileHosts(t *testing.T) {
	y := "name: x\ntopology: hosts\nhosts: {client_host: gen1, server_addr: 192.0.2.1, client_cpus: 0-1}\nbackends: [epoll]\nexperiments: [{workload: echo}]\n"
	p, err := ParseProfile([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if p.Hosts == nil || p.Hosts.ClientHost != "gen1" || p.Hosts.ClientCPUs != "0-1" {
		t.Errorf("hosts = %+v", p.Hosts)
	}
	trials, err := p.Trials("veth")
	if err != nil || len(trials) != 1 || trials[0].Topology != Hosts {
		t.Errorf("trials = %v, %v", trials, err)
	}
	bad := strings.Replace(y, "client_host: gen1, ", "", 1)
	if _, err := ParseProfile([]byte(bad)); err == nil || !strings.Contains(err.Error(), "needs --client-host") {
		t.Errorf("profile without client_host: %v", err)
	}
}

func TestWireReportRoundTrip(t *testing.T) {
	rep := &workloads.Report{Window: time.Second, Ops: 3, Bytes: 192, Sent: 4, ClientCPU: time.Millisecond,
		Errors: workloads.Errors{Lost: 1}, Latency: newTestHistogram(t, 10_000, 20_000, 1_000_000), Unsent: 2}
	b, err := json.Marshal(toWire(rep))
	if err != nil {
		t.Fatal(err)
	}
	var w wireReport
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	got := w.report()
	if got.Ops != 3 || got.Bytes != 192 || got.Sent != 4 || got.Errors.Lost != 1 || got.Unsent != 2 || got.Window != time.Second {
		t.Errorf("report after the wire: %+v", got)
	}
	if got.Latency == nil || got.Latency.TotalCount() != 3 || got.Latency.Max() != rep.Latency.Max() ||
		got.Latency.ValueAtQuantile(50) != rep.Latency.ValueAtQuantile(50) {
		t.Errorf("histogram after the wire: %v", got.Latency)
	}
}

// startEcho starts an epoll TCP echo server on 127.0.0.1.
func startEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	b, err := backends.Lookup("epoll")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := b.New(backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.Port()))
}

func testSpec() workloads.Spec {
	return workloads.Spec{Workload: workloads.Echo, Proto: backends.TCP, Conns: 2, Depth: 1, Size: 64,
		Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond}
}

// The client host's side of the protocol, over pipes: hello, both edges
// (each acked), then a report with the load and the cores' busy.
func TestRemoteGenerateProtocol(t *testing.T) {
	addr := startEcho(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RemoteGenerate(inR, outW)
		outW.Close()
	}()
	req, _ := json.Marshal(remoteRequest{Spec: testSpec(), Target: addr.String(), Budget: time.Minute})
	inW.Write(append(req, '\n'))
	var events []string
	var last remoteEvent
	sc := bufio.NewScanner(outR)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev remoteEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		events = append(events, ev.Event)
		if ev.Event == evWindowStart || ev.Event == evWindowEnd {
			time.Sleep(time.Millisecond) // the round trip includes this
			io.WriteString(inW, "ack\n")
		}
		last = ev
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("RemoteGenerate: %v", err)
	}
	if want := []string{evHello, evWindowStart, evWindowEnd, evReport}; !reflect.DeepEqual(events, want) {
		t.Fatalf("events %v, want %v (last: %+v)", events, want, last)
	}
	rep := last.Report.report()
	if rep.Ops == 0 || rep.Errors.Total() != 0 || rep.Latency.TotalCount() == 0 {
		t.Errorf("report: ops %d, errors %+v, latencies %d", rep.Ops, rep.Errors, rep.Latency.TotalCount())
	}
	if last.Busy == nil || *last.Busy <= 0 || *last.Busy > 1.01 || !strings.Contains(last.BusySource, "on the client host") {
		t.Errorf("busy %v (%q, %q): want a share of the generator's CPU", last.Busy, last.BusySource, last.BusyError)
	}
	for i, rtt := range last.EdgeRTT {
		if rtt < time.Millisecond || rtt > 5*time.Second {
			t.Errorf("edge %d round trip %v: want at least the 1 ms the acks waited", i, rtt)
		}
	}
}

// The generator stops when its stdin ends: the session is gone.
func TestRemoteGenerateStopsOnEOF(t *testing.T) {
	addr := startEcho(t)
	spec := testSpec()
	spec.Warmup, spec.Duration = 10*time.Second, 10*time.Second
	req, _ := json.Marshal(remoteRequest{Spec: spec, Target: addr.String(), Budget: time.Minute})
	inR, inW := io.Pipe()
	var out bytes.Buffer
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- RemoteGenerate(inR, &out) }()
	inW.Write(append(req, '\n'))
	time.Sleep(300 * time.Millisecond)
	inW.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), errSessionGone.Error()) {
			t.Errorf("RemoteGenerate: %v, want it stopped by the end of stdin", err)
		}
	case <-time.After(remoteStopGrace + 2*time.Second):
		t.Fatal("RemoteGenerate still runs after its stdin ended")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("stopped after %v: the end of stdin did not cut the 10 s warm-up short", d)
	}
}

// fakeSSH stands in for ssh: it drops the options up to -T and the
// destination, and runs the command here, as sshd would there.
func fakeSSH(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-ssh")
	script := "#!/bin/sh\nwhile [ \"$1\" != -T ]; do shift; done\nshift 2\nexec sh -c \"$1\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The harness's side without ssh: the copy, its reuse, the edges' hooks,
// and what the client host measured.
func TestHostsGenerate(t *testing.T) {
	addr := startEcho(t)
	remoteDir := filepath.Join(t.TempDir(), "remote")
	var log bytes.Buffer
	mk := func() *hosts {
		return &hosts{s: hostsSettings{dest: "fake", ssh: []string{fakeSSH(t)}, remoteDir: remoteDir, clientCPUs: []int{0}}, log: &log}
	}
	for i, want := range []string{"hosts: copied ringbench", "copied by an earlier run"} {
		h := mk()
		var starts, ends int
		rep, err := h.generate(context.Background(), testSpec(), workloads.Target{Addr: addr},
			workloads.Hooks{WindowStart: func() { starts++ }, WindowEnd: func() { ends++ }})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !strings.Contains(log.String(), want) {
			t.Errorf("run %d: log %q, want %q", i, log.String(), want)
		}
		if starts != 1 || ends != 1 {
			t.Errorf("run %d: hooks ran %d and %d times, want once each", i, starts, ends)
		}
		if rep.Ops == 0 || rep.Latency == nil || rep.Latency.TotalCount() == 0 {
			t.Errorf("run %d: report %+v", i, rep)
		}
		run := h.runOf(rep)
		if run == nil || run.busy == nil || run.edgeLag[0] <= 0 || run.edgeLag[1] <= 0 {
			t.Fatalf("run %d: what the client host measured: %+v", i, run)
		}
		if !reflect.DeepEqual(h.cpus, []int{0}) {
			t.Errorf("run %d: generator CPUs %v, want [0]", i, h.cpus)
		}
		if h.runOf(&workloads.Report{}) != nil {
			t.Error("runOf matched another report")
		}
	}
}

// A generator that dies mid-run fails the run with the lost session.
func TestHostsGenerateLost(t *testing.T) {
	addr := startEcho(t)
	h := &hosts{s: hostsSettings{dest: "fake", ssh: []string{fakeSSH(t)}, remoteDir: t.TempDir()}, log: io.Discard}
	spec := testSpec()
	spec.Duration = 5 * time.Second
	killed := 0
	_, err := h.generate(context.Background(), spec, workloads.Target{Addr: addr}, workloads.Hooks{WindowStart: func() {
		// fake ssh execs the generator: the session's process is it.
		for _, pid := range childrenWith(t, "remotegen") {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}})
	if killed != 1 {
		t.Fatalf("killed %d generators, want 1", killed)
	}
	if err == nil || !strings.Contains(err.Error(), "ssh session to fake lost") || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("generate: %v, want the lost session and how ssh ended", err)
	}
	t.Log(err)
}

// childrenWith lists this process's descendants whose command line holds
// word.
func childrenWith(t *testing.T, word string) []int {
	var pids []int
	tree, err := meters.ProcessTree(os.Getpid())
	if err != nil {
		t.Error(err) // called from a hook: not the test's goroutine
	}
	for _, pid := range tree {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && pid != os.Getpid() && strings.Contains(string(cmd), word) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func newTestHistogram(t *testing.T, values ...int64) *hdrhistogram.Histogram {
	t.Helper()
	h := hdrhistogram.New(1, int64(time.Minute), 3)
	for _, v := range values {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	return h
}
