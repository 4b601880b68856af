package harness

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) {
	// The syscall-count test re-executes this binary as a process that makes
	// a known number of syscalls.
	if n := os.Getenv("RINGBENCH_SYSCALL_CHILD"); n != "" {
		syscallChild(n)
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
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewReader(stdoutPipe)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	c, err := openSyscallCounter([]int{cmd.Process.Pid})
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
	got := float64(after - before)
	if dev := math.Abs(got-calls) / calls; dev > 0.05 {
		t.Errorf("counted %.0f syscalls for %d made: off by %.1f%%", got, calls, 100*dev)
	}
	t.Logf("counted %.0f syscalls for %d getppid calls", got, calls)
}

func TestParseProcStat(t *testing.T) {
	in := []byte(`cpu  100 0 50 1000 10 0 5 0 0 0
cpu0 60 0 30 400 4 0 3 0 0 0
cpu1 40 0 20 600 6 0 2 0 0 0
intr 12345
`)
	got, err := parseProcStat(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d CPUs, want 2", len(got))
	}
	// cpu0: total 497 ticks, idle 400, iowait 4: busy 93 ticks = 930 ms.
	if b := got[0].busy(); b != 93*1e9/userHZ {
		t.Errorf("cpu0 busy = %v ns, want %v", b, 93*1e9/userHZ)
	}
	if b := got[1].busy(); b != 62*1e9/userHZ {
		t.Errorf("cpu1 busy = %v ns, want %v", b, 62*1e9/userHZ)
	}
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
	if _, _, err := CPUs(n); err == nil {
		t.Errorf("CPUs(%d) on %d CPUs: want an error (no CPU left for the generator)", n, n)
	}
	if _, _, err := CPUs(0); err == nil {
		t.Error("CPUs(0): want an error")
	}
}

func TestProcessTreeAndTaskTimes(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 5 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var tree []int
	for i := 0; i < 100 && len(tree) < 2; i++ {
		tree = processTree(cmd.Process.Pid)
		if len(tree) < 2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(tree) < 2 {
		t.Fatalf("process tree of sh with a sleeping child = %v, want 2 processes", tree)
	}
	tt := readTaskTimes([]int{os.Getpid()})
	if tt.tasks < 1 || tt.runNs <= 0 {
		t.Errorf("task times of this process = %+v", tt)
	}
}

func TestTracepointID(t *testing.T) {
	testenv.SkipUnlessRoot(t, "mounting tracefs")
	id, err := tracepointID("raw_syscalls/sys_enter")
	testenv.SkipIfUnsupported(t, err)
	if id == 0 {
		t.Error("tracepoint id 0")
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
