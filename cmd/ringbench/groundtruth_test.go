package main

import (
	"context"
	"os"
	"testing"

	"ringbench/backends"
	"ringbench/harness"
)

// The meters' ground truth: the burn server spins a known number of TSC
// cycles per request, and the difference in measured cycles per op between
// two settings must equal the difference of the settings within 5%, for
// core busy and for process CPU. It needs its cores to itself, so `make
// test` runs it alone after the parallel tests, with
// RINGBENCH_GROUND_TRUTH=1.
func TestGroundTruthBurnSlope(t *testing.T) {
	if os.Getenv("RINGBENCH_GROUND_TRUTH") == "" {
		t.Skip("skipped: runs alone in make test's ground-truth step (RINGBENCH_GROUND_TRUTH=1): the slope needs quiet cores")
	}
	for _, proto := range []backends.Proto{backends.UDP, backends.TCP} {
		t.Run(string(proto), func(t *testing.T) {
			r := harness.NewRunner(nil, "groundtruth", nil)
			defer r.Close()
			checks, recs, err := r.BurnSlope(context.Background(), harness.DefaultValidateOptions, proto, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				t.Logf("%s cycles=%s: %.0f cycles/op, %.0f CPU ns/op, noisy %v %s", rec.Proto, rec.Options["cycles"], rec.CyclesPerOp, rec.CPUNsPerOp, rec.Noisy, rec.Error)
			}
			for _, c := range checks {
				if !c.Pass {
					t.Errorf("%s = %s, want %s (%s)", c.Name, c.Display, c.Limit, c.Detail)
				} else {
					t.Logf("%s = %s (%s)", c.Name, c.Display, c.Detail)
				}
			}
		})
	}
}
