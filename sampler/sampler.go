package sampler

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/sampler/internal/perf"
)

// Defaults. 999 Hz rather than 1000 keeps the sampling timer from beating
// with the kernel's 250 Hz tick and with loops timed in whole milliseconds.
const (
	DefaultHz = 999
	// DefaultRingPages is each CPU's ring: 512 KiB at 4 KiB pages, about
	// half a second of samples with deep stacks at DefaultHz, drained
	// every drainEvery.
	DefaultRingPages = 128
	drainEvery       = 50 * time.Millisecond
	// maxProcesses bounds how many sampled processes Stop reads.
	maxProcesses = 512
)

// Event chooses the sampling event.
type Event string

const (
	// Auto samples hardware cycles where a PMU exists, else cpu-clock.
	Auto     Event = ""
	CPUClock Event = "cpu-clock"
	Cycles   Event = "cycles"
)

// Config is what a Sampler samples.
type Config struct {
	// CPUs are the server's cores: each is sampled whole, whatever runs
	// there (the server, softirqs, other tasks, the idle task).
	CPUs []int
	// PIDs are the server's processes: their user frames are app or
	// runtime; every other process's user code is Other.
	PIDs []int
	// Guests are processes expected on the cores beside the server (the
	// generator, on a machine too small to give it CPUs of its own): their
	// samples are classified as any other process's, but they are not
	// other tasks' noise (Breakdown.Foreign).
	Guests []int
	// Hz is each CPU's sampling rate; 0 means DefaultHz.
	Hz int
	// RingPages is each CPU's ring size in pages, a power of two; 0 means
	// DefaultRingPages.
	RingPages int
	Event     Event
}

// Sampler samples a set of CPUs over one window.
type Sampler struct {
	cfg    Config
	kind   perf.Kind
	events []*perf.Event
	kernel *symtab

	mu      sync.Mutex // guards raw and the events' rings
	raw     [][]byte   // per event: the records drained so far
	done    chan struct{}
	drainer sync.WaitGroup

	started, stopped time.Time
	records          perf.Records
	procs            map[uint32]*process
	// afterSyscall marks the user addresses, sampled in user mode, that
	// follow a syscall instruction (read from the server's memory at
	// Collect).
	afterSyscall map[pidIP]bool
	closed       bool
}

// Open opens a disabled sampling event per CPU and reads the kernel's
// symbols: everything slow happens here, before the window. Errors that
// say the machine cannot sample (not root, perf_event_open refused)
// match backends.ErrNotSupported.
func Open(cfg Config) (s *Sampler, err error) {
	if len(cfg.CPUs) == 0 {
		return nil, errors.New("open sampler: no CPUs")
	}
	if cfg.Hz == 0 {
		cfg.Hz = DefaultHz
	}
	if cfg.RingPages == 0 {
		cfg.RingPages = DefaultRingPages
	}
	s = &Sampler{cfg: cfg, done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.closeEvents()
		}
	}()
	if s.kernel, err = loadKallsyms(); err != nil {
		return nil, &backends.NotSupportedError{Feature: "kernel symbols for the sampler", Reason: err.Error()}
	}
	if s.kind, err = s.pickEvent(); err != nil {
		return nil, err
	}
	for _, cpu := range cfg.CPUs {
		ev, err := perf.OpenCPU(s.kind, cpu, cfg.Hz, cfg.RingPages)
		if err != nil {
			return nil, unsupported(err)
		}
		s.events = append(s.events, ev)
	}
	s.raw = make([][]byte, len(s.events))
	s.drainer.Add(1)
	go s.drain()
	return s, nil
}

// pickEvent resolves Auto by trying a cycles event on the first CPU.
func (s *Sampler) pickEvent() (perf.Kind, error) {
	switch s.cfg.Event {
	case CPUClock:
		return perf.CPUClock, nil
	case Cycles:
		return perf.Cycles, nil
	case Auto:
		ev, err := perf.OpenCPU(perf.Cycles, s.cfg.CPUs[0], s.cfg.Hz, 1)
		if err != nil {
			return perf.CPUClock, nil // no PMU (ENOENT on most VMs)
		}
		ev.Close()
		return perf.Cycles, nil
	}
	return 0, fmt.Errorf("open sampler: unknown event %q (want cpu-clock or cycles)", s.cfg.Event)
}

func unsupported(err error) error {
	for _, e := range []error{unix.EACCES, unix.EPERM, unix.ENOENT, unix.EOPNOTSUPP, unix.ENODEV, unix.ENOSYS} {
		if errors.Is(err, e) {
			return &backends.NotSupportedError{Feature: "perf_event_open sampling of a whole CPU", Reason: err.Error()}
		}
	}
	return fmt.Errorf("open sampler: %w", err)
}

// drain copies the rings out every drainEvery so that they never fill.
// It runs in the caller's process, not on the server's cores' path: a copy
// of what the kernel wrote, no decoding.
func (s *Sampler) drain() {
	defer s.drainer.Done()
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.drainAll()
		}
	}
}

func (s *Sampler) drainAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, ev := range s.events {
		s.raw[i] = ev.Drain(s.raw[i])
	}
}

// Start opens the window: one enable ioctl per CPU.
func (s *Sampler) Start() error {
	if !s.started.IsZero() {
		return errors.New("start sampler: already started")
	}
	s.started = time.Now()
	enabled.Add(1)
	for _, ev := range s.events {
		if err := ev.Enable(); err != nil {
			return fmt.Errorf("start sampler: %w", err)
		}
	}
	return nil
}

