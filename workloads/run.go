package workloads

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"ringbench/backends"
)

// runState is what Run and its loops share: the window's edges, the stop
// flag and the first failure. Loops read it with atomic loads once per
// iteration; nothing on the data path takes a lock.
type runState struct {
	start, end atomic.Int64 // window edges, nanotime; MaxInt64 until set
	stop       atomic.Bool
	live       atomic.Int64 // connections not dead
	// undrained counts the loops that still wait for answers to the
	// window's requests; drained is closed when it reaches zero.
	undrained atomic.Int64
	drained   chan struct{}

	once   sync.Once
	failed chan struct{} // closed on the first failure
	err    error

	target string
	conns  int
}

func newRunState(target string, conns int) *runState {
	r := &runState{failed: make(chan struct{}), drained: make(chan struct{}), target: target, conns: conns}
	r.start.Store(math.MaxInt64)
	r.end.Store(math.MaxInt64)
	r.live.Store(int64(conns))
	return r
}

// loopDrained is called once by each loop, after the window, when none of
// its requests is pending any more.
func (r *runState) loopDrained() {
	if r.undrained.Add(-1) == 0 {
		close(r.drained)
	}
}

func (r *runState) fail(err error) {
	r.once.Do(func() {
		r.err = err
		close(r.failed)
	})
}

// connDied ends the run when a connection dies before the window (the
// window would not carry the load the Spec asks for) or when the last one
// dies; one death in the window is only counted.
func (r *runState) connDied(conn int, now int64, cause error) {
	left := r.live.Add(-1)
	switch {
	case now >= r.end.Load():
	case now < r.start.Load():
		r.fail(fmt.Errorf("connection %d to %s died during warm-up: %w", conn, r.target, cause))
	case left == 0:
		r.fail(fmt.Errorf("all %d connections to %s are dead (last: %w)", r.conns, r.target, cause))
	}
}

// Run generates spec's load on target and reports what it measured in the
// window. It returns ctx.Err() if ctx ends first, and an error if the
// connections cannot be made or all die.
func Run(ctx context.Context, spec Spec, target Target, hooks Hooks) (*Report, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("check spec: %w", err)
	}
	spec = spec.normalized()
	fds, err := dial(ctx, spec, target)
	if err != nil {
		return nil, err
	}
	r := newRunState(fmt.Sprintf("%s %s", spec.Proto, target.Addr), spec.Conns)
	loops, err := buildLoops(r, spec, fds)
	if err != nil {
		return nil, err
	}
	r.undrained.Store(int64(len(loops)))

	var wg sync.WaitGroup
	errs := make([]error, len(loops))
	ready := make(chan error, len(loops))
	for i, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.run(ready)
			if errs[i] != nil {
				r.fail(errs[i])
			}
		}()
	}
	stop := func() {
		r.stop.Store(true)
		wg.Wait()
	}
	for range loops {
		if err := <-ready; err != nil {
			stop()
			return nil, err
		}
	}

	rep, err := measure(ctx, r, spec, loops, hooks)
	if err == nil {
		err = drain(ctx, r, min(spec.Timeout, maxDrain))
	}
	stop()
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, l := range loops {
		rep.add(l)
	}
	return rep, nil
}

// measure waits out the warm-up and the window and reads the meters at its
// edges.
func measure(ctx context.Context, r *runState, spec Spec, loops []*loop, hooks Hooks) (*Report, error) {
	tids := make([]int, len(loops))
	for i, l := range loops {
		tids[i] = l.tid
	}
	if err := sleep(ctx, r, spec.Warmup); err != nil {
		return nil, err
	}
	// Each edge is marked first and the meters read right after it, the
	// same way at both edges, so that the meters' window and this one have
	// the same length (they are shifted by the time a snapshot takes).
	start := nanotime()
	r.start.Store(start)
	cpu0 := threadsCPU(tids)
	if hooks.WindowStart != nil {
		hooks.WindowStart()
	}
	if err := sleep(ctx, r, spec.Duration-time.Duration(nanotime()-start)); err != nil {
		return nil, err
	}
	end := nanotime()
	r.end.Store(end)
	cpu1 := threadsCPU(tids)
	if hooks.WindowEnd != nil {
		hooks.WindowEnd()
	}
	rep := &Report{Window: time.Duration(end - start), Latency: newHistogram()}
	if cpu1 > cpu0 {
		rep.ClientCPU = time.Duration(cpu1 - cpu0)
	}
	rep.ClientBusy = float64(rep.ClientCPU) / (float64(rep.Window) * float64(len(loops)))
	return rep, nil
}

