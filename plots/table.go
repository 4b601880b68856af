package plots

import (
	"fmt"
	"html"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"ringbench/results"
)

// table is rows of cells, rendered for the terminal, Markdown or HTML.
type table struct {
	header []string
	rows   [][]string
	right  []bool   // right-align column i (numbers)
	notes  []string // footnotes, numbered from 1, that cells refer to as [n]
	index  map[string]int
	// badges marks the columns whose cells are flags, "; "-separated:
	// HTML shows each as a badge, the other formats as the text.
	badges map[int]bool
}

// Output formats of a table.
type tableFormat int

const (
	terminal tableFormat = iota
	markdown
	htmlTable
)

// note returns the footnote marker for text, adding it once.
func (t *table) note(text string) string {
	if t.index == nil {
		t.index = map[string]int{}
	}
	n, ok := t.index[text]
	if !ok {
		t.notes = append(t.notes, text)
		n = len(t.notes)
		t.index[text] = n
	}
	return "[" + strconv.Itoa(n) + "]"
}

func (t *table) render(w io.Writer, f tableFormat) error {
	var r tw.Renderer
	switch f {
	case markdown:
		r = renderer.NewMarkdown()
	case htmlTable:
		return t.renderHTML(w)
	default:
		r = renderer.NewBlueprint()
	}
	align := make([]tw.Align, len(t.header))
	for i := range align {
		align[i] = tw.AlignLeft
		if i < len(t.right) && t.right[i] {
			align[i] = tw.AlignRight
		}
	}
	tbl := tablewriter.NewTable(w,
		tablewriter.WithRenderer(r),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	)
	tbl.Header(cells(t.header, f))
	for _, row := range t.rows {
		if err := tbl.Append(cells(row, f)); err != nil {
			return fmt.Errorf("add table row: %w", err)
		}
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	return nil
}

// renderHTML writes the table as HTML itself, so that flag cells can be
// badges and alignment a class the page's style sheet sets.
func (t *table) renderHTML(w io.Writer) error {
	var b strings.Builder
	class := func(i int) string {
		if i < len(t.right) && t.right[i] {
			return ` class="num"`
		}
		return ""
	}
	b.WriteString("<table>\n<thead>\n<tr>")
	for i, h := range t.header {
		fmt.Fprintf(&b, "<th%s>%s</th>", class(i), html.EscapeString(oneLine(h)))
	}
	b.WriteString("</tr>\n</thead>\n<tbody>\n")
	for _, row := range t.rows {
		b.WriteString("<tr>")
		for i, c := range row {
			c = oneLine(c)
			if t.badges[i] && c != "" {
				var bs []string
				for _, f := range strings.Split(c, "; ") {
					bs = append(bs, fmt.Sprintf(`<span class="badge %s">%s</span>`, badgeKind(f), html.EscapeString(f)))
				}
				fmt.Fprintf(&b, "<td>%s</td>", strings.Join(bs, " "))
				continue
			}
			fmt.Fprintf(&b, "<td%s>%s</td>", class(i), html.EscapeString(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	return nil
}

// badgeKind is a flag's colour class: a failure is bad, a repeat left out
// a warning, a skip or pass neutral or good.
func badgeKind(flag string) string {
	f := strings.ToLower(flag)
	switch {
	case strings.Contains(f, "fail"):
		return "bad"
	case strings.Contains(f, "noisy"):
		return "warn"
	case f == "info", strings.Contains(f, "client-bound"), strings.Contains(f, sharedFlag):
		return "info"
	case strings.Contains(f, "pass"):
		return "good"
	}
	return "muted"
}

// cells keeps every cell on one line and escapes what Markdown would read
// as a column break.
func cells(row []string, f tableFormat) []string {
	out := make([]string, len(row))
	for i, c := range row {
		out[i] = oneLine(c)
		if f == markdown {
			out[i] = strings.ReplaceAll(out[i], "|", `\|`)
		}
	}
	return out
}

// PrintTable writes the main results table of recs for a terminal, with
// its footnotes below.
func PrintTable(w io.Writer, recs []results.Record) {
	t := newRun(recs, nil).resultsTable()
	if err := t.render(w, terminal); err != nil {
		fmt.Fprintln(w, err)
		return
	}
	for i, n := range t.notes {
		fmt.Fprintf(w, "[%d] %s\n", i+1, oneLine(n))
	}
}

// sortedGroups orders groups by family, then load and shape, then backend,
// so rows of one comparison sit together.
func (r *run) sortedGroups() []*results.Group {
	famIdx := map[family]int{}
	for i, f := range r.order {
		famIdx[f] = i
	}
	out := make([]*results.Group, len(r.groups))
	for i := range r.groups {
		out[i] = &r.groups[i]
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := pointOf(out[i].Config), pointOf(out[j].Config)
		if fa, fb := famIdx[a.family()], famIdx[b.family()]; fa != fb {
			return fa < fb
		}
		ka := [5]float64{a.Rate, float64(a.Conns), float64(a.Depth), float64(a.Size), float64(a.Cores)}
		kb := [5]float64{b.Rate, float64(b.Conns), float64(b.Depth), float64(b.Size), float64(b.Cores)}
		if ka != kb {
			for k := range ka {
				if ka[k] != kb[k] {
					return ka[k] < kb[k]
				}
			}
		}
		ra, la := labelRank(out[i].Config.Label())
		rb, lb := labelRank(out[j].Config.Label())
		if ra != rb {
			return ra < rb
		}
		return la < lb
	})
	return out
}

// resultsTable is the main table: one row per configuration, medians over
// its counted repeats (ok, not flagged); n counts those, and the flags
// column shows the flagged repeats that were left out. Counts of requests
// (errors, censored, late, unsent) are totals over the ok repeats.
func (r *run) resultsTable() *table {
	t := &table{
		header: []string{"backend", "workload", "proto", "topology", "conns×depth", "size B", "rate target",
			"ops/s", "Gbit/s", "Gbit/s per core", r.cyclesLabel("cycles/B"), "p50 µs", "p99 µs", "lat censored", "CPU ns/op", "outside ns/op",
			r.cyclesLabel("cycles/op"), r.cyclesLabel("cycles/pkt"), "cycles src",
			"Go/C cycles/op", "Go/C CPU ns/op", "syscalls/op", "syscall meter effect", "own syscalls/op", "syscalls beyond data path", "errors", "late / unsent", "n", "flags"},
		right: []bool{false, false, false, false, true, true, true,
			true, true, true, true, true, true, true, true, true,
			true, true, false,
			false, false, true, true, true, false, true, true, true, false},
	}
	t.badges = map[int]bool{len(t.header) - 1: true}
	for _, g := range r.sortedGroups() {
		c := g.Config
		row := []string{c.Label(), c.Workload, c.Proto, c.Topology, fmt.Sprintf("%d×%d", c.Conns, c.Depth),
			strconv.Itoa(c.Size), rateText(c.RateTarget)}
		if len(g.OK) == 0 {
			row = append(row, notRun+": "+truncate(g.Reason(), 60))
			for len(row) < len(t.header)-2 {
				row = append(row, notRun)
			}
			row = append(row, "0", g.NotOK[0].Status)
			t.rows = append(t.rows, row)
			continue
		}
		row = append(row,
			t.metricCell(g, results.MThroughput), t.metricCell(g, results.MGbps),
			t.metricCell(g, results.MGbpsPerCore), t.metricCell(g, results.MCyclesPerByte),
			t.metricCell(g, results.MLatP50), t.metricCell(g, results.MLatP99), censoredCell(g),
			t.metricCell(g, results.MCPUNsPerOp), t.outsideCell(g),
			t.metricCell(g, results.MCyclesPerOp), t.metricCell(g, results.MCyclesPerPacket), g.OK[0].CyclesSource,
			r.goCCell(g, results.MCyclesPerOp), r.goCCell(g, results.MCPUNsPerOp),
			t.metricCell(g, results.MSyscallsPerOp), t.meterEffectCell(g), t.metricCell(g, results.MBackendSyscalls), t.beyondCell(g),
			errorsCell(g), lateCell(g), strconv.Itoa(g.Counted()), flagsCell(g))
		t.rows = append(t.rows, row)
	}
	return t
}

// metricCell is the median of metric m over g's counted repeats, or why
// there is none.
func (t *table) metricCell(g *results.Group, m string) string {
	if s, ok := g.Stat(m); ok {
		return num(s.Center)
	}
	if g.Counted() == 0 {
		return t.noCounted(g)
	}
	// Per-byte figures are the stream workloads': an echo has none, and
	// nothing to explain.
	if (m == results.MGbpsPerCore || m == results.MCyclesPerByte) && !strings.HasPrefix(g.OK[0].Workload, "stream") {
		return missing
	}
	return missing + " " + t.note(m+" not read for "+g.Key+": "+meterNote(g, m))
}

func (t *table) noCounted(g *results.Group) string {
	return missing + " " + t.note("every repeat of "+g.Key+" was flagged noisy or client-bound: no median")
}

// outsideCell is the median of busy − process CPU per op: kernel work on
// the server cores outside the process.
func (t *table) outsideCell(g *results.Group) string {
	v, n := countedMedian(g, outsideNsPerOp)
	switch {
	case n > 0:
		return num(v)
	case g.Counted() == 0:
		return t.noCounted(g)
	}
	return missing + " " + t.note("outside ns/op not read for "+g.Key+": "+outsideNote(g))
}

// outsideNsPerOp is read when both core busy (which names its source) and
// process CPU were: the record's zero is otherwise no measurement.
func outsideNsPerOp(rec *results.Record) (float64, bool) {
	return rec.OutsideNsPerOp, rec.BusySource != "" && rec.CPUNs > 0
}

func outsideNote(g *results.Group) string {
	for _, rec := range g.OK {
		for _, n := range rec.Notes {
			if strings.HasPrefix(n, "core busy not read") || strings.HasPrefix(n, "process CPU not read") {
				return n
			}
		}
	}
	return "the records name no busy_source (written before the core-busy meter did)"
}

// meterEffectCell is the median of what counting syscalls did to cycles/op:
// cycles/op in the counting window over the cost window's, − 1.
func (t *table) meterEffectCell(g *results.Group) string {
	v, n := countedMedian(g, syscallMeterEffect)
	switch {
	case n > 0:
		return signedPct(v)
	case g.Counted() == 0:
		return t.noCounted(g)
	}
	why := "the records hold no counting window's cycles/op"
	if _, ok := g.Stat(results.MSyscallsPerOp); !ok {
		why = "syscalls not counted: " + meterNote(g, results.MSyscallsPerOp)
	}
	return missing + " " + t.note("syscall meter effect not read for "+g.Key+": "+why)
}

func syscallMeterEffect(rec *results.Record) (float64, bool) {
	if rec.SyscallMeterEffect == nil {
		return 0, false
	}
	return *rec.SyscallMeterEffect, true
}

// censoredCell is how many requests the latency figures hold at their
// give-up time rather than at a reply, over the ok repeats.
func censoredCell(g *results.Group) string {
	var n uint64
	for _, rec := range g.OK {
		n += rec.LatCensored
	}
	return strconv.FormatUint(n, 10)
}

// lateCell counts open-loop requests sent over 1 ms late and those never
// sent, over the ok repeats: either says the generator or the server's
// slots, not the offered rate, set the pace.
func lateCell(g *results.Group) string {
	var late, unsent uint64
	for _, rec := range g.OK {
		late += rec.Late
		unsent += rec.Unsent
	}
	if late == 0 && unsent == 0 {
		return "0"
	}
	return fmt.Sprintf("%d / %d", late, unsent)
}

func errorsCell(g *results.Group) string {
	var total, mismatch, reset, timeout, lost, late uint64
	for _, r := range g.OK {
		total += r.Errors
		mismatch += r.ErrMismatch
		reset += r.ErrReset
		timeout += r.ErrTimeout
		lost += r.ErrLost
		late += r.ErrLate
	}
	if total == 0 {
		return "0"
	}
	var parts []string
	for _, p := range []struct {
		n    uint64
		name string
	}{{mismatch, "mismatch"}, {reset, "reset"}, {timeout, "timeout"}, {lost, "lost"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.name))
		}
	}
	// A late reply's request is already counted lost, never a mismatch.
	if late > 0 {
		parts = append(parts, fmt.Sprintf("%d of the lost answered late", late))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func flagsCell(g *results.Group) string {
	var flags []string
	noisy, bound := 0, 0
	for _, rec := range g.OK {
		if rec.Noisy {
			noisy++
		}
		if rec.ClientBound {
			bound++
		}
	}
	if noisy > 0 {
		flags = append(flags, fmt.Sprintf("noisy: %d of %d left out", noisy, len(g.OK)))
	}
	if bound > 0 {
		flags = append(flags, fmt.Sprintf("client-bound: %d of %d left out", bound, len(g.OK)))
	}
	if g.SharesCPUs() {
		flags = append(flags, sharedFlag)
	}
	failed, skipped := 0, 0
	for _, r := range g.NotOK {
		if r.Status == results.StatusSkipped {
			skipped++
		} else {
			failed++
		}
	}
	if failed > 0 {
		flags = append(flags, fmt.Sprintf("%d failed", failed))
	}
	if skipped > 0 {
		flags = append(flags, fmt.Sprintf("%d skipped", skipped))
	}
	return strings.Join(flags, "; ")
}
