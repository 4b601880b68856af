package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/harness"
	"ringbench/internal/testenv"
)

// sshHost is a stand-in client host: Debian's sshd in a network namespace
// of its own, joined to the test's namespace by two veth pairs, as a lab's
// two hosts are by a management link and a data link: ssh goes over the
// first, the load over the second, whose end here a DPDK server may take
// over whole.
type sshHost struct {
	dest       string // root@ADDR on the management link
	ssh        string // the --ssh command line
	serverAddr string // this namespace's end of the data link
	iface      string // that end's name
	ns         string // the client host's namespace
	sshd       *exec.Cmd
	// pathDir is on the PATH of the commands sshd runs.
	pathDir string
}

var (
	hostSeq    atomic.Int32
	sweepHosts sync.Once
)

// sweepStaleHosts removes the client hosts of test runs that died before
// their cleanups ran (a timeout's panic skips them): each namespace
// rbtest-hosts-PID-N whose PID is gone, with the sshd in it.
func sweepStaleHosts(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(f[0], "rbtest-hosts-")
		if !ok {
			continue
		}
		owner, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(owner)
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		for _, p := range pidsIn(t, f[0], "sshd") {
			syscall.Kill(p, syscall.SIGKILL)
		}
		exec.Command("ip", "netns", "del", f[0]).Run()
		t.Logf("removed %s, left by a test run that died", f[0])
	}
}

// newSSHHost starts a client host; everything it makes goes with t.
func newSSHHost(t *testing.T) *sshHost {
	t.Helper()
	testenv.SkipUnlessRoot(t, "a network namespace with an sshd")
	const sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Skipf("skipped: no %s (Debian's openssh-server; make test installs it)", sshd)
	}
	for _, p := range []string{"ssh", "ssh-keygen", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipped: no %s", p)
		}
	}
	if _, _, err := harness.CPUs(1); err != nil {
		t.Skipf("skipped: %v", err)
	}
	sweepHosts.Do(func() { sweepStaleHosts(t) })
	n := int(hostSeq.Add(1)) % 60
	pid := os.Getpid()
	h := &sshHost{ns: fmt.Sprintf("rbtest-hosts-%d-%d", pid, n)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", h.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
	// link joins this namespace and the host's by a veth pair with a /30
	// of its own, 10.NET.(pid).(4n): it returns this end's name and both
	// addresses. Deleting the namespace deletes the pair.
	link := func(kind byte, net int) (here, local, remote string) {
		here = fmt.Sprintf("rbt%d%c%c", pid%100000, 'a'+n%26, kind)
		prefix := fmt.Sprintf("10.%d.%d", net, pid%250)
		local, remote = fmt.Sprintf("%s.%d", prefix, 4*n+1), fmt.Sprintf("%s.%d", prefix, 4*n+2)
		run("ip", "link", "add", here, "type", "veth", "peer", "name", here+"p", "netns", h.ns)
		t.Cleanup(func() { exec.Command("ip", "link", "del", here).Run() })
		run("ip", "addr", "add", local+"/30", "dev", here)
		run("ip", "link", "set", here, "up")
		run("ip", "-n", h.ns, "addr", "add", remote+"/30", "dev", here+"p")
		run("ip", "-n", h.ns, "link", "set", here+"p", "up")
		return here, local, remote
	}
	run("ip", "-n", h.ns, "link", "set", "lo", "up")
	_, _, clientAddr := link('m', 207)
	h.iface, h.serverAddr, _ = link('d', 208)
	h.dest = "root@" + clientAddr

	dir := t.TempDir()
	h.pathDir = filepath.Join(dir, "bin")
	if err := os.Mkdir(h.pathDir, 0o755); err != nil {
		t.Fatal(err)
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_key"))
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "id"))
	pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`ListenAddress %s
HostKey %s
PermitRootLogin prohibit-password
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile %s
SetEnv PATH=%s:/usr/local/bin:/usr/bin:/bin
`, clientAddr, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"), h.pathDir)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd's privilege-separation folder, which its service would make.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	h.sshd = exec.Command("ip", "netns", "exec", h.ns, sshd, "-D", "-e", "-f", cfgPath)
	sshdLog := &lockedWriter{}
	h.sshd.Stderr = sshdLog
	if err := h.sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.sshd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { h.sshd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			h.sshd.Process.Kill()
			<-done
		}
		// Sessions still open die with their namespace's veth; their
		// processes are killed here.
		for _, pid := range pidsIn(t, h.ns, "sshd") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	h.ssh = fmt.Sprintf("ssh -F /dev/null -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o ConnectTimeout=5",
		filepath.Join(dir, "id"), filepath.Join(dir, "known"))
	words, _ := harness.SplitCommand(h.ssh)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(words[0], append(words[1:], h.dest, "echo up")...).CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd in %s not reachable: %v: %s (sshd: %s)", h.ns, err, out, sshdLog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h
}

