package plots

import (
	"fmt"
	"sort"
	"strings"

	"ringbench/results"
)

// findings are the report's summary: sentences whose every number is read
// from the records or the lesson.
func (r *run) findings() []string {
	var out []string
	for _, f := range r.order {
		p, ok := r.mainPoint(f)
		if !ok {
			continue
		}
		if s := r.syscallFinding(p); s != "" {
			out = append(out, s)
		}
		out = append(out, r.costFindings(p)...)
	}
	for _, f := range r.order {
		if s := r.throughputFinding(f); s != "" {
			out = append(out, s)
		}
	}
	if s := r.meterEffectFinding(); s != "" {
		out = append(out, s)
	}
	out = append(out, r.crossingFindings()...)
	if s := r.featureFinding(); s != "" {
		out = append(out, s)
	}
	out = append(out, r.trialFinding())
	return out
}

// baseline is the first label (in lesson order: epoll first) with a value
// of metric at p; the others are compared with it.
func (r *run) baseline(p point, metric string) (string, results.Stat, bool) {
	for _, l := range r.labels {
		if s, ok := r.stat(l, p, metric); ok {
			return l, s, true
		}
	}
	return "", results.Stat{}, false
}

func (r *run) syscallFinding(p point) string {
	base, bs, ok := r.baseline(p, results.MSyscallsPerOp)
	if !ok {
		return ""
	}
	var others []string
	for _, l := range r.labels {
		if l == base {
			continue
		}
		if s, ok := r.stat(l, p, results.MSyscallsPerOp); ok {
			others = append(others, fmt.Sprintf("%s %s", l, num(s.Center)))
		}
	}
	if len(others) == 0 {
		return ""
	}
	return fmt.Sprintf("At %s, syscalls per op (outside count, median): %s, against %s's %s.",
		p, strings.Join(others, ", "), base, num(bs.Center))
}

// costFindings compare each backend's cost per op at p with the baseline's,
// each pair judged on the cost meter with the tighter spread for that pair
// (results.CostMeter), named with its reason.
func (r *run) costFindings(p point) []string {
	var base string
	var bg *results.Group
	for _, l := range r.labels {
		if g := r.group(l, p); g != nil && hasCost(g) {
			base, bg = l, g
			break
		}
	}
	if bg == nil {
		return nil
	}
	var parts []string
	for _, l := range r.labels {
		g := r.group(l, p)
		if l == base || g == nil {
			continue
		}
		c, ok := results.CostMeter(bg, g)
		if !ok {
			continue
		}
		unit := c.Metric
		if unit == results.MCyclesPerOp {
			unit = r.cyclesLabel(unit)
		}
		parts = append(parts, fmt.Sprintf("%s's %s was %s %s's (%s vs %s; %s; judged on %s)%s",
			l, unit, ratioN(c.B, c.A), base, num(c.B.Center), num(c.A.Center), significance(c.A, c.B),
			spreadText(c), r.caveat(p, base, l)))
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("Cost per op at %s: %s.", p, strings.Join(parts, "; "))}
}

func hasCost(g *results.Group) bool {
	for _, m := range results.CostMetrics {
		if _, ok := g.Stat(m); ok {
			return true
		}
	}
	return false
}

// significance says what benchstat would: the U-test's p-value, and "not
// significant" when it does not clear alpha. A single repeat on either
// side is no test at all, and says so.
func significance(a, b results.Stat) string {
	if a.N < 2 || b.N < 2 {
		return fmt.Sprintf("n=%d+%d, no test", a.N, b.N)
	}
	c := a.Compare(b)
	verdict := "significant"
	if c.P >= c.Alpha {
		verdict = "not significant"
	}
	return fmt.Sprintf("%s, p=%.3f n=%d+%d", verdict, c.P, c.N1, c.N2)
}

