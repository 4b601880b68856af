package plots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"ringbench/internal/outdir"
	"ringbench/results"
)

// Screen size of the first screen the report is laid out for: a 1280-pixel
// page, 800 pixels above the fold.
const (
	ScreenWidth  = 1280
	ScreenHeight = 800
)

// Screenshot renders dir's report.html (written by Report) in headless
// Chromium at ScreenWidth × ScreenHeight and saves what a reader sees first
// to out as PNG. It needs Debian's chromium in PATH.
//
// Chromium writes wherever it is told, through a link too, so it writes
// into a private folder and outdir replaces out with the image.
func Screenshot(dir, out string) error {
	page, err := filepath.Abs(filepath.Join(dir, results.ReportHTML))
	if err != nil {
		return fmt.Errorf("screenshot report: %w", err)
	}
	tmp, err := os.MkdirTemp("", "ringbench-screenshot-")
	if err != nil {
		return fmt.Errorf("screenshot report: %w", err)
	}
	defer os.RemoveAll(tmp)
	shot := filepath.Join(tmp, "screen.png")
	if _, err = chromium(120*time.Second, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", ScreenWidth, ScreenHeight),
		"file://"+page); err != nil {
		return err
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		return fmt.Errorf("screenshot report: %w", err)
	}
	if err := outdir.WriteBytes(out, b); err != nil {
		return fmt.Errorf("screenshot report: %w", err)
	}
	return nil
}

// ErrNoChromium: the screenshot needs Debian's chromium, not installed.
var ErrNoChromium = errors.New("chromium is not installed (Debian: apt-get install chromium)")

// FirstScreen saves the first screen of dir's report.html (Report writes
// it) as dir's FirstScreenPNG and returns its path; without Chromium it
// writes nothing and returns ErrNoChromium.
func FirstScreen(dir string) (string, error) {
	out := filepath.Join(dir, results.FirstScreenPNG)
	// A picture of an earlier rendering must not outlive a failed one.
	if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("screenshot report: %w", err)
	}
	return out, Screenshot(dir, out)
}

// chromium runs headless Chromium with args after the flags that keep it
// off the network and out of the user's profile, and returns its stdout.
func chromium(timeout time.Duration, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("run chromium: %w", ErrNoChromium)
	}
	profile, err := os.MkdirTemp("", "ringbench-chromium-")
	if err != nil {
		return nil, fmt.Errorf("run chromium: %w", err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + profile}, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run chromium: %w: %s", err, lastLine(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// lastLine is the last non-empty line of a tool's stderr: its error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
