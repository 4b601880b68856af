package meters

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
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
// threads call, and the meters' ground truth (getppid, getpid). A syscall
// outside it is counted as "other", never lost. Each name costs one filtered
// event per server thread on every syscall of the counting window, so the
// table stays about as long as what these servers make.
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
	{"gettid", unix.SYS_GETTID},
	{"clock_gettime", unix.SYS_CLOCK_GETTIME},
}

// syscallTable is the name table of this architecture, in the order of
// the counters in each thread's group.
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

// syscallFilters are the tracepoint filters of the by-name counters: one
// "id == N" per name and, last, "other": every id the names do not cover.
// The filters are disjoint and cover every id, so the by-name counts sum
// to the unfiltered leader's.
func syscallFilters(table []sysName) (names, filters []string) {
	var other []string
	for _, s := range table {
		names = append(names, s.name)
		filters = append(filters, fmt.Sprintf("id == %d", s.nr))
		other = append(other, fmt.Sprintf("id != %d", s.nr))
	}
	return append(names, OtherSyscalls), append(filters, strings.Join(other, " && "))
}

// syscallGroup is one thread's counters: a perf event group whose leader
// counts every raw_syscalls:sys_enter and whose members count one name
// each. A group is read with one read(2) that returns every member's count
// at (nearly) one instant, so the names and the total come from the same
// reading.
type syscallGroup struct {
	fds  []int          // fds[0] is the leader
	slot map[uint64]int // perf event id → index in fds
	buf  []byte
}

// syscallCounter counts raw_syscalls:sys_enter for a set of threads, in
// total and by name.
//
// Why counters with filters (PERF_EVENT_IOC_SET_FILTER "id == N") rather
// than one sampled event whose ring carries each syscall's id: a counter
// cannot lose a count (a ring under load drops samples, and a count from
// a ring with drops is wrong), needs no reader draining a ring beside the
// generator, and inherits into threads the server makes after the window
// opened (the kernel refuses to mmap the ring of an inherited per-thread
// event). Its price is one event per name per thread (file descriptors:
// threads × (names + 2)) and one filter evaluation per name on each of
// the server's syscalls while counting, which syscall_meter_effect, the
// counting window's cycles/op against the cost window's, measures.
type syscallCounter struct {
	groups []*syscallGroup
	names  []string // member i+1 of every group counts names[i]
}

// syscallAttr is a raw_syscalls:sys_enter counter that follows the threads
// its thread makes (inherit) and reads as a group with event ids.
func syscallAttr(tracepoint uint64, disabled bool) unix.PerfEventAttr {
	attr := unix.PerfEventAttr{
		Type:        unix.PERF_TYPE_TRACEPOINT,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config:      tracepoint,
		Read_format: unix.PERF_FORMAT_GROUP | unix.PERF_FORMAT_ID,
		Bits:        unix.PerfBitInherit,
	}
	if disabled {
		attr.Bits |= unix.PerfBitDisabled
	}
	return attr
}

// errThreadGone is a thread that exited before its counters opened.
var errThreadGone = errors.New("thread exited")

// openSyscallGroup opens one thread's group: the leader disabled, each
// member with its filter set, and only then the leader enabled, so that
// no member ever counts unfiltered.
func openSyscallGroup(tracepoint uint64, tid int, filters []string) (g *syscallGroup, err error) {
	g = &syscallGroup{slot: map[uint64]int{}}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	attr := syscallAttr(tracepoint, true)
	leader, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if errors.Is(err, unix.ESRCH) {
		return nil, errThreadGone
	}
	if err != nil {
		return nil, fmt.Errorf("perf_event_open raw_syscalls:sys_enter: %w", err)
	}
	if err := g.add(leader); err != nil {
		return nil, err
	}
	for _, f := range filters {
		attr := syscallAttr(tracepoint, false)
		fd, err := unix.PerfEventOpen(&attr, tid, -1, leader, unix.PERF_FLAG_FD_CLOEXEC)
		if errors.Is(err, unix.ESRCH) {
			return nil, errThreadGone
		}
		if err != nil {
			return nil, fmt.Errorf("perf_event_open raw_syscalls:sys_enter with filter %q: %w", f, err)
		}
		if err := g.add(fd); err != nil {
			return nil, err
		}
		if err := setFilter(fd, f); err != nil {
			return nil, err
		}
	}
	if err := unix.IoctlSetInt(leader, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		return nil, fmt.Errorf("enable syscall counters: %w", err)
	}
	g.buf = make([]byte, 8+16*len(g.fds))
	return g, nil
}

