package plots

import (
	"ringbench/results"
)

// run is one results folder, summarized and indexed for charts, tables and
// findings.
type run struct {
	recs   []results.Record
	groups []results.Group
	lesson *results.Lesson
	// validation is the folder's validate.json, nil when the meters were
	// not validated for this run.
	validation *results.Validation
	// trialChecks are what every measured trial must hold, checked on
	// these records (results.TrialChecks).
	trialChecks []results.Check
	// ndr is the folder's ndr.jsonl: `ringbench ndr`'s maximum sustainable
	// rate per backend, nil when it did not run.
	ndr    []results.NDR
	labels []string // every backend label in the records, in lesson order
	env    results.Env
	byCell map[string]map[point]*results.Group
	order  []family
}

func newRun(recs []results.Record, lesson *results.Lesson) *run {
	r := &run{recs: recs, groups: results.Summarize(recs), lesson: lesson, trialChecks: results.TrialChecks(recs),
		byCell: map[string]map[point]*results.Group{}}
	seenFam := map[family]bool{}
	for i := range r.groups {
		g := &r.groups[i]
		label := g.Config.Label()
		if r.byCell[label] == nil {
			r.byCell[label] = map[point]*results.Group{}
			r.labels = append(r.labels, label)
		}
		p := pointOf(g.Config)
		r.byCell[label][p] = g
		if !seenFam[p.family()] {
			seenFam[p.family()] = true
			r.order = append(r.order, p.family())
		}
		if r.env.Kernel == "" && len(g.OK) > 0 {
			r.env = g.Env
		}
	}
	if r.env.Kernel == "" && lesson != nil {
		r.env = lesson.Env
	}
	if r.env.Kernel == "" && len(recs) > 0 {
		r.env = recs[0].Env
	}
	sortLabels(r.labels)
	return r
}

// group returns label's group at p, or nil.
func (r *run) group(label string, p point) *results.Group {
	return r.byCell[label][p]
}

// stat returns the summary of metric at (label, p).
func (r *run) stat(label string, p point, metric string) (results.Stat, bool) {
	g := r.group(label, p)
	if g == nil {
		return results.Stat{}, false
	}
	return g.Stat(metric)
}

// points lists f's points in order of first appearance.
func (r *run) points(f family) []point {
	var out []point
	seen := map[point]bool{}
	for i := range r.groups {
		p := pointOf(r.groups[i].Config)
		if p.family() == f && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// mainPoint is the point of f where backends are best compared: the one
// most backends ran (with CPUs of the generator's own), then the one with most repeats, then open loop (the
// fair comparison is CPU per op at the same offered load), then the lowest
// load, so it is most likely below every backend's saturation.
func (r *run) mainPoint(f family) (point, bool) {
	var best point
	bestScore := [4]float64{-1}
	for _, p := range r.points(f) {
		backends, repeats := 0, 0
		for _, l := range r.labels {
			// A trial whose generator shared the server's cores measured
			// both: never the point where the servers are compared.
			if g := r.group(l, p); g != nil && len(g.OK) > 0 && !g.SharesCPUs() {
				backends++
				repeats += len(g.OK)
			}
		}
		if backends == 0 {
			continue
		}
		open := 0.0
		if p.Rate > 0 {
			open = 1
		}
		score := [4]float64{float64(backends), float64(repeats), open, -p.Rate}
		if better(score[:], bestScore[:]) {
			best, bestScore = p, score
		}
	}
	return best, bestScore[0] > 0
}

func better(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

// labelsAt lists the labels that have a group (ok or not) at p.
func (r *run) labelsAt(p point) []string {
	var out []string
	for _, l := range r.labels {
		if r.group(l, p) != nil {
			out = append(out, l)
		}
	}
	return out
}

// cyclesSource names where the cycles came from across the run.
func (r *run) cyclesSource() string {
	seen := map[string]bool{}
	var srcs []string
	for i := range r.recs {
		s := r.recs[i].CyclesSource
		if r.recs[i].Status != results.StatusOK || s == "" || seen[s] {
			continue
		}
		seen[s] = true
		srcs = append(srcs, s)
	}
	if len(srcs) == 0 {
		return "none"
	}
	out := srcs[0]
	for _, s := range srcs[1:] {
		out += "+" + s
	}
	return out
}

// cyclesKind says what the run's cycles are, for every label that shows
// them: "" when a hardware counter counted them all (perf),
// "TSC-equivalent" when each is core busy time × the TSC rate (tsc), and
// "perf or TSC-equivalent" when the records mix the two.
func (r *run) cyclesKind() string {
	switch r.cyclesSource() {
	case "perf", "none":
		return ""
	case "tsc":
		return "TSC-equivalent"
	}
	return "perf or TSC-equivalent"
}

// cyclesLabel qualifies a label of cycles by their kind:
// "cycles/op (TSC-equivalent)" on a machine without a PMU.
func (r *run) cyclesLabel(label string) string {
	if k := r.cyclesKind(); k != "" {
		return label + " (" + k + ")"
	}
	return label
}

// cyclesNoun is the run's cycles as a noun: "TSC-equivalent cycles", or
// "cycles" when perf counted them.
func (r *run) cyclesNoun() string {
	if k := r.cyclesKind(); k != "" {
		return k + " cycles"
	}
	return "cycles"
}

// crossingCycles is the cost of one kernel crossing in cycles, from the
// calibration (its own TSC conversion, else the run's TSC rate).
func (r *run) crossingCycles() (float64, bool) {
	if r.lesson == nil || r.lesson.SyscallCost == nil {
		return 0, false
	}
	c := r.lesson.SyscallCost
	if c.CyclesPerCall != nil {
		return *c.CyclesPerCall, true
	}
	hz := r.lesson.Env.TSCHz
	if hz == 0 {
		hz = r.env.TSCHz
	}
	if hz == 0 || c.NsPerCall == 0 {
		return 0, false
	}
	return c.NsPerCall * hz / 1e9, true
}

// syscallsPerOp prefers the outside count (every syscall of the process,
// the runtime's included) and falls back to the backend's own count.
func (r *run) syscallsPerOp(label string, p point) (results.Stat, string, bool) {
	if s, ok := r.stat(label, p, results.MSyscallsPerOp); ok {
		return s, "tracepoint", true
	}
	if s, ok := r.stat(label, p, results.MBackendSyscalls); ok {
		return s, "backend's own count", true
	}
	return results.Stat{}, "", false
}
