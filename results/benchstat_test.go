package results

import (
	"bytes"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
	"golang.org/x/perf/benchproc"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// checkGolden compares got with testdata/name.golden; on a mismatch it
// writes testdata/name.got (ignored by git) so the two can be diffed.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	gotPath := filepath.Join("testdata", name+".got")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(gotPath)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update creates it): %v", err)
	}
	if !bytes.Equal(got, want) {
		if err := os.WriteFile(gotPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s differs from %s; see %s", name, path, gotPath)
		return
	}
	os.Remove(gotPath)
}

// writeBenchFolders writes results.bench for each testdata folder, as the
// bench command does, under a fresh directory, and returns it.
func writeBenchFolders(t *testing.T, names ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, n := range names {
		recs, err := Load(filepath.Join("testdata", "benchstat", n))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteBenchfmt(&b, recs); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, n), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, n, BenchFile), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestBenchstatTables reads two folders' results.bench with benchstat's
// own parser and projections, grouped as benchstat groups them by default
// (-table .config plus the unit, -row .fullname, -col .file): one table
// per unit, every configuration a row with both runs, six repeats a
// cell, and a finite 95% interval in each.
func TestBenchstatTables(t *testing.T) {
	root := writeBenchFolders(t, "a", "b")
	files := benchfmt.Files{Paths: []string{
		filepath.Join(root, "a", BenchFile), filepath.Join(root, "b", BenchFile)}}
	var parser benchproc.ProjectionParser
	tableBy, _, err := parser.ParseWithUnit(".config", nil)
	if err != nil {
		t.Fatal(err)
	}
	rowBy, err := parser.Parse(".fullname", nil)
	if err != nil {
		t.Fatal(err)
	}
	colBy, err := parser.Parse(".file", nil)
	if err != nil {
		t.Fatal(err)
	}
	type cell struct{ table, row, col benchproc.Key }
	values := map[cell][]float64{}
	tables := map[benchproc.Key]bool{}
	rows := map[benchproc.Key]bool{}
	cols := map[benchproc.Key]bool{}
	for files.Scan() {
		switch rec := files.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Fatalf("benchstat would reject: %v", rec)
		case *benchfmt.Result:
			row, col := rowBy.Project(rec), colBy.Project(rec)
			rows[row], cols[col] = true, true
			for i, tk := range tableBy.ProjectValues(rec) {
				tables[tk] = true
				c := cell{tk, row, col}
				values[c] = append(values[c], rec.Values[i].Value)
			}
		}
	}
	if err := files.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 {
		t.Fatalf("%d columns, want 2 (a and b)", len(cols))
	}
	if len(rows) != 2 {
		t.Errorf("%d rows, want 2 (epoll, uring with its options)", len(rows))
	}
	// Both runs hold the same units, so one table per unit means that
	// nothing of the run split them.
	units := map[string]int{}
	for tk := range tables {
		units[tk.StringValues()]++
	}
	for u, n := range units {
		if n != 1 {
			t.Errorf("%d tables for %s, want one", n, u)
		}
	}
	if len(tables) < 6 {
		t.Errorf("%d tables, want one per measured unit", len(tables))
	}
	for tk := range tables {
		for row := range rows {
			for col := range cols {
				v := values[cell{tk, row, col}]
				if len(v) != 6 {
					t.Errorf("%s %s %s: %d values, want 6 (flagged repeats left out)", tk, row, col, len(v))
					continue
				}
				s := benchmath.NewSample(v, &benchmath.DefaultThresholds)
				sum := benchmath.AssumeNothing.Summary(s, Confidence)
				if math.IsInf(sum.Lo, 0) || math.IsInf(sum.Hi, 0) {
					t.Errorf("%s %s %s: interval [%v, %v] is not finite", tk, row, col, sum.Lo, sum.Hi)
				}
			}
		}
	}
}

// TestBenchstatGolden runs benchstat itself, as the README tells users to:
// `benchstat a/results.bench b/results.bench`.
func TestBenchstatGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("builds benchstat; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build benchstat with:", err)
	}
	root := writeBenchFolders(t, "a", "b")
	bin := filepath.Join(t.TempDir(), "benchstat")
	build := exec.Command(goTool, "build", "-o", bin, "golang.org/x/perf/cmd/benchstat")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build benchstat from the module cache: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "a/"+BenchFile, "b/"+BenchFile)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("benchstat: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("benchstat warned: %s", stderr.String())
	}
	checkGolden(t, "benchstat", out)
	for _, bad := range []string{"±∞", "¹ need >= 6 samples"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("benchstat printed %q for six repeats a side", bad)
		}
	}
}
