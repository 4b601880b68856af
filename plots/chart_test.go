package plots

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/draw"
	"image/png"
	"os"
	"regexp"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"ringbench/results"
)

// TestCharts checks what each chart says; TestReport/charts checks the
// pictures Report saves, so that each is rasterized once per test run.
func TestCharts(t *testing.T) {
	recs, lesson := synthetic(t)
	charts, skipped := Charts(recs, lesson)
	// The test input has three workloads: each gets the measured breakdown,
	// cycles/op, cycles/pkt, syscalls and crossing charts; the two over veth
	// a latency distribution; only echo/tcp has the sweeps for throughput
	// and latency against load; uring and uring-sqpoll at one echo/tcp point
	// are two rungs of the io_uring ladder.
	var wantNames []string
	for _, f := range []string{"echo-tcp-veth", "echo-udp-veth", "echo-udp-memif"} {
		for _, c := range []string{"breakdown", "cycles-per-op", "cycles-per-packet", "syscalls-per-op", "crossing-cost"} {
			wantNames = append(wantNames, c+"-"+f)
		}
	}
	wantNames = append(wantNames, "throughput-vs-conns-echo-tcp-veth", "latency-vs-load-echo-tcp-veth",
		"latency-distribution-echo-tcp-veth", "latency-distribution-echo-udp-veth",
		"ladder-cycles-per-op-echo-tcp-veth", "ladder-syscalls-per-op-echo-tcp-veth", "ladder-p99-echo-tcp-veth")
	var names []string
	for _, c := range charts {
		names = append(names, c.Name)
	}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("charts = %v, want %v", names, wantNames)
	}
	if len(skipped) != 5 {
		t.Errorf("skipped charts = %q, want the two sweeps each echo/udp lacks and memif's distribution", skipped)
	}
	for _, c := range charts {
		t.Run(c.Name, func(t *testing.T) {
			if c.Caption == "" {
				t.Error("chart has no caption")
			}
			svg, err := c.SVG()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(svg, []byte("<svg")) {
				t.Errorf("inline SVG starts %q", svg[:min(len(svg), 20)])
			}
			// The text was laid out with Liberation Serif's metrics: every
			// font it names falls back to fonts with the same metrics.
			fonts := regexp.MustCompile(`font-family:([^;"]*)`).FindAllSubmatch(svg, -1)
			if len(fonts) == 0 {
				t.Error("the SVG names no font")
			}
			for _, f := range fonts {
				if got := string(f[1]); !strings.HasPrefix(got, "'Liberation Serif','Times New Roman'") {
					t.Errorf("SVG text in font %q, want Liberation Serif with its metric-compatible fallbacks", got)
					break
				}
			}
			// Every chart names the machine and the cycle source.
			for _, want := range []string{"Synthetic Test CPU", "cycles_source: tsc"} {
				if !strings.Contains(c.Plot.Title.Text, want) {
					t.Errorf("title %q lacks %q", c.Plot.Title.Text, want)
				}
			}
		})
	}
}

// inkStats counts distinct colours and pixels that differ from the corner
// (background) pixel. It reads the pixel bytes directly: image.At boxes a
// colour per pixel, which the race detector makes slow.
func inkStats(img image.Image) (colours, inked int) {
	rgba, ok := img.(*image.RGBA)
	if !ok {
		b := img.Bounds()
		rgba = image.NewRGBA(b)
		draw.Draw(rgba, b, img, b.Min, draw.Src)
	}
	pix := rgba.Pix
	seen := map[uint32]bool{}
	bg := binary.LittleEndian.Uint32(pix)
	for i := 0; i+4 <= len(pix); i += 4 {
		c := binary.LittleEndian.Uint32(pix[i:])
		seen[c] = true
		if c != bg {
			inked++
		}
	}
	return len(seen), inked
}

func TestMissingBackendIsLabelledNotZero(t *testing.T) {
	recs, lesson := synthetic(t)
	r := newRun(recs, lesson)
	p, ok := r.mainPoint(family{"echo", "echo", "tcp", "veth"})
	if !ok {
		t.Fatal("no main point for echo/tcp")
	}
	c, err := r.metricBars(family{"echo", "echo", "tcp", "veth"}, p, "cycles/op", "cycles-per-op", "Cycles per op", "cycles")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Caption, "n/a: dpdk: no kernel TCP stack") {
		t.Errorf("caption %q does not say why dpdk is missing", c.Caption)
	}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte(">n/a<")) {
		t.Error("chart does not draw an n/a label for the skipped backend")
	}
}

// checkPNG decodes a saved chart and checks its size (its height only when
// h > 0) and that it is not blank.
func checkPNG(t *testing.T, path string, w, h vg.Length) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	// gonum renders PNGs at 96 dpi.
	wantW, wantH := int(float64(w/vg.Inch)*96+0.5), int(float64(h/vg.Inch)*96+0.5)
	if got := img.Bounds().Size(); got.X != wantW || (h > 0 && got.Y != wantH) {
		t.Errorf("%s: size %v, want %dx%d", path, got, wantW, wantH)
	}
	colours, inked := inkStats(img)
	if colours < 8 || inked < img.Bounds().Dx()*img.Bounds().Dy()/50 {
		t.Errorf("%s looks blank: %d colours, %d non-background pixels", path, colours, inked)
	}
}

// The own-syscalls cell of a server without counters cites that, not the
// first note of its records or their flags.
func TestMeterNoteOwnCounters(t *testing.T) {
	counters := results.NoOwnCounters + "the server reports no counters of its own"
	generator := "generator CPUs 95% busy: the generator may limit this trial"
	for _, tc := range []struct {
		name  string
		bound bool
	}{{"measured", false}, {"client-bound", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := results.Record{Status: results.StatusOK, Ops: 1000, ClientBound: tc.bound, Notes: []string{generator, counters}}
			g := &results.Group{OK: []results.Record{rec}}
			if got := meterNote(g, results.MBackendSyscalls); got != counters {
				t.Errorf("meterNote = %q, want %q", got, counters)
			}
		})
	}
}
