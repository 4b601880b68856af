package harness

import (
	"embed"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"ringbench/backends"
	"ringbench/workloads"
)

// Profile is a matrix of trials: a list of experiments, each a cartesian
// product of its lists, run over its backends and repeated.
type Profile struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Warmup      Duration `yaml:"warmup"`
	Duration    Duration `yaml:"duration"`
	Repeats     int      `yaml:"repeats"`
	Topology    string   `yaml:"topology"` // default for experiments; "auto" = veth where root allows, else loopback
	Backends    []string `yaml:"backends"` // default for experiments
	Cores       int      `yaml:"cores"`
	// MaxAttempts bounds the runs of a trial flagged noisy (default 3).
	MaxAttempts int `yaml:"max_attempts"`
	// Seed orders the trials within each round of repeats. The bench
	// command sets it from --seed, or from the clock, and prints it.
	Seed int64 `yaml:"seed"`
	// Hosts places the two sides of the hosts topology, for experiments
	// on it; bench's --client-host and related flags override it.
	Hosts       *HostsConfig `yaml:"hosts"`
	Experiments []Experiment `yaml:"experiments"`
}

// Experiment is one family of trials.
type Experiment struct {
	Name      string    `yaml:"name"`
	Backends  []string  `yaml:"backends"`
	Topology  string    `yaml:"topology"`
	Workload  string    `yaml:"workload"`
	Direction string    `yaml:"direction"`
	Proto     []string  `yaml:"proto"`
	Size      []int     `yaml:"size"`
	Conns     []int     `yaml:"conns"`
	Depth     []int     `yaml:"depth"`
	Rate      []float64 `yaml:"rate"` // 0 = closed loop
	Arrival   string    `yaml:"arrival"`
	Repeats   int       `yaml:"repeats"`
	Cores     []int     `yaml:"cores"`
	// Options are backend options passed to every server of the experiment.
	Options map[string]string `yaml:"options"`
	// NDR makes the experiment a search for each configuration's maximum
	// sustainable rate (`ringbench ndr`) instead of a matrix of trials:
	// the search sets the rate and runs each step once, so rate and
	// repeats are not given. bench runs the searches after the matrix.
	NDR *NDRSpec `yaml:"ndr"`
}

// NDRSpec is a profile's maximum-sustainable-rate search: the criteria and
// bounds of harness.Search, with its defaults where a key is left out.
type NDRSpec struct {
	Loss      float64 `yaml:"loss"`      // largest loss ratio: 0 for NDR, e.g. 0.005 for PDR
	P99US     float64 `yaml:"p99_us"`    // largest p99 latency, µs; required
	Precision float64 `yaml:"precision"` // bisect until (hi − lo) / hi ≤ this; default 0.05
	MinRate   float64 `yaml:"min_rate"`  // the first step, ops/s; default 1000
	MaxRate   float64 `yaml:"max_rate"`  // 0: a closed-loop trial's rate × UpperBoundMargin
	Factor    float64 `yaml:"factor"`    // coarse step; default 2
}

// DefaultMinRate is a search's first step when the profile gives none, as
// the ndr command's --min-rate.
const DefaultMinRate = 1000

// Search is the spec as a search, checked.
func (n NDRSpec) Search() (Search, error) {
	s := Search{Criteria: Criteria{Loss: n.Loss, P99US: n.P99US, RateTolerance: DefaultRateTolerance},
		MinRate: n.MinRate, MaxRate: n.MaxRate, Factor: n.Factor, Precision: n.Precision}
	if s.MinRate == 0 {
		s.MinRate = DefaultMinRate
	}
	if s.MaxRate != 0 && s.MaxRate < s.MinRate {
		return s, fmt.Errorf("ndr: max_rate %g is below min_rate %g", s.MaxRate, s.MinRate)
	}
	if s.MaxRate == 0 {
		// Checked against its lower bound until a closed-loop trial sets it.
		probe := s
		probe.MaxRate = s.MinRate
		_, err := probe.withDefaults()
		return s, wrapNDR(err)
	}
	_, err := s.withDefaults()
	return s, wrapNDR(err)
}

