package plots

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ringbench/results"
)

// checkInChromium renders dir's report.html in headless Chromium and
// checks that the screenshot shows something: the page parses and its
// inline charts and tables draw without any external asset.
func checkInChromium(t *testing.T, dir string) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("skipped: headless check needs Debian's chromium (not in PATH)")
	}
	shot := filepath.Join(dir, "screenshot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1200,2000",
		"file://"+filepath.Join(dir, results.ReportHTML))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 1200 || got.Y != 2000 {
		t.Errorf("screenshot is %v, want 1200x2000", got)
	}
	colours, inked := inkStats(img)
	if colours < 16 || inked < 1200*2000/20 {
		t.Errorf("screenshot looks blank: %d colours, %d non-background pixels", colours, inked)
	}
}
