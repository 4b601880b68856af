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
