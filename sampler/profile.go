package sampler

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"ringbench/internal/outdir"
	"ringbench/sampler/internal/perf"
)

// Breakdown is where the server cores' sampled time went.
type Breakdown struct {
	// Event is the sampled event and Hz its rate per CPU.
	Event string `json:"event"`
	Hz    int    `json:"hz"`
	// Shares maps each category with samples to its share of the cores'
	// non-idle sampled time; the shares sum to 1 (none when every sample
	// was idle).
	Shares map[string]float64 `json:"shares"`
	// Counts maps each category, idle included, to its number of samples.
	Counts map[string]int `json:"counts"`
	// Samples is the number of non-idle samples, the shares' denominator;
	// Idle the number of samples of a halted core.
	Samples int `json:"samples"`
	Idle    int `json:"idle"`
	// Foreign counts samples of other tasks on the server cores: neither
	// the server's processes, nor its guests (Config.Guests), nor the idle
	// task, nor a core's ksoftirqd, nor interrupt work (which is likely the
	// server's own receive path, whatever task it interrupted). Each
	// stands for one sampling period of its core: ForeignShare is other
	// tasks' share of the cores' time over the window, the window's noise.
	Foreign int `json:"foreign"`
	// Window is the time from Start to Stop, CPUs the cores sampled: a
	// halted core takes (almost) no samples, so shares of the cores' time
	// are counted against the window, not against the samples.
	Window time.Duration `json:"window_ns"`
	CPUs   int           `json:"cpus"`
	// Lost counts samples the kernel dropped because a ring was full;
	// Throttled, the times it slowed sampling down for its own cost.
	Lost      uint64 `json:"lost"`
	Throttled uint64 `json:"throttled"`
}

// Unsampled names, in a split of the busy time (Breakdown.Split), the
// part no sample saw.
const Unsampled = "unsampled"

// SampledNs is the time the non-idle samples of a cpu-clock event stand
// for: one period each. It is 0 for a cycles event, whose samples are not
// of time.
func (b Breakdown) SampledNs() float64 {
	if b.Event != perf.CPUClock.String() || b.Hz <= 0 {
		return 0
	}
	return float64(b.Samples) * float64(int64(1e9/b.Hz))
}

// Coverage is the share of the cores' busy time over the window (busyNs:
// wall − idle, of the same cores, over the same window) that the non-idle
// samples stand for, or false where it cannot be known (a cycles event, no
// busy time). A cpu-clock sample is taken wherever its timer fires on a
// busy core, so coverage near 1 is what a sampler that sees everything
// gets; on a guest whose kernel drops the idle task's samples, the time
// the idle task works without halting (interrupts and the softirqs they
// raise, leaving idle, switching to the woken task) is busy and unseen,
// and coverage falls with every wake-up from idle.
func (b Breakdown) Coverage(busyNs float64) (float64, bool) {
	sampled := b.SampledNs()
	if sampled <= 0 || busyNs <= 0 {
		return 0, false
	}
	return sampled / busyNs, true
}

// Part is one category's part of the busy time: its share, and that
// share of the window's cycles per op.
type Part struct {
	Share       float64
	CyclesPerOp float64
}

// Split splits the busy time (and so cyclesPerOp, of the same cores over
// the same window) by where the samples say it went. Each category gets
// its share of the samples × coverage, and Unsampled the rest, 1 −
// coverage: the time no sample saw is not handed to the categories that
// were seen, since what is missed is not a random part of the time (the
// idle task's work: see Coverage). A coverage of 1 or more (sampling noise,
// another clock's rounding), or an unknown one (pass 1), splits it all by
// the shares.
func (b Breakdown) Split(cyclesPerOp, coverage float64) map[string]Part {
	seen := min(coverage, 1)
	out := make(map[string]Part, len(b.Shares)+1)
	for c, sh := range b.Shares {
		out[c] = Part{Share: sh * seen, CyclesPerOp: sh * seen * cyclesPerOp}
	}
	if seen < 1 && len(b.Shares) > 0 {
		out[Unsampled] = Part{Share: 1 - seen, CyclesPerOp: (1 - seen) * cyclesPerOp}
	}
	return out
}

// Classified is one sample's verdict.
type Classified struct {
	Category Category
	PID, TID uint32
	CPU      uint32
	// InInterrupt: taken in interrupt or softirq work (see InInterrupt).
	InInterrupt bool
}

