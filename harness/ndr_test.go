package harness

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"ringbench/results"
)

// fakeServer answers trials as a server with known limits would.
type fakeServer struct {
	lossAbove   float64 // loses 1% of requests above this rate (0: never)
	p99         func(rate float64) float64
	clientBound float64 // the generator tops out here (0: never)
	noisyFirst  bool    // the first trial at each rate is noisy, with garbage figures
	flakyRepeat bool    // the second trial at any rate loses 5%, once
	failAt      float64 // a trial at or above this rate fails to run (0: never)

	seen  map[float64]int
	notes []string
}

func (f *fakeServer) measure(_ context.Context, rate float64, note func(results.Record) string) (results.Record, error) {
	if f.seen == nil {
		f.seen = map[float64]int{}
	}
	f.seen[rate]++
	n := f.seen[rate]
	rec := results.Record{Status: results.StatusOK, Config: results.Config{RateTarget: rate}, WindowS: 1}
	if f.failAt > 0 && rate >= f.failAt {
		return rec, errors.New("server died")
	}
	answered := rate
	if f.lossAbove > 0 && rate > f.lossAbove {
		answered = rate * 0.99
	}
	if f.clientBound > 0 && rate > f.clientBound {
		answered = f.clientBound
		rec.ClientBound = true
		rec.Unsent = uint64(rate - f.clientBound)
	}
	rec.Ops = uint64(answered)
	rec.ErrLost += uint64(math.Min(rate, f.clientBoundOr(rate)) - answered)
	rec.ThroughputOps = answered
	rec.LatP99 = 100
	if f.p99 != nil {
		rec.LatP99 = f.p99(rate)
	}
	rec.CyclesPerOp = 1e9 / rate
	if f.noisyFirst && n == 1 {
		rec.Noisy = true
		rec.ErrLost, rec.Ops, rec.ThroughputOps = uint64(rate/2), uint64(rate/2), rate/2
	}
	if f.flakyRepeat && n == 2 {
		rec.ErrLost, rec.Ops, rec.ThroughputOps = uint64(rate*0.05), uint64(rate*0.95), rate*0.95
	}
	rec.Notes = append(rec.Notes, note(rec))
	f.notes = append(f.notes, rec.Notes...)
	return rec, nil
}

func (f *fakeServer) clientBoundOr(rate float64) float64 {
	if f.clientBound > 0 && rate > f.clientBound {
		return f.clientBound
	}
	return rate
}

func TestSearch(t *testing.T) {
	base := Search{Criteria: Criteria{Loss: 0, P99US: 1000}, MinRate: 1000, MaxRate: 200000, Precision: 0.05}
	tests := []struct {
		name   string
		search func(Search) Search
		fake   *fakeServer
		// want: the rate found lies in [lo, hi]
		lo, hi      float64
		genBound    bool
		genRate     float64
		stop        string // a substring of Stop
		minTrials   int
		wantErr     error
		anyErr      bool
		confirmFail bool // a confirmation step failed before one passed
	}{
		{name: "loss above 37000", fake: &fakeServer{lossAbove: 37000}, lo: 37000 * 0.95, hi: 37000, stop: "bisected"},
		{name: "pdr allows the loss", search: func(s Search) Search { s.Loss = 0.02; return s },
			fake: &fakeServer{lossAbove: 37000}, lo: 200000, hi: 200000, stop: "upper bound"},
		{name: "p99 grows with rate", fake: &fakeServer{p99: func(r float64) float64 { return 50 + r/100 }},
			lo: 95000 * 0.95, hi: 95000, stop: "bisected"},
		{name: "generator-bound above 20000", fake: &fakeServer{lossAbove: 50000, clientBound: 20000},
			lo: 16000, hi: 16000, genBound: true, genRate: 32000, stop: "generator-bound at 32000"},
		{name: "noisy trials retried", fake: &fakeServer{lossAbove: 37000, noisyFirst: true},
			lo: 37000 * 0.95, hi: 37000, stop: "bisected", minTrials: 2 * 9},
		{name: "upper bound passes", search: func(s Search) Search { s.MaxRate = 50000; return s },
			fake: &fakeServer{}, lo: 50000, hi: 50000, stop: "upper bound, 50000"},
		{name: "fails at the lower bound", fake: &fakeServer{lossAbove: 500}, lo: 0, hi: 0, stop: "lower bound"},
		{name: "confirmation steps down", fake: &fakeServer{lossAbove: 37000, flakyRepeat: true},
			lo: 37000 * 0.95 * 0.95, hi: 37000 * 0.95, stop: "after 1 step(s) down", confirmFail: true},
		{name: "a trial that breaks ends the search", fake: &fakeServer{failAt: 8000}, anyErr: true},
		{name: "trial budget", search: func(s Search) Search { s.MaxTrials = 4; return s },
			fake: &fakeServer{lossAbove: 37000}, wantErr: ErrTrialBudget},
		{name: "bad bounds", search: func(s Search) Search { s.MaxRate = 10; return s }, fake: &fakeServer{}, anyErr: true},
		{name: "no p99 limit", search: func(s Search) Search { s.P99US = 0; return s }, fake: &fakeServer{}, anyErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			if tc.search != nil {
				s = tc.search(s)
			}
			res, err := s.Run(context.Background(), tc.fake.measure)
			if tc.wantErr != nil || tc.anyErr {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("Run: err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Rate < tc.lo || res.Rate > tc.hi {
				t.Errorf("rate %.0f, want in [%.0f, %.0f]; steps %+v", res.Rate, tc.lo, tc.hi, res.Steps)
			}
			if res.GeneratorBound != tc.genBound || res.GeneratorBoundRate != tc.genRate {
				t.Errorf("generator-bound %v at %.0f, want %v at %.0f", res.GeneratorBound, res.GeneratorBoundRate, tc.genBound, tc.genRate)
			}
			if !strings.Contains(res.Stop, tc.stop) {
				t.Errorf("stop %q, want it to say %q", res.Stop, tc.stop)
			}
			if res.Trials < tc.minTrials || res.Trials != len(tc.fake.notes) {
				t.Errorf("%d trials (%d measured), want at least %d", res.Trials, len(tc.fake.notes), tc.minTrials)
			}
			if res.Rate > 0 {
				last := res.Steps[len(res.Steps)-1]
				if res.Confirmation == nil || res.Confirmation.RateTarget != res.Rate || last.Phase != "confirm" || !last.Pass {
					t.Errorf("rate %.0f not confirmed by the last step %+v", res.Rate, last)
				}
			}
			failedConfirm := false
			for _, st := range res.Steps {
				failedConfirm = failedConfirm || (st.Phase == "confirm" && !st.Pass)
			}
			if failedConfirm != tc.confirmFail {
				t.Errorf("a confirmation failed: %v, want %v; steps %+v", failedConfirm, tc.confirmFail, res.Steps)
			}
			for i, n := range tc.fake.notes {
				if !strings.HasPrefix(n, "ndr step ") || !(strings.Contains(n, ": pass (") || strings.Contains(n, ": fail (")) {
					t.Errorf("note %d %q does not say the step and its verdict", i, n)
				}
			}
		})
	}
}