func (r *run) throughputFinding(f family) string {
	type best struct {
		label string
		ops   float64
		p     point
		n     int
	}
	var bests []best
	for _, l := range r.labels {
		var b best
		for _, p := range r.points(f) {
			if p.Rate != 0 {
				continue
			}
			if g := r.group(l, p); g != nil && g.SharesCPUs() {
				continue // the generator took part of the server's cores
			}
			s, ok := r.stat(l, p, results.MThroughput)
			if ok && s.Center > b.ops {
				b = best{l, s.Center, p, s.N}
			}
		}
		if b.label != "" {
			bests = append(bests, b)
		}
	}
	if len(bests) == 0 {
		return ""
	}
	sort.SliceStable(bests, func(i, j int) bool { return bests[i].ops > bests[j].ops })
	var parts []string
	for _, b := range bests {
		s := fmt.Sprintf("%s %s ops/s (%d×%d, n=%d)", b.label, num(b.ops), b.p.Conns, b.p.Depth, b.n)
		s += r.caveat(b.p, b.label)
		parts = append(parts, s)
	}
	return fmt.Sprintf("Highest closed-loop throughput, %s: %s.", f, strings.Join(parts, "; "))
}

// meterEffectFinding says what counting syscalls did to the cost, over
// every counted trial that has both windows: syscalls are counted in a
// window of their own so that the tracepoint, which slows every syscall,
// stays out of the cost window; this is how much it would have moved it.
func (r *run) meterEffectFinding() string {
	var vals []float64
	for i := range r.recs {
		if v, ok := syscallMeterEffect(&r.recs[i]); ok && results.Counted(&r.recs[i]) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return ""
	}
	m := median(vals) // sorts vals
	s := fmt.Sprintf("Counting syscalls moved %s by %s (median over %s", r.cyclesLabel("cycles/op"), signedPct(m),
		plural(len(vals), "trial"))
	if len(vals) > 1 {
		s += fmt.Sprintf(", from %s to %s", signedPct(vals[0]), signedPct(vals[len(vals)-1]))
	}
	return s + "): cycles/op in the syscall-counting window against the cost window just before it, on the same server. " +
		"Every other figure comes from the cost window, where the tracepoint is not attached."
}

func (r *run) crossingFindings() []string {
	perCall, ok := r.crossingCycles()
	if !ok {
		return nil
	}
	c := r.lesson.SyscallCost
	out := []string{fmt.Sprintf("A null syscall cost %s ns (%s TSC cycles) on this machine.", num(c.NsPerCall), num(perCall))}
	for _, f := range r.order {
		p, ok := r.mainPoint(f)
		if !ok {
			continue
		}
		var parts []string
		for _, l := range r.labels {
			cx, ok := r.crossingSplit(l, p, perCall)
			if !ok {
				continue
			}
			of := r.cyclesLabel("cycles/op")
			if cx.busy {
				of = "busy cycles/op (its own count)"
			}
			parts = append(parts, fmt.Sprintf("%s %s of %s %s (%s)", l, num(cx.crossing), num(cx.total), of, pct(cx.crossing, cx.total)))
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("Crossings at %s, modelled as syscalls/op × that cost (not measured): %s.", p, strings.Join(parts, "; ")))
		}
	}
	return out
}

// split is a backend's cycles per op divided into crossings and the rest.
type split struct {
	total, crossing, rest float64
	clamped               bool
	// busy: total is the backend's own busy-cycle count, not its cores'
	// busy time, because it polls and its cores are always busy.
	busy bool
	n    int // the fewer repeats of the two meters it is made of
}

func (r *run) crossingSplit(label string, p point, perCall float64) (split, bool) {
	cyc, ok := r.stat(label, p, results.MBusyCyclesPerOp)
	busy := ok
	if !ok {
		cyc, ok = r.stat(label, p, results.MCyclesPerOp)
	}
	if !ok {
		return split{}, false
	}
	sc, _, ok := r.syscallsPerOp(label, p)
	if !ok {
		return split{}, false
	}
	s := split{total: cyc.Center, crossing: sc.Center * perCall, busy: busy, n: min(cyc.N, sc.N)}
	if s.crossing > s.total {
		s.crossing, s.clamped = s.total, true
	}
	s.rest = s.total - s.crossing
	return s, true
}

