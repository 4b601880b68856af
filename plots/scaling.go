package plots

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"ringbench/results"
)

// sharedFlag marks a configuration whose generator ran on the server's
// cores (results.Record.ClientSharesServerCPUs).
const sharedFlag = "generator on the server's cores"

// sharedColor draws the marks of such points: a dark grey that no
// backend's colour is.
var sharedColor = color.Gray{Y: 60}

// scalingCharts draw, for f's widest closed-loop sweep over server cores,
// the throughput and the cycles per op of each backend against its cores:
// one line per backend. A point whose generator shared the server's cores
// is ringed and named in the caption (its cycles include the generator's);
// a backend that could not run on some core count is named with the
// reason, never drawn as zero.
func (r *run) scalingCharts(f family) ([]*Chart, error) {
	sws := r.sweeps(f, func(p point) bool { return p.Rate == 0 }, func(p point) point { p.Cores = 0; return p })
	if len(sws) == 0 {
		return nil, fmt.Errorf("%s, scaling: no closed-loop sweep over server cores", f)
	}
	sw := sws[0]
	cores := func(p point) float64 { return float64(p.Cores) }
	var out []*Chart
	for _, m := range []struct{ metric, stem, title, y string }{
		{results.MThroughput, "scaling-throughput-", "Throughput vs server cores", "throughput (ops/s)"},
		{results.MCyclesPerOp, "scaling-cycles-per-op-", r.cyclesLabel("Cycles per op vs server cores"), r.cyclesNoun() + " per op (all server cores)"},
	} {
		c := r.newChart(m.stem+f.slug(), fmt.Sprintf("%s — %s, %d×%d, %d B, closed loop", m.title, f, sw.base.Conns, sw.base.Depth, sw.base.Size),
			"server cores (one loop each)", m.y)
		n, err := r.lineChart(c, sw, cores, m.metric, false, "", false)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			continue
		}
		var ticks []float64
		for _, p := range sw.points {
			ticks = append(ticks, float64(p.Cores))
		}
		c.Plot.X.Tick.Marker = valueTicks(ticks)
		c.Plot.X.Min, c.Plot.X.Max = c.Plot.X.Min-0.3, c.Plot.X.Max+0.3
		marked, err := r.markShared(c, sw, cores, m.metric)
		if err != nil {
			return nil, err
		}
		cb, err := r.markClientBound(c, sw, cores, m.metric)
		if err != nil {
			return nil, err
		}
		c.Plot.Y.Min = 0
		legendRoom(c.Plot, n+marked+cb, false)
		c.Caption = fmt.Sprintf("%s (median over repeats) against the server's cores, one event loop per core "+
			"(SO_REUSEPORT on the kernel paths), %s, %d×%d, %d B messages, closed loop; one line per backend.%s%s%s",
			m.title, f, sw.base.Conns, sw.base.Depth, sw.base.Size, r.sharedText(sw.points, m.metric), r.flaggedIn(sw.points),
			naText(r.missingPoints(sw, m.metric)))
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s, scaling: no backend has a counted throughput on the sweep over cores (%s)",
			f, strings.Join(r.missingPoints(sw, results.MThroughput), "; "))
	}
	return out, nil
}

// markShared marks, with a square, every point whose generator shared the
// server's cores; it returns the legend entries it added.
func (r *run) markShared(c *Chart, sw sweep, x func(point) float64, metric string) (int, error) {
	return r.markFlagged(c, sw, x, metric, (*results.Group).SharesCPUs,
		draw.GlyphStyle{Shape: draw.BoxGlyph{}, Radius: vg.Points(7), Color: sharedColor}, sharedFlag)
}

// sharedText says which points of a chart had the generator on the
// server's cores, and what that does to metric.
func (r *run) sharedText(points []point, metric string) string {
	var at []string
	for _, p := range points {
		for _, l := range r.labels {
			if g := r.group(l, p); g != nil && g.SharesCPUs() {
				at = append(at, fmt.Sprintf("%s on %s", l, plural(p.Cores, "core")))
			}
		}
	}
	if len(at) == 0 {
		return ""
	}
	what := "its throughput is the pair's, server and generator sharing the cores"
	if metric != results.MThroughput {
		what = "its cycles per op include the generator's work on those cores, so it is not the server's cost"
	}
	return fmt.Sprintf(" Squares mark the points where the machine had too few CPUs to give the generator its own "+
		"and it ran on the server's cores (%s): %s; they are left out of the headline comparison.", strings.Join(at, ", "), what)
}

// missingPoints names each backend and core count of the sweep without a
// value, with the reason (a skip says what this machine lacks).
func (r *run) missingPoints(sw sweep, metric string) []string {
	var absent []string
	for _, l := range r.labels {
		ran := false
		for _, p := range sw.points {
			if r.group(l, p) != nil {
				ran = true
			}
		}
		if !ran {
			continue // not in this experiment at all
		}
		for _, p := range sw.points {
			if _, ok := r.stat(l, p, metric); !ok {
				absent = append(absent, fmt.Sprintf("%s on %s: %s", l, plural(p.Cores, "core"), r.absentWhy(l, p, metric)))
			}
		}
	}
	return absent
}

// hasCoreCounts says whether f ran on more than one core count, so that a
// missing scaling chart is worth a sentence.
func (r *run) hasCoreCounts(f family) bool {
	seen := map[int]bool{}
	for _, p := range r.points(f) {
		seen[p.Cores] = true
	}
	return len(seen) > 1
}
