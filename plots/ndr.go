package plots

import (
	"fmt"
	"image/color"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"ringbench/results"
)

// ndrSection adds the maximum sustainable rate per backend, from the
// folder's ndr.jsonl, when `ringbench ndr` (or a profile's ndr search)
// wrote one: the chart, when it could be drawn, then the table.
func (r *run) ndrSection(doc *document, chart *figure) {
	if len(r.ndr) == 0 {
		return
	}
	doc.add(heading{2, "Maximum sustainable rate"})
	if chart != nil {
		doc.add(*chart)
	}
	doc.add(
		paragraph("Per backend, the highest open-loop rate at which the loss ratio ((lost + timed out + unsent) / offered) "+
			"and the p99 latency stayed within their limits and the answered rate within 2% of the target, found by "+
			"`ringbench ndr`: coarse steps up, bisection to the stated precision, then a confirmation trial at the rate found. "+
			"Cycles/op are the confirmation trial's. Every step's trial is in results.jsonl with a note \"ndr step k\" "+
			"(in the ndr/ folder when the search ran in `ringbench bench`). "+
			"\"generator-bound\" marks a search that stopped because a failing trial was client-bound: the generator, "+
			"not the server, was the limit, and the rate is a lower bound of the server's."),
		tableBlock{ndrTable(r.ndr)})
}

func ndrTable(found []results.NDR) *table {
	t := &table{header: []string{"backend", "proto", "size", "conns×depth", "max rate ops/s", "cycles/op", "p99 µs",
		"loss limit", "p99 limit µs", "precision", "trials", "flags"},
		right:  []bool{false, false, true, true, true, true, true, true, true, true, true, false},
		badges: map[int]bool{11: true}}
	for _, n := range found {
		rate, cycles, p99 := missing, missing, missing
		if n.Rate > 0 {
			rate = strconv.FormatFloat(n.Rate, 'f', 0, 64)
			cycles = fmt.Sprintf("%.0f (%s)", n.CyclesPerOp, n.CyclesSource)
			p99 = fmt.Sprintf("%.0f", n.P99US)
		}
		var flag string
		switch {
		case n.GeneratorBound:
			flag = fmt.Sprintf("generator-bound at %.0f ops/s", n.GeneratorBoundRate)
		case n.Error != "":
			flag = "error"
		case n.Rate == 0:
			flag = "none passed"
		}
		rate += " " + t.note(n.Stop)
		if n.Error != "" {
			rate += " " + t.note(n.Error)
		}
		t.rows = append(t.rows, []string{n.Backend, n.Config.Proto, strconv.Itoa(n.Config.Size),
			fmt.Sprintf("%d×%d", n.Config.Conns, n.Config.Depth), rate, cycles, p99,
			strconv.FormatFloat(n.LossLimit, 'g', -1, 64), strconv.FormatFloat(n.P99LimitUS, 'g', -1, 64),
			strconv.FormatFloat(n.Precision, 'g', -1, 64), strconv.Itoa(n.Trials), flag})
	}
	return t
}

// ndrChartName is the maximum-sustainable-rate chart's file stem.
const ndrChartName = "max-sustainable-rate"

// ndrLabel names a search's bar: its backend, and its configuration when
// the folder searched more than one.
func (r *run) ndrLabel(n results.NDR) string {
	for _, o := range r.ndr {
		c, d := o.Config, n.Config
		if o.Backend == n.Backend && (c.Proto != d.Proto || c.Size != d.Size || c.Conns != d.Conns || c.Depth != d.Depth || c.Cores != d.Cores) {
			return fmt.Sprintf("%s %s %dB %d×%d", n.Backend, d.Proto, d.Size, d.Conns, d.Depth)
		}
	}
	return n.Backend
}

// ndrRate is the rate a search's bar stands at, and whether it is only a
// lower bound (the generator was the limit).
func ndrRate(n results.NDR) (rate float64, lowerBound bool) {
	if n.GeneratorBound {
		return max(n.Rate, n.PassedRate), true
	}
	return n.Rate, false
}

// ndrChart draws each search's maximum sustainable rate as a bar labelled
// with the cycles per op of its confirmation trial. A generator-bound
// search's bar is hatched grey and marked "≥": the generator, not the
// server, was the limit, so the server's rate is at least that. A search
// that found no rate is "n/a" with its reason in the caption.
func (r *run) ndrChart() (*Chart, error) {
	labels := make([]string, len(r.ndr))
	b := newBarSet(labels)
	var texts []string
	var xys plotter.XYs
	var bounded, absent []string
	limits := map[string]bool{}
	for i, n := range r.ndr {
		labels[i] = r.ndrLabel(n)
		limits[fmt.Sprintf("loss ≤ %g, p99 ≤ %g µs", n.LossLimit, n.P99LimitUS)] = true
		rate, lower := ndrRate(n)
		if rate <= 0 {
			why := n.Stop
			if n.Error != "" {
				why += ": " + n.Error
			}
			b.why[i] = why
			absent = append(absent, labels[i]+": "+why)
			continue
		}
		b.values[i], b.have[i] = rate, true
		text := num(rate)
		if lower {
			text = "≥ " + text
			bounded = append(bounded, fmt.Sprintf("%s (the generator was the limit at %s ops/s)", labels[i], num(n.GeneratorBoundRate)))
		}
		if n.CyclesPerOp > 0 {
			text += fmt.Sprintf("\n%s cyc/op", num(n.CyclesPerOp))
		}
		xys = append(xys, plotter.XY{X: float64(i), Y: rate})
		texts = append(texts, text)
	}
	if !anyTrue(b.have) {
		return nil, fmt.Errorf("maximum sustainable rate: no search found a rate")
	}
	var crit []string
	for c := range limits {
		crit = append(crit, c)
	}
	sort.Strings(crit)
	c := r.newChart(ndrChartName, "Maximum sustainable rate per path — "+strings.Join(crit, "; "), "backend", "ops/s (open loop)")
	b.categories = labels
	c.Plot.NominalX(labels...)
	colors := r.colors(labels)
	for i, n := range r.ndr {
		if _, lower := ndrRate(n); lower {
			colors[i] = generatorBoundColor
		}
	}
	if err := addBars(c.Plot, b, colors); err != nil {
		return nil, err
	}
	if len(xys) > 0 {
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
		if err != nil {
			return nil, fmt.Errorf("make ndr labels: %w", err)
		}
		lb.Offset = vg.Point{Y: vg.Points(4)}
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XCenter
		}
		c.Plot.Add(lb)
	}
	c.Plot.Y.Min = 0
	legendRoom(c.Plot, 2, false)
	padNominal(c.Plot, len(labels))
	note := ""
	if len(bounded) > 0 {
		note = " Grey bars marked ≥ are lower bounds: the search stopped because a failing trial was client-bound, " +
			"so the generator, not the server, was the limit: " + strings.Join(bounded, ", ") + "."
	}
	c.Caption = fmt.Sprintf("The highest open-loop rate each path sustained with %s and the answered rate within 2%% "+
		"of the target, found by a bounded search (coarse steps, bisection, a confirmation trial); each bar is labelled "+
		"with its rate and the %s per op of its confirmation trial (cycles_source %s).%s%s",
		strings.Join(crit, "; "), r.cyclesNoun(), r.cyclesSource(), note, naText(absent))
	return c, nil
}

// generatorBoundColor fills the bar of a search the generator limited.
var generatorBoundColor = color.Gray{Y: 170}
