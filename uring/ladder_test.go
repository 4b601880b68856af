package uring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/meters"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

func ringAddr[T any](p *T) uint64 { return ring.Addr(p) }

// TestLadderSteps: every rung is the rung below plus exactly one feature.
func TestLadderSteps(t *testing.T) {
	byName := map[string]*variant{}
	for _, v := range variants {
		byName[v.name] = v
		if v.base == "" {
			if v.feats != 0 {
				t.Errorf("%s has no base but features %#x", v.name, v.feats)
			}
			continue
		}
		b := byName[v.base]
		if b == nil {
			t.Fatalf("%s: base %s is not an earlier rung", v.name, v.base)
		}
		if bits.OnesCount16(uint16(v.adds)) != 1 || b.has(v.adds) {
			t.Errorf("%s adds %#x to %s: want one feature %s lacks", v.name, v.adds, b.name, b.name)
		}
		// SQPOLL replaces DEFER_TASKRUN (the kernel refuses both).
		if lost := b.feats &^ v.feats; lost != 0 && !(v.has(featSQPoll) && lost == featDefer) {
			t.Errorf("%s drops features %#x of %s", v.name, lost, b.name)
		}
	}
}

// TestLadderSetup starts every rung and checks that its loop is set up as
// its name says: ring flags, registered ring fd, direct descriptors,
// provided buffers, multishot, min-wait, data path.
func TestLadderSetup(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			srv := startServer(t, v.name, backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0}})
			echoLoad(t, srv.Port(), 2, 1, 64, 50)
			l := srv.(*Server).loops[0]
			// What the loop armed, not what it was told: a one-shot rung
			// arms a recv per receive (100 here), a multishot one about
			// one per connection.
			t.Cleanup(func() {
				srv.Close() // the loop is done: its count is safe to read
				if v.has(featPbuf) {
					if arms, multi := l.recvArms, v.has(featMultishot); multi != (arms < 50) {
						t.Errorf("%d recv SQEs for 100 echoes over 2 connections: multishot %v", arms, multi)
					}
				}
			})
			flags := l.ring.Params().Flags
			for _, f := range []struct {
				name string
				flag uint32
				want bool
			}{
				{"DEFER_TASKRUN", abi.IORING_SETUP_DEFER_TASKRUN, v.has(featDefer)},
				{"SINGLE_ISSUER", abi.IORING_SETUP_SINGLE_ISSUER, v.has(featDefer) || v.has(featSQPoll)},
				{"SQPOLL", abi.IORING_SETUP_SQPOLL, v.has(featSQPoll)},
			} {
				if got := flags&f.flag != 0; got != f.want {
					t.Errorf("ring %s = %v, want %v", f.name, got, f.want)
				}
			}
			if got := l.ring.RingFdRegistered(); got != v.has(featFixed) {
				t.Errorf("ring fd registered = %v, want %v", got, v.has(featFixed))
			}
			if l.fixed != v.has(featFixed) {
				t.Errorf("direct descriptors = %v, want %v", l.fixed, v.has(featFixed))
			}
			if got := l.bufs != nil; got != v.has(featPbuf) {
				t.Errorf("provided buffer ring = %v, want %v", got, v.has(featPbuf))
			}
			if got := l.recvIoprio&abi.IORING_RECV_MULTISHOT != 0; got != v.has(featMultishot) {
				t.Errorf("multishot recv = %v, want %v", got, v.has(featMultishot))
			}
			if got := l.recvIoprio&abi.IORING_RECVSEND_BUNDLE != 0; got != v.has(featBundle) {
				t.Errorf("recv bundles = %v, want %v", got, v.has(featBundle))
			}
			wantBatch := v.has(featMinWait) && l.ring.Features()&abi.IORING_FEAT_MIN_TIMEOUT != 0
			if _, batched := l.batching.(adaptiveBatching); batched != wantBatch {
				t.Errorf("min-wait batching = %v, want %v", batched, wantBatch)
			}
			var want string
			switch {
			case !v.has(featPbuf):
				want = "*uring.basicTCP"
			case v.has(featZC):
				want = "*uring.zcTCP"
			case v.has(featBundle):
				want = "*uring.bundleTCP"
			default:
				want = "*uring.gatherTCP"
			}
			if got := fmt.Sprintf("%T", l.tcp); got != want {
				t.Errorf("TCP path %s, want %s", got, want)
			}
		})
	}
}

