package plots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/results"
)

func TestReportNDR(t *testing.T) {
	for _, withNDR := range []bool{false, true} {
		dir := syntheticDir(t, true)
		if withNDR {
			for _, n := range []results.NDR{
				{Backend: "epoll", Rate: 11000, LossLimit: 0.001, P99LimitUS: 2000, Precision: 0.05, Trials: 19,
					CyclesPerOp: 63007, CyclesSource: "tsc", P99US: 143, Stop: "bisected to 11000 (pass) – 11500 (fail) ops/s",
					Config: results.Config{Proto: "udp", Size: 64, Conns: 16, Depth: 4}},
				{Backend: "uring", Rate: 32000, LossLimit: 0.001, P99LimitUS: 2000, Precision: 0.05, Trials: 9,
					CyclesPerOp: 41000, CyclesSource: "tsc", GeneratorBound: true, GeneratorBoundRate: 64000,
					Stop: "generator-bound at 64000 ops/s", Config: results.Config{Proto: "udp", Size: 64, Conns: 16, Depth: 4}},
			} {
				if err := results.AppendNDR(dir, n); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := Report(dir); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
		if err != nil {
			t.Fatal(err)
		}
		md := string(b)
		has := strings.Contains(md, "## Maximum sustainable rate")
		if has != withNDR {
			t.Fatalf("with ndr.jsonl %v: section present %v", withNDR, has)
		}
		if !withNDR {
			continue
		}
		for _, want := range []string{"| epoll", "11000", "63007 (tsc)", "generator-bound at 64000 ops/s", "16×4",
			"](charts/max-sustainable-rate.svg)"} {
			if !strings.Contains(md, want) {
				t.Errorf("report lacks %q", want)
			}
		}
	}
}

// The chart draws each search's rate with its cycles per op; a
// generator-bound search is a lower bound, marked, and one that found no
// rate is n/a with its reason, never a zero bar.
func TestNDRChart(t *testing.T) {
	cfg := results.Config{Proto: "udp", Size: 64, Conns: 16, Depth: 4}
	r := newRun(nil, nil)
	r.env = results.Env{CPUModel: "Synthetic Test CPU", Kernel: "6.18"}
	r.ndr = []results.NDR{
		{Backend: "epoll", Rate: 11000, LossLimit: 0.005, P99LimitUS: 2000, CyclesPerOp: 63007, CyclesSource: "tsc", Config: cfg},
		{Backend: "uring", Rate: 0, PassedRate: 32000, GeneratorBound: true, GeneratorBoundRate: 64000, LossLimit: 0.005, P99LimitUS: 2000, Config: cfg},
		{Backend: "dpdk", LossLimit: 0.005, P99LimitUS: 2000, Stop: "the search could not finish", Error: "trial failed: port down", Config: cfg},
	}
	c, err := r.ndrChart()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"loss ≤ 0.005, p99 ≤ 2000 µs", "lower bounds", "uring (the generator was the limit at 64000 ops/s)",
		"n/a: dpdk: the search could not finish: trial failed: port down"} {
		if !strings.Contains(c.Caption, want) && !strings.Contains(c.Title, want) {
			t.Errorf("chart lacks %q: %q / %q", want, c.Title, c.Caption)
		}
	}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"11000", "63007 cyc/op", "≥ 32000", ">n/a<"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("chart SVG lacks %q", want)
		}
	}
	// Two configurations of one backend get bars of their own names.
	other := cfg
	other.Size = 1024
	r.ndr = append(r.ndr, results.NDR{Backend: "epoll", Rate: 9000, LossLimit: 0.005, P99LimitUS: 2000, Config: other})
	if got := r.ndrLabel(r.ndr[3]); got != "epoll udp 1024B 16×4" {
		t.Errorf("label %q", got)
	}
	r.ndr = []results.NDR{r.ndr[2]}
	if _, err := r.ndrChart(); err == nil {
		t.Error("a chart of searches that found no rate")
	}
}
