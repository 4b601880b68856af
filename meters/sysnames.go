package meters

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// sysName is one syscall counted by name: its name as the kernel's
// syscall table spells it and its number on this architecture.
type sysName struct {
	name string
	nr   uint64
}

// OtherSyscalls is the name under which syscalls outside the name table
// are counted.
const OtherSyscalls = "other"

// commonSyscalls are the syscalls counted by name on every architecture
// (the asm-generic table, which amd64 has too); archSyscalls adds those of
// this architecture only. Numbers come from golang.org/x/sys/unix, so they
// are right on every architecture it builds for.
//
// The table holds every built-in backend's data path (backends.Backend's
// DataPathSyscalls), what the Go runtime does around it (futex hand-offs,
// sysmon's nanosleep, preemption's tgkill and rt_sigreturn, the netpoller's
// epoll_pwait, memory management), what DPDK's poll-mode drivers and EAL
// threads call, and the meters' ground truth (getppid, getuid). A syscall
// outside it is counted as "other", never lost. A name costs nothing while
// counting (the BPF program counts every id; names are given at read), so
// the table also holds what a Go process does once (start-up, signals).
var commonSyscalls = []sysName{
	{"io_uring_enter", unix.SYS_IO_URING_ENTER},
	{"epoll_pwait", unix.SYS_EPOLL_PWAIT},
	{"epoll_ctl", unix.SYS_EPOLL_CTL},
	{"recvmmsg", unix.SYS_RECVMMSG},
	{"sendmmsg", unix.SYS_SENDMMSG},
	{"recvfrom", unix.SYS_RECVFROM},
	{"sendto", unix.SYS_SENDTO},
	{"recvmsg", unix.SYS_RECVMSG},
	{"sendmsg", unix.SYS_SENDMSG},
	{"read", unix.SYS_READ},
	{"write", unix.SYS_WRITE},
	{"accept4", unix.SYS_ACCEPT4},
	{"close", unix.SYS_CLOSE},
	{"setsockopt", unix.SYS_SETSOCKOPT},
	{"getsockopt", unix.SYS_GETSOCKOPT},
	{"ioctl", unix.SYS_IOCTL},
	{"ppoll", unix.SYS_PPOLL},
	{"futex", unix.SYS_FUTEX},
	{"nanosleep", unix.SYS_NANOSLEEP},
	{"clock_nanosleep", unix.SYS_CLOCK_NANOSLEEP},
	{"sched_yield", unix.SYS_SCHED_YIELD},
	{"tgkill", unix.SYS_TGKILL},
	{"rt_sigreturn", unix.SYS_RT_SIGRETURN},
	{"rt_sigprocmask", unix.SYS_RT_SIGPROCMASK},
	{"madvise", unix.SYS_MADVISE},
	{"mmap", unix.SYS_MMAP},
	{"munmap", unix.SYS_MUNMAP},
	{"clone", unix.SYS_CLONE},
	{"clone3", unix.SYS_CLONE3},
	{"getpid", unix.SYS_GETPID},
	{"getppid", unix.SYS_GETPPID},
	{"getuid", unix.SYS_GETUID},
	{"gettid", unix.SYS_GETTID},
	{"clock_gettime", unix.SYS_CLOCK_GETTIME},
	{"rt_sigaction", unix.SYS_RT_SIGACTION},
	{"sigaltstack", unix.SYS_SIGALTSTACK},
	{"sched_getaffinity", unix.SYS_SCHED_GETAFFINITY},
	{"getrandom", unix.SYS_GETRANDOM},
	{"mprotect", unix.SYS_MPROTECT},
	{"openat", unix.SYS_OPENAT},
	{"fcntl", unix.SYS_FCNTL},
	{"eventfd2", unix.SYS_EVENTFD2},
	{"exit", unix.SYS_EXIT},
	{"exit_group", unix.SYS_EXIT_GROUP},
}

