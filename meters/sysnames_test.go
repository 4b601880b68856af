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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/internal/testenv"
	"ringbench/results"
)

// namesChild is the by-name ground truth's server: on "go" it starts k
// goroutines, each on a locked thread of its own, that make n getppid, m
// getuid and n getegid between them (syscalls the Go runtime never makes;
// getegid is outside the name table: "other"), holds
// the k threads until its stdin says "end" (so that threads were made
// after the counter opened), and says how many threads it had.
func namesChild(arg string) {
	var n, m, k int
	if _, err := fmt.Sscanf(arg, "%d,%d,%d", &n, &m, &k); err != nil || k < 1 {
		fmt.Fprintf(os.Stderr, "bad RINGBENCH_NAMES_CHILD %q\n", arg)
		os.Exit(2)
	}
	in := bufio.NewReader(os.Stdin)
	os.Stdout.WriteString("ready\n")
	in.ReadString('\n')
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for i := range k {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			for j := i; j < n; j += k {
				syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
			}
			for j := i; j < m; j += k {
				syscall.RawSyscall(syscall.SYS_GETUID, 0, 0, 0)
			}
			for j := i; j < n; j += k {
				syscall.RawSyscall(syscall.SYS_GETEGID, 0, 0, 0)
			}
			wg.Done()
			<-hold
		}()
	}
	wg.Wait()
	tasks, _ := os.ReadDir("/proc/self/task")
	fmt.Printf("done %d\n", len(tasks))
	in.ReadString('\n')
	close(hold)
	io.Copy(io.Discard, in)
	os.Exit(0)
}

// Ground truth of the by-name count: a process makes exactly N getppid and
// M getuid (and N getegid, outside the table) on threads it makes after the
// counter opened; the counter must read exactly N and M by name, at least N
// other, and its names must sum to its total within
// the read's slack. Run with the server's process set (tgids) and with its
// cgroup, the two ways the program picks the server's syscalls.
func TestSyscallCounterByNameGroundTruth(t *testing.T) {
	testenv.SkipUnlessRoot(t, "counting another process's syscalls at the raw_syscalls tracepoint")
	const getppid, getuid, threads = 30_000, 7_001, 8
	for _, mode := range []string{"tgids", "cgroup"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			// No asynchronous preemption: its signals are syscalls
			// (tgkill, rt_sigreturn) of no interest here.
			cmd.Env = append(os.Environ(), fmt.Sprintf("RINGBENCH_NAMES_CHILD=%d,%d,%d", getppid, getuid, threads), "GODEBUG=asyncpreemptoff=1")
			cgroup := ""
			if mode == "cgroup" {
				cgroup = testCgroup(t)
				fd, err := syscall.Open(cgroup, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer syscall.Close(fd)
				cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
			}
			stdin, out := startReadyChild(t, cmd)
			tids := TasksOf([]int{cmd.Process.Pid})
			c, err := openSyscallCounter(tids, cgroup)
			testenv.SkipIfUnsupported(t, err)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testenv.SkipIfUnsupported(t, c.idsErr)
			before, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(stdin, "go\n")
			line, err := out.ReadString('\n')
			var after SyscallCount
			if err == nil {
				after, err = c.read()
			}
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(stdin, "end\n")
			var made int
			if _, err := fmt.Sscanf(line, "done %d", &made); err != nil {
				t.Fatalf("child: %q", line)
			}
			if made <= len(tids) {
				t.Fatalf("the child had %d threads at the end, %d when the counter opened: no thread was made after it", made, len(tids))
			}
			d := after.Sub(before)
			if d.ByName["getppid"] != getppid || d.ByName["getuid"] != getuid {
				t.Errorf("counted getppid %d, getuid %d; made %d and %d", d.ByName["getppid"], d.ByName["getuid"], getppid, getuid)
			}
			if d.ByName[OtherSyscalls] < getppid {
				t.Errorf("counted %d other syscalls; the child made %d getegid, outside the table", d.ByName[OtherSyscalls], getppid)
			}
			var sum uint64
			for _, v := range d.ByName {
				sum += v
			}
			gaps := before.ReadGap + after.ReadGap
			if diff := max(sum, d.Total) - min(sum, d.Total); diff > syscallSumSlack(d.Total)+gaps {
				t.Errorf("names sum to %d, the total counter counted %d (read gaps %d): %v", sum, d.Total, gaps, d.ByName)
			}
			t.Logf("%d threads at open, %d at the end; %d syscalls, by name %d; read gaps %d", len(tids), made, d.Total, sum, gaps)
		})
	}
}