func wrapNDR(err error) error {
	if err != nil {
		return fmt.Errorf("ndr: %w", err)
	}
	return nil
}

// NDRPlan is one search of a profile: a configuration (its Rate unset)
// and the search to run on it.
type NDRPlan struct {
	Experiment string
	Trial      Trial
	Search     Search
}

// Duration reads "2s" style durations from YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

//go:embed profiles/*.yaml
var builtin embed.FS

// Profiles lists the built-in profile names.
func Profiles() []string {
	ents, _ := builtin.ReadDir("profiles")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// LoadProfile reads a built-in profile by name, or a YAML file by path.
func LoadProfile(nameOrPath string) (*Profile, error) {
	b, err := builtin.ReadFile("profiles/" + nameOrPath + ".yaml")
	if err != nil {
		b, err = os.ReadFile(nameOrPath)
		if err != nil {
			return nil, fmt.Errorf("unknown profile %q: neither a built-in (%s) nor a readable file", nameOrPath, strings.Join(Profiles(), ", "))
		}
	}
	return ParseProfile(b)
}

// ParseProfile decodes and checks a profile. Unknown keys are errors, so a
// typo does not silently drop a dimension of the matrix.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse profile: %w", err)
	}
	if len(p.Experiments) == 0 {
		return nil, fmt.Errorf("parse profile: no experiments")
	}
	if p.Warmup == 0 {
		p.Warmup = Duration(time.Second)
	}
	if p.Duration == 0 {
		p.Duration = Duration(3 * time.Second)
	}
	if p.Repeats < 0 {
		return nil, fmt.Errorf("parse profile: repeats %d: want at least 1 (or leave it out)", p.Repeats)
	}
	if p.MaxAttempts < 0 {
		return nil, fmt.Errorf("parse profile: max_attempts %d: want at least 1 (or leave it out)", p.MaxAttempts)
	}
	if p.Repeats == 0 {
		p.Repeats = 1
	}
	if p.Cores == 0 {
		p.Cores = 1
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 3
	}
	if p.Topology == "" {
		p.Topology = "auto"
	}
	if p.Hosts != nil {
		if err := p.Hosts.Check(); err != nil {
			return nil, fmt.Errorf("parse profile: hosts: %w", err)
		}
	}
	if _, _, err := p.expand("loopback"); err != nil {
		return nil, err
	}
	return &p, nil
}

// Trials expands the profile's matrix: every experiment but the searches
// (see Searches). auto is the topology that "auto" stands for. Each
// experiment runs in rounds: one repeat of each of its configurations and
// backends per round, shuffled with p.Seed (see rounds).
func (p *Profile) Trials(auto string) ([]Trial, error) {
	trials, _, err := p.expand(auto)
	return trials, err
}

// Searches lists the profile's maximum-sustainable-rate searches, one per
// configuration and backend of each experiment with an ndr key, in matrix
// order. Their trial indexes follow the matrix's.
func (p *Profile) Searches(auto string) ([]NDRPlan, error) {
	_, plans, err := p.expand(auto)
	return plans, err
}

