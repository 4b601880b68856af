package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"

	"ringbench/results"
)

// breakdownCategories are the categories of a record's cycles_breakdown in
// the order the sampler lists them (sampler.Categories; a test holds the
// two equal). plots reads results only, so the list is repeated here.
var breakdownCategories = []string{"syscall", "sched", "net", "dev", "io_uring", "runtime", "app", "poll", "other"}

// categoryGloss says in a few words what each category holds, for the
// legend's reader who does not know the sampler's rules.
var categoryGloss = map[string]string{
	"syscall":  "the crossing: kernel entry and exit",
	"sched":    "wake-ups, context switches, timers",
	"net":      "the kernel's TCP/IP and UDP, sockets, netfilter",
	"dev":      "device layer: veth, NAPI, GRO, XDP",
	"io_uring": "the io_uring core and its task work",
	"runtime":  "the Go runtime",
	"app":      "the server's own code",
	"poll":     "busy polling (DPDK, SQPOLL)",
	"other":    "what no rule claims",
	unsampled:  "busy time no sample saw",
}

// categoryColor is fixed per category, so that a segment means the same in
// every chart whatever paths it shows: the kernel's crossings warm, its
// stack blue, user space green, polling grey.
var categoryColor = map[string]color.Color{
	"syscall":  color.RGBA{R: 214, G: 39, B: 40, A: 255},
	"sched":    color.RGBA{R: 255, G: 127, B: 14, A: 255},
	"net":      color.RGBA{R: 31, G: 119, B: 180, A: 255},
	"dev":      color.RGBA{R: 158, G: 202, B: 225, A: 255},
	"io_uring": color.RGBA{R: 148, G: 103, B: 189, A: 255},
	"runtime":  color.RGBA{R: 140, G: 86, B: 75, A: 255},
	"app":      color.RGBA{R: 44, G: 160, B: 44, A: 255},
	"poll":     color.RGBA{R: 127, G: 127, B: 127, A: 255},
	unsampled:  color.RGBA{R: 230, G: 230, B: 230, A: 255},
	"other":    color.RGBA{R: 199, G: 199, B: 199, A: 255},
}

func catColor(c string) color.Color {
	if col, ok := categoryColor[c]; ok {
		return col
	}
	return color.RGBA{R: 23, G: 190, B: 207, A: 255}
}

// baselineOf names the Go backend whose kernel path label is the C
// baseline of: "c-epoll" → "epoll". The registry says so (a backend's
// BaselineOf), but plots reads results only and a record carries the name
// alone, so this is the one place the naming rule of the baselines
// (baselines/programs) is relied on.
func baselineOf(label string) (string, bool) {
	if of, ok := strings.CutPrefix(label, "c-"); ok && of != "" {
		return of, true
	}
	return "", false
}

// baselineFor is the C baseline of Go label at p, if the run has one there.
func (r *run) baselineFor(label string, p point) (string, bool) {
	if _, isC := baselineOf(label); isC {
		return "", false
	}
	c := "c-" + label
	g := r.group(c, p)
	return c, g != nil && len(g.OK) > 0
}

// breakdown is one path's measured cycles per op by category at a point:
// per category, the median over the counted repeats that carry a
// breakdown of the category's share (of the profile window's busy time)
// × the repeat's cost-window cycles per op (a category absent from a
// repeat's map is zero there). The shares come from the sampled window,
// the cycles from the unsampled one, so a bar stands as tall as the cost
// every other figure quotes, split as the samples found it.
type breakdown struct {
	label string
	cats  map[string]results.Stat
	order []string // the keys of cats, in the categories' order
	n     int      // repeats with a breakdown
	// total: the cost windows' cycles/op over every counted repeat.
	total  results.Stat
	events []string // the profile events sampled
	// effect: the median of the repeats' profile_effect, what sampling did
	// to the cost in its own window (NaN where no repeat carries one).
	effect float64
}

func (b *breakdown) center(cat string) float64 {
	if s, ok := b.cats[cat]; ok {
		return s.Center
	}
	return 0
}