// Result is what a window's samples became.
type Result struct {
	Profile   *profile.Profile
	Breakdown Breakdown
	Samples   []Classified
}

// Profile symbolizes and classifies the window's samples, and builds the
// pprof profile and the breakdown. Call it after Stop; it does not touch
// the server.
func (s *Sampler) Profile() (*Result, error) {
	if s.stopped.IsZero() {
		return nil, errors.New("build profile: sampler not stopped")
	}
	b := newBuilder(s)
	res := &Result{Profile: b.p, Breakdown: Breakdown{
		Event:     s.kind.String(),
		Hz:        s.cfg.Hz,
		Shares:    map[string]float64{},
		Counts:    map[string]int{},
		Lost:      s.records.Lost,
		Window:    s.stopped.Sub(s.started),
		CPUs:      len(s.cfg.CPUs),
		Throttled: s.records.Throttled,
	}}
	weights := map[Category]float64{}
	var total float64
	for i := range s.records.Samples {
		smp := &s.records.Samples[i]
		cat, irq, locs := b.sample(smp)
		res.Samples = append(res.Samples, Classified{Category: cat, PID: smp.PID, TID: smp.TID, CPU: smp.CPU, InInterrupt: irq})
		res.Breakdown.Counts[string(cat)]++
		if smp.PID != 0 && !irq && !s.isServer(smp.PID) && !s.isGuest(smp.PID) && !strings.HasPrefix(b.comm(smp.PID), "ksoftirqd/") {
			res.Breakdown.Foreign++
		}
		w := float64(weight(smp))
		if cat == Idle {
			res.Breakdown.Idle++
		} else {
			res.Breakdown.Samples++
			weights[cat] += w
			total += w
		}
		b.p.Sample = append(b.p.Sample, &profile.Sample{
			Location: locs,
			Value:    []int64{1, weight(smp)},
			Label:    map[string][]string{"category": {string(cat)}, "comm": {b.comm(smp.PID)}},
			NumLabel: map[string][]int64{"pid": {int64(smp.PID)}, "tid": {int64(smp.TID)}, "cpu": {int64(smp.CPU)}},
		})
	}
	for c, w := range weights {
		res.Breakdown.Shares[string(c)] = w / total
	}
	b.p.Comments = append(b.p.Comments,
		fmt.Sprintf("ringbench sampler: %s at %d Hz per CPU on CPUs %v, server pids %v", s.kind, s.cfg.Hz, s.cfg.CPUs, s.cfg.PIDs),
		fmt.Sprintf("%d samples (%d idle), %d lost, %d throttled", len(s.records.Samples), res.Breakdown.Idle, s.records.Lost, s.records.Throttled))
	if err := b.p.CheckValid(); err != nil {
		return nil, fmt.Errorf("build profile: %w", err)
	}
	return res, nil
}

// weight is what a sample stands for: its period (nanoseconds of
// cpu-clock, or cycles), at least 1.
func weight(smp *perf.Sample) int64 {
	if smp.Period == 0 {
		return 1
	}
	return int64(smp.Period)
}

// Write writes the profile gzipped, as go tool pprof reads it.
func (r *Result) Write(w io.Writer) error {
	return r.Profile.Write(w)
}

// WriteFile writes the profile to path, replacing whatever is there (a
// link included) rather than writing through it.
func (r *Result) WriteFile(path string) error {
	if err := outdir.WriteFile(path, r.Write); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	return nil
}

// builder interns the profile's mappings, functions and locations.
type builder struct {
	s         *Sampler
	p         *profile.Profile
	kernelMap *profile.Mapping
	userMaps  map[userMapKey]*profile.Mapping
	funcs     map[funcKey]*profile.Function
	locs      map[locKey]*profile.Location
	frames    []Frame
}

type userMapKey struct {
	pid uint32
	idx int
}

type funcKey struct{ name, file string }

type locKey struct {
	kernel bool
	pid    uint32 // user addresses are per process
	addr   uint64
	root   string // a comm root frame
}

