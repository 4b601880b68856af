package uring

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
)

func TestUserDataRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		op   op
		gen  uint16
		n    int
		bid  uint16
		slot uint32
	}{
		{opRecv, 0, 1, 0, 0},
		{opSend, 0xffff, maxGather, 0xffff, maxSlots - 1},
		{opSendmsg, 7, 3, 4095, 12345},
	} {
		ud := userData(tc.op, tc.gen, tc.n, tc.bid, tc.slot)
		if udOp(ud) != tc.op || udGen(ud) != tc.gen || udCount(ud) != tc.n || udBid(ud) != tc.bid || udSlot(ud) != tc.slot {
			t.Errorf("%+v: decoded op %d gen %d n %d bid %d slot %d", tc, udOp(ud), udGen(ud), udCount(ud), udBid(ud), udSlot(ud))
		}
	}
}

func TestOptions(t *testing.T) {
	v := variants[0]
	for _, tc := range []struct {
		opts map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{optSpinUs: "50", optSqCPU: "1", optBufCount: "1024", optEntries: "256"}, true},
		{map[string]string{"bogus": "1"}, false},
		{map[string]string{optBufCount: "1000"}, false},
		{map[string]string{optEntries: "-1"}, false},
		// ×1000 to ns overflowed int64 silently.
		{map[string]string{optSpinUs: "100000000000000000"}, false},
		{map[string]string{optSpinUs: "1000000"}, true},
		// A uint32 of io_uring_params, truncated silently.
		{map[string]string{optSqIdle: "4294967297"}, false},
		{map[string]string{optBatch: "4294967296"}, false},
		{map[string]string{optBatchUs: "10000000000000"}, false},
		{map[string]string{optRawEnter: "2"}, false},
		{map[string]string{optBufSize: "1000000000000"}, false},
	} {
		_, err := newPlan(v, backends.Config{Proto: backends.TCP, Service: backends.Echo, Options: tc.opts})
		if (err == nil) != tc.ok {
			t.Errorf("options %v: err = %v, want ok %v", tc.opts, err, tc.ok)
		}
	}
}

// TestSQEntries: sq_entries is a power of two from 1 to 32768 (the
// kernel's IORING_MAX_ENTRIES), and a ring of exactly that many entries is
// what every variant sets up. Anything else is refused rather than rounded
// up or clamped as the kernel would: the record would then name a ring size
// that was not the one measured.
func TestSQEntries(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, bad := range []string{"0", "3", "1000", "65536", "-1", "x"} {
				_, err := newPlan(v, backends.Config{Proto: backends.TCP, Service: backends.Echo, Options: map[string]string{optEntries: bad}})
				if err == nil || !strings.Contains(err.Error(), optEntries) {
					t.Errorf("sq_entries=%s: err = %v, want a refusal naming sq_entries", bad, err)
				}
			}
			if v.probe() != nil {
				return // the refusals above hold on any kernel; setting up needs the variant's
			}
			for _, n := range []uint32{1, 32768} {
				p, err := newPlan(v, backends.Config{Proto: backends.TCP, Service: backends.Echo, Options: map[string]string{optEntries: strconv.Itoa(int(n))}})
				if err != nil {
					t.Fatalf("sq_entries=%d: %v", n, err)
				}
				r, err := setupRing(p, -1)
				if err != nil {
					t.Fatalf("sq_entries=%d: set up the ring: %v", n, err)
				}
				if got := r.SQEntries(); got != n {
					t.Errorf("sq_entries=%d: the ring has %d entries", n, got)
				}
				r.Close()
			}
		})
	}
}

// The registry's check, run at parse time, refuses a CPU that does not
// exist (the kernel says only EINVAL) and accepts one that does.
func TestCheckOptionsCPU(t *testing.T) {
	if err := checkOptions(map[string]string{optSqCPU: "0"}); err != nil {
		t.Errorf("sq_cpu=0: %v", err)
	}
	err := checkOptions(map[string]string{optSqCPU: "65535"})
	if err == nil || !strings.Contains(err.Error(), "CPU 65535 does not exist") {
		t.Errorf("sq_cpu=65535: %v, want CPU 65535 does not exist", err)
	}
}

