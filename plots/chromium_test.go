package plots

import (
	"encoding/json"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ringbench/results"
)

// checkInChromium renders dir's report.html in headless Chromium at a
// 1280-pixel width: the first screen's screenshot shows something (the
// page parses and its inline charts draw without any external asset),
// nothing is wider than the page (wide tables scroll in their own box) and
// the headline chart is above the fold.
func checkInChromium(t *testing.T, dir string) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("skipped: headless check needs Debian's chromium (not in PATH)")
	}
	shot, err := FirstScreen(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first screen of the report: %s", shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != ScreenWidth || got.Y != ScreenHeight {
		t.Errorf("screenshot is %v, want %dx%d", got, ScreenWidth, ScreenHeight)
	}
	colours, inked := inkStats(img)
	if colours < 16 || inked < ScreenWidth*ScreenHeight/20 {
		t.Errorf("screenshot looks blank: %d colours, %d non-background pixels", colours, inked)
	}

	l := measureLayout(t, dir)
	if l.ScrollWidth > ScreenWidth {
		t.Errorf("page is %d px wide at a %d px window: something is cut off or scrolls the page", l.ScrollWidth, ScreenWidth)
	}
	if len(l.Over) > 0 {
		t.Errorf("elements reach past the page's right edge (outside a scrolling table box): %q", l.Over)
	}
	if l.HeadlineBottom <= 0 || l.HeadlineBottom > ScreenHeight {
		t.Errorf("headline chart ends at %.0f px, want it above the fold (%d px)", l.HeadlineBottom, ScreenHeight)
	}
}

// layout is what the measuring script reads off the rendered page.
type layout struct {
	ScrollWidth    int      `json:"scrollWidth"`
	HeadlineBottom float64  `json:"headlineBottom"`
	Over           []string `json:"over"`
}

// measureScript records the page's layout in an attribute of <html>, for
// --dump-dom to carry out. It runs on a copy of the page: the report itself
// has no script.
const measureScript = `<script>
const d = document.documentElement;
const svg = document.querySelector('.headline figure svg');
const over = [...document.querySelectorAll('body *')]
  .filter(e => !e.closest('.table') && e.getBoundingClientRect().right > d.clientWidth + 0.5)
  .map(e => e.tagName + (e.className && e.className.baseVal === undefined ? '.' + e.className : ''))
  .slice(0, 5);
d.setAttribute('data-layout', JSON.stringify({
  scrollWidth: d.scrollWidth,
  headlineBottom: svg ? svg.getBoundingClientRect().bottom : -1,
  over: over,
}));
</script>
`

func measureLayout(t *testing.T, dir string) layout {
	t.Helper()
	page, err := os.ReadFile(filepath.Join(dir, results.ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "measure.html")
	withScript := strings.Replace(string(page), "</body>", measureScript+"</body>", 1)
	if err := os.WriteFile(probe, []byte(withScript), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, err := chromium(120*time.Second, "--dump-dom", "--window-size=1280,800", "file://"+probe)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`data-layout="([^"]*)"`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the measuring script left no layout in the DOM:\n%.500s", dom)
	}
	var l layout
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &l); err != nil {
		t.Fatalf("parse layout: %v", err)
	}
	t.Logf("layout at 1280 px: %+v", l)
	return l
}
