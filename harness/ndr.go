package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"ringbench/backends"
	"ringbench/results"
)

// Criteria decide whether a trial sustained the rate it was offered.
type Criteria struct {
	// Loss is the largest loss ratio allowed (0: no drop, NDR; 0.005: PDR).
	Loss float64
	// P99US is the largest p99 latency allowed, in µs.
	P99US float64
	// RateTolerance is how far the answered rate may fall below the target
	// beyond the loss allowed: the trial must answer at least
	// target × (1 − Loss) × (1 − RateTolerance) ops/s.
	RateTolerance float64
}

// DefaultRateTolerance is the 2% an achieved rate may miss its target by.
const DefaultRateTolerance = 0.02

// LossRatio is the share of a window's offered requests that got no
// answer: (err_lost + err_timeout + unsent) / (ops + err_lost + err_timeout
// + unsent). Ops are the answered requests; lost (UDP) and timed-out
// requests were sent and never answered in time; unsent ones were due in
// the window but never sent because every slot was full. A wrong reply or
// a reset is not loss: Judge fails such a trial outright.
func LossRatio(rec results.Record) float64 {
	lost := float64(rec.ErrLost + rec.ErrTimeout + rec.Unsent)
	offered := float64(rec.Ops) + lost
	if offered == 0 {
		return 0
	}
	return lost / offered
}

// Verdict is a trial judged against Criteria.
type Verdict struct {
	Pass bool
	Why  string // the figures that decided it, or what broke
}

// Judge says whether rec sustained its target rate under c.
func (c Criteria) Judge(rec results.Record) Verdict {
	if rec.Status != results.StatusOK {
		return Verdict{Why: rec.Status + ": " + rec.Error}
	}
	loss := LossRatio(rec)
	figures := fmt.Sprintf("loss %.3g%%, p99 %.0f µs, %.0f of %.0f ops/s", 100*loss, rec.LatP99, rec.ThroughputOps, rec.RateTarget)
	var bad []string
	if wrong := rec.ErrMismatch + rec.ErrReset; wrong > 0 {
		bad = append(bad, fmt.Sprintf("%d wrong replies or resets", wrong))
	}
	if loss > c.Loss {
		bad = append(bad, fmt.Sprintf("loss %.3g%% > %.3g%%", 100*loss, 100*c.Loss))
	}
	if rec.LatP99 > c.P99US {
		bad = append(bad, fmt.Sprintf("p99 %.0f µs > %.0f µs", rec.LatP99, c.P99US))
	}
	if floor := rec.RateTarget * (1 - c.Loss) * (1 - c.RateTolerance); rec.ThroughputOps < floor {
		bad = append(bad, fmt.Sprintf("achieved %.0f < %.0f ops/s", rec.ThroughputOps, floor))
	}
	why := figures
	if len(bad) > 0 {
		why = strings.Join(bad, ", ")
	}
	if rec.ClientBound {
		why += ", client-bound"
	}
	if rec.Noisy {
		why += ", noisy"
	}
	return Verdict{Pass: len(bad) == 0, Why: why}
}

// Measure runs one open-loop trial at rate and returns its record. note
// gives the line to add to the record's notes before it is stored, so that
// results.jsonl says what the search made of each of its trials.
type Measure func(ctx context.Context, rate float64, note func(results.Record) string) (results.Record, error)

// Search finds the highest rate that passes Criteria between MinRate and
// MaxRate, in the manner of FD.io CSIT's MLRsearch: coarse steps up by
// Factor from MinRate until a trial fails, then bisection between the last
// pass and the first fail until (hi − lo) / hi ≤ Precision, then a
// confirmation trial at the rate found; a failed confirmation steps down by
// Precision, at most ConfirmSteps times. A failing trial that was client-
// bound stops the search: the generator, not the server, was the limit.
type Search struct {
	Criteria
	MinRate, MaxRate float64
	Factor           float64 // coarse step; default 2
	Precision        float64 // default 0.05
	// MaxAttempts bounds the trials at one rate while they come out noisy
	// (default 3); the last one is judged as it is.
	MaxAttempts  int
	ConfirmSteps int // default 3
	MaxTrials    int // every trial of the search; default 60
}

