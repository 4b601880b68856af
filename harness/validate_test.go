package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ringbench/internal/testenv"
	"ringbench/results"
	"ringbench/sampler"
)

func burnRec(cycles string, cyclesPerOp, cpuNsPerOp float64, noisy bool) results.Record {
	return results.Record{Status: results.StatusOK, Noisy: noisy, Ops: 1000,
		Config:          results.Config{Options: map[string]string{"cycles": cycles}},
		CyclesPerOp:     cyclesPerOp,
		CPUNsPerOp:      cpuNsPerOp,
		BackendCounters: map[string]uint64{"burn_requests": 1000}}
}

func TestBurnSlopeChecks(t *testing.T) {
	const hz = 2e9 // 2 cycles per ns
	for _, tc := range []struct {
		name      string
		recs      []results.Record
		busy, cpu bool
		busyV     float64
	}{
		{"exact", []results.Record{
			burnRec("0", 100e3, 30e3, false), burnRec("0", 102e3, 30e3, false),
			burnRec("200000", 301e3, 130e3, false), burnRec("200000", 303e3, 130e3, false)}, true, true, 1.005},
		{"a meter that misses bursts", []results.Record{
			burnRec("0", 20e3, 30e3, false), burnRec("0", 22e3, 30e3, false),
			burnRec("200000", 150e3, 130e3, false), burnRec("200000", 152e3, 130e3, false)}, false, true, 0.65},
		{"process CPU missing kernel work", []results.Record{
			burnRec("0", 100e3, 30e3, false), burnRec("0", 100e3, 30e3, false),
			burnRec("200000", 300e3, 110e3, false), burnRec("200000", 300e3, 110e3, false)}, true, false, 1},
		{"noisy trials are left out, and too few remain", []results.Record{
			burnRec("0", 100e3, 30e3, false), burnRec("0", 100e3, 30e3, true),
			burnRec("200000", 300e3, 130e3, false), burnRec("200000", 300e3, 130e3, false)}, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := BurnSlopeChecks("udp", tc.recs, 0, 200000, hz)
			if c[0].Pass != tc.busy || c[1].Pass != tc.cpu {
				t.Errorf("pass busy %v cpu %v, want %v %v (%+v)", c[0].Pass, c[1].Pass, tc.busy, tc.cpu, c)
			}
			if tc.busyV != 0 && abs(c[0].Value-tc.busyV) > 1e-9 {
				t.Errorf("busy slope %v, want %v", c[0].Value, tc.busyV)
			}
		})
	}
}

func TestSpreadAndWindowChecks(t *testing.T) {
	var steady, wild []results.Record
	for i, v := range []float64{100, 101, 99, 100, 102} {
		steady = append(steady, results.Record{Status: results.StatusOK, CyclesPerOp: v * 1e3})
		wild = append(wild, results.Record{Status: results.StatusOK, CyclesPerOp: float64(50+40*i) * 1e3})
	}
	if c := SpreadCheck("epoll", steady); !c.Pass {
		t.Errorf("steady repeats fail: %+v", c)
	}
	if c := SpreadCheck("epoll", wild); c.Pass {
		t.Errorf("wild repeats pass: %+v", c)
	}
	// Repeats whose work varied (process CPU moved with cycles) miss the
	// limit too: there is no allowance; the detail says what varied.
	var varied []results.Record
	for _, v := range []float64{100, 108, 95, 101, 112} {
		varied = append(varied, results.Record{Status: results.StatusOK, CyclesPerOp: v * 1e3, CPUNsPerOp: v * 300, OutsideNsPerOp: v * 20})
	}
	c := SpreadCheck("uring", varied)
	if c.Pass {
		t.Errorf("a 6%% spread passes a 3%% limit: %+v", c)
	}
	if !strings.Contains(c.Detail, "process CPU per op CV 6.6%") || !strings.Contains(c.Detail, "1900–2240 ns/op") {
		t.Errorf("detail does not say what varied: %s", c.Detail)
	}
	ok := results.Record{Status: results.StatusOK, Config: results.Config{RateTarget: 1000}, ThroughputOps: 995,
		CPUNs: 1e9, BusyNs: 1.2e9, MeterReadUS: 150, Ops: 2000, Late: 40, Behind: 1}
	slowSnap := ok
	slowSnap.MeterReadUS = 2000
	slow := ok
	slow.ThroughputOps = 900
	for _, tc := range []struct {
		name string
		recs []results.Record
		want [3]bool
	}{
		{"all good", []results.Record{ok}, [3]bool{true, true, true}},
		{"slow snapshot", []results.Record{ok, slowSnap}, [3]bool{true, false, true}},
		{"rate missed", []results.Record{slow}, [3]bool{false, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := WindowChecks(tc.recs)
			for i, c := range cs {
				if c.Pass != tc.want[i] {
					t.Errorf("%s pass %v, want %v (%s)", c.Name, c.Pass, tc.want[i], c.Display)
				}
			}
		})
	}
}