// drain waits, after the window, until the loops have the answers to every
// request of the window, or for at most d; what is still unanswered then is
// given up by the loops as they stop.
func drain(ctx context.Context, r *runState, d time.Duration) error {
	return waitFor(ctx, r, d, r.drained)
}

// sleep waits d, or less if the run ends or fails first.
func sleep(ctx context.Context, r *runState, d time.Duration) error {
	return waitFor(ctx, r, d, nil)
}

// waitFor waits d, or until done closes (a nil done never does); the run's
// context and its first failure end it early with their error.
func waitFor(ctx context.Context, r *runState, d time.Duration, done <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.failed:
		return r.err
	case <-done:
		return nil
	case <-t.C:
		return nil
	}
}

// buildLoops spreads the connections over one loop per CPU (at most one
// loop per connection) and hands each loop its sockets; on failure every
// descriptor is closed.
func buildLoops(r *runState, spec Spec, fds []int) (loops []*loop, err error) {
	cpus := spec.CPUs
	if len(cpus) == 0 {
		cpus = []int{-1}
	}
	cpus = cpus[:min(len(cpus), len(fds))]
	next := 0 // fds[next:] are not yet owned by a loop
	defer func() {
		if err != nil {
			for _, l := range loops {
				l.close()
			}
			closeAll(fds[next:])
		}
	}()
	for _, cpu := range cpus {
		l, err := newLoop(r, spec, cpu)
		if err != nil {
			return loops, err
		}
		loops = append(loops, l)
	}
	for ; next < len(fds); next++ {
		l := loops[next%len(loops)]
		if err := l.add(newFlow(spec, sock{fd: fds[next], conn: next, dgram: spec.Proto == backends.UDP})); err != nil {
			next++ // the loop owns it now
			return loops, err
		}
	}
	if spec.Rate > 0 {
		t0 := nanotime()
		for i, l := range loops {
			share := float64(len(l.flows)) / float64(len(fds))
			l.arr = newArrivals(spec.Arrival, spec.Rate, share, i, t0)
		}
	}
	return loops, nil
}

func newFlow(spec Spec, s sock) flow {
	switch {
	case spec.Workload == Echo && spec.Proto == backends.TCP:
		return newTCPEcho(s, spec.Size, spec.Depth)
	case spec.Workload == Echo:
		return newUDPEcho(s, spec.Size, spec.Depth)
	case spec.Direction == Up:
		return &streamUp{sock: s, size: spec.Size}
	case spec.Proto == backends.TCP:
		return &tcpStreamDown{sock: s, size: spec.Size}
	default:
		return &udpStreamDown{sock: s, size: spec.Size}
	}
}

// add merges one loop's counts and histogram into the report.
func (rep *Report) add(l *loop) {
	rep.Ops += l.n.ops
	rep.Bytes += l.n.bytes
	rep.Sent += l.n.sent
	rep.Late += l.n.late
	rep.Behind += l.n.behind
	rep.Unsent += l.n.unsent
	rep.Censored += l.n.censored
	rep.LateReplies += l.n.lateReplies
	rep.Errors.Mismatch += l.n.errs.Mismatch
	rep.Errors.Reset += l.n.errs.Reset
	rep.Errors.Timeout += l.n.errs.Timeout
	rep.Errors.Lost += l.n.errs.Lost
	rep.Latency.Merge(l.hist)
}
