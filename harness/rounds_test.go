package harness_test

import (
	"fmt"
	"slices"
	"testing"

	"ringbench/harness"

	// The backends register themselves; a profile names them.
	_ "ringbench/baselines/programs"
	_ "ringbench/dpdk"
	_ "ringbench/epoll"
	_ "ringbench/uring"
)

func TestTrialsRounds(t *testing.T) {
	const yaml = `name: x
backends: [epoll, uring, uring-sqpoll]
experiments:
  - name: a
    conns: [1, 16]
    repeats: 4
  - name: b
    backends: [epoll, uring]
    proto: [udp]
    repeats: 2
`
	p, err := harness.ParseProfile([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	order := func(seed int64) []string {
		p.Seed = seed
		trials, err := p.Trials("loopback")
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, tr := range trials {
			s = append(s, fmt.Sprintf("%d/%d", tr.Index, tr.Repeat))
		}
		return s
	}
	for _, tc := range []struct {
		name string
		seed int64
	}{{"seed 1", 1}, {"seed 2", 2}, {"seed from a clock", 1796045372178363453}} {
		t.Run(tc.name, func(t *testing.T) {
			p.Seed = tc.seed
			trials, err := p.Trials("loopback")
			if err != nil {
				t.Fatal(err)
			}
			if len(trials) != 6*4+2*2 {
				t.Fatalf("%d trials, want 28", len(trials))
			}
			// Experiments stay in profile order; within one, repeat r
			// of every configuration runs before repeat r+1 of any.
			count := map[int]int{}
			config := map[int]string{}
			for i, tr := range trials {
				exp := "a"
				if tr.Proto == "udp" {
					exp = "b"
				}
				if i < 24 && exp != "a" || i >= 24 && exp != "b" {
					t.Fatalf("trial %d (%s) out of its experiment", i, harness.Describe(tr))
				}
				if i > 0 && (i != 24) && tr.Repeat < trials[i-1].Repeat {
					t.Errorf("trial %d: repeat %d after repeat %d", i, tr.Repeat, trials[i-1].Repeat)
				}
				if tr.Repeat != count[tr.Index] {
					t.Errorf("trial %d: configuration %d repeat %d, want %d", i, tr.Index, tr.Repeat, count[tr.Index])
				}
				count[tr.Index]++
				// One index per configuration, shared by its repeats.
				d := harness.Describe(tr)
				if c, ok := config[tr.Index]; ok && c != d {
					t.Errorf("index %d names %q and %q", tr.Index, c, d)
				}
				config[tr.Index] = d
			}
			if len(count) != 8 {
				t.Errorf("%d configurations, want 8", len(count))
			}
			// Indexes count configurations in matrix order whatever the seed.
			if trials[0].Index >= 6 || count[0] != 4 || count[7] != 2 {
				t.Errorf("indexes %v not in matrix order", count)
			}
		})
	}
	t.Run("seed decides the order", func(t *testing.T) {
		a, again, b := order(1), order(1), order(2)
		if !slices.Equal(a, again) {
			t.Error("the same seed gave two orders")
		}
		if slices.Equal(a, b) {
			t.Error("seeds 1 and 2 gave the same order")
		}
		// Shuffled: not every round runs in matrix order.
		inOrder := true
		for i := 1; i < 24; i++ {
			if a[i] < a[i-1] && i%6 != 0 {
				inOrder = false
			}
		}
		if inOrder {
			t.Errorf("seed 1 left every round in matrix order: %v", a)
		}
	})
}

// TestBuiltinRepeats pins what the profiles promise: every same-rate
// comparison has at least six repeats a configuration, the fewest for
// which benchmath gives a finite 95% interval of the median.
func TestBuiltinRepeats(t *testing.T) {
	for _, name := range harness.Profiles() {
		t.Run(name, func(t *testing.T) {
			p, err := harness.LoadProfile(name)
			if err != nil {
				t.Fatal(err)
			}
			trials, err := p.Trials("veth")
			if err != nil {
				t.Fatal(err)
			}
			n := map[int]int{}
			rate := map[int]float64{}
			for _, tr := range trials {
				n[tr.Index]++
				rate[tr.Index] = tr.Rate
			}
			same := 0
			for i, r := range rate {
				if r == 0 {
					continue
				}
				same++
				if name == "quick" && n[i] < 6 {
					t.Errorf("configuration %d at %v ops/s has %d repeats, want >= 6", i, r, n[i])
				}
			}
			if same == 0 {
				t.Error("no same-rate configuration")
			}
			if name == "quick" && len(trials) > 70 {
				t.Errorf("quick has %d trials; at about 4.5 s each it no longer fits in 6-7 minutes with validate", len(trials))
			}
		})
	}
}
