package meters

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ProcessTree returns pid and every descendant process, found through
// /proc/*/stat's ppid field. External servers fork workers, and the DPDK
// reference runs testpmd as a child: their CPU is the server's too.
func ProcessTree(pid int) ([]int, error) { return processTree("/proc", pid) }

func processTree(root string, pid int) ([]int, error) {
	children := map[int][]int{}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if exited(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read process %d: %w", p, err)
		}
		pp, err := parsePPID(b)
		if err != nil {
			return nil, fmt.Errorf("process %d: %w", p, err)
		}
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// parsePPID reads a stat line's parent pid, the second field after comm.
func parsePPID(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("parse stat: no comm")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("parse stat: %d fields after comm", len(f))
	}
	pp, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("parse stat: ppid: %w", err)
	}
	return pp, nil
}

// exited says whether err is what reading a /proc file of a task that
// exited meanwhile gives: the directory is gone (ENOENT), or the file was
// opened before the exit and reads ESRCH. Any other error is a real one.
func exited(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// TasksOf lists the thread ids of every process in pids.
func TasksOf(pids []int) []int {
	var tids []int
	for _, p := range pids {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if t, err := strconv.Atoi(e.Name()); err == nil {
				tids = append(tids, t)
			}
		}
	}
	return tids
}

// serverThreads sums schedstat over the threads of a server's process
// tree, the fallback where the server has no cgroup. It keeps their files
// open: a snapshot is a pread per thread and a directory read per process
// (threads that appear are picked up), not an open and close per thread.
// A thread that exits keeps the run time last read of it, so the sum
// never goes back; its time since that read is lost (a cgroup keeps it).
type serverThreads struct {
	cache *taskCache
	last  map[int][2]float64 // run, delay of each thread at the last read
	gone  [2]float64         // of the threads that exited
}

func openServerThreads(root string, tree []int) (*serverThreads, error) {
	c := newTaskCache(root, tree)
	if err := c.add(nil); err != nil {
		c.close()
		return nil, fmt.Errorf("read server threads: %w", err)
	}
	return &serverThreads{cache: c, last: map[int][2]float64{}}, nil
}

func (t *serverThreads) read() (run, delay float64, n int, err error) {
	if err := t.cache.add(nil); err != nil {
		return 0, 0, 0, fmt.Errorf("read server threads: %w", err)
	}
	for tid, task := range t.cache.tasks {
		b, err := task.sched.read()
		if exited(err) {
			task.close()
			delete(t.cache.tasks, tid)
			l := t.last[tid]
			t.gone[0], t.gone[1] = t.gone[0]+l[0], t.gone[1]+l[1]
			delete(t.last, tid)
			continue
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("read server thread %d: %w", tid, err)
		}
		r, d, err := ParseSchedstat(b)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("server thread %d: %w", tid, err)
		}
		t.last[tid] = [2]float64{r, d}
		run, delay, n = run+r, delay+d, n+1
	}
	return run + t.gone[0], delay + t.gone[1], n, nil
}

func (t *serverThreads) close() {
	if t != nil {
		t.cache.close()
	}
}

// KernelThreads finds per-CPU kernel threads ("ksoftirqd/3") of cpus. Their
// time on the server cores is the server's receive work pushed out of
// interrupt context, not noise.
func KernelThreads(prefix string, cpus []int) []int {
	want := map[string]bool{}
	for _, c := range cpus {
		want[prefix+strconv.Itoa(c)] = true
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		if want[strings.TrimSpace(string(b))] {
			pids = append(pids, pid)
		}
	}
	return pids
}

func parseInts(b []byte) []int {
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if v, err := strconv.Atoi(f); err == nil {
			out = append(out, v)
		}
	}
	return out
}