// lockedWriter is a strings.Builder that sshd's output goroutine and the
// test may use at once.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// args are run's flags for this host; remoteDir is where ringbench copies
// itself.
func (h *sshHost) args(remoteDir string) []string {
	return []string{"--topology", "hosts", "--client-host", h.dest, "--server-addr", h.serverAddr,
		"--ssh", h.ssh, "--remote-dir", remoteDir, "--client-cpus", "0"}
}

// pidsIn lists the processes in network namespace ns whose command line
// contains word.
func pidsIn(t *testing.T, ns, word string) []int {
	t.Helper()
	var want unix.Stat_t
	if err := unix.Stat("/run/netns/"+ns, &want); err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmd), word) {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	return pids
}

// runHosts runs `ringbench run` with args and returns its records and its
// stderr; the run's error is returned, not fatal.
func runHosts(ctx context.Context, t *testing.T, args ...string) ([]map[string]any, string, error) {
	t.Helper()
	dir := t.TempDir()
	args = append([]string{"run", "--out", dir, "--warmup", "300ms", "--duration", "1s"}, args...)
	var out, errOut strings.Builder
	err := ringbench(ctx, args, strings.NewReader(""), &out, &errOut)
	recs, lerr := loadRecords(t, dir)
	if lerr != nil {
		return nil, errOut.String(), errors.Join(err, lerr)
	}
	return recs, errOut.String(), err
}

// checkHostsRecord checks a hosts record: ok, load carried and verified,
// the client's busy read on the client host.
func checkHostsRecord(t *testing.T, rec map[string]any, h *sshHost) {
	t.Helper()
	if rec["status"] != "ok" {
		t.Fatalf("status %v: %v", rec["status"], rec["error"])
	}
	if rec["topology"] != "hosts" || rec["client_host"] != h.dest {
		t.Errorf("topology %v, client_host %v", rec["topology"], rec["client_host"])
	}
	if ops, _ := rec["ops"].(float64); ops <= 0 {
		t.Errorf("ops = %v", rec["ops"])
	}
	if b, _ := rec["bytes"].(float64); b <= 0 {
		t.Errorf("bytes = %v: nothing verified", rec["bytes"])
	}
	if e, _ := rec["errors"].(float64); e != 0 {
		t.Errorf("errors = %v (mismatch %v)", e, rec["err_mismatch"])
	}
	busy, _ := rec["client_busy"].(float64)
	src, _ := rec["client_busy_source"].(string)
	if busy <= 0 || busy > 1.01 || !strings.Contains(src, "on the client host") {
		t.Errorf("client_busy %v from %q: want a share read on the client host", rec["client_busy"], src)
	}
	if cpus, _ := rec["client_cpus"].([]any); len(cpus) != 1 || cpus[0] != 0.0 {
		t.Errorf("client_cpus %v, want the --client-cpus given, [0]", rec["client_cpus"])
	}
	if lag, ok := rec["edge_lag_us"].(float64); !ok || lag <= 0 {
		t.Errorf("edge_lag_us = %v: the edges' round trip was not measured", rec["edge_lag_us"])
	}
	if c, _ := rec["cpu_ns_per_op"].(float64); c <= 0 {
		t.Errorf("cpu_ns_per_op = %v: the server's CPU was not measured here", rec["cpu_ns_per_op"])
	}
}

