package meters

import (
	"fmt"

	"ringbench/results"
	"ringbench/workloads"
)

// CurveQuantiles are the percentiles of a record's latency curve.
var CurveQuantiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 99, 99.5, 99.9, 99.95, 99.99, 100}

// FillLatency copies the generator's latency histogram and error counts
// into rec, in microseconds.
func FillLatency(rec *results.Record, rep *workloads.Report) {
	rec.Errors = rep.Errors.Total()
	rec.ErrMismatch, rec.ErrReset, rec.ErrTimeout, rec.ErrLost = rep.Errors.Mismatch, rep.Errors.Reset, rep.Errors.Timeout, rep.Errors.Lost
	rec.ErrLate, rec.LatCensored, rec.Late, rec.Unsent, rec.Behind = rep.LateReplies, rep.Censored, rep.Late, rep.Unsent, rep.Behind
	if rep.Late > 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("%d requests sent over 1 ms late (%d of them because the generator itself ran late, the rest waited for a free slot behind the server); their latency counts from the intended time", rep.Late, rep.Behind))
	}
	if rep.Censored > 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("latency figures hold %d given-up requests at the time they were given up (lower bounds)", rep.Censored))
	}
	h := rep.Latency
	if h == nil || h.TotalCount() == 0 {
		return
	}
	us := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	rec.LatP50, rec.LatP90, rec.LatP99, rec.LatP999 = us(50), us(90), us(99), us(99.9)
	rec.LatMax = float64(h.Max()) / 1e3
	rec.LatMean = h.Mean() / 1e3
	for _, q := range CurveQuantiles {
		rec.Curve = append(rec.Curve, results.Percentile{P: q, US: us(q)})
	}
}
