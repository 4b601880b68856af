package meters

import (
	"errors"
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
	// At is CLOCK_MONOTONIC in the middle of the run-time reads, Took
	// how long they took: the uncertainty of At.
	At     time.Duration
	BootNs float64 // CLOCK_BOOTTIME when they began: tasks started later are new
	Took   time.Duration
	Tasks  map[int]TaskSample
	// Err says why the scan is unusable: a task file that did not parse.
	Err error
	// IRQs are /proc/interrupts' device interrupts, read right after the
	// tasks (Snapshot.IRQs), or IRQErr why not.
	IRQs   map[string]map[int]uint64
	IRQErr error
}

// TaskSample is one task in a scan.
type TaskSample struct {
	CPU       int
	RunNs     float64
	StartTick uint64
}

// taskCache keeps every task's stat and schedstat open through a window,
// so that reading every task's run time at an edge is one pread per task,
// not a walk of /proc with two opens and closes per task.
type taskCache struct {
	root  string // "/proc", or a test's tree
	pids  []int  // the processes whose tasks are cached; nil: every one
	tasks map[int]*cachedTask
	// maxTasks bounds the cache: each task holds two descriptors, and the
	// generator's sockets share the process's open-file limit with them.
	// A machine with more tasks than that gets no scan, with the reason,
	// rather than a generator that cannot open its connections.
	maxTasks int
}

// newTaskCache is an empty cache that may hold a quarter of the open-file
// limit's worth of tasks: half the descriptors.
func newTaskCache(root string, pids []int) *taskCache {
	maxTasks := 1 << 20
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur/4 < uint64(maxTasks) {
		maxTasks = int(rl.Cur / 4)
	}
	return &taskCache{root: root, pids: pids, tasks: map[int]*cachedTask{}, maxTasks: maxTasks}
}

type cachedTask struct {
	sched, stat *procFile
	start       uint64 // start tick: a reused tid is another task
}

