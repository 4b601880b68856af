package sampler

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Wake says what ends a DutyCycle's wait, which decides who does the
// waking work on the sampled CPU.
type Wake string

const (
	// WakeTimer sleeps (nanosleep): the thread's own timer, on the
	// sampled CPU, wakes it.
	WakeTimer Wake = "timer"
	// WakePeer blocks reading a pipe that a thread on another CPU writes
	// once a period: the wake-up arrives as an IPI, as a packet from the
	// generator's CPU does to a server.
	WakePeer Wake = "peer"
)

// DutyCycle is a load whose busy time is known, to check the sampler
// against: a thread pinned to CPU spins for Spin of its own CPU time, then
// waits, again and again. With WakeTimer it sleeps for Wait; with WakePeer
// a thread pinned to PeerCPU wakes it every Spin+Wait.
type DutyCycle struct {
	CPU, PeerCPU int
	Spin, Wait   time.Duration
	Wake         Wake
}

// DutyResult is what a DutyCycle's thread did between its start and its
// stop.
type DutyResult struct {
	TID int
	// Busy is the thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) from the
	// first spin to the stop: the ground truth.
	Busy   time.Duration
	Cycles int
}

func (d DutyCycle) String() string {
	return fmt.Sprintf("spin %v, wait %v (%s) on cpu %d", d.Spin, d.Wait, d.Wake, d.CPU)
}

// DutyRun is a running DutyCycle.
type DutyRun struct {
	tid    int
	cycles atomic.Int64 // spins begun
	up     chan int
	stop   chan struct{}
	done   chan dutyDone
}

type dutyDone struct {
	res DutyResult
	err error
}

// Start starts the duty cycle's threads; the thread's TID is known once
// Start returns. Stop ends it.
func (d DutyCycle) Start() (*DutyRun, error) {
	if d.Spin <= 0 || d.Wait <= 0 {
		return nil, fmt.Errorf("start duty cycle: spin %v and wait %v, want both > 0", d.Spin, d.Wait)
	}
	if d.Wake != WakeTimer && d.Wake != WakePeer {
		return nil, fmt.Errorf("start duty cycle: wake %q, want timer or peer", d.Wake)
	}
	if d.Wake == WakePeer && d.PeerCPU == d.CPU {
		return nil, fmt.Errorf("start duty cycle: the peer must wake cpu %d from another cpu", d.CPU)
	}
	r := &DutyRun{up: make(chan int, 1), stop: make(chan struct{}), done: make(chan dutyDone, 1)}
	go r.spin(d)
	select {
	case r.tid = <-r.up:
		return r, nil
	case dd := <-r.done:
		return nil, dd.err
	}
}

// TID is the spinning thread's id: its samples are the ones with this TID.
func (r *DutyRun) TID() int { return r.tid }

// Stop ends the duty cycle and returns what the thread did.
func (r *DutyRun) Stop() (DutyResult, error) {
	close(r.stop)
	dd := <-r.done
	return dd.res, dd.err
}

// spin is the duty cycle's thread. The pin is undone before the thread is
// handed back to the runtime.
func (r *DutyRun) spin(d DutyCycle) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := pinThread(d.CPU)
	if err != nil {
		r.done <- dutyDone{err: fmt.Errorf("run duty cycle: %w", err)}
		return
	}
	defer restore()
	var wait func() error
	switch d.Wake {
	case WakeTimer:
		ts := unix.NsecToTimespec(d.Wait.Nanoseconds())
		wait = func() error { return ignoreEINTR(unix.Nanosleep(&ts, nil)) }
	case WakePeer:
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			r.done <- dutyDone{err: fmt.Errorf("run duty cycle: pipe: %w", err)}
			return
		}
		defer unix.Close(fds[0])
		peerDone := make(chan error, 1)
		go peer(d, fds[1], r.stop, peerDone)
		// The peer's last write, after stop, unblocks the final read.
		defer func() { <-peerDone }()
		buf := make([]byte, 64)
		wait = func() error {
			_, err := unix.Read(fds[0], buf)
			return ignoreEINTR(err)
		}
	}
	res := DutyResult{TID: unix.Gettid()}
	r.up <- res.TID
	start := threadCPU()
	for {
		select {
		case <-r.stop:
			res.Busy = threadCPU() - start
			r.done <- dutyDone{res: res}
			return
		default:
		}
		r.cycles.Add(1)
		for t0 := threadCPU(); threadCPU()-t0 < d.Spin; {
		}
		if err := wait(); err != nil {
			r.done <- dutyDone{err: fmt.Errorf("run duty cycle: wait: %w", err)}
			return
		}
		res.Cycles++
	}
}

