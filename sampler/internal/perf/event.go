package perf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SampleType is the fixed record layout every event here asks for; Decode
// relies on it. PERIOD is there because a frequency-driven hardware event
// varies its period, and a sample's weight is its period.
const SampleType = unix.PERF_SAMPLE_IP | unix.PERF_SAMPLE_TID | unix.PERF_SAMPLE_TIME |
	unix.PERF_SAMPLE_CPU | unix.PERF_SAMPLE_PERIOD | unix.PERF_SAMPLE_CALLCHAIN

// Kind says which clock drives an event.
type Kind int

const (
	// CPUClock is the cpu-clock software event: an hrtimer per CPU, period
	// in nanoseconds. It works without a PMU (VMs).
	CPUClock Kind = iota
	// Cycles is the hardware cycles event, frequency driven.
	Cycles
)

func (k Kind) String() string {
	if k == Cycles {
		return "cycles"
	}
	return "cpu-clock"
}

// Event is one sampling event on one CPU with its mapped ring.
type Event struct {
	fd   int
	mem  []byte                  // the whole mapping: metadata page + data
	meta *unix.PerfEventMmapPage // first page of mem
	data []byte                  // the data area, a power of two in size
}

// OpenCPU opens kind on cpu sampling hz times a second (cpu-clock: a fixed
// period of 1e9/hz ns; cycles: the kernel adapts the period to hz), with
// kernel and user call chains, disabled, and maps a ring of pages data
// pages (a power of two).
func OpenCPU(kind Kind, cpu, hz, pages int) (ev *Event, err error) {
	if hz <= 0 {
		return nil, fmt.Errorf("open perf event: rate %d Hz, want > 0", hz)
	}
	if pages <= 0 || pages&(pages-1) != 0 {
		return nil, fmt.Errorf("open perf event: ring of %d pages, want a power of two", pages)
	}
	attr := unix.PerfEventAttr{
		Type:        unix.PERF_TYPE_SOFTWARE,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config:      unix.PERF_COUNT_SW_CPU_CLOCK,
		Sample:      uint64(1e9 / hz),
		Sample_type: SampleType,
		// Disabled until the window opens. Idle is not excluded: the idle
		// task's samples are how the profile tells a halted core from a
		// busy one. Wakeup is left at one record: the reader polls on a
		// timer and never waits on the fd, so wake-ups are not asked for.
		Bits: unix.PerfBitDisabled,
	}
	if kind == Cycles {
		attr.Type = unix.PERF_TYPE_HARDWARE
		attr.Config = unix.PERF_COUNT_HW_CPU_CYCLES
		attr.Sample = uint64(hz)
		attr.Bits |= unix.PerfBitFreq
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("perf_event_open %s on cpu %d: %w", kind, cpu, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	page := unix.Getpagesize()
	mem, err := unix.Mmap(fd, 0, (1+pages)*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap perf ring of %d pages on cpu %d: %w", pages, cpu, err)
	}
	ev = &Event{fd: fd, mem: mem, meta: (*unix.PerfEventMmapPage)(unsafe.Pointer(&mem[0]))}
	off, size := ev.meta.Data_offset, ev.meta.Data_size
	if off == 0 || size == 0 { // kernels before 4.1 leave them zero
		off, size = uint64(page), uint64(pages*page)
	}
	ev.data = mem[off : off+size]
	return ev, nil
}

// Enable starts sampling (one ioctl).
func (e *Event) Enable() error {
	return ioctl(e.fd, unix.PERF_EVENT_IOC_ENABLE)
}

// Disable stops sampling (one ioctl); records already written stay in the
// ring for Drain.
func (e *Event) Disable() error {
	return ioctl(e.fd, unix.PERF_EVENT_IOC_DISABLE)
}

func ioctl(fd int, req uint) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), 0); errno != 0 {
		return fmt.Errorf("ioctl perf event: %w", errno)
	}
	return nil
}

// Drain appends the bytes the kernel wrote since the last Drain to dst and
// gives their space back to the kernel. The bytes are whole records: the
// kernel advances data_head only past complete ones. Drain must not run
// concurrently with itself or Close on the same Event.
func (e *Event) Drain(dst []byte) []byte {
	// data_head is written by the kernel on any CPU; the atomic load is the
	// read barrier perf_event.h asks for before reading the data.
	head := atomic.LoadUint64(&e.meta.Data_head)
	tail := e.meta.Data_tail
	size := uint64(len(e.data))
	for tail < head {
		start := tail % size
		n := min(head-tail, size-start) // up to the wrap, then from the start
		dst = append(dst, e.data[start:start+n]...)
		tail += n
	}
	// The store that frees the space must follow the copies.
	atomic.StoreUint64(&e.meta.Data_tail, tail)
	return dst
}

// Close unmaps the ring and closes the event.
func (e *Event) Close() error {
	var errs []error
	if e.mem != nil {
		if err := unix.Munmap(e.mem); err != nil {
			errs = append(errs, fmt.Errorf("munmap perf ring: %w", err))
		}
		e.mem, e.meta, e.data = nil, nil, nil
	}
	if e.fd >= 0 {
		if err := unix.Close(e.fd); err != nil {
			errs = append(errs, fmt.Errorf("close perf event: %w", err))
		}
		e.fd = -1
	}
	return errors.Join(errs...)
}
