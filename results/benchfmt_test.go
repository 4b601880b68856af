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
	noisy := sample("uring-sqpoll", 50000, 2, 9000)
	noisy.Noisy = true
	clientBound := sample("uring-sqpoll", 50000, 3, 9000)
	clientBound.ClientBound = true
	return []Record{a, b, skipped, noisy, clientBound}
}

// wantBench is the golden output for benchRecords: a meter that was not
// read is absent from its line; a skipped, noisy or client-bound trial has
// no line; the run id is no file-level key.
const wantBench = `Unit ops/s better=higher
Unit ops/s assume=nothing
Unit B/s better=higher
Unit B/s assume=nothing
Unit B/s/core better=higher
Unit B/s/core assume=nothing
Unit cycles/B better=lower
Unit cycles/B assume=nothing
Unit cycles/op better=lower
Unit cycles/op assume=nothing
Unit cycles/pkt better=lower
Unit cycles/pkt assume=nothing
Unit cpu-ns/op better=lower
Unit cpu-ns/op assume=nothing
Unit syscalls/op better=lower
Unit syscalls/op assume=nothing
Unit backend-syscalls/op better=lower
Unit backend-syscalls/op assume=nothing
Unit busy-cycles/op better=lower
Unit busy-cycles/op assume=nothing
Unit busy-cycles/pkt better=lower
Unit busy-cycles/pkt assume=nothing
Unit p50-ns better=lower
Unit p50-ns assume=nothing
Unit p99-ns better=lower
Unit p99-ns assume=nothing
goos: linux
pkg: ringbench
cpu: Test CPU
kernel: 6.18.0
cycles_source: tsc

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

func TestBenchName(t *testing.T) {
	base := sample("uring", 20000, 0, 1).Config
	with := func(f func(c *Config)) Config {
		c := base
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"plain", base,
			"Echo/backend=uring/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=20000/cores=1"},
		{"closed loop", with(func(c *Config) { c.RateTarget = 0 }),
			"Echo/backend=uring/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=closed/cores=1"},
		{"options sorted, before cores", with(func(c *Config) { c.Options = map[string]string{"zc": "on", "batch": "16"} }),
			"Echo/backend=uring/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=20000/batch=16/zc=on/cores=1"},
		{"slash and space in a value", with(func(c *Config) { c.Options = map[string]string{"dev": "a/b c"} }),
			"Echo/backend=uring/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=20000/dev=a_b_c/cores=1"},
		{"value ending in -N", with(func(c *Config) { c.Options = map[string]string{"mode": "x-4"} }),
			"Echo/backend=uring/service=echo/proto=tcp/topology=veth/conns=64/depth=4/size=64/rate=20000/mode=x-4/cores=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BenchName(tc.c)
			if got != tc.want {
				t.Errorf("BenchName = %s\nwant        %s", got, tc.want)
			}
			// benchstat must read back every key, and no GOMAXPROCS.
			_, parts := benchfmt.Name(got).Parts()
			if n := strings.Count(tc.c.Key(), "/"); len(parts) != n {
				t.Errorf("%d sub-names, want %d (one per key part): %q", len(parts), n, parts)
			}
		})
	}
	// Two configurations that differ only in options are two keys and two
	// benchmark names.
	a := with(func(c *Config) { c.Options = map[string]string{"batch": "16"} })
	b := with(func(c *Config) { c.Options = map[string]string{"batch": "32"} })
	if a.Key() == b.Key() || BenchName(a) == BenchName(b) {
		t.Error("options missing from the key or the benchmark name")
	}
}
