package plots

import (
	"math"
	"slices"
	"strings"
	"testing"

	"ringbench/results"
	"ringbench/sampler"
)

// plots reads results only, so it repeats the sampler's categories; this
// holds the two lists equal.
func TestBreakdownCategoriesAreTheSamplers(t *testing.T) {
	var want []string
	for _, c := range sampler.Categories {
		want = append(want, string(c))
	}
	if strings.Join(breakdownCategories, " ") != strings.Join(want, " ") {
		t.Errorf("breakdownCategories = %q, sampler.Categories = %q", breakdownCategories, want)
	}
	for _, c := range breakdownCategories {
		if categoryGloss[c] == "" || categoryColor[c] == nil {
			t.Errorf("category %s has no gloss or colour", c)
		}
	}
}

func TestBaselineOf(t *testing.T) {
	for _, tc := range []struct {
		label, of string
		ok        bool
	}{{"c-epoll", "epoll", true}, {"c-uring", "uring", true}, {"epoll", "", false}, {"uring-sqpoll", "", false}, {"c-", "", false}} {
		of, ok := baselineOf(tc.label)
		if of != tc.of || ok != tc.ok {
			t.Errorf("baselineOf(%q) = %q, %v; want %q, %v", tc.label, of, ok, tc.of, tc.ok)
		}
	}
	labels := []string{"dpdk", "c-uring", "uring-sqpoll", "c-epoll", "uring", "epoll"}
	sortLabels(labels)
	if got := strings.Join(labels, " "); got != "epoll c-epoll uring c-uring uring-sqpoll dpdk" {
		t.Errorf("sorted labels = %s, want each C baseline right after its Go backend", got)
	}
}

// TestBreakdownSentence pins what the text says a path removed, kept and
// added, from hand-made medians.
func TestBreakdownSentence(t *testing.T) {
	bd := func(label string, vals map[string]float64) *breakdown {
		b := &breakdown{label: label, cats: map[string]results.Stat{}, n: 6}
		for _, c := range breakdownCategories {
			v := vals[c]
			b.cats[c] = results.StatOf([]float64{v, v, v, v, v, v})
			b.order = append(b.order, c)
		}
		return b
	}
	epoll := bd("epoll", map[string]float64{"syscall": 3000, "net": 5000, "dev": 1500, "app": 1000})
	uring := bd("uring", map[string]float64{"syscall": 700, "net": 4900, "dev": 1500, "io_uring": 1600, "app": 1000})
	dpdk := bd("dpdk", map[string]float64{"poll": 20000, "app": 3000})
	for _, tc := range []struct {
		b    *breakdown
		want []string
	}{
		{uring, []string{"uring spent 700 cycles/op in syscall against epoll's 3000", "more in io_uring 1600 (epoll: none)",
			"net (the kernel's TCP/IP and UDP, sockets, netfilter) 4900 vs 5000"}},
		{dpdk, []string{"dpdk spent no syscall (epoll's: 3000), no net (epoll's: 5000) and no dev (epoll's: 1500)",
			"poll 20000 (epoll: none)"}},
	} {
		s := breakdownSentence(tc.b, epoll, breakdownCategories, true)
		for _, w := range tc.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: sentence %q lacks %q", tc.b.label, s, w)
			}
		}
	}
	// The first screen names the largest category both kept that says
	// where the time went, not the busy time no sample saw.
	cats := append(slices.Clone(breakdownCategories), unsampled)
	epollU := bd("epoll", map[string]float64{"syscall": 3000, "net": 5000, "dev": 1500, unsampled: 9000})
	uringU := bd("uring", map[string]float64{"syscall": 700, "net": 4900, "dev": 1500, "io_uring": 1600, unsampled: 9100})
	for _, c := range []string{"net", unsampled} {
		uringU.cats[c], epollU.cats[c] = results.StatOf(slices.Repeat([]float64{uringU.center(c)}, 6)), results.StatOf(slices.Repeat([]float64{epollU.center(c)}, 6))
	}
	uringU.order, epollU.order = cats, cats
	s := breakdownSentence(uringU, epollU, cats, true)
	if !strings.Contains(s, "kept about the same on both: net (") || strings.Contains(s, unsampled) {
		t.Errorf("the first screen's kept is not the largest sampled category: %q", s)
	}
}