func TestFeatures(t *testing.T) {
	fs := Features()
	if len(fs) == 0 || fs[0].Name != "io_uring" {
		t.Fatalf("Features() = %+v, want io_uring first", fs)
	}
	if !fs[0].Supported {
		t.Skipf("skipped: io_uring unavailable: %s", fs[0].Detail)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		if f.Detail == "" {
			t.Errorf("%s: no detail", f.Name)
		}
		seen[f.Name] = f.Supported
	}
	// Every variant's probe must agree with the list: a variant that runs
	// has its setup flags listed as supported.
	for _, v := range variants {
		if v.probe() != nil {
			continue
		}
		for _, f := range setupFlags {
			if f.flags&v.flags != 0 && f.flags&^v.flags == 0 && !seen[f.name] {
				t.Errorf("%s runs but Features says %s is unsupported", v.name, f.name)
			}
		}
	}
}

// TestEchoAllVariants checks correctness and counters under pipelined load
// on many connections, for every variant (backendtest covers the edge cases).
func TestEchoAllVariants(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			srv := startServer(t, v.name, backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0}})
			n := echoLoad(t, srv.Port(), 16, 4, 300, 50)
			want := n * 300
			c := waitCounters(t, srv, func(c backends.Counters) bool { return c.TxBytes == want && c.Closed == 16 })
			if c.RxBytes != want || c.TxBytes != want {
				t.Errorf("RxBytes %d TxBytes %d, want %d each", c.RxBytes, c.TxBytes, want)
			}
			if c.Accepted != 16 || c.Closed != 16 {
				t.Errorf("Accepted %d Closed %d, want 16 each", c.Accepted, c.Closed)
			}
			if c.Syscalls == 0 {
				t.Error("Syscalls = 0 after traffic")
			}
			if v.has(featZC) && c.Extra["zc_sends"] == 0 {
				t.Errorf("zc: no zc_sends counted (extra %v)", c.Extra)
			}
		})
	}
}

// TestRawEnter runs the default variant with raw_enter=1 under pipelined
// load: same bytes back, same counters.
func TestRawEnter(t *testing.T) {
	srv := startServer(t, "uring", backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0},
		Options: map[string]string{optRawEnter: "1"}})
	n := echoLoad(t, srv.Port(), 8, 4, 200, 50)
	want := n * 200
	c := waitCounters(t, srv, func(c backends.Counters) bool { return c.TxBytes == want && c.Closed == 8 })
	if c.RxBytes != want || c.TxBytes != want || c.Closed != 8 {
		t.Errorf("RxBytes %d TxBytes %d Closed %d, want %d, %d, 8", c.RxBytes, c.TxBytes, c.Closed, want, want)
	}
}

// TestWaitsCounted: the counters say whether the loop's waits were raw,
// both counts present, zero included. An SQPOLL loop's raw wait is bounded
// and an idle one goes on through the runtime, so it may count both.
func TestWaitsCounted(t *testing.T) {
	for _, tc := range []struct {
		variant    string
		rawEnter   string
		raw        bool // raw waits, and no runtime waits unless runtimeToo
		runtimeToo bool
	}{
		{"uring", "1", true, false},
		{"uring", "0", false, true},
		{"uring-basic", "1", true, false},
		{"uring-sqpoll", "1", true, true},
		{"uring-sqpoll", "0", false, true},
	} {
		t.Run(tc.variant+"/raw_enter="+tc.rawEnter, func(t *testing.T) {
			srv := startServer(t, tc.variant, backends.Config{Proto: backends.TCP, Service: backends.Echo,
				Options: map[string]string{optRawEnter: tc.rawEnter}})
			echoLoad(t, srv.Port(), 1, 1, 64, 20)
			// Idle long enough that the loop must wait (under load an
			// SQPOLL loop can reap every completion without one), then
			// wake it: a loop publishes its counts between waits.
			time.Sleep(50 * time.Millisecond)
			echoLoad(t, srv.Port(), 1, 1, 64, 1)
			c := waitCounters(t, srv, func(c backends.Counters) bool {
				return c.Extra["raw_waits"]+c.Extra["runtime_waits"] > 0
			})
			raw, rawOK := c.Extra["raw_waits"]
			rt, rtOK := c.Extra["runtime_waits"]
			if !rawOK || !rtOK {
				t.Fatalf("raw_waits or runtime_waits missing from the counters: %v", c.Extra)
			}
			if (raw > 0) != tc.raw || (rt > 0 && !tc.runtimeToo) || (!tc.raw && rt == 0) {
				t.Errorf("raw_waits %d, runtime_waits %d with raw_enter=%s", raw, rt, tc.rawEnter)
			}
		})
	}
}

