package plots

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"ringbench/results"
)

// compareWidth leaves room for configuration keys as bar labels.
const compareWidth = 11 * vg.Inch

// compared are the metrics Compare judges.
var compared = []string{results.MThroughput, results.MCyclesPerOp, results.MCPUNsPerOp, results.MSyscallsPerOp, results.MLatP99}

// change is one metric of one configuration in two runs.
type change struct {
	key, label string
	short      string // backend and point, for chart labels
	metric     string
	a, b       results.Stat
	delta      string  // benchstat's: "+3.2%" or "~"
	pct        float64 // NaN when not significant
	p          float64
	n1, n2     int
	// cost: this is the configuration's cost verdict, the cost meter with
	// the tighter spread (results.CostMeter); why says so.
	cost bool
	why  string
}

// Compare writes, for every configuration in both folders, the change of
// each key metric from dirA to dirB with its significance as benchstat
// judges it, then the configurations only one folder has. With a non-empty
// chartDir it also saves a chart of the significant changes per metric.
func Compare(dirA, dirB string, w io.Writer, chartDir string) error {
	ra, err := loadRun(dirA)
	if err != nil {
		return fmt.Errorf("load %s: %w", dirA, err)
	}
	rb, err := loadRun(dirB)
	if err != nil {
		return fmt.Errorf("load %s: %w", dirB, err)
	}
	changes, onlyA, onlyB := compareRuns(ra, rb)
	t := &table{
		header: []string{"configuration", "metric", "A", "B", "Δ", "p"},
		right:  []bool{false, false, true, true, true, true},
	}
	var verdicts []string
	for _, c := range changes {
		metric := c.metric
		if c.cost {
			metric += " (cost)"
			verdicts = append(verdicts, fmt.Sprintf("%s: %s on %s", c.key, c.delta, c.why))
		}
		p := fmt.Sprintf("p=%.3f n=%d+%d", c.p, c.n1, c.n2)
		if c.n1 < 2 || c.n2 < 2 {
			p = fmt.Sprintf("n=%d+%d, no test", c.n1, c.n2)
		}
		t.rows = append(t.rows, []string{c.key, metric, num(c.a.Center) + " " + ciPct(c.a),
			num(c.b.Center) + " " + ciPct(c.b), c.delta, p})
	}
	fmt.Fprintf(w, "A: %s (%s)\nB: %s (%s)\n", dirA, ra.runName(), dirB, rb.runName())
	for _, c := range compareCaveats(ra, rb) {
		fmt.Fprintln(w, "caveat: "+c)
	}
	if len(changes) > 0 {
		if err := t.render(w, terminal); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(w, "No configuration has a metric measured in both runs.")
	}
	fmt.Fprintln(w, "Medians over repeats not flagged noisy or client-bound, ± 95% interval (6 repeats or more); Δ is \"~\" when the Mann-Whitney U test finds no significant difference (alpha 0.05).")
	if len(verdicts) > 0 {
		fmt.Fprintln(w, "Cost per op, judged per configuration on cycles/op or cpu-ns/op, whichever has the tighter spread (the larger CV of A and B):")
		for _, v := range verdicts {
			fmt.Fprintln(w, "  "+v)
		}
	}
	for _, k := range onlyA {
		fmt.Fprintf(w, "only in A: %s\n", k)
	}
	for _, k := range onlyB {
		fmt.Fprintf(w, "only in B: %s\n", k)
	}
	if chartDir == "" {
		return nil
	}
	for _, m := range compared {
		c, err := compareChart(ra, rb, m, changes)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		if err := c.Save(chartDir); err != nil {
			return err
		}
	}
	return nil
}

// compareCaveats says what makes the two runs' figures less comparable
// than their intervals suggest: cycles of different kinds, and meters that
// failed their validation.
func compareCaveats(ra, rb *run) []string {
	var out []string
	if c := cyclesCaveat(ra, rb); c != "" {
		out = append(out, c)
	}
	for _, side := range []struct {
		name string
		r    *run
	}{{"A", ra}, {"B", rb}} {
		if v := side.r.validation; v != nil && !v.Passed() {
			out = append(out, fmt.Sprintf("%s's meter validation FAILED: %s", side.name, strings.Join(v.Failed(), ", ")))
		}
	}
	return out
}

