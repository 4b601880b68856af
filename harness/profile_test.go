package harness

import (
	"strings"
	"testing"
)

func TestParseProfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty", "name: x\n", "no experiments"},
		{"unknown key", "name: x\nbogus: 1\nexperiments: [{workload: echo}]\n", "field bogus not found"},
		{"bad duration", "name: x\nduration: soon\nexperiments: [{workload: echo}]\n", "bad duration"},
		{"no backends", "name: x\nexperiments: [{workload: echo}]\n", "no backends"},
		{"unknown backend", "name: x\nbackends: [nosuch]\nexperiments: [{workload: echo}]\n", `unknown backend "nosuch"`},
		{"ndr without p99", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, ndr: {loss: 0}}]\n", "p99 limit must be positive"},
		{"ndr loss of one", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, ndr: {loss: 1, p99_us: 500}}]\n", "loss limit"},
		{"ndr max below min", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, ndr: {p99_us: 500, min_rate: 5000, max_rate: 100}}]\n", "max_rate 100 is below min_rate 5000"},
		{"ndr with a rate", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, rate: [1000], ndr: {p99_us: 500}}]\n", "give no rate or repeats"},
		{"ndr with repeats", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, repeats: 3, ndr: {p99_us: 500}}]\n", "give no rate or repeats"},
		{"ndr unknown key", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, ndr: {p99: 500}}]\n", "field p99 not found"},
		{"zero cores", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, cores: [0]}]\n", "cores"},
		// These were accepted, or found only when the trials ran.
		{"negative repeats", "name: x\nbackends: [epoll]\nrepeats: -1\nexperiments: [{workload: echo}]\n", "repeats -1"},
		{"negative experiment repeats", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, repeats: -2}]\n", "repeats -2"},
		{"unknown topology", "name: x\nbackends: [epoll]\ntopology: mesh\nexperiments: [{workload: echo}]\n", `unknown topology "mesh"`},
		{"bad option", "name: x\nbackends: [uring]\nexperiments: [{workload: echo, options: {batch: \"-1\"}}]\n", "batch"},
		{"short duration", "name: x\nbackends: [epoll]\nduration: 99ms\nexperiments: [{workload: echo}]\n", "at least 100ms"},
		{"infinite rate", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, rate: [.inf]}]\n", "rate +Inf"},
		{"over the cap", "name: x\nbackends: [epoll]\nexperiments: [{workload: echo, conns: [1, 2], repeats: 5000}, {workload: echo, repeats: 1}]\n",
			"experiment 2: the profile holds more than 10000 trials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProfile([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseProfile: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// An experiment with an ndr key is a search per configuration, not
// trials; cores expand like any other list.
func TestProfileSearchesAndCores(t *testing.T) {
	p, err := ParseProfile([]byte(`name: x
backends: [epoll, uring]
repeats: 2
experiments:
  - name: scaling
    workload: echo
    proto: [udp]
    cores: [1, 2, 4]
  - name: max-sustainable
    backends: [epoll, c-epoll, dpdk]
    workload: echo
    proto: [udp]
    conns: [16]
    depth: [4]
    ndr: {loss: 0.005, p99_us: 2000, precision: 0.1, min_rate: 2000}
`))
	if err != nil {
		t.Fatal(err)
	}
	trials, err := p.Trials("veth")
	if err != nil {
		t.Fatal(err)
	}
	// 2 backends × 3 core counts × 2 repeats; none from the search.
	if len(trials) != 12 {
		t.Fatalf("%d trials, want 12", len(trials))
	}
	cores := map[int]int{}
	maxIndex := 0
	for _, tr := range trials {
		cores[tr.Cores]++
		maxIndex = max(maxIndex, tr.Index)
	}
	if cores[1] != 4 || cores[2] != 4 || cores[4] != 4 {
		t.Errorf("trials per core count %v, want 4 each of 1, 2, 4", cores)
	}
	plans, err := p.Searches("veth")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pl := range plans {
		names = append(names, pl.Trial.Backend)
		s := pl.Search
		if pl.Experiment != "max-sustainable" || s.Loss != 0.005 || s.P99US != 2000 || s.Precision != 0.1 ||
			s.MinRate != 2000 || s.MaxRate != 0 || s.RateTolerance != DefaultRateTolerance {
			t.Errorf("plan %+v", pl)
		}
		if tr := pl.Trial; tr.Rate != 0 || tr.Proto != "udp" || tr.Conns != 16 || tr.Depth != 4 || tr.Topology != "veth" || tr.Cores != 1 {
			t.Errorf("search trial %+v", tr)
		}
		if pl.Trial.Index <= maxIndex {
			t.Errorf("search trial index %d collides with the matrix's (up to %d)", pl.Trial.Index, maxIndex)
		}
	}
	if strings.Join(names, " ") != "epoll c-epoll dpdk" {
		t.Errorf("searches %v, want epoll c-epoll dpdk in order", names)
	}
	// Defaults: a spec with only p99 searches from DefaultMinRate.
	s, err := NDRSpec{P99US: 100}.Search()
	if err != nil || s.MinRate != DefaultMinRate || s.MaxRate != 0 {
		t.Errorf("NDRSpec{P99US: 100}.Search() = %+v, %v", s, err)
	}
}

// The built-in full profile has the scaling experiment and the searches
// the report draws.
func TestFullProfileScalingAndNDR(t *testing.T) {
	p, err := LoadProfile("full")
	if err != nil {
		t.Fatal(err)
	}
	trials, err := p.Trials("veth")
	if err != nil {
		t.Fatal(err)
	}
	scaled := map[string]map[int]bool{}
	for _, tr := range trials {
		if tr.Cores > 1 {
			if scaled[tr.Backend] == nil {
				scaled[tr.Backend] = map[int]bool{}
			}
			scaled[tr.Backend][tr.Cores] = true
		}
	}
	for _, b := range []string{"epoll", "uring", "c-epoll", "c-uring", "dpdk"} {
		if !scaled[b][2] {
			t.Errorf("full profile: %s has no trial on 2 cores (%v)", b, scaled[b])
		}
	}
	plans, err := p.Searches("veth")
	if err != nil {
		t.Fatal(err)
	}
	searched := map[string]bool{}
	for _, pl := range plans {
		searched[pl.Trial.Backend] = true
		if pl.Trial.Proto != "udp" || pl.Trial.Workload != "echo" {
			t.Errorf("search %s: %s/%s, want UDP echo", pl.Trial.Backend, pl.Trial.Workload, pl.Trial.Proto)
		}
	}
	for _, b := range []string{"epoll", "uring", "c-epoll", "c-uring", "dpdk"} {
		if !searched[b] {
			t.Errorf("full profile: no ndr search of %s", b)
		}
	}
}

func FuzzParseProfile(f *testing.F) {
	for _, name := range Profiles() {
		b, err := builtin.ReadFile("profiles/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: x\nexperiments: [{workload: echo, conns: [-1]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any input gives a profile or an error, never a panic.
		ParseProfile(b)
	})
}
