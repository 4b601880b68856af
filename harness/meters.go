package harness

import (
	"errors"

	"ringbench/meters"
	"ringbench/sampler"
	"ringbench/workloads"
)

// window reads the meters at a window's two edges from the generator's
// hooks, and runs the noise scans off those edges.
type window struct {
	reader  *meters.Reader
	scanner *meters.Scanner
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
}

// windowObserver takes independent readings of a server during a window.
type windowObserver interface {
	windowStart(pid int)
	windowEnd()
}

// hooks are the generator's window callbacks. At the start the cheap
// snapshot comes first and the task scan is only asked for: it runs at idle
// priority and must not delay the generator's first in-window request.
func (w *window) hooks() workloads.Hooks {
	return workloads.Hooks{
		WindowStart: func() {
			if w.paused {
				w.a = w.reader.ReadCountersFirst()
			} else {
				w.a = w.reader.Read(true)
			}
			w.opened = true
			if w.smp != nil {
				w.smpErr = w.smp.Start()
			}
			w.scanner.Start()
			if w.obs != nil {
				w.obs.windowStart(w.reader.PID())
			}
		},
		WindowEnd: func() {
			if w.obs != nil {
				w.obs.windowEnd()
			}
			w.b = w.reader.Read(true)
			w.closed = true
			if w.smp != nil && w.smpErr == nil {
				w.smpErr = w.smp.Stop()
			}
			w.scanA = w.scanner.Result()
			w.scanner.Start()
			w.scanB = w.scanner.Result()
		},
	}
}

func (w *window) err() error {
	if !w.opened || !w.closed {
		return errNoWindow
	}
	return nil
}

var errNoWindow = errors.New("the generator never opened its measurement window")

// skipTasks are the tasks whose time on the server cores is not noise: the
// server's own and the server CPUs' ksoftirqd (its receive work pushed out
// of interrupt context).
func skipTasks(srv *server, serverCPUs []int) map[int]bool {
	skip := map[int]bool{}
	pids := append(meters.ProcessTree(srv.pid), meters.KernelThreads("ksoftirqd/", serverCPUs)...)
	for _, t := range meters.TasksOf(pids) {
		skip[t] = true
	}
	return skip
}
