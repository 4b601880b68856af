package workloads

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
)

func run(t *testing.T, spec Spec, addr netip.AddrPort) *Report {
	t.Helper()
	if spec.Duration == 0 {
		spec.Duration = 200 * time.Millisecond
	}
	if spec.Warmup == 0 {
		spec.Warmup = 50 * time.Millisecond
	}
	rep, err := Run(context.Background(), spec, Target{Addr: addr}, Hooks{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReport(t, rep)
	return rep
}

// checkReport checks what holds for every report.
func checkReport(t *testing.T, rep *Report) {
	t.Helper()
	if rep.Window <= 0 {
		t.Errorf("window %v", rep.Window)
	}
	if rep.ClientBusy < 0 || rep.ClientBusy > 1.05 {
		t.Errorf("client busy %v out of [0, 1]", rep.ClientBusy)
	}
	if rep.Latency == nil {
		t.Fatal("no latency histogram")
	}
	prev := int64(0)
	for _, q := range []float64{0, 50, 90, 99, 99.9, 100} {
		v := rep.Latency.ValueAtQuantile(q)
		if v < prev {
			t.Errorf("latency p%v = %d below a lower percentile's %d", q, v, prev)
		}
		prev = v
	}
}

func noErrors(t *testing.T, rep *Report) {
	t.Helper()
	if rep.Errors.Total() != 0 {
		t.Errorf("errors %+v, want none", rep.Errors)
	}
	if rep.Ops == 0 {
		t.Error("no operations completed")
	}
}

func TestEchoTCP(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	for _, c := range []struct{ conns, depth, size int }{
		{1, 1, 1}, {2, 16, 100}, {3, 4, 4096}, {2, 2, backends.MaxTCPMessage}, {4, 8, 1000},
	} {
		spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: c.conns, Depth: c.depth, Size: c.size}
		if c.conns == 4 {
			spec.CPUs = []int{0, 1}
		}
		rep := run(t, spec, srv.addr)
		noErrors(t, rep)
		if rep.Bytes != rep.Ops*uint64(c.size) {
			t.Errorf("%+v: bytes %d, want ops %d × size", c, rep.Bytes, rep.Ops)
		}
		if got := uint64(rep.Latency.TotalCount()); got != rep.Ops {
			t.Errorf("%+v: %d latencies for %d ops", c, got, rep.Ops)
		}
		if rep.Sent+uint64(c.conns*c.depth) < rep.Ops {
			t.Errorf("%+v: %d ops but only %d sent", c, rep.Ops, rep.Sent)
		}
		if c.conns == 4 && rep.ClientCPU <= 0 {
			t.Errorf("%+v: no client CPU time measured", c)
		}
	}
}

func TestEchoUDP(t *testing.T) {
	srv := udpEchoPeer(t, nil, nil)
	for _, c := range []struct{ conns, depth, size int }{
		{1, 1, 1}, {2, 8, 7}, {2, 4, 8}, {3, 16, 512}, {2, 2, backends.MaxUDPPayload},
	} {
		spec := Spec{Workload: Echo, Proto: backends.UDP, Conns: c.conns, Depth: c.depth, Size: c.size}
		rep := run(t, spec, srv.addr)
		// Loopback may drop a datagram under load: a lost request is not a
		// verification failure, anything else is.
		if e := rep.Errors; e.Mismatch+e.Reset+e.Timeout != 0 || rep.Ops == 0 {
			t.Errorf("%+v: ops %d errors %+v", c, rep.Ops, e)
		}
		if rep.Bytes != rep.Ops*uint64(c.size) {
			t.Errorf("%+v: bytes %d, want ops %d × size", c, rep.Bytes, rep.Ops)
		}
	}
}

func TestEchoMismatch(t *testing.T) {
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		t.Run(string(proto), func(t *testing.T) {
			var srv *peer
			if proto == backends.TCP {
				srv = tcpEchoPeer(t, flipEvery(50))
			} else {
				srv = udpEchoPeer(t, flipEvery(50), nil)
			}
			for _, size := range []int{1, 64} {
				spec := Spec{Workload: Echo, Proto: proto, Conns: 2, Depth: 4, Size: size}
				if proto == backends.UDP {
					// A corrupted identity leaves its request to time out.
					spec.Timeout = 50 * time.Millisecond
				}
				rep := run(t, spec, srv.addr)
				if rep.Errors.Mismatch == 0 {
					t.Errorf("size %d: a corrupting server gave no mismatch (ops %d)", size, rep.Ops)
				}
			}
		})
	}
}

