package meters

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// perfCounter is a set of perf_event_open counters read as one sum.
type perfCounter struct {
	fds    []int
	scaled bool // read format carries time_enabled and time_running
}

// read sums the counters. A scaled counter that was multiplexed off the
// PMU for part of the window is extrapolated by enabled/running, as perf
// stat does; one that never ran is an error, not a zero.
func (c *perfCounter) read() (uint64, error) {
	var sum uint64
	var buf [24]byte
	want := 8
	if c.scaled {
		want = 24
	}
	for _, fd := range c.fds {
		n, err := unix.Read(fd, buf[:want])
		if err != nil {
			return 0, fmt.Errorf("read perf counter: %w", err)
		}
		if n == 0 {
			// perf_event_open(2): a pinned event that cannot stay on its
			// PMU goes into an error state, and read then returns 0 bytes.
			return 0, errPinnedLost
		}
		if n != want {
			return 0, fmt.Errorf("read perf counter: short read of %d bytes, want %d", n, want)
		}
		v := binary.NativeEndian.Uint64(buf[:8])
		if c.scaled {
			enabled := binary.NativeEndian.Uint64(buf[8:16])
			running := binary.NativeEndian.Uint64(buf[16:24])
			s, err := scale(v, enabled, running)
			if err != nil {
				return 0, err
			}
			v = s
		}
		sum += v
	}
	return sum, nil
}

// errPinnedLost is the read of a pinned counter that left its PMU: its
// count stopped, so it must not be published as a (too small) figure.
var errPinnedLost = errors.New("read perf counter: 0 bytes: the pinned event is in error state (it could not stay on its PMU)")

// scale extrapolates a multiplexed count to the time it was enabled:
// v × enabled / running, in 128-bit arithmetic so that no count loses
// precision. A counter enabled for no time yet has counted nothing.
func scale(v, enabled, running uint64) (uint64, error) {
	switch {
	case enabled == 0:
		return 0, nil
	case running == 0:
		return 0, errors.New("read perf counter: never scheduled on the PMU (multiplexed out)")
	case running == enabled:
		return v, nil
	}
	hi, lo := bits.Mul64(v, enabled)
	if hi >= running {
		return 0, fmt.Errorf("read perf counter: %d × %d / %d overflows 64 bits", v, enabled, running)
	}
	q, _ := bits.Div64(hi, lo, running)
	return q, nil
}

func (c *perfCounter) Close() error {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
	return nil
}

// tracefsDirs are where tracefs is found, newest convention first.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// TracepointID returns the id of a tracepoint ("raw_syscalls/sys_enter"),
// mounting tracefs at /sys/kernel/tracing if no tracefs is mounted.
func TracepointID(name string) (uint64, error) {
	read := func() (uint64, error) {
		var lastErr error
		for _, d := range tracefsDirs {
			b, err := os.ReadFile(d + "/events/" + name + "/id")
			if err != nil {
				lastErr = err
				continue
			}
			return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
		return 0, lastErr
	}
	id, err := read()
	if err == nil {
		return id, nil
	}
	if os.Geteuid() != 0 {
		return 0, &backends.NotSupportedError{Feature: "tracepoint " + name, Reason: "tracefs not readable and mounting it needs root"}
	}
	if merr := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); merr != nil && !errors.Is(merr, unix.EBUSY) {
		return 0, &backends.NotSupportedError{Feature: "tracepoint " + name, Reason: fmt.Sprintf("mount tracefs: %v", merr)}
	}
	id, err = read()
	if err != nil {
		return 0, &backends.NotSupportedError{Feature: "tracepoint " + name, Reason: err.Error()}
	}
	return id, nil
}

// perfEvent names a perf_event_open event by its type and config.
type perfEvent struct {
	Type   uint32
	Config uint64
}

// hardwareCycles is the event the cycle meter counts. Tests count the
// software cpu-clock event instead (Target.cycleEvent), where no PMU exists,
// so that the same open, read, scale and derive path runs.
var hardwareCycles = perfEvent{Type: unix.PERF_TYPE_HARDWARE, Config: unix.PERF_COUNT_HW_CPU_CYCLES}

// cycleAttr is the attribute of one CPU's cycle counter: pinned, so that
// the kernel never multiplexes it off the PMU silently (a pinned event that
// cannot be scheduled goes into an error state, which read reports), and
// read with the times it was enabled and running, to scale a count that
// was multiplexed all the same.
func cycleAttr(ev perfEvent) unix.PerfEventAttr {
	return unix.PerfEventAttr{
		Type:        ev.Type,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config:      ev.Config,
		Read_format: unix.PERF_FORMAT_TOTAL_TIME_ENABLED | unix.PERF_FORMAT_TOTAL_TIME_RUNNING,
		Bits:        unix.PerfBitPinned,
	}
}

// openCycleCounter counts ev (hardware CPU cycles in production) on each
// of cpus, whatever runs there (the server, its softirqs, anything else).
// It fails with ErrNotSupported where the machine has no PMU (most VMs).
func openCycleCounter(cpus []int, ev perfEvent) (*perfCounter, error) {
	c := &perfCounter{scaled: true}
	for _, cpu := range cpus {
		attr := cycleAttr(ev)
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			c.Close()
			return nil, &backends.NotSupportedError{Feature: "hardware cycle counter", Reason: fmt.Sprintf("perf_event_open %s on cpu %d: %v", ev, cpu, err)}
		}
		c.fds = append(c.fds, fd)
	}
	return c, nil
}

func (ev perfEvent) String() string {
	if ev == hardwareCycles {
		return "cycles"
	}
	return fmt.Sprintf("event type %d config %d", ev.Type, ev.Config)
}

// ProbeSyscallCounting says whether the syscall tracepoint can be counted
// per thread here (it attaches to this process for an instant), and, in
// byName, whether the by-name program loads too.
func ProbeSyscallCounting() (byName, err error) {
	c, err := openSyscallCounter([]int{os.Getpid()}, "")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.idsErr, nil
}

// ProbeCycles says whether a hardware cycle counter opens on cpu.
func ProbeCycles(cpu int) error {
	c, err := openCycleCounter([]int{cpu}, hardwareCycles)
	if err == nil {
		c.Close()
	}
	return err
}

// CountOwnSyscalls makes n getppid syscalls on one locked thread with the
// tracepoint counter attached to that thread, and returns what the counter
// saw: the syscall meter's ground truth (n, plus the counter's own read).
func CountOwnSyscalls(n int) (uint64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c, err := openSyscallCounter([]int{unix.Gettid()}, "")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	before, err := c.total.read()
	if err != nil {
		return 0, err
	}
	for range n {
		unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	}
	after, err := c.total.read()
	if err != nil {
		return 0, err
	}
	return after - before, nil
}
