package meters

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// IdleClock is the NO_HZ idle accounting of every CPU at one instant, read
// from /proc/timer_list (root only) in nanoseconds. /proc/stat reports the
// same accounting in 10 ms units; over a 2 s window at 20% busy that
// quantisation alone is a few percent of the busy time, so the meter reads
// the nanosecond source where it can.
type IdleClock struct {
	Now  float64 // ktime (CLOCK_MONOTONIC) when the kernel printed the file
	Idle map[int]float64
}

// ParseTimerList extracts each CPU's idle plus iowait time. The kernel
// folds an idle period into idle_sleeptime when it ends and at every
// interrupt inside it, and sets idle_entrytime at both; the file does not
// print whether a period is in progress. With the tick running, a period in
// progress is at most one tick old (the tick interrupt folds it), so it is
// left out: at most 4 ms per edge, microseconds at load. With the tick
// stopped the CPU is in a long idle period, in progress since
// idle_entrytime: it is added, as the kernel's get_cpu_idle_time_us does.
func ParseTimerList(b []byte) (IdleClock, error) {
	c := IdleClock{Idle: map[int]float64{}}
	type nohz struct {
		entry, stopped, sleep, iowait float64
		seen                          int
	}
	var cur *nohz
	cpus := map[int]*nohz{}
	num := func(v string) (float64, error) {
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "nsecs"))
		x, err := strconv.ParseUint(v, 10, 64)
		return float64(x), err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 1<<20)
	gotNow := false
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "now at "); ok && !gotNow {
			x, err := num(v)
			if err != nil {
				return IdleClock{}, fmt.Errorf("parse timer_list now: %w", err)
			}
			c.Now, gotNow = x, true
			continue
		}
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return IdleClock{}, fmt.Errorf("parse timer_list cpu %q", v)
			}
			cur = &nohz{}
			cpus[n] = cur
			continue
		}
		if cur == nil {
			continue
		}
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		var dst *float64
		switch strings.TrimSpace(name) {
		case ".idle_entrytime":
			dst = &cur.entry
		case ".tick_stopped":
			dst = &cur.stopped
		case ".idle_sleeptime":
			dst = &cur.sleep
		case ".iowait_sleeptime":
			dst = &cur.iowait
		default:
			continue
		}
		x, err := num(v)
		if err != nil {
			return IdleClock{}, fmt.Errorf("parse timer_list %s: %w", strings.TrimSpace(name), err)
		}
		*dst = x
		cur.seen++
	}
	if !gotNow || len(cpus) == 0 {
		return IdleClock{}, fmt.Errorf("parse timer_list: no clock or no cpu sections")
	}
	for n, h := range cpus {
		if h.seen != 4 {
			return IdleClock{}, fmt.Errorf("parse timer_list cpu %d: %d of 4 idle fields (kernel without NO_HZ?)", n, h.seen)
		}
		idle := h.sleep + h.iowait
		if h.stopped != 0 && c.Now > h.entry {
			idle += c.Now - h.entry
		}
		c.Idle[n] = idle
	}
	return c, nil
}
