package harness

import (
	"errors"
	"fmt"

	"ringbench/meters"
	"ringbench/sampler"
	"ringbench/workloads"
)

// window reads the meters at a window's two edges from the generator's
// hooks, and has the noise scans read right after each edge, on an idle
// thread.
type window struct {
	reader  *meters.Reader
	scanner edgeScanner
	a, b    meters.Snapshot
	scanA   meters.TaskScan
	scanB   meters.TaskScan
	opened  bool
	closed  bool
	// obs, when set, is told of the window's edges right after (start) and
	// right before (end) the meters read them: validate's independent
	// readings then lie inside the window.
	obs windowObserver
	// paused: the generator stops its load while the hooks run and opens
	// its window when the start hook returns (DPDK's memif generator), so
	// the cheap reads go last at the start; the kernel-socket generator
	// marks its edge first and runs on, so they go first at both edges.
	paused bool
	// smp samples the server cores through the window; smpErr says why
	// it could not.
	smp    *sampler.Sampler
	smpErr error
	// finished: finish ran; scanned: the task scans are in scanA, scanB.
	// scanning: the scan's task files were opened (startScan).
	finished, scanned, scanning bool
	// serverTasks lists the tasks whose time is not noise (skipTasks); it
	// is called in finish, while the server still runs, and its
	// answer kept in skip: a memif server is stopped before the generator
	// lets go of its port, and a stopped server has no tasks to list.
	serverTasks func() (map[int]bool, error)
	skip        map[int]bool
}

// edgeScanner reads the noise scans at a window's edges: a
// meters.Scanner.
type edgeScanner interface {
	Start()
	Edge()
	Result() (a, b meters.TaskScan)
}

var errNoIRQScan = errors.New("no task scan in this window (its interrupts are read with the scans)")

// dropScan takes the result of a scan that was started but never used (a
// window that failed before finish), so that the scanner is free for the
// next window.
func (w *window) dropScan() {
	if w.scanning && !w.scanned {
		w.scanner.Result()
		w.scanning = false
	}
}

// startScan opens the task files of a window that has a scanner, before
// the generator starts; the scans themselves are read at the window's
// edges (hooks), off the generator's critical path: a scan of /proc
// inside the window once stalled the generator for 3-8 ms (every validate
// trial at 20000 ops/s had 60-190 requests sent over 1 ms late), and a
// scan before the warm-up measured other tasks over warm-up, window and
// drain, not over the window.
func (w *window) startScan() {
	if w.smp == nil && w.scanner != nil && !w.scanning {
		w.scanning = true
		w.scanner.Start()
	}
}

// windowObserver takes independent readings of a server during a window.
type windowObserver interface {
	windowStart(pid int)
	windowEnd()
}

// hooks are the generator's window callbacks. They do only what an edge
// can afford (a few preads, an ioctl per sampled CPU, a round trip to the
// server during which the harness's thread sleeps): the harness shares
// the generator's CPU, and whatever it computes there delays the
// generator's requests. The rest waits for finish.
func (w *window) hooks() workloads.Hooks {
	return workloads.Hooks{
		WindowStart: func() {
			if w.paused {
				w.a = w.reader.ReadCountersFirst()
			} else {
				w.a = w.reader.Read(true)
			}
			w.opened = true
			if w.scanning {
				w.scanner.Edge()
			}
			if w.smp != nil {
				w.smpErr = w.smp.Start()
			}
			w.a.Sampled = sampler.Sampling()
			if w.obs != nil {
				w.obs.windowStart(w.reader.PID())
			}
		},
		WindowEnd: func() {
			if w.obs != nil {
				w.obs.windowEnd()
			}
			w.b = w.reader.Read(true)
			w.b.Sampled = sampler.Sampling()
			w.closed = true
			if w.scanning {
				w.scanner.Edge()
			}
			if w.smp != nil && w.smpErr == nil {
				w.smpErr = w.smp.Disable()
			}
		},
	}
}

// finish does the window's slow work once the generator has drained: it
// collects the samples (reading the server's mappings and symbols, so
// before the server stops) or the edges' task scans. It runs once.
func (w *window) finish() {
	if w.finished || !w.closed {
		return
	}
	w.finished = true
	// Interrupts are read by the task scans; a window without them has none.
	w.a.IRQErr, w.b.IRQErr = errNoIRQScan, errNoIRQScan
	if w.smp != nil {
		if w.smpErr == nil {
			w.smpErr = w.smp.Collect()
		}
		return
	}
	if !w.scanning {
		return
	}
	w.scanA, w.scanB = w.scanner.Result()
	// The scans carry the edges' interrupt counts (read off the
	// generator's critical path: meters.Snapshot.IRQs).
	w.a.IRQs, w.a.IRQErr = w.scanA.IRQs, w.scanA.IRQErr
	w.b.IRQs, w.b.IRQErr = w.scanB.IRQs, w.scanB.IRQErr
	if w.serverTasks != nil {
		var err error
		if w.skip, err = w.serverTasks(); err != nil && w.scanB.Err == nil {
			w.scanB.Err = fmt.Errorf("list the server's tasks: %w", err)
		}
	}
	w.scanned = true
}

func (w *window) err() error {
	if !w.opened || !w.closed {
		return errNoWindow
	}
	return nil
}

var errNoWindow = errors.New("the generator never opened its measurement window")

// skipTasks are the tasks whose time on the server cores is not noise: the
// server's own, the server CPUs' ksoftirqd (its receive work pushed out
// of interrupt context) and the guests' (the generator, when it shares the
// server's CPUs: see guests).
func skipTasks(srv *server, serverCPUs, clientCPUs []int) (map[int]bool, error) {
	pids, err := meters.ProcessTree(srv.pid)
	if err != nil {
		return nil, err
	}
	gs, err := guests(serverCPUs, clientCPUs)
	if err != nil {
		return nil, err
	}
	pids = append(pids, meters.KernelThreads("ksoftirqd/", serverCPUs)...)
	pids = append(pids, gs...)
	skip := map[int]bool{}
	for _, t := range meters.TasksOf(pids) {
		skip[t] = true
	}
	return skip, nil
}
