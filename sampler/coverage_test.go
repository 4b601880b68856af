package sampler_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"ringbench/internal/testenv"
	"ringbench/meters"
	"ringbench/sampler"
)

// coreClock reads cpu's idle time and the clock it is counted against from
// /proc/timer_list, in ns.
type coreClock struct {
	cpu       int
	now, idle []float64
	err       error
}

func (c *coreClock) mark() {
	b, err := os.ReadFile("/proc/timer_list")
	if err == nil {
		var ic meters.IdleClock
		if ic, err = meters.ParseTimerList(b); err == nil {
			c.now, c.idle = append(c.now, ic.Now), append(c.idle, ic.Idle[c.cpu])
		}
	}
	if err != nil && c.err == nil {
		c.err = err
	}
}

// busy is the core's busy time between the two marks.
func (c *coreClock) busy() (time.Duration, error) {
	if c.err != nil || len(c.now) != 2 {
		return 0, fmt.Errorf("core busy: %d marks, %v", len(c.now), c.err)
	}
	return time.Duration((c.now[1] - c.now[0]) - (c.idle[1] - c.idle[0])), nil
}

func sampleDuty(t *testing.T, d sampler.DutyCycle, window time.Duration) (sampler.DutySample, time.Duration) {
	t.Helper()
	cc := &coreClock{cpu: d.CPU}
	ds, err := sampler.SampleDuty(d, window, 0, cc.mark)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := cc.busy()
	if err != nil {
		t.Skipf("skipped: no nanosecond idle clock: %v", err)
	}
	return ds, busy
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// TestDutyCycleGrid is the experiment behind the coverage finding: a
// thread on one CPU alternates a spin of X with a wait of Y, woken by its
// own timer or by a peer on another CPU, and the CPU is sampled as a
// trial's server cores are. Each row sets the thread's known CPU time
// beside its samples, and the core's busy time beside all its samples.
// It takes about a minute: RINGBENCH_COVERAGE_GRID=1 runs it.
func TestDutyCycleGrid(t *testing.T) {
	if os.Getenv("RINGBENCH_COVERAGE_GRID") == "" {
		t.Skip("skipped: the grid takes a minute; RINGBENCH_COVERAGE_GRID=1 runs it")
	}
	testenv.SkipUnlessRoot(t, "sampling a whole CPU with perf_event_open")
	cpu, peer := testCPU(), 0
	if cpu == 0 {
		t.Skip("skipped: needs two CPUs")
	}
	if os.Getenv("RINGBENCH_COVERAGE_CPU") == "0" { // where the other CPU is kept busy
		cpu, peer = 0, cpu
	}
	steps := []time.Duration{20 * time.Microsecond, 100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond}
	var b strings.Builder
	window := time.Second
	if w, err := time.ParseDuration(os.Getenv("RINGBENCH_COVERAGE_WINDOW")); err == nil {
		window = w
	}
	// others: what the samples saw of other tasks on the core (noise).
	fmt.Fprintf(&b, "\n%-6s %6s %6s | %9s %9s %6s | %9s %5s %9s %6s %9s %9s\n", "wake", "X", "Y", "thread", "sampled", "cov",
		"core busy", "idle", "sampled", "cov", "others", "unseen/wake")
	for _, wake := range []sampler.Wake{sampler.WakePeer, sampler.WakeTimer} {
		for _, x := range steps {
			for _, y := range steps {
				d := sampler.DutyCycle{CPU: cpu, PeerCPU: peer, Spin: x, Wait: y, Wake: wake}
				ds, busy := sampleDuty(t, d, window)
				unseen := time.Duration(0)
				if ds.Wakeups > 0 {
					unseen = (busy - ds.CoreSampled) / time.Duration(ds.Wakeups)
				}
				fmt.Fprintf(&b, "%-6s %6v %6v | %9v %9v %6.2f | %9v %4.0f%% %9v %6.2f %9v %9v\n", wake, x, y,
					ds.Thread.Round(time.Millisecond), ds.ThreadSampled.Round(time.Millisecond), ratio(ds.ThreadSampled, ds.Thread),
					busy.Round(time.Millisecond), 100*(1-ratio(busy, ds.Window)), ds.CoreSampled.Round(time.Millisecond),
					ratio(ds.CoreSampled, busy), (ds.CoreSampled - ds.ThreadSampled).Round(time.Millisecond), unseen.Round(100*time.Nanosecond))
			}
		}
	}
	t.Log(b.String())
}
