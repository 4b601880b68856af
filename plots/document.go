package plots

import (
	"bytes"
	"fmt"
	"html"
	"strings"
)

// block is one piece of the report, rendered the same way into Markdown and
// into HTML so that the two never say different things.
type block interface {
	markdown(b *bytes.Buffer) error
	html(b *bytes.Buffer) error
}

type heading struct {
	level int
	text  string
}

func (h heading) markdown(b *bytes.Buffer) error {
	fmt.Fprintf(b, "%s %s\n\n", strings.Repeat("#", h.level), h.text)
	return nil
}

func (h heading) html(b *bytes.Buffer) error {
	fmt.Fprintf(b, "<h%d>%s</h%d>\n", h.level, html.EscapeString(h.text), h.level)
	return nil
}

type paragraph string

func (p paragraph) markdown(b *bytes.Buffer) error {
	b.WriteString(string(p) + "\n\n")
	return nil
}

func (p paragraph) html(b *bytes.Buffer) error {
	fmt.Fprintf(b, "<p>%s</p>\n", html.EscapeString(string(p)))
	return nil
}

// callout is a paragraph set apart from the text, for what a reader must
// know before the figures: a warning (the meters failed their checks) or a
// note (they were not checked).
type callout struct {
	kind calloutKind
	text string
}

type calloutKind int

const (
	note calloutKind = iota
	warning
)

func (k calloutKind) String() string {
	if k == warning {
		return "Warning"
	}
	return "Note"
}

func (c callout) markdown(b *bytes.Buffer) error {
	fmt.Fprintf(b, "> **%s:** %s\n\n", c.kind, oneLine(c.text))
	return nil
}

func (c callout) html(b *bytes.Buffer) error {
	fmt.Fprintf(b, "<p class=\"%s\"><strong>%s:</strong> %s</p>\n",
		strings.ToLower(c.kind.String()), c.kind, html.EscapeString(oneLine(c.text)))
	return nil
}

type bullets []string

func (l bullets) markdown(b *bytes.Buffer) error {
	for _, s := range l {
		fmt.Fprintf(b, "- %s\n", oneLine(s))
	}
	b.WriteString("\n")
	return nil
}

func (l bullets) html(b *bytes.Buffer) error {
	b.WriteString("<ul>\n")
	for _, s := range l {
		fmt.Fprintf(b, "<li>%s</li>\n", html.EscapeString(oneLine(s)))
	}
	b.WriteString("</ul>\n")
	return nil
}

type tableBlock struct{ t *table }

func (tb tableBlock) markdown(b *bytes.Buffer) error {
	if err := tb.t.render(b, markdown); err != nil {
		return err
	}
	b.WriteString("\n")
	for i, n := range tb.t.notes {
		fmt.Fprintf(b, "[%d] %s  \n", i+1, oneLine(n))
	}
	if len(tb.t.notes) > 0 {
		b.WriteString("\n")
	}
	return nil
}

func (tb tableBlock) html(b *bytes.Buffer) error {
	b.WriteString("<div class=\"table\">\n")
	if err := tb.t.render(b, htmlTable); err != nil {
		return err
	}
	b.WriteString("</div>\n")
	if len(tb.t.notes) > 0 {
		b.WriteString("<ol class=\"notes\">\n")
		for _, n := range tb.t.notes {
			fmt.Fprintf(b, "<li>%s</li>\n", html.EscapeString(oneLine(n)))
		}
		b.WriteString("</ol>\n")
	}
	return nil
}

// figure is a chart: a link to its SVG file in Markdown, the SVG itself
// inline in HTML.
type figure struct {
	chart *Chart
	file  string // path relative to the report
	svg   []byte // the chart already rendered, or nil
}

func (f figure) markdown(b *bytes.Buffer) error {
	fmt.Fprintf(b, "![%s](%s)\n\n*%s*\n\n", f.chart.Title, f.file, oneLine(f.chart.Caption))
	return nil
}