// openTaskCache opens every task under root.
func openTaskCache(root string) (*taskCache, error) {
	c := newTaskCache(root, nil)
	if err := c.add(nil); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// add opens the tasks that are not cached yet and, when s is given, puts
// their readings in it: the tasks that appeared since the last edge are
// picked up, read a little after the edge. A task that exits while it is
// read is left out; a file that does not parse is an error.
func (c *taskCache) add(s *TaskScan) error {
	procs, err := c.procs()
	if err != nil {
		return err
	}
	for i, p := range procs {
		dir := filepath.Join(c.root, p, "task")
		tasks, err := os.ReadDir(dir)
		if exited(err) && (c.pids == nil || i > 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("list tasks: %w", err)
		}
		for _, e := range tasks {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || c.tasks[tid] != nil {
				continue
			}
			if len(c.tasks) >= c.maxTasks {
				return fmt.Errorf("more than %d tasks: keeping their files open would take half the open-file limit (ulimit -n)", c.maxTasks)
			}
			t, sample, err := openTask(filepath.Join(dir, e.Name()))
			if exited(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("task %d: %w", tid, err)
			}
			c.tasks[tid] = t
			if s != nil {
				s.Tasks[tid] = sample
			}
		}
	}
	return nil
}

// procs names the processes whose tasks are cached; with pids, the first
// is the one whose exit is an error.
func (c *taskCache) procs() ([]string, error) {
	if c.pids != nil {
		out := make([]string, len(c.pids))
		for i, p := range c.pids {
			out[i] = strconv.Itoa(p)
		}
		return out, nil
	}
	ents, err := os.ReadDir(c.root)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func openTask(dir string) (*cachedTask, TaskSample, error) {
	t := &cachedTask{}
	sample, err := t.open(dir)
	if err != nil {
		t.close()
		return nil, sample, err
	}
	return t, sample, nil
}

func (t *cachedTask) open(dir string) (TaskSample, error) {
	var err error
	if t.stat, err = openProcFileSize(filepath.Join(dir, "stat"), 512); err != nil {
		return TaskSample{}, err
	}
	if t.sched, err = openProcFileSize(filepath.Join(dir, "schedstat"), 64); err != nil {
		return TaskSample{}, err
	}
	b, err := t.stat.read()
	if err != nil {
		return TaskSample{}, err
	}
	st, err := ParseTaskStat(b)
	if err != nil {
		return TaskSample{}, err
	}
	t.start = st.StartTick
	run, err := t.run()
	if err != nil {
		return TaskSample{}, err
	}
	return TaskSample{CPU: st.CPU, RunNs: run, StartTick: st.StartTick}, nil
}

func (t *cachedTask) close() {
	t.stat.close()
	t.sched.close()
}

// edge reads every cached task's run time back to back (the scan's
// instant), then each one's last CPU, then picks up the tasks that
// appeared since the last edge. Tasks that exited are dropped.
func (c *taskCache) edge() TaskScan {
	var bt unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt)
	s := TaskScan{BootNs: float64(bt.Nano()), Tasks: make(map[int]TaskSample, len(c.tasks))}
	t0 := Now()
	for tid, t := range c.tasks {
		run, err := t.run()
		if exited(err) {
			t.close()
			delete(c.tasks, tid)
			continue
		}
		if err != nil {
			s.Err = fmt.Errorf("task %d: %w", tid, err)
			return s
		}
		s.Tasks[tid] = TaskSample{RunNs: run, StartTick: t.start}
	}
	t1 := Now()
	s.At, s.Took = t0+(t1-t0)/2, t1-t0
	for tid, sample := range s.Tasks {
		b, err := c.tasks[tid].stat.read()
		if err == nil {
			var st TaskStat
			if st, err = ParseTaskStat(b); err == nil {
				sample.CPU = st.CPU
				s.Tasks[tid] = sample
				continue
			}
		}
		if !exited(err) {
			s.Err = fmt.Errorf("task %d: %w", tid, err)
			return s
		}
		// Exited after its run time was read: its last CPU is
		// unknown, and so is whether it ran on the server cores.
		delete(s.Tasks, tid)
	}
	if err := c.add(&s); err != nil {
		s.Err = err
	}
	return s
}

func (t *cachedTask) run() (float64, error) {
	b, err := t.sched.read()
	if err != nil {
		return 0, err
	}
	run, _, err := ParseSchedstat(b)
	return run, err
}

func (c *taskCache) close() {
	for _, t := range c.tasks {
		t.close()
	}
	c.tasks = nil
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

// Scanner reads every task's run time at a window's two edges, on a
// thread of its own at SCHED_IDLE priority: it runs on the harness's CPUs
// only when the generator leaves them idle, so it never delays a request.
// The task files are opened before the window (Start, during the warm-up)
// and read at each edge (Edge), a pread per task; the scan is late when
// the generator keeps its CPU busy, and its own timestamps say so.
type Scanner struct {
	start chan struct{}
	edge  chan bool // false: the window failed before this edge
	out   chan [2]TaskScan
	sent  int // edges signalled in this window
}

// NewScanner starts the scanning thread.
func NewScanner() *Scanner { return newScanner("/proc", nil) }

// newScanner scans root; scanned, when given, is called on the scanning
// thread after each edge's scan that was read (tests: when a scan is read
// depends on the load, so they wait for it rather than for a time).
func newScanner(root string, scanned func(edge int)) *Scanner {
	s := &Scanner{start: make(chan struct{}, 1), edge: make(chan bool, 2), out: make(chan [2]TaskScan, 1)}
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it ends with the goroutine, so
		// its idle policy never leaks to other goroutines.
		unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: sched_IDLE}, 0)
		for range s.start {
			c, err := openTaskCache(root)
			var scans [2]TaskScan
			for i := range scans {
				switch reached := <-s.edge; {
				case err != nil:
					scans[i].Err = err
				case !reached:
					scans[i].Err = errEdgeNotReached
				default:
					scans[i] = c.edge()
					scans[i].IRQs, scans[i].IRQErr = readInterrupts(root)
					if scanned != nil {
						scanned(i)
					}
				}
				if scans[i].Err != nil {
					scans[i].IRQErr = scans[i].Err
				}
			}
			if c != nil {
				c.close()
			}
			s.out <- scans
		}
	}()
	return s
}

// readInterrupts reads and parses root/interrupts.
func readInterrupts(root string) (map[string]map[int]uint64, error) {
	b, err := os.ReadFile(filepath.Join(root, "interrupts"))
	if err != nil {
		return nil, err
	}
	return ParseInterrupts(b)
}

const sched_IDLE = 5 // SCHED_IDLE, include/uapi/linux/sched.h

var errEdgeNotReached = errors.New("the window never reached this edge")

// Start opens every task's files for the next window: call it before the
// generator starts.
func (s *Scanner) Start() { s.start <- struct{}{} }

// Edge asks for the task scan of a window's edge. It never blocks: the
// channel holds both edges.
func (s *Scanner) Edge() {
	if s.sent < 2 {
		s.sent++
		s.edge <- true
	}
}

// Result waits for the two edges' scans; an edge not reached has Err set.
func (s *Scanner) Result() (a, b TaskScan) {
	for ; s.sent < 2; s.sent++ {
		s.edge <- false
	}
	s.sent = 0
	r := <-s.out
	return r[0], r[1]
}

// Close ends the scanning thread.
func (s *Scanner) Close() { close(s.start) }
