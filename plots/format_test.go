package plots

import (
	"math"
	"testing"

	"ringbench/results"
)

func TestIntervalAndRatioText(t *testing.T) {
	stat := func(vals ...float64) results.Stat {
		g := results.Summarize(func() []results.Record {
			var recs []results.Record
			for i, v := range vals {
				recs = append(recs, results.Record{Status: results.StatusOK, Repeat: i, Ops: 1, Cycles: v, CyclesPerOp: v})
			}
			return recs
		}())[0]
		s, _ := g.Stat(results.MCyclesPerOp)
		return s
	}
	six := stat(100, 101, 99, 102, 98, 100)
	three := stat(100, 101, 99)
	one := stat(200)
	for _, tc := range []struct{ name, got, want string }{
		{"six repeats: an interval", ciPct(six), "±2%"},
		{"three repeats: none, said so", ciPct(three), "(n=3, no interval)"},
		{"one repeat", ciPct(one), "(n=1, no interval)"},
		{"ratio of repeated figures", ratioN(three, six), "1.00×"},
		{"ratio from one repeat says so", ratioN(one, six), "2.00× (n=1)"},
		{"either side", ratioN(six, one), "0.50× (n=1)"},
		{"no test from one repeat", significance(one, six), "n=1+6, no test"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if math.IsInf(six.Lo, 0) {
		t.Error("six repeats gave no interval")
	}
}
