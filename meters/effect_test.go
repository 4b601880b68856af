package meters

import (
	"math"
	"strings"
	"testing"

	"ringbench/results"
	"ringbench/sampler"
)

func ptr(v float64) *float64 { return &v }

func TestFillProfile(t *testing.T) {
	// 1000 Hz cpu-clock: 600 samples stand for 0.6 s of busy time.
	clock := sampler.Breakdown{Event: "cpu-clock", Hz: 1000, Samples: 600, Shares: map[string]float64{"app": 0.75, "syscall": 0.25}}
	cycles := sampler.Breakdown{Event: "cycles", Hz: 1000, Samples: 600, Shares: map[string]float64{"app": 1}}
	for _, tc := range []struct {
		name          string
		cost, sampled results.Record
		bd            sampler.Breakdown
		effect        *float64
		coverage      *float64
		parts         map[string]float64 // cycles per op of each category
		note          string
	}{
		{"sampling saves a fifth", results.Record{CyclesPerOp: 10000, CyclesSource: "tsc"},
			results.Record{CyclesPerOp: 8000, CyclesSource: "tsc", BusyNs: 0.6e9}, clock,
			ptr(-0.2), ptr(1), map[string]float64{"app": 6000, "syscall": 2000}, ""},
		{"a quarter unseen", results.Record{CyclesPerOp: 8000, CyclesSource: "perf"},
			results.Record{CyclesPerOp: 8000, CyclesSource: "perf", BusyNs: 0.8e9}, clock,
			ptr(0), ptr(0.75), map[string]float64{"app": 4500, "syscall": 1500, sampler.Unsampled: 2000}, ""},
		{"cycles samples: coverage unknown", results.Record{CyclesPerOp: 8000, CyclesSource: "perf"},
			results.Record{CyclesPerOp: 4000, CyclesSource: "perf", BusyNs: 0.8e9}, cycles,
			ptr(-0.5), nil, map[string]float64{"app": 4000}, ""},
		{"cycles of different sources", results.Record{CyclesPerOp: 8000, CyclesSource: "perf"},
			results.Record{CyclesPerOp: 9000, CyclesSource: "tsc", BusyNs: 0.6e9}, clock,
			nil, ptr(1), map[string]float64{"app": 6750, "syscall": 2250}, "the profile window's effect on cycles per op is not known"},
		{"cost window measured nothing", results.Record{},
			results.Record{CyclesPerOp: 8000, CyclesSource: "tsc", BusyNs: 0.6e9}, clock,
			nil, ptr(1), map[string]float64{"app": 6000, "syscall": 2000}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.cost
			FillProfile(&rec, tc.sampled, tc.bd)
			if !sameFloat(rec.ProfileEffect, tc.effect) {
				t.Errorf("profile effect %v, want %v", deref(rec.ProfileEffect), deref(tc.effect))
			}
			if !sameFloat(rec.ProfileCoverage, tc.coverage) {
				t.Errorf("coverage %v, want %v", deref(rec.ProfileCoverage), deref(tc.coverage))
			}
			if rec.ProfileCyclesPerOp == nil || *rec.ProfileCyclesPerOp != tc.sampled.CyclesPerOp {
				t.Errorf("profile cycles per op %v, want %v", deref(rec.ProfileCyclesPerOp), tc.sampled.CyclesPerOp)
			}
			if len(rec.CyclesBreakdown) != len(tc.parts) {
				t.Errorf("breakdown %v, want %v", rec.CyclesBreakdown, tc.parts)
			}
			for c, want := range tc.parts {
				if got := rec.CyclesBreakdown[c].CyclesPerOp; math.Abs(got-want) > 1e-6 {
					t.Errorf("%s: %v cycles per op, want %v", c, got, want)
				}
			}
			checkNote(t, rec.Notes, tc.note)
		})
	}
}

func TestFillCount(t *testing.T) {
	n := uint64(4000)
	counted := results.Record{Syscalls: &n, SyscallsPerOp: ptr(2), WindowS: 1, CyclesPerOp: 10500, CyclesSource: "tsc",
		SyscallsByName: map[string]float64{"read": 1, "write": 1},
		Notes:          []string{NoSyscallsByName + "some reason", "noisy: unrelated"}}
	for _, tc := range []struct {
		name        string
		cost, count results.Record
		perOp       *float64
		effect      *float64
		sysNote     string
		note        string
	}{
		{"the tracepoint costs 5%", results.Record{CyclesPerOp: 10000, CyclesSource: "tsc"}, counted,
			ptr(2), ptr(0.05), "", "counting window: " + NoSyscallsByName + "some reason"},
		{"nothing counted", results.Record{CyclesPerOp: 10000, CyclesSource: "tsc"}, results.Record{SyscallsNote: "no tracepoint"},
			nil, nil, "not counted: no tracepoint", ""},
		{"cycles of different sources", results.Record{CyclesPerOp: 10000, CyclesSource: "perf"}, counted,
			ptr(2), nil, "", "the counting window's effect on cycles per op is not known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.cost
			FillCount(&rec, tc.count)
			if !sameFloat(rec.SyscallsPerOp, tc.perOp) || !sameFloat(rec.SyscallMeterEffect, tc.effect) {
				t.Errorf("syscalls per op %v, effect %v; want %v, %v", deref(rec.SyscallsPerOp), deref(rec.SyscallMeterEffect), deref(tc.perOp), deref(tc.effect))
			}
			if rec.SyscallsNote != tc.sysNote {
				t.Errorf("syscalls note %q, want %q", rec.SyscallsNote, tc.sysNote)
			}
			if tc.perOp != nil && (rec.SyscallsByName["read"] != 1 || !strings.HasPrefix(rec.SyscallsSource, "raw_syscalls:sys_enter in a 1.0 s")) {
				t.Errorf("by name %v, source %q", rec.SyscallsByName, rec.SyscallsSource)
			}
			checkNote(t, rec.Notes, tc.note)
			for _, n := range rec.Notes {
				if strings.Contains(n, "unrelated") {
					t.Errorf("the counting window's other notes leaked: %q", n)
				}
			}
		})
	}
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// checkNote: want "" means no note at all.
func checkNote(t *testing.T, notes []string, want string) {
	t.Helper()
	if want == "" {
		if len(notes) > 0 {
			t.Errorf("notes %q, want none", notes)
		}
		return
	}
	for _, n := range notes {
		if strings.HasPrefix(n, want) {
			return
		}
	}
	t.Errorf("notes %q, want one starting %q", notes, want)
}