// TestBundleRefuses: uring-bundle refuses UDP and TCP source, from the
// registry and from New, with the reason; it never runs uring's path
// under its name.
func TestBundleRefuses(t *testing.T) {
	b, err := backends.Lookup("uring-bundle")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		proto backends.Proto
		svc   backends.Service
	}{{backends.UDP, backends.Echo}, {backends.UDP, backends.Sink}, {backends.TCP, backends.Source}} {
		if err := b.Supports(tc.proto, tc.svc); !errors.Is(err, backends.ErrNotSupported) {
			t.Errorf("Supports(%s, %s) = %v, want ErrNotSupported", tc.proto, tc.svc, err)
		}
		srv, err := b.New(backends.Config{Proto: tc.proto, Service: tc.svc, Host: "127.0.0.1", MsgSize: 64})
		if err == nil {
			srv.Close()
			t.Errorf("New(%s %s) started a server", tc.proto, tc.svc)
		} else if !errors.Is(err, backends.ErrNotSupported) {
			t.Errorf("New(%s %s) = %v, want ErrNotSupported", tc.proto, tc.svc, err)
		}
	}
}

// TestZCSendsFromRegisteredBuffers: uring-zc's echo is a SEND_ZC naming the
// registered pool (IORING_RECVSEND_FIXED_BUF, buf_index 0).
func TestZCSendsFromRegisteredBuffers(t *testing.T) {
	l := newTestLoop(t, "uring-zc", 64, 16)
	l.onAccept(0, abi.IORING_CQE_F_MORE)
	c := &l.conns[0]
	const bid = 5
	l.tcp.onRecv(userData(opRecv, c.gen, 1, 0, 0), 64, abi.IORING_CQE_F_MORE|abi.IORING_CQE_F_BUFFER|bid<<abi.IORING_CQE_BUFFER_SHIFT)
	s := lastSQE(l)
	if s.Opcode != abi.IORING_OP_SEND_ZC || s.Ioprio&abi.IORING_RECVSEND_FIXED_BUF == 0 || s.BufIndex != zcPoolBuf {
		t.Errorf("echo SQE: opcode %d ioprio %#x buf_index %d; want SEND_ZC with FIXED_BUF from buffer %d", s.Opcode, s.Ioprio, s.BufIndex, zcPoolBuf)
	}
	if s.Addr != l.bufs.Addr(bid, 0) {
		t.Errorf("echo sent from %#x, want buffer %d at %#x", s.Addr, bid, l.bufs.Addr(bid, 0))
	}
}

// TestZCEveryPath runs uring-zc's echo and source over TCP and UDP: each
// must send zero-copy (zc_sends) and say how many sends were copied
// (zc_copied, present even when 0).
func TestZCEveryPath(t *testing.T) {
	for _, tc := range []struct {
		proto backends.Proto
		svc   backends.Service
	}{{backends.TCP, backends.Echo}, {backends.TCP, backends.Source}, {backends.UDP, backends.Echo}, {backends.UDP, backends.Source}} {
		t.Run(string(tc.proto)+"/"+string(tc.svc), func(t *testing.T) {
			srv := startServer(t, "uring-zc", backends.Config{Proto: tc.proto, Service: tc.svc, CPUs: []int{0}, MsgSize: 1024})
			addr := "127.0.0.1:" + strconv.Itoa(srv.Port())
			c, err := net.Dial(string(tc.proto), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := bytes.Repeat([]byte{7}, 1024)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1024)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if tc.svc == backends.Echo && !bytes.Equal(got, msg) {
				t.Fatal("echo differs")
			}
			cs := waitCounters(t, srv, func(c backends.Counters) bool { return c.Extra["zc_sends"] > 0 })
			if cs.Extra["zc_sends"] == 0 {
				t.Fatalf("no zero-copy send completed (extra %v)", cs.Extra)
			}
			if _, ok := cs.Extra["zc_copied"]; !ok {
				t.Errorf("zc_copied missing from %v", cs.Extra)
			}
			t.Logf("extra %v", cs.Extra)
		})
	}
}

