package plots

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ringbench/results"
)

// loadValidation reads a synthetic validate.json from testdata under name.
func loadValidation(t *testing.T, name string) *results.Validation {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, results.ValidationFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := results.LoadValidation(dir)
	if err != nil || v == nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return v
}

// TestValidation is the golden test of what the report says about the
// meters' validation, at its top and in its section, in the three cases:
// every check passed (or was skipped), one failed, none was run.
func TestValidation(t *testing.T) {
	recs, lesson := synthetic(t)
	for _, tc := range []struct {
		name string
		file string // in testdata; "" for no validate.json
		top  string // how report.md must open after its title
	}{
		{"passed", results.ValidationFile, "Meter validation passed on this machine: 4 checks passed, 1 skipped"},
		{"failed", "validate-failed.json", "> **Warning:** Meter validation FAILED on this machine: " +
			"core busy vs a known spin, syscall count vs a known loop. The figures below are not trustworthy"},
		{"absent", "", "> **Note:** The meters were not validated for this run: this folder has no validate.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(recs, lesson)
			if tc.file != "" {
				r.validation = loadValidation(t, tc.file)
			}
			doc := &document{title: "validation — " + tc.name}
			doc.add(r.validationNotice())
			r.validationSection(doc)
			md, err := doc.markdown()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "validation-"+tc.name+".md", md)
			page, err := doc.html()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "validation-"+tc.name+".html", page)

			// In the report, the notice comes before anything else.
			full, err := r.report(nil, nil, nil).markdown()
			if err != nil {
				t.Fatal(err)
			}
			head := "# ringbench report — synthetic-test-input\n\n" + tc.top
			if !bytes.HasPrefix(full, []byte(head)) {
				t.Errorf("report.md opens with\n%.300s\nwant %q", full, head)
			}
		})
	}
}

// A trial of the run that breaks a check every trial must hold (core busy
// below its process CPU) puts a warning at the top of the report and the
// summary, naming it, though validate passed.
func TestTrialCheckFailureWarns(t *testing.T) {
	recs, lesson := synthetic(t)
	bad := slices.Clone(recs)
	i := slices.IndexFunc(bad, func(r results.Record) bool { return r.Status == results.StatusOK && r.CPUNs > 0 })
	bad[i].BusyNs = 0.9 * bad[i].CPUNs
	r := newRun(bad, lesson)
	r.validation = loadValidation(t, results.ValidationFile)
	var b bytes.Buffer
	if err := r.validationNotice().markdown(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	below := fmt.Sprintf("below: %s r%d -10.0%%", bad[i].Label(), bad[i].Repeat)
	if !strings.HasPrefix(got, "> **Warning:** This run's trials FAILED a check: core busy ≥ process CPU in every trial (") ||
		!strings.Contains(got, below) {
		t.Errorf("notice = %q, want a warning naming %q", got, below)
	}
	var sum bytes.Buffer
	dir := t.TempDir()
	writeRecords(t, dir, bad)
	if err := Summary(dir, &sum); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "FAILED a check: core busy ≥ process CPU") {
		t.Errorf("summary.md does not say the check failed:\n%.400s", sum.String())
	}
}

// A validation that passed on another machine vouches for nothing here.
func TestValidationOtherMachine(t *testing.T) {
	recs, lesson := synthetic(t)
	r := newRun(recs, lesson)
	r.validation = loadValidation(t, results.ValidationFile)
	r.validation.Env.Hostname = "elsewhere"
	var b bytes.Buffer
	if err := r.validationNotice().markdown(&b); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.HasPrefix(got, "> **Note:** Meter validation passed, but on another machine") ||
		!strings.Contains(got, "host elsewhere, not synthetic") {
		t.Errorf("notice = %q, want it to say the checks ran elsewhere", got)
	}
}

// A bench's searches measure their trials as its matrix does: one of
// theirs whose cost window was traced fails the checks the report opens
// with, though every trial of the matrix held them.
func TestSearchTrialCheckFailureWarns(t *testing.T) {
	recs, _ := synthetic(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Join(dir, results.NDRTrialsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeRecords(t, dir, recs)
	i := slices.IndexFunc(recs, func(r results.Record) bool { return r.Status == results.StatusOK })
	step := recs[i]
	step.WindowTraced = true
	writeRecords(t, filepath.Join(dir, results.NDRTrialsDir), []results.Record{step})
	r, err := loadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.validationNotice().markdown(&b); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "FAILED a check: cost windows without the syscall tracepoint") {
		t.Errorf("notice = %q, want the searches' traced trial failing its check", got)
	}
}
