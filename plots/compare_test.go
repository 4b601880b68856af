package plots

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ringbench/results"
)

// writeRun stores recs as a new results folder.
func writeRun(t *testing.T, recs []results.Record) string {
	t.Helper()
	dir := t.TempDir()
	writeRecords(t, dir, recs)
	return dir
}

func writeRecords(t *testing.T, dir string, recs []results.Record) {
	t.Helper()
	s, err := results.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, r := range recs {
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	recs, _ := synthetic(t)
	// Run B: the test input with uring's cycles/op cut by a fifth and
	// everything else unchanged, so exactly one kind of change is real.
	b := make([]results.Record, len(recs))
	copy(b, recs)
	for i := range b {
		b[i].Run = "synthetic-test-input-b"
		if b[i].Label() == "uring" {
			b[i].CyclesPerOp *= 0.8
		}
	}
	b = b[:len(b)-4] // B lacks the last configurations A has
	dirA, dirB := writeRun(t, recs), writeRun(t, b)
	var out bytes.Buffer
	if err := Compare(dirA, dirB, &out, ""); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(strings.ReplaceAll(out.String(), dirA, "A"), dirB, "B")
	checkGolden(t, "compare.txt", []byte(got))

	// uring at 20000 ops/s over TCP has six repeats a side: a 20% cut is
	// significant; at three repeats a side nothing can be.
	for _, line := range strings.Split(got, "\n") {
		if !strings.Contains(line, "cycles/op") {
			continue
		}
		switch {
		case strings.Contains(line, "│ uring/echo/echo/tcp/veth/conns=64/depth=4/size=64/rate=20000"):
			if !strings.Contains(line, "-20.00%") {
				t.Errorf("uring's 20%% cut not reported as significant: %s", line)
			}
		case strings.Contains(line, "n=6+6"), strings.Contains(line, "n=3+3"), strings.Contains(line, "n=1+1"):
			if !strings.Contains(line, " ~ ") {
				t.Errorf("unchanged metric reported as a change: %s", line)
			}
		}
	}
	if !strings.Contains(got, "only in A: ") {
		t.Error("configurations missing from B are not listed")
	}

	// The charts, from the UDP half only: rasterizing is slow under -race.
	charts := t.TempDir()
	if err := Compare(writeRun(t, udpOnly(recs)), writeRun(t, udpOnly(b)), &out, charts); err != nil {
		t.Fatal(err)
	}
	pngs, _ := filepath.Glob(filepath.Join(charts, "*.png"))
	if len(pngs) != len(compared) {
		t.Errorf("saved %d comparison charts, want one per metric (%d)", len(pngs), len(compared))
	}
	for _, p := range pngs {
		checkPNG(t, p, compareWidth, 0)
	}
}

// TestCompareCostMeter: the cost verdict is judged on the cost meter with
// the tighter spread, not always on cycles/op, and flagged or single
// repeats never make a change.
func TestCompareCostMeter(t *testing.T) {
	mk := func(run string, cycles, cpu []float64, flag func(i int, r *results.Record)) *run {
		var recs []results.Record
		for i := range cycles {
			r := results.Record{Run: run, Repeat: i, Status: results.StatusOK,
				Config: results.Config{Backend: "uring", Variant: "default", Workload: "echo", Service: "echo",
					Proto: "tcp", Topology: "veth", Conns: 64, Depth: 4, Size: 64, RateTarget: 20000, Cores: 1},
				Ops: 1000, Cycles: cycles[i] * 1000, CyclesPerOp: cycles[i], CPUNs: cpu[i] * 1000, CPUNsPerOp: cpu[i]}
			if flag != nil {
				flag(i, &r)
			}
			recs = append(recs, r)
		}
		return newRun(recs, nil)
	}
	steady := []float64{1000, 1002, 998, 1001, 999, 1000}
	cut := []float64{800, 802, 798, 801, 799, 800}
	shaky := []float64{1000, 1400, 600, 1200, 800, 1100}
	for _, tc := range []struct {
		name       string
		a, b       *run
		costMetric string
		costDelta  string
	}{
		{"cpu time steadier", mk("a", shaky, steady, nil), mk("b", shaky, cut, nil), results.MCPUNsPerOp, "-20.00%"},
		{"cycles steadier", mk("a", steady, shaky, nil), mk("b", cut, shaky, nil), results.MCyclesPerOp, "-20.00%"},
		{"one repeat is no test", mk("a", steady[:1], steady[:1], nil), mk("b", cut[:1], cut[:1], nil), results.MCyclesPerOp, "~"},
		// The cut is only in B's flagged repeats: left out, no change.
		{"flagged repeats left out", mk("a", steady, steady, nil),
			mk("b", append(slices.Clone(steady), cut...), append(slices.Clone(steady), cut...), func(i int, r *results.Record) { r.Noisy = i >= 6 }),
			results.MCyclesPerOp, "~"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes, _, _ := compareRuns(tc.a, tc.b)
			var costs []change
			for _, c := range changes {
				if c.cost {
					costs = append(costs, c)
				}
			}
			if len(costs) != 1 {
				t.Fatalf("%d cost verdicts, want 1", len(costs))
			}
			c := costs[0]
			if c.metric != tc.costMetric || c.delta != tc.costDelta || !strings.Contains(c.why, tc.costMetric) {
				t.Errorf("cost judged on %s: %s (%s); want %s: %s", c.metric, c.delta, c.why, tc.costMetric, tc.costDelta)
			}
		})
	}
}

func TestCompareCaveats(t *testing.T) {
	rec := func(src string) results.Record {
		return results.Record{Status: results.StatusOK, Ops: 1, Cycles: 1, CyclesSource: src}
	}
	a := newRun([]results.Record{rec("tsc")}, nil)
	b := newRun([]results.Record{rec("perf")}, nil)
	if got := compareCaveats(a, a); len(got) != 0 {
		t.Errorf("caveats of a run against itself: %q", got)
	}
	b.validation = &results.Validation{Checks: []results.Check{{Name: "core busy vs a known spin"}}}
	got := strings.Join(compareCaveats(a, b), "\n")
	for _, want := range []string{"A's cycles are TSC-equivalent cycles, B's cycles (cycles_source tsc vs perf)",
		"B's meter validation FAILED: core busy vs a known spin"} {
		if !strings.Contains(got, want) {
			t.Errorf("caveats %q lack %q", got, want)
		}
	}
}
