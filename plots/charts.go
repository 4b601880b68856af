package plots

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"ringbench/results"
)

// Charts builds every chart the records and the lesson support. The second
// result says, one sentence each, which charts could not be drawn and why.
func Charts(recs []results.Record, lesson *results.Lesson) ([]*Chart, []string) {
	return newRun(recs, lesson).charts()
}

func (r *run) charts() ([]*Chart, []string) {
	var out []*Chart
	var skipped []string
	add := func(c *Chart, err error) {
		if err != nil {
			skipped = append(skipped, err.Error())
			return
		}
		out = append(out, c)
	}
	for _, f := range r.order {
		p, ok := r.mainPoint(f)
		if !ok {
			skipped = append(skipped, fmt.Sprintf("%s: no trial ran, so no chart", f))
			continue
		}
		cyc := r.cyclesNoun()
		add(r.breakdownChart(f, p))
		add(r.metricBars(f, p, results.MCyclesPerOp, "cycles-per-op", r.cyclesLabel("Cycles per op"), cyc+" per op (server cores)"))
		add(r.metricBars(f, p, results.MCyclesPerPacket, "cycles-per-packet", r.cyclesLabel("Cycles per packet"), cyc+" per packet (server cores)"))
		add(r.syscallChart(f, p))
		add(r.crossingChart(f, p))
	}
	for _, f := range r.order {
		add(r.throughputChart(f))
	}
	for _, f := range r.order {
		add(r.loadChart(f))
	}
	for _, f := range r.order {
		cs, err := r.scalingCharts(f)
		if err != nil && r.hasCoreCounts(f) {
			skipped = append(skipped, err.Error())
		}
		out = append(out, cs...)
	}
	for _, f := range r.order {
		add(r.distributionChart(f))
	}
	if len(r.ndr) > 0 {
		add(r.ndrChart())
	}
	lc, ls := r.ladderCharts()
	out, skipped = append(out, lc...), append(skipped, ls...)
	return out, skipped
}

func (r *run) colors(labels []string) []color.Color {
	out := make([]color.Color, len(labels))
	for i, l := range labels {
		out[i] = r.labelColor(l)
	}
	return out
}

// absentWhy says why label has no value of metric at p.
func (r *run) absentWhy(label string, p point, metric string) string {
	g := r.group(label, p)
	switch {
	case g == nil:
		return "not in this run"
	case len(g.OK) == 0:
		return g.Reason()
	}
	return meterNote(g, metric)
}

// meterNote is what the records say about a meter that was not read.
func meterNote(g *results.Group, metric string) string {
	// A server without counters of its own (an external one) is said so,
	// never with another meter's note or a flag, which say nothing of it.
	if metric == results.MBackendSyscalls {
		for _, rec := range g.OK {
			for _, n := range rec.Notes {
				if strings.HasPrefix(n, results.NoOwnCounters) {
					return n
				}
			}
		}
	}
	if len(g.OK) > 0 && g.Counted() == 0 {
		return "every repeat flagged noisy or client-bound, left out"
	}
	for _, rec := range g.OK {
		switch {
		case (metric == results.MSyscallsPerOp || metric == results.MBackendSyscalls) && rec.SyscallsNote != "":
			return rec.SyscallsNote
		case metric == results.MCyclesPerPacket && rec.Packets == nil:
			if len(rec.Notes) > 0 {
				return "no packet counter: " + rec.Notes[0]
			}
			return "no packet counter"
		}
	}
	for _, rec := range g.OK {
		if len(rec.Notes) > 0 {
			return "not measured: " + rec.Notes[0]
		}
	}
	return "not measured"
}

// metricSet holds each label's median of metric at p, and for each label
// without one, "label: why".
func (r *run) metricSet(labels []string, p point, metric string) (*barSet, []string) {
	b := newBarSet(labels)
	var absent []string
	for i, l := range labels {
		if s, ok := r.stat(l, p, metric); ok {
			b.setStat(i, s)
			continue
		}
		b.why[i] = r.absentWhy(l, p, metric)
		absent = append(absent, l+": "+b.why[i])
	}
	return b, absent
}