func TestJudge(t *testing.T) {
	c := Criteria{Loss: 0.01, P99US: 500, RateTolerance: DefaultRateTolerance}
	ok := func(mod func(*results.Record)) results.Record {
		r := results.Record{Status: results.StatusOK, Config: results.Config{RateTarget: 10000},
			Ops: 10000, ThroughputOps: 10000, LatP99: 200}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	tests := []struct {
		name string
		rec  results.Record
		pass bool
		why  string
	}{
		{"clean", ok(nil), true, "loss 0%"},
		{"loss within", ok(func(r *results.Record) { r.Ops, r.ErrLost, r.ThroughputOps = 9950, 50, 9950 }), true, "loss 0.5%"},
		{"loss over", ok(func(r *results.Record) { r.Ops, r.ErrLost, r.Unsent, r.ThroughputOps = 9800, 100, 100, 9800 }), false, "loss 2% > 1%"},
		{"timeouts are loss", ok(func(r *results.Record) { r.Ops, r.ErrTimeout, r.ThroughputOps = 9000, 1000, 9000 }), false, "loss 10%"},
		{"p99 over", ok(func(r *results.Record) { r.LatP99 = 900 }), false, "p99 900 µs > 500 µs"},
		{"short of the rate", ok(func(r *results.Record) { r.ThroughputOps = 9500 }), false, "achieved 9500"},
		{"wrong replies", ok(func(r *results.Record) { r.ErrMismatch = 1 }), false, "wrong replies"},
		{"failed trial", ok(func(r *results.Record) { r.Status, r.Error = results.StatusFailed, "boom" }), false, "failed: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := c.Judge(tc.rec)
			if v.Pass != tc.pass || !strings.Contains(v.Why, tc.why) {
				t.Errorf("Judge = %+v, want pass %v saying %q", v, tc.pass, tc.why)
			}
		})
	}
}

// A step that lost every request failed as a trial (meters.Measured) but
// is a measurement to the search, 100% loss and a step down; a trial that
// echoed wrong bytes or sent nothing still ends it.
func TestTrialErrorAllLost(t *testing.T) {
	ctx := context.Background()
	failed := func(ops, lost, mismatch uint64) results.Record {
		return results.Record{Status: results.StatusFailed, Error: "x", Ops: ops, ErrLost: lost, ErrMismatch: mismatch}
	}
	if err := trialError(ctx, failed(0, 500, 0)); err != nil {
		t.Errorf("every request lost: %v, want a measurement", err)
	}
	for name, rec := range map[string]results.Record{"wrong bytes": failed(0, 500, 3), "nothing sent": failed(0, 0, 0)} {
		if err := trialError(ctx, rec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
