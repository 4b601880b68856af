package epoll

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"ringbench/backends"
	"ringbench/internal/tsc"
)

// maxBurnCycles bounds the cycles option: a loop spinning cannot see its
// wake eventfd, so Close may wait one spin (about 1.6 s at 2.6 GHz).
const maxBurnCycles = 1 << 32

func init() {
	backends.Register(backends.Backend{
		Name:     "burn",
		Family:   "burn",
		Variant:  "default",
		Summary:  "meter ground truth, not a path to compare: epoll echo that spins cycles=N TSC cycles per request",
		Protos:   []backends.Proto{backends.TCP, backends.UDP},
		Services: []backends.Service{backends.Echo},
		Probe:    probeBurn,
		New:      func(cfg backends.Config) (backends.Server, error) { return NewBurn(cfg) },

		CheckOptions:     func(opts map[string]string) error { _, err := burnCycles(opts); return err },
		DataPathSyscalls: dataPathSyscalls,
	})
}

func probeBurn() error {
	if err := tsc.Available(); err != nil {
		return &backends.NotSupportedError{Feature: "burn's TSC spin", Reason: err.Error()}
	}
	return nil
}

// NewBurn starts the burn variant: an epoll echo server that, for each
// request, spins Config.Options["cycles"] TSC cycles before it echoes. A
// request is a UDP datagram, or Config.MsgSize bytes of a TCP stream (see
// the package documentation).
func NewBurn(cfg backends.Config) (*Server, error) {
	if cfg.Service != backends.Echo {
		return nil, &backends.NotSupportedError{
			Feature: "burn " + string(cfg.Service),
			Reason:  "burn serves echo only: it spins per request, and a " + string(cfg.Service) + " has no requests",
		}
	}
	cycles, err := burnCycles(cfg.Options)
	if err != nil {
		return nil, err
	}
	return start(cfg, &burnWork{cycles: cycles})
}

// burnCycles parses burn's options: cycles, a whole number of TSC cycles
// per request, 0 by default.
func burnCycles(opts map[string]string) (uint64, error) {
	var unknown []string
	for k := range opts {
		if k != "cycles" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return 0, fmt.Errorf("burn: unknown option %s (burn takes cycles)", strings.Join(unknown, ", "))
	}
	v, ok := opts["cycles"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if ne := (*strconv.NumError)(nil); errors.As(err, &ne) {
		err = ne.Err // "invalid syntax": the value and the option are named below
	}
	if err == nil && n > maxBurnCycles {
		err = fmt.Errorf("over %d", uint64(maxBurnCycles))
	}
	if err != nil {
		return 0, fmt.Errorf("burn: option cycles=%s: %w (want TSC cycles per request, 0 to %d)", v, err, uint64(maxBurnCycles))
	}
	return n, nil
}

// burnWork spins cycles TSC cycles per request; a TCP request is the
// plan's msgSize bytes. It is shared, read-only, by the loops; what it
// spins is counted in each loop's counts.
type burnWork struct {
	cycles uint64
}

var _ echoWork = (*burnWork)(nil)

// stream spins for the requests the n bytes complete; the bytes of an
// unfinished one are remembered on the connection, so a request split
// across reads is spun for once, when its last byte arrives.
func (b *burnWork) stream(l *loop, c *conn, n int) {
	var done uint64
	done, c.partial = requests(c.partial, n, l.msgSize)
	if done > 0 {
		b.spin(l, done)
	}
}

func (b *burnWork) datagrams(l *loop, n int) { b.spin(l, uint64(n)) }

// spin spends the cycles of k requests in one spin, so that a read that
// carried several pays one counter read's overshoot, not k.
func (b *burnWork) spin(l *loop, k uint64) {
	l.count.work.requests += k
	l.count.work.cycles += tsc.Spin(k * b.cycles)
}

func (b *burnWork) report(c *backends.Counters, w workCounts) {
	c.Extra["burn_requests"] = w.requests
	c.Extra["burn_cycles"] = w.cycles
}

// requests splits n bytes, read after partial bytes of an unfinished
// request, into the requests of size bytes they complete and the bytes of
// the request still unfinished.
func requests(partial, n, size int) (done uint64, rest int) {
	total := partial + n
	return uint64(total / size), total % size
}