func (r *run) metricBars(f family, p point, metric, stem, title, yLabel string) (*Chart, error) {
	labels := r.labels
	b, absent := r.metricSet(labels, p, metric)
	if !anyTrue(b.have) {
		return nil, fmt.Errorf("%s, %s: no backend has %s", f, title, metric)
	}
	c := r.newChart(stem+"-"+f.slug(), fmt.Sprintf("%s — %s", title, p), "backend", yLabel)
	c.Plot.NominalX(labels...)
	if err := addBars(c.Plot, b, r.colors(labels)); err != nil {
		return nil, err
	}
	if err := r.addGoCLabels(c, b, p, metric); err != nil {
		return nil, err
	}
	c.Plot.Y.Min = 0
	legendRoom(c.Plot, 0, false)
	padNominal(c.Plot, len(labels))
	c.Caption = fmt.Sprintf("%s by backend at %s (cycles_source %s). Bars are medians over repeats; "+
		"error bars are the 95%% confidence interval where enough repeats allow one. Each C baseline stands "+
		"right of the Go backend of its path, whose bar is labelled with its ratio to it.%s%s",
		title, p, r.cyclesSource(), r.goCText(p, metric), naText(absent))
	return c, nil
}

// addGoCLabels writes above each Go backend's bar its ratio to the C
// baseline of its path ("1.17× C"), n=1 marked as everywhere.
func (r *run) addGoCLabels(c *Chart, b *barSet, p point, metric string) error {
	var xys plotter.XYs
	var texts []string
	for i, l := range b.categories {
		cl, ok := r.baselineFor(l, p)
		if !ok || !b.have[i] {
			continue
		}
		gs, okG := r.stat(l, p, metric)
		cs, okC := r.stat(cl, p, metric)
		if !okG || !okC || cs.Center == 0 {
			continue
		}
		y := b.values[i]
		if !isNaN(b.hi[i]) {
			y = b.hi[i]
		}
		xys = append(xys, plotter.XY{X: float64(i), Y: y})
		texts = append(texts, ratioN(gs, cs)+" C")
	}
	if len(xys) == 0 {
		return nil
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return fmt.Errorf("make Go/C labels: %w", err)
	}
	lb.Offset = vg.Point{Y: vg.Points(4)}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign = draw.XCenter
	}
	c.Plot.Add(lb)
	return nil
}

func naText(absent []string) string {
	if len(absent) == 0 {
		return ""
	}
	return " n/a: " + strings.Join(absent, "; ") + "."
}

func anyTrue(v []bool) bool {
	for _, b := range v {
		if b {
			return true
		}
	}
	return false
}