func (p *Profile) expand(auto string) ([]Trial, []NDRPlan, error) {
	var out []Trial
	var plans []NDRPlan
	idx := map[string]int{}
	total := 0 // trials and searches so far
	for i, e := range p.Experiments {
		where := fmt.Sprintf("experiment %d", i+1)
		if e.Name != "" {
			where += " (" + e.Name + ")"
		}
		if e.Repeats < 0 {
			return nil, nil, fmt.Errorf("%s: repeats %d: want at least 1 (or leave it out)", where, e.Repeats)
		}
		var search Search
		if e.NDR != nil {
			var err error
			if search, err = e.NDR.Search(); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", where, err)
			}
			if len(e.Rate) > 0 || e.Repeats > 1 {
				return nil, nil, fmt.Errorf("%s: an ndr search sets the rate and runs each step once: give no rate or repeats", where)
			}
		}
		bs := e.Backends
		if len(bs) == 0 {
			bs = p.Backends
		}
		if len(bs) == 0 {
			return nil, nil, fmt.Errorf("%s: no backends", where)
		}
		for _, b := range bs {
			if b == "external" {
				return nil, nil, fmt.Errorf("%s: the external backend is run with `ringbench run --backend external`", where)
			}
			if _, err := backends.Lookup(b); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		topo := e.Topology
		if topo == "" {
			topo = p.Topology
		}
		if topo == "auto" {
			topo = auto
		}
		reps := e.Repeats
		if reps == 0 {
			reps = p.Repeats
		}
		protos := or(e.Proto, []string{"tcp"})
		sizes := or(e.Size, []int{64})
		conns := or(e.Conns, []int{1})
		depths := or(e.Depth, []int{1})
		rates := or(e.Rate, []float64{0})
		cores := or(e.Cores, []int{p.Cores})
		for _, nc := range cores {
			if nc < 1 {
				return nil, nil, fmt.Errorf("%s: cores must be at least 1, got %d", where, nc)
			}
		}
		// The size is known before the matrix is built: count it first,
		// each factor bounded so the product cannot overflow.
		n := reps
		if e.NDR != nil {
			n = 1
		}
		for _, f := range []int{len(protos), len(sizes), len(conns), len(depths), len(rates), len(cores), len(bs)} {
			if n = min(n*f, MaxTrials+1); n > MaxTrials-total {
				return nil, nil, fmt.Errorf("%s: the profile holds more than %d trials, the most one may hold (days of running): split it, or give fewer values or repeats", where, MaxTrials)
			}
		}
		total += n
		var configs []Trial
		for _, proto := range protos {
			for _, size := range sizes {
				for _, c := range conns {
					for _, d := range depths {
						for _, rate := range rates {
							for _, nc := range cores {
								for _, b := range bs {
									t := Trial{
										Backend: b, Workload: workloads.Kind(e.Workload),
										Direction: workloads.Direction(e.Direction), Proto: backends.Proto(proto),
										Topology: topo, Conns: c, Depth: d, Size: size, Rate: rate,
										Arrival: workloads.Arrival(e.Arrival), Cores: nc,
										Warmup: time.Duration(p.Warmup), Duration: time.Duration(p.Duration),
										Options: e.Options,
									}
									if t.Workload == "" {
										t.Workload = workloads.Echo
									}
									if t.Workload == workloads.Stream && t.Direction == "" {
										t.Direction = workloads.Up
									}
									if t.Arrival == "" {
										t.Arrival = workloads.Constant
									}
									if err := t.Check(); err != nil {
										return nil, nil, fmt.Errorf("%s: %w", where, err)
									}
									// Trial indexes count configurations in
									// matrix order, so repeats share one.
									k := fmt.Sprintf("%+v", trialKey(t))
									if _, ok := idx[k]; !ok {
										idx[k] = len(idx)
									}
									t.Index = idx[k]
									configs = append(configs, t)
								}
							}
						}
					}
				}
			}
		}
		if e.NDR != nil {
			for _, t := range configs {
				plans = append(plans, NDRPlan{Experiment: e.Name, Trial: t, Search: search})
			}
			continue
		}
		out = append(out, rounds(configs, reps, p.Seed, uint64(i))...)
	}
	// A search's trials are numbered after the matrix's configurations.
	for i := range plans {
		plans[i].Trial.Index += len(idx)
	}
	return out, plans, nil
}

// rounds runs repeat r of every configuration before repeat r+1 of any, in
// an order shuffled afresh each round, so that drift over the run (a
// neighbour's load, thermal state, page cache) falls on every backend
// alike instead of on whichever ran last. The order depends only on the
// seed and the experiment's place in the profile, so a run can be
// repeated trial for trial.
func rounds(configs []Trial, reps int, seed int64, experiment uint64) []Trial {
	rng := rand.New(rand.NewPCG(uint64(seed), experiment))
	out := make([]Trial, 0, len(configs)*reps)
	for r := 0; r < reps; r++ {
		round := slices.Clone(configs)
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		for _, t := range round {
			t.Repeat = r
			out = append(out, t)
		}
	}
	return out
}

func trialKey(t Trial) Trial { t.Index, t.Repeat = 0, 0; return t }

func or[T any](v, def []T) []T {
	if len(v) == 0 {
		return def
	}
	return v
}