// breakdownAt summarizes label's breakdown at p, or false when no counted
// repeat carries one.
func (r *run) breakdownAt(label string, p point) (*breakdown, bool) {
	g := r.group(label, p)
	if g == nil {
		return nil, false
	}
	var with []*results.Record
	var events []string
	for i := range g.OK {
		rec := &g.OK[i]
		if results.Counted(rec) && len(rec.CyclesBreakdown) > 0 {
			with = append(with, rec)
			if rec.ProfileEvent != "" && !contains(events, rec.ProfileEvent) {
				events = append(events, rec.ProfileEvent)
			}
		}
	}
	if len(with) == 0 {
		return nil, false
	}
	b := &breakdown{label: label, cats: map[string]results.Stat{}, n: len(with), events: events}
	// Every category gets a stat, zeros where no sample fell, so that a
	// category one path lacks can still be tested against another's.
	for _, c := range r.categories() {
		vals := make([]float64, len(with))
		for i, rec := range with {
			vals[i] = rec.CyclesBreakdown[c].Share * rec.CyclesPerOp
		}
		b.cats[c] = results.StatOf(vals)
		b.order = append(b.order, c)
	}
	var effects []float64
	for _, rec := range with {
		if rec.ProfileEffect != nil {
			effects = append(effects, *rec.ProfileEffect)
		}
	}
	// The total is the figure the findings quote: every counted repeat's.
	b.total, _ = g.Stat(results.MCyclesPerOp)
	b.effect = math.NaN()
	if len(effects) > 0 {
		b.effect = results.StatOf(effects).Center
	}
	return b, true
}