// syscallChart is a dot plot on a log axis: syscalls per op span from about
// two (epoll) to a few thousandths (SQPOLL) and zero (DPDK), which bars on
// a linear axis would flatten. A zero sits on the floor, labelled "0".
func (r *run) syscallChart(f family, p point) (*Chart, error) {
	labels := r.labels
	type dot struct {
		x, y  float64
		glyph int
	}
	var dots [2][]dot
	var zeros plotter.XYs
	var zeroLabels []string
	var absent []string
	minPos := math.Inf(1)
	metrics := []string{results.MSyscallsPerOp, results.MBackendSyscalls}
	for i, l := range labels {
		any := false
		for k, m := range metrics {
			s, ok := r.stat(l, p, m)
			if !ok {
				continue
			}
			any = true
			// The two counts of one backend sit side by side, not on top
			// of each other.
			dots[k] = append(dots[k], dot{float64(i) + 0.12*float64(2*k-1), s.Center, k})
			if s.Center > 0 {
				minPos = math.Min(minPos, s.Center)
			}
		}
		if !any {
			absent = append(absent, l+": "+r.absentWhy(l, p, results.MSyscallsPerOp))
		}
	}
	if len(dots[0])+len(dots[1]) == 0 {
		return nil, fmt.Errorf("%s, syscalls per op: no backend has a syscall count", f)
	}
	floor := 1e-3
	if !math.IsInf(minPos, 1) {
		floor = math.Pow(10, math.Floor(math.Log10(minPos))-1)
	}
	c := r.newChart("syscalls-per-op-"+f.slug(), fmt.Sprintf("Syscalls per op — %s", p), "backend",
		"syscalls per op (log scale)")
	c.Plot.NominalX(labels...)
	c.Plot.Y.Scale = plot.LogScale{}
	c.Plot.Y.Tick.Marker = plainLogTicks{}
	names := []string{"outside count (raw_syscalls tracepoint)", "backend's own count"}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}}
	for k := range dots {
		var xys plotter.XYs
		for _, d := range dots[k] {
			y := d.y
			if y <= 0 {
				y = floor
				zeros = append(zeros, plotter.XY{X: d.x, Y: floor})
				zeroLabels = append(zeroLabels, "  0")
			}
			xys = append(xys, plotter.XY{X: d.x, Y: y})
		}
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, fmt.Errorf("make syscall dots: %w", err)
		}
		sc.GlyphStyle.Shape = shapes[k]
		sc.GlyphStyle.Radius = vg.Points(5)
		sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
			gs := sc.GlyphStyle
			gs.Color = r.labelColor(labels[int(math.Round(xys[i].X))])
			return gs
		}
		c.Plot.Add(sc)
		c.Plot.Legend.Add(names[k], sc)
	}
	if len(zeros) > 0 {
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: zeros, Labels: zeroLabels})
		if err != nil {
			return nil, fmt.Errorf("make zero labels: %w", err)
		}
		c.Plot.Add(l)
	}
	b := newBarSet(labels)
	for i, l := range labels {
		_, _, b.have[i] = r.syscallsPerOp(l, p)
	}
	if err := addMissingLabels(c.Plot, b, floor); err != nil {
		return nil, err
	}
	c.Plot.Y.Min = floor / 2
	legendRoom(c.Plot, 2, true)
	padNominal(c.Plot, len(labels))
	c.Caption = fmt.Sprintf("Syscalls per op by backend at %s, log scale: circles count every syscall of "+
		"the server process at the raw_syscalls:sys_enter tracepoint, triangles are the backend's own count. "+
		"A measured zero sits on the floor (%s) labelled 0.%s", p, num(floor), naText(absent))
	return c, nil
}

// crossingChart splits each backend's cycles per op into crossings (its
// syscalls per op × the calibrated cost of a null syscall) and the rest:
// the kernel's stack and the application. The split is a model, and the
// chart says so: only the total is measured.
func (r *run) crossingChart(f family, p point) (*Chart, error) {
	perCall, ok := r.crossingCycles()
	if !ok {
		return nil, fmt.Errorf("%s, crossing cost: no null-syscall calibration in lesson.json", f)
	}
	labels := r.labels
	cross := newBarSet(labels)
	rest := newBarSet(labels)
	var absent, clamped, busy []string
	for i, l := range labels {
		sp, ok := r.crossingSplit(l, p, perCall)
		if !ok {
			m := results.MCyclesPerOp
			if _, okC := r.stat(l, p, m); okC {
				m = results.MSyscallsPerOp
			}
			absent = append(absent, l+": "+r.absentWhy(l, p, m))
			continue
		}
		if sp.clamped {
			clamped = append(clamped, l)
		}
		if sp.busy {
			busy = append(busy, l)
		}
		cross.values[i], cross.have[i] = sp.crossing, true
		rest.values[i], rest.have[i] = sp.rest, true
	}
	if !anyTrue(cross.have) {
		return nil, fmt.Errorf("%s, crossing cost: no backend has both cycles and syscalls per op", f)
	}
	c := r.newChart("crossing-cost-"+f.slug(), fmt.Sprintf("Crossings and the rest (modelled) — %s", p), "backend",
		r.cyclesNoun()+" per op (server cores)")
	c.Plot.NominalX(labels...)
	crossColor := color.RGBA{R: 214, G: 39, B: 40, A: 255}
	restColor := color.RGBA{R: 31, G: 119, B: 180, A: 255}
	for i := range labels {
		if !cross.have[i] {
			continue
		}
		bx, err := plotter.NewBarChart(plotter.Values{cross.values[i]}, barWidth)
		if err != nil {
			return nil, fmt.Errorf("make crossing bars: %w", err)
		}
		bx.XMin, bx.Color, bx.LineStyle.Width = float64(i), crossColor, 0
		br, err := plotter.NewBarChart(plotter.Values{rest.values[i]}, barWidth)
		if err != nil {
			return nil, fmt.Errorf("make stack bars: %w", err)
		}
		br.XMin, br.Color, br.LineStyle.Width = float64(i), restColor, 0
		br.StackOn(bx)
		c.Plot.Add(bx, br)
		if i == firstTrue(cross.have) {
			c.Plot.Legend.Add("crossings (modelled): syscalls/op × null-syscall cost", bx)
			c.Plot.Legend.Add("rest (modelled): network stack + application", br)
		}
	}
	if err := addMissingLabels(c.Plot, cross, 0); err != nil {
		return nil, err
	}
	c.Plot.Y.Min = 0
	legendRoom(c.Plot, 2, false)
	padNominal(c.Plot, len(labels))
	note := ""
	if len(clamped) > 0 {
		note = " For " + strings.Join(clamped, ", ") + " the crossing estimate exceeded the measured cycles/op, " +
			"so the bar is all crossings: the null-syscall cost is a calibration, not a per-call measurement."
	}
	if len(busy) > 0 {
		note += " Busy-polling backends (" + strings.Join(busy, ", ") + ") keep their cores 100% busy, so their bars " +
			"are their own count of the cycles of polls that found work (busy-cycles/op), not core busy time."
	}
	for _, l := range labels {
		if g := r.group(l, p); strings.HasPrefix(l, "dpdk") && g != nil && len(g.OK) > 0 && !contains(busy, l) {
			note += " " + l + " busy-polls and reported no busy-cycle count: its rest includes the idle polls at this load."
		}
	}
	c.Caption = fmt.Sprintf("Each backend's median %s per op at %s, split by a model, not a measurement, into "+
		"crossings (median syscalls/op × %s cycles per null syscall, calibrated on this machine) and the rest "+
		"(the network stack, the kernel's or DPDK's, and the application); only the bar's height is measured. "+
		"cycles_source %s.%s%s", r.cyclesNoun(), p, num(perCall), r.cyclesSource(), note, naText(absent))
	return c, nil
}

