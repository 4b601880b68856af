package plots

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"ringbench/results"
)

// Placeholders for what has no number.
const (
	missing = "–"   // a meter that was not read
	notRun  = "n/a" // a trial that could not run
)

// num formats a measurement with about three significant digits and no
// exponent for the magnitudes ringbench reports.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// ratio formats a/b as "0.93×".
func ratio(a, b float64) string {
	r := a / b
	if r >= 10 {
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// ratioN is ratio(a.Center, b.Center), marked "(n=1)" when either side is
// a single repeat, so a ratio with no spread behind it is never quoted bare.
func ratioN(a, b results.Stat) string {
	s := ratio(a.Center, b.Center)
	if a.N == 1 || b.N == 1 {
		s += " (n=1)"
	}
	return s
}

// ciPct is the half-width of a stat's interval in percent of its center,
// as benchstat prints it. With fewer repeats than a finite 95% interval
// needs it says so instead of printing ±∞.
func ciPct(s results.Stat) string {
	if !s.HasCI() {
		return fmt.Sprintf("(n=%d, no interval)", s.N)
	}
	if s.Center == 0 {
		return "±0%"
	}
	d := math.Max(s.Center-s.Lo, s.Hi-s.Center) / math.Abs(s.Center) * 100
	return "±" + strconv.FormatFloat(d, 'f', 0, 64) + "%"
}

// rateText names a rate target: "20000 ops/s" or "closed loop".
func rateText(rate float64) string {
	if rate <= 0 {
		return "closed loop"
	}
	return strconv.FormatFloat(rate, 'f', -1, 64) + " ops/s"
}

// point is a configuration without its backend: the place where backends
// are compared.
type point struct {
	Workload, Service, Proto, Topology string
	Conns, Depth, Size, Cores          int
	Rate                               float64
}

func pointOf(c results.Config) point {
	return point{c.Workload, c.Service, c.Proto, c.Topology, c.Conns, c.Depth, c.Size, c.Cores, c.RateTarget}
}

// family is the workload a point belongs to; charts and findings compare
// backends within one family.
type family struct{ Workload, Service, Proto, Topology string }

func (p point) family() family { return family{p.Workload, p.Service, p.Proto, p.Topology} }

func (f family) String() string {
	s := f.Workload + "/" + f.Proto
	if f.Service != "" && f.Service != f.Workload {
		s += " " + f.Service
	}
	if f.Topology != "" {
		s += " (" + f.Topology + ")"
	}
	return s
}

// slug is the family as a file-name part.
func (f family) slug() string {
	parts := []string{f.Workload, f.Proto}
	if f.Service != "" && f.Service != f.Workload {
		parts = append(parts, f.Service)
	}
	if f.Topology != "" {
		parts = append(parts, f.Topology)
	}
	return strings.Join(parts, "-")
}

func (p point) String() string {
	return fmt.Sprintf("%s, %d×%d, %d B, %s", p.family(), p.Conns, p.Depth, p.Size, rateText(p.Rate))
}

// labelRank orders backend labels the way the lesson tells them: syscalls,
// io_uring, bypass, then anything else; each variant after its default, and
// a C baseline right after the Go backend of its path.
func labelRank(label string) (int, string) {
	of, isC := baselineOf(label)
	if isC {
		label = of
	}
	fam, variant, _ := strings.Cut(label, "-")
	rank := map[string]int{"epoll": 0, "uring": 1, "dpdk": 2, "external": 3}
	r, ok := rank[fam]
	if !ok {
		r = 4
	}
	r *= 4
	if variant != "" {
		r += 2
	}
	if isC {
		r++
		label = "c-" + label
	}
	return r, label
}

func sortLabels(labels []string) {
	sort.Slice(labels, func(i, j int) bool {
		ri, li := labelRank(labels[i])
		rj, lj := labelRank(labels[j])
		if ri != rj {
			return ri < rj
		}
		return li < lj
	})
}

// truncate shortens s to n runes for narrow cells.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// spreadText says why a cost meter was chosen: its pair spread against
// the other candidates'.
func spreadText(c results.CostChoice) string {
	sp := c.Spread[c.Metric]
	if isNaN(sp) {
		return c.Metric + ", the first cost meter measured: with one repeat there is no spread to choose by"
	}
	var others []string
	for _, m := range results.CostMetrics {
		if m == c.Metric {
			continue
		}
		if o, ok := c.Spread[m]; ok && !isNaN(o) {
			others = append(others, fmt.Sprintf("%s's (%s)", m, cvText(o)))
		}
	}
	s := fmt.Sprintf("%s: its spread (CV %s)", c.Metric, cvText(sp))
	if len(others) == 0 {
		return s + " is the only cost meter measured on both sides"
	}
	return s + " is no wider than " + strings.Join(others, ", ")
}

func cvText(cv float64) string {
	return strconv.FormatFloat(cv*100, 'f', 1, 64) + "%"
}

var nan = math.NaN()

func isNaN(v float64) bool { return math.IsNaN(v) }

// countedMedian is the median of f over g's counted repeats (ok, not
// flagged) that have a value, and how many do: for the record fields that
// no results.Metric summarizes.
func countedMedian(g *results.Group, f func(*results.Record) (float64, bool)) (float64, int) {
	var vals []float64
	for i := range g.OK {
		if !results.Counted(&g.OK[i]) {
			continue
		}
		if v, ok := f(&g.OK[i]); ok && !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	return median(vals), len(vals)
}

// median of vals (sorted in place); NaN when there is none.
func median(vals []float64) float64 {
	n := len(vals)
	if n == 0 {
		return math.NaN()
	}
	sort.Float64s(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return (vals[n/2-1] + vals[n/2]) / 2
}

// signedPct formats a relative change as "+2.1%" or "-0.4%".
func signedPct(v float64) string {
	s := strconv.FormatFloat(v*100, 'f', 1, 64)
	if v >= 0 {
		s = "+" + s
	}
	return s + "%"
}