// TestSQPollSharedCoreCounted: an SQPOLL loop whose SQ thread shares its
// CPU counts its waits in sq_shared_core_waits, so a record says the mode
// it measured; with the SQ thread on another CPU it counts none.
func TestSQPollSharedCoreCounted(t *testing.T) {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil || !set.IsSet(0) || !set.IsSet(1) {
		t.Skip("skipped: needs CPUs 0 and 1")
	}
	for _, tc := range []struct {
		opts   map[string]string
		shared bool
	}{{nil, true}, {map[string]string{optSqCPU: "1"}, false}} {
		srv := startServer(t, "uring-sqpoll", backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0}, Options: tc.opts})
		echoLoad(t, srv.Port(), 2, 1, 64, 50)
		// Idle now: a shared loop goes on to wait.
		c := waitCounters(t, srv, func(c backends.Counters) bool { return !tc.shared || c.Extra["sq_shared_core_waits"] > 0 })
		if got := c.Extra["sq_shared_core_waits"] > 0; got != tc.shared {
			t.Errorf("sq_cpu %v: sq_shared_core_waits %d, want shared %v", tc.opts, c.Extra["sq_shared_core_waits"], tc.shared)
		}
	}
}

// TestSQPollIdleThreadSleeps: an idle uring-sqpoll server's SQ thread
// sleeps once sq_thread_idle has passed. A timeout on an SQPOLL ring (the
// raw wait's tick, which SQPOLL loops do not arm) expires as task work of
// the SQ thread and restarts its idle period: a 10 ms tick under a 20 ms
// idle kept it spinning for good.
func TestSQPollIdleThreadSleeps(t *testing.T) {
	srv := startServer(t, "uring-sqpoll", backends.Config{Proto: backends.TCP, Service: backends.Echo,
		Options: map[string]string{optRawEnter: "1", optSqIdle: "20"}})
	echoLoad(t, srv.Port(), 1, 1, 64, 10)
	time.Sleep(200 * time.Millisecond) // ten idle periods
	const window = time.Second
	before := sqThreadsRun(t)
	start := time.Now()
	time.Sleep(window)
	share := float64(sqThreadsRun(t)-before) / float64(time.Since(start))
	t.Logf("the idle SQ thread ran %.1f%% of %v", 100*share, window)
	if share > 0.05 {
		t.Errorf("the idle SQ thread ran %.0f%% of a %v window; want it asleep (under 5%%)", 100*share, window)
	}
}

// sqThreadsRun sums the run time (schedstat) of this process's SQPOLL
// threads (comm iou-sqp-PID); it fails the test if there is none.
func sqThreadsRun(t *testing.T) time.Duration {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	found := 0
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || !strings.HasPrefix(string(comm), "iou-sqp-") {
			continue
		}
		b, err := os.ReadFile(d + "/schedstat")
		if err != nil {
			t.Fatal(err)
		}
		run, _, err := meters.ParseSchedstat(b)
		if err != nil {
			t.Fatal(err)
		}
		total += run
		found++
	}
	if found == 0 {
		t.Fatal("no iou-sqp- thread in /proc/self/task")
	}
	return time.Duration(total)
}

