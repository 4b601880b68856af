package plots

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/results"
)

// synthetic loads the hand-written test input in testdata (not a
// measurement: see testdata/README.md).
func synthetic(t *testing.T) ([]results.Record, *results.Lesson) {
	t.Helper()
	recs, err := results.Load("testdata")
	if err != nil {
		t.Fatal(err)
	}
	lesson, err := results.LoadLesson("testdata")
	if err != nil || lesson == nil {
		t.Fatalf("load lesson: %v", err)
	}
	return recs, lesson
}

// syntheticDir copies the test input into a fresh folder, so Report can
// write beside it.
func syntheticDir(t *testing.T, withLesson bool) string {
	t.Helper()
	dir := t.TempDir()
	files := []string{results.JSONLFile}
	if withLesson {
		files = append(files, results.LessonFile)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestTables(t *testing.T) {
	recs, _ := synthetic(t)
	var term bytes.Buffer
	PrintTable(&term, recs)
	checkGolden(t, "table.txt", term.Bytes())

	var md bytes.Buffer
	if err := Summary("testdata", &md); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "summary.md", md.Bytes())
}

func TestTableNeverShowsMissingAsZero(t *testing.T) {
	recs, _ := synthetic(t)
	tbl := newRun(recs, nil).resultsTable()
	col := map[string]int{}
	for i, h := range tbl.header {
		col[h] = i
	}
	sawSkip, sawMissing := false, false
	for _, row := range tbl.rows {
		if row[col["backend"]] == "dpdk" && row[col["proto"]] == "tcp" {
			sawSkip = true
			if got := row[col["ops/s"]]; got != "n/a: no kernel TCP stack" {
				t.Errorf("skipped dpdk/tcp ops/s cell = %q, want the skip reason", got)
			}
			for _, h := range []string{"cycles/op (TSC-equivalent)", "syscalls/op", "p99 µs", "outside ns/op", "syscall meter effect"} {
				if _, ok := col[h]; !ok {
					t.Fatalf("no column %q in %q", h, tbl.header)
				}
				if row[col[h]] == "0" {
					t.Errorf("skipped trial shows %s as 0", h)
				}
			}
		}
		if row[col["backend"]] == "uring" && row[col["conns×depth"]] == "1×1" && row[col["rate target"]] == "closed loop" {
			sawMissing = true
			if got := row[col["syscalls/op"]]; !strings.HasPrefix(got, missing+" [") {
				t.Errorf("unread syscalls/op cell = %q, want %q with a note", got, missing)
			}
			if got := row[col["flags"]]; !strings.Contains(got, "1 failed") {
				t.Errorf("flags = %q, want the failed repeat counted", got)
			}
		}
	}
	if !sawSkip || !sawMissing {
		t.Fatalf("test input lacks the rows this test checks (skip %v, missing %v)", sawSkip, sawMissing)
	}
	if len(tbl.notes) == 0 || !strings.Contains(strings.Join(tbl.notes, "\n"), "tracefs not mounted") {
		t.Errorf("notes %q do not say why syscalls were not read", tbl.notes)
	}
}

// TestReportMarkdown is the golden test of report.md over the whole test
// input; the Markdown links charts, so nothing needs to be rasterized.
func TestReportMarkdown(t *testing.T) {
	recs, lesson := synthetic(t)
	r := newRun(recs, lesson)
	r.validation = loadValidation(t, results.ValidationFile)
	charts, skipped := r.charts()
	md, err := r.report(charts, nil, skipped).markdown()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report.md", md)
}

// TestReport runs Report end to end on the UDP half of the test input (the
// half with every backend), which keeps the charts to rasterize few: the
// race detector makes rasterizing slow.
func TestReport(t *testing.T) {
	t.Parallel()
	recs, lesson := synthetic(t)
	dir := t.TempDir()
	if err := lesson.Save(dir); err != nil {
		t.Fatal(err)
	}
	writeRecords(t, dir, udpOnly(recs))
	reportFailedValidation(t, dir)
	md, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, results.ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	charts, _ := filepath.Glob(filepath.Join(dir, ChartDir, "*.svg"))
	if n := bytes.Count(page, []byte("<svg")); n != len(charts) || n == 0 {
		t.Errorf("report.html has %d inline SVGs, %d charts saved", n, len(charts))
	}
	for _, c := range charts {
		link := ChartDir + "/" + filepath.Base(c)
		if !bytes.Contains(md, []byte("("+link+")")) {
			t.Errorf("report.md does not link %s", link)
		}
	}
	// Self-contained: nothing fetched from elsewhere.
	for _, ext := range []string{"src=", "href=\"http", "<link", "<script", "@import", "url("} {
		if bytes.Contains(page, []byte(ext)) {
			t.Errorf("report.html refers to an external asset (%q)", ext)
		}
	}
	// A failed validation read from the folder is the first thing on both.
	if !bytes.HasPrefix(md, []byte("# ringbench report — synthetic-test-input\n\n> **Warning:** Meter validation FAILED on this machine: ")) {
		t.Errorf("report.md does not open with the failed validation:\n%.300s", md)
	}
	if !bytes.Contains(page, []byte("</h1>\n<p class=\"warning\"><strong>Warning:</strong> Meter validation FAILED")) {
		t.Error("report.html does not open with the failed validation")
	}
	for _, want := range []string{"Meter validation", "The middle ground", "Kernel features kept", "Not measured", "Method", "Environment"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report.html lacks section %q", want)
		}
	}
	t.Run("charts", func(t *testing.T) {
		cs, _ := Charts(udpOnly(recs), lesson)
		if len(cs) != len(charts) {
			t.Errorf("Report saved %d charts, Charts builds %d", len(charts), len(cs))
		}
		for _, c := range cs {
			checkPNG(t, filepath.Join(dir, ChartDir, c.Name+".png"), c.Width, c.Height)
		}
	})
}