// Stop closes the window: its first act is one disable ioctl per CPU, so
// call it at the window's end; what follows is after the edge: the rings'
// last records are drained and decoded, and the sampled processes' names,
// mappings and symbols are read while they still live (call Stop before
// the server exits). Stop is Disable then Collect.
func (s *Sampler) Stop() error {
	return errors.Join(s.Disable(), s.Collect())
}

// Disable closes the window with one ioctl per CPU and nothing more: it is
// what a window's edge may afford.
func (s *Sampler) Disable() error {
	if s.started.IsZero() || !s.stopped.IsZero() {
		return errors.New("stop sampler: not started, or already stopped")
	}
	var errs []error
	for _, ev := range s.events {
		if err := ev.Disable(); err != nil {
			errs = append(errs, fmt.Errorf("stop sampler: %w", err))
		}
	}
	s.stopped = time.Now()
	enabled.Add(-1)
	return errors.Join(errs...)
}

// enabled counts this process's samplers between Start and Disable (or
// Close): whether a window was sampled is read from it at the window's
// edges (Sampling), not assumed from which window it was.
var enabled atomic.Int32

// Sampling says whether a sampler of this process is enabled.
func Sampling() bool { return enabled.Load() > 0 }

// Collect drains and decodes the rings and reads the sampled processes
// (their mappings and symbols), after Disable and before the server
// exits: milliseconds of work, kept off the window's edge.
func (s *Sampler) Collect() error {
	if s.stopped.IsZero() {
		return errors.New("collect samples: sampler not stopped")
	}
	if s.procs != nil {
		return nil // collected already
	}
	var errs []error
	s.drainAll()
	s.mu.Lock()
	for i := range s.raw {
		if err := perf.Decode(&s.records, s.raw[i]); err != nil {
			errs = append(errs, fmt.Errorf("stop sampler: cpu %d: %w", s.cfg.CPUs[i], err))
		}
		s.raw[i] = nil
	}
	s.mu.Unlock()
	s.procs = readProcesses(s.records.Samples)
	s.afterSyscall = s.readAfterSyscall()
	return errors.Join(errs...)
}

// pidIP is a user address in a process.
type pidIP struct {
	pid uint32
	ip  uint64
}

// readAfterSyscall looks, for every distinct user-mode leaf address of
// the server's samples, at the two bytes before it in the server's memory:
// 0f 05 is x86-64's syscall instruction. A process that cannot be read
// (gone, or another architecture) leaves its samples as they are.
func (s *Sampler) readAfterSyscall() map[pidIP]bool {
	if runtime.GOARCH != "amd64" {
		return nil
	}
	out := map[pidIP]bool{}
	files := map[uint32]*os.File{}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	var b [2]byte
	for i := range s.records.Samples {
		smp := &s.records.Samples[i]
		if len(smp.Kernel) != 0 || len(smp.User) == 0 || !s.isServer(smp.PID) {
			continue
		}
		k := pidIP{smp.PID, smp.User[0]}
		if _, seen := out[k]; seen || k.ip < 2 {
			continue
		}
		f, ok := files[smp.PID]
		if !ok {
			f, _ = os.Open(fmt.Sprintf("/proc/%d/mem", smp.PID))
			files[smp.PID] = f
		}
		out[k] = f != nil && readAt(f, b[:], int64(k.ip-2)) && b[0] == 0x0f && b[1] == 0x05
	}
	return out
}

func readAt(f *os.File, b []byte, off int64) bool {
	n, err := f.ReadAt(b, off)
	return err == nil && n == len(b)
}

// readProcesses reads each sampled process (but the idle task) once.
func readProcesses(samples []perf.Sample) map[uint32]*process {
	procs := map[uint32]*process{0: {comm: "swapper"}}
	users := map[uint32]bool{}
	for _, smp := range samples {
		if len(smp.User) > 0 {
			users[smp.PID] = true
		}
		if _, ok := procs[smp.PID]; !ok {
			procs[smp.PID] = nil
		}
	}
	cache := map[string]*elfSymbols{}
	n := 0
	for pid := range procs {
		if pid == 0 {
			continue
		}
		if n++; n > maxProcesses {
			procs[pid] = &process{comm: fmt.Sprintf("pid %d", pid)}
			continue
		}
		if users[pid] {
			procs[pid] = readProcess(int(pid), cache)
		} else {
			procs[pid] = readComm(int(pid))
		}
	}
	return procs
}

func readComm(pid int) *process {
	p := &process{comm: fmt.Sprintf("pid %d", pid)}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		p.comm = string(trimNewline(b))
	}
	return p
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Close frees the events and rings; it is safe to call more than once.
func (s *Sampler) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.started.IsZero() && s.stopped.IsZero() {
		enabled.Add(-1) // closing its events stops it
	}
	close(s.done)
	s.drainer.Wait()
	return s.closeEvents()
}

func (s *Sampler) closeEvents() error {
	var errs []error
	for _, ev := range s.events {
		errs = append(errs, ev.Close())
	}
	s.events = nil
	return errors.Join(errs...)
}

// Event names the event sampled ("cpu-clock" or "cycles").
func (s *Sampler) Event() string { return s.kind.String() }

// isServer says whether pid is one of the server's processes.
func (s *Sampler) isServer(pid uint32) bool {
	return pid != 0 && slices.Contains(s.cfg.PIDs, int(pid))
}

// isGuest says whether pid is expected on the cores beside the server.
func (s *Sampler) isGuest(pid uint32) bool {
	return pid != 0 && slices.Contains(s.cfg.Guests, int(pid))
}