func TestEchoUDPLost(t *testing.T) {
	srv := udpEchoPeer(t, nil, func(i int) bool { return i%10 == 9 })
	spec := Spec{Workload: Echo, Proto: backends.UDP, Conns: 2, Depth: 4, Size: 32,
		Timeout: 100 * time.Millisecond, Duration: 500 * time.Millisecond}
	rep := run(t, spec, srv.addr)
	if rep.Errors.Lost == 0 || rep.Ops == 0 {
		t.Errorf("dropping server: ops %d lost %d, want both > 0", rep.Ops, rep.Errors.Lost)
	}
	// A reply later than Timeout, which a loaded machine can produce, is a
	// late reply, not a mismatch: the server corrupts nothing.
	if rep.Errors.Mismatch != 0 {
		t.Errorf("%d mismatches from a server that only drops", rep.Errors.Mismatch)
	}
	censored(t, rep, spec.Timeout)
}

func TestEchoTCPTimeout(t *testing.T) {
	srv := silentTCPPeer(t)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 3, Size: 10,
		Timeout: 50 * time.Millisecond, Duration: 5 * time.Second}
	_, err := Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("silent server: Run returned %v, want a timeout error", err)
	}
}

// achieved checks that an open-loop run kept its rate within tol.
func achieved(t *testing.T, rep *Report, rate, tol float64) {
	t.Helper()
	if rep.ClientBusy > 0.5 {
		t.Skipf("generator too busy (%.0f%%) on this machine to judge the rate", rep.ClientBusy*100)
	}
	// Late requests mean the loop did not run when they were due: the
	// machine was too loaded for the generator to keep up.
	if rep.Late*10 > rep.Sent {
		t.Skipf("generator fell behind on this loaded machine (%d of %d requests late)", rep.Late, rep.Sent)
	}
	got := float64(rep.Ops) / rep.Window.Seconds()
	if math.Abs(got-rate)/rate > tol {
		t.Errorf("achieved %.1f ops/s, want %.0f ± %.0f%% (sent %d, late %d)", got, rate, tol*100, rep.Sent, rep.Late)
	}
}

func TestOpenLoopConstant(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 4, Depth: 2, Size: 64,
		Rate: 2000, Arrival: Constant, Duration: time.Second, Warmup: 100 * time.Millisecond}
	rep := run(t, spec, srv.addr)
	noErrors(t, rep)
	achieved(t, rep, spec.Rate, 0.02)
	if s := float64(rep.Sent) / rep.Window.Seconds(); math.Abs(s-spec.Rate) > 0.02*spec.Rate {
		t.Errorf("sent %v/s at a rate of %v/s", s, spec.Rate)
	}
}

func TestOpenLoopPoisson(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 3, Depth: 8, Size: 64,
		Rate: 2000, Arrival: Poisson, Duration: time.Second, Warmup: 100 * time.Millisecond}
	rep := run(t, spec, srv.addr)
	noErrors(t, rep)
	// 2000 Poisson arrivals have a standard deviation of 45 (2.2%).
	achieved(t, rep, spec.Rate, 0.08)
}

