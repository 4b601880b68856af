package plots

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"ringbench/backends"
	"ringbench/results"
	_ "ringbench/uring" // registers the io_uring variants the ladder must name
)

// ladderPointTCP is the full profile's ladder configuration.
var ladderPointTCP = results.Config{Workload: "echo", Service: "echo", Proto: "tcp", Topology: "veth",
	Conns: 64, Depth: 1, Size: 64, Cores: 1, RateTarget: 20000}

// ladderRec is one ok repeat of backend-variant at the ladder point:
// hand-picked cycles/op, syscalls/op and p99 (synthetic, not measured).
func ladderRec(backend, variant string, repeat int, cycles, syscalls, p99 float64) results.Record {
	cfg := ladderPointTCP
	cfg.Backend, cfg.Variant = backend, variant
	cfg.ServerCPUs, cfg.ClientCPUs = []int{1}, []int{0}
	sc := syscalls
	return results.Record{Status: results.StatusOK, Repeat: repeat, Config: cfg,
		Ops: 100000, WindowS: 5, ThroughputOps: 20000, Cycles: cycles * 100000, CyclesPerOp: cycles,
		CyclesSource: "tsc", SyscallsPerOp: &sc, LatP50: p99 / 2, LatP99: p99,
		Env: results.Env{Kernel: "6.18", CPUModel: "Synthetic Test CPU", CPUs: 2, TSCHz: 2.6e9}}
}

// ladderRecords holds the given rungs (variants of uring) with n repeats
// each, a rung's cycles/op falling by 1000 per step with a spread of ±50,
// beside c-uring and c-epoll; the records of each rung are appended in
// the order given.
func ladderRecords(n int, variants ...string) []results.Record {
	var recs []results.Record
	for i, v := range variants {
		for k := 0; k < n; k++ {
			recs = append(recs, ladderRec("uring", v, k, 70000-1000*float64(i)+50*float64(k), 2-0.2*float64(i), 100+float64(i)))
		}
	}
	for k := 0; k < n; k++ {
		recs = append(recs, ladderRec("c-uring", "default", k, 60000+float64(k), 2.4, 90))
		recs = append(recs, ladderRec("c-epoll", "default", k, 58000+float64(k), 2.8, 80))
	}
	return recs
}

func ladderMarkdown(t *testing.T, recs []results.Record) string {
	t.Helper()
	r := newRun(recs, nil)
	charts, skipped := r.charts()
	md, err := r.report(charts, nil, skipped).markdown()
	if err != nil {
		t.Fatal(err)
	}
	return string(md)
}

func TestLadderSectionNeedsTwoRungs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		variants []string
		want     bool
	}{
		{"two rungs", []string{"basic", "pbuf"}, true},
		{"whole ladder", []string{"basic", "pbuf", "multishot", "fixed", "defer", "default", "bundle", "sqpoll", "zc"}, true},
		{"one rung", []string{"default"}, false},
		{"no rung", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := ladderMarkdown(t, ladderRecords(3, tc.variants...))
			if got := strings.Contains(md, "## The io_uring ladder"); got != tc.want {
				t.Errorf("ladder section present = %v, want %v", got, tc.want)
			}
			charts, _ := newRun(ladderRecords(3, tc.variants...), nil).ladderCharts()
			if tc.want && len(charts) != len(ladderMetrics) || !tc.want && len(charts) != 0 {
				t.Errorf("%d ladder charts, want %d", len(charts), map[bool]int{true: len(ladderMetrics)}[tc.want])
			}
		})
	}
}

// Two rungs at different points are no ladder: each point holds one.
func TestLadderRungsMustShareAPoint(t *testing.T) {
	recs := ladderRecords(3, "basic")
	other := ladderRecords(3, "pbuf")
	for i := range other {
		other[i].Conns = 512
	}
	if _, ok := newRun(append(recs, other...), nil).ladderPoint(); ok {
		t.Error("a ladder point was found with one rung at each point")
	}
}