// categories are the sampler's categories, then any other the records
// name (a newer sampler's), so that no cycles are dropped from a bar.
func (r *run) categories() []string {
	out := append([]string(nil), breakdownCategories...)
	var extra []string
	for i := range r.recs {
		for c := range r.recs[i].CyclesBreakdown {
			if !contains(out, c) && !contains(extra, c) {
				extra = append(extra, c)
			}
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// breakdownWhy says why label has no breakdown at p.
func (r *run) breakdownWhy(label string, p point) string {
	g := r.group(label, p)
	switch {
	case g == nil:
		return "not in this run"
	case len(g.OK) == 0:
		return g.Reason()
	case g.Counted() == 0:
		return "every repeat flagged noisy or client-bound, left out"
	}
	return "no sampled profile in its records"
}

// breakdownChart stacks each path's measured cycles per op at p, one
// segment per category, with the interval of the total cycles/op.
func (r *run) breakdownChart(f family, p point) (*Chart, error) {
	labels := r.labels
	bds := make([]*breakdown, len(labels))
	total := newBarSet(labels)
	var absent []string
	for i, l := range labels {
		b, ok := r.breakdownAt(l, p)
		if !ok {
			if r.group(l, p) != nil {
				absent = append(absent, l+": "+r.breakdownWhy(l, p))
			}
			continue
		}
		bds[i] = b
		total.values[i], total.have[i] = sumOf(b), true
		if b.total.N > 0 {
			// The interval is the total's, drawn at its median; the
			// segments are medians per category, so their sum may
			// differ a little from it.
			total.values[i] = b.total.Center
			if b.total.HasCI() {
				total.lo[i], total.hi[i] = b.total.Lo, b.total.Hi
			}
		}
	}
	if !anyTrue(total.have) {
		return nil, fmt.Errorf("%s, measured breakdown: no record has a cycles breakdown", f)
	}
	// Only the paths that ran at p get a slot: the headline chart is read
	// at a glance, and an empty slot says nothing there.
	var shown []string
	var idx []int
	for i, l := range labels {
		if r.group(l, p) != nil {
			shown = append(shown, l)
			idx = append(idx, i)
		}
	}
	c := r.newChart(breakdownPrefix+f.slug(), fmt.Sprintf("Where the cycles go (measured) — %s", p), "path (backend)",
		r.cyclesNoun()+" per op (server cores)")
	c.Plot.NominalX(shown...)
	shownTotal := newBarSet(shown)
	inLegend := map[string]bool{}
	var entries int
	for x, i := range idx {
		shownTotal.values[x], shownTotal.have[x] = total.values[i], total.have[i]
		shownTotal.lo[x], shownTotal.hi[x] = total.lo[i], total.hi[i]
		b := bds[i]
		if b == nil {
			continue
		}
		var below *plotter.BarChart
		for _, cat := range r.categories() {
			v := b.center(cat)
			if v <= 0 {
				continue
			}
			bar, err := plotter.NewBarChart(plotter.Values{v}, barWidth*1.6)
			if err != nil {
				return nil, fmt.Errorf("make breakdown bars: %w", err)
			}
			bar.XMin, bar.Color, bar.LineStyle.Width = float64(x), catColor(cat), 0
			if below != nil {
				bar.StackOn(below)
			}
			below = bar
			c.Plot.Add(bar)
			if !inLegend[cat] {
				inLegend[cat] = true
			}
		}
	}
	// The legend lists the categories in their fixed order, whichever bar
	// first showed each.
	for _, cat := range r.categories() {
		if !inLegend[cat] {
			continue
		}
		sw, err := plotter.NewBarChart(plotter.Values{0}, 1)
		if err != nil {
			return nil, fmt.Errorf("make legend swatch: %w", err)
		}
		sw.Color, sw.LineStyle.Width = catColor(cat), 0
		c.Plot.Legend.Add(cat, sw)
		entries++
	}
	if err := addErrorBars(c.Plot, shownTotal); err != nil {
		return nil, err
	}
	if err := addMissingLabels(c.Plot, shownTotal, 0); err != nil {
		return nil, err
	}
	c.Plot.Y.Min = 0
	// The legend sits outside the bars' column, on the right.
	c.Plot.Legend.Top = true
	legendRoom(c.Plot, 0, false)
	c.Plot.X.Min, c.Plot.X.Max = -0.6, float64(len(shown))+0.9
	var ns []string
	for x, i := range idx {
		if b := bds[i]; b != nil {
			ns = append(ns, fmt.Sprintf("%s n=%d", shown[x], b.n))
		}
	}
	c.Caption = fmt.Sprintf("Measured: each path's %s per op at %s (the same offered load for every path), split by "+
		"where sampled profiles of the server cores found the time (%s). Each segment is the median over the "+
		"counted repeats of that category's share of the busy time (its share of the samples × profile_coverage; "+
		"unsampled is the busy time no sample saw) × the repeat's cycles/op; "+
		"the error bar is the 95%% interval of the total cycles/op, drawn at its median, where enough repeats allow "+
		"one (%s). %s Repeats: %s.%s%s",
		r.cyclesNoun(), p, strings.Join(r.categories(), ", "),
		ciRule, windowText(bds, shown, idx), strings.Join(ns, ", "), r.goCText(p, results.MCyclesPerOp), naText(absent))
	return c, nil
}

// windowText says where the bars' two parts come from and, per shown
// path, what sampling did to cycles per op in its own window (the median
// profile_effect).
func windowText(bds []*breakdown, shown []string, idx []int) string {
	var parts []string
	for x, i := range idx {
		if b := bds[i]; b != nil && !math.IsNaN(b.effect) {
			parts = append(parts, fmt.Sprintf("%s %+.0f%%", shown[x], 100*b.effect))
		}
	}
	text := "The bars are the cost windows' cycles per op, the same as every other figure of this report; the shares come " +
		"from a profile window of their own after each cost window, because sampling moves the cost"
	if len(parts) > 0 {
		text += " (cycles/op sampled against unsampled, medians: " + strings.Join(parts, ", ") + ")"
	}
	return text + "."
}

// ciRule is how the report's intervals are made, said where one is drawn.
const ciRule = "distribution-free, as benchstat's; none from fewer than 6 repeats"

// breakdownTable is category × path at p: each cell the median cycles per
// op of the category and its share of the path's sampled time.
func (r *run) breakdownTable(p point) *table {
	var bds []*breakdown
	var missingPaths []string
	for _, l := range r.labelsAt(p) {
		if b, ok := r.breakdownAt(l, p); ok {
			bds = append(bds, b)
		} else {
			missingPaths = append(missingPaths, l+": "+r.breakdownWhy(l, p))
		}
	}
	t := &table{header: []string{"category"}, right: []bool{false}}
	for _, b := range bds {
		t.header = append(t.header, b.label)
		t.right = append(t.right, true)
	}
	if len(bds) == 0 {
		return t
	}
	sums := make([]float64, len(bds))
	for j, b := range bds {
		sums[j] = sumOf(b)
	}
	for _, cat := range r.categories() {
		row := []string{cat}
		any := false
		for j, b := range bds {
			v := b.center(cat)
			if v > 0 {
				any = true
			}
			row = append(row, fmt.Sprintf("%s (%s)", num(v), pct(v, sums[j])))
		}
		if any {
			t.rows = append(t.rows, row)
		}
	}
	sumRow := []string{"sum of the medians"}
	totRow := []string{r.cyclesLabel("cycles/op") + " of the cost windows (median, interval)"}
	effRow := []string{"sampling's effect on cycles/op (median profile_effect)"}
	nRow := []string{"n (repeats with a profile)"}
	anyEffect := false
	for j, b := range bds {
		sumRow = append(sumRow, num(sums[j]))
		if b.total.N > 0 {
			totRow = append(totRow, num(b.total.Center)+" "+ciPct(b.total))
		} else {
			totRow = append(totRow, missing)
		}
		if math.IsNaN(b.effect) {
			effRow = append(effRow, missing)
		} else {
			effRow, anyEffect = append(effRow, fmt.Sprintf("%+.1f%%", 100*b.effect)), true
		}
		nRow = append(nRow, fmt.Sprintf("%d", b.n))
	}
	t.rows = append(t.rows, sumRow, totRow)
	if anyEffect {
		t.rows = append(t.rows, effRow)
	}
	t.rows = append(t.rows, nRow)
	for _, m := range missingPaths {
		t.note("no breakdown for " + m)
	}
	return t
}

// comparison of one category between a path and the path it is set against.
type catChange struct {
	cat    string
	v, ref float64
}

// breakdownSentence says, from the data, what path b removed, kept and
// added against ref: categories under 0.8× ref's are less (or none), those
// within 0.8-1.25× kept, those above 1.25× more: every category of note is
// in one of the three, so the largest difference is never left out. A
// category under 5% of both paths' totals is too small to speak of. A brief
// sentence (the first screen's) names only the largest category kept and
// no glosses.
func breakdownSentence(b, ref *breakdown, cats []string, brief bool) string {
	sumB, sumR := sumOf(b), sumOf(ref)
	if sumB == 0 || sumR == 0 {
		return ""
	}
	var removed, kept, added []catChange
	for _, c := range cats {
		v, rv := b.center(c), ref.center(c)
		if v < 0.05*sumB && rv < 0.05*sumR {
			continue
		}
		ch := catChange{c, v, rv}
		switch {
		case v < 0.8*rv:
			removed = append(removed, ch)
		case v <= 1.25*rv:
			kept = append(kept, ch)
		default:
			added = append(added, ch)
		}
	}
	if brief {
		// The first screen names the largest category both kept that says
		// where the time went: not unsampled or other, which say only that
		// the samples could not tell.
		kept = slices.DeleteFunc(kept, func(ch catChange) bool { return ch.cat == unsampled || ch.cat == "other" })
		sort.SliceStable(kept, func(i, j int) bool { return kept[i].ref > kept[j].ref })
		kept = kept[:min(len(kept), 1)]
	}
	// Net is the category the lesson turns on (the kernel's stack, kept by
	// both kernel paths), so it alone is glossed where it is kept.
	gloss := func(c string) string {
		if c != "net" {
			return c
		}
		return c + " (" + categoryGloss[c] + ")"
	}
	var parts []string
	for _, ch := range removed {
		switch {
		case ch.v == 0:
			parts = append(parts, fmt.Sprintf("no %s (%s's: %s)", ch.cat, ref.label, num(ch.ref)))
		default:
			parts = append(parts, fmt.Sprintf("%s cycles/op in %s against %s's %s", num(ch.v), ch.cat, ref.label, num(ch.ref)))
		}
	}
	var s string
	if len(parts) > 0 {
		s = b.label + " spent " + joinAnd(parts)
	}
	parts = parts[:0]
	for _, ch := range added {
		if ch.ref == 0 {
			parts = append(parts, fmt.Sprintf("%s %s (%s: none)", ch.cat, num(ch.v), ref.label))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s (%s: %s)", ch.cat, num(ch.v), ref.label, num(ch.ref)))
		}
	}
	if len(parts) > 0 {
		if s == "" {
			s = b.label + " spent"
		} else {
			s += "; it spent"
		}
		s += " more in " + joinAnd(parts)
	}
	parts = parts[:0]
	for _, ch := range kept {
		parts = append(parts, fmt.Sprintf("%s %s vs %s", gloss(ch.cat), num(ch.v), num(ch.ref)))
	}
	if len(parts) > 0 {
		if s == "" {
			s = b.label + " kept"
		} else {
			s += "; it kept"
		}
		s += " about the same on both: " + joinAnd(parts)
	}
	if s == "" {
		return ""
	}
	// The confidence of the largest change: the U-test on that category's
	// cycles per op, repeat by repeat.
	conf := ""
	var big *catChange
	for _, ch := range append(removed, added...) {
		if big == nil || math.Abs(ch.v-ch.ref) > math.Abs(big.v-big.ref) {
			c := ch
			big = &c
		}
	}
	if big != nil {
		conf = fmt.Sprintf("; %s: %s", big.cat, significance(ref.cats[big.cat], b.cats[big.cat]))
	}
	return fmt.Sprintf("%s (medians, cycles/op, over n=%d and n=%d repeats%s).", s, b.n, ref.n, conf)
}

// sumOf adds b's category medians in the categories' order, so that the
// sum's last digit does not depend on map order.
func sumOf(b *breakdown) float64 {
	s := 0.0
	for _, c := range b.order {
		s += b.cats[c].Center
	}
	return s
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// breakdownTexts set every path at p against a reference: a C baseline
// against its Go backend (what Go costs on the same kernel path), every
// other path against the first path (epoll: the plain syscall path).
func (r *run) breakdownTexts(p point, brief bool) []string {
	var bds []*breakdown
	for _, l := range r.labels {
		if b, ok := r.breakdownAt(l, p); ok {
			bds = append(bds, b)
		}
	}
	if len(bds) < 2 {
		return nil
	}
	byLabel := map[string]*breakdown{}
	for _, b := range bds {
		byLabel[b.label] = b
	}
	first := bds[0]
	var out []string
	for _, b := range bds[1:] {
		ref := first
		if of, ok := baselineOf(b.label); ok {
			if goB, ok := byLabel[of]; ok {
				ref = goB
			}
		}
		if s := breakdownSentence(b, ref, r.categories(), brief); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// coverageLimit is the share of the busy time below which a breakdown's
// samples are said to have missed too much to read it as the whole.
const coverageLimit = 0.8

// coverageCaveat says where the samples stood for less than the server
// cores' busy time, and names the paths where they missed more than
// 1 − coverageLimit of it.
func (r *run) coverageCaveat() string {
	var short bool
	var low []string
	for i := range r.recs {
		rec := &r.recs[i]
		if rec.Status != results.StatusOK || rec.ProfileCoverage == nil {
			continue
		}
		short = short || rec.CyclesBreakdown[unsampled].Share > 0
		if l := rec.Config.Label(); *rec.ProfileCoverage < coverageLimit && !contains(low, l) {
			low = append(low, l)
		}
	}
	if !short {
		return ""
	}
	s := fmt.Sprintf(" Where the non-idle samples stood for less than the server cores' busy time (profile_coverage), "+
		"each category is its share of the samples × that coverage, and the rest is the \"%s\" segment: it is not "+
		"spread over the categories that were seen.", unsampled)
	if len(low) == 0 {
		return s
	}
	sort.Strings(low)
	return s + fmt.Sprintf(" In some trials of %s the samples saw less than %.0f%% of it: a kernel that writes no sample "+
		"while the idle task is current (the development VM's writes no perf record of any event then: "+
		"measurements/unsampled.md) misses the work done on a core woken from idle (the interrupt, the softirqs it "+
		"raises for received packets, leaving idle, the switch to the woken task), so those trials' receive and "+
		"wake-up costs are missing from net, dev and sched, and the categories seen are the woken server's own.",
		strings.Join(low, ", "), 100*coverageLimit)
}

// unsampled is the sampler's name for the busy time no sample saw
// (sampler.Unsampled).
const unsampled = "unsampled"

// samplingCaveat says, on a VM, what the hrtimer's sampling does to the
// breakdown: where no PMU can interrupt with interrupts off, a sample
// taken while they were off lands where they are turned back on; and,
// anywhere, where the samples missed much of the busy time.
func (r *run) samplingCaveat() string {
	return strings.TrimSpace(r.hrtimerCaveat() + r.coverageCaveat())
}

func (r *run) hrtimerCaveat() string {
	vm, events := false, []string{}
	for i := range r.recs {
		rec := &r.recs[i]
		if rec.Status != results.StatusOK || len(rec.CyclesBreakdown) == 0 {
			continue
		}
		if rec.Env.Virtualized {
			vm = true
		}
		if rec.ProfileEvent != "" && !contains(events, rec.ProfileEvent) {
			events = append(events, rec.ProfileEvent)
		}
	}
	if !vm {
		return ""
	}
	ev := "the cpu-clock event"
	if len(events) > 0 {
		ev = "the " + strings.Join(events, ", ") + " event"
	}
	return "These trials ran on a virtual machine, so the profiles were sampled by " + ev + ", an hrtimer, not a " +
		"hardware counter's overflow interrupt: a timer interrupt cannot land while interrupts are off, so the time " +
		"spent with interrupts off (softirq processing, parts of syscall exit, the scheduler's locked sections) is " +
		"attributed to where they are turned back on. Categories next to those places (syscall, sched, net) may hold " +
		"time that was spent just before them."
}