// TestEchoLargePipelined fills the sockets: 16 KiB messages, eight in
// flight per connection, so sends come back short and buffers queue up
// behind them; every byte must come back in order.
func TestEchoLargePipelined(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			srv := startServer(t, v.name, backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0}, MsgSize: 16 << 10})
			n := echoLoad(t, srv.Port(), 8, 8, 16<<10, 10)
			want := n * 16 << 10
			c := waitCounters(t, srv, func(c backends.Counters) bool { return c.TxBytes == want })
			if c.RxBytes != want || c.TxBytes != want {
				t.Errorf("RxBytes %d TxBytes %d, want %d each", c.RxBytes, c.TxBytes, want)
			}
			if v.has(featBundle) {
				t.Logf("bundle counters: %v", c.Extra)
				if c.Extra["send_bundles"] == 0 {
					t.Error("uring-bundle issued no send bundles")
				}
			}
		})
	}
}

// TestNoAllocPerPacket checks the data path allocates nothing: a few
// thousand echoes may cost the whole process (client included) only a
// handful of allocations.
func TestNoAllocPerPacket(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			// Unpinned: a pinned SQPOLL loop shares its CPU with its SQ
			// thread, and a ping-pong then waits a scheduler slice per echo.
			srv := startServer(t, v.name, backends.Config{Proto: backends.TCP, Service: backends.Echo})
			// Warm up: the connection's first packets grow tables once.
			echoLoad(t, srv.Port(), 1, 1, 64, 10)
			// A ping-pong over SQPOLL waits a scheduler slice per echo
			// when the machine is busy: fewer rounds keep it short.
			rounds := 4000
			if v.has(featSQPoll) {
				rounds = 300
			}
			// Not testing.AllocsPerRun: it sets GOMAXPROCS to 1, and the
			// loop's raw wait keeps the only P (preempt.Hold counts on
			// the GOMAXPROCS the server started with). One connection;
			// the dial costs a few allocations, the echoes must cost none.
			allocs := mallocs(func() { echoConnAllocs(t, srv.Port(), rounds) })
			if allocs > uint64(rounds)/10 {
				t.Errorf("%v allocations for %d echoes: the data path allocates", allocs, rounds)
			}
		})
	}
}

// mallocs counts the heap allocations the whole process makes during f.
func mallocs(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

func echoConnAllocs(t *testing.T, port, rounds int) {
	if err := echoConn(port, 1, 1, 64, rounds); err != nil {
		t.Fatal(err)
	}
	runtime.Gosched()
}

// TestSQPollSyscallRatio checks the point of SQPOLL: under the same echo
// load it makes far fewer syscalls per echo than a ring that enters to wait
// for each batch of completions (batch=1: the kernel's min-wait batching,
// which the default also uses, depends on timing; this ratio holds on any
// machine).
func TestSQPollSyscallRatio(t *testing.T) {
	perOp := map[string]float64{}
	for _, name := range []string{"uring", "uring-sqpoll"} {
		cfg := backends.Config{Proto: backends.TCP, Service: backends.Echo}
		if name == "uring" {
			cfg.Options = map[string]string{"batch": "1"}
		}
		srv := startServer(t, name, cfg)
		before := srv.Counters().Syscalls
		n := echoLoad(t, srv.Port(), 8, 4, 64, 500)
		perOp[name] = float64(srv.Counters().Syscalls-before) / float64(n)
	}
	t.Logf("syscalls per echo: uring %.3f, uring-sqpoll %.4f", perOp["uring"], perOp["uring-sqpoll"])
	if perOp["uring"] == 0 {
		t.Fatal("uring counted no syscalls")
	}
	if perOp["uring-sqpoll"] > perOp["uring"]/4 {
		t.Errorf("uring-sqpoll makes %.4f syscalls per echo, not far below uring's %.3f", perOp["uring-sqpoll"], perOp["uring"])
	}
}

// BenchmarkEcho is a 64-byte ping-pong on one connection per variant; its
// allocs/op (process-wide, client included) shows the server allocates
// nothing per packet.
func BenchmarkEcho(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			srv := startServer(b, v.name, backends.Config{Proto: backends.TCP, Service: backends.Echo})
			echoLoad(b, srv.Port(), 1, 1, 64, 10)
			b.ReportAllocs()
			b.ResetTimer()
			if err := echoConn(srv.Port(), 1, 1, 64, b.N); err != nil {
				b.Fatal(err)
			}
		})
	}
}