func newBuilder(s *Sampler) *builder {
	valueType := &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
	if s.kind == perf.Cycles {
		valueType = &profile.ValueType{Type: "cycles", Unit: "count"}
	}
	period := int64(1e9 / s.cfg.Hz)
	if s.kind == perf.Cycles {
		period = 0 // adaptive: each sample carries its own
	}
	b := &builder{
		s: s,
		p: &profile.Profile{
			SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, valueType},
			DefaultSampleType: valueType.Type,
			PeriodType:        valueType,
			Period:            period,
			TimeNanos:         s.started.UnixNano(),
			DurationNanos:     s.stopped.Sub(s.started).Nanoseconds(),
		},
		userMaps: map[userMapKey]*profile.Mapping{},
		funcs:    map[funcKey]*profile.Function{},
		locs:     map[locKey]*profile.Location{},
	}
	b.kernelMap = &profile.Mapping{ID: 1, Start: 0, Limit: ^uint64(0), File: "[kernel.kallsyms]", HasFunctions: true}
	b.p.Mapping = append(b.p.Mapping, b.kernelMap)
	return b
}

func (b *builder) comm(pid uint32) string {
	if p := b.s.procs[pid]; p != nil {
		return p.comm
	}
	return fmt.Sprintf("pid %d", pid)
}

// sample symbolizes one sample into its frames and locations (leaf first,
// the process's comm as the root) and classifies it.
func (b *builder) sample(smp *perf.Sample) (Category, bool, []*profile.Location) {
	b.frames = b.frames[:0]
	var locs []*profile.Location
	kernel, user := smp.Kernel, smp.User
	if len(kernel) == 0 && len(user) == 0 && smp.IP != 0 {
		// No chain (it could not be unwound): the IP alone.
		if smp.IP >= 1<<63 {
			kernel = []uint64{smp.IP}
		} else {
			user = []uint64{smp.IP}
		}
	}
	for i, addr := range kernel {
		look := addr
		if i > 0 {
			look-- // a return address: the call is the byte before
		}
		name, ok := b.s.kernel.lookup(look)
		if !ok {
			name = "[kernel]"
		}
		b.frames = append(b.frames, Frame{Func: name, Kernel: true})
		locs = append(locs, b.location(locKey{kernel: true, addr: addr}, name, "[kernel.kallsyms]", b.kernelMap))
	}
	proc := b.s.procs[smp.PID]
	for i, addr := range user {
		look := addr
		if i > 0 {
			look--
		}
		name, file, idx := "[unknown]", "", -1
		if proc != nil {
			name, file, idx = proc.symbolize(look)
		}
		b.frames = append(b.frames, Frame{Func: name, File: file})
		var m *profile.Mapping
		if idx >= 0 {
			m = b.userMapping(smp.PID, proc, idx)
		}
		locs = append(locs, b.location(locKey{pid: smp.PID, addr: addr}, name, file, m))
	}
	chain := Chain{Frames: b.frames, IdleTask: smp.PID == 0, Server: b.s.isServer(smp.PID)}
	if len(kernel) == 0 && len(user) > 0 {
		chain.AfterSyscall = b.s.afterSyscall[pidIP{smp.PID, user[0]}]
	}
	comm := b.comm(smp.PID)
	locs = append(locs, b.location(locKey{root: comm}, comm, "", nil))
	return Classify(chain), InInterrupt(chain), locs
}

func (b *builder) userMapping(pid uint32, proc *process, idx int) *profile.Mapping {
	k := userMapKey{pid, idx}
	if m, ok := b.userMaps[k]; ok {
		return m
	}
	mp := proc.maps[idx]
	m := &profile.Mapping{
		ID:           uint64(len(b.p.Mapping) + 1),
		Start:        mp.start,
		Limit:        mp.end,
		Offset:       mp.offset,
		File:         mp.path,
		HasFunctions: proc.files[idx] != nil,
	}
	b.p.Mapping = append(b.p.Mapping, m)
	b.userMaps[k] = m
	return m
}

func (b *builder) location(k locKey, name, file string, m *profile.Mapping) *profile.Location {
	if l, ok := b.locs[k]; ok {
		return l
	}
	fk := funcKey{name, file}
	fn, ok := b.funcs[fk]
	if !ok {
		fn = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: name, Filename: file}
		b.p.Function = append(b.p.Function, fn)
		b.funcs[fk] = fn
	}
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Mapping: m, Address: k.addr, Line: []profile.Line{{Function: fn}}}
	b.p.Location = append(b.p.Location, l)
	b.locs[k] = l
	return l
}