// The whole report, TCP tables and all, drawn by a browser at 1280 px:
// nothing cut off, the headline chart above the fold, and the first
// screen saved where the report command saves it.
func TestReportInChromium(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("skipped: headless check needs Debian's chromium (not in PATH)")
	}
	dir := syntheticDir(t, true)
	// A failed validation: the longest notice above the headline.
	reportFailedValidation(t, dir)
	checkInChromium(t, dir)
}

func udpOnly(recs []results.Record) []results.Record {
	var out []results.Record
	for _, r := range recs {
		if r.Proto == "udp" {
			out = append(out, r)
		}
	}
	return out
}

func TestReportWithoutLessonSaysSo(t *testing.T) {
	recs, _ := synthetic(t)
	r := newRun(recs, nil)
	charts, skipped := r.charts()
	for _, c := range charts {
		if isCrossing(c) {
			t.Errorf("crossing-cost chart %s drawn without a calibration", c.Name)
		}
	}
	// Rendering the Markdown draws no chart, so this test stays quick.
	md, err := r.report(charts, nil, skipped).markdown()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("this folder has no lesson.json")) {
		t.Error("report without lesson.json does not say the middle-ground experiments were not measured")
	}
}

// A folder with nothing to report says which: no results file, or one
// that holds no trial yet (a run interrupted before its first ended).
func TestReportEmptyFolder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"no file", nil, "no results.jsonl or lesson.json in"},
		{"empty results", []string{results.JSONLFile}, "results.jsonl holds no finished trial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Report(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Report = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestReportLessonOnly(t *testing.T) {
	_, lesson := synthetic(t)
	r := newRun(nil, lesson)
	charts, skipped := r.charts()
	if len(charts) != 0 {
		t.Errorf("%d charts drawn without a trial", len(charts))
	}
	md, err := r.report(charts, nil, skipped).markdown()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No trial finished", "this folder has no results.jsonl", "| dpdk ", "no (0 of 10000)"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("lesson-only report lacks %q", want)
		}
	}
}

// reportFailedValidation puts the failed validate.json of testdata into
// dir and writes dir's report.
func reportFailedValidation(t *testing.T, dir string) {
	t.Helper()
	failed, err := os.ReadFile(filepath.Join("testdata", "validate-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, results.ValidationFile), failed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Report(dir); err != nil {
		t.Fatal(err)
	}
}