// The generator runs on the client host over ssh, for each path and both
// workloads; the first run copies ringbench there, the others reuse the
// copy.
func TestHostsTopology(t *testing.T) {
	h := newSSHHost(t)
	remoteDir := filepath.Join(t.TempDir(), "remote")
	name, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		backend string
		proto   string
		more    []string
	}
	cases := []tc{
		{"epoll", "tcp", nil},
		{"uring", "tcp", nil},
	}
	dpdkReason := ""
	if b, err := backends.Lookup("dpdk"); err != nil {
		dpdkReason = err.Error()
	} else if err := b.Probe(); err != nil {
		dpdkReason = err.Error()
	} else {
		// AF_XDP on this namespace's veth end takes every frame from the
		// kernel (ARP too: the reflector answers it); the echoes need full
		// UDP checksums, as the veth peer left them partial.
		cases = append(cases, tc{"dpdk", "udp", []string{"--opt", "vdev=net_af_xdp0,iface=" + h.iface + ",start_queue=0,queue_count=1",
			"--opt", "udp_checksum=full"}})
	}
	first := true
	for _, c := range cases {
		for _, wl := range []string{"echo", "stream"} {
			t.Run(c.backend+"/"+wl, func(t *testing.T) {
				args := append(h.args(remoteDir), "--backend", c.backend, "--workload", wl, "--proto", c.proto,
					"--conns", "4", "--depth", "2", "--size", "200", "--cpu-profile=false")
				if wl == "stream" {
					// Down: the server sources and the client verifies
					// every byte it receives.
					args = append(args, "--direction", "down")
				}
				if !first {
					args = append(args, "--count-syscalls=false")
				}
				args = append(args, c.more...)
				recs, stderr, err := runHosts(context.Background(), t, args...)
				if len(recs) == 1 && recs[0]["status"] == "skipped" {
					t.Skipf("skipped: %v", recs[0]["error"])
				}
				if err != nil {
					t.Fatalf("run: %v\nstderr: %s", err, stderr)
				}
				checkHostsRecord(t, recs[0], h)
				if first {
					if !strings.Contains(stderr, "hosts: copied ringbench") {
						t.Errorf("first run did not copy ringbench to the client host; stderr: %s", stderr)
					}
					if _, ok := recs[0]["syscalls_per_op"].(float64); !ok {
						t.Errorf("syscalls not counted in the second window: %v", recs[0]["syscalls_note"])
					}
				} else if !strings.Contains(stderr, "copied by an earlier run") {
					t.Errorf("a later run did not reuse the copy; stderr: %s", stderr)
				}
				first = false
			})
		}
	}
	if dpdkReason != "" {
		t.Run("dpdk", func(t *testing.T) { t.Skipf("skipped: %s", dpdkReason) })
	} else {
		// The harness never picks a port on this topology by itself.
		t.Run("dpdk/no-port", func(t *testing.T) {
			recs, _, err := runHosts(context.Background(), t, append(h.args(remoteDir), "--backend", "dpdk", "--proto", "udp")...)
			msg, _ := recs[0]["error"].(string)
			if err == nil || recs[0]["status"] != "failed" || !strings.Contains(msg, "--opt pci=") || !strings.Contains(msg, h.iface) {
				t.Errorf("dpdk without its port: %v, record %v: %q", err, recs[0]["status"], msg)
			}
		})
	}
	ents, err := os.ReadDir(remoteDir)
	if err != nil || len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "ringbench-") {
		t.Errorf("remote folder %s: %v %v: want only the copy of %s", remoteDir, ents, err, name)
	}
}

// A ringbench of the same build on the client host's PATH is used as it
// is: nothing is copied.
func TestHostsUsesClientPath(t *testing.T) {
	h := newSSHHost(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(h.pathDir, "ringbench")); err != nil {
		t.Fatal(err)
	}
	remoteDir := filepath.Join(t.TempDir(), "never")
	recs, stderr, err := runHosts(context.Background(), t, append(h.args(remoteDir), "--backend", "epoll",
		"--conns", "2", "--cpu-profile=false", "--count-syscalls=false")...)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr)
	}
	checkHostsRecord(t, recs[0], h)
	if !strings.Contains(stderr, "using the ringbench on "+h.dest+"'s PATH") {
		t.Errorf("the client host's ringbench was not used; stderr: %s", stderr)
	}
	if _, err := os.Stat(remoteDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remote folder %s: %v: want nothing copied", remoteDir, err)
	}
}

