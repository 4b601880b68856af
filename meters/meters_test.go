package meters

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
	"ringbench/results"
)

func TestMain(m *testing.M) {
	// The syscall-count test re-executes this binary as a process that makes
	// a known number of syscalls.
	if n := os.Getenv("RINGBENCH_SYSCALL_CHILD"); n != "" {
		syscallChild(n)
		return
	}
	if arg := os.Getenv("RINGBENCH_NAMES_CHILD"); arg != "" {
		namesChild(arg)
		return
	}
	testenv.Main(m)
}

// syscallChild waits for a line on stdin, makes exactly n getppid syscalls,
// says "done", and waits for stdin to close.
func syscallChild(arg string) {
	n, _ := strconv.Atoi(arg)
	in := bufio.NewReader(os.Stdin)
	os.Stdout.WriteString("ready\n")
	in.ReadString('\n')
	for i := 0; i < n; i++ {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	os.Stdout.WriteString("done\n")
	io.Copy(io.Discard, in)
	os.Exit(0)
}

// The outside count (raw_syscalls:sys_enter via perf_event_open on every
// thread of the process) agrees with a known number of syscalls within 5%.
func TestSyscallCounterCountsKnownSyscalls(t *testing.T) {
	testenv.SkipUnlessRoot(t, "counting another process's syscalls through a tracepoint")
	const calls = 200_000
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("RINGBENCH_SYSCALL_CHILD=%d", calls))
	stdin, out := startReadyChild(t, cmd)
	c, err := openSyscallCounter(TasksOf([]int{cmd.Process.Pid}), "")
	testenv.SkipIfUnsupported(t, err)
	defer c.Close()
	before, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")
	if line, err := out.ReadString('\n'); err != nil || line != "done\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	after, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	got := float64(d.Total)
	// By name, getppid is exact: no runtime thread of the child makes one.
	if d.ByName["getppid"] != calls {
		t.Errorf("getppid counted %d for %d made", d.ByName["getppid"], calls)
	}
	var sum uint64
	for _, v := range d.ByName {
		sum += v
	}
	if diff := max(sum, d.Total) - min(sum, d.Total); diff > syscallSumSlack(d.Total)+before.ReadGap+after.ReadGap {
		t.Errorf("names sum to %d, the total counter counted %d", sum, d.Total)
	}
	if dev := math.Abs(got-calls) / calls; dev > 0.05 {
		t.Errorf("counted %.0f syscalls for %d made: off by %.1f%%", got, calls, 100*dev)
	}
	t.Logf("counted %.0f syscalls for %d getppid calls", got, calls)
}

// startReadyChild starts cmd (this test binary in a child mode) and waits
// for its "ready" line. Cleanup closes its stdin, which ends it, and waits
// for it.
func startReadyChild(t *testing.T, cmd *exec.Cmd) (io.WriteCloser, *bufio.Reader) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	out := bufio.NewReader(stdoutPipe)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return stdin, out
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[int]CPUTimes
		err      bool
	}{
		{name: "two cpus", in: "cpu  100 0 50 1000 10 0 5 0 0 0\ncpu0 60 0 30 400 4 1 3 2 0 0\ncpu1 40 0 20 600 6 0 2 0 0 0\nintr 12345\n",
			want: map[int]CPUTimes{
				0: {User: 600e6, System: 300e6, Idle: 4000e6, IOWait: 40e6, IRQ: 10e6, SoftIRQ: 30e6, Steal: 20e6},
				1: {User: 400e6, System: 200e6, Idle: 6000e6, IOWait: 60e6, SoftIRQ: 20e6},
			}},
		{name: "bad number", in: "cpu0 60 0 x 400 4 0 3 0 0 0\n", err: true},
		{name: "too few columns", in: "cpu0 60 0 30 400\n", err: true},
		{name: "no cpus", in: "intr 1\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			for c, w := range tc.want {
				if got[c] != w {
					t.Errorf("cpu%d = %+v, want %+v", c, got[c], w)
				}
			}
		})
	}
}

const snmpSample = `Ip: Forwarding DefaultTTL
Ip: 2 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 41 26 2 46 1 97464 96955 3 0 29 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 380770 34 5 380856 7 0 0 0 0
`