// TestOpenLoopQueues: with one slot and a server slower than the schedule,
// requests wait in the queue and their latency counts from the intended
// time, so it grows beyond the server's own delay; but a request's Timeout
// runs from when it was actually sent, so queueing loses nothing: only the
// one request in flight when the drain after the window ends (the queue
// behind it is longer than the drain) may be given up as lost.
func TestOpenLoopQueues(t *testing.T) {
	srv := udpEchoPeer(t, nil, func(int) bool { time.Sleep(2 * time.Millisecond); return false })
	spec := Spec{Workload: Echo, Proto: backends.UDP, Conns: 1, Depth: 1, Size: 16,
		Rate: 1000, Duration: 300 * time.Millisecond, Timeout: 100 * time.Millisecond}
	rep := run(t, spec, srv.addr)
	if rep.Errors.Lost > uint64(spec.Depth) {
		t.Errorf("%d requests lost while queued behind a slow server", rep.Errors.Lost)
	}
	// Every request of the window that was sent ends exactly once.
	if got := rep.Ops + rep.Errors.Total(); got != rep.Sent {
		t.Errorf("ops %d + errors %+v: %d requests ended, %d sent", rep.Ops, rep.Errors, got, rep.Sent)
	}
	if rep.Late == 0 {
		t.Errorf("a server at half the rate gave no late requests (ops %d)", rep.Ops)
	}
	if p99 := time.Duration(rep.Latency.ValueAtQuantile(99)); p99 < 20*time.Millisecond {
		t.Errorf("p99 %v: latency is not counted from the intended send time", p99)
	}
}

func TestStreamUp(t *testing.T) {
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		t.Run(string(proto), func(t *testing.T) {
			var srv *peer
			if proto == backends.TCP {
				srv = tcpSinkPeer(t)
			} else {
				srv = udpSinkPeer(t)
			}
			size := 1000
			rep := run(t, Spec{Workload: Stream, Proto: proto, Conns: 2, Size: size}, srv.addr)
			noErrors(t, rep)
			if rep.Sent != rep.Ops {
				t.Errorf("sent %d, ops %d: every message written is an op", rep.Sent, rep.Ops)
			}
			// TCP counts a message when its last byte is written, and bytes
			// as they are written: each connection may have one message
			// astride each window edge.
			if lo, hi := (rep.Ops-2)*uint64(size), (rep.Ops+2)*uint64(size); rep.Bytes < lo || rep.Bytes > hi {
				t.Errorf("bytes %d for %d messages of %d", rep.Bytes, rep.Ops, size)
			}
			if proto == backends.TCP {
				time.Sleep(50 * time.Millisecond) // let the sink drain
				if got := srv.rx.Load(); got < rep.Bytes {
					t.Errorf("sink got %d bytes, the generator says it sent %d in the window", got, rep.Bytes)
				}
			}

			paced := run(t, Spec{Workload: Stream, Proto: proto, Conns: 2, Size: size, Rate: 1000,
				Duration: 500 * time.Millisecond}, srv.addr)
			noErrors(t, paced)
			achieved(t, paced, 1000, 0.04)
		})
	}
}

func TestStreamDown(t *testing.T) {
	for _, tc := range []struct {
		proto backends.Proto
		size  int
	}{{backends.TCP, 1}, {backends.TCP, 1000}, {backends.TCP, backends.MaxTCPMessage}, {backends.UDP, 8}, {backends.UDP, 1200}} {
		t.Run(fmt.Sprintf("%s/%d", tc.proto, tc.size), func(t *testing.T) {
			var srv *peer
			if tc.proto == backends.TCP {
				srv = tcpSourcePeer(t, nil)
			} else {
				srv = udpSourcePeer(t, tc.size, nil)
			}
			rep := run(t, Spec{Workload: Stream, Direction: Down, Proto: tc.proto, Conns: 2, Size: tc.size}, srv.addr)
			noErrors(t, rep)
			if rep.Bytes != rep.Ops*uint64(tc.size) {
				t.Errorf("bytes %d for %d messages", rep.Bytes, rep.Ops)
			}
			if rep.Ops == 0 {
				t.Logf("window %v client cpu %v", rep.Window, rep.ClientCPU)
			}
		})
	}
}

