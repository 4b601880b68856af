package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc/stat and /proc/PID/stat times. Linux fixes
// USER_HZ at 100 on every architecture ringbench runs on.
const userHZ = 100

// cpuTimes is one /proc/stat cpuN line, in nanoseconds.
type cpuTimes struct {
	total, idle, iowait float64
}

// busy is the time the CPU was neither idle nor waiting for I/O. On a VM the
// user/system/softirq split is unreliable but idle and iowait are accurate,
// so busy is the only figure taken from this file.
func (c cpuTimes) busy() float64 { return c.total - c.idle - c.iowait }

// readCPUTimes parses /proc/stat's per-CPU lines.
func readCPUTimes() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (map[int]cpuTimes, error) {
	out := map[int]cpuTimes{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var t cpuTimes
		// user nice system idle iowait irq softirq steal (guest, guest_nice
		// are already inside user and nice).
		for i := 1; i < len(f) && i <= 8; i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("parse /proc/stat %s: %w", f[0], err)
			}
			ns := v * 1e9 / userHZ
			t.total += ns
			switch i {
			case 4:
				t.idle = ns
			case 5:
				t.iowait = ns
			}
		}
		out[n] = t
	}
	return out, nil
}

// taskTimes is the sum over a set of tasks of /proc/.../schedstat: time on
// CPU and time spent runnable but waiting (run delay), both in ns.
type taskTimes struct {
	runNs, delayNs float64
	tasks          int
}

// processTree returns pid and every descendant process, found through
// /proc/*/stat's ppid field. External servers fork workers, and the DPDK
// reference runs testpmd as a child: their CPU is the server's too.
func processTree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The comm field may hold spaces and parentheses: fields start after
		// the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// tasksOf lists the thread ids of every process in pids.
func tasksOf(pids []int) []int {
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

// readTaskTimes sums schedstat over the threads of every process in pids.
// iou-sqp and iou-wrk threads are threads of the process that made the ring,
// so io_uring's kernel-side work is included.
func readTaskTimes(pids []int) taskTimes {
	var t taskTimes
	for _, p := range pids {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		if err != nil {
			continue
		}
		for _, e := range ents {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", p, e.Name()))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) < 2 {
				continue
			}
			run, _ := strconv.ParseFloat(f[0], 64)
			delay, _ := strconv.ParseFloat(f[1], 64)
			t.runNs += run
			t.delayNs += delay
			t.tasks++
		}
	}
	return t
}

// otherTasksOn sums the run time of every task whose last CPU is in cpus,
// except the tasks in skip. A task's time is put on the CPU it last ran on:
// tasks pinned elsewhere (the generator, the harness) never count, and an
// unpinned task that wandered counts wholly or not at all, which is close
// enough for a noise flag. Kernels without CONFIG_SCHEDSTATS have no
// per-CPU run time to take this from.
func otherTasksOn(cpus []int, skip map[int]bool) map[int]float64 {
	want := map[int]bool{}
	for _, c := range cpus {
		want[c] = true
	}
	out := map[int]float64{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		tasks, _ := os.ReadDir("/proc/" + p.Name() + "/task")
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || skip[tid] {
				continue
			}
			dir := "/proc/" + p.Name() + "/task/" + t.Name()
			stat, err := os.ReadFile(dir + "/stat")
			if err != nil {
				continue
			}
			i := bytes.LastIndexByte(stat, ')')
			if i < 0 {
				continue
			}
			f := strings.Fields(string(stat[i+1:]))
			// processor is field 39 of the line, index 36 after the comm.
			if len(f) < 37 {
				continue
			}
			cpu, _ := strconv.Atoi(f[36])
			if !want[cpu] {
				continue
			}
			ss, err := os.ReadFile(dir + "/schedstat")
			if err != nil {
				continue
			}
			sf := strings.Fields(string(ss))
			if len(sf) < 1 {
				continue
			}
			run, _ := strconv.ParseFloat(sf[0], 64)
			out[tid] = run
		}
	}
	return out
}