// testCgroup makes a cgroup v2 group for one test, named as the harness
// names its server groups (<pid>-…, under ringbench/), so that the
// harness's sweep removes it if the test dies before its cleanup.
func testCgroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	mount := ""
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup2" {
			mount = f[1]
			break
		}
	}
	if mount == "" {
		t.Skip("skipped: no cgroup2 hierarchy mounted")
	}
	parent := filepath.Join(mount, "ringbench")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Skipf("skipped: make %s: %v", parent, err)
	}
	dir := filepath.Join(parent, fmt.Sprintf("%d-sysnames", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The child has exited (cmd.Wait ran first); a group empties a
		// moment after its last task is reaped.
		for i := 0; ; i++ {
			err := syscall.Rmdir(dir)
			if err == nil || i == 100 {
				if err != nil {
					t.Errorf("remove %s: %v", dir, err)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return dir
}

// The name table is unique in names and numbers (a duplicated number would
// count one syscall twice and break the sum), and every number has a slot
// of its own in the BPF map.
func TestSyscallTable(t *testing.T) {
	table := syscallTable()
	names, nrs := map[string]bool{}, map[uint64]string{}
	for _, s := range table {
		if names[s.name] {
			t.Errorf("%s twice in the table", s.name)
		}
		if prev, dup := nrs[s.nr]; dup {
			t.Errorf("%s and %s share number %d", prev, s.name, s.nr)
		}
		names[s.name], nrs[s.nr] = true, s.name
	}
	if names[OtherSyscalls] {
		t.Errorf("the table names a syscall %q", OtherSyscalls)
	}
	for _, s := range table {
		if s.nr >= syscallSlots {
			t.Errorf("%s is number %d, beyond the map's %d slots: it would count as other", s.name, s.nr, syscallSlots)
		}
	}
	if !KnownSyscall("getppid") || KnownSyscall("no_such_syscall") {
		t.Error("KnownSyscall disagrees with the table")
	}
}

func TestSyscallsByName(t *testing.T) {
	a := map[string]uint64{"epoll_pwait": 50, "recvmmsg": 30, "futex": 20, OtherSyscalls: 3}
	for _, tc := range []struct {
		name        string
		b           map[string]uint64
		total, gaps uint64
		want        map[string]uint64
		err         string
	}{
		{"sums to the total; names that counted nothing are left out",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 3}, 25000, 0,
			map[string]uint64{"epoll_pwait": 10000, "recvmmsg": 10000, "futex": 5000}, ""},
		{"within the slack",
			map[string]uint64{"epoll_pwait": 10075, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 3}, 25000, 0,
			map[string]uint64{"epoll_pwait": 10025, "recvmmsg": 10000, "futex": 5000}, ""},
		{"off by more than 0.1%",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5100, OtherSyscalls: 3}, 25000, 0, nil, "sum to 25080"},
		{"off by 0.1% and the read gaps",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5100, OtherSyscalls: 3}, 25000, 55,
			map[string]uint64{"epoll_pwait": 10000, "recvmmsg": 10000, "futex": 5080}, ""},
		{"off by more than 0.1% and the read gaps",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5100, OtherSyscalls: 3}, 25000, 54, nil, "of which 54"},
		{"short by more than 0.1%",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 3}, 25100, 0, nil, "sum to 25000"},
		{"a counter that went back",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10, "futex": 5020, OtherSyscalls: 3}, 15000, 0, nil, "went back"},
		{"a name at one edge only",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "nanosleep": 5020, OtherSyscalls: 3}, 25000, 0, nil, "end only"},
		{"no names", nil, 25000, 0, nil, "no syscall counted by name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SyscallsByName(a, tc.b, tc.total, tc.gaps)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for n, v := range tc.want {
				if got[n] != v {
					t.Errorf("%s = %d, want %d", n, got[n], v)
				}
			}
		})
	}
}

