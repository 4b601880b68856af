package tsc

// rdtsc returns the time-stamp counter (tsc_amd64.s). RDTSC is not
// serializing, so a read may pass instructions before it by a few dozen
// cycles: noise far below any spin worth measuring, and a fence would cost
// more than it corrects.
func rdtsc() uint64

// Spin loops until the TSC has advanced by at least n cycles and returns by
// how much it advanced: n plus the last iteration's overshoot, a read of
// the counter (tens of cycles).
func Spin(n uint64) uint64 {
	start := rdtsc()
	for {
		if d := rdtsc() - start; d >= n {
			return d
		}
	}
}

// Available reports whether Spin works here: RDTSC exists on every amd64.
func Available() error { return nil }
