package plots

import (
	"math"
	"testing"

	"ringbench/results"
)

func TestCyclesLabel(t *testing.T) {
	rec := func(src string) results.Record {
		return results.Record{Status: results.StatusOK, Ops: 1, Cycles: 1, CyclesSource: src}
	}
	for _, tc := range []struct {
		name  string
		srcs  []string
		label string
		noun  string
	}{
		{"hardware counter", []string{"perf", "perf"}, "cycles/op", "cycles"},
		{"busy time × TSC", []string{"tsc"}, "cycles/op (TSC-equivalent)", "TSC-equivalent cycles"},
		{"mixed", []string{"perf", "tsc"}, "cycles/op (perf or TSC-equivalent)", "perf or TSC-equivalent cycles"},
		{"none read", nil, "cycles/op", "cycles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var recs []results.Record
			for _, s := range tc.srcs {
				recs = append(recs, rec(s))
			}
			r := newRun(recs, nil)
			if got := r.cyclesLabel("cycles/op"); got != tc.label {
				t.Errorf("cyclesLabel = %q, want %q", got, tc.label)
			}
			if got := r.cyclesNoun(); got != tc.noun {
				t.Errorf("cyclesNoun = %q, want %q", got, tc.noun)
			}
		})
	}
}

func TestCountedMedian(t *testing.T) {
	eff := func(v float64) *float64 { return &v }
	ok := func(e *float64, flags ...bool) results.Record {
		r := results.Record{Status: results.StatusOK, SyscallMeterEffect: e}
		if len(flags) > 0 {
			r.Noisy = flags[0]
		}
		return r
	}
	for _, tc := range []struct {
		name string
		recs []results.Record
		want float64
		n    int
	}{
		{"odd", []results.Record{ok(eff(0.03)), ok(eff(0.01)), ok(eff(0.02))}, 0.02, 3},
		{"even", []results.Record{ok(eff(0.01)), ok(eff(0.04))}, 0.025, 2},
		{"unread left out", []results.Record{ok(nil), ok(eff(0.05))}, 0.05, 1},
		{"flagged left out", []results.Record{ok(eff(0.9), true), ok(eff(0.01))}, 0.01, 1},
		{"none", []results.Record{ok(nil)}, math.NaN(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := results.Group{OK: tc.recs}
			got, n := countedMedian(&g, syscallMeterEffect)
			if n != tc.n || (got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want))) {
				t.Errorf("countedMedian = %v over %d, want %v over %d", got, n, tc.want, tc.n)
			}
		})
	}
}

// A record from before the core-busy meter named its source has a zero
// outside_ns_per_op that is no measurement: it shows as missing, with why.
func TestOutsideNotReadIsNotZero(t *testing.T) {
	old := results.Record{Status: results.StatusOK, Ops: 10, CPUNs: 100, CPUNsPerOp: 10}
	g := results.Group{Key: "k", OK: []results.Record{old}}
	var tbl table
	if got := tbl.outsideCell(&g); got != missing+" [1]" {
		t.Errorf("outside cell = %q, want %q", got, missing+" [1]")
	}
	g.OK[0].BusySource = "timer_list"
	g.OK[0].OutsideNsPerOp = -2
	if got := tbl.outsideCell(&g); got != "-2.00" {
		t.Errorf("outside cell = %q, want the negative value as it is", got)
	}
}