// Fill publishes the counting window's syscalls by name per op, summing to
// syscalls_per_op, and the line that explains them against the own count.
func TestFillSyscallsByName(t *testing.T) {
	w := Window{
		A: Snapshot{At: 1e9, Syscalls: 100, SyscallsByName: map[string]uint64{"epoll_pwait": 50, "recvmmsg": 30, "futex": 20, OtherSyscalls: 0},
			Counters: backends.Counters{Syscalls: 1000}},
		B: Snapshot{At: 3e9, Syscalls: 25100, SyscallsByName: map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 0},
			Counters: backends.Counters{Syscalls: 21000}},
		Gen:              Generator{Ops: 10000, IdlePollShare: -1},
		DataPathSyscalls: []string{"epoll_pwait", "recvmmsg", "sendmmsg"},
	}
	w.A.CPUErr, w.B.CPUErr = errors.New("no stat"), errors.New("no stat")
	var r results.Record
	Fill(&r, w)
	if r.SyscallsPerOp == nil || len(r.SyscallsByName) != 3 {
		t.Fatalf("syscalls_per_op %v, by name %v", r.SyscallsPerOp, r.SyscallsByName)
	}
	sum := 0.0
	for _, v := range r.SyscallsByName {
		sum += v
	}
	if math.Abs(sum-*r.SyscallsPerOp) > 1e-9 {
		t.Errorf("by name sums to %v, syscalls_per_op %v", sum, *r.SyscallsPerOp)
	}
	eq(t, "futex", r.SyscallsByName["futex"], 0.5)
	want := "outside 2.50/op = data path 2.00 (epoll_pwait 1.00, recvmmsg 1.00; own count 2.00) + beyond it 0.50 (futex 0.50)"
	if r.SyscallsExplained != want {
		t.Errorf("explained %q\nwant      %q", r.SyscallsExplained, want)
	}
	if len(r.SyscallsDataPath) != 3 {
		t.Errorf("data path %v", r.SyscallsDataPath)
	}

	w.B.SyscallsByName["futex"] = 5200
	r = results.Record{}
	Fill(&r, w)
	if r.SyscallsByName != nil || r.SyscallsExplained != "" || !hasNote(r, NoSyscallsByName+"syscalls by name sum to 25180") {
		t.Errorf("names off the total published: %v %q, notes %q", r.SyscallsByName, r.SyscallsExplained, r.Notes)
	}
	// The same 180 more, with 155 of them made while the edges read the
	// total (plus 0.1% of 25000): within what the readings allow.
	w.A.SyscallsReadGap, w.B.SyscallsReadGap = 100, 55
	r = results.Record{}
	Fill(&r, w)
	if r.SyscallsByName == nil {
		t.Errorf("names within the read gaps not published: notes %q", r.Notes)
	}
	w.A.SyscallsReadGap, w.B.SyscallsReadGap = 0, 0
	if r.SyscallsPerOp == nil {
		t.Error("the total was dropped with the names")
	}

	w.B.SyscallsByName, w.B.SyscallsByNameErr = nil, errors.New("BPF refused")
	r = results.Record{}
	Fill(&r, w)
	if r.SyscallsByName != nil || !hasNote(r, NoSyscallsByName+"BPF refused") || r.SyscallsPerOp == nil {
		t.Errorf("names without a program: %v, total %v, notes %q", r.SyscallsByName, r.SyscallsPerOp, r.Notes)
	}
}

// The explanation's arithmetic: data path plus beyond is the outside
// count, each part lists its names largest first, and a long list sums
// its tail.
func TestExplainSyscalls(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name     string
		total    float64
		own      *float64
		byName   map[string]float64
		dataPath []string
		want     string
	}{
		{"Go epoll over UDP", 2.33, f(2.25),
			map[string]float64{"recvmmsg": 1, "sendmmsg": 1, "epoll_pwait": 0.25, "futex": 0.05, "nanosleep": 0.03},
			[]string{"epoll_pwait", "recvmmsg", "sendmmsg", "read"},
			"outside 2.33/op = data path 2.25 (recvmmsg 1.00, sendmmsg 1.00, epoll_pwait 0.25; own count 2.25) + beyond it 0.08 (futex 0.05, nanosleep 0.03)"},
		{"small counts keep two significant digits", 0.1532, f(0.12),
			map[string]float64{"io_uring_enter": 0.12, "futex": 0.0312, "nanosleep": 0.002},
			[]string{"io_uring_enter"},
			"outside 0.15/op = data path 0.12 (io_uring_enter 0.12; own count 0.12) + beyond it 0.033 (futex 0.031, nanosleep 0.002)"},
		{"a C server: nothing beyond", 1.5, f(1.5),
			map[string]float64{"io_uring_enter": 1.5},
			[]string{"io_uring_enter"},
			"outside 1.50/op = data path 1.50 (io_uring_enter 1.50; own count 1.50) + beyond it 0"},
		{"no data path (DPDK): all of it is beyond", 0.5, f(0),
			map[string]float64{"sendto": 0.5},
			nil,
			"outside 0.50/op = data path 0 (own count 0) + beyond it 0.50 (sendto 0.50)"},
		{"own count not read", 1, nil,
			map[string]float64{"read": 1},
			[]string{"read"},
			"outside 1.00/op = data path 1.00 (read 1.00; own count not read) + beyond it 0"},
		{"a long list sums its tail", 0.7, f(0),
			map[string]float64{"a": 0.2, "b": 0.15, "c": 0.1, "d": 0.1, "e": 0.05, "f": 0.05, "g": 0.04, "h": 0.01},
			nil,
			"outside 0.70/op = data path 0 (own count 0) + beyond it 0.70 (a 0.20, b 0.15, c 0.10, d 0.10, e 0.05, 3 more 0.1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExplainSyscalls(tc.total, tc.own, tc.byName, tc.dataPath); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
