package plots

import (
	"bytes"
	"path/filepath"
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
