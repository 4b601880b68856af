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
		out = append(out, r.cyclesFindings(p)...)
	}
	for _, f := range r.order {
		if s := r.throughputFinding(f); s != "" {
			out = append(out, s)
		}
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

func (r *run) cyclesFindings(p point) []string {
	base, bs, ok := r.baseline(p, results.MCyclesPerOp)
	if !ok {
		return nil
	}
	var parts []string
	for _, l := range r.labels {
		if l == base {
			continue
		}
		s, ok := r.stat(l, p, results.MCyclesPerOp)
		if !ok {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s's were %s %s's (%s vs %s; %s)%s",
			l, ratio(s.Center, bs.Center), base, num(s.Center), num(bs.Center), significance(bs, s),
			r.caveat(p, base, l)))
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("Cycles per op (%s) at %s: %s.", r.cyclesSource(), p, strings.Join(parts, "; "))}
}

// significance says what benchstat would: the U-test's p-value, and "not
// significant" when it does not clear alpha.
func significance(a, b results.Stat) string {
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
		cb    bool
	}
	var bests []best
	for _, l := range r.labels {
		var b best
		for _, p := range r.points(f) {
			if p.Rate != 0 {
				continue
			}
			s, ok := r.stat(l, p, results.MThroughput)
			if ok && s.Center > b.ops {
				b = best{l, s.Center, p, r.group(l, p).ClientBound()}
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
		s := fmt.Sprintf("%s %s ops/s (%d×%d)", b.label, num(b.ops), b.p.Conns, b.p.Depth)
		if b.cb {
			s += " — client-bound, so the generator's limit, not the server's"
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("Highest closed-loop throughput, %s: %s.", f, strings.Join(parts, "; "))
}

func (r *run) crossingFindings() []string {
	perCall, ok := r.crossingCycles()
	if !ok {
		return nil
	}
	c := r.lesson.SyscallCost
	out := []string{fmt.Sprintf("A null syscall cost %s ns (%s cycles) on this machine.", num(c.NsPerCall), num(perCall))}
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
			of := "cycles/op"
			if cx.busy {
				of = "busy cycles/op (its own count)"
			}
			parts = append(parts, fmt.Sprintf("%s %s of %s %s (%s)", l, num(cx.crossing), num(cx.total), of, pct(cx.crossing, cx.total)))
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("Crossings (syscalls/op × that cost) at %s: %s.", p, strings.Join(parts, "; ")))
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
	s := split{total: cyc.Center, crossing: sc.Center * perCall, busy: busy}
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
	for i := range r.groups {
		if r.groups[i].ClientBound() || r.groups[i].Noisy() {
			flagged++
		}
	}
	return fmt.Sprintf("%s: %d ok, %d skipped, %d failed; %d of %s flagged client-bound or noisy (see Method).",
		plural(len(r.recs), "trial"), ok, skipped, failed, flagged, plural(len(r.groups), "configuration"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// caveat names the flags on the configurations a finding compares, so a
// number from a noisy or client-bound trial is never quoted bare.
func (r *run) caveat(p point, labels ...string) string {
	var flagged []string
	for _, l := range labels {
		g := r.group(l, p)
		if g == nil {
			continue
		}
		var f []string
		if g.ClientBound() {
			f = append(f, "client-bound")
		}
		if g.Noisy() {
			f = append(f, "noisy")
		}
		if len(f) > 0 {
			flagged = append(flagged, l+" "+strings.Join(f, " and "))
		}
	}
	if len(flagged) == 0 {
		return ""
	}
	return " — flagged: " + strings.Join(flagged, ", ")
}