func firstTrue(v []bool) int {
	for i, b := range v {
		if b {
			return i
		}
	}
	return -1
}

// sweep is a set of points of one family that differ only in one knob.
type sweep struct {
	base   point // with the knob zeroed
	points []point
}

// sweeps groups f's points by everything but the knob; only sweeps with at
// least two settings make a line.
func (r *run) sweeps(f family, keep func(point) bool, knob func(point) point) []sweep {
	byBase := map[point]*sweep{}
	var order []point
	for _, p := range r.points(f) {
		if !keep(p) {
			continue
		}
		b := knob(p)
		s := byBase[b]
		if s == nil {
			s = &sweep{base: b}
			byBase[b] = s
			order = append(order, b)
		}
		s.points = append(s.points, p)
	}
	var out []sweep
	for _, b := range order {
		if s := byBase[b]; len(s.points) >= 2 {
			out = append(out, *s)
		}
	}
	// The widest sweep is the one worth a chart.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].points) > len(out[j].points) })
	return out
}

// lineChart draws one line per backend over a sweep, x from the knob, y a
// metric's median (with interval bars), skipping points a backend lacks: a
// gap, never a zero.
func (r *run) lineChart(c *Chart, sw sweep, x func(point) float64, metric string, dashed bool, suffix string, logY bool) (int, error) {
	lines := 0
	for _, l := range r.labels {
		var xys plotter.XYs
		var errs plotter.YErrors
		var ciPts plotter.XYs
		for _, p := range sw.points {
			s, ok := r.stat(l, p, metric)
			if !ok || (logY && s.Center <= 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: x(p), Y: s.Center})
			if s.HasCI() && (!logY || s.Lo > 0) {
				ciPts = append(ciPts, plotter.XY{X: x(p), Y: s.Center})
				errs = append(errs, struct{ Low, High float64 }{s.Center - s.Lo, s.Hi - s.Center})
			}
		}
		if len(xys) == 0 {
			continue
		}
		sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return 0, fmt.Errorf("make line: %w", err)
		}
		line.Color, pts.Color = r.labelColor(l), r.labelColor(l)
		line.Width = vg.Points(1.5)
		if dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			pts.Shape = draw.RingGlyph{}
		} else {
			pts.Shape = draw.CircleGlyph{}
		}
		c.Plot.Add(line, pts)
		c.Plot.Legend.Add(l+suffix, line, pts)
		if len(ciPts) > 0 {
			eb, err := plotter.NewYErrorBars(struct {
				plotter.XYer
				plotter.YErrorer
			}{ciPts, errs})
			if err != nil {
				return 0, fmt.Errorf("make error bars: %w", err)
			}
			eb.Color = r.labelColor(l)
			c.Plot.Add(eb)
		}
		lines++
	}
	return lines, nil
}

