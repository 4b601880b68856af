package sampler_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"ringbench/internal/testenv"
	"ringbench/sampler"
)

func TestMeasureOverhead(t *testing.T) {
	testenv.SkipUnlessRoot(t, "sampling a whole CPU with perf_event_open")
	o, err := sampler.MeasureOverhead(testCPU(), 0, 3, 20*time.Millisecond)
	if errors.Is(err, sampler.ErrBusyCore) {
		t.Skipf("skipped: %v", err)
	}
	testenv.SkipIfUnsupported(t, err)
	t.Logf("%+v", o)
	// At least one sampled half of 20 ms at 999 Hz: about 20 samples; the
	// size of the overhead is a benchmark's business
	// (BenchmarkSamplingOverhead), not a test's.
	if o.Samples < 10 || o.Pairs < 1 || o.Hz != sampler.DefaultHz {
		t.Errorf("overhead %+v: want samples from at least one pair at %d Hz", o, sampler.DefaultHz)
	}
	if math.IsNaN(o.Fraction) || o.Fraction >= 1 || o.Fraction <= -1 {
		t.Errorf("overhead fraction %v is not a fraction", o.Fraction)
	}
}

func TestPairedOverhead(t *testing.T) {
	for _, tc := range []struct {
		with, without, want float64
		fails               bool
	}{
		{1010, 1000, 0.01, false},
		{1000, 1000, 0, false},
		{1000, 0, 0, true},
		{0, 1000, 0, true},
	} {
		got, err := sampler.PairedOverhead(tc.with, tc.without)
		if (err != nil) != tc.fails || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("PairedOverhead(%v, %v) = %v, %v; want %v (fails %v)", tc.with, tc.without, got, err, tc.want, tc.fails)
		}
	}
}

// BenchmarkSamplingOverhead measures what sampling at the default rate
// costs a busy core: go test -run - -bench SamplingOverhead -benchtime 1x.
func BenchmarkSamplingOverhead(b *testing.B) {
	testenv.SkipUnlessRoot(b, "sampling a whole CPU with perf_event_open")
	for _, hz := range []int{sampler.DefaultHz, 4999} {
		b.Run(time.Duration(int64(time.Second)/int64(hz)).String(), func(b *testing.B) {
			var o sampler.Overhead
			var err error
			for b.Loop() {
				o, err = sampler.MeasureOverhead(testCPU(), hz, 101, 5*time.Millisecond)
				if errors.Is(err, sampler.ErrBusyCore) {
					b.Skipf("skipped: %v", err)
				}
				testenv.SkipIfUnsupported(b, err)
			}
			b.ReportMetric(o.Fraction*100, "overhead-%")
			b.ReportMetric(o.PerSampleNs, "ns/sample")
			b.ReportMetric(float64(o.Hz), "Hz")
			b.ReportMetric(float64(o.Pairs), "pairs")
		})
	}
}