// The headline bars stand as tall as the cost windows' cycles per op that
// the first finding quotes: the profile window's shares × the cost
// window's cycles, not the profile window's own cycles per op.
func TestBreakdownIsScaledToTheCostWindow(t *testing.T) {
	r, p := syntheticHeadline(t)
	n := 0
	for _, l := range r.labelsAt(p) {
		b, ok := r.breakdownAt(l, p)
		if !ok {
			continue
		}
		n++
		cost, _ := r.stat(l, p, results.MCyclesPerOp)
		if b.total.Center != cost.Center {
			t.Errorf("%s: bar total %v, the cost windows' cycles/op %v", l, b.total.Center, cost.Center)
		}
		if sum := sumOf(b); math.Abs(sum/cost.Center-1) > 0.02 {
			t.Errorf("%s: segments sum to %v, the cost windows' cycles/op is %v", l, sum, cost.Center)
		}
	}
	if n < 2 {
		t.Fatalf("only %d paths with a breakdown at %s", n, p)
	}
}

// The first screen has three to five findings, each with its n and its
// confidence (a test's verdict, or that there was none).
func TestKeyFindings(t *testing.T) {
	r, p := syntheticHeadline(t)
	fs := r.keyFindings(p)
	if len(fs) < 3 || len(fs) > maxKeyFindings {
		t.Fatalf("%d key findings, want 3 to %d: %q", len(fs), maxKeyFindings, fs)
	}
	for _, f := range fs {
		if !strings.Contains(f, "n=") || !(strings.Contains(f, "significant, p=") || strings.Contains(f, "no test")) {
			t.Errorf("a key finding without its n and confidence: %q", f)
		}
	}
}

// The coverage caveat appears only where a trial's samples missed busy
// time, and names the paths that missed more than 1 − coverageLimit.
func TestCoverageCaveat(t *testing.T) {
	if unsampled != sampler.Unsampled {
		t.Fatalf("plots names the unsampled part %q, the sampler %q", unsampled, sampler.Unsampled)
	}
	rec := func(backend string, coverage float64) results.Record {
		r := results.Record{Status: results.StatusOK, Config: results.Config{Backend: backend, Variant: "default"},
			ProfileCoverage: &coverage, CyclesBreakdown: map[string]results.BreakdownShare{"app": {Share: min(coverage, 1)}}}
		if coverage < 1 {
			r.CyclesBreakdown[unsampled] = results.BreakdownShare{Share: 1 - coverage}
		}
		return r
	}
	for _, tc := range []struct {
		name      string
		recs      []results.Record
		want, not []string
	}{
		{"all seen", []results.Record{rec("dpdk", 1.0), rec("epoll", 1.02)}, nil, []string{"unsampled"}},
		{"a little unseen", []results.Record{rec("dpdk", 1.0), rec("epoll", 0.9)}, []string{`the rest is the "unsampled" segment`}, []string{"less than 80%"}},
		{"much unseen", []results.Record{rec("dpdk", 1.0), rec("uring", 0.37), rec("epoll", 0.58)},
			[]string{`"unsampled" segment`, "In some trials of epoll, uring the samples saw less than 80%"}, []string{"dpdk"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newRun(tc.recs, nil).coverageCaveat()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("caveat %q lacks %q", got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("caveat %q has %q", got, n)
				}
			}
			if len(tc.want) == 0 && got != "" {
				t.Errorf("caveat %q, want none", got)
			}
		})
	}
}

// syntheticHeadline is the synthetic run and its headline point.
func syntheticHeadline(t *testing.T) (*run, point) {
	t.Helper()
	recs, lesson := synthetic(t)
	r := newRun(recs, lesson)
	_, p, ok := r.headlinePoint()
	if !ok {
		t.Fatal("no headline point")
	}
	return r, p
}