func (r *run) missingLines(sw sweep, metric string) []string {
	var absent []string
	for _, l := range r.labels {
		have := false
		for _, p := range sw.points {
			if _, ok := r.stat(l, p, metric); ok {
				have = true
			}
		}
		if !have {
			why := "not in this sweep"
			for _, p := range sw.points {
				if g := r.group(l, p); g != nil {
					why = r.absentWhy(l, p, metric)
					break
				}
			}
			absent = append(absent, l+": "+why)
		}
	}
	return absent
}

// throughputChart: closed-loop throughput against connections.
func (r *run) throughputChart(f family) (*Chart, error) {
	sws := r.sweeps(f, func(p point) bool { return p.Rate == 0 }, func(p point) point { p.Conns = 0; return p })
	if len(sws) == 0 {
		return nil, fmt.Errorf("%s, throughput vs connections: no closed-loop sweep over connections", f)
	}
	sw := sws[0]
	c := r.newChart("throughput-vs-conns-"+f.slug(),
		fmt.Sprintf("Closed-loop throughput vs connections — %s, depth %d, %d B", f, sw.base.Depth, sw.base.Size),
		"connections", "throughput (ops/s)")
	n, err := r.lineChart(c, sw, func(p point) float64 { return float64(p.Conns) }, results.MThroughput, false, "", false)
	if err != nil {
		return nil, err
	}
	// Connection counts grow by powers; a log axis spaces them evenly.
	var conns []float64
	for _, p := range sw.points {
		if p.Conns > 0 {
			conns = append(conns, float64(p.Conns))
		}
	}
	if len(conns) == len(sw.points) {
		c.Plot.X.Scale = plot.LogScale{}
		c.Plot.X.Tick.Marker = valueTicks(conns)
		c.Plot.X.Label.Text = "connections (log scale)"
		c.Plot.X.Min, c.Plot.X.Max = c.Plot.X.Min/1.25, c.Plot.X.Max*1.25
	}
	marked, err := r.markClientBound(c, sw, func(p point) float64 { return float64(p.Conns) }, results.MThroughput)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%s, throughput vs connections: no backend ran the sweep", f)
	}
	c.Plot.Y.Min = 0
	legendRoom(c.Plot, n+marked, false)
	c.Caption = fmt.Sprintf("Closed-loop throughput (median ops/s over repeats) against connections, "+
		"%s, depth %d, %d B messages; one line per backend.%s%s", f, sw.base.Depth, sw.base.Size,
		r.flaggedIn(sw.points), naText(r.missingLines(sw, results.MThroughput)))
	return c, nil
}

// flaggedIn names the backends flagged client-bound or noisy at points.
func (r *run) flaggedIn(points []point) string {
	var cb, noisy []string
	for _, p := range points {
		for _, l := range r.labels {
			g := r.group(l, p)
			if g == nil {
				continue
			}
			where := fmt.Sprintf("%s at %d conns", l, p.Conns)
			if p.Rate > 0 {
				where = fmt.Sprintf("%s at %s", l, rateText(p.Rate))
			}
			if g.ClientBound() {
				cb = append(cb, where)
			}
			if g.Noisy() {
				noisy = append(noisy, where)
			}
		}
	}
	s := ""
	if len(cb) > 0 {
		s += " Client-bound (the generator, not the server, was the limit): " + strings.Join(cb, ", ") + "."
	}
	if len(noisy) > 0 {
		s += " Flagged noisy: " + strings.Join(noisy, ", ") + "."
	}
	return s
}

