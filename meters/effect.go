package meters

import (
	"fmt"
	"strings"

	"ringbench/results"
	"ringbench/sampler"
)

// A trial runs up to three windows on one server: the cost window, then a
// profile window with the sampler on and a counting window with the
// syscall tracepoint on (each meter changes what the cost window
// measures). FillProfile and FillCount put the other windows' figures
// beside the cost window's, with what each meter did to cycles per op.

// FillProfile puts a profile window's breakdown in rec, the cost window's
// record: sampled is the profile window's record (Fill), bd its
// breakdown. The breakdown splits the profile window's cycles per op, so
// its parts sum to ProfileCyclesPerOp, not to CyclesPerOp; the busy time
// no sample saw is a part of its own (sampler.Breakdown.Split).
func FillProfile(rec *results.Record, sampled results.Record, bd sampler.Breakdown) {
	if sampled.CyclesPerOp > 0 {
		v := sampled.CyclesPerOp
		rec.ProfileCyclesPerOp = &v
		rec.ProfileEffect = meterEffect(rec, sampled, "profile")
	}
	coverage := 1.0
	if c, ok := bd.Coverage(sampled.BusyNs); ok {
		rec.ProfileCoverage, coverage = &c, c
	}
	rec.CyclesBreakdown = map[string]results.BreakdownShare{}
	for c, p := range bd.Split(sampled.CyclesPerOp, coverage) {
		rec.CyclesBreakdown[c] = results.BreakdownShare{Share: p.Share, CyclesPerOp: p.CyclesPerOp}
	}
}

// FillCount puts a counting window's syscalls in rec, the cost window's
// record: count is the counting window's record (Fill). When that window
// counted nothing, rec.SyscallsNote says why.
func FillCount(rec *results.Record, count results.Record) {
	if count.SyscallsPerOp == nil {
		rec.SyscallsNote = "not counted: " + count.SyscallsNote
		return
	}
	rec.Syscalls, rec.SyscallsPerOp, rec.SyscallsNote = count.Syscalls, count.SyscallsPerOp, ""
	rec.SyscallsByName, rec.SyscallsDataPath, rec.SyscallsExplained = count.SyscallsByName, count.SyscallsDataPath, count.SyscallsExplained
	for _, n := range count.Notes {
		if strings.HasPrefix(n, NoSyscallsByName) {
			rec.Notes = append(rec.Notes, "counting window: "+n)
		}
	}
	rec.SyscallsSource = fmt.Sprintf("raw_syscalls:sys_enter in a %.1f s counting window after the cost window, same server", count.WindowS)
	if count.CyclesPerOp > 0 {
		v := count.CyclesPerOp
		rec.CountCyclesPerOp = &v
		rec.SyscallMeterEffect = meterEffect(rec, count, "counting")
	}
}

// meterEffect is other's cycles per op over cost's, less 1: what the meter
// on in the other window did to the cost. Cycles counted by the PMU in one
// window and TSC-equivalent in the other are not the same quantity, so
// there is no effect then, and a note says why.
func meterEffect(cost *results.Record, other results.Record, window string) *float64 {
	if cost.CyclesPerOp <= 0 {
		return nil
	}
	if other.CyclesSource != cost.CyclesSource {
		cost.Notes = append(cost.Notes, fmt.Sprintf("the %s window's effect on cycles per op is not known: its cycles are %s, the cost window's %s",
			window, other.CyclesSource, cost.CyclesSource))
		return nil
	}
	e := other.CyclesPerOp/cost.CyclesPerOp - 1
	return &e
}
