package workloads

import (
	"errors"
	"fmt"
	"math"
	"time"

	"ringbench/backends"
)

// Limits the generator enforces beyond the protocols' own.
const (
	// maxUDPDepth: a UDP request carries its slot in 16 bits (8 or more
	// bytes) or in one byte (fewer).
	maxUDPDepth      = 1 << 16
	maxUDPDepthShort = 1 << 8
	// maxTCPDepth bounds the per-connection request ring.
	maxTCPDepth = 1 << 16
	// defaultTimeout applies when Spec.Timeout is zero.
	defaultTimeout = time.Second
	// udpIDBytes is the request identity in a UDP echo request of at least
	// that size; a smaller one carries its slot in its first byte.
	udpIDBytes = 8
	// maxRate and minRate bound an open-loop rate: a gap between intended
	// sends of 1 ns at most and of an hour at least. Beyond them the
	// schedule's integer nanoseconds lose the rate, or overflow.
	maxRate = 1e9
	minRate = 1.0 / 3600
	// maxPhase bounds Warmup and Duration: a day is longer than any trial,
	// and far from the overflow of the nanosecond clock.
	maxPhase = 24 * time.Hour
	// maxTimeout: a request's latency is tracked up to maxLatency, so a
	// longer timeout could not be recorded.
	maxTimeout = time.Duration(maxLatency)
)

// Validate reports the first thing wrong with s, in one line.
func (s Spec) Validate() error {
	switch s.Workload {
	case Echo, Stream:
	default:
		return fmt.Errorf("unknown workload %q (want %s or %s)", s.Workload, Echo, Stream)
	}
	limit := 0
	switch s.Proto {
	case backends.TCP:
		limit = backends.MaxTCPMessage
	case backends.UDP:
		limit = backends.MaxUDPPayload
	default:
		return fmt.Errorf("unknown proto %q (want %s or %s)", s.Proto, backends.TCP, backends.UDP)
	}
	if s.Workload == Stream {
		switch s.Direction {
		case "", Up, Down:
		default:
			return fmt.Errorf("unknown stream direction %q (want %s or %s)", s.Direction, Up, Down)
		}
	} else if s.Direction != "" && s.Direction != Up {
		return fmt.Errorf("direction %q applies to stream, not %s", s.Direction, s.Workload)
	}
	switch s.Arrival {
	case "", Constant, Poisson:
	default:
		return fmt.Errorf("unknown arrival %q (want %s or %s)", s.Arrival, Constant, Poisson)
	}
	if s.Conns < 1 {
		return fmt.Errorf("conns %d: need at least 1", s.Conns)
	}
	if s.Workload == Echo {
		if s.Depth < 1 {
			return fmt.Errorf("depth %d: need at least 1", s.Depth)
		}
		maxDepth := maxTCPDepth
		if s.Proto == backends.UDP {
			maxDepth = maxUDPDepth
			if s.Size < udpIDBytes {
				maxDepth = maxUDPDepthShort
			}
		}
		if s.Depth > maxDepth {
			return fmt.Errorf("depth %d: over %d for %s echo of %d-byte requests", s.Depth, maxDepth, s.Proto, s.Size)
		}
	}
	if s.Size < 1 {
		return fmt.Errorf("size %d: need at least 1 byte", s.Size)
	}
	if s.Size > limit {
		return fmt.Errorf("size %d: over the %s limit of %d bytes", s.Size, s.Proto, limit)
	}
	if s.Workload == Stream && s.Direction == Down && s.Proto == backends.UDP && s.Size < backends.SourceHeader {
		return fmt.Errorf("size %d: a UDP source datagram needs at least %d bytes for its sequence header", s.Size, backends.SourceHeader)
	}
	if err := checkRate(s.Rate); err != nil {
		return err
	}
	if s.Rate > 0 && s.Workload == Stream && s.Direction == Down {
		return errors.New("rate: a stream down is paced by the source, so it must be closed loop (rate 0)")
	}
	if s.Warmup < 0 || s.Warmup > maxPhase {
		return fmt.Errorf("warmup %v: want 0 to %v", s.Warmup, maxPhase)
	}
	if s.Duration <= 0 || s.Duration > maxPhase {
		return fmt.Errorf("duration %v: want more than 0, at most %v", s.Duration, maxPhase)
	}
	if s.Timeout < 0 || s.Timeout > maxTimeout {
		return fmt.Errorf("timeout %v: want 0 (the default, %v) to %v", s.Timeout, defaultTimeout, maxTimeout)
	}
	seen := make(map[int]bool, len(s.CPUs))
	for _, c := range s.CPUs {
		if c < 0 {
			return fmt.Errorf("cpu %d: must not be negative", c)
		}
		if seen[c] {
			return fmt.Errorf("cpu %d: listed twice", c)
		}
		seen[c] = true
	}
	return nil
}

// checkRate accepts 0 (closed loop) or a rate whose gap between intended
// sends is 1 ns to an hour; NaN, infinities and negative rates are errors,
// not closed loop.
func checkRate(rate float64) error {
	if rate == 0 {
		return nil
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate < minRate || rate > maxRate {
		return fmt.Errorf("rate %g: want 0 (closed loop) or %.6g to %g ops/s (a send every hour to every nanosecond)", rate, minRate, float64(maxRate))
	}
	return nil
}

// normalized returns s with its defaults filled in.
func (s Spec) normalized() Spec {
	if s.Workload == Stream && s.Direction == "" {
		s.Direction = Up
	}
	if s.Arrival == "" {
		s.Arrival = Constant
	}
	if s.Timeout == 0 {
		s.Timeout = defaultTimeout
	}
	return s
}