func TestParseSNMP(t *testing.T) {
	got, err := ParseSNMP([]byte(snmpSample))
	if err != nil {
		t.Fatal(err)
	}
	want := SNMP{TCPInSegs: 97464, TCPOutSegs: 96955, TCPRetransSegs: 3, UDPInDatagrams: 380770, UDPOutDatagrams: 380856, UDPInErrors: 5, UDPRcvbufErrors: 7}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if p := got.Packets(); p != 97464+96955+380770+380856 {
		t.Errorf("packets %d", p)
	}
	for name, in := range map[string]string{
		"no udp":       snmpSample[:len(snmpSample)-130],
		"bad number":   "Tcp: InSegs OutSegs RetransSegs\nTcp: 1 x 3\nUdp: InDatagrams OutDatagrams InErrors RcvbufErrors\nUdp: 1 2 3 4\n",
		"unpaired":     "Tcp: InSegs OutSegs RetransSegs\nUdp: 1 2 3\n",
		"short values": "Tcp: InSegs OutSegs RetransSegs\nTcp: 1 2\n",
	} {
		if _, err := ParseSNMP([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 682641625  476651    0    0    0     0          0         0 682641625  476650    0    0    0     0       0          0
 veth0:    100       2    0    0    0     0          0         0      300       4    0    0    0     0       0          0
`
	got, err := ParseNetDev([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got["lo"] != (Link{476651, 476650}) || got["veth0"] != (Link{2, 4}) {
		t.Errorf("got %+v", got)
	}
	if _, err := ParseNetDev([]byte("a\nb\n lo: 1 2 3\n")); err == nil {
		t.Error("short line: no error")
	}
}

func TestParseCgroupAndPressure(t *testing.T) {
	ns, err := ParseCgroupCPU([]byte("usage_usec 11889939\nuser_usec 5246371\nsystem_usec 6643568\n"))
	if err != nil || ns != 11889939e3 {
		t.Errorf("cpu.stat: %v, %v", ns, err)
	}
	if _, err := ParseCgroupCPU([]byte("user_usec 1\n")); err == nil {
		t.Error("cpu.stat without usage_usec: no error")
	}
	d, err := ParsePressure([]byte("some avg10=44.64 avg60=20.03 avg300=5.24 total=17262126\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	if err != nil || d != 17262126e3 {
		t.Errorf("pressure: %v, %v", d, err)
	}
	if _, err := ParsePressure([]byte("full total=3\n")); err == nil {
		t.Error("pressure without some: no error")
	}
}

const timerListSample = `Timer List Version: v0.10
HRTIMER_MAX_CLOCK_BASES: 8
now at 1000000000 nsecs

cpu: 0
 clock 0:
  .base:       0000000077dbd9bf
  .offset:     0 nsecs
active timers:
 #0: <00000000e9431504>, tick_nohz_handler, S:01
 # expires at 250016000000-250016000000 nsecs [in 3011628 to 3011628 nsecs]
  .tick_stopped   : 1
  .idle_entrytime : 900000000 nsecs
  .idle_waketime  : 800000000 nsecs
  .idle_exittime  : 850000000 nsecs
  .idle_sleeptime : 500000000 nsecs
  .iowait_sleeptime: 10000000 nsecs
jiffies: 4294954872

cpu: 1
  .tick_stopped   : 0
  .idle_entrytime : 700000000 nsecs
  .idle_exittime  : 800000000 nsecs
  .idle_sleeptime : 300000000 nsecs
  .iowait_sleeptime: 0 nsecs
`

func TestParseTimerList(t *testing.T) {
	got, err := ParseTimerList([]byte(timerListSample))
	if err != nil {
		t.Fatal(err)
	}
	// cpu0 stopped its tick: idle since 900 ms: 500 + 10 + (1000 − 900).
	// cpu1 runs its tick: its folded idle only.
	if got.Now != 1e9 || got.Idle[0] != 610e6 || got.Idle[1] != 300e6 {
		t.Errorf("got %+v", got)
	}
	for name, in := range map[string]string{
		"no now":         "cpu: 0\n  .idle_entrytime : 1 nsecs\n",
		"missing fields": "now at 5 nsecs\ncpu: 0\n  .idle_entrytime : 1 nsecs\n",
		"bad number":     "now at 5 nsecs\ncpu: 0\n  .idle_entrytime : x nsecs\n",
	} {
		if _, err := ParseTimerList([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The nanosecond idle clock agrees with /proc/stat's 10 ms one over the same
// interval: two independent readings of the same kernel accounting.
func TestTimerListAgreesWithProcStat(t *testing.T) {
	b0, err := os.ReadFile("/proc/timer_list")
	if err != nil {
		t.Skipf("skipped: /proc/timer_list needs root: %v", err)
	}
	s0, _ := os.ReadFile("/proc/stat")
	// Keep this CPU busy for part of the interval so busy is not zero.
	end := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(end) {
	}
	time.Sleep(300 * time.Millisecond)
	b1, _ := os.ReadFile("/proc/timer_list")
	s1, _ := os.ReadFile("/proc/stat")
	t0, err := ParseTimerList(b0)
	if err != nil {
		t.Fatal(err)
	}
	t1, err := ParseTimerList(b1)
	if err != nil {
		t.Fatal(err)
	}
	p0, err := ParseProcStat(s0)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := ParseProcStat(s1)
	if err != nil {
		t.Fatal(err)
	}
	for c := range runtime.NumCPU() {
		precise := t1.Idle[c] - t0.Idle[c]
		coarse := (p1[c].Idle - p0[c].Idle) + (p1[c].IOWait - p0[c].IOWait)
		// Two 10 ms quanta, and the few µs between the two files' reads.
		t.Logf("cpu%d idle: timer_list %.2f ms, /proc/stat %.0f ms", c, precise/1e6, coarse/1e6)
		if d := math.Abs(precise - coarse); d > 25e6 {
			t.Errorf("cpu%d idle: timer_list %.1f ms, /proc/stat %.1f ms", c, precise/1e6, coarse/1e6)
		}
	}
}

func TestOtherTasksNs(t *testing.T) {
	const tick = 1e9 / UserHZ
	a := TaskScan{BootNs: 100e9, Tasks: map[int]TaskSample{
		1: {CPU: 1, RunNs: 10e6, StartTick: 5},
		2: {CPU: 0, RunNs: 50e9, StartTick: 5}, // long-lived, moves onto cpu1
		3: {CPU: 1, RunNs: 1e6, StartTick: 5},  // server thread
	}}
	b := TaskScan{BootNs: 102e9, Tasks: map[int]TaskSample{
		1: {CPU: 1, RunNs: 30e6, StartTick: 5},             // +20 ms
		2: {CPU: 1, RunNs: 50.005e9, StartTick: 5},         // +5 ms, not its lifetime
		3: {CPU: 1, RunNs: 900e6, StartTick: 5},            // skipped
		4: {CPU: 1, RunNs: 7e6, StartTick: 101e9 / tick},   // born in the window
		5: {CPU: 1, RunNs: 40e9, StartTick: 50e9 / tick},   // raced the first scan: not its lifetime
		6: {CPU: 0, RunNs: 300e6, StartTick: 101e9 / tick}, // elsewhere
	}}
	got := OtherTasksNs(a, b, []int{1}, map[int]bool{3: true})
	if want := 20e6 + 5e6 + 7e6; math.Abs(got-want) > 1 {
		t.Errorf("other tasks = %.0f ns, want %.0f", got, want)
	}
}

func TestTracepointID(t *testing.T) {
	testenv.SkipUnlessRoot(t, "mounting tracefs")
	id, err := TracepointID("raw_syscalls/sys_enter")
	testenv.SkipIfUnsupported(t, err)
	if id == 0 {
		t.Error("tracepoint id 0")
	}
}

func TestProcessTree(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 5 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var tree []int
	for i := 0; i < 100 && len(tree) < 2; i++ {
		var err error
		if tree, err = ProcessTree(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if len(tree) < 2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(tree) < 2 {
		t.Fatalf("process tree of sh with a sleeping child = %v, want 2 processes", tree)
	}
}

// TestServerThreadsKeepExited: without a cgroup, a server thread that
// exits inside the window keeps the time it had run, so the server's CPU
// time never goes back.
func TestServerThreadsKeepExited(t *testing.T) {
	// A server whose child burns some CPU, then exits in the window.
	cmd := exec.Command("sh", "-c", "exec 3<&0; (i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; read x <&3) & sleep 5")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var tree []int
	for i := 0; i < 100 && len(tree) < 3; i++ {
		time.Sleep(10 * time.Millisecond)
		if tree, err = ProcessTree(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if len(tree) < 3 {
		t.Fatalf("process tree %v, want the shell, its child and sleep", tree)
	}
	r, err := NewReader(Target{PID: cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	time.Sleep(200 * time.Millisecond) // the child has burnt its CPU
	a := r.Read(false)
	in.Close() // the child reads EOF and exits
	for i := 0; i < 100 && taskExists(tree[1]); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	b := r.Read(false)
	if a.ServerCPUErr != nil || b.ServerCPUErr != nil {
		t.Fatal(a.ServerCPUErr, b.ServerCPUErr)
	}
	if d := b.ServerCPU - a.ServerCPU; d < 0 {
		t.Errorf("process CPU over a window in which a thread exited: %.1f ms, want ≥ 0", d/1e6)
	}
}

func TestCoresBusy(t *testing.T) {
	a := Snapshot{At: 10 * time.Second, CPU: map[int]CPUTimes{0: {Idle: 1e9}, 1: {Idle: 1e9}},
		IdleErr: errors.New("not root")}
	b := Snapshot{At: 12 * time.Second, CPU: map[int]CPUTimes{0: {Idle: 2.5e9}, 1: {Idle: 1e9, Steal: 1e9}},
		IdleErr: errors.New("not root")}
	// cpu0: 2 s wall, 1.5 s idle; cpu1: 2 s wall, 1 s steal.
	share, src, err := CoresBusy(a, b, []int{0, 1})
	if err != nil || src != BusyProcStat || math.Abs(share-0.375) > 1e-9 {
		t.Errorf("CoresBusy = %v, %q, %v; want 0.375 from proc_stat", share, src, err)
	}
	if _, _, err := CoresBusy(a, b, []int{2}); err == nil {
		t.Error("a CPU missing from the snapshots: want an error")
	}
	if _, _, err := CoresBusy(a, a, []int{0}); err == nil {
		t.Error("no window: want an error")
	}
	r, err := NewCoresReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s0 := r.Read()
	time.Sleep(20 * time.Millisecond)
	s1 := r.Read()
	if s0.CPUErr != nil || s1.At <= s0.At || len(s1.CPU) == 0 {
		t.Errorf("CoresReader: %v, at %v then %v, %d cpus", s0.CPUErr, s0.At, s1.At, len(s1.CPU))
	}
}

// TestParseErrorsAreErrors: a task that exits while it is read is left
// out, a file that does not parse fails the reading.
func TestParseErrorsAreErrors(t *testing.T) {
	task := func(root, pid, stat, schedstat string) {
		dir := filepath.Join(root, pid, "task", pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"stat": stat, "schedstat": schedstat} {
			if body == "" {
				continue // the task exited: its file is gone
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if stat != "" {
			os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o644)
		}
	}
	stat := func(ppid string) string {
		return "7 (a b) S " + ppid + strings.Repeat(" 0", 17) + " 1234" + strings.Repeat(" 0", 16) + " 1\n"
	}
	good := t.TempDir()
	task(good, "7", stat("1"), "500 20 3\n")
	task(good, "8", "", "") // exited mid-scan
	c, err := openTaskCache(good)
	if err != nil {
		t.Fatalf("scan with an exited task: %v", err)
	}
	s := c.edge()
	c.close()
	if s.Err != nil || s.Tasks[7].RunNs != 500 || s.Tasks[7].CPU != 1 || len(s.Tasks) != 1 {
		t.Errorf("scan with an exited task = %+v, want task 7 only", s)
	}
	if tree, err := processTree(good, 1); err != nil || len(tree) != 2 {
		t.Errorf("process tree = %v, %v, want [1 7]", tree, err)
	}
	for name, tc := range map[string]struct{ stat, schedstat string }{
		"schedstat": {stat("1"), "five 20 3\n"},
		"stat":      {"7 (a) S", "500 20 3\n"},
	} {
		bad := t.TempDir()
		task(bad, "7", tc.stat, tc.schedstat)
		if _, err := openTaskCache(bad); err == nil {
			t.Errorf("scan with a malformed %s: no error", name)
		}
	}
	bad := t.TempDir()
	task(bad, "7", stat("x"), "500 20 3\n")
	if _, err := processTree(bad, 1); err == nil {
		t.Error("process tree with a malformed ppid: no error")
	}
}

// TestMalformedPressureIsNoted: a cpu.pressure that does not parse leaves
// the run delay empty with the reason, not a zero.
func TestMalformedPressureIsNoted(t *testing.T) {
	cg := t.TempDir()
	os.WriteFile(filepath.Join(cg, "cpu.stat"), []byte("usage_usec 100\nuser_usec 50\nsystem_usec 50\n"), 0o644)
	os.WriteFile(filepath.Join(cg, "cpu.pressure"), []byte("some avg10=0.00 total=lots\n"), 0o644)
	r, err := NewReader(Target{PID: os.Getpid(), Cgroup: cg})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := r.Read(false)
	time.Sleep(10 * time.Millisecond)
	b := r.Read(false)
	var rec results.Record
	Fill(&rec, Window{A: a, B: b, ServerCPUs: []int{0}, TSCHz: 1e9})
	if !slices.ContainsFunc(rec.Notes, func(n string) bool { return strings.HasPrefix(n, "run delay not read: parse pressure") }) {
		t.Errorf("notes %q, want the run delay's parse error", rec.Notes)
	}
}

// TestScannerEdges: the scans are read at the edges, on a thread at idle
// priority, a task that starts between them is picked up as new, one that
// exits is dropped, and a window that never reached its edges leaves the
// scanner ready for the next one. When a scan is read depends on the
// machine's load (an idle thread waits for an idle CPU: 90 ms once under
// CI), so the test orders its tasks by the scans' completion, not by time.
func TestScannerEdges(t *testing.T) {
	type scanned struct {
		at     time.Duration
		policy uint32
		err    error
	}
	done := make(chan scanned, 2)
	s := newScanner("/proc", func(int) {
		attr, err := unix.SchedGetAttr(0, 0)
		var policy uint32
		if err == nil {
			policy = attr.Policy
		}
		select {
		case done <- scanned{Now(), policy, err}:
		default: // the later windows': not waited for
		}
	})
	defer s.Close()
	before := exec.Command("sleep", "30")
	if err := before.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { before.Process.Kill(); before.Wait() }()
	s.Start()
	edgeA := Now()
	s.Edge()
	doneA := <-done
	// Exits, and another starts, after scan A and before edge B.
	before.Process.Kill()
	before.Wait()
	during := exec.Command("sleep", "30")
	if err := during.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { during.Process.Kill(); during.Wait() }()
	edgeB := Now()
	s.Edge()
	doneB := <-done
	a, b := s.Result()
	if a.Err != nil || b.Err != nil {
		t.Fatal(a.Err, b.Err)
	}
	for name, d := range map[string]scanned{"A": doneA, "B": doneB} {
		if d.err != nil || d.policy != sched_IDLE {
			t.Errorf("scan %s read at policy %d (%v), want SCHED_IDLE (%d)", name, d.policy, d.err, sched_IDLE)
		}
	}
	// Each edge's scan carries the interrupt counts (off the snapshot,
	// which reads on the generator's CPU): the timer's at least, on CPU 0.
	for name, sc := range map[string]TaskScan{"A": a, "B": b} {
		if sc.IRQErr != nil || len(sc.IRQs) == 0 {
			t.Errorf("scan %s: interrupts %d, %v; want them read", name, len(sc.IRQs), sc.IRQErr)
		}
	}
	// Read after its edge was asked for, and before the scan said it was
	// done: at the edge, not at Start or at Result.
	for name, c := range map[string][3]time.Duration{"A": {edgeA, a.At, doneA.at}, "B": {edgeB, b.At, doneB.at}} {
		if c[1] < c[0] || c[1] > c[2] {
			t.Errorf("scan %s read at %v, want between its edge %v and its end %v", name, c[1], c[0], c[2])
		}
	}
	if _, ok := a.Tasks[before.Process.Pid]; !ok {
		t.Errorf("scan A misses a task that ran before the window")
	}
	if _, ok := b.Tasks[before.Process.Pid]; ok {
		t.Errorf("scan B has a task that exited in the window")
	}
	newTask, ok := b.Tasks[during.Process.Pid]
	if _, inA := a.Tasks[during.Process.Pid]; inA || !ok {
		t.Fatalf("a task started in the window: in scan A %v, in scan B %v; want B only", inA, ok)
	}
	if float64(newTask.StartTick)*1e9/UserHZ < a.BootNs-1e9/UserHZ {
		t.Errorf("the task started in the window reads as started before it")
	}
	s.Start()
	if a, b := s.Result(); !errors.Is(a.Err, errEdgeNotReached) || !errors.Is(b.Err, errEdgeNotReached) {
		t.Errorf("a window with no edges: %v, %v", a.Err, b.Err)
	}
	s.Start()
	s.Edge()
	s.Edge()
	if a, b := s.Result(); a.Err != nil || b.Err != nil || len(b.Tasks) == 0 {
		t.Errorf("the window after a failed one: %v, %v, %d tasks", a.Err, b.Err, len(b.Tasks))
	}
}

func taskExists(tid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", tid))
	return err == nil
}

func TestParseInterrupts(t *testing.T) {
	const head = "           CPU0       CPU2       \n"
	for _, tc := range []struct {
		name, in string
		want     map[string]map[int]uint64
		err      string
	}{
		{"device lines only, by CPU", head +
			" 24:          1          0  IO-APIC   5-edge      ACPI:Ged\n" +
			" 36:          0    1352942 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0\n" +
			"NMI:          0          0   Non-maskable interrupts\n" +
			"CAL:  176073851  198424931   Function call interrupts\n" +
			"ERR:          0\n",
			map[string]map[int]uint64{"24": {0: 1, 2: 0}, "36": {0: 0, 2: 1352942}}, ""},
		{"a count that is not a number", head + " 24:          1          x  IO-APIC\n", nil, "parse interrupts: IRQ 24"},
		{"too few counts", head + " 24:          1\n", nil, "IRQ 24 has 1 counts for 2 CPUs"},
		{"no header", " 24:          1\n", nil, "header field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseInterrupts([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	b, err := os.ReadFile("/proc/interrupts")
	if err != nil {
		t.Skip("no /proc/interrupts:", err)
	}
	if _, err := ParseInterrupts(b); err != nil {
		t.Errorf("this machine's /proc/interrupts: %v", err)
	}
}

// TestTaskCacheBounded: the task cache keeps two descriptors a task and
// takes at most half the open-file limit; a machine with more tasks than
// that gets an error naming the limit, not a cache that leaves the
// generator no descriptors for its sockets.
func TestTaskCacheBounded(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	c := newTaskCache("/proc", nil)
	if files := 2 * uint64(c.maxTasks); files > rl.Cur/2 {
		t.Errorf("the cache may hold %d tasks, %d files of a limit of %d: want at most half", c.maxTasks, files, rl.Cur)
	}
	c.maxTasks = 2
	err := c.add(nil)
	cached := len(c.tasks)
	c.close()
	if err == nil || !strings.Contains(err.Error(), "open-file limit") || cached > 2 {
		t.Errorf("a cache of 2 tasks over /proc: %v, %d tasks cached; want a refusal naming the open-file limit", err, cached)
	}
}

// TestNewReaderFails: a server gone before its meters open is an error
// for its trial, with what was opened closed, not a panic that ends the
// run (the deferred Close once ran on the nil a named result returned).
func TestNewReaderFails(t *testing.T) {
	for name, target := range map[string]Target{
		"process tree": {PID: 1 << 30},
		"cgroup":       {PID: os.Getpid(), Cgroup: filepath.Join(t.TempDir(), "gone")},
	} {
		r, err := NewReader(target)
		if err == nil || r != nil {
			t.Errorf("%s: NewReader = %v, %v; want an error and no reader", name, r, err)
		}
	}
}
