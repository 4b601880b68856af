package main

import (
	"testing"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

// A memif trial, as the bench runs it: the DPDK generator runs the cost,
// profile and counting windows in one attachment, so the record has a
// breakdown and a syscall count like any other.
func TestRunMemif(t *testing.T) {
	testenv.SkipUnlessRoot(t, "a DPDK port")
	b, err := backends.Lookup("dpdk")
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	testenv.SkipIfUnsupported(t, b.Probe())
	recs := runAndLoad(t, "--backend", "dpdk", "--workload", "echo", "--proto", "udp",
		"--conns", "4", "--depth", "4", "--size", "64", "--rate", "20000", "--topology", "memif")
	rec := recs[0]
	checkRecord(t, rec)
	if s, ok := rec["syscalls_per_op"].(float64); !ok || s > 0.1 {
		t.Errorf("syscalls_per_op = %v (%v): want a count, about none for a DPDK server", rec["syscalls_per_op"], rec["syscalls_note"])
	}
	if p, _ := rec["profile"].(string); p == "" {
		t.Errorf("no profile: %v", rec["notes"])
	}
	checkProfileWindow(t, rec)
}
