package meters

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// TaskScan is every task's run time at one instant, for the noise estimate:
// other tasks' time on the server cores. There is no per-CPU run time on
// kernels without CONFIG_SCHEDSTATS, so each task's time is put on the CPU
// it was last seen on.
type TaskScan struct {
	At     time.Duration // CLOCK_MONOTONIC when the scan began
	BootNs float64       // CLOCK_BOOTTIME then: tasks started later are new
	Took   time.Duration
	Tasks  map[int]TaskSample
	// Err says why the scan is unusable: a task file that did not parse.
	Err error
}

// TaskSample is one task in a scan.
type TaskSample struct {
	CPU       int
	RunNs     float64
	StartTick uint64
}

// ScanTasks reads every task's last CPU, run time and start time. It costs
// about 10 µs per task: never call it on the generator's critical path.
// A task that exits during the scan is left out; a file that does not
// parse fails the scan (Err).
func ScanTasks() TaskScan { return scanTasks("/proc") }

func scanTasks(root string) TaskScan {
	var bt unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt)
	s := TaskScan{At: Now(), BootNs: float64(bt.Nano()), Tasks: map[int]TaskSample{}}
	defer func() { s.Took = Now() - s.At }()
	procs, err := os.ReadDir(root)
	if err != nil {
		s.Err = fmt.Errorf("scan tasks: %w", err)
		return s
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		tasks, err := os.ReadDir(filepath.Join(root, p.Name(), "task"))
		if exited(err) {
			continue
		}
		if err != nil {
			s.Err = fmt.Errorf("scan tasks: %w", err)
			return s
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			sample, err := readTask(filepath.Join(root, p.Name(), "task", t.Name()))
			if exited(err) {
				continue
			}
			if err != nil {
				s.Err = fmt.Errorf("scan task %d: %w", tid, err)
				return s
			}
			s.Tasks[tid] = sample
		}
	}
	return s
}

// readTask reads one task's stat and schedstat.
func readTask(dir string) (TaskSample, error) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return TaskSample{}, err
	}
	st, err := ParseTaskStat(b)
	if err != nil {
		return TaskSample{}, err
	}
	if b, err = os.ReadFile(filepath.Join(dir, "schedstat")); err != nil {
		return TaskSample{}, err
	}
	run, _, err := ParseSchedstat(b)
	if err != nil {
		return TaskSample{}, err
	}
	return TaskSample{CPU: st.CPU, RunNs: run, StartTick: st.StartTick}, nil
}

// OtherTasksNs is the run time between two scans of tasks last seen on one
// of cpus, except those in skip. A task present in both scans adds its
// delta; a task that started after the first scan adds its whole run time;
// a task that existed then but was not seen (it raced the scan) adds
// nothing rather than its lifetime.
func OtherTasksNs(a, b TaskScan, cpus []int, skip map[int]bool) float64 {
	on := map[int]bool{}
	for _, c := range cpus {
		on[c] = true
	}
	var sum float64
	for tid, end := range b.Tasks {
		if skip[tid] || !on[end.CPU] {
			continue
		}
		if start, ok := a.Tasks[tid]; ok && start.StartTick == end.StartTick {
			sum += max(end.RunNs-start.RunNs, 0)
		} else if float64(end.StartTick)*1e9/UserHZ >= a.BootNs-1e9/UserHZ {
			sum += end.RunNs // began in the window (tid reuse included)
		}
	}
	return sum
}

// Scanner runs task scans on a thread of its own at SCHED_IDLE priority:
// it runs on the harness's CPUs only when the generator leaves them idle,
// so a scan never delays a request (a scan is late instead, and its own
// timestamps say so).
type Scanner struct {
	req chan struct{}
	out chan TaskScan
}

// NewScanner starts the scanning thread.
func NewScanner() *Scanner {
	s := &Scanner{req: make(chan struct{}), out: make(chan TaskScan, 1)}
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it ends with the goroutine, so
		// its idle policy never leaks to other goroutines.
		unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: sched_IDLE}, 0)
		for range s.req {
			s.out <- ScanTasks()
		}
	}()
	return s
}

const sched_IDLE = 5 // SCHED_IDLE, include/uapi/linux/sched.h

// Start begins a scan; Result waits for it.
func (s *Scanner) Start()           { s.req <- struct{}{} }
func (s *Scanner) Result() TaskScan { return <-s.out }

// Close ends the scanning thread.
func (s *Scanner) Close() { close(s.req) }
