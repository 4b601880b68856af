//go:build !amd64

package tsc

import "sync"

var hz = sync.OnceValue(func() float64 {
	f, _ := Hz()
	return f
})

// Spin spins on the monotonic clock for n/Hz seconds and returns the cycles
// that passed, as Hz converts them: this architecture's counter is not read
// here. It returns 0 at once when Hz is unknown (Available says so).
func Spin(n uint64) uint64 {
	f := hz()
	if f <= 0 {
		return 0
	}
	return spinClock(n, f)
}

// Available reports whether Spin works here: it needs the TSC frequency.
func Available() error {
	if hz() <= 0 {
		return ErrUnknownHz
	}
	return nil
}
