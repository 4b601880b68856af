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
		for _, want := range []string{"| epoll", "11000", "63007 (tsc)", "generator-bound at 64000 ops/s", "16×4"} {
			if !strings.Contains(md, want) {
				t.Errorf("report lacks %q", want)
			}
		}
	}
}
