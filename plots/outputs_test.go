package plots

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"ringbench/internal/outdir"
	"ringbench/results"
)

// A charts folder planted in a results folder as a link to another folder
// is refused; nothing is written through it.
func TestReportRefusesLinkedChartFolder(t *testing.T) {
	dir := syntheticDir(t, true)
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, ChartDir)); err != nil {
		t.Fatal(err)
	}
	if err := Report(dir); !errors.Is(err, outdir.ErrUnsafe) {
		t.Errorf("Report = %v, want ErrUnsafe", err)
	}
	if left, _ := os.ReadDir(elsewhere); len(left) != 0 {
		t.Errorf("written through the planted link: %v", left)
	}
}

// A link planted at the first screen's file name is replaced by the
// screenshot, not written through (Chromium writes where it is told).
func TestFirstScreenReplacesLink(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("skipped: the screenshot needs Debian's chromium (not in PATH)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, results.ReportHTML), []byte("<p>report</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	if err := os.Symlink(victim, filepath.Join(dir, results.FirstScreenPNG)); err != nil {
		t.Fatal(err)
	}
	shot, err := FirstScreen(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %.20q", b)
	}
	if fi, err := os.Lstat(shot); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("%s is not a regular file: %v %v", shot, fi, err)
	}
}
