package plots

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"ringbench/results"
)

// The io_uring ladder (uring/doc.go, the README's ladder table): each rung
// is the rung below plus one feature, run at one configuration, so the
// difference between two neighbours is what that one feature bought. The
// report draws it when a run holds at least two rungs at one point.

// rung is one step of the ladder, keyed by the variant its records name
// (family uring). plots reads only results, so the rung's feature is kept
// here as a short text; a test checks it against the backend registry.
type rung struct {
	variant string
	below   string // the variant it adds its feature to; "" for the first rung
	adds    string
	// counters are backend counters that qualify the rung's figures: a
	// non-zero median per op raises a flag with the counter's text.
	counters []rungCounter
}

type rungCounter struct{ name, text string }

// ladderFamily is the backend family whose variants are the rungs.
const ladderFamily = "uring"

// ladder lists the rungs in ladder order: the trunk, then the three
// branches that each add one feature to uring and do not stack.
var ladder = []rung{
	{variant: "basic", adds: "nothing: the naive port (one-shot accept, recv and send into its own buffers, one SQE per operation)"},
	{variant: "pbuf", below: "basic", adds: "a provided buffer ring"},
	{variant: "multishot", below: "pbuf", adds: "multishot accept and recv"},
	{variant: "fixed", below: "multishot", adds: "registered ring fd and direct descriptors"},
	{variant: "defer", below: "fixed", adds: "SINGLE_ISSUER|DEFER_TASKRUN"},
	{variant: "default", below: "defer", adds: "adaptive min-wait batching (gated by the request rate)"},
	{variant: "bundle", below: "default", adds: "recv and send bundles"},
	{variant: "sqpoll", below: "default", adds: "a kernel SQ polling thread (in place of DEFER_TASKRUN)",
		counters: []rungCounter{{"sq_shared_core_waits", "SQ thread shared the server core"}}},
	{variant: "zc", below: "default", adds: "SEND_ZC from registered buffers",
		counters: []rungCounter{{"zc_copied", "zero-copy sends the kernel copied anyway"}}},
}

// ladderRefs are drawn beside the rungs as reference lines: the C servers
// of both kernel paths, and Go's epoll.
var ladderRefs = []string{"c-uring", "c-epoll", "epoll"}

// ladderMetrics are the ladder's three panels.
var ladderMetrics = []struct{ metric, stem, title, unit string }{
	{results.MCyclesPerOp, "cycles-per-op", "Cycles per op", "cycles per op (server cores)"},
	{results.MSyscallsPerOp, "syscalls-per-op", "Syscalls per op", "syscalls per op (tracepoint)"},
	{results.MLatP99, "p99", "p99 latency", "p99 latency (µs)"},
}

// ladderPrefix begins the name of every ladder chart.
const ladderPrefix = "ladder-"

func rungLabel(variant string) string {
	return results.Config{Backend: ladderFamily, Variant: variant}.Label()
}

func rungOf(variant string) (rung, bool) {
	for _, rg := range ladder {
		if rg.variant == variant {
			return rg, true
		}
	}
	return rung{}, false
}

// ladderPoint is the point where the run holds the most rungs (any status:
// a skipped rung is shown with its reason), at least two; then the most
// measured rungs, the most repeats, open loop and the lowest rate.
func (r *run) ladderPoint() (point, bool) {
	var best point
	bestScore := [5]float64{-1}
	seen := map[point]bool{}
	for i := range r.groups {
		p := pointOf(r.groups[i].Config)
		if seen[p] {
			continue
		}
		seen[p] = true
		present, measured, repeats := 0, 0, 0
		for _, rg := range ladder {
			g := r.group(rungLabel(rg.variant), p)
			if g == nil {
				continue
			}
			present++
			if g.Counted() > 0 {
				measured++
				repeats += g.Counted()
			}
		}
		if present < 2 {
			continue
		}
		open := 0.0
		if p.Rate > 0 {
			open = 1
		}
		score := [5]float64{float64(present), float64(measured), float64(repeats), open, -p.Rate}
		if better(score[:], bestScore[:]) {
			best, bestScore = p, score
		}
	}
	return best, bestScore[0] >= 2
}

