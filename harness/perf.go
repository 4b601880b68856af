package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// perfCounter is a set of perf_event_open counters read as one sum.
type perfCounter struct {
	fds []int
}

func (c *perfCounter) read() (uint64, error) {
	var sum uint64
	var buf [8]byte
	for _, fd := range c.fds {
		n, err := unix.Read(fd, buf[:])
		if err != nil {
			return 0, fmt.Errorf("read perf counter: %w", err)
		}
		if n != 8 {
			return 0, fmt.Errorf("read perf counter: short read of %d bytes", n)
		}
		sum += binary.NativeEndian.Uint64(buf[:])
	}
	return sum, nil
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

// tracepointID returns the id of a tracepoint ("raw_syscalls/sys_enter"),
// mounting tracefs at /sys/kernel/tracing if no tracefs is mounted.
func tracepointID(name string) (uint64, error) {
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

// openSyscallCounter counts raw_syscalls:sys_enter for every thread of the
// given processes, and (inherit) for threads they create later. Counting runs
// in the kernel: the server pays nothing for being counted beyond the
// tracepoint's own cost.
func openSyscallCounter(pids []int) (*perfCounter, error) {
	id, err := tracepointID("raw_syscalls/sys_enter")
	if err != nil {
		return nil, err
	}
	c := &perfCounter{}
	for _, tid := range tasksOf(pids) {
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_TRACEPOINT,
			Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Config: id,
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
		return nil, fmt.Errorf("open syscall counter: no thread of pids %v", pids)
	}
	return c, nil
}

// openCycleCounter counts hardware CPU cycles on each of cpus, whatever
// runs there (the server, its softirqs, anything else). It fails with
// ErrNotSupported where the machine has no PMU (most VMs).
func openCycleCounter(cpus []int) (*perfCounter, error) {
	c := &perfCounter{}
	for _, cpu := range cpus {
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_HARDWARE,
			Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Config: unix.PERF_COUNT_HW_CPU_CYCLES,
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			c.Close()
			return nil, &backends.NotSupportedError{Feature: "hardware cycle counter", Reason: fmt.Sprintf("perf_event_open cycles on cpu %d: %v", cpu, err)}
		}
		c.fds = append(c.fds, fd)
	}
	return c, nil
}
