package meters

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"ringbench/backends"
	"ringbench/internal/testenv"
	"ringbench/results"
)

// Ground truth: a locked thread makes exactly N getppid and M getpid (the
// Go runtime makes neither on a thread of its own) under the by-name
// counter, which must read exactly N and M, and whose names must sum to
// its unfiltered total exactly: the thread that reads is the thread that
// counts, so no syscall falls between a group's reads.
func TestSyscallCounterByNameGroundTruth(t *testing.T) {
	testenv.SkipUnlessRoot(t, "counting syscalls at the raw_syscalls tracepoint")
	for _, tc := range []struct{ getppid, getpid int }{{1000, 300}, {7, 20_000}, {0, 1}} {
		c, err := CountOwnSyscallsByName(tc.getppid, tc.getpid)
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ByName["getppid"]; got != uint64(tc.getppid) {
			t.Errorf("getppid counted %d, made %d", got, tc.getppid)
		}
		if got := c.ByName["getpid"]; got != uint64(tc.getpid) {
			t.Errorf("getpid counted %d, made %d", got, tc.getpid)
		}
		// The counter's second read is the only other syscall the loop
		// makes (a preemption signal may add an rt_sigreturn).
		if got := c.ByName["read"]; got != 1 {
			t.Errorf("read counted %d, want 1 (the counter's own read)", got)
		}
		var sum uint64
		for _, v := range c.ByName {
			sum += v
		}
		if sum != c.Total {
			t.Errorf("names sum to %d, the total counter counted %d: %v", sum, c.Total, c.ByName)
		}
	}
}

// The name table is unique in names and numbers (a duplicated number would
// count one syscall twice and break the sum), and its filters are one per
// name plus "other", which excludes every number.
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
	ns, filters := syscallFilters(table)
	if len(ns) != len(table)+1 || len(filters) != len(ns) || ns[len(ns)-1] != OtherSyscalls {
		t.Fatalf("%d names, %d filters for a table of %d", len(ns), len(filters), len(table))
	}
	excluded := map[string]bool{}
	for _, term := range strings.Split(filters[len(filters)-1], " && ") {
		excluded[term] = true
	}
	for i, s := range table {
		nr := strconv.FormatUint(s.nr, 10)
		if filters[i] != "id == "+nr {
			t.Errorf("%s's filter is %q, want id == %s", s.name, filters[i], nr)
		}
		if !excluded["id != "+nr] {
			t.Errorf("the %q filter does not exclude %s (%s)", OtherSyscalls, s.name, nr)
		}
	}
	if len(excluded) != len(table) {
		t.Errorf("the %q filter has %d terms for %d names", OtherSyscalls, len(excluded), len(table))
	}
	if !KnownSyscall("getppid") || KnownSyscall("no_such_syscall") {
		t.Error("KnownSyscall disagrees with the table")
	}
}

func TestSyscallsByName(t *testing.T) {
	a := map[string]uint64{"epoll_pwait": 50, "recvmmsg": 30, "futex": 20, OtherSyscalls: 3}
	for _, tc := range []struct {
		name  string
		b     map[string]uint64
		total uint64
		want  map[string]uint64
		err   string
	}{
		{"sums to the total; names that counted nothing are left out",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 3}, 25000,
			map[string]uint64{"epoll_pwait": 10000, "recvmmsg": 10000, "futex": 5000}, ""},
		{"within the slack of a group read",
			map[string]uint64{"epoll_pwait": 10051, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 3}, 25000,
			map[string]uint64{"epoll_pwait": 10001, "recvmmsg": 10000, "futex": 5000}, ""},
		{"off by more than 0.1%",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5100, OtherSyscalls: 3}, 25000, nil, "sum to 25080"},
		{"short by more than 0.1%",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "futex": 5020, OtherSyscalls: 3}, 25100, nil, "sum to 25000"},
		{"a counter that went back",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10, "futex": 5020, OtherSyscalls: 3}, 15000, nil, "went back"},
		{"a name at one edge only",
			map[string]uint64{"epoll_pwait": 10050, "recvmmsg": 10030, "nanosleep": 5020, OtherSyscalls: 3}, 25000, nil, "end only"},
		{"no names", nil, 25000, nil, "no syscall counted by name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SyscallsByName(a, tc.b, tc.total)
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
	if r.SyscallsPerOp == nil {
		t.Error("the total was dropped with the names")
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