// ladderRungs lists the rungs present at p in ladder order.
func (r *run) ladderRungs(p point) []rung {
	var out []rung
	for _, rg := range ladder {
		if r.group(rungLabel(rg.variant), p) != nil {
			out = append(out, rg)
		}
	}
	return out
}

// rungBelow is the nearest rung under rg that measured metric at p: its
// own base, or the base's base when the base did not run, so a gap in the
// ladder is bridged and named rather than hidden.
func (r *run) rungBelow(rg rung, p point, metric string) (string, results.Stat, bool) {
	for v := rg.below; v != ""; {
		l := rungLabel(v)
		if s, ok := r.stat(l, p, metric); ok {
			return l, s, true
		}
		b, _ := rungOf(v)
		v = b.below
	}
	return "", results.Stat{}, false
}

// ladderStep is what a rung changed over the rung below it on one metric.
type ladderStep struct {
	below    string
	from, to results.Stat
}

func (s ladderStep) ratio() float64 { return s.to.Center / s.from.Center }

// significant is the U-test's verdict on the step (false with a single
// repeat on either side).
func (s ladderStep) significant() bool {
	if s.from.N < 2 || s.to.N < 2 {
		return false
	}
	c := s.from.Compare(s.to)
	return c.P < c.Alpha
}

func (s ladderStep) text() string {
	return fmt.Sprintf("%s vs %s (%s)", ratioN(s.to, s.from), s.below, significance(s.from, s.to))
}

func (r *run) step(rg rung, p point, metric string) (ladderStep, bool) {
	to, ok := r.stat(rungLabel(rg.variant), p, metric)
	if !ok {
		return ladderStep{}, false
	}
	below, from, ok := r.rungBelow(rg, p, metric)
	if !ok || from.Center == 0 {
		return ladderStep{}, false
	}
	return ladderStep{below, from, to}, true
}

// ladderSection adds the ladder at its point: the three charts, the table
// of rungs and what each feature paid, from the medians. Nothing when the
// run holds fewer than two rungs at any point.
func (r *run) ladderSection(doc *document, figs []figure) {
	p, ok := r.ladderPoint()
	if !ok {
		return
	}
	doc.add(heading{2, "The io_uring ladder"},
		paragraph(fmt.Sprintf("At %s, each rung of the io_uring ladder is the rung below it plus one feature "+
			"(bundle, sqpoll and zc each add theirs to uring and do not stack), so the step between two rungs is what "+
			"that feature bought at this load. Ratios are medians over the counted repeats (n), judged by the "+
			"Mann-Whitney U test as every comparison in this report; a rung whose base did not run is compared with "+
			"the nearest rung below that did, named in the cell. %s, and cycles/op counts the server cores.",
			p, r.cyclesText())))
	for _, f := range figs {
		doc.add(f)
	}
	doc.add(tableBlock{r.ladderTable(p)})
	if txt := r.ladderFindings(p); len(txt) > 0 {
		doc.add(bullets(txt))
	}
}

func (r *run) ladderTable(p point) *table {
	t := &table{header: []string{"rung", "adds", r.cyclesLabel("cycles/op"), "vs rung below", "syscalls/op",
		"vs rung below", "p99 µs", "n", "flags"},
		right:  []bool{false, false, true, false, true, false, true, true, false},
		badges: map[int]bool{8: true}}
	for _, rg := range r.ladderRungs(p) {
		l := rungLabel(rg.variant)
		g := r.group(l, p)
		row := []string{l, rg.adds}
		if len(g.OK) == 0 {
			na := notRun
			row = append(row, na, "", na, "", na, "0", r.ladderFlags(rg, g))
			t.rows = append(t.rows, row)
			continue
		}
		for _, m := range []string{results.MCyclesPerOp, results.MSyscallsPerOp} {
			row = append(row, t.metricCell(g, m), r.stepCell(rg, p, m))
		}
		row = append(row, t.metricCell(g, results.MLatP99), fmt.Sprint(g.Counted()), r.ladderFlags(rg, g))
		t.rows = append(t.rows, row)
	}
	return t
}

func (r *run) stepCell(rg rung, p point, metric string) string {
	s, ok := r.step(rg, p, metric)
	if !ok {
		return ""
	}
	return s.text()
}

