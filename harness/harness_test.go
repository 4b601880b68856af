package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"ringbench/backends"
	"ringbench/internal/testenv"
	"ringbench/meters"
	"ringbench/results"
	"ringbench/workloads"
)

func TestMain(m *testing.M) {
	// The hosts tests run this binary as the client host's ringbench.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "remotegen":
			if err := RemoteGenerate(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case "version":
			v, err := Version()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Println(v)
			os.Exit(0)
		}
	}
	testenv.Main(m)
}

func TestCPUs(t *testing.T) {
	n := runtime.NumCPU()
	if n < 2 {
		t.Skip("skipped: needs 2 CPUs")
	}
	srv, cli, err := CPUs(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv) != 1 || srv[0] != n-1 || len(cli) != n-1 {
		t.Errorf("CPUs(1) = %v, %v", srv, cli)
	}
	if _, _, err := CPUs(n + 1); !errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("CPUs(%d) on %d CPUs: %v, want not supported", n+1, n, err)
	}
	if _, _, err := CPUs(0); err == nil {
		t.Error("CPUs(0): want an error")
	}
}

// The split gives the generator CPUs of its own while any are left; on a
// machine too small, it shares every server CPU and says so.
func TestSplitCPUs(t *testing.T) {
	for _, tc := range []struct {
		cores          int
		cpus           []int
		server, client []int
		shared, unsupp bool
	}{
		{cores: 1, cpus: []int{0, 1}, server: []int{1}, client: []int{0}},
		{cores: 2, cpus: []int{0, 1, 2, 3}, server: []int{2, 3}, client: []int{0, 1}},
		{cores: 3, cpus: []int{0, 1, 2, 3}, server: []int{1, 2, 3}, client: []int{0}},
		{cores: 2, cpus: []int{0, 1}, server: []int{0, 1}, client: []int{0, 1}, shared: true},
		{cores: 1, cpus: []int{0}, server: []int{0}, client: []int{0}, shared: true},
		{cores: 4, cpus: []int{0, 1}, unsupp: true},
		// taskset -c 2,5,7: the CPUs the mask allows, not 0..2.
		{cores: 1, cpus: []int{2, 5, 7}, server: []int{7}, client: []int{2, 5}},
		{cores: 1, cpus: []int{3}, server: []int{3}, client: []int{3}, shared: true},
	} {
		t.Run(fmt.Sprintf("%d of %v", tc.cores, tc.cpus), func(t *testing.T) {
			srv, cli, shared, err := splitCPUs(tc.cores, tc.cpus)
			if tc.unsupp {
				if !errors.Is(err, backends.ErrNotSupported) || !strings.Contains(err.Error(), fmt.Sprintf("has %d CPUs", len(tc.cpus))) {
					t.Errorf("err %v, want not supported naming the machine's CPUs", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(srv, tc.server) || !slices.Equal(cli, tc.client) || shared != tc.shared {
				t.Errorf("split = %v, %v, shared %v; want %v, %v, shared %v", srv, cli, shared, tc.server, tc.client, tc.shared)
			}
			// The record's view of the same split agrees.
			if got := len((results.Config{ServerCPUs: srv, ClientCPUs: cli}).SharedCPUs()) > 0; got != shared {
				t.Errorf("Config.SharedCPUs says shared %v, split says %v", got, shared)
			}
		})
	}
	if _, _, _, err := splitCPUs(0, []int{0, 1}); err == nil || errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("0 cores: %v, want a plain error (bad input, not a missing feature)", err)
	}
}

// A server's refusal for want of a feature crosses the process boundary
// as one: the harness then skips the trial instead of failing it.
func TestServeRefusalIsNotSupported(t *testing.T) {
	var out bytes.Buffer
	err := Serve("epoll", backends.Config{Proto: backends.TCP, Service: "nosuch"}, strings.NewReader(""), &out)
	if !errors.Is(err, backends.ErrNotSupported) {
		t.Fatalf("Serve: %v, want a not-supported refusal", err)
	}
	_, herr := readHello(out.Bytes())
	if !errors.Is(herr, backends.ErrNotSupported) || herr.Error() != err.Error() {
		t.Errorf("readHello(%q) = %v, want the refusal, still not supported", out.String(), herr)
	}
	_, herr = readHello([]byte(`{"error":"bind: address in use"}` + "\n"))
	if herr == nil || errors.Is(herr, backends.ErrNotSupported) {
		t.Errorf("a plain error read as %v", herr)
	}
	if port, err := readHello([]byte(`{"port":4242}` + "\n")); port != 4242 || err != nil {
		t.Errorf("readHello(port) = %d, %v", port, err)
	}
}

func TestTailBufferKeepsHeadAndTail(t *testing.T) {
	b := &tailBuffer{max: 20}
	for _, s := range []string{"panic: boom\n", "0123456789", "abcdefghij", "end"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	got := b.String()
	if want := "panic: boom\n0123456789"[:10] + " [...] " + "abcdefghij"[3:] + "end"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// Every backend's data-path syscalls are in the by-name meter's table, so
// the outside count's explanation can set them apart; a backend whose own
// count counts syscalls declares which.
func TestDataPathSyscallsAreCountedByName(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("skipped: the backends' lists name amd64's epoll_wait, which %s lacks", runtime.GOARCH)
	}
	for _, b := range backends.All() {
		// DPDK's own loop makes no syscall (its PMD's are beyond it).
		if b.DataPathSyscalls == nil && b.Family != "dpdk" {
			t.Errorf("%s declares no data-path syscalls", b.Name)
		}
		for _, n := range b.DataPathSyscalls {
			if !meters.KnownSyscall(n) {
				t.Errorf("%s's data-path syscall %q is not in the meter's name table: it would count as other", b.Name, n)
			}
		}
	}
}

// The tasks that are not noise are listed at the window's end, while the
// server runs: a memif server is stopped before its generator lets go of the
// port, and listed after that, its own polling thread counted as another
// task's (0.97-0.99 of the core in every memif trial).
func TestServerTasksListedWhileServerRuns(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	srv := &server{pid: cmd.Process.Pid}
	r := NewRunner(nil, "", nil)
	defer r.Close()
	topo := &memif{}
	w := r.trialWindow(nil, srv, topo, []int{1}, []int{0})
	w.startScan()
	w.opened, w.closed = true, true // as the generator's edge hooks leave it
	w.finish()
	// The server stops, then the window's figures are derived.
	cmd.Process.Kill()
	cmd.Wait()
	mw := r.meterWindow(Trial{Backend: "dpdk", Conns: 1}, w, &workloads.Report{}, srv, topo, []int{1}, []int{0}, true)
	if !mw.Skip[srv.pid] {
		t.Errorf("the stopped server's task %d is not in the skip list %v: its time would count as noise", srv.pid, mw.Skip)
	}
	if mw.ScanA == nil || mw.ScanB == nil {
		t.Error("the window's task scans are not in the meter window")
	}
}
