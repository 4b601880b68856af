package plots

import (
	"bytes"
	"strings"
	"testing"

	"ringbench/results"
)

// scalingRecords is a closed-loop sweep over 1 and 2 server cores on a
// 2-CPU machine: on 2 cores the generator shares the server's CPUs (when
// shared is set) and DPDK is skipped with its reason. The 2-core points
// have more repeats and more throughput, so that only the shared flag
// keeps them out of the comparison.
func scalingRecords(shared, withDPDK bool) []results.Record {
	var recs []results.Record
	add := func(backend string, cores, repeats int, ops, cycles float64) {
		for i := 0; i < repeats; i++ {
			rec := results.Record{Status: results.StatusOK, Repeat: i,
				Config: results.Config{Backend: backend, Variant: "default", Workload: "echo", Service: "echo", Proto: "udp",
					Topology: "veth", Conns: 64, Depth: 4, Size: 64, Cores: cores},
				Ops: uint64(ops * 2), WindowS: 2, ThroughputOps: ops + float64(i), Cycles: cycles * ops * 2,
				CyclesPerOp: cycles + float64(i), CyclesSource: "tsc", LatP99: 200, LatP50: 100,
				Env: results.Env{Kernel: "6.18", CPUModel: "Synthetic Test CPU", CPUs: 2, TSCHz: 2.6e9}}
			rec.ServerCPUs, rec.ClientCPUs = []int{1}, []int{0}
			if cores == 2 {
				rec.ServerCPUs = []int{0, 1}
				rec.ClientCPUs = []int{0}
				if shared {
					rec.ClientCPUs = []int{0, 1}
					rec.ClientSharesServerCPUs = true
				}
			}
			recs = append(recs, rec)
		}
	}
	add("epoll", 1, 2, 100000, 20000)
	add("uring", 1, 2, 120000, 18000)
	add("epoll", 2, 3, 150000, 26000)
	add("uring", 2, 3, 170000, 24000)
	if withDPDK {
		add("dpdk", 1, 2, 300000, 9000)
		recs = append(recs, results.Record{Status: results.StatusSkipped,
			Error:  "server: start dpdk: dpdk on 2 cores not supported: this server polls one queue pair on one core",
			Config: results.Config{Backend: "dpdk", Variant: "default", Workload: "echo", Service: "echo", Proto: "udp", Topology: "veth", Conns: 64, Depth: 4, Size: 64, Cores: 2}})
	}
	return recs
}

var udpVeth = family{"echo", "echo", "udp", "veth"}

func TestScalingCharts(t *testing.T) {
	for _, shared := range []bool{true, false} {
		r := newRun(scalingRecords(shared, true), nil)
		cs, err := r.scalingCharts(udpVeth)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 2 || cs[0].Name != "scaling-throughput-echo-udp-veth" || cs[1].Name != "scaling-cycles-per-op-echo-udp-veth" {
			t.Fatalf("shared %v: charts %v", shared, chartNames(cs))
		}
		for _, c := range cs {
			if !strings.Contains(c.Caption, "dpdk on 2 cores: server: start dpdk: dpdk on 2 cores not supported") {
				t.Errorf("%s: caption does not say why dpdk has no 2-core point: %q", c.Name, c.Caption)
			}
			says := strings.Contains(c.Caption, "epoll on 2 cores, uring on 2 cores") && strings.Contains(c.Caption, "left out of the headline")
			if says != shared {
				t.Errorf("%s, shared %v: caption names the shared points %v: %q", c.Name, shared, says, c.Caption)
			}
			svg, err := c.SVG()
			if err != nil {
				t.Fatal(err)
			}
			// The SVG escapes the apostrophe.
			if got := bytes.Contains(svg, []byte("generator on the server")); got != shared {
				t.Errorf("%s, shared %v: legend entry %q drawn %v", c.Name, shared, sharedFlag, got)
			}
		}
		if shared && !strings.Contains(cs[1].Caption, "include the generator's work") {
			t.Errorf("cycles chart does not say what sharing does to cycles: %q", cs[1].Caption)
		}
		// The two-core points are lines' points, not dropped: both lines
		// reach 2 cores.
		for _, l := range []string{"epoll", "uring"} {
			if _, ok := r.stat(l, pointOf(results.Config{Workload: "echo", Service: "echo", Proto: "udp", Topology: "veth", Conns: 64, Depth: 4, Size: 64, Cores: 2}), results.MThroughput); !ok {
				t.Errorf("%s has no 2-core throughput", l)
			}
		}
	}
}

// A shared point is never where backends are compared, nor the highest
// throughput, and its row says why; without the flag the same records
// would be.
func TestSharedPointsLeftOutOfTheComparison(t *testing.T) {
	for _, shared := range []bool{true, false} {
		r := newRun(scalingRecords(shared, false), nil)
		p, ok := r.mainPoint(udpVeth)
		if !ok {
			t.Fatal("no main point")
		}
		wantCores := 2 // more repeats
		if shared {
			wantCores = 1
		}
		if p.Cores != wantCores {
			t.Errorf("shared %v: main point on %d cores, want %d", shared, p.Cores, wantCores)
		}
		f := r.throughputFinding(udpVeth)
		if got := strings.Contains(f, "uring 17000"); got == shared {
			t.Errorf("shared %v: throughput finding cites the 2-core rate %v: %q", shared, got, f)
		}
		for _, g := range r.groups {
			cell := flagsCell(&g)
			if want := shared && g.Config.Cores == 2; strings.Contains(cell, sharedFlag) != want {
				t.Errorf("shared %v, %s: flags %q", shared, g.Key, cell)
			}
		}
	}
	r := newRun(scalingRecords(true, false), nil)
	if f := r.trialFinding(); !strings.Contains(f, "6 of the ok ran with the generator on the server's cores") {
		t.Errorf("trial finding does not count the shared trials: %q", f)
	}
	if k := badgeKind(sharedFlag); k != "info" {
		t.Errorf("badge of %q is %q, want info", sharedFlag, k)
	}
}

// A sweep whose every repeat was flagged draws nothing and says why, point
// by point.
func TestScalingAllFlagged(t *testing.T) {
	recs := scalingRecords(true, false)
	for i := range recs {
		recs[i].Noisy = true
	}
	r := newRun(recs, nil)
	cs, err := r.scalingCharts(udpVeth)
	if err == nil || len(cs) != 0 {
		t.Fatalf("charts %v from flagged records", chartNames(cs))
	}
	if !strings.Contains(err.Error(), "epoll on 1 core: every repeat flagged noisy or client-bound") {
		t.Errorf("error %q does not say why", err)
	}
}

func chartNames(cs []*Chart) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}
