package results

import (
	"math"
	"sort"

	"golang.org/x/perf/benchmath"
)

// Metric is one meter of a Record that summaries, benchmark files and
// comparisons share, so that all three name and judge it the same way.
type Metric struct {
	Name string // short name used in tables and charts: "cycles/op"
	// BenchUnit is the unit in Go's benchmark format; benchstat tidies
	// "-ns" units to seconds, so latency and CPU time print scaled.
	BenchUnit string
	// BenchScale converts a value in Name's unit to BenchUnit.
	BenchScale float64
	// Better is +1 when higher values are better, -1 when lower are.
	Better int
	// Of returns the record's value, or false when the meter was not read.
	Of func(*Record) (float64, bool)
}

// Metric names, the keys of Group.Stats.
const (
	MThroughput      = "ops/s"
	MGbps            = "Gbit/s"
	MGbpsPerCore     = "Gbit/s/core"
	MCyclesPerByte   = "cycles/B"
	MCyclesPerOp     = "cycles/op"
	MCyclesPerPacket = "cycles/pkt"
	MCPUNsPerOp      = "cpu-ns/op"
	MSyscallsPerOp   = "syscalls/op"
	MBackendSyscalls = "backend-syscalls/op"
	MBusyCyclesPerOp = "busy-cycles/op"
	MBusyCyclesPerPk = "busy-cycles/pkt"
	MLatP50          = "p50-µs"
	MLatP99          = "p99-µs"
)

// Metrics lists every summarized meter in table order.
var Metrics = []Metric{
	{MThroughput, "ops/s", 1, +1, func(r *Record) (float64, bool) { return r.ThroughputOps, r.Ops > 0 }},
	{MGbps, "B/s", 1e9 / 8, +1, func(r *Record) (float64, bool) { return r.Gbps, r.Bytes > 0 }},
	{MGbpsPerCore, "B/s/core", 1e9 / 8, +1, optional(func(r *Record) *float64 { return r.GbpsPerCore })},
	{MCyclesPerByte, "cycles/B", 1, -1, optional(func(r *Record) *float64 { return r.CyclesPerByte })},
	{MCyclesPerOp, "cycles/op", 1, -1, func(r *Record) (float64, bool) { return r.CyclesPerOp, r.Ops > 0 && r.Cycles > 0 }},
	{MCyclesPerPacket, "cycles/pkt", 1, -1, optional(func(r *Record) *float64 { return r.CyclesPerPacket })},
	{MCPUNsPerOp, "cpu-ns/op", 1, -1, func(r *Record) (float64, bool) { return r.CPUNsPerOp, r.Ops > 0 && r.CPUNs > 0 }},
	{MSyscallsPerOp, "syscalls/op", 1, -1, optional(func(r *Record) *float64 { return r.SyscallsPerOp })},
	{MBackendSyscalls, "backend-syscalls/op", 1, -1, optional(func(r *Record) *float64 { return r.BackendSyscallsPerOp })},
	{MBusyCyclesPerOp, "busy-cycles/op", 1, -1, busyCyclesPerOp},
	{MBusyCyclesPerPk, "busy-cycles/pkt", 1, -1, optional(func(r *Record) *float64 { return r.BusyCyclesPerPacket })},
	{MLatP50, "p50-ns", 1e3, -1, func(r *Record) (float64, bool) { return r.LatP50, r.Ops > 0 && r.LatP50 > 0 }},
	{MLatP99, "p99-ns", 1e3, -1, func(r *Record) (float64, bool) { return r.LatP99, r.Ops > 0 && r.LatP99 > 0 }},
}

func optional(field func(*Record) *float64) func(*Record) (float64, bool) {
	return func(r *Record) (float64, bool) {
		p := field(r)
		if p == nil {
			return 0, false
		}
		return *p, true
	}
}

// busyCyclesPerOp is a polling backend's own count of the cycles of polls
// that found work (DPDK's busy_cycles, as testpmd's --record-core-cycles),
// per op: its core is always busy, so this, not core busy time, is its work.
func busyCyclesPerOp(r *Record) (float64, bool) {
	c, ok := r.BackendCounters["busy_cycles"]
	if !ok || r.Ops == 0 {
		return 0, false
	}
	return float64(c) / float64(r.Ops), true
}

