package workloads

import "math/rand/v2"

// arrivals is one loop's share of the open-loop schedule: the intended send
// times of its requests, in nanoseconds on the nanotime clock.
type arrivals struct {
	next    int64
	gap     float64 // mean gap between this loop's requests, ns
	carry   float64 // fraction of a nanosecond not yet added to next
	poisson *rand.Rand
}

// newArrivals gives loop i of a schedule of rate ops/s that starts at t0
// the fraction share of the requests. Constant arrivals are offset by
// loop, so the loops interleave instead of sending in step; Poisson
// arrivals are independent per loop, and a sum of Poisson processes is one.
func newArrivals(kind Arrival, rate, share float64, i int, t0 int64) arrivals {
	a := arrivals{gap: 1e9 / (rate * share), next: t0}
	if kind == Poisson {
		a.poisson = rand.New(rand.NewPCG(0x72696e67, uint64(i)))
		a.advance()
		return a
	}
	a.next += int64(float64(i) * 1e9 / rate)
	return a
}

func (a *arrivals) advance() {
	g := a.gap
	if a.poisson != nil {
		g *= a.poisson.ExpFloat64()
	}
	a.carry += g
	whole := int64(a.carry)
	a.next += whole
	a.carry -= float64(whole)
}

// skip moves past every arrival at or before until and returns how many
// there were, in one step however many: exactly for constant arrivals; for
// Poisson arrivals the expected count, the next arrival being drawn afresh
// after until (the process is memoryless).
func (a *arrivals) skip(until int64) uint64 {
	if a.next > until {
		return 0
	}
	// Constant: arrival k is due at next+carry+k*gap.
	n := 1 + uint64(max(0, (float64(until-a.next)-a.carry)/a.gap))
	if a.poisson != nil {
		n = 1 + uint64(float64(until-a.next)/a.gap)
		a.next, a.carry = until, 0
		a.advance()
		return n
	}
	a.carry += float64(n) * a.gap
	whole := int64(a.carry)
	a.next += whole
	a.carry -= float64(whole)
	return n
}
