package results

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"
)

func benchRecords() []Record {
	a := sample("uring-sqpoll", 50000, 0, 2600)
	b := sample("uring-sqpoll", 50000, 1, 2700)
	b.SyscallsPerOp, b.SyscallsNote = nil, "tracefs not mounted"
	skipped := sample("dpdk", 50000, 0, 0)
	skipped.Status = StatusSkipped
	return []Record{a, b, skipped}
}

// wantBench is the golden output for benchRecords: a meter that was not
// read is absent from its line, a skipped trial has no line.
const wantBench = `Unit ops/s better=higher
Unit B/s better=higher
Unit cycles/op better=lower
Unit cycles/pkt better=lower
Unit cpu-ns/op better=lower
Unit syscalls/op better=lower
Unit backend-syscalls/op better=lower
Unit busy-cycles/op better=lower
Unit busy-cycles/pkt better=lower
Unit p50-ns better=lower
Unit p99-ns better=lower
goos: linux
pkg: ringbench
cpu: Test CPU
kernel: 6.18.0
cycles_source: tsc
run: test

BenchmarkEcho/backend=uring-sqpoll/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=50000/cores=1 1 50000 ops/s 2.5625e+06 B/s 2600 cycles/op 1300 cycles/pkt 4000 cpu-ns/op 1.9 syscalls/op 1.8 backend-syscalls/op 50000 p50-ns 150000 p99-ns
BenchmarkEcho/backend=uring-sqpoll/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=50000/cores=1 1 50000 ops/s 2.5625e+06 B/s 2700 cycles/op 1350 cycles/pkt 4000 cpu-ns/op 1.8 backend-syscalls/op 50000 p50-ns 150000 p99-ns
`

func TestWriteBenchfmtGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBenchfmt(&b, benchRecords()); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != wantBench {
		t.Errorf("benchmark format differs:\n got:\n%s\nwant:\n%s", got, wantBench)
	}
}

// TestBenchfmtReadsBack checks what benchstat will see: the same reader
// parses every line, tidies -ns units to seconds, and knows which way is
// better for each unit.
func TestBenchfmtReadsBack(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBenchfmt(&b, benchRecords()); err != nil {
		t.Fatal(err)
	}
	rd := benchfmt.NewReader(&b, "test.bench")
	var results []*benchfmt.Result
	units := benchfmt.UnitMetadataMap{}
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.Result:
			results = append(results, rec.Clone())
		case *benchfmt.UnitMetadata:
			units[rec.UnitMetadataKey] = rec
		case *benchfmt.SyntaxError:
			t.Fatalf("benchstat would reject: %v", rec)
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("read %d results, want 2", len(results))
	}
	r := results[0]
	if got := r.GetConfig("cycles_source"); got != "tsc" {
		t.Errorf("cycles_source = %q", got)
	}
	if !strings.Contains(string(r.Name), "/backend=uring-sqpoll/") {
		t.Errorf("name %q lacks the backend key", r.Name)
	}
	for unit, want := range map[string]float64{"cycles/op": 2600, "cpu-sec/op": 4000e-9, "p99-sec": 150e-6, "ops/s": 50000} {
		got, ok := r.Value(unit)
		if !ok || !near(got, want) {
			t.Errorf("%s = %v (%v), want %v", unit, got, ok, want)
		}
	}
	if _, ok := results[1].Value("syscalls/op"); ok {
		t.Error("a meter that was not read appears in the benchmark line")
	}
	if units.GetBetter("ops/s") != 1 || units.GetBetter("cycles/op") != -1 {
		t.Errorf("better: ops/s %d, cycles/op %d", units.GetBetter("ops/s"), units.GetBetter("cycles/op"))
	}
}

func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(1, b)
}