// peer writes a byte to w every Spin+Wait from PeerCPU, and once more
// after stop; it closes w.
func peer(d DutyCycle, w int, stop <-chan struct{}, done chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(w)
	restore, err := pinThread(d.PeerCPU)
	if err != nil {
		unix.Write(w, []byte{1})
		done <- err
		return
	}
	defer restore()
	ts := unix.NsecToTimespec((d.Spin + d.Wait).Nanoseconds())
	b := []byte{1}
	for {
		select {
		case <-stop:
			_, err := unix.Write(w, b)
			done <- err
			return
		default:
		}
		if err := ignoreEINTR(unix.Nanosleep(&ts, nil)); err != nil {
			unix.Write(w, b)
			done <- err
			return
		}
		if _, err := unix.Write(w, b); err != nil {
			done <- err
			return
		}
	}
}

// pinThread pins the calling (locked) thread to cpu and returns what
// restores its old affinity.
func pinThread(cpu int) (func(), error) {
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("read affinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	return func() { unix.SchedSetaffinity(0, &old) }, nil
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func ignoreEINTR(err error) error {
	if errors.Is(err, unix.EINTR) {
		return nil
	}
	return err
}

// CPUTime is the duty thread's CPU time so far, read from outside it
// through its per-thread CPU clock (CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD,
// as the kernel's posix-cpu-timers encode a thread's clock id).
func (r *DutyRun) CPUTime() (time.Duration, error) {
	var ts unix.Timespec
	clock := int32(^r.tid<<3 | 6)
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, fmt.Errorf("read duty thread %d cpu time: %w", r.tid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// DutySample is a DutyCycle sampled over one window: the thread's known
// CPU time beside what the samples saw.
type DutySample struct {
	Duty   DutyCycle
	Window time.Duration
	// Thread is the duty thread's CPU time inside the window: the truth.
	Thread time.Duration
	// ThreadSampled is the thread's samples × the period; CoreSampled
	// every non-idle sample's (whatever ran on the CPU) × the period.
	ThreadSampled, CoreSampled time.Duration
	// Wakeups is how many times the thread woke inside the window.
	Wakeups   int
	Breakdown Breakdown
}

// SampleDuty runs d, samples its CPU with cpu-clock at hz through window,
// and reports the thread's truth beside its samples. mark, when not nil,
// runs right after the window opens and right before it closes, for the
// caller to read the core's busy time at the same edges.
func SampleDuty(d DutyCycle, window time.Duration, hz int, mark func()) (ds DutySample, err error) {
	if hz == 0 {
		hz = DefaultHz
	}
	s, err := Open(Config{CPUs: []int{d.CPU}, PIDs: []int{os.Getpid()}, Hz: hz, Event: CPUClock})
	if err != nil {
		return DutySample{}, err
	}
	defer s.Close()
	run, err := d.Start()
	if err != nil {
		return DutySample{}, err
	}
	defer func() {
		if _, serr := run.Stop(); err == nil && serr != nil {
			err = serr
		}
	}()
	time.Sleep(50 * time.Millisecond) // past the threads' start
	ds = DutySample{Duty: d}
	before, err := run.CPUTime()
	if err != nil {
		return DutySample{}, err
	}
	if err := s.Start(); err != nil {
		return DutySample{}, err
	}
	c0 := run.cycles.Load()
	if mark != nil {
		mark()
	}
	time.Sleep(window)
	if mark != nil {
		mark()
	}
	if err := s.Disable(); err != nil {
		return DutySample{}, err
	}
	ds.Wakeups = int(run.cycles.Load() - c0)
	after, err := run.CPUTime()
	if err != nil {
		return DutySample{}, err
	}
	if err := s.Collect(); err != nil {
		return DutySample{}, err
	}
	res, err := s.Profile()
	if err != nil {
		return DutySample{}, err
	}
	period := time.Second / time.Duration(hz)
	for _, c := range res.Samples {
		if c.Category == Idle {
			continue
		}
		ds.CoreSampled += period
		if int(c.TID) == run.TID() {
			ds.ThreadSampled += period
		}
	}
	ds.Thread, ds.Breakdown, ds.Window = after-before, res.Breakdown, res.Breakdown.Window
	return ds, nil
}
