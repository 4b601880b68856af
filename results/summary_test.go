package results

import (
	"math"
	"testing"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func f64(v float64) *float64 { return &v }

// sample builds a hand-made ok record; the numbers are test input only.
func sample(label string, rate float64, repeat int, cyclesPerOp float64) Record {
	fam, variant := label, "default"
	if label == "uring-sqpoll" {
		fam, variant = "uring", "sqpoll"
	}
	return Record{
		Run: "test", Repeat: repeat, Status: StatusOK,
		Config: Config{Backend: fam, Variant: variant, Workload: "echo", Service: "echo", Proto: "tcp",
			Topology: "veth", Conns: 64, Depth: 4, Size: 64, RateTarget: rate, Cores: 1},
		Ops: 100000, Bytes: 12800000, ThroughputOps: rate, Gbps: 0.0205,
		LatP50: 50, LatP99: 150, CPUNs: 4e8, CPUNsPerOp: 4000,
		Cycles: cyclesPerOp * 100000, CyclesPerOp: cyclesPerOp, CyclesPerPacket: f64(cyclesPerOp / 2),
		CyclesSource: "tsc", SyscallsPerOp: f64(1.9), BackendSyscallsPerOp: f64(1.8),
		Env: Env{Kernel: "6.18.0", CPUModel: "Test CPU"},
	}
}

func TestSummarize(t *testing.T) {
	var recs []Record
	for i, c := range []float64{105, 101, 99, 100, 103, 97, 102} {
		recs = append(recs, sample("epoll", 20000, i, c))
	}
	for i, c := range []float64{80, 82} {
		recs = append(recs, sample("uring-sqpoll", 20000, i, c))
	}
	skipped := sample("dpdk", 20000, 0, 0)
	skipped.Status, skipped.Error = StatusSkipped, "no kernel TCP stack"
	recs = append(recs, skipped)
	failed := sample("epoll", 20000, 7, 1e9)
	failed.Status, failed.Error = StatusFailed, "server exited"
	recs = append(recs, failed)
	noSys := sample("uring-sqpoll", 20000, 2, 81)
	noSys.SyscallsPerOp, noSys.SyscallsNote = nil, "tracefs not mounted"
	recs = append(recs, noSys)

	groups := Summarize(recs)
	if len(groups) != 3 {
		t.Fatalf("got %d groups, want 3 (epoll, uring-sqpoll, dpdk)", len(groups))
	}
	epoll, sqpoll, dpdk := groups[0], groups[1], groups[2]

	t.Run("median and interval", func(t *testing.T) {
		s, ok := epoll.Stat(MCyclesPerOp)
		if !ok {
			t.Fatal("no cycles/op stat")
		}
		// The failed repeat (1e9) must not be in the sample.
		if s.N != 7 || s.Center != 101 {
			t.Errorf("cycles/op n=%d median=%v, want n=7 median=101", s.N, s.Center)
		}
		if !s.HasCI() || s.Lo > s.Center || s.Hi < s.Center || s.Confidence < Confidence {
			t.Errorf("interval [%v, %v] at %v does not hold the median at >= 95%%", s.Lo, s.Hi, s.Confidence)
		}
	})
	t.Run("too few repeats for an interval", func(t *testing.T) {
		s, _ := sqpoll.Stat(MCyclesPerOp)
		if s.HasCI() || len(s.Warnings) == 0 {
			t.Errorf("3 repeats gave interval [%v, %v] with warnings %q; want ±∞ and a warning", s.Lo, s.Hi, s.Warnings)
		}
	})
	t.Run("missing meter is absent, not zero", func(t *testing.T) {
		s, ok := sqpoll.Stat(MSyscallsPerOp)
		if !ok || s.N != 2 {
			t.Errorf("syscalls/op n=%d, want the 2 repeats that read it", s.N)
		}
		if _, ok := dpdk.Stat(MCyclesPerOp); ok {
			t.Error("a skipped configuration has a cycles/op stat")
		}
		if dpdk.Reason() != "no kernel TCP stack" {
			t.Errorf("reason = %q", dpdk.Reason())
		}
	})
	t.Run("failed repeats kept beside", func(t *testing.T) {
		if len(epoll.OK) != 7 || len(epoll.NotOK) != 1 || epoll.Reason() != "" {
			t.Errorf("epoll ok=%d notok=%d reason=%q", len(epoll.OK), len(epoll.NotOK), epoll.Reason())
		}
	})
	t.Run("comparison", func(t *testing.T) {
		a, _ := epoll.Stat(MCyclesPerOp)
		b, _ := sqpoll.Stat(MCyclesPerOp)
		c := a.Compare(b)
		if c.N1 != 7 || c.N2 != 3 || math.IsNaN(c.P) || c.P <= 0 || c.P > 1 {
			t.Errorf("comparison %+v", c)
		}
	})
}

func TestMetricsCoverUnits(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Metrics {
		if seen[m.Name] || seen[m.BenchUnit] {
			t.Errorf("metric %q or unit %q twice", m.Name, m.BenchUnit)
		}
		seen[m.Name], seen[m.BenchUnit] = true, true
		if m.Better == 0 || m.BenchScale == 0 || m.Of == nil {
			t.Errorf("metric %q incomplete", m.Name)
		}
		if _, ok := MetricByName(m.Name); !ok {
			t.Errorf("MetricByName(%q) failed", m.Name)
		}
	}
}

func TestSummarizeLeavesOutFlagged(t *testing.T) {
	var recs []Record
	for i, c := range []float64{100, 101, 99, 102, 98, 100} {
		recs = append(recs, sample("epoll", 20000, i, c))
	}
	noisy := sample("epoll", 20000, 6, 500)
	noisy.Noisy = true
	bound := sample("epoll", 20000, 7, 10)
	bound.ClientBound = true
	recs = append(recs, noisy, bound)
	g := Summarize(recs)[0]
	s, _ := g.Stat(MCyclesPerOp)
	if len(g.OK) != 8 || g.Counted() != 6 || s.N != 6 {
		t.Errorf("ok %d, counted %d, n %d; want 8 shown, 6 counted", len(g.OK), g.Counted(), s.N)
	}
	if s.Values[0] != 98 || s.Values[5] != 102 || !s.HasCI() {
		t.Errorf("values %v (interval %v): a flagged repeat is in the sample, or six gave no interval", s.Values, s.HasCI())
	}
	if !g.Noisy() || !g.ClientBound() {
		t.Error("flags of the shown repeats lost")
	}
	only := Summarize([]Record{noisy})[0]
	if _, ok := only.Stat(MCyclesPerOp); ok || len(only.OK) != 1 {
		t.Error("a configuration with only flagged repeats has a median")
	}
}

func TestCV(t *testing.T) {
	for _, tc := range []struct {
		vals []float64
		want float64
	}{
		{[]float64{10}, math.NaN()},
		{[]float64{0, 0}, math.NaN()},
		{[]float64{10, 10, 10}, 0},
		{[]float64{9, 11}, math.Sqrt2 / 10},
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, math.Sqrt(32.0/7) / 5},
	} {
		got := newStat(tc.vals).CV()
		if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("CV(%v) = %v, want %v", tc.vals, got, tc.want)
		}
	}
}

