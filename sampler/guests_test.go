package sampler

import (
	"testing"

	"ringbench/sampler/internal/perf"
)

// A guest's samples (the generator, sharing the server's cores) are
// classified as any other process's but are not other tasks' noise; the
// same samples from a stranger are.
func TestGuestsAreNotForeign(t *testing.T) {
	for _, tc := range []struct {
		name        string
		guests      []int
		wantForeign int
	}{
		{"stranger", nil, 4},
		{"guest", []int{300}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := synthetic(t)
			s.cfg.Guests = tc.guests
			s.procs[300] = &process{comm: "generator"}
			for range 4 {
				s.records.Samples = append(s.records.Samples, perf.Sample{PID: 300, TID: 301, CPU: 1,
					Period: 1_000_000_000 / DefaultHz, User: []uint64{0x1234}})
			}
			res, err := s.Profile()
			if err != nil {
				t.Fatal(err)
			}
			if res.Breakdown.Foreign != tc.wantForeign {
				t.Errorf("foreign samples %d, want %d", res.Breakdown.Foreign, tc.wantForeign)
			}
			// Either way the guest's samples are in the breakdown: the
			// cores' time includes them.
			if res.Breakdown.Samples != 14 {
				t.Errorf("non-idle samples %d, want 14", res.Breakdown.Samples)
			}
		})
	}
}