// syscallTable is the name table of this architecture.
func syscallTable() []sysName {
	return append(append([]sysName{}, commonSyscalls...), archSyscalls...)
}

// KnownSyscall says whether name is counted by name on this architecture
// (a name outside the table is counted as "other").
func KnownSyscall(name string) bool {
	for _, s := range syscallTable() {
		if s.name == name {
			return true
		}
	}
	return false
}

// syscallCounter counts raw_syscalls:sys_enter for a set of threads, in
// total and by name: the total with one perf counter per thread (inherited
// by the threads it makes later), the names with a BPF program on the same
// tracepoint that counts the server's syscalls by id in an array map.
//
// Why a BPF array rather than one filtered counter per name (perf's
// PERF_EVENT_IOC_SET_FILTER "id == N") or one sampled event: every
// filtered event is evaluated on each of the thread's syscalls, so a table
// of 35 names adds 35 evaluations to every syscall of the counting window
// (on the development VM several times a null syscall), with threads ×
// names file descriptors, and the counting window would no longer be the
// server the cost window measured. A sampled event writes a record per
// syscall into a ring that must be drained beside the generator, loses
// samples under load, and its ring cannot be mapped for an inherited
// per-thread event. The program runs once per syscall whatever the table's
// length, counts every id (a count cannot be lost), and the map is read
// from memory (mmap) at the window's edges. What it costs is in
// syscall_meter_effect with the rest of the counting window. Its one
// coarseness: it picks the server's syscalls by cgroup (or process), where
// the total counter follows threads and what they make; the two sets are
// the same for a server in its own cgroup, and the names are checked
// against the total (SyscallsByName) in case they are not.
type syscallCounter struct {
	closed bool
	total  *perfCounter
	ids    *syscallMap
	idsErr error // why there are no names
	table  []sysName
}

// openSyscallCounter counts raw_syscalls:sys_enter for every given thread
// and (inherit) for threads they create later, and by name the syscalls of
// cgroup (a cgroup v2 folder; "": of the threads' processes). Attaching
// the tracepoint turns on the slow syscall path of every task on the
// machine, so it is attached only in counting windows, never in cost
// windows. The names are optional: where the BPF program cannot load, the
// total counts alone and idsErr says why.
func openSyscallCounter(tids []int, cgroup string) (c *syscallCounter, err error) {
	id, err := TracepointID("raw_syscalls/sys_enter")
	if err != nil {
		return nil, err
	}
	c = &syscallCounter{table: syscallTable()}
	if c.total, err = openSyscallTotal(id, tids); err != nil {
		return nil, err
	}
	set, err := syscallSetOf(tids, cgroup)
	if err == nil {
		c.ids, err = openSyscallMap(id, set)
	}
	if err != nil {
		c.idsErr = &backends.NotSupportedError{Feature: "counting syscalls by name (a BPF program on raw_syscalls:sys_enter)", Reason: err.Error()}
	}
	tracepoints.Add(1)
	return c, nil
}

// tracepoints counts this process's attached syscall counters: a snapshot
// says whether its window ran traced (Snapshot.Traced) from this, not
// from which window the harness meant it to be.
var tracepoints atomic.Int32

// Tracing says whether a syscall tracepoint of this process is attached.
func Tracing() bool { return tracepoints.Load() > 0 }

// syscallSetOf is whom the by-name program counts: the cgroup's tasks, or
// the processes of tids.
func syscallSetOf(tids []int, cgroup string) (syscallSet, error) {
	if cgroup != "" {
		var st unix.Stat_t
		if err := unix.Stat(cgroup, &st); err != nil {
			return syscallSet{}, fmt.Errorf("read cgroup id: %w", err)
		}
		return syscallSet{cgroupID: st.Ino}, nil
	}
	seen := map[int]bool{}
	var set syscallSet
	for _, tid := range tids {
		if g, err := tgidOf(tid); err == nil && !seen[g] {
			seen[g] = true
			set.tgids = append(set.tgids, g)
		}
	}
	return set, nil
}

