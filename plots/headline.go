package plots

import (
	"fmt"
	"strings"

	"ringbench/results"
)

// maxKeyFindings bounds the first screen's findings: a reader who came
// for the answer gets it in a few sentences, and the full list follows.
const maxKeyFindings = 5

// headlinePoint is where the first screen compares the paths: of every
// family's main point, the one where most paths have a measured breakdown,
// then most have cycles per op; the earlier family on a tie.
func (r *run) headlinePoint() (family, point, bool) {
	var bestF family
	var bestP point
	best := [2]int{-1, -1}
	for _, f := range r.order {
		p, ok := r.mainPoint(f)
		if !ok {
			continue
		}
		var score [2]int
		for _, l := range r.labels {
			if _, ok := r.breakdownAt(l, p); ok {
				score[0]++
			}
			if _, ok := r.stat(l, p, results.MCyclesPerOp); ok {
				score[1]++
			}
		}
		if score[0] > best[0] || (score[0] == best[0] && score[1] > best[1]) {
			bestF, bestP, best = f, p, score
		}
	}
	return bestF, bestP, best[1] > 0 || best[0] > 0
}

// keyFindings are the first screen's sentences, each with its confidence
// and n: what each path costs at the headline point against the first
// (cycles per op, as the headline chart), what Go costs over the C
// baseline of its path, what the breakdown says each path removed and
// kept, and the bypass paths measured elsewhere.
func (r *run) keyFindings(p point) []string {
	var out []string
	if s := r.headlineCost(p); s != "" {
		out = append(out, s)
	}
	// The C baselines' breakdowns are in the middle ground; here they
	// enter as the Go/C ratio, one sentence for every pair.
	if bf := r.baselineFindings(p); len(bf) > 0 {
		out = append(out, strings.Join(bf, " "))
	}
	for _, s := range r.breakdownTexts(p, true) {
		if l, _, _ := strings.Cut(s, " "); !r.isBaseline(l) {
			out = append(out, s)
		}
	}
	// Paths that did not run at the headline point (DPDK has no kernel
	// TCP) are told from the main point of another family.
	told := map[string]bool{}
	for _, l := range r.labelsAt(p) {
		told[l] = true
	}
	for _, f := range r.order {
		q, ok := r.mainPoint(f)
		if !ok || q == p {
			continue
		}
		for _, s := range r.breakdownTexts(q, true) {
			l, _, _ := strings.Cut(s, " ")
			if told[l] {
				continue
			}
			told[l] = true
			out = append(out, "At "+q.String()+", "+s)
		}
	}
	if len(out) > maxKeyFindings {
		out = out[:maxKeyFindings]
	}
	return out
}

// headlineCost sets each Go path's cycles per op at p against the first
// path's, as the headline chart's totals, with the U-test's verdict.
func (r *run) headlineCost(p point) string {
	var ref string
	var rs results.Stat
	for _, l := range r.labels {
		if s, ok := r.stat(l, p, results.MCyclesPerOp); ok {
			ref, rs = l, s
			break
		}
	}
	if ref == "" {
		return ""
	}
	var parts []string
	for _, l := range r.labels {
		if r.isBaseline(l) || l == ref {
			continue
		}
		s, ok := r.stat(l, p, results.MCyclesPerOp)
		if !ok {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s vs %s; %s)", l, ratioN(s, rs), num(s.Center), num(rs.Center),
			significance(rs, s)))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("At the same offered load (%s), each path's %s per op against %s's: %s%s.",
		p, r.cyclesNoun(), ref, strings.Join(parts, "; "), r.caveat(p, r.labelsAt(p)...))
}

func (r *run) isBaseline(label string) bool {
	_, ok := baselineOf(label)
	return ok
}
