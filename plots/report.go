package plots

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"ringbench/internal/outdir"
	"ringbench/results"
)

// ChartDir is the folder, inside a results folder, that Report saves charts to.
const ChartDir = "charts"

// Report writes dir/report.md (charts beside it in dir/charts) and a
// self-contained dir/report.html from dir's results.jsonl, lesson.json and
// validate.json.
func Report(dir string) error {
	r, err := loadRun(dir)
	if err != nil {
		return err
	}
	charts, skipped := r.charts()
	// Each chart is drawn once as SVG, for its file and for the page.
	svgs := map[*Chart][]byte{}
	var chartDir string
	if len(charts) > 0 {
		if chartDir, err = outdir.Subdir(dir, ChartDir); err != nil {
			return fmt.Errorf("save charts: %w", err)
		}
	}
	for _, c := range charts {
		svg, err := c.saveFiles(chartDir)
		if err != nil {
			return err
		}
		svgs[c] = svg
	}
	doc := r.report(charts, svgs, skipped)
	md, err := doc.markdown()
	if err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	page, err := doc.html()
	if err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if err := outdir.WriteBytes(filepath.Join(dir, results.ReportMD), md); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := outdir.WriteBytes(filepath.Join(dir, results.ReportHTML), page); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// Summary writes the main results table of dir as Markdown, as summary.md
// holds it.
func Summary(dir string, w io.Writer) error {
	r, err := loadRun(dir)
	if err != nil {
		return err
	}
	doc := &document{title: "ringbench summary — " + r.runName()}
	if failed := r.failedTrialChecks(); len(failed) > 0 {
		doc.add(callout{warning, "This run's trials FAILED a check: " + strings.Join(failed, "; ") + "."})
	}
	doc.add(paragraph(r.tableIntro()), tableBlock{r.resultsTable()})
	md, err := doc.markdown()
	if err != nil {
		return fmt.Errorf("render summary: %w", err)
	}
	if _, err := w.Write(md); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// loadRun reads a results folder: records and lesson, either may be absent
// but not both, and the meters' validation, if any.
func loadRun(dir string) (*run, error) {
	recs, err := results.Load(dir)
	noFile := errors.Is(err, fs.ErrNotExist)
	if err != nil && !noFile {
		return nil, fmt.Errorf("load results: %w", err)
	}
	lesson, err := results.LoadLesson(dir)
	if err != nil {
		return nil, fmt.Errorf("load lesson: %w", err)
	}
	switch {
	case len(recs) == 0 && lesson == nil && noFile:
		return nil, fmt.Errorf("load results: no %s or %s in %s", results.JSONLFile, results.LessonFile, dir)
	case len(recs) == 0 && lesson == nil:
		// A run interrupted before its first trial ended leaves the file.
		return nil, fmt.Errorf("load results: %s holds no finished trial, and there is no %s", filepath.Join(dir, results.JSONLFile), results.LessonFile)
	}
	validation, err := results.LoadValidation(dir)
	if err != nil {
		return nil, fmt.Errorf("load validation: %w", err)
	}
	ndr, err := results.LoadNDR(dir)
	if err != nil {
		return nil, fmt.Errorf("load ndr: %w", err)
	}
	r := newRun(recs, lesson)
	r.validation, r.ndr = validation, ndr
	// A bench's searches measured their trials as the matrix's: the checks
	// every trial must hold are over both.
	searchRecs, err := results.LoadSearchTrials(dir)
	if err != nil {
		return nil, fmt.Errorf("load the searches' trials: %w", err)
	}
	if len(searchRecs) > 0 {
		r.trialChecks = results.TrialChecks(append(append([]results.Record(nil), recs...), searchRecs...))
	}
	return r, nil
}

func (r *run) runName() string {
	for _, rec := range r.recs {
		if rec.Run != "" {
			return rec.Run
		}
	}
	return "unnamed run"
}

func (r *run) tableIntro() string {
	return fmt.Sprintf("One row per configuration: medians over its ok repeats (n). "+
		"\"%s\" marks a meter that was not read (the note says why), \"%s\" a configuration that could not run here. "+
		"%s. Cycles/pkt divides them by the packets in and out (an echo is two packets); a busy-polling backend's "+
		"own busy cycles per packet (busy_cycles_per_packet in the records) divide by the frames received, so for echo "+
		"the two differ by 2× for the same work. Outside ns/op is core busy − process CPU per op: kernel work on the server cores outside the process. "+
		"Syscalls/op counts every syscall of the server process at the raw_syscalls:sys_enter tracepoint, in a counting "+
		"window of its own after the cost window; the syscall meter effect is how much cycles/op moved in that window. "+
		"Own syscalls/op is the backend's own count. Syscalls beyond data path is the part of the outside count, in the "+
		"counting window, whose syscall names the backend does not count as its own (the Go runtime's futex and nanosleep, a PMD's sendto), "+
		"with its largest names. Errors, lat censored (requests in the latency figures at their "+
		"give-up time) and late / unsent are totals over the ok repeats.", missing, notRun, r.cyclesText())
}

// cyclesText says in a sentence what the run's cycles are.
func (r *run) cyclesText() string {
	switch r.cyclesSource() {
	case "none":
		return "No trial read cycles"
	case "perf":
		return "Cycles are hardware cycles on the server cores (perf)"
	case "tsc":
		return "Cycles are TSC-equivalent: core busy time × the TSC rate, not a hardware count"
	}
	return "Cycles are hardware counts (perf) in some rows and TSC-equivalent (core busy time × the TSC rate) in others: see cycles src"
}

// report lays the document out so that its first screen is what a reader
// came for: the meters' validation, the headline chart and a few findings
// with their confidence. The full findings, tables and per-configuration
// charts follow.
func (r *run) report(charts []*Chart, svgs map[*Chart][]byte, skipped []string) *document {
	doc := &document{title: "ringbench report — " + r.runName()}
	doc.add(r.validationNotice())

	var head *Chart
	hf, hp, haveHead := r.headlinePoint()
	if haveHead {
		for _, c := range charts {
			if c.Name == breakdownPrefix+hf.slug() {
				head = c
			}
		}
	}
	h := headline{}
	if head != nil {
		h.fig = &figure{head, ChartDir + "/" + head.Name + ".svg", svgs[head]}
	}
	if haveHead {
		h.findings = r.keyFindings(hp)
	}
	doc.add(h)

	doc.add(heading{2, "Findings"})
	if f := r.findings(); len(f) > 0 {
		doc.add(bullets(f))
	} else {
		doc.add(paragraph("No trial finished, so there are no findings."))
	}

	r.validationSection(doc)

	doc.add(heading{2, "Results"}, paragraph(r.tableIntro()), tableBlock{r.resultsTable()})
	var ndrFig *figure
	for _, c := range charts {
		if c.Name == ndrChartName {
			ndrFig = &figure{c, ChartDir + "/" + c.Name + ".svg", svgs[c]}
		}
	}
	r.ndrSection(doc, ndrFig)
	var ladderFigs []figure
	for _, c := range charts {
		if strings.HasPrefix(c.Name, ladderPrefix) {
			ladderFigs = append(ladderFigs, figure{c, ChartDir + "/" + c.Name + ".svg", svgs[c]})
		}
	}
	r.ladderSection(doc, ladderFigs)

	doc.add(heading{2, "Charts"})
	middle := map[string]*Chart{}
	var crossing []*Chart
	drawn := 0
	for _, c := range charts {
		switch {
		case c == head, c.Name == ndrChartName, strings.HasPrefix(c.Name, ladderPrefix):
		case isCrossing(c):
			crossing = append(crossing, c)
		case strings.HasPrefix(c.Name, breakdownPrefix):
			middle[c.Name] = c
		default:
			doc.add(figure{c, ChartDir + "/" + c.Name + ".svg", svgs[c]})
			drawn++
		}
	}
	if drawn == 0 {
		doc.add(paragraph("No per-configuration chart could be drawn from this folder."))
	}

	r.middleGround(doc, head, middle, crossing, svgs)

	doc.add(heading{2, "Environment"}, tableBlock{r.envTable()})
	r.method(doc)
	doc.add(heading{2, "Not measured"})
	if nm := r.notMeasured(skipped); len(nm) > 0 {
		doc.add(bullets(nm))
	} else {
		doc.add(paragraph("Everything the suite measures was measured in this run."))
	}
	return doc
}

// breakdownPrefix begins the name of every measured-breakdown chart.
const breakdownPrefix = "breakdown-"

func isCrossing(c *Chart) bool {
	return strings.HasPrefix(c.Name, "crossing-cost-")
}