// add keeps fd and the event id a group read names it by.
func (g *syscallGroup) add(fd int) error {
	g.fds = append(g.fds, fd)
	var id uint64
	if err := ioctlPtr(fd, unix.PERF_EVENT_IOC_ID, unsafe.Pointer(&id)); err != nil {
		return fmt.Errorf("read perf event id: %w", err)
	}
	g.slot[id] = len(g.fds) - 1
	return nil
}

// setFilter sets a tracepoint event's ftrace filter.
func setFilter(fd int, filter string) error {
	p, err := unix.BytePtrFromString(filter)
	if err != nil {
		return fmt.Errorf("set tracepoint filter %q: %w", filter, err)
	}
	if err := ioctlPtr(fd, unix.PERF_EVENT_IOC_SET_FILTER, unsafe.Pointer(p)); err != nil {
		return fmt.Errorf("set tracepoint filter %q: %w", filter, err)
	}
	return nil
}

// readInto adds the group's counts (inherited threads' included: a group
// read sums each event's children) to counts, slot by slot.
func (g *syscallGroup) readInto(counts []uint64) error {
	n, err := unix.Read(g.fds[0], g.buf)
	if err != nil {
		return fmt.Errorf("read syscall counters: %w", err)
	}
	if n != len(g.buf) {
		return fmt.Errorf("read syscall counters: %d bytes, want %d", n, len(g.buf))
	}
	if nr := binary.NativeEndian.Uint64(g.buf); nr != uint64(len(g.fds)) {
		return fmt.Errorf("read syscall counters: %d events in the group, want %d", nr, len(g.fds))
	}
	for i := range g.fds {
		v := binary.NativeEndian.Uint64(g.buf[8+16*i:])
		id := binary.NativeEndian.Uint64(g.buf[16+16*i:])
		s, ok := g.slot[id]
		if !ok {
			return fmt.Errorf("read syscall counters: unknown event id %d", id)
		}
		counts[s] += v
	}
	return nil
}

func (g *syscallGroup) close() {
	// Members first: closing a leader first would promote each member to
	// a group of its own, counting on for an instant.
	for i := len(g.fds) - 1; i >= 0; i-- {
		unix.Close(g.fds[i])
	}
	g.fds = nil
}

// openSyscallCounter counts raw_syscalls:sys_enter for every given thread
// and (inherit) for threads they create later, in total and by name.
// Attaching the tracepoint turns on the slow syscall path of every task on
// the machine, so it is attached only in counting windows, never in cost
// windows.
func openSyscallCounter(tids []int) (*syscallCounter, error) {
	id, err := TracepointID("raw_syscalls/sys_enter")
	if err != nil {
		return nil, err
	}
	names, filters := syscallFilters(syscallTable())
	c := &syscallCounter{names: names}
	for _, tid := range tids {
		g, err := openSyscallGroup(id, tid, filters)
		if errors.Is(err, errThreadGone) {
			continue
		}
		if err != nil {
			c.Close()
			return nil, &backends.NotSupportedError{Feature: "perf tracepoint counting", Reason: err.Error()}
		}
		c.groups = append(c.groups, g)
	}
	if len(c.groups) == 0 {
		return nil, fmt.Errorf("open syscall counter: none of threads %v is alive", tids)
	}
	return c, nil
}

// SyscallCount is one reading of the syscall counter: every syscall of the
// counted threads, and the same syscalls by name (OtherSyscalls for those
// outside the name table).
type SyscallCount struct {
	Total  uint64
	ByName map[string]uint64
}

// Sub is the count between reading b and reading c.
func (c SyscallCount) Sub(b SyscallCount) SyscallCount {
	d := SyscallCount{Total: c.Total - b.Total, ByName: make(map[string]uint64, len(c.ByName))}
	for n, v := range c.ByName {
		d.ByName[n] = v - b.ByName[n]
	}
	return d
}

// read sums every thread's group.
func (c *syscallCounter) read() (SyscallCount, error) {
	counts := make([]uint64, len(c.names)+1)
	for _, g := range c.groups {
		if err := g.readInto(counts); err != nil {
			return SyscallCount{}, err
		}
	}
	sc := SyscallCount{Total: counts[0], ByName: make(map[string]uint64, len(c.names))}
	for i, n := range c.names {
		sc.ByName[n] = counts[i+1]
	}
	return sc, nil
}

// fds is how many perf events the counter holds open.
func (c *syscallCounter) fds() int {
	n := 0
	for _, g := range c.groups {
		n += len(g.fds)
	}
	return n
}

func (c *syscallCounter) Close() error {
	for _, g := range c.groups {
		g.close()
	}
	c.groups = nil
	return nil
}

// ioctlPtr is an ioctl whose argument is a pointer (x/sys/unix wraps only
// some of them).
func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
