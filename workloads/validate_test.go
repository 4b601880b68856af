package workloads

import (
	"math"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
)

func TestValidate(t *testing.T) {
	good := Spec{Workload: Echo, Proto: backends.TCP, Conns: 1, Depth: 1, Size: 64, Duration: time.Second}
	tests := []struct {
		name string
		edit func(*Spec)
		want string // substring of the error; empty: valid
	}{
		{"good", func(s *Spec) {}, ""},
		{"stream up default", func(s *Spec) { s.Workload = Stream; s.Depth = 0 }, ""},
		{"udp max", func(s *Spec) { s.Proto = backends.UDP; s.Size = backends.MaxUDPPayload }, ""},
		{"tcp max", func(s *Spec) { s.Size = backends.MaxTCPMessage }, ""},
		{"poisson", func(s *Spec) { s.Rate = 100; s.Arrival = Poisson }, ""},
		{"unknown workload", func(s *Spec) { s.Workload = "rpc" }, `unknown workload "rpc"`},
		{"unknown proto", func(s *Spec) { s.Proto = "sctp" }, `unknown proto "sctp"`},
		{"unknown arrival", func(s *Spec) { s.Arrival = "bursty" }, `unknown arrival "bursty"`},
		{"unknown direction", func(s *Spec) { s.Workload = Stream; s.Direction = "sideways" }, `unknown stream direction`},
		{"direction on echo", func(s *Spec) { s.Direction = Down }, "applies to stream"},
		{"no conns", func(s *Spec) { s.Conns = 0 }, "conns 0"},
		{"no depth", func(s *Spec) { s.Depth = 0 }, "depth 0"},
		{"deep short udp", func(s *Spec) { s.Proto = backends.UDP; s.Size = 4; s.Depth = 257 }, "depth 257"},
		{"zero size", func(s *Spec) { s.Size = 0 }, "size 0"},
		{"udp too big", func(s *Spec) { s.Proto = backends.UDP; s.Size = backends.MaxUDPPayload + 1 }, "over the udp limit"},
		{"tcp too big", func(s *Spec) { s.Size = backends.MaxTCPMessage + 1 }, "over the tcp limit"},
		{"negative rate", func(s *Spec) { s.Rate = -1 }, "rate -1"},
		{"nan rate", func(s *Spec) { s.Rate = math.NaN() }, "rate NaN"},
		{"inf rate", func(s *Spec) { s.Rate = math.Inf(1) }, "rate +Inf"},
		{"minus inf rate", func(s *Spec) { s.Rate = math.Inf(-1) }, "rate -Inf"},
		{"tiny rate", func(s *Spec) { s.Rate = 1e-300 }, "rate 1e-300"},
		{"rate under a send an hour", func(s *Spec) { s.Rate = 1.0 / 3601 }, "ops/s"},
		{"rate over a send a nanosecond", func(s *Spec) { s.Rate = 1e12 }, "rate 1e+12"},
		{"max rate", func(s *Spec) { s.Rate = 1e9 }, ""},
		{"min rate", func(s *Spec) { s.Rate = 1.0 / 3600 }, ""},
		{"long duration", func(s *Spec) { s.Duration = 25 * time.Hour }, "duration 25h"},
		{"long warmup", func(s *Spec) { s.Warmup = 25 * time.Hour }, "warmup 25h"},
		{"day duration", func(s *Spec) { s.Duration = 24 * time.Hour }, ""},
		{"long timeout", func(s *Spec) { s.Timeout = 2 * time.Minute }, "timeout 2m"},
		{"zero warmup", func(s *Spec) { s.Warmup = 0 }, ""},
		{"udp source header", func(s *Spec) {
			s.Workload, s.Direction, s.Proto, s.Size = Stream, Down, backends.UDP, backends.SourceHeader-1
		}, "sequence header"},
		{"paced source", func(s *Spec) { s.Workload, s.Direction, s.Rate = Stream, Down, 10 }, "closed loop"},
		{"no duration", func(s *Spec) { s.Duration = 0 }, "duration"},
		{"negative warmup", func(s *Spec) { s.Warmup = -time.Second }, "warmup"},
		{"negative timeout", func(s *Spec) { s.Timeout = -time.Second }, "timeout"},
		{"negative cpu", func(s *Spec) { s.CPUs = []int{-1} }, "cpu -1"},
		{"cpu twice", func(s *Spec) { s.CPUs = []int{0, 0} }, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want an error with %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("Validate: %q is not one line", err)
			}
		})
	}
}

func TestSourceAtMatchesFillSource(t *testing.T) {
	want := make([]byte, 5000)
	for _, off := range []uint64{0, 1, 250, 251, 252, 1 << 20, 1<<40 + 7} {
		backends.FillSource(want, off)
		if got := sourceAt(off, len(want)); string(got) != string(want) {
			t.Errorf("sourceAt(%d) differs from FillSource", off)
		}
	}
}