// loadChart: p50 and p99 latency against offered load, log y, to show the
// knee where each path saturates.
func (r *run) loadChart(f family) (*Chart, error) {
	sws := r.sweeps(f, func(p point) bool { return p.Rate > 0 }, func(p point) point { p.Rate = 0; return p })
	if len(sws) == 0 {
		return nil, fmt.Errorf("%s, latency vs offered load: no open-loop sweep over rates", f)
	}
	sw := sws[0]
	c := r.newChart("latency-vs-load-"+f.slug(),
		fmt.Sprintf("Latency vs offered load — %s, %d×%d, %d B", f, sw.base.Conns, sw.base.Depth, sw.base.Size),
		"offered load (ops/s)", "latency (µs, log scale)")
	c.Plot.Y.Scale = plot.LogScale{}
	c.Plot.Y.Tick.Marker = plainLogTicks{}
	rate := func(p point) float64 { return p.Rate }
	n99, err := r.lineChart(c, sw, rate, results.MLatP99, false, " p99", true)
	if err != nil {
		return nil, err
	}
	n50, err := r.lineChart(c, sw, rate, results.MLatP50, true, " p50", true)
	if err != nil {
		return nil, err
	}
	if n99+n50 == 0 {
		return nil, fmt.Errorf("%s, latency vs offered load: no backend has latency", f)
	}
	marked, err := r.markClientBound(c, sw, rate, results.MLatP99)
	if err != nil {
		return nil, err
	}
	legendRoom(c.Plot, n99+n50+marked, true)
	c.Caption = fmt.Sprintf("Open-loop latency, measured from each request's intended send time, against the "+
		"offered load: p99 solid, p50 dashed, log scale; one colour per backend. Where a line turns up "+
		"steeply the path has saturated (the knee).%s%s", r.flaggedIn(sw.points),
		naText(r.missingLines(sw, results.MLatP99)))
	return c, nil
}

// ninesTicks labels a "nines" axis (x = -log10(1 - p/100)) with percentiles.
type ninesTicks struct{}

func (ninesTicks) Ticks(min, max float64) []plot.Tick {
	out := []plot.Tick{{Value: 0}, {Value: math.Log10(2), Label: "50%"}}
	for n := 1; float64(n) <= max+1e-9; n++ {
		label := "90%"
		if n > 1 {
			label = "99" + strings.TrimSuffix("."+strings.Repeat("9", n-2), ".") + "%"
		}
		out = append(out, plot.Tick{Value: float64(n), Label: label})
	}
	return out
}

func nines(p float64) float64 { return -math.Log10(1 - p/100) }

