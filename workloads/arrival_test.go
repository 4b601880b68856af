package workloads

import (
	"math"
	"slices"
	"testing"
)

// TestArrivalsConstant: two loops' shares of a constant schedule interleave
// into one evenly spaced schedule at the global rate.
func TestArrivalsConstant(t *testing.T) {
	const rate, t0 = 3000.0, int64(1e9)
	var times []int64
	for i := range 2 {
		a := newArrivals(Constant, rate, 0.5, i, t0)
		for range 1500 {
			times = append(times, a.next)
			a.advance()
		}
	}
	slices.Sort(times)
	gap := 1e9 / rate
	for i, at := range times {
		if want := float64(t0) + float64(i)*gap; math.Abs(float64(at)-want) > 2 { // ns truncation
			t.Fatalf("arrival %d at %d ns, want %.0f", i, at, want)
		}
	}
}

// TestArrivalsPoisson: exponential gaps have the mean 1/rate and a
// coefficient of variation of 1.
func TestArrivalsPoisson(t *testing.T) {
	const rate, n = 10000.0, 200000
	a := newArrivals(Poisson, rate, 1, 0, 0)
	var sum, sumSq float64
	prev := int64(0)
	for range n {
		g := float64(a.next - prev)
		prev = a.next
		sum += g
		sumSq += g * g
		a.advance()
	}
	mean := sum / n
	cv := math.Sqrt(sumSq/n-mean*mean) / mean
	if want := 1e9 / rate; math.Abs(mean-want)/want > 0.01 {
		t.Errorf("mean gap %.1f ns, want %.1f ± 1%%", mean, want)
	}
	if math.Abs(cv-1) > 0.02 {
		t.Errorf("gap coefficient of variation %.3f, want 1 (exponential)", cv)
	}
}

func TestBacklogFIFO(t *testing.T) {
	var b backlog
	next, want := int64(0), int64(0)
	// Interleave pushes and pops across several growths and wrap-arounds.
	for round := range 50 {
		for range round + 3 {
			b.push(next)
			next++
		}
		for range round + 1 {
			if b.at(0) != want || b.peek() != want {
				t.Fatalf("head %d/%d, want %d", b.at(0), b.peek(), want)
			}
			if got := b.pop(); got != want {
				t.Fatalf("pop %d, want %d", got, want)
			}
			want++
		}
	}
	if b.len() != int(next-want) {
		t.Errorf("len %d, want %d", b.len(), next-want)
	}
	for i := range b.len() {
		if b.at(i) != want+int64(i) {
			t.Fatalf("at(%d) = %d, want %d", i, b.at(i), want+int64(i))
		}
	}
}