func TestCostMeter(t *testing.T) {
	// group builds a configuration's repeats from paired cycles/op and
	// cpu-ns/op values.
	group := func(label string, cycles, cpu []float64) *Group {
		var recs []Record
		for i := range cycles {
			r := sample(label, 20000, i, cycles[i])
			r.CPUNsPerOp = cpu[i]
			if cpu[i] == 0 {
				r.CPUNs = 0
			}
			recs = append(recs, r)
		}
		g := Summarize(recs)[0]
		return &g
	}
	steady := []float64{1000, 1001, 999, 1000, 1002, 998}
	shaky := []float64{1000, 1300, 700, 1100, 900, 1200}
	for _, tc := range []struct {
		name string
		a, b *Group
		want string
	}{
		{"cycles steadier", group("epoll", steady, shaky), group("uring", steady, shaky), MCyclesPerOp},
		{"cpu time steadier", group("epoll", shaky, steady), group("uring", shaky, steady), MCPUNsPerOp},
		// The pair is as noisy as its noisier side: cycles are steady on
		// a but shaky on b, CPU time a little unsteady on both.
		{"noisier side decides", group("epoll", steady, []float64{1000, 1010, 990, 1000, 1020, 980}),
			group("uring", shaky, []float64{1000, 1010, 990, 1000, 1020, 980}), MCPUNsPerOp},
		{"one repeat: the first measured", group("epoll", []float64{1000}, []float64{500}),
			group("uring", []float64{900}, []float64{400}), MCyclesPerOp},
		{"cpu time not read: cycles", group("epoll", shaky, []float64{0, 0, 0, 0, 0, 0}), group("uring", shaky, steady), MCyclesPerOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := CostMeter(tc.a, tc.b)
			if !ok || c.Metric != tc.want {
				t.Errorf("CostMeter = %q (%v), spreads %v; want %q", c.Metric, ok, c.Spread, tc.want)
			}
			if c.A.N != tc.a.Stats[c.Metric].N || c.B.Center != tc.b.Stats[c.Metric].Center {
				t.Error("choice does not carry the chosen meter's stats")
			}
		})
	}
	if _, ok := CostMeter(&Group{}, &Group{}); ok {
		t.Error("a choice with no cost meter on either side")
	}
}