// ladderFlags are the table's flags plus why a repeat did not run (a
// refused rung is listed with its reason, never left out) and the
// counters that qualify the rung's figures.
func (r *run) ladderFlags(rg rung, g *results.Group) string {
	var flags []string
	if f := flagsCell(g); f != "" {
		flags = append(flags, f)
	}
	reasons := map[string]bool{}
	for _, rec := range g.NotOK {
		why := rec.Status
		if rec.Error != "" {
			why += ": " + strings.ReplaceAll(rec.Error, ";", ",")
		}
		if !reasons[why] {
			reasons[why] = true
			flags = append(flags, why)
		}
	}
	for _, c := range rg.counters {
		v, n := countedMedian(g, func(rec *results.Record) (float64, bool) {
			x, ok := rec.BackendCounters[c.name]
			if !ok || rec.Ops == 0 {
				return 0, false
			}
			return float64(x) / float64(rec.Ops), true
		})
		if n > 0 && v > 0 {
			flags = append(flags, fmt.Sprintf("%s: %s %s/op", c.text, c.name, num(v)))
		}
	}
	return strings.Join(flags, "; ")
}

// ladderFindings say, from the measured medians only, what each feature
// did at this load: per step the change in cycles/op, syscalls/op and p99,
// then which features paid in cycles/op, which cost and which made no
// significant difference.
func (r *run) ladderFindings(p point) []string {
	var out []string
	var paid, cost, unclear []string
	minN := math.MaxInt
	for _, rg := range r.ladderRungs(p) {
		l := rungLabel(rg.variant)
		cyc, ok := r.step(rg, p, results.MCyclesPerOp)
		if !ok {
			continue
		}
		minN = min(minN, cyc.from.N, cyc.to.N)
		verb := "raised"
		if cyc.ratio() < 1 {
			verb = "cut"
		}
		s := fmt.Sprintf("%s over %s, %s: %s %s from %s to %s (%s; %s)", l, cyc.below, rg.adds, verb,
			r.cyclesLabel("cycles/op"), num(cyc.from.Center), num(cyc.to.Center), ratioN(cyc.to, cyc.from),
			significance(cyc.from, cyc.to))
		for _, m := range []struct{ metric, name, unit string }{
			{results.MSyscallsPerOp, "syscalls/op", ""}, {results.MLatP99, "p99", " µs"}} {
			if st, ok := r.step(rg, p, m.metric); ok {
				s += fmt.Sprintf("; %s %s → %s%s (%s vs %s)", m.name, num(st.from.Center), num(st.to.Center), m.unit,
					ratioN(st.to, st.from), st.below)
			}
		}
		out = append(out, s+r.caveat(p, l, cyc.below)+".")
		name := fmt.Sprintf("%s: %s", rg.adds, ratio(cyc.to.Center, cyc.from.Center))
		switch {
		case !cyc.significant():
			unclear = append(unclear, name)
		case cyc.ratio() < 1:
			paid = append(paid, name)
		default:
			cost = append(cost, name)
		}
	}
	if len(out) == 0 {
		return nil
	}
	var sum []string
	for _, c := range []struct {
		what  string
		items []string
	}{{"paid in cycles/op (significantly fewer)", paid}, {"cost cycles/op (significantly more)", cost},
		{"made no significant difference to cycles/op", unclear}} {
		if len(c.items) > 0 {
			sum = append(sum, c.what+": "+strings.Join(c.items, ", "))
		}
	}
	s := "At this load, features that " + strings.Join(sum, "; features that ") + "."
	if len(unclear) > 0 && minN < math.MaxInt {
		if pmin := minUTestP(minN, minN); pmin >= 0.05 {
			s += fmt.Sprintf(" With %s a side, no rank test can reach p < 0.05 (its smallest p is %.3f): "+
				"more repeats, not these medians, would settle the unclear steps.", plural(minN, "repeat"), pmin)
		}
	}
	out = append(out, s)
	if ref := r.ladderRefFinding(p); ref != "" {
		out = append(out, ref)
	}
	return out
}