func (f figure) html(b *bytes.Buffer) error {
	svg := f.svg
	if svg == nil {
		var err error
		if svg, err = f.chart.SVG(); err != nil {
			return err
		}
	}
	b.WriteString("<figure>\n")
	b.Write(svg)
	fmt.Fprintf(b, "\n<figcaption>%s</figcaption>\n</figure>\n", html.EscapeString(oneLine(f.chart.Caption)))
	return nil
}

// headline is the report's first screen: the headline chart beside the
// few findings a reader came for.
type headline struct {
	fig      *figure // nil when no chart could be drawn
	findings []string
}

const headlineTitle = "At a glance"

func (h headline) markdown(b *bytes.Buffer) error {
	fmt.Fprintf(b, "## %s\n\n", headlineTitle)
	if h.fig != nil {
		if err := h.fig.markdown(b); err != nil {
			return err
		}
	}
	if len(h.findings) > 0 {
		return bullets(h.findings).markdown(b)
	}
	return nil
}

func (h headline) html(b *bytes.Buffer) error {
	b.WriteString("<section class=\"headline\">\n")
	if h.fig != nil {
		if err := h.fig.html(b); err != nil {
			return err
		}
	}
	fmt.Fprintf(b, "<div class=\"key\">\n<h2>%s</h2>\n", headlineTitle)
	if len(h.findings) > 0 {
		if err := bullets(h.findings).html(b); err != nil {
			return err
		}
	} else {
		b.WriteString("<p>No trial finished, so there are no findings.</p>\n")
	}
	b.WriteString("</div>\n</section>\n")
	return nil
}

type document struct {
	title  string
	blocks []block
}

func (d *document) add(bs ...block) { d.blocks = append(d.blocks, bs...) }

func (d *document) markdown() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", d.title)
	for _, bl := range d.blocks {
		if err := bl.markdown(&b); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// pageStyle keeps report.html self-contained: no external font, script or
// stylesheet.
const pageStyle = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222;background:#fff;line-height:1.45;overflow-wrap:break-word}
h1{border-bottom:2px solid #333;font-size:1.6em;margin:.3em 0 .5em}h2{border-bottom:1px solid #ccc;margin-top:2em}
.table{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 7px;white-space:nowrap;text-align:left}th{background:#f0f0f0}.num{text-align:right}
tr:nth-child(even) td{background:#fafafa}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:14px;color:#444;margin-top:.3em}.notes{font-size:13px;color:#444}
.warning{border:2px solid #b00020;background:#fdecea;color:#7a0012;padding:.7em 1em;font-size:1.1em}
.note{border-left:4px solid #888;background:#f4f4f4;padding:.5em 1em}
.headline{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
.headline figure{flex:1 1 640px;min-width:0;margin:0}.headline figcaption{font-size:12px}
.headline .key{flex:1 1 360px;min-width:0;font-size:14px}.headline h2{margin-top:0}.headline li{margin-bottom:.4em}
.badge{display:inline-block;padding:0 .55em;border-radius:.8em;font-size:12px;border:1px solid #999;background:#eee;color:#333}
.badge.bad{background:#fdecea;border-color:#b00020;color:#7a0012}.badge.warn{background:#fff4e0;border-color:#c77700;color:#7a4a00}
.badge.info{background:#e8f0fb;border-color:#2a5db0;color:#1d3f7a}.badge.good{background:#e9f6ec;border-color:#2e7d32;color:#1b5e20}`

func (d *document) html() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<style>\n%s\n</style>\n</head>\n<body>\n<h1>%s</h1>\n",
		html.EscapeString(d.title), pageStyle, html.EscapeString(d.title))
	for _, bl := range d.blocks {
		if err := bl.html(&b); err != nil {
			return nil, err
		}
	}
	b.WriteString("</body>\n</html>\n")
	return b.Bytes(), nil
}

// oneLine folds the runs of white space, newlines included, that error
// messages from other tools carry (an nft syntax error quotes its input),
// so that a reason stays inside its bullet, cell or caption.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
