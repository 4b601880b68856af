package plots

import (
	"fmt"
	"strings"

	"ringbench/results"
)

// The C baselines (c-epoll, c-uring) run the same kernel path as a Go
// backend without Go: the ratio of the two at the same configuration is
// what Go's runtime and the backend's code cost on top of the path.

// goCRatio is Go label's metric over its C baseline's at p: the ratio of
// medians, marked "(n=1)" on a single repeat, with the U-test's verdict
// as every comparison in the report has.
func (r *run) goCRatio(label string, p point, metric string) (string, bool) {
	c, ok := r.baselineFor(label, p)
	if !ok {
		return "", false
	}
	gs, okG := r.stat(label, p, metric)
	cs, okC := r.stat(c, p, metric)
	if !okG || !okC || cs.Center == 0 {
		return "", false
	}
	return fmt.Sprintf("%s %s (%s)", ratioN(gs, cs), c, significance(cs, gs)), true
}

// goCCell is the table cell of a Go backend's ratio to its C baseline at
// the same configuration; empty for rows with no baseline beside them.
func (r *run) goCCell(g *results.Group, metric string) string {
	s, ok := r.goCRatio(g.Config.Label(), pointOf(g.Config), metric)
	if !ok {
		return ""
	}
	return s
}

// goCText is the line a chart's caption carries: each Go backend's metric
// over its C baseline's at p.
func (r *run) goCText(p point, metric string) string {
	var parts []string
	for _, l := range r.labels {
		if s, ok := r.goCRatio(l, p, metric); ok {
			parts = append(parts, l+" "+s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf(" Go/C %s (each Go backend over the C baseline of its path, same configuration): %s.",
		metric, strings.Join(parts, "; "))
}

// baselineFindings say, at p, what each Go backend costs over its C
// baseline, on both cost meters.
func (r *run) baselineFindings(p point) []string {
	var out []string
	for _, l := range r.labels {
		c, ok := r.baselineFor(l, p)
		if !ok {
			continue
		}
		var parts []string
		for _, m := range results.CostMetrics {
			gs, okG := r.stat(l, p, m)
			cs, okC := r.stat(c, p, m)
			if !okG || !okC || cs.Center == 0 {
				continue
			}
			unit := m
			if m == results.MCyclesPerOp {
				unit = r.cyclesLabel(m)
			}
			parts = append(parts, fmt.Sprintf("%s %s (%s vs %s; %s)", ratioN(gs, cs), unit, num(gs.Center), num(cs.Center),
				significance(cs, gs)))
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("At %s, %s (Go) cost %s of its C baseline %s's%s.", p, l,
				strings.Join(parts, " and "), c, r.caveat(p, l, c)))
		}
	}
	return out
}