// SearchResult is where a search ended.
type SearchResult struct {
	// Rate is the confirmed rate; 0 when no rate passed (Stop says why).
	Rate float64
	// Confirmation is the trial that confirmed Rate.
	Confirmation *results.Record
	Trials       int
	// GeneratorBound: a failing trial at GeneratorBoundRate was client-
	// bound; Rate is then a lower bound of the server's.
	GeneratorBound     bool
	GeneratorBoundRate float64
	// PassedRate is the highest rate a trial passed at, confirmed or not:
	// when the generator failed every confirmation, what the server is
	// known to sustain.
	PassedRate float64
	Stop       string
	Steps      []results.NDRStep
}

// ErrTrialBudget is returned when a search used MaxTrials before it ended.
var ErrTrialBudget = errors.New("ndr search: trial budget spent")

func (s Search) withDefaults() (Search, error) {
	if s.Factor == 0 {
		s.Factor = 2
	}
	if s.Precision == 0 {
		s.Precision = 0.05
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 3
	}
	if s.ConfirmSteps == 0 {
		s.ConfirmSteps = 3
	}
	if s.MaxTrials == 0 {
		s.MaxTrials = 60
	}
	if s.RateTolerance == 0 {
		s.RateTolerance = DefaultRateTolerance
	}
	switch {
	case !(s.MinRate > 0):
		return s, fmt.Errorf("min rate must be positive, got %g", s.MinRate)
	case s.MaxRate < s.MinRate:
		return s, fmt.Errorf("max rate %g is below min rate %g", s.MaxRate, s.MinRate)
	case !(s.Factor > 1):
		return s, fmt.Errorf("coarse factor must be over 1, got %g", s.Factor)
	case !(s.Precision > 0 && s.Precision < 1):
		return s, fmt.Errorf("precision must be in (0, 1), got %g", s.Precision)
	case !(s.Loss >= 0 && s.Loss < 1):
		return s, fmt.Errorf("loss limit must be in [0, 1), got %g", s.Loss)
	case !(s.P99US > 0):
		return s, fmt.Errorf("p99 limit must be positive, got %g µs", s.P99US)
	}
	return s, nil
}

// Run searches with measure. On an error (a trial that failed, ctx done,
// the trial budget spent) it returns what it found so far with the error.
func (s Search) Run(ctx context.Context, measure Measure) (SearchResult, error) {
	s, err := s.withDefaults()
	if err != nil {
		return SearchResult{}, fmt.Errorf("ndr search: %w", err)
	}
	x := &searcher{s: s, measure: measure}
	err = x.run(ctx)
	return x.res, err
}

type searcher struct {
	s       Search
	measure Measure
	res     SearchResult
}

// step measures rate, again while the trial comes out noisy (up to
// MaxAttempts), and records the step.
func (x *searcher) step(ctx context.Context, phase string, rate float64) (results.Record, Verdict, error) {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return results.Record{}, Verdict{}, err
		}
		if x.res.Trials >= x.s.MaxTrials {
			return results.Record{}, Verdict{}, fmt.Errorf("%w: %d trials", ErrTrialBudget, x.s.MaxTrials)
		}
		x.res.Trials++
		k := x.res.Trials
		again := func(rec results.Record) bool {
			return rec.Status == results.StatusOK && rec.Noisy && attempt < x.s.MaxAttempts
		}
		note := func(rec results.Record) string {
			v := x.s.Judge(rec)
			n := fmt.Sprintf("ndr step %d: rate %.0f: %s (%s) [%s]", k, rate, passFail(v.Pass), v.Why, phase)
			if again(rec) {
				n += "; noisy, measured again"
			}
			return n
		}
		rec, err := x.measure(ctx, rate, note)
		if err != nil {
			return rec, Verdict{}, fmt.Errorf("ndr step %d at %.0f ops/s: %w", k, rate, err)
		}
		if again(rec) {
			continue
		}
		v := x.s.Judge(rec)
		x.res.Steps = append(x.res.Steps, results.NDRStep{Phase: phase, Rate: rate, Pass: v.Pass, Why: v.Why})
		return rec, v, nil
	}
}