func TestLadderOrder(t *testing.T) {
	shuffled := []string{"zc", "default", "basic", "sqpoll", "fixed", "pbuf", "bundle", "defer", "multishot"}
	recs := ladderRecords(3, shuffled...)
	// Interleave further: the references first, then the rungs reversed.
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	r := newRun(recs, nil)
	p, ok := r.ladderPoint()
	if !ok {
		t.Fatal("no ladder point")
	}
	want := []string{"uring-basic", "uring-pbuf", "uring-multishot", "uring-fixed", "uring-defer", "uring",
		"uring-bundle", "uring-sqpoll", "uring-zc"}
	tbl := r.ladderTable(p)
	var got []string
	for _, row := range tbl.rows {
		got = append(got, row[0])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("table rungs = %v, want %v", got, want)
	}
	charts, skipped := r.ladderCharts()
	if len(charts) != 3 {
		t.Fatalf("ladder charts %d, skipped %q", len(charts), skipped)
	}
	var ticks []string
	for _, tk := range charts[0].Plot.X.Tick.Marker.Ticks(charts[0].Plot.X.Min, charts[0].Plot.X.Max) {
		if tk.Label != "" {
			ticks = append(ticks, tk.Label)
		}
	}
	if strings.Join(ticks, " ") != strings.Join(want, " ") {
		t.Errorf("chart x axis = %v, want %v", ticks, want)
	}
}

func TestLadderSkippedRungIsListed(t *testing.T) {
	recs := ladderRecords(3, "basic", "default")
	cfg := ladderPointTCP
	cfg.Backend, cfg.Variant, cfg.Proto = "uring", "bundle", "tcp"
	why := "server: uring-bundle not supported: IOU_PBUF_RING_INC needs Linux 6.12"
	recs = append(recs, results.Record{Status: results.StatusSkipped, Error: why, Config: cfg})
	r := newRun(recs, nil)
	p, _ := r.ladderPoint()
	tbl := r.ladderTable(p)
	var row []string
	for _, rw := range tbl.rows {
		if rw[0] == "uring-bundle" {
			row = rw
		}
	}
	if row == nil {
		t.Fatalf("skipped rung not in the table: %v", tbl.rows)
	}
	if row[2] != notRun || row[4] != notRun {
		t.Errorf("skipped rung's figures %q, %q, want %q", row[2], row[4], notRun)
	}
	if !strings.Contains(row[len(row)-1], "skipped: "+why) {
		t.Errorf("skipped rung's flags %q do not give the reason", row[len(row)-1])
	}
	// The chart marks it n/a with its reason, not as a zero bar.
	charts, _ := r.ladderCharts()
	if len(charts) == 0 || !strings.Contains(charts[0].Caption, "uring-bundle: "+why) {
		t.Errorf("chart caption does not give the skip reason")
	}
}

func TestLadderRatios(t *testing.T) {
	// basic: 70000, 70050, 70100 (median 70050); pbuf skipped here so that
	// multishot (68000, 68050, 68100: median 68050) is compared with basic.
	recs := ladderRecords(3, "basic", "pbuf", "multishot")
	var kept []results.Record
	for _, rec := range recs {
		if rec.Variant != "pbuf" {
			kept = append(kept, rec)
		}
	}
	r := newRun(kept, nil)
	p, _ := r.ladderPoint()
	ms, _ := rungOf("multishot")
	st, ok := r.step(ms, p, results.MCyclesPerOp)
	if !ok {
		t.Fatal("no step from multishot down")
	}
	if st.below != "uring-basic" {
		t.Errorf("multishot compared with %s, want uring-basic (pbuf did not run)", st.below)
	}
	if want := 68050.0 / 70050.0; math.Abs(st.ratio()-want) > 1e-12 {
		t.Errorf("ratio %v, want %v", st.ratio(), want)
	}
	if !strings.HasPrefix(st.text(), "0.97× vs uring-basic (not significant, p=0.100 n=3+3)") {
		t.Errorf("step text %q", st.text())
	}
	// Syscalls: basic 2.0, multishot 1.6 (i = 2).
	sc, ok := r.step(ms, p, results.MSyscallsPerOp)
	if !ok || math.Abs(sc.ratio()-0.8) > 1e-9 {
		t.Errorf("syscalls step %v (ok %v), want 0.80×", sc.ratio(), ok)
	}
}

