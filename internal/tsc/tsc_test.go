package tsc

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatalf("read thread CPU clock: %v", err)
	}
	return ts.Nano()
}

// A spin of n cycles costs n/Hz seconds of the spinning thread's CPU time:
// the TSC and the frequency Hz reads agree, and the spin burns the CPU
// rather than sleeping. A shared machine may deschedule the thread mid-spin
// (the spin then counts time it did not run), so each size gets a few
// attempts and one must land within the tolerance.
func TestSpinCostsThreadCPU(t *testing.T) {
	hz, src := Hz()
	if hz <= 0 {
		t.Skipf("skipped: TSC frequency unknown (%s), so no CPU time to expect", src)
	}
	if err := Available(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	const (
		tolerance = 0.2
		attempts  = 20
	)
	spinners := []struct {
		name string
		spin func(uint64) uint64
	}{
		{"Spin", Spin},
		{"clock", func(n uint64) uint64 { return spinClock(n, hz) }},
	}
	for _, sp := range spinners {
		for _, ms := range []float64{1, 5, 20} {
			n := uint64(ms * 1e-3 * hz)
			t.Run(fmt.Sprintf("%s/%gms", sp.name, ms), func(t *testing.T) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				want := float64(n) / hz * 1e9
				var ratios []float64
				descheduled := 0
				for range attempts {
					w0 := time.Now()
					c0 := threadCPU(t)
					got := sp.spin(n)
					c1 := threadCPU(t)
					wall := float64(time.Since(w0))
					if got < n {
						t.Fatalf("spin(%d) returned %d cycles, fewer than asked", n, got)
					}
					cpu := float64(c1 - c0)
					if wall-cpu > tolerance/2*want {
						// Another task had the core for part of the spin,
						// which a TSC spin counts as spun: this attempt
						// says nothing about the spin's cost.
						descheduled++
						continue
					}
					r := cpu / want
					if math.Abs(r-1) <= tolerance {
						t.Logf("thread CPU time / expected = %.3f", r)
						return
					}
					ratios = append(ratios, r)
				}
				if len(ratios) == 0 {
					t.Skipf("skipped: the thread was descheduled in all %d attempts (a busy machine): no spin ran alone", descheduled)
				}
				t.Errorf("spin of %d cycles at %.0f Hz (%s): thread CPU time / %.0f ns = %.3f in every attempt that ran alone (%d others descheduled), want within %.0f%% of 1",
					n, hz, src, want, ratios, descheduled, tolerance*100)
			})
		}
	}
}

func TestSpinZero(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	// Spin(0) reads the counter twice and returns; it must not loop.
	if got := Spin(0); got > 1<<30 {
		t.Errorf("Spin(0) = %d cycles", got)
	}
}

func BenchmarkSpin1000(b *testing.B) {
	for b.Loop() {
		Spin(1000)
	}
}
