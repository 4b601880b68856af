package sampler

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/sampler/internal/perf"
)

// ErrBusyCore says other tasks kept switching the measuring thread out.
var ErrBusyCore = errors.New("the core is too busy with other tasks to measure on")

// Overhead is what sampling costs a busy core, measured by MeasureOverhead.
type Overhead struct {
	Event string `json:"event"`
	Hz    int    `json:"hz"`
	CPU   int    `json:"cpu"`
	Pairs int    `json:"pairs"`
	// Fraction is the share of the core's time that sampling took from
	// the work running there: 1 − (work done per second with sampling /
	// without), the median over the pairs.
	Fraction float64 `json:"fraction"`
	// PerSampleNs is one sample's cost: Fraction / Hz, in nanoseconds.
	PerSampleNs float64 `json:"per_sample_ns"`
	// Samples is how many samples the sampled halves took, all told.
	Samples int `json:"samples"`
	// Discarded counts pairs thrown away because the thread was switched
	// out during one of its halves (on a shared machine, other tasks).
	Discarded int `json:"discarded"`
}

// MeasureOverhead measures what sampling at hz costs cpu: a thread pinned
// there runs a fixed loop of arithmetic (no memory traffic, no syscalls)
// in pairs of slices, one with the sampling event enabled and one
// without, in alternating order so that drift in the machine's load falls
// on both. The work done per wall second of each half is counted; a sample
// interrupts the loop and takes its time, so the halves' ratio is the
// overhead. The median over pairs resists another task's burst on the
// core. It needs root (a whole-CPU event), as Open does.
//
// This is the cost to user code in a busy loop; a trial's own figure is a
// paired trial (see PairedOverhead), since kernel-heavy code may pay more
// per sample (deeper kernel stacks to walk).
func MeasureOverhead(cpu, hz, pairs int, slice time.Duration) (o Overhead, err error) {
	if hz == 0 {
		hz = DefaultHz
	}
	if pairs < 1 || slice <= 0 {
		return Overhead{}, fmt.Errorf("measure sampling overhead: %d pairs of %v, want at least one of a positive length", pairs, slice)
	}
	kind := perf.CPUClock
	if ev, err := perf.OpenCPU(perf.Cycles, cpu, hz, 1); err == nil {
		ev.Close()
		kind = perf.Cycles
	}
	ev, err := perf.OpenCPU(kind, cpu, hz, 256)
	if err != nil {
		return Overhead{}, unsupported(err)
	}
	defer ev.Close()

	o = Overhead{Event: kind.String(), Hz: hz, CPU: cpu, Pairs: pairs}
	type result struct {
		ratios []float64
		err    error
	}
	done := make(chan result, 1)
	go func() {
		// Locked for the pin; the deferred restore of the affinity runs
		// before the unlock hands the thread back to the scheduler.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		restore, err := pinThread(cpu)
		if err != nil {
			done <- result{err: fmt.Errorf("measure sampling overhead: %w", err)}
			return
		}
		defer restore()
		var r result
		var raw []byte
		work(slice) // warm up on the CPU
		for i := 0; len(r.ratios) < pairs && i < 10*pairs; i++ {
			var with, without float64
			switched := false
			for j := range 2 {
				sampled := (i+j)%2 == 0
				if sampled {
					if err := ev.Enable(); err != nil {
						r.err = err
						break
					}
				}
				rate, sw := work(slice)
				switched = switched || sw
				if sampled {
					if err := ev.Disable(); err != nil {
						r.err = err
						break
					}
					with = rate
				} else {
					without = rate
				}
			}
			if r.err != nil {
				break
			}
			raw = ev.Drain(raw)
			if switched {
				o.Discarded++ // another task took the core: not sampling's doing
				continue
			}
			r.ratios = append(r.ratios, with/without)
		}
		var recs perf.Records
		if err := perf.Decode(&recs, raw); err != nil && r.err == nil {
			r.err = err
		}
		o.Samples = len(recs.Samples)
		done <- r
	}()
	r := <-done
	if r.err != nil {
		return Overhead{}, fmt.Errorf("measure sampling overhead: %w", r.err)
	}
	if len(r.ratios) == 0 {
		return Overhead{}, fmt.Errorf("measure sampling overhead: all %d pairs saw the thread switched out: %w", o.Discarded, ErrBusyCore)
	}
	o.Pairs = len(r.ratios)
	slices.Sort(r.ratios)
	med := r.ratios[len(r.ratios)/2]
	if len(r.ratios)%2 == 0 {
		med = (r.ratios[len(r.ratios)/2-1] + med) / 2
	}
	o.Fraction = 1 - med
	o.PerSampleNs = o.Fraction / float64(hz) * 1e9
	return o, nil
}

var workSink atomic.Uint64

// work spins a dependent chain of multiplies for d and returns how many
// chunks of it ran per second of wall time, and whether the thread was
// switched out meanwhile.
func work(d time.Duration) (float64, bool) {
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &before)
	x := uint64(1)
	chunks := 0
	start := time.Now()
	var el time.Duration
	for el < d {
		for range 4096 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		chunks++
		el = time.Since(start)
	}
	workSink.Add(x)
	unix.Getrusage(unix.RUSAGE_THREAD, &after)
	switched := after.Nivcsw != before.Nivcsw || after.Nvcsw != before.Nvcsw
	return float64(chunks) / el.Seconds(), switched
}

// PairedOverhead is a trial's sampling overhead from a paired measurement:
// the same load run twice, sampled and not, each window's cycles per op of
// the server cores; the fraction of cycles per op that sampling added.
func PairedOverhead(sampledCyclesPerOp, unsampledCyclesPerOp float64) (float64, error) {
	if unsampledCyclesPerOp <= 0 || sampledCyclesPerOp <= 0 {
		return 0, fmt.Errorf("paired sampling overhead: cycles per op %v sampled, %v not: want both > 0", sampledCyclesPerOp, unsampledCyclesPerOp)
	}
	return sampledCyclesPerOp/unsampledCyclesPerOp - 1, nil
}