// openSyscallTotal opens one inherited raw_syscalls:sys_enter counter per
// thread.
func openSyscallTotal(tracepoint uint64, tids []int) (*perfCounter, error) {
	c := &perfCounter{}
	for _, tid := range tids {
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_TRACEPOINT,
			Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Config: tracepoint,
			Bits:   unix.PerfBitInherit,
		}
		fd, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if errors.Is(err, unix.ESRCH) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			c.Close()
			return nil, &backends.NotSupportedError{Feature: "perf tracepoint counting", Reason: fmt.Sprintf("perf_event_open raw_syscalls:sys_enter: %v", err)}
		}
		c.fds = append(c.fds, fd)
	}
	if len(c.fds) == 0 {
		return nil, fmt.Errorf("open syscall counter: none of threads %v is alive", tids)
	}
	return c, nil
}

// tgidOf reads the process (thread group) a thread belongs to.
func tgidOf(tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("read /proc/%d/status: no Tgid line", tid)
}

// SyscallCount is one reading of the syscall counter: every syscall of the
// counted threads, and the same syscalls by name (OtherSyscalls for those
// outside the name table), or ByNameErr. ReadGap is how many syscalls the
// names counted while the total was being read: how far they may be from
// it at this reading.
type SyscallCount struct {
	Total     uint64
	ByName    map[string]uint64
	ByNameErr error
	ReadGap   uint64
}

// Sub is the count between reading b and reading c.
func (c SyscallCount) Sub(b SyscallCount) SyscallCount {
	d := SyscallCount{Total: c.Total - b.Total, ByName: make(map[string]uint64, len(c.ByName))}
	if b.ByNameErr != nil || c.ByNameErr != nil {
		d.ByNameErr = firstErr(b.ByNameErr, c.ByNameErr)
	}
	for n, v := range c.ByName {
		d.ByName[n] = v - b.ByName[n]
	}
	return d
}

// maxReadGap is how many syscalls may fall between the two map reads that
// bracket a reading of the total before it is taken again: the total is
// one read(2) per server thread, and a harness thread descheduled among
// them (it shares a CPU with the generator) lets the server run on.
const maxReadGap = 4

// readAttempts bounds the retries of a reading whose gap is wider.
const readAttempts = 4

// read reads the names, the total, and the names again: the total lies
// between the two readings of the names (the program counts a syscall
// before the perf counters do), so their difference, the reading's gap,
// bounds how far the names at this edge may be from the total. A wide gap
// is read again; the narrowest reading is kept.
func (c *syscallCounter) read() (SyscallCount, error) {
	if c.ids == nil {
		total, err := c.total.read()
		return SyscallCount{Total: total, ByNameErr: c.idsErr}, err
	}
	var best SyscallCount
	var bestIDs []uint64
	for attempt := 0; attempt < readAttempts; attempt++ {
		before := c.ids.read()
		total, err := c.total.read()
		if err != nil {
			return SyscallCount{}, err
		}
		after := c.ids.read()
		gap := sum(after) - sum(before)
		if bestIDs == nil || gap < best.ReadGap {
			best, bestIDs = SyscallCount{Total: total, ReadGap: gap}, after
		}
		if gap <= maxReadGap {
			break
		}
	}
	best.ByName = make(map[string]uint64, len(c.table)+1)
	named := make([]bool, len(bestIDs))
	for _, s := range c.table {
		best.ByName[s.name] = bestIDs[s.nr]
		named[s.nr] = true
	}
	var other uint64
	for nr, v := range bestIDs {
		if !named[nr] {
			other += v
		}
	}
	best.ByName[OtherSyscalls] = other
	return best, nil
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

func (c *syscallCounter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	tracepoints.Add(-1)
	if c.total != nil {
		c.total.Close()
	}
	if c.ids != nil {
		c.ids.Close()
	}
	return nil
}