// TestSpillOverCap feeds one connection a multishot burst of 40 buffers
// with a queue cap of 16, as a peer that stops reading can cause: the 24
// over the cap are copied out and go back to the ring at once, the recv
// is cancelled, the echo comes out in order (queue, then spill), and the
// recv is re-armed only once everything went out.
func TestSpillOverCap(t *testing.T) {
	l := newTestLoop(t, "uring", 64, 64)
	if l.queueCap != 16 {
		t.Fatalf("queue cap %d, want 16", l.queueCap)
	}
	l.onAccept(0, abi.IORING_CQE_F_MORE)
	c := &l.conns[0]
	const burst, size = 40, 100
	var want []byte
	for bid := uint16(0); bid < burst; bid++ {
		b := l.bufs.Buf(bid)[:size]
		for i := range b {
			b[i] = byte(int(bid)*7 + i)
		}
		want = append(want, b...)
		l.tcp.onRecv(userData(opRecv, c.gen, 1, 0, 0), size, abi.IORING_CQE_F_MORE|abi.IORING_CQE_F_BUFFER|uint32(bid)<<abi.IORING_CQE_BUFFER_SHIFT)
	}
	if held := l.p.bufCount - l.free; held != l.queueCap {
		t.Fatalf("the connection holds %d buffers after the burst, want its cap %d", held, l.queueCap)
	}
	if !c.paused || len(c.spill) != (burst-l.queueCap)*size {
		t.Fatalf("paused %v, spill %d bytes; want paused, %d", c.paused, len(c.spill), (burst-l.queueCap)*size)
	}
	// The cancel lands: the multishot recv ends.
	l.tcp.onRecv(userData(opRecv, c.gen, 1, 0, 0), -int32(unix.ECANCELED), 0)
	if c.recving {
		t.Fatal("re-armed while over the cap")
	}
	var sent []byte
	from := uint32(0)
	for round := 0; c.sending && round < 10; round++ {
		s := lastSend(l, from)
		from = l.ring.SQTailLocal()
		if s == nil {
			t.Fatalf("round %d: sending, but no send queued", round)
		}
		var n int
		switch {
		case s.Opcode == abi.IORING_OP_SEND && udOp(s.UserData) == opSpill:
			n = int(s.Len)
			if s.Addr != ringAddr(&c.spill[c.spillOff]) {
				t.Fatalf("round %d: the spill send does not send the spill", round)
			}
			sent = append(sent, c.spill[c.spillOff:c.spillOff+n]...)
		case s.Opcode == abi.IORING_OP_SEND:
			bid := udBid(s.UserData)
			n = int(s.Len)
			if s.Addr != l.bufs.Addr(bid, int(l.off[bid])) {
				t.Fatalf("round %d: the send does not send buffer %d", round, bid)
			}
			sent = append(sent, l.bufs.Buf(bid)[l.off[bid]:int(l.off[bid])+n]...)
		case s.Opcode == abi.IORING_OP_SENDMSG:
			g := c.gather
			if s.Addr != ringAddr(&g.hdr) {
				t.Fatalf("round %d: the sendmsg does not send the connection's gather", round)
			}
			for _, v := range g.iov[:g.hdr.Iovlen] {
				sent = append(sent, unsafe.Slice(v.Base, v.Len)...)
				n += int(v.Len)
			}
		default:
			t.Fatalf("round %d: opcode %d, want a send", round, s.Opcode)
		}
		ud := s.UserData
		if udOp(ud) == opSpill {
			l.onSpill(ud, int32(n))
		} else {
			l.tcp.onSend(ud, int32(n), 0)
		}
	}
	if !bytes.Equal(sent, want) {
		t.Errorf("echo of %d bytes differs from the %d received (order lost?)", len(sent), len(want))
	}
	if l.free != l.p.bufCount {
		t.Errorf("%d of %d buffers back", l.free, l.p.bufCount)
	}
	if c.paused || !c.recving {
		t.Errorf("after the spill went out: paused %v, recving %v; want the recv re-armed", c.paused, c.recving)
	}
	if s := lastSQE(l); s.Opcode != abi.IORING_OP_RECV {
		t.Errorf("last SQE opcode %d, want the re-armed RECV", s.Opcode)
	}
}

// lastSend is the last send SQE queued at or after SQ position from.
func lastSend(l *loop, from uint32) *abi.IoUringSqe {
	var last *abi.IoUringSqe
	for i := from; i != l.ring.SQTailLocal(); i++ {
		s := &l.ring.SQEs()[i&(l.ring.SQEntries()-1)]
		if s.Opcode == abi.IORING_OP_SEND || s.Opcode == abi.IORING_OP_SENDMSG {
			last = s
		}
	}
	return last
}
