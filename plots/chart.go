package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"ringbench/internal/outdir"
	"ringbench/results"
)

// Chart is a rendered-on-demand chart: built from results alone, saved or
// inlined by whoever holds it.
type Chart struct {
	Name    string // file stem: "cycles-per-op-echo-tcp-veth"
	Title   string
	Caption string // what it shows, its units, and what is n/a and why
	Plot    *plot.Plot
	Width   vg.Length
	Height  vg.Length
}

// Chart sizes; PNGs render at gonum's default 96 dpi.
const (
	chartWidth  = 8 * vg.Inch
	chartHeight = 4.5 * vg.Inch
)

// WriteTo renders the chart in format "png" or "svg".
func (c *Chart) WriteTo(w io.Writer, format string) error {
	wt, err := c.Plot.WriterTo(c.Width, c.Height, format)
	if err != nil {
		return fmt.Errorf("render chart %s: %w", c.Name, err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("write chart %s: %w", c.Name, err)
	}
	return nil
}

// SVG renders the chart as an <svg> element fit to inline in HTML: the XML
// prolog that a standalone file needs is cut.
func (c *Chart) SVG() ([]byte, error) {
	var b bytes.Buffer
	if err := c.WriteTo(&b, "svg"); err != nil {
		return nil, err
	}
	out := b.Bytes()
	if i := bytes.Index(out, []byte("<svg")); i > 0 {
		out = out[i:]
	}
	return bytes.ReplaceAll(out, []byte("font-family:"+chartFont+";"), []byte("font-family:"+chartFontStack+";")), nil
}

// The charts' text is laid out with Liberation Serif's metrics (gonum's
// default font), and a browser without that font drew the breakdown's
// legend entries over each other (the report's first screen, in Debian's
// Chromium with DejaVu only). An inlined SVG names it first and then fonts
// with the same metrics: Times New Roman (Windows, macOS) and Tinos
// (ChromeOS) are metric-compatible with Liberation Serif.
const (
	chartFont      = "Liberation Serif"
	chartFontStack = "'Liberation Serif','Times New Roman',Tinos,Times,serif"
)

// Save writes dir/Name.png and dir/Name.svg, making dir when it is missing
// (outdir.Prepare checks it).
func (c *Chart) Save(dir string) error {
	dir, err := outdir.Prepare(dir)
	if err != nil {
		return fmt.Errorf("save chart: %w", err)
	}
	_, err = c.saveFiles(dir)
	return err
}

// saveFiles saves the chart into dir, a folder outdir has checked, and
// returns its SVG element for inlining. The file is that element alone: an
// SVG file needs no XML prolog.
func (c *Chart) saveFiles(dir string) ([]byte, error) {
	var img bytes.Buffer
	if err := c.WriteTo(&img, "png"); err != nil {
		return nil, err
	}
	svg, err := c.SVG()
	if err != nil {
		return nil, err
	}
	for ext, b := range map[string][]byte{".png": img.Bytes(), ".svg": svg} {
		if err := outdir.WriteBytes(filepath.Join(dir, c.Name+ext), b); err != nil {
			return nil, fmt.Errorf("save chart: %w", err)
		}
	}
	return svg, nil
}

// newChart starts a plot whose title names the machine and the cycle
// source, so a chart cut out of the report still says where it came from.
func (r *run) newChart(name, title, xLabel, yLabel string) *Chart {
	p := plot.New()
	p.Title.Text = title + "\n" + r.machine()
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	// Room between legend entries, so that a fallback font with taller
	// glyphs than the layout's still leaves each entry on its own line.
	p.Legend.Padding = vg.Points(3)
	p.Add(plotter.NewGrid())
	return &Chart{Name: name, Title: title, Plot: p, Width: chartWidth, Height: chartHeight}
}

// machine is the subtitle every chart carries.
func (r *run) machine() string {
	cpu := r.env.CPUModel
	if cpu == "" {
		cpu = "unknown CPU"
	}
	kernel := r.env.Kernel
	if kernel == "" {
		kernel = "unknown"
	}
	s := fmt.Sprintf("%s · Linux %s · cycles_source: %s", cpu, kernel, r.cyclesSource())
	if r.env.Virtualized {
		s += " (VM)"
	}
	return s
}

// labelColor gives each backend label the same colour in every chart.
func (r *run) labelColor(label string) color.Color {
	for i, l := range r.labels {
		if l == label {
			return plotutil.Color(i)
		}
	}
	return color.Gray{Y: 128}
}

// barSet is one bar per category, some of which may have no value.
type barSet struct {
	categories []string
	values     []float64
	have       []bool
	lo, hi     []float64 // interval bounds where known (NaN: none)
	why        []string  // for a category without a value
}

func newBarSet(categories []string) *barSet {
	n := len(categories)
	b := &barSet{categories: categories, values: make([]float64, n), have: make([]bool, n),
		lo: make([]float64, n), hi: make([]float64, n), why: make([]string, n)}
	for i := range b.lo {
		b.lo[i], b.hi[i] = nan, nan
	}
	return b
}

func (b *barSet) setStat(i int, s results.Stat) {
	b.values[i], b.have[i] = s.Center, true
	if s.HasCI() {
		b.lo[i], b.hi[i] = s.Lo, s.Hi
	}
}

// addBars draws the set as vertical bars, one colour per category, with
// interval error bars, and an "n/a" label in place of every missing bar so
// that it cannot be read as zero.
func addBars(p *plot.Plot, b *barSet, colors []color.Color) error {
	for i, v := range b.values {
		if !b.have[i] {
			continue
		}
		bars, err := plotter.NewBarChart(plotter.Values{v}, barWidth)
		if err != nil {
			return fmt.Errorf("make bars: %w", err)
		}
		bars.Color = colors[i]
		bars.LineStyle.Width = 0
		bars.XMin = float64(i)
		p.Add(bars)
	}
	if err := addErrorBars(p, b); err != nil {
		return err
	}
	return addMissingLabels(p, b, 0)
}

var barWidth = vg.Points(28)

func addErrorBars(p *plot.Plot, b *barSet) error {
	var pts plotter.XYs
	var errs plotter.YErrors
	for i := range b.values {
		if !b.have[i] || isNaN(b.lo[i]) {
			continue
		}
		pts = append(pts, plotter.XY{X: float64(i), Y: b.values[i]})
		errs = append(errs, struct{ Low, High float64 }{b.values[i] - b.lo[i], b.hi[i] - b.values[i]})
	}
	if len(pts) == 0 {
		return nil
	}
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYer
		plotter.YErrorer
	}{pts, errs})
	if err != nil {
		return fmt.Errorf("make error bars: %w", err)
	}
	eb.LineStyle.Width = vg.Points(1)
	eb.CapWidth = vg.Points(6)
	p.Add(eb)
	return nil
}

func addMissingLabels(p *plot.Plot, b *barSet, y float64) error {
	var xys plotter.XYs
	var labels []string
	for i := range b.values {
		if b.have[i] {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(i), Y: y})
		labels = append(labels, notRun)
	}
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return fmt.Errorf("make n/a labels: %w", err)
	}
	l.Offset = vg.Point{Y: vg.Points(4)}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].Color = color.Gray{Y: 90}
	}
	p.Add(l)
	return nil
}