// cyclesCaveat says that A's and B's cycles are of different kinds, or ""
// when they are of one kind.
func cyclesCaveat(ra, rb *run) string {
	a, b := ra.cyclesSource(), rb.cyclesSource()
	if a == b {
		return ""
	}
	return fmt.Sprintf("A's cycles are %s, B's %s (cycles_source %s vs %s): a change in cycles/op is partly a change of meter",
		ra.cyclesNoun(), rb.cyclesNoun(), a, b)
}

func compareRuns(ra, rb *run) (changes []change, onlyA, onlyB []string) {
	inB := map[string]*results.Group{}
	for i := range rb.groups {
		inB[rb.groups[i].Key] = &rb.groups[i]
	}
	inA := map[string]bool{}
	for _, ga := range ra.sortedGroups() {
		inA[ga.Key] = true
		gb := inB[ga.Key]
		if gb == nil {
			onlyA = append(onlyA, ga.Key)
			continue
		}
		cost, hasCost := results.CostMeter(ga, gb)
		for _, m := range compared {
			sa, okA := ga.Stat(m)
			sb, okB := gb.Stat(m)
			if !okA || !okB {
				continue
			}
			cmp := sa.Compare(sb)
			c := change{key: ga.Key, label: ga.Config.Label(), short: ga.Config.Label() + " " + pointOf(ga.Config).String(),
				metric: m, a: sa, b: sb,
				delta: cmp.FormatDelta(sa.Center, sb.Center), pct: math.NaN(), p: cmp.P, n1: cmp.N1, n2: cmp.N2}
			if sa.N < 2 || sb.N < 2 {
				// One repeat is no test: never a change, whatever
				// the two numbers.
				c.delta = "~"
			}
			if c.delta != "~" && sa.Center != 0 {
				c.pct = (sb.Center - sa.Center) / sa.Center * 100
			}
			if hasCost && m == cost.Metric {
				c.cost, c.why = true, spreadText(cost)
			}
			changes = append(changes, c)
		}
	}
	for _, gb := range rb.sortedGroups() {
		if !inA[gb.Key] {
			onlyB = append(onlyB, gb.Key)
		}
	}
	return changes, onlyA, onlyB
}

// compareChart draws the % change of one metric per configuration as
// horizontal bars; a change benchstat does not find significant is a "~"
// at zero, which is what benchstat prints for it. The machine line names
// only A's cycle source, so a change of cycles between runs whose cycles
// are of different kinds says so on the chart itself.
func compareChart(ra, rb *run, metric string, changes []change) (*Chart, error) {
	var keys []string
	var vals plotter.Values
	var tilde plotter.XYs
	for _, c := range changes {
		if c.metric != metric {
			continue
		}
		y := float64(len(keys))
		keys = append(keys, c.short)
		if math.IsNaN(c.pct) {
			vals = append(vals, 0)
			tilde = append(tilde, plotter.XY{X: 0, Y: y})
			continue
		}
		vals = append(vals, c.pct)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Change in %s, B vs A\n%s", metric, ra.machine())
	caption := "Percent change of the median from A to B per configuration; \"~\": not significant (Mann-Whitney U, alpha 0.05)."
	if c := cyclesCaveat(ra, rb); c != "" && strings.Contains(metric, "cycles") {
		p.Title.Text += "\n" + c
		caption += " " + c + "."
	}
	p.X.Label.Text = "change (%)"
	p.Add(plotter.NewGrid())
	bars, err := plotter.NewBarChart(vals, vg.Points(10))
	if err != nil {
		return nil, fmt.Errorf("make change bars: %w", err)
	}
	bars.Horizontal = true
	bars.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	if len(tilde) > 0 {
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: tilde, Labels: repeat("~", len(tilde))})
		if err != nil {
			return nil, fmt.Errorf("make ~ labels: %w", err)
		}
		p.Add(l)
	}
	p.NominalY(keys...)
	h := vg.Length(len(keys))*vg.Points(16) + 2*vg.Inch
	return &Chart{Name: "compare-" + slugMetric(metric), Title: "Change in " + metric, Plot: p,
		Width: compareWidth, Height: h,
		Caption: caption}, nil
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func slugMetric(m string) string {
	out := []rune{}
	for _, r := range strings.ReplaceAll(m, "µ", "u") {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out = append(out, r)
		default:
			out = append(out, '-')
		}
	}
	return string(out)
}
