package workloads

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"ringbench/backends"
)

// TestWindowBySendTime: a request belongs to the window by its send time
// (intended in open loop), whenever its answer comes.
func TestWindowBySendTime(t *testing.T) {
	const start, end = 1000, 2000
	tests := []struct {
		name    string
		at, now int64 // send (intended) time, answer time
		in      bool
	}{
		{"sent before, answered inside", 999, 1500, false},
		{"sent at the start", 1000, 1001, true},
		{"sent and answered inside", 1500, 1600, true},
		{"sent inside, answered after the end", 1999, 2500, true},
		{"sent at the end", 2000, 2001, false},
		{"sent after", 2100, 2200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ending := range []string{"reply", "mismatch", "lost", "timeout", "sent", "unsent"} {
				l := &loop{hist: newHistogram(), winStart: start, winEnd: end}
				switch ending {
				case "reply":
					l.complete(tt.at, tt.now, 10)
				case "mismatch":
					l.mismatch(tt.at)
				case "lost":
					l.gaveUp(tt.at, tt.now, true)
				case "timeout":
					l.gaveUp(tt.at, tt.now, false)
				case "sent":
					l.sent(tt.now, tt.at)
				case "unsent":
					l.unsent(tt.at)
				}
				n := l.n
				got := n.ops + n.errs.Total() + n.sent + n.unsent
				if want := map[bool]uint64{true: 1, false: 0}[tt.in]; got != want {
					t.Errorf("%s: counted %d times, want %d (%+v)", ending, got, want, n)
				}
				if ending == "reply" && tt.in && (n.bytes != 10 || l.hist.Max() < tt.now-tt.at) {
					t.Errorf("reply: bytes %d, max latency %d; want 10 and %d", n.bytes, l.hist.Max(), tt.now-tt.at)
				}
				isGiveUp := ending == "lost" || ending == "timeout"
				if tt.in && isGiveUp && (n.censored != 1 || l.hist.TotalCount() != 1 || l.hist.Max() < tt.now-tt.at) {
					t.Errorf("%s: censored %d, %d latencies, max %d; want 1, 1, ≥ %d", ending, n.censored, l.hist.TotalCount(), l.hist.Max(), tt.now-tt.at)
				}
				if !isGiveUp && n.censored != 0 {
					t.Errorf("%s: censored %d", ending, n.censored)
				}
			}
		})
	}
}

// TestArrivalsSkip: skipping counts the arrivals that advancing one by
// one passes, and leaves the schedule where advancing would.
func TestArrivalsSkip(t *testing.T) {
	for _, tt := range []struct {
		name      string
		rate      float64
		ahead     int64 // skip until next+ahead
		exactNext bool
	}{
		{"none due", 1000, -1, true},
		{"one due", 1000, 0, true},
		{"a few", 3000, 2_000_000, true},
		{"a million at 1 ns", 1e9, 999_999, true},
		{"fractional gap", 3e8, 10_000_000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newArrivals(Constant, tt.rate, 1, 0, 1e9)
			b := a
			until := a.next + tt.ahead
			var want uint64
			for b.next <= until {
				b.advance()
				want++
			}
			if got := a.skip(until); got != want {
				t.Errorf("skip counted %d, advancing passes %d", got, want)
			}
			if a.next <= until || (tt.exactNext && abs(a.next-b.next) > 1) {
				t.Errorf("after skip next %d, advancing gives %d (until %d)", a.next, b.next, until)
			}
		})
	}
	t.Run("poisson", func(t *testing.T) {
		a := newArrivals(Poisson, 1e6, 1, 0, 0)
		until := a.next + int64(time.Second)
		n := a.skip(until)
		if n < 999_000 || n > 1_001_000 || a.next <= until {
			t.Errorf("skip of a second at 1e6/s: %d arrivals, next %d after %d", n, a.next, until)
		}
	})
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// delayingUDPPeer echoes datagrams, but sends every k-th reply only after
// delay: the generator has given up on that request by then.
func delayingUDPPeer(t *testing.T, k int, delay time.Duration) *peer {
	return serveUDP(t, func(p *peer, pc net.PacketConn) {
		buf := make([]byte, 64<<10)
		for i := 1; ; i++ {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if i%k == 0 {
				late := append([]byte(nil), buf[:n]...)
				time.AfterFunc(delay, func() { pc.WriteTo(late, from) })
				continue
			}
			pc.WriteTo(buf[:n], from)
		}
	})
}

// TestLateReply: a correct reply after the request's timeout is a late
// reply, not a mismatch; the request stays lost, and is in the histogram
// at its timeout or more.
func TestLateReply(t *testing.T) {
	for _, size := range []int{4, 32} { // a one-byte identity, an 8-byte id
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			srv := delayingUDPPeer(t, 100, 80*time.Millisecond)
			spec := Spec{Workload: Echo, Proto: backends.UDP, Conns: 1, Depth: 4, Size: size,
				Timeout: 30 * time.Millisecond, Duration: 500 * time.Millisecond}
			rep := run(t, spec, srv.addr)
			if rep.LateReplies == 0 {
				t.Errorf("late replies 0, want > 0 (ops %d, errors %+v)", rep.Ops, rep.Errors)
			}
			if rep.Errors.Mismatch != 0 {
				t.Errorf("%d mismatches: late replies counted as corrupt", rep.Errors.Mismatch)
			}
			if rep.Errors.Lost < rep.LateReplies {
				t.Errorf("lost %d < late replies %d: a late reply's request is lost first", rep.Errors.Lost, rep.LateReplies)
			}
			censored(t, rep, spec.Timeout)
		})
	}
}