func TestLadderFindings(t *testing.T) {
	// Six repeats a side: a step of 1000 cycles with a spread of 250 is
	// significant, so the text can say the feature paid.
	r := newRun(ladderRecords(6, "basic", "pbuf"), nil)
	p, _ := r.ladderPoint()
	f := strings.Join(r.ladderFindings(p), "\n")
	for _, want := range []string{
		"uring-pbuf over uring-basic, a provided buffer ring: cut cycles/op (TSC-equivalent) from 70125 to 69125 (0.99×; significant, p=0.002 n=6+6)",
		"syscalls/op 2.00 → 1.80 (0.90× vs uring-basic)",
		"paid in cycles/op (significantly fewer): a provided buffer ring: 0.99×",
		"The cheapest rung, uring-pbuf at 69125",
		"1.15× c-uring's 60002",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("findings lack %q:\n%s", want, f)
		}
	}
	// Three repeats a side cannot reach significance: the text says so
	// rather than calling the step a gain.
	r = newRun(ladderRecords(3, "basic", "pbuf"), nil)
	p, _ = r.ladderPoint()
	f = strings.Join(r.ladderFindings(p), "\n")
	if strings.Contains(f, "paid in cycles/op") || !strings.Contains(f, "no rank test can reach p < 0.05 (its smallest p is 0.100)") {
		t.Errorf("n=3 findings:\n%s", f)
	}
}

func TestMinUTestP(t *testing.T) {
	for _, tc := range []struct {
		n1, n2 int
		want   float64
	}{{3, 3, 0.1}, {4, 4, 2.0 / 70}, {6, 6, 2.0 / 924}, {1, 1, 1}} {
		if got := minUTestP(tc.n1, tc.n2); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("minUTestP(%d, %d) = %v, want %v", tc.n1, tc.n2, got, tc.want)
		}
		// benchmath's U test agrees where it can be reached.
		if tc.n1 > 1 {
			var a, b []float64
			for i := 0; i < tc.n1; i++ {
				a, b = append(a, float64(i)), append(b, float64(100+i))
			}
			c := results.StatOf(a).Compare(results.StatOf(b))
			if math.Abs(c.P-tc.want) > 1e-9 {
				t.Errorf("benchmath p for %d+%d separated samples = %v, want %v", tc.n1, tc.n2, c.P, tc.want)
			}
		}
	}
}

// offLadder are the io_uring variants that are no rung, and why: a new
// variant fails TestLadderCoversTheRegistry until it is placed.
var offLadder = map[string]string{
	"zcrx": "zero-copy receive is a TCP sink on a NIC with header split, not an echo server built on a rung",
}

// Every io_uring variant in the backend registry is a rung of the ladder
// (or named in offLadder) with the base its registry summary names, and
// every rung is registered.
func TestLadderCoversTheRegistry(t *testing.T) {
	registered := map[string]backends.Backend{}
	for _, b := range backends.All() {
		if _, off := offLadder[b.Variant]; b.Family == ladderFamily && !off {
			registered[b.Variant] = b
		}
	}
	if len(registered) == 0 {
		t.Fatal("no uring variant registered")
	}
	for v, b := range registered {
		rg, ok := rungOf(v)
		if !ok {
			t.Errorf("registered %s (variant %q) is not a rung of plots' ladder", b.Name, v)
			continue
		}
		// The registry's summary opens with the rung it builds on
		// ("pbuf + multishot…", "uring + bundles…").
		if rg.below != "" {
			base := strings.TrimPrefix(rungLabel(rg.below), "uring-")
			if !strings.HasPrefix(b.Summary, base+" + ") {
				t.Errorf("%s: plots puts it on %s, its summary says %q", b.Name, rungLabel(rg.below), b.Summary)
			}
		}
	}
	for _, rg := range ladder {
		if _, ok := registered[rg.variant]; !ok {
			t.Errorf("plots' rung %q is not a registered uring variant", rg.variant)
		}
	}
}

func TestLadderRefLines(t *testing.T) {
	r := newRun(ladderRecords(3, "basic", "pbuf"), nil)
	charts, _ := r.ladderCharts()
	if len(charts) == 0 {
		t.Fatal("no ladder chart")
	}
	svg, err := charts[0].SVG()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"c-uring 60001", "c-epoll 58001"} {
		if !bytes.Contains(svg, []byte(e)) {
			t.Errorf("cycles chart has no reference line labelled %q", e)
		}
	}
}