// A session lost mid-trial (its sshd killed) fails that trial with the
// reason, the remote generator is gone, and the next trial runs.
func TestHostsLostSession(t *testing.T) {
	h := newSSHHost(t)
	remoteDir := filepath.Join(t.TempDir(), "remote")
	killed := make(chan int, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// The first generator seen: kill its session's sshd once it has
		// run a moment.
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			pids := pidsIn(t, h.ns, "remotegen")
			if len(pids) == 0 {
				continue
			}
			time.Sleep(800 * time.Millisecond)
			ppid := parentOf(pids[0])
			syscall.Kill(ppid, syscall.SIGKILL)
			killed <- pids[0]
			return
		}
	}()
	recs, stderr, err := runHosts(context.Background(), t, append(h.args(remoteDir), "--backend", "epoll", "--conns", "2",
		"--repeats", "2", "--duration", "2s", "--cpu-profile=false", "--count-syscalls=false")...)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 trials failed") {
		t.Errorf("run: %v, want a failed trial", err)
	}
	var gen int
	select {
	case gen = <-killed:
	default:
		t.Fatalf("no remote generator seen to kill; stderr: %s", stderr)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2; stderr: %s", len(recs), stderr)
	}
	msg, _ := recs[0]["error"].(string)
	if recs[0]["status"] != "failed" || !strings.Contains(msg, "ssh session to "+h.dest+" lost") {
		t.Errorf("first trial: %v: %q, want failed with the lost session", recs[0]["status"], msg)
	}
	t.Logf("lost session: %s", msg)
	if processAlive(gen) {
		t.Errorf("remote generator %d still runs after its session was lost", gen)
	}
	checkHostsRecord(t, recs[1], h)
	waitNone(t, h.ns, "remotegen")
}

// Cancelling ringbench (Ctrl-C, SIGTERM) mid-trial ends the remote
// generator with it.
func TestHostsInterrupt(t *testing.T) {
	h := newSSHHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen atomic.Bool
	go func() {
		for ctx.Err() == nil {
			if len(pidsIn(t, h.ns, "remotegen")) > 0 {
				seen.Store(true)
				time.Sleep(500 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	recs, stderr, err := runHosts(ctx, t, append(h.args(filepath.Join(t.TempDir(), "r")), "--backend", "epoll", "--conns", "2",
		"--duration", "5s", "--cpu-profile=false", "--count-syscalls=false")...)
	if !seen.Load() {
		t.Fatalf("no remote generator seen; run: %v; stderr: %s", err, stderr)
	}
	if err == nil || len(recs) != 0 {
		t.Errorf("run: %v with %d records, want an error and no record of the interrupted trial; stderr: %s", err, len(recs), stderr)
	}
	waitNone(t, h.ns, "remotegen")
}

// waitNone fails t if a process of ns with word in its command line is
// still there after a moment.
func waitNone(t *testing.T, ns, word string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := pidsIn(t, ns, word)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s processes left in %s: %v", word, ns, pids)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func processAlive(pid int) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// Bad or missing hosts flags are one-line errors before anything runs.
func TestHostsFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topology", "hosts"}, "--client-host"},
		{[]string{"--topology", "hosts", "--client-host", "gen1"}, "--server-addr"},
		{[]string{"--topology", "hosts", "--client-host", "gen1", "--server-addr", "10.0.0.x"}, "not an IP address"},
		{[]string{"--topology", "hosts", "--client-host", "-oProxyCommand=x", "--server-addr", "10.0.0.1"}, "cannot start with '-'"},
		{[]string{"--topology", "hosts", "--client-host", "gen1", "--server-addr", "10.0.0.1", "--client-cpus", "3-1"}, "bad range"},
		{[]string{"--topology", "hosts", "--client-host", "gen1", "--server-addr", "10.0.0.1", "--ssh", "ssh -o 'x"}, "unclosed '"},
		{[]string{"--topology", "loopback", "--client-host", "gen1"}, "apply to --topology hosts only"},
	} {
		var out, errOut strings.Builder
		err := ringbench(context.Background(), append([]string{"run", "--out", t.TempDir()}, tc.args...), strings.NewReader(""), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("run %v: %v, want one line with %q", tc.args, err, tc.want)
		}
	}
	// bench and ndr check the same flags; bench takes a profile's hosts
	// section under them.
	for _, args := range [][]string{
		{"ndr", "--topology", "hosts", "--server-addr", "10.0.0.1"},
		{"bench", "--profile", "quick", "--topology", "hosts", "--server-addr", "10.0.0.1", "-n"},
	} {
		var out, errOut strings.Builder
		err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "--client-host") {
			t.Errorf("%v: %v, want the missing --client-host", args, err)
		}
	}
	var out, errOut strings.Builder
	err := ringbench(context.Background(), []string{"bench", "--profile", "quick", "--topology", "hosts", "--client-host", "gen1",
		"--server-addr", "192.0.2.1", "-n"}, strings.NewReader(""), &out, &errOut)
	if err != nil || !strings.Contains(out.String(), " hosts ") {
		t.Errorf("bench -n on hosts: %v; %s", err, out.String())
	}
}