// minUTestP is the smallest two-sided p a Mann-Whitney U test can give
// for samples of n1 and n2 without ties: every value of one below every
// value of the other, 2 / C(n1+n2, n1).
func minUTestP(n1, n2 int) float64 {
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return math.Min(1, 2/c)
}

// ladderRefFinding sets the cheapest measured rung beside the C servers.
func (r *run) ladderRefFinding(p point) string {
	best, bestS := "", results.Stat{}
	for _, rg := range r.ladderRungs(p) {
		l := rungLabel(rg.variant)
		if s, ok := r.stat(l, p, results.MCyclesPerOp); ok && (best == "" || s.Center < bestS.Center) {
			best, bestS = l, s
		}
	}
	if best == "" {
		return ""
	}
	var parts []string
	for _, ref := range ladderRefs {
		if s, ok := r.stat(ref, p, results.MCyclesPerOp); ok && s.Center > 0 {
			parts = append(parts, fmt.Sprintf("%s %s's %s (%s)", ratioN(bestS, s), ref, num(s.Center), significance(s, bestS)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("The cheapest rung, %s at %s %s, costs %s.", best, num(bestS.Center), r.cyclesLabel("cycles/op"),
		strings.Join(parts, ", "))
}

// ladderCharts draws the ladder at its point: one chart per panel, the
// rungs in ladder order as bars, the reference servers as labelled
// horizontal lines. Nil without a ladder in the run.
func (r *run) ladderCharts() ([]*Chart, []string) {
	p, ok := r.ladderPoint()
	if !ok {
		return nil, nil
	}
	var out []*Chart
	var skipped []string
	for _, m := range ladderMetrics {
		c, err := r.ladderChart(p, m.metric, m.stem, m.title, m.unit)
		if err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		out = append(out, c)
	}
	return out, skipped
}

func (r *run) ladderChart(p point, metric, stem, title, unit string) (*Chart, error) {
	rungs := r.ladderRungs(p)
	labels := make([]string, len(rungs))
	for i, rg := range rungs {
		labels[i] = rungLabel(rg.variant)
	}
	b, absent := r.metricSet(labels, p, metric)
	if !anyTrue(b.have) {
		return nil, fmt.Errorf("io_uring ladder at %s, %s: no rung has %s", p, title, metric)
	}
	if metric == results.MCyclesPerOp {
		title, unit = r.cyclesLabel(title), r.cyclesNoun()+" per op (server cores)"
	}
	c := r.newChart(ladderPrefix+stem+"-"+p.family().slug(), fmt.Sprintf("io_uring ladder: %s — %s", title, p),
		"rung (each adds one feature to the one below)", unit)
	c.Plot.NominalX(labels...)
	if err := addBars(c.Plot, b, r.colors(labels)); err != nil {
		return nil, err
	}
	refs, err := r.addRefLines(c, p, metric, len(labels))
	if err != nil {
		return nil, err
	}
	c.Plot.Y.Min = 0
	legendRoom(c.Plot, refs, false)
	padNominal(c.Plot, len(labels))
	c.Caption = fmt.Sprintf("%s per rung of the io_uring ladder at %s, in ladder order. Bars are medians over the "+
		"counted repeats; error bars are the 95%% confidence interval where enough repeats allow one. Dashed lines "+
		"are the reference servers' medians at the same point.%s", title, p, naText(absent))
	return c, nil
}

// addRefLines draws each reference server's median as a dashed horizontal
// line across the rungs, named with its value in the legend, and returns
// how many it drew.
func (r *run) addRefLines(c *Chart, p point, metric string, n int) (int, error) {
	drawn := 0
	for _, ref := range ladderRefs {
		s, ok := r.stat(ref, p, metric)
		if !ok {
			continue
		}
		line, err := plotter.NewLine(plotter.XYs{{X: -0.6, Y: s.Center}, {X: float64(n) - 0.4, Y: s.Center}})
		if err != nil {
			return 0, fmt.Errorf("make reference line: %w", err)
		}
		line.Color = r.labelColor(ref)
		line.Width = vg.Points(1.5)
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		c.Plot.Add(line)
		c.Plot.Legend.Add(fmt.Sprintf("%s %s", ref, num(s.Center)), line)
		drawn++
	}
	return drawn, nil
}