func TestStreamDownMismatch(t *testing.T) {
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		srv := tcpSourcePeer(t, flipEvery(20))
		if proto == backends.UDP {
			srv = udpSourcePeer(t, 100, flipEvery(20))
		}
		rep := run(t, Spec{Workload: Stream, Direction: Down, Proto: proto, Conns: 1, Size: 100}, srv.addr)
		if rep.Errors.Mismatch == 0 {
			t.Errorf("%s: a corrupting source gave no mismatch (ops %d)", proto, rep.Ops)
		}
	}
}

func TestServerDiesMidRun(t *testing.T) {
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		t.Run(string(proto), func(t *testing.T) {
			var srv *peer
			if proto == backends.TCP {
				srv = tcpEchoPeer(t, nil)
			} else {
				srv = udpEchoPeer(t, nil, nil)
			}
			spec := Spec{Workload: Echo, Proto: proto, Conns: 3, Depth: 2, Size: 100, Duration: 30 * time.Second}
			time.AfterFunc(300*time.Millisecond, srv.Close)
			done := make(chan error, 1)
			go func() {
				_, err := Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "dead") {
					t.Errorf("Run after the server died: %v, want an error saying the connections are dead", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run hangs after the server died")
			}
		})
	}
}

func TestCancel(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 2, Size: 100, Warmup: 100 * time.Millisecond, Duration: 30 * time.Second}
	for _, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		began := time.Now()
		rep, err := Run(ctx, spec, Target{Addr: srv.addr}, Hooks{})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || rep != nil {
			t.Errorf("cancel after %v: got %v, %v; want nil, ctx.Err()", after, rep, err)
		}
		if took := time.Since(began); took > after+2*time.Second {
			t.Errorf("cancel after %v: Run returned only after %v", after, took)
		}
	}
}

func TestConnectRefused(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	addr := srv.addr
	srv.Close() // nothing listens there now
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 1, Size: 10, Duration: time.Second}
	_, err := Run(context.Background(), spec, Target{Addr: addr}, Hooks{})
	if err == nil || !strings.Contains(err.Error(), addr.String()) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("connect to a closed port: %v, want an error naming %s", err, addr)
	}
}

func TestHooksFrameWindow(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	var calls []string
	var startAt, endAt time.Time
	hooks := Hooks{
		WindowStart: func() { calls = append(calls, "start"); startAt = time.Now() },
		WindowEnd:   func() { calls = append(calls, "end"); endAt = time.Now() },
	}
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 1, Depth: 1, Size: 10, Duration: 200 * time.Millisecond}
	rep, err := Run(context.Background(), spec, Target{Addr: srv.addr}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "start,end" {
		t.Fatalf("hooks called %v, want start then end", calls)
	}
	// Each edge is marked, then its hook runs: the hooks are as far apart
	// as the window is long, give or take what runs between a mark and its
	// hook.
	if between := endAt.Sub(startAt); rep.Window < spec.Duration || (rep.Window-between).Abs() > 20*time.Millisecond {
		t.Errorf("window %v: want at least %v and the hooks' %v apart", rep.Window, spec.Duration, between)
	}
}

func TestBadCPU(t *testing.T) {
	srv := tcpEchoPeer(t, nil)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 1, Depth: 1, Size: 10, Duration: time.Second, CPUs: []int{1 << 20}}
	_, err := Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "pin loop") {
		t.Errorf("pinning to cpu %d: %v, want an error", spec.CPUs[0], err)
	}
}

// TestNoAllocationPerOp: a steady closed-loop run allocates a fixed amount
// (loops, buffers, histograms), nothing per request. The test server is
// TCP on Go's net package, which itself does not allocate per read or write.
func TestNoAllocationPerOp(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: counts allocations over a 300 ms run")
	}
	srv := tcpEchoPeer(t, nil)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 4, Size: 64,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, rep)
	if allocs := after.Mallocs - before.Mallocs; allocs > 2000 || allocs > rep.Ops/10 {
		t.Errorf("%d allocations for %d requests", allocs, rep.Ops)
	}
}