func TestParsePerfTaskClock(t *testing.T) {
	ms, err := parsePerfTaskClock([]byte("475.85,msec,task-clock,475848390,100.00,0.475,CPUs utilized\n"))
	if err != nil || ms != 475.85 {
		t.Errorf("got %v, %v", ms, err)
	}
	for _, in := range []string{"<not counted>,msec,task-clock,0,100.00,,\n", "nothing\n"} {
		if _, err := parsePerfTaskClock([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// The profile check passes a breakdown that gives the thread its share of
// the busy time, and fails one that gives it its share of the samples
// where the samples missed a third of the busy time, or that under-samples
// the thread.
func TestProfileShareCheck(t *testing.T) {
	const period = 1001001 // ns, at 999 Hz
	sample := func(threadMs, threadSampledMs, coreSampledMs float64) sampler.DutySample {
		n := int(coreSampledMs * 1e6 / period)
		return sampler.DutySample{
			Duty:          profileDuty,
			Thread:        time.Duration(threadMs * 1e6),
			ThreadSampled: time.Duration(threadSampledMs * 1e6),
			CoreSampled:   time.Duration(float64(n) * period),
			Breakdown:     sampler.Breakdown{Event: "cpu-clock", Hz: 999, Samples: n},
		}
	}
	for _, tc := range []struct {
		name   string
		ds     sampler.DutySample
		busyNs float64
		pass   bool
	}{
		// The core was busy 600 ms; the samples saw 400 of it, all of
		// the thread's 300: its share is 50%, of the samples 75%.
		{"coverage below 1, thread seen in full", sample(300, 300, 400), 600e6, true},
		{"every busy ns seen", sample(300, 300, 600), 600e6, true},
		{"the thread under-sampled", sample(300, 150, 250), 600e6, false},
		{"over-covered by noise", sample(300, 310, 620), 600e6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ProfileShareCheck(results.Check{}, tc.ds, tc.busyNs)
			if c.Pass != tc.pass || c.Skipped {
				t.Errorf("pass %v skipped %v (%s: %s), want pass %v", c.Pass, c.Skipped, c.Display, c.Detail, tc.pass)
			}
		})
	}
	// What the breakdown gave before it knew its coverage, the thread's
	// share of the samples, is 25 points off in the first case.
	ds := sample(300, 300, 400)
	if old := float64(ds.ThreadSampled)/float64(ds.CoreSampled) - 300.0/600; old < profileShareTolerance {
		t.Errorf("the samples' share is %.2f off the truth, within the tolerance: the check could not tell", old)
	}
	if c := ProfileShareCheck(results.Check{}, sampler.DutySample{}, 0); c.Pass || c.Skipped {
		t.Errorf("an empty sample passed or was skipped: %+v", c)
	}
}

// The live check on this machine: a known duty cycle on the server core,
// sampled as a trial's server cores are. It must pass wherever sampling
// works: the breakdown's share is the thread's true share of the busy time.
func TestProfileShareLive(t *testing.T) {
	testenv.SkipUnlessRoot(t, "sampling a whole CPU with perf_event_open")
	c := checkProfileShare()
	if c.Skipped {
		t.Skip("skipped: " + c.Detail)
	}
	t.Logf("%s %s (%s): %s", c.Name, c.Display, c.Limit, c.Detail)
	if !c.Pass {
		t.Errorf("%s: %s, want within %s: %s", c.Name, c.Display, c.Limit, c.Detail)
	}
}

// The meters' effects on their own windows are information, never a pass
// or a failure.
func TestMeterEffectsAreInfo(t *testing.T) {
	e := 0.054
	recs := []results.Record{{Status: results.StatusOK, SyscallMeterEffect: &e, ProfileEffect: &e}}
	for _, c := range []results.Check{MeterEffect("epoll", recs), ProfileEffect("epoll", recs)} {
		if !c.Info || c.Pass || c.Failed() || c.Verdict() != "info" || c.Display != "+5.4%" {
			t.Errorf("%s: %+v reads as %s", c.Name, c, c.Verdict())
		}
	}
}

// TestMedianOfRuns: the profile check's median is of judged runs only; a
// run that failed to judge fails the check with its reason (it once
// sorted in as a zero, a perfect reading), and a skipped one skips it.
func TestMedianOfRuns(t *testing.T) {
	judged := func(v float64) results.Check {
		return results.Check{Value: v, Display: fmt.Sprintf("%+.1f points", 100*v), Pass: abs(v) <= profileShareTolerance}
	}
	runs := func(cs ...results.Check) func() results.Check {
		return func() results.Check { c := cs[0]; cs = cs[1:]; return c }
	}
	if c := medianOfRuns(runs(judged(-0.03), judged(0.10), judged(-0.02)), 3); c.Value != -0.02 || !c.Pass {
		t.Errorf("median of -3, +10, -2 points = %+v, want -2 points, pass", c)
	}
	failed := results.Check{Detail: "nothing to judge: core busy 0 ns"}
	if c := medianOfRuns(runs(judged(-0.03), failed, judged(-0.02)), 3); c.Pass || c.Skipped || c.Detail != failed.Detail {
		t.Errorf("a run that could not be judged: %+v, want that run's failure", c)
	}
	skipped := results.Check{Skipped: true, Detail: "no perf"}
	if c := medianOfRuns(runs(skipped, judged(0), judged(0)), 3); !c.Skipped {
		t.Errorf("a skipped run: %+v, want skipped", c)
	}
}