func passFail(pass bool) string {
	if pass {
		return "pass"
	}
	return "fail"
}

func (x *searcher) generatorBound(rate float64) {
	if !x.res.GeneratorBound {
		x.res.GeneratorBound, x.res.GeneratorBoundRate = true, rate
	}
}

func (x *searcher) run(ctx context.Context) error {
	s := x.s
	lo, hi := 0.0, 0.0 // last pass; first fail (0: none yet)
	var stop string
	for rate := s.MinRate; ; rate = math.Min(math.Round(rate*s.Factor), s.MaxRate) {
		rec, v, err := x.step(ctx, "coarse", rate)
		if err != nil {
			return err
		}
		if !v.Pass {
			if rec.ClientBound {
				x.generatorBound(rate)
			}
			hi = rate
			break
		}
		lo = rate
		if rate >= s.MaxRate {
			stop = fmt.Sprintf("passed at the upper bound, %.0f ops/s", s.MaxRate)
			break
		}
	}
	for !x.res.GeneratorBound && lo > 0 && hi > 0 && (hi-lo)/hi > s.Precision {
		mid := math.Round((lo + hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		rec, v, err := x.step(ctx, "bisect", mid)
		if err != nil {
			return err
		}
		switch {
		case v.Pass:
			lo = mid
		case rec.ClientBound:
			x.generatorBound(mid)
		default:
			hi = mid
		}
	}
	switch {
	case x.res.GeneratorBound:
		stop = fmt.Sprintf("generator-bound at %.0f ops/s: a failing trial was client-bound, so the generator, not the server, was the limit; the rate is a lower bound of the server's", x.res.GeneratorBoundRate)
	case lo == 0:
		x.res.Stop = fmt.Sprintf("failed at the lower bound, %.0f ops/s", s.MinRate)
		return nil
	case stop == "":
		stop = fmt.Sprintf("bisected to %.0f (pass) – %.0f (fail) ops/s, within %.3g%%", lo, hi, 100*(hi-lo)/hi)
	}
	if lo == 0 {
		x.res.Stop = stop
		return nil
	}
	rate := lo
	tried := 0
	for ; tried < s.ConfirmSteps && rate >= s.MinRate; tried++ {
		rec, v, err := x.step(ctx, "confirm", rate)
		if err != nil {
			return err
		}
		if v.Pass {
			x.res.Rate, x.res.Confirmation = rate, &rec
			x.res.Stop = stop
			if tried > 0 {
				x.res.Stop += fmt.Sprintf("; confirmed %.0f ops/s after %d step(s) down", rate, tried)
			}
			return nil
		}
		if rec.ClientBound && !x.res.GeneratorBound {
			x.generatorBound(rate)
			stop += fmt.Sprintf("; generator-bound at %.0f ops/s in the confirmation (a failing trial was client-bound)", rate)
		}
		rate = math.Round(rate * (1 - s.Precision))
	}
	x.res.Stop = stop + fmt.Sprintf("; no confirmation passed (%d tried, from %.0f ops/s down)", tried, lo)
	if x.res.GeneratorBound {
		x.res.PassedRate = lo
		x.res.Stop += fmt.Sprintf("; the server passed at %.0f ops/s before the generator became the limit", lo)
	}
	return nil
}

// UpperBoundMargin: with no MaxRate, the search's upper bound is a closed-
// loop trial's achieved rate times this.
const UpperBoundMargin = 1.1

// NDR searches t's configuration (its Rate ignored) for its maximum
// sustainable rate under s, every trial appended to the store with a note
// on what the search made of it. With s.MaxRate 0, a closed-loop trial
// first sets it to UpperBoundMargin × its achieved rate. A noisy trial is
// measured again by the search (up to the runner's MaxAttempts), so that
// each attempt is kept. The error is the search's; the returned line says
// it too, with what was found before it.
func (r *Runner) NDR(ctx context.Context, t Trial, s Search) (results.NDR, error) {
	base := r.base(t)
	n := results.NDR{Run: r.Run, Time: time.Now().UTC(), Backend: base.Label(),
		LossLimit: s.Loss, P99LimitUS: s.P99US, MinRate: s.MinRate}
	if d, _ := s.withDefaults(); d.Precision > 0 {
		n.Precision = d.Precision // shown even when the search cannot start
	}
	fail := func(err error) (results.NDR, error) {
		n.Error, n.Skipped = err.Error(), errors.Is(err, backends.ErrNotSupported)
		if n.Stop == "" {
			n.Stop = "the search could not finish"
		}
		return n, err
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = r.MaxAttempts
	}
	saved := r.MaxAttempts
	r.MaxAttempts = 1
	defer func() { r.MaxAttempts = saved }()

	if s.MaxRate == 0 {
		probe := t
		probe.Rate = 0
		rec := r.trial(ctx, probe, func(rec *results.Record) {
			rec.Notes = append(rec.Notes, fmt.Sprintf("ndr: closed-loop trial; the search's upper bound is %.3g × its rate", UpperBoundMargin))
		})
		n.Trials++
		if err := trialError(ctx, rec); err != nil {
			return fail(fmt.Errorf("closed-loop trial for the upper bound: %w", err))
		}
		s.MaxRate = math.Max(math.Round(rec.ThroughputOps*UpperBoundMargin), s.MinRate)
	}
	n.MaxRate = s.MaxRate
	res, err := s.Run(ctx, func(ctx context.Context, rate float64, note func(results.Record) string) (results.Record, error) {
		step := t
		step.Rate = rate
		rec := r.trial(ctx, step, func(rec *results.Record) { rec.Notes = append(rec.Notes, note(*rec)) })
		return rec, trialError(ctx, rec)
	})
	n.Rate, n.Trials, n.Stop, n.Steps = res.Rate, n.Trials+res.Trials, res.Stop, res.Steps
	n.GeneratorBound, n.GeneratorBoundRate, n.PassedRate = res.GeneratorBound, res.GeneratorBoundRate, res.PassedRate
	n.Config = base.Config
	n.Config.RateTarget = res.Rate
	if c := res.Confirmation; c != nil {
		n.Config = c.Config
		n.CyclesPerOp, n.CyclesSource, n.ThroughputOps = c.CyclesPerOp, c.CyclesSource, c.ThroughputOps
		n.LossRatio, n.P99US = LossRatio(*c), c.LatP99
	}
	if err != nil {
		return fail(err)
	}
	return n, nil
}

// trialError is a record that is not a measurement as an error: a failed
// or skipped trial, or one cut short by ctx. A skipped trial's error stays
// errors.Is ErrNotSupported, so that its search is skipped, not failed. A
// step whose every request was lost failed as a trial (meters.Measured)
// but is a measurement to the search: 100% loss, a step down.
func trialError(ctx context.Context, rec results.Record) error {
	if rec.Status == results.StatusOK || allLost(rec) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec.Status == results.StatusSkipped {
		return notSupported("trial skipped: " + rec.Error)
	}
	return fmt.Errorf("trial %s: %s", rec.Status, rec.Error)
}

// allLost is a trial that sent requests and lost every one, with no wrong
// reply among them.
func allLost(rec results.Record) bool {
	return rec.Status == results.StatusFailed && rec.Ops == 0 && rec.ErrMismatch == 0 && rec.ErrLost+rec.ErrTimeout > 0
}