// censored checks that the lost and timed-out requests are in the
// histogram, at the timeout or more.
func censored(t *testing.T, rep *Report, timeout time.Duration) {
	t.Helper()
	gaveUp := rep.Errors.Lost + rep.Errors.Timeout
	if gaveUp == 0 {
		t.Fatalf("no request given up (ops %d): the test's server misbehaved too little", rep.Ops)
	}
	if rep.Censored != gaveUp {
		t.Errorf("censored %d, want lost+timeout = %d", rep.Censored, gaveUp)
	}
	if got := uint64(rep.Latency.TotalCount()); got != rep.Ops+rep.Censored {
		t.Errorf("%d latencies for %d ops and %d censored", got, rep.Ops, rep.Censored)
	}
	if max := time.Duration(rep.Latency.Max()); max < timeout {
		t.Errorf("max latency %v below the timeout %v of the requests given up", max, timeout)
	}
}

// TestGivenUpInHistogram: a UDP server that never answers some datagrams,
// a TCP server that stops answering one connection: the requests lost or
// timed out count, and are in the histogram at their timeout.
func TestGivenUpInHistogram(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		srv := udpEchoPeer(t, nil, func(i int) bool { return i%50 == 49 })
		spec := Spec{Workload: Echo, Proto: backends.UDP, Conns: 2, Depth: 2, Size: 16,
			Timeout: 100 * time.Millisecond, Duration: 400 * time.Millisecond}
		rep := run(t, spec, srv.addr)
		censored(t, rep, spec.Timeout)
		if rep.Errors.Timeout != 0 || rep.Errors.Mismatch != 0 {
			t.Errorf("errors %+v: want only lost", rep.Errors)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		var accepted atomic.Int32
		srv := serveTCP(t, func(p *peer, c net.Conn) {
			if accepted.Add(1) == 1 {
				// The first connection goes silent in the window.
				c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
				echoConn(nil)(p, c)
				<-p.done
				return
			}
			echoConn(nil)(p, c)
		})
		const depth = 3
		spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: depth, Size: 10,
			Timeout: 100 * time.Millisecond, Duration: 500 * time.Millisecond}
		rep := run(t, spec, srv.addr)
		censored(t, rep, spec.Timeout)
		// Closed loop: the silent connection has exactly Depth requests in
		// flight, and every one of them times out visibly.
		if rep.Errors.Timeout != depth {
			t.Errorf("timeouts %d, want the %d requests in flight on the silent connection", rep.Errors.Timeout, depth)
		}
	})
}

// TestRateBeyondGenerator: at the highest rate Validate allows, the
// generator cannot keep up; it must still stop at its duration, hold
// bounded memory, and count what it could not send as Unsent.
func TestRateBeyondGenerator(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		srv  func(t *testing.T) *peer
	}{
		{"tcp echo", Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 4, Size: 64},
			func(t *testing.T) *peer { return tcpEchoPeer(t, nil) }},
		{"udp echo poisson", Spec{Workload: Echo, Proto: backends.UDP, Conns: 2, Depth: 4, Size: 64, Arrival: Poisson},
			func(t *testing.T) *peer { return udpEchoPeer(t, nil, nil) }},
		{"tcp stream up", Spec{Workload: Stream, Proto: backends.TCP, Conns: 1, Size: 1000},
			func(t *testing.T) *peer { return tcpSinkPeer(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv(t)
			spec := tt.spec
			spec.Rate, spec.Warmup, spec.Duration = maxRate, 0, 300*time.Millisecond
			var peak atomic.Uint64
			sampled := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			type result struct {
				rep *Report
				err error
			}
			ended := make(chan result, 1)
			go func() {
				rep, err := Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{})
				ended <- result{rep, err}
			}()
			var res result
			select {
			case res = <-ended:
			case <-time.After(30 * time.Second):
				t.Fatal("Run at the highest rate does not end: --duration is not honoured")
			}
			close(done)
			<-sampled
			if res.err != nil {
				t.Fatalf("Run: %v", res.err)
			}
			rep := res.rep
			checkReport(t, rep)
			if rep.Unsent == 0 {
				t.Errorf("unsent 0 at %g/s (sent %d): the generator cannot have kept up", spec.Rate, rep.Sent)
			}
			if rep.Sent == 0 {
				t.Error("nothing sent")
			}
			if p := peak.Load(); p > 200<<20 {
				t.Errorf("heap in use peaked at %d MB", p>>20)
			}
		})
	}
}

// TestDrainCollectsAnswers: a server that answers each request 60 ms late;
// the requests sent in the window's last 60 ms are answered after it, and
// the drain still counts them: every request of the window sent is
// answered, none given up.
func TestDrainCollectsAnswers(t *testing.T) {
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		t.Run(string(proto), func(t *testing.T) {
			const delay = 60 * time.Millisecond
			var srv *peer
			if proto == backends.TCP {
				srv = serveTCP(t, func(p *peer, c net.Conn) {
					buf := make([]byte, 64)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						time.Sleep(delay)
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
				})
			} else {
				srv = delayingUDPPeer(t, 1, delay)
			}
			spec := Spec{Workload: Echo, Proto: proto, Conns: 2, Depth: 1, Size: 16, Duration: 300 * time.Millisecond}
			rep := run(t, spec, srv.addr)
			if rep.Errors.Total() != 0 || rep.Censored != 0 {
				t.Errorf("errors %+v, censored %d: answers after the window were not collected", rep.Errors, rep.Censored)
			}
			if rep.Ops != rep.Sent || rep.Ops == 0 {
				t.Errorf("ops %d of %d sent in the window", rep.Ops, rep.Sent)
			}
			if min := time.Duration(rep.Latency.Min()); min < delay {
				t.Errorf("min latency %v below the server's delay %v", min, delay)
			}
		})
	}
}
