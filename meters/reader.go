package meters

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// Target says what a Reader measures.
type Target struct {
	// PID is the server process. Its /proc/PID/net files are its network
	// namespace's, whatever namespace the harness is in.
	PID int
	// Cgroup is the server's cgroup v2 directory, or "" when the server
	// could not be put in one; then CPU time comes from the threads of its
	// process tree (exited threads lost).
	Cgroup string
	// ServerCPUs carry the cycle counter where a PMU exists.
	ServerCPUs []int
	// Counters reads the backend's own counters (a round trip to the
	// server); nil for servers without any.
	Counters func() (backends.Counters, error)

	// cycleEvent is what the cycle meter counts. Its zero value is
	// hardware cycles (PERF_TYPE_HARDWARE and PERF_COUNT_HW_CPU_CYCLES are
	// both 0); tests set the software cpu-clock event, on a machine
	// without a PMU.
	cycleEvent perfEvent
}

// Reader reads the meters of one server. Its files stay open between
// reads: a snapshot is a few preads, no process, no /proc scan (but the
// thread list of a server without cgroup).
type Reader struct {
	t Target

	cores             *CoresReader
	snmp, netdev      *procFile
	cgCPU, cgPressure *procFile

	// tree is the server's process tree when it has no cgroup, found once
	// (scanning /proc at every snapshot would cost milliseconds), srvThreads
	// its threads' files, kept open.
	tree       []int
	srvThreads *serverThreads

	cycles    *perfCounter
	cyclesErr error
	syscalls  *syscallCounter
	sysErr    error
}

// procFile is a kernel file read again and again with pread at offset 0:
// seq_file regenerates its content on every read from the start.
type procFile struct {
	path string
	fd   int
	buf  []byte
}

func openProcFile(path string) (*procFile, error) { return openProcFileSize(path, 16<<10) }

// openProcFileSize starts with a buffer of size bytes; it grows as needed.
func openProcFileSize(path string, size int) (*procFile, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &procFile{path: path, fd: fd, buf: make([]byte, size)}, nil
}

func (f *procFile) read() ([]byte, error) {
	// A seq_file may return fewer bytes than asked at any point (a record
	// that does not fit is left for the next read): read until EOF.
	n := 0
	for {
		if n == len(f.buf) {
			f.buf = append(f.buf, make([]byte, len(f.buf))...)
		}
		k, err := unix.Pread(f.fd, f.buf[n:], int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.path, err)
		}
		if k == 0 {
			return f.buf[:n], nil
		}
		n += k
	}
}

func (f *procFile) close() {
	if f != nil {
		unix.Close(f.fd)
	}
}

// NewReader opens the files the meters read. It must run while the server
// lives; the cycle counter opens here (before the warm-up), the syscall
// counter only when CountSyscalls asks for it.
func NewReader(t Target) (_ *Reader, err error) {
	// r is closed on every error: a named result would be nil by then.
	r := &Reader{t: t}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.cores, err = NewCoresReader(); err != nil {
		return nil, err
	}
	net := filepath.Join("/proc", strconv.Itoa(t.PID), "net")
	if r.snmp, err = openProcFile(filepath.Join(net, "snmp")); err != nil {
		return nil, err
	}
	if r.netdev, err = openProcFile(filepath.Join(net, "dev")); err != nil {
		return nil, err
	}
	if t.Cgroup != "" {
		if r.cgCPU, err = openProcFile(filepath.Join(t.Cgroup, "cpu.stat")); err != nil {
			return nil, err
		}
		// PSI may be compiled out; run delay is then not reported.
		r.cgPressure, _ = openProcFile(filepath.Join(t.Cgroup, "cpu.pressure"))
	} else {
		if r.tree, err = ProcessTree(t.PID); err != nil {
			return nil, err
		}
		if r.srvThreads, err = openServerThreads("/proc", r.tree); err != nil {
			return nil, err
		}
	}
	r.cycles, r.cyclesErr = openCycleCounter(t.ServerCPUs, t.cycleEvent)
	r.sysErr = ErrNotCounted
	return r, nil
}

// PID is the server's process id.
func (r *Reader) PID() int { return r.t.PID }

// HasPMU says whether cycles come from a hardware counter.
func (r *Reader) HasPMU() bool { return r.cycles != nil }

// CyclesErr says why there is no hardware cycle counter.
func (r *Reader) CyclesErr() error { return r.cyclesErr }