func pct(part, whole float64) string {
	if whole == 0 {
		return missing
	}
	v := part / whole * 100
	if v > 0 && v < 0.1 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", v)
}

func (r *run) featureFinding() string {
	if r.lesson == nil || len(r.lesson.Features) == 0 {
		return ""
	}
	var yes, no []string
	for _, kf := range r.lesson.Features {
		switch kf.NftCounts.Verdict {
		case results.Yes:
			yes = append(yes, kf.Backend)
		case results.No:
			s := kf.Backend
			if kf.NftCounts.Counted != nil && kf.NftCounts.Sent != nil {
				s += fmt.Sprintf(" (%d of %d sent)", *kf.NftCounts.Counted, *kf.NftCounts.Sent)
			}
			no = append(no, s)
		}
	}
	if len(yes)+len(no) == 0 {
		return ""
	}
	s := "An nftables counter rule in the server's namespace"
	if len(yes) > 0 {
		s += " counted the packets of " + strings.Join(yes, ", ")
	}
	if len(no) > 0 {
		if len(yes) > 0 {
			s += " and"
		}
		s += " did not count those of " + strings.Join(no, ", ")
	}
	return s + "."
}

func (r *run) trialFinding() string {
	ok, skipped, failed := 0, 0, 0
	for _, rec := range r.recs {
		switch rec.Status {
		case results.StatusOK:
			ok++
		case results.StatusSkipped:
			skipped++
		default:
			failed++
		}
	}
	flagged := 0
	for i := range r.recs {
		if r.recs[i].Status == results.StatusOK && !results.Counted(&r.recs[i]) {
			flagged++
		}
	}
	s := fmt.Sprintf("%s: %d ok, %d skipped, %d failed; %d of the ok flagged client-bound or noisy, shown in the tables but left out of every median, ratio and test (see Method).",
		plural(len(r.recs), "trial"), ok, skipped, failed, flagged)
	shared := 0
	for i := range r.recs {
		if r.recs[i].Status == results.StatusOK && r.recs[i].ClientSharesServerCPUs {
			shared++
		}
	}
	if shared > 0 {
		s += fmt.Sprintf(" %d of the ok ran with the generator on the server's cores (too few CPUs to give it its own): "+
			"their cycles per op include the generator's work, so they are shown, marked, but never the point of comparison.", shared)
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// caveat names the flagged repeats of the configurations a finding
// compares: they are left out of its numbers, and the reader is told so.
func (r *run) caveat(p point, labels ...string) string {
	var flagged []string
	for _, l := range labels {
		g := r.group(l, p)
		if g == nil {
			continue
		}
		if f := flaggedText(g); f != "" {
			flagged = append(flagged, l+"'s "+f)
		}
	}
	if len(flagged) == 0 {
		return ""
	}
	return " — left out: " + strings.Join(flagged, ", ")
}

// flaggedText counts a group's flagged repeats: "1 noisy, 2 client-bound
// of 8 repeats", or "" when none is.
func flaggedText(g *results.Group) string {
	noisy, bound := 0, 0
	for _, rec := range g.OK {
		if rec.Noisy {
			noisy++
		}
		if rec.ClientBound {
			bound++
		}
	}
	var f []string
	if noisy > 0 {
		f = append(f, fmt.Sprintf("%d noisy", noisy))
	}
	if bound > 0 {
		f = append(f, fmt.Sprintf("%d client-bound", bound))
	}
	if len(f) == 0 {
		return ""
	}
	return strings.Join(f, ", ") + " of " + plural(len(g.OK), "repeat")
}