// MetricByName returns the metric called name.
func MetricByName(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Confidence is the level of every interval in a summary.
const Confidence = 0.95

// Stat summarizes one metric over a configuration's repeats as benchstat
// does: the median and a distribution-free confidence interval around it.
type Stat struct {
	Center float64
	// Lo and Hi bound the interval; they are infinite when there are too
	// few repeats for one at the requested level (Warnings says how many).
	Lo, Hi     float64
	Confidence float64
	N          int
	Values     []float64 // ascending
	Warnings   []string
	sample     *benchmath.Sample
}

// HasCI reports whether the interval is finite.
func (s Stat) HasCI() bool { return !math.IsInf(s.Lo, 0) && !math.IsInf(s.Hi, 0) }

// MinCIRepeats is the fewest repeats for which a distribution-free 95%
// interval of the median is finite (benchmath's order-statistic bound).
const MinCIRepeats = 6

// CV is the coefficient of variation of the repeats: the sample standard
// deviation over the mean. It is NaN with fewer than two repeats or a zero
// mean: a single value has no spread to judge.
func (s Stat) CV() float64 {
	if len(s.Values) < 2 {
		return math.NaN()
	}
	var sum float64
	for _, v := range s.Values {
		sum += v
	}
	mean := sum / float64(len(s.Values))
	if mean == 0 {
		return math.NaN()
	}
	var ss float64
	for _, v := range s.Values {
		ss += (v - mean) * (v - mean)
	}
	return math.Sqrt(ss/float64(len(s.Values)-1)) / math.Abs(mean)
}

// Compare tests whether two stats come from the same distribution
// (Mann-Whitney U, as benchstat's default assumption).
func (s Stat) Compare(other Stat) benchmath.Comparison {
	return benchmath.AssumeNothing.Compare(s.sample, other.sample)
}

// Counted reports whether r enters medians, intervals, comparisons and
// benchmark files: it ran (ok) and was not flagged noisy (other work on its
// cores) or client-bound (the generator, not the server, set its pace).
// Flagged repeats are still shown, marked, in tables.
func Counted(r *Record) bool {
	return r.Status == StatusOK && !r.Noisy && !r.ClientBound
}

// CostMetrics are the meters that each mean what an op costs the server:
// cycles on its cores and its process CPU time. Comparisons are judged on
// whichever has the tighter spread for the pair (CostMeter).
var CostMetrics = []string{MCyclesPerOp, MCPUNsPerOp}

// CostChoice is the cost meter a comparison of two groups is judged on, and
// why: the pair's spread on each candidate.
type CostChoice struct {
	Metric string
	A, B   Stat
	// Spread is, per candidate measured on both sides, the larger of the
	// two sides' CVs: a comparison is as noisy as its noisier side. NaN
	// when a side has a single repeat.
	Spread map[string]float64
}

// CostMeter picks, among CostMetrics measured in both a and b, the one
// whose pair spread is smallest, so that a difference is judged where the
// measurement is steadiest rather than on the noisiest meter. With no
// spread to compare (a single repeat), the first candidate measured is
// used. It returns false when neither is measured on both sides.
func CostMeter(a, b *Group) (CostChoice, bool) {
	c := CostChoice{Spread: map[string]float64{}}
	best := math.Inf(1)
	for _, m := range CostMetrics {
		sa, okA := a.Stat(m)
		sb, okB := b.Stat(m)
		if !okA || !okB {
			continue
		}
		spread := math.Max(sa.CV(), sb.CV())
		if math.IsNaN(sa.CV()) || math.IsNaN(sb.CV()) {
			spread = math.NaN()
		}
		c.Spread[m] = spread
		// A tie (within rounding) keeps the earlier candidate, so the
		// choice does not flip on the last bit of two equal spreads.
		if c.Metric == "" || spread < best*(1-1e-9) {
			c.Metric, c.A, c.B = m, sa, sb
			if !math.IsNaN(spread) {
				best = spread
			}
		}
	}
	return c, c.Metric != ""
}

// Group is every record of one configuration (Config.Key).
type Group struct {
	Key    string
	Config Config
	Env    Env
	OK     []Record // Status ok, in file order, flagged ones included
	NotOK  []Record // failed or skipped
	// Stats holds a Stat per metric name read in at least one counted
	// record (ok and not flagged: see Counted).
	Stats map[string]Stat
}

// Stat returns the summary of metric name, if any record measured it.
func (g *Group) Stat(name string) (Stat, bool) {
	s, ok := g.Stats[name]
	return s, ok
}

// Reason says why a group has no ok record: the first failure or skip.
func (g *Group) Reason() string {
	if len(g.OK) > 0 || len(g.NotOK) == 0 {
		return ""
	}
	r := g.NotOK[0]
	if r.Error == "" {
		return r.Status
	}
	return r.Error
}

// Counted is the number of repeats the stats are over.
func (g *Group) Counted() int {
	n := 0
	for i := range g.OK {
		if Counted(&g.OK[i]) {
			n++
		}
	}
	return n
}

// ClientBound reports whether any ok repeat was flagged client-bound.
func (g *Group) ClientBound() bool {
	return g.any(func(r *Record) bool { return r.ClientBound })
}

// SharesCPUs reports whether any ok repeat's generator ran on the server's
// cores: its cost figures include the generator's work.
func (g *Group) SharesCPUs() bool {
	return g.any(func(r *Record) bool { return r.ClientSharesServerCPUs })
}

// Noisy reports whether any ok repeat was flagged noisy.
func (g *Group) Noisy() bool {
	return g.any(func(r *Record) bool { return r.Noisy })
}

func (g *Group) any(f func(*Record) bool) bool {
	for i := range g.OK {
		if f(&g.OK[i]) {
			return true
		}
	}
	return false
}

// Summarize groups records by configuration, in order of first appearance,
// and summarizes each metric over the counted repeats. Failed, skipped and
// flagged (noisy, client-bound) records are kept beside, never counted.
func Summarize(recs []Record) []Group {
	var groups []*Group
	byKey := map[string]*Group{}
	for _, r := range recs {
		k := r.Config.Key()
		g := byKey[k]
		if g == nil {
			g = &Group{Key: k, Config: r.Config, Env: r.Env}
			byKey[k] = g
			groups = append(groups, g)
		}
		if r.Status == StatusOK {
			if len(g.OK) == 0 {
				g.Env = r.Env
			}
			g.OK = append(g.OK, r)
		} else {
			g.NotOK = append(g.NotOK, r)
		}
	}
	out := make([]Group, len(groups))
	for i, g := range groups {
		g.Stats = summarizeMetrics(g.OK)
		out[i] = *g
	}
	return out
}

func summarizeMetrics(recs []Record) map[string]Stat {
	stats := map[string]Stat{}
	for _, m := range Metrics {
		var vals []float64
		for i := range recs {
			if !Counted(&recs[i]) {
				continue
			}
			if v, ok := m.Of(&recs[i]); ok && !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		stats[m.Name] = newStat(vals)
	}
	return stats
}

// StatOf summarizes values that no Metric reads (a record's map field, such
// as one category of its cycles breakdown) as the metrics are: median,
// distribution-free interval, and a sample that Compare can test. vals is
// sorted in place.
func StatOf(vals []float64) Stat { return newStat(vals) }

func newStat(vals []float64) Stat {
	sort.Float64s(vals)
	s := benchmath.NewSample(vals, &benchmath.DefaultThresholds)
	sum := benchmath.AssumeNothing.Summary(s, Confidence)
	st := Stat{Center: sum.Center, Lo: sum.Lo, Hi: sum.Hi, Confidence: sum.Confidence,
		N: len(vals), Values: s.Values, sample: s}
	for _, w := range append(s.Warnings, sum.Warnings...) {
		st.Warnings = append(st.Warnings, w.Error())
	}
	return st
}