// CountSyscalls attaches the raw_syscalls:sys_enter tracepoint to every
// thread of the server (and, by inheritance, to threads it makes later),
// counting every syscall and the same syscalls by name.
// From then on every syscall on the machine takes the slow path: call it
// only for a counting window.
func (r *Reader) CountSyscalls() error {
	if r.syscalls != nil {
		return nil
	}
	tids := r.threads()
	r.syscalls, r.sysErr = openSyscallCounter(tids, r.t.Cgroup)
	return r.sysErr
}

// StopCountingSyscalls detaches the tracepoint.
func (r *Reader) StopCountingSyscalls() {
	if r.syscalls != nil {
		r.syscalls.Close()
		r.syscalls = nil
	}
	r.sysErr = ErrNotCounted
}

// threads lists the server's threads: its cgroup's, else its process
// tree's.
func (r *Reader) threads() []int {
	if r.t.Cgroup != "" {
		if b, err := os.ReadFile(filepath.Join(r.t.Cgroup, "cgroup.threads")); err == nil {
			return parseInts(b)
		}
	}
	return TasksOf(r.tree)
}

// Close releases every file and counter.
func (r *Reader) Close() {
	r.cores.Close()
	for _, f := range []*procFile{r.snmp, r.netdev, r.cgCPU, r.cgPressure} {
		f.close()
	}
	r.srvThreads.close()
	if r.cycles != nil {
		r.cycles.Close()
	}
	r.StopCountingSyscalls()
}

// Read takes a snapshot: the cheap kernel counters back to back, then the
// backend's own counters (a round trip) when withCounters is set. Read the
// same way at both edges, every meter spans a window of the same length.
// ReadCountersFirst reverses the order, for a generator that pauses while
// the meters are read and opens its window after them: the cheap reads
// then sit next to the window's start.
func (r *Reader) Read(withCounters bool) Snapshot {
	s := r.readCheap()
	r.readCounters(&s, withCounters)
	return s
}

// ReadCountersFirst is Read with the backend's counters read first.
func (r *Reader) ReadCountersFirst() Snapshot {
	var c Snapshot
	r.readCounters(&c, true)
	s := r.readCheap()
	s.Counters, s.CountersErr = c.Counters, c.CountersErr
	return s
}

func (r *Reader) readCounters(s *Snapshot, withCounters bool) {
	s.CountersErr = errNoCountersRead
	if withCounters && r.t.Counters != nil {
		s.Counters, s.CountersErr = r.t.Counters()
	} else if r.t.Counters == nil {
		s.CountersErr = errNoBackendCounters
	}
}

func (r *Reader) readCheap() Snapshot {
	var s Snapshot
	t0 := Now()
	var b []byte
	r.cores.readInto(&s)
	if r.cgCPU != nil {
		if b, s.ServerCPUErr = r.cgCPU.read(); s.ServerCPUErr == nil {
			s.ServerCPU, s.ServerCPUErr = ParseCgroupCPU(b)
		}
		s.RunDelayErr = errNoPressure
		if r.cgPressure != nil {
			if b, s.RunDelayErr = r.cgPressure.read(); s.RunDelayErr == nil {
				s.RunDelay, s.RunDelayErr = ParsePressure(b)
			}
		}
	} else {
		s.ServerCPU, s.RunDelay, s.Threads, s.ServerCPUErr = r.srvThreads.read()
		s.RunDelayErr = s.ServerCPUErr
	}
	if b, s.SNMPErr = r.snmp.read(); s.SNMPErr == nil {
		s.SNMP, s.SNMPErr = ParseSNMP(b)
	}
	if b, s.LinkErr = r.netdev.read(); s.LinkErr == nil {
		s.Links, s.LinkErr = ParseNetDev(b)
	}
	s.SyscallsErr = r.sysErr
	s.Traced = Tracing()
	if r.syscalls != nil {
		var c SyscallCount
		if c, s.SyscallsErr = r.syscalls.read(); s.SyscallsErr == nil {
			s.Syscalls, s.SyscallsByName, s.SyscallsByNameErr, s.SyscallsReadGap = c.Total, c.ByName, c.ByNameErr, c.ReadGap
		}
	}
	s.CyclesErr = r.cyclesErr
	if r.cycles != nil {
		s.Cycles, s.CyclesErr = r.cycles.read()
	}
	t1 := Now()
	s.At, s.ReadTook = t0+(t1-t0)/2, t1-t0
	return s
}

var (
	errNoCountersRead    = errors.New("backend counters not read")
	errNoBackendCounters = errors.New("the server reports no counters of its own")
	errNoPressure        = errors.New("the cgroup has no cpu.pressure (PSI compiled out)")
)

// Now is CLOCK_MONOTONIC as a duration, read through the vDSO.
func Now() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}