// distributionChart: the latency percentile curve of each backend at the
// open-loop point of f where most backends recorded a curve.
func (r *run) distributionChart(f family) (*Chart, error) {
	var best point
	bestN := 0
	for _, p := range r.points(f) {
		n := 0
		for _, l := range r.labels {
			if curveOf(r.group(l, p)) != nil {
				n++
			}
		}
		if n > bestN || (n == bestN && n > 0 && p.Rate > 0 && best.Rate == 0) {
			best, bestN = p, n
		}
	}
	if bestN == 0 {
		return nil, fmt.Errorf("%s, latency distribution: no record has a latency curve", f)
	}
	c := r.newChart("latency-distribution-"+f.slug(), fmt.Sprintf("Latency distribution — %s", best),
		"percentile", "latency (µs, log scale)")
	c.Plot.X.Tick.Marker = ninesTicks{}
	c.Plot.Y.Scale = plot.LogScale{}
	c.Plot.Y.Tick.Marker = plainLogTicks{}
	var absent, maxes []string
	for _, l := range r.labels {
		curve := curveOf(r.group(l, best))
		if curve == nil {
			why := "no latency curve recorded"
			if g := r.group(l, best); g == nil || len(g.OK) == 0 {
				why = r.absentWhy(l, best, results.MLatP99)
			}
			absent = append(absent, l+": "+why)
			continue
		}
		var xys plotter.XYs
		for _, pt := range curve {
			// The maximum (p = 100) would sit at infinity; the caption
			// gives it instead.
			if pt.US > 0 && pt.P < 100 {
				xys = append(xys, plotter.XY{X: nines(pt.P), Y: pt.US})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("make curve: %w", err)
		}
		line.Color, line.Width = r.labelColor(l), vg.Points(1.5)
		c.Plot.Add(line)
		c.Plot.Legend.Add(l, line)
		if last := curve[len(curve)-1]; last.P >= 100 {
			maxes = append(maxes, fmt.Sprintf("%s %s µs", l, num(last.US)))
		}
	}
	// Percentile curves rise to the right; the legend goes where they are low.
	c.Plot.Legend.Left = true
	legendRoom(c.Plot, len(r.labels), true)
	// Room for the last tick's label.
	c.Plot.X.Max += 0.3
	maxima := ""
	if len(maxes) > 0 {
		maxima = " Maxima: " + strings.Join(maxes, ", ") + "."
	}
	c.Caption = fmt.Sprintf("Latency percentiles at %s, one line per backend (the median repeat's curve), "+
		"x on a \"nines\" scale so the tail is visible, y log scale, µs; the maximum is not drawn (it sits at "+
		"100%%, infinitely far right).%s%s", best, maxima, naText(absent))
	return c, nil
}

// curveOf returns the curve of g's median repeat by p99, so the line drawn
// is a real measured distribution, not a blend of repeats.
func curveOf(g *results.Group) []results.Percentile {
	if g == nil {
		return nil
	}
	var withCurve []results.Record
	for _, rec := range g.OK {
		if len(rec.Curve) > 0 {
			withCurve = append(withCurve, rec)
		}
	}
	if len(withCurve) == 0 {
		return nil
	}
	sort.SliceStable(withCurve, func(i, j int) bool { return withCurve[i].LatP99 < withCurve[j].LatP99 })
	return withCurve[(len(withCurve)-1)/2].Curve
}

// padNominal keeps the first and last category clear of the plot's edges.
func padNominal(p *plot.Plot, n int) {
	p.X.Min, p.X.Max = -0.6, float64(n)-0.4
}

// legendRoom raises the top of the y axis so that the data keep clear of
// the legend, which gonum draws inside the plot's top corner: each legend
// entry takes about a sixteenth of the height. Call it after every plotter
// was added, when the axis spans the data.
func legendRoom(p *plot.Plot, entries int, logY bool) {
	f := math.Min(0.5, 0.065*float64(entries)+0.08)
	lo, hi := p.Y.Min, p.Y.Max
	if logY {
		if lo <= 0 || hi <= 0 {
			return
		}
		lo, hi = math.Log10(lo), math.Log10(hi)
		span := math.Max(hi-lo, 1)
		p.Y.Max = math.Pow(10, lo+span/(1-f))
		return
	}
	if hi > lo {
		p.Y.Max = lo + (hi-lo)/(1-f)
	}
}

// valueTicks labels exactly the values a sweep ran at.
type valueTicks []float64

func (v valueTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, x := range v {
		if x >= min && x <= max {
			out = append(out, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
		}
	}
	return out
}

// markClientBound rings every point whose configuration was flagged
// client-bound: there the generator, not the server, set the figure.
// It returns the legend entries it added.
func (r *run) markClientBound(c *Chart, sw sweep, x func(point) float64, metric string) (int, error) {
	return r.markFlagged(c, sw, x, metric, (*results.Group).ClientBound,
		draw.GlyphStyle{Shape: draw.RingGlyph{}, Radius: vg.Points(8), Color: color.Black}, "client-bound")
}

// markFlagged draws glyph over every point of the sweep whose group is
// flagged, with one legend entry; it returns the entries it added.
func (r *run) markFlagged(c *Chart, sw sweep, x func(point) float64, metric string,
	flagged func(*results.Group) bool, glyph draw.GlyphStyle, legend string) (int, error) {
	var xys plotter.XYs
	for _, l := range r.labels {
		for _, p := range sw.points {
			g := r.group(l, p)
			if g == nil || !flagged(g) {
				continue
			}
			if s, ok := g.Stat(metric); ok {
				xys = append(xys, plotter.XY{X: x(p), Y: s.Center})
			}
		}
	}
	if len(xys) == 0 {
		return 0, nil
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return 0, fmt.Errorf("make %s marks: %w", legend, err)
	}
	sc.GlyphStyle = glyph
	c.Plot.Add(sc)
	c.Plot.Legend.Add(legend, sc)
	return 1, nil
}

// plainLogTicks are gonum's log-axis ticks labelled as plain numbers
// ("100000", not "1e+05").
type plainLogTicks struct{}

func (plainLogTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.LogTicks{Prec: -1}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
