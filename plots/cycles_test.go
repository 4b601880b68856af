package plots

import (
	"slices"
	"strings"
	"testing"

	"ringbench/results"
)

// Every chart whose axis carries cycles says what kind they are, and a
// chart over records that mix hardware (perf) and TSC-equivalent cycles
// says that it mixes them: the two are never on one axis unannounced.
func TestChartsNameTheKindOfCycles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		perf  func(i int, r *results.Record) bool // which records a PMU counted
		axis  string                              // what a cycles axis must say
		title string                              // what every title must say
		never string                              // what no cycles axis may say
	}{
		{"all tsc", func(int, *results.Record) bool { return false }, "TSC-equivalent cycles", "cycles_source: tsc", "perf"},
		{"all perf", func(int, *results.Record) bool { return true }, "cycles", "cycles_source: perf", "TSC"},
		{"one backend perf", func(_ int, r *results.Record) bool { return r.Backend == "epoll" }, "perf or TSC-equivalent cycles", "cycles_source: ", ""},
		{"every other trial perf", func(i int, _ *results.Record) bool { return i%2 == 0 }, "perf or TSC-equivalent cycles", "cycles_source: ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, lesson := synthetic(t)
			kinds := map[string]bool{}
			for i := range recs {
				recs[i].CyclesSource = "tsc"
				if tc.perf(i, &recs[i]) {
					recs[i].CyclesSource = "perf"
				}
				if recs[i].Status == results.StatusOK {
					kinds[recs[i].CyclesSource] = true
				}
			}
			charts, _ := Charts(recs, lesson)
			axes := 0
			for _, c := range charts {
				y := c.Plot.Y.Label.Text
				if !strings.Contains(c.Plot.Title.Text, tc.title) {
					t.Errorf("%s: title %q lacks %q", c.Name, c.Plot.Title.Text, tc.title)
				}
				if len(kinds) == 2 && !(strings.Contains(c.Plot.Title.Text, "perf") && strings.Contains(c.Plot.Title.Text, "tsc")) {
					t.Errorf("%s: title %q does not name both cycle sources", c.Name, c.Plot.Title.Text)
				}
				if !strings.Contains(strings.ToLower(y), "cycles") {
					continue
				}
				axes++
				if !strings.Contains(y, tc.axis) {
					t.Errorf("%s: cycles axis %q lacks %q", c.Name, y, tc.axis)
				}
				if tc.never != "" && strings.Contains(y, tc.never) {
					t.Errorf("%s: cycles axis %q says %q", c.Name, y, tc.never)
				}
			}
			if axes == 0 {
				t.Fatal("no chart has a cycles axis: the test checks nothing")
			}
		})
	}
}

// A compare chart of cycles between a run without a PMU and one with says
// on the chart that the meter changed; other metrics' charts do not.
func TestCompareChartNamesAChangeOfMeter(t *testing.T) {
	rec := func(src string, i int, cycles float64) results.Record {
		return results.Record{Status: results.StatusOK, Repeat: i,
			Config: results.Config{Backend: "uring", Variant: "default", Workload: "echo", Service: "echo",
				Proto: "tcp", Topology: "veth", Conns: 64, Depth: 4, Size: 64, RateTarget: 20000, Cores: 1},
			Ops: 1000, Cycles: cycles * 1000, CyclesPerOp: cycles, CyclesSource: src, CPUNs: 1e6, CPUNsPerOp: 1000, ThroughputOps: 20000}
	}
	var ta, tb []results.Record
	for i := range 6 {
		ta = append(ta, rec("tsc", i, 1000+float64(i)))
		tb = append(tb, rec("perf", i, 2000+float64(i)))
	}
	for _, tc := range []struct {
		name   string
		b      []results.Record
		metric string
		want   bool
	}{
		{"tsc vs perf, cycles", tb, results.MCyclesPerOp, true},
		{"tsc vs perf, throughput", tb, results.MThroughput, false},
		{"tsc vs tsc, cycles", ta, results.MCyclesPerOp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := newRun(ta, nil), newRun(tc.b, nil)
			changes, _, _ := compareRuns(ra, rb)
			c, err := compareChart(ra, rb, tc.metric, changes)
			if err != nil || c == nil {
				t.Fatalf("compare chart: %v, %v", c, err)
			}
			const says = "A's cycles are TSC-equivalent cycles, B's cycles"
			if got := strings.Contains(c.Plot.Title.Text, says) && strings.Contains(c.Caption, says); got != tc.want {
				t.Errorf("title %q, caption %q: says the meter changed %v, want %v", c.Plot.Title.Text, c.Caption, got, tc.want)
			}
		})
	}
}

// A stream's row shows its cost per byte and its throughput per busy core
// beside its Gbit/s; an echo's shows neither.
func TestStreamCostPerByteInTable(t *testing.T) {
	cpb, perCore := 1.25, 9.5
	stream := results.Record{Status: results.StatusOK, Ops: 100, Bytes: 1 << 30, Gbps: 8, Cycles: 1e9, CyclesPerOp: 1e7,
		CyclesPerByte: &cpb, GbpsPerCore: &perCore, CyclesSource: "tsc",
		Config: results.Config{Backend: "uring", Variant: "default", Workload: "stream", Proto: "tcp", Topology: "veth", Conns: 1, Depth: 1, Size: 16384, Cores: 1}}
	echo := stream
	echo.Workload, echo.CyclesPerByte, echo.GbpsPerCore = "echo", nil, nil
	tb := newRun([]results.Record{stream, echo}, nil).resultsTable()
	col := func(name string) int {
		i := slices.IndexFunc(tb.header, func(h string) bool { return strings.HasPrefix(h, name) })
		if i < 0 {
			t.Fatalf("no column %q in %v", name, tb.header)
		}
		return i
	}
	g, c := col("Gbit/s per core"), col("cycles/B")
	for _, row := range tb.rows {
		switch row[1] {
		case "stream":
			if row[g] != "9.50" || row[c] != "1.25" {
				t.Errorf("stream row: Gbit/s per core %q, cycles/B %q", row[g], row[c])
			}
		case "echo":
			if row[g] == "9.50" || row[c] == "1.25" {
				t.Errorf("echo row shows a stream's figures: %q %q", row[g], row[c])
			}
		}
	}
}
