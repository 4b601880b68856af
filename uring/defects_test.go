package uring

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/preempt"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// variantNamed returns the registered variant called name.
func variantNamed(t *testing.T, name string) *variant {
	t.Helper()
	for _, v := range variants {
		if v.name == name {
			if err := v.probe(); err != nil {
				t.Skipf("skipped: %v", err)
			}
			return v
		}
	}
	t.Fatalf("no variant %s", name)
	return nil
}

// newTestLoop builds a TCP echo loop of variant name on a plain ring of
// entries SQEs, driven by hand: the test feeds it CQEs and reads the SQEs
// it queues (never submitted unless the SQ fills).
func newTestLoop(t *testing.T, name string, entries uint32, bufCount int) *loop {
	t.Helper()
	v := variantNamed(t, name)
	p, err := newPlan(v, backends.Config{Proto: backends.TCP, Service: backends.Echo,
		Options: map[string]string{optBufCount: strconv.Itoa(bufCount)}})
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(p, -1, -1, -1)
	if l.ring, err = ring.Setup(ring.Params{Entries: entries}); err != nil {
		t.Fatal(err)
	}
	if err := l.initBuffers(); err != nil {
		t.Fatal(err)
	}
	if err := l.choosePaths(v.flags); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.ring.Close()
		l.bufs.Close()
		if l.sendRingMem != nil {
			unix.Munmap(l.sendRingMem)
		}
		if l.regSource != nil {
			unix.Munmap(l.regSource)
		}
	})
	return l
}

// lastSQE is the SQE the loop queued last.
func lastSQE(l *loop) *abi.IoUringSqe {
	return &l.ring.SQEs()[(l.ring.SQTailLocal()-1)&(l.ring.SQEntries()-1)]
}

// TestSendMoreIsNotZeroCopy feeds a non-zero-copy send a partial result
// with F_MORE, as a send bundle posts: the send is still in flight, so the
// buffer keeps one reference and no second send starts; the final result
// sends the rest and the buffer goes back to the ring.
func TestSendMoreIsNotZeroCopy(t *testing.T) {
	for _, name := range []string{"uring", "uring-bundle"} {
		t.Run(name, func(t *testing.T) {
			l := newTestLoop(t, name, 64, 16)
			l.onAccept(0, abi.IORING_CQE_F_MORE)
			c := &l.conns[0]
			const bid = 3
			l.tcp.onRecv(userData(opRecv, c.gen, 1, 0, 0), 100, abi.IORING_CQE_F_MORE|abi.IORING_CQE_F_BUFFER|bid<<abi.IORING_CQE_BUFFER_SHIFT)
			if !c.sending {
				t.Fatal("no send after the recv")
			}
			sendUD := lastSQE(l).UserData
			pending := l.ring.Pending()
			l.tcp.onSend(sendUD, 60, abi.IORING_CQE_F_MORE)
			if l.refs[bid] != 1 {
				t.Errorf("refs after a partial send = %d, want 1 (F_MORE taken for a zero-copy promise?)", l.refs[bid])
			}
			if !c.sending || l.ring.Pending() != pending {
				t.Errorf("sending %v, %d new SQEs: a second send started while the first is live", c.sending, l.ring.Pending()-pending)
			}
			l.tcp.onSend(sendUD, 40, 0)
			if l.free != l.p.bufCount || l.refs[bid] != 0 || c.sending {
				t.Errorf("after the final result: free %d of %d, refs %d, sending %v", l.free, l.p.bufCount, l.refs[bid], c.sending)
			}
		})
	}
}

// TestSQEFatalEnter makes the ring's enters fail for good with a full SQ:
// sqe must give up and record the error rather than retry forever.
func TestSQEFatalEnter(t *testing.T) {
	l := newTestLoop(t, "uring", 4, 16)
	for l.ring.GetSQE() != nil {
	}
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	// The ring's fd now names /dev/null: every enter fails (EOPNOTSUPP).
	if err := unix.Dup3(null, l.ring.Fd(), unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.sqe()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sqe still retrying a failing enter after 5 s")
	}
	if l.fatal == nil {
		t.Error("sqe gave up without recording the error")
	}
}

// TestAcceptErrors: a terminal accept error stops accepting, a transient
// one re-arms, a full descriptor table re-arms at the next close.
func TestAcceptErrors(t *testing.T) {
	for _, tc := range []struct {
		errno unix.Errno
		rearm bool
	}{
		{unix.EINVAL, false},
		{unix.EBADF, false},
		{unix.ENOTSOCK, false},
		{unix.ECANCELED, false},
		{unix.ECONNABORTED, true},
		{unix.ENOMEM, true},
		{unix.ENFILE, false},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			l := newTestLoop(t, "uring", 16, 16)
			before := l.ring.Pending()
			l.onAccept(-int32(tc.errno), 0)
			if got := l.ring.Pending() > before; got != tc.rearm {
				t.Errorf("re-armed %v, want %v", got, tc.rearm)
			}
			if tc.errno == unix.ENFILE {
				l.onAccept(0, abi.IORING_CQE_F_MORE) // a connection already accepted
				l.closeConn(0)
				if s := lastSQE(l); s.Opcode != abi.IORING_OP_ACCEPT {
					t.Errorf("close did not re-arm the accept stopped by ENFILE (last opcode %d)", s.Opcode)
				}
			}
		})
	}
}

// TestStarvedRearmBounded: five connections ran out of buffers; with two
// back, only two receives are re-armed (the others would only post ENOBUFS
// again), the oldest first.
func TestStarvedRearmBounded(t *testing.T) {
	l := newTestLoop(t, "uring", 64, 16)
	for slot := int32(0); slot < 5; slot++ {
		l.onAccept(slot, abi.IORING_CQE_F_MORE)
	}
	for slot := uint32(0); slot < 5; slot++ {
		l.tcp.onRecv(userData(opRecv, l.conns[slot].gen, 1, 0, slot), -int32(unix.ENOBUFS), 0)
	}
	l.free = 2
	before := l.ring.Pending()
	l.afterBatch()
	if n := l.ring.Pending() - before; n != 2 {
		t.Errorf("%d receives re-armed with 2 free buffers, want 2", n)
	}
	if !l.conns[0].recving || !l.conns[1].recving || l.conns[4].recving {
		t.Error("re-armed out of order: want the first starved first")
	}
}

// TestLargeRingsClamp: sq_entries at the top of the range ask for a CQ
// over the kernel's limit; CLAMP makes it the largest CQ instead.
func TestLargeRingsClamp(t *testing.T) {
	for _, n := range []string{"16384", "32768"} {
		t.Run(n, func(t *testing.T) {
			srv := startServer(t, "uring", backends.Config{Proto: backends.TCP, Service: backends.Echo,
				Options: map[string]string{optEntries: n}})
			echoLoad(t, srv.Port(), 2, 2, 64, 20)
		})
	}
}

func TestRecvBundlesSafe(t *testing.T) {
	for _, tc := range []struct {
		flags uint32
		ok    bool
	}{
		{abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN, true},
		{abi.IORING_SETUP_SQPOLL | abi.IORING_SETUP_SINGLE_ISSUER, false},
		{0, false},
	} {
		if got := recvBundlesSafe(tc.flags); got != tc.ok {
			t.Errorf("recvBundlesSafe(%#x) = %v, want %v", tc.flags, got, tc.ok)
		}
	}
}

// buffersBack closes srv and checks that every loop got every buffer back.
func buffersBack(t *testing.T, srv backends.Server) {
	t.Helper()
	s := srv.(*Server)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, l := range s.loops {
		if l.bufs == nil {
			continue
		}
		if l.free != l.p.bufCount {
			t.Errorf("loop %d: %d of %d buffers back in the ring after every connection closed", i, l.free, l.p.bufCount)
		}
	}
}

// settle waits until every accepted connection is closed, and a little
// longer for the completions of their cancelled sends.
func settle(t *testing.T, srv backends.Server, n uint64) {
	t.Helper()
	c := waitCounters(t, srv, func(c backends.Counters) bool { return c.Accepted == n && c.Closed == n })
	if c.Accepted != n || c.Closed != n {
		t.Fatalf("accepted %d closed %d, want %d", c.Accepted, c.Closed, n)
	}
	time.Sleep(50 * time.Millisecond)
}

// TestSmallBufCount runs pipelined echoes through four buffers: receives
// run dry (ENOBUFS), starve and are re-armed; every echo is still checked
// byte for byte and every buffer returns.
func TestSmallBufCount(t *testing.T) {
	for _, name := range []string{"uring-pbuf", "uring-multishot", "uring", "uring-bundle", "uring-zc", "uring-sqpoll"} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, name, backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0},
				Options: map[string]string{optBufCount: "4"}})
			// Whether receives outrun the buffers' return is a matter of
			// timing: more connections at once until they have (four
			// buffers cannot serve 128 connections' bursts), each load
			// checked in full.
			var want, conns uint64
			var c backends.Counters
			for _, n := range []int{8, 32, 128} {
				want += echoLoad(t, srv.Port(), n, 4, 64, 50) * 64
				conns += uint64(n)
				settle(t, srv, conns)
				if c = srv.Counters(); c.Extra["recv_enobufs"] > 0 && c.Extra["starved_rearms"] > 0 {
					break
				}
			}
			if c.RxBytes != want || c.TxBytes != want {
				t.Errorf("RxBytes %d TxBytes %d, want %d each", c.RxBytes, c.TxBytes, want)
			}
			starvedAndRearmed(t, c)
			buffersBack(t, srv)
		})
	}
}

// starvedAndRearmed checks that receives ran out of buffers and were
// re-armed as they came back: the path a test with a small buf_count is
// there to run.
func starvedAndRearmed(t *testing.T, c backends.Counters) {
	t.Helper()
	if c.Extra["recv_enobufs"] == 0 || c.Extra["starved_rearms"] == 0 {
		t.Errorf("recv_enobufs %d, starved_rearms %d: want both > 0 (a ring run dry, and receives re-armed as buffers came back)",
			c.Extra["recv_enobufs"], c.Extra["starved_rearms"])
	}
}

// TestSmallBufCountUDP sends bursts of datagrams to a UDP echo with four
// buffers: the receive ends with ENOBUFS (the multishot recvmsg, or
// uring-pbuf's one-shot slots) while the datagrams wait in the socket, and
// is re-armed as buffers come back; every datagram is echoed intact and
// every buffer returns.
func TestSmallBufCountUDP(t *testing.T) {
	for _, name := range []string{"uring-pbuf", "uring-multishot", "uring", "uring-zc", "uring-sqpoll"} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, name, backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0},
				Options: map[string]string{optBufCount: "4"}})
			const peers, burst, rounds, size = 4, 32, 5, 64
			var wg sync.WaitGroup
			errs := make(chan error, peers)
			for p := range peers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- udpBursts(srv.Port(), p, burst, rounds, size)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			want := uint64(peers * burst * rounds * size)
			c := waitCounters(t, srv, func(c backends.Counters) bool { return c.TxBytes == want })
			if c.RxBytes != want || c.TxBytes != want || c.Dropped != 0 {
				t.Errorf("RxBytes %d TxBytes %d dropped %d, want %d, %d, 0", c.RxBytes, c.TxBytes, c.Dropped, want, want)
			}
			starvedAndRearmed(t, c)
			time.Sleep(50 * time.Millisecond) // the last sends' completions
			buffersBack(t, srv)
			// Each receive that ran dry is re-armed once, as buffers come
			// back: at most one per free buffer, so at the end up to every
			// receive slot may still wait for traffic to return buffers.
			// (uring-pbuf re-armed all its starved slots at once, counted
			// one, and most ran dry again at once: 159 against 9540.)
			c = srv.Counters()
			if rearms, dry := c.Extra["starved_rearms"], c.Extra["recv_enobufs"]; rearms > dry || dry-rearms > basicRecvSlots {
				t.Errorf("starved_rearms %d, recv_enobufs %d: want one re-arm per receive that ran dry, all but at most %d waiting",
					rearms, dry, basicRecvSlots)
			}
		})
	}
}

// udpBursts sends rounds bursts of burst distinct datagrams from one
// socket, reading no echo until the burst is out, then reads the burst's
// echoes back and checks each is one of the burst's, once.
func udpBursts(port, peer, burst, rounds, size int) error {
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := make([]byte, size)
	in := make([]byte, size+1)
	for r := range rounds {
		pending := map[string]bool{}
		for i := range burst {
			for j := range msg {
				msg[j] = byte(peer*31 + r*7 + i + j)
			}
			binary.LittleEndian.PutUint32(msg, uint32(peer<<24|r<<16|i))
			pending[string(msg)] = true
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("peer %d round %d: write: %w", peer, r, err)
			}
		}
		for range burst {
			n, err := c.Read(in)
			if err != nil {
				return fmt.Errorf("peer %d round %d: %d echoes missing: %w", peer, r, len(pending), err)
			}
			if !pending[string(in[:n])] {
				return fmt.Errorf("peer %d round %d: an echo of %d bytes that was not sent, or twice", peer, r, n)
			}
			delete(pending, string(in[:n]))
		}
	}
	return nil
}

// TestSlotChurn opens and closes thousands of short connections, some
// reset with echoes unread, so direct-descriptor slots are reused while
// completions of their previous connections are still coming.
func TestSlotChurn(t *testing.T) {
	const conns, parallel = 2000, 20
	for _, name := range []string{"uring-pbuf", "uring-multishot", "uring", "uring-bundle", "uring-zc"} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, name, backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0}})
			var wg sync.WaitGroup
			errs := make(chan error, parallel)
			for w := 0; w < parallel; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					msg := make([]byte, 3*64)
					for i := w; i < conns; i += parallel {
						c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port()))
						if err != nil {
							errs <- err
							return
						}
						c.SetDeadline(time.Now().Add(10 * time.Second))
						if _, err := c.Write(msg); err != nil {
							errs <- err
						}
						if i%2 == 0 {
							// Reset with most of the echo unread.
							c.Read(msg[:1])
							c.(*net.TCPConn).SetLinger(0)
						} else if _, err := readFull(c, msg); err != nil {
							errs <- err
						}
						c.Close()
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			settle(t, srv, conns)
			buffersBack(t, srv)
		})
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestStalledPeer: one peer sends without ever reading its echoes. It may
// hold its queue's cap of buffers, not the pool: the other connections'
// echoes still come back. A multishot receive can take many buffers in
// one burst before the loop sees the cap; what is over it is spilled and
// the buffers go back (TestSpillOverCap checks that step by step).
func TestStalledPeer(t *testing.T) {
	for _, name := range []string{"uring-pbuf", "uring-multishot", "uring", "uring-bundle", "uring-zc", "uring-sqpoll"} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, name, backends.Config{Proto: backends.TCP, Service: backends.Echo, CPUs: []int{0},
				Options: map[string]string{optBufCount: "64"}})
			stalled, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port()))
			if err != nil {
				t.Fatal(err)
			}
			writer := make(chan struct{})
			go func() {
				defer close(writer)
				stalled.SetWriteDeadline(time.Now().Add(20 * time.Second))
				chunk := make([]byte, 1<<20)
				for i := 0; i < 256; i++ {
					if _, err := stalled.Write(chunk); err != nil {
						return
					}
				}
			}()
			// Wait until the server stops taking the stalled peer's bytes.
			var last uint64
			for i := 0; i < 100; i++ {
				time.Sleep(50 * time.Millisecond)
				rx := srv.Counters().RxBytes
				if rx == last && rx > 0 {
					break
				}
				last = rx
			}
			done := make(chan error, 1)
			go func() { done <- echoConnWithin(srv.Port(), 4, 64, 50, 5*time.Second) }()
			if err := <-done; err != nil {
				t.Errorf("another connection starved behind the stalled peer: %v", err)
			}
			stalled.Close()
			<-writer
		})
	}
}

// echoConnWithin runs conns connections of rounds 64-byte echoes, all
// within d.
func echoConnWithin(port, conns, size, rounds int, d time.Duration) error {
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		go func(i int) {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(d))
			buf := make([]byte, size)
			for r := 0; r < rounds; r++ {
				if _, err := c.Write(buf); err != nil {
					errs <- err
					return
				}
				if _, err := readFull(c, buf); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(i)
	}
	var first error
	for i := 0; i < conns; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TestTickCompletions feeds the raw wait's tick each completion it can
// post: one with F_MORE changes nothing; an ended tick (ETIME or
// ECANCELED without F_MORE) re-arms the multishot timeout; a refused one
// (EINVAL: a kernel before 6.4) turns raw waits off, since nothing would
// wake them, and arms nothing.
func TestTickCompletions(t *testing.T) {
	cases := []struct {
		name    string
		res     int32
		flags   uint32
		rearm   bool
		rawKept bool
	}{
		{"more", -int32(unix.ETIME), abi.IORING_CQE_F_MORE, false, true},
		{"ended", -int32(unix.ETIME), 0, true, true},
		{"cancelled", -int32(unix.ECANCELED), 0, true, true},
		{"refused", -int32(unix.EINVAL), 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLoop(t, "uring", 16, 16)
			l.waiter, l.ring.RawEnter = rawWait{}, true
			before := l.ring.SQTailLocal()
			l.onTick(c.res, c.flags)
			armed := l.ring.SQTailLocal() - before
			switch {
			case c.rearm && (armed != 1 || lastSQE(l).Opcode != abi.IORING_OP_TIMEOUT || lastSQE(l).OpFlags != abi.IORING_TIMEOUT_MULTISHOT):
				t.Errorf("queued %d SQEs, want the multishot TIMEOUT re-armed", armed)
			case !c.rearm && armed != 0:
				t.Errorf("queued %d SQEs, want none", armed)
			}
			if _, raw := l.waiter.(rawWait); raw != c.rawKept || l.ring.RawEnter != c.rawKept {
				t.Errorf("waiter %T, ring.RawEnter %v after the tick; want raw %v", l.waiter, l.ring.RawEnter, c.rawKept)
			}
			if off := l.count[cRawWaitOff] != 0; l.count[cTicks] != 1 || off == c.rawKept {
				t.Errorf("counted %d ticks and raw_wait_off %d; want 1 and, raw kept %v, 0", l.count[cTicks], l.count[cRawWaitOff], c.rawKept)
			}
		})
	}
}

// TestTickFires arms the tick on a real ring: it must post one -ETIME
// completion with F_MORE per period and stay armed (the multishot flag's
// value and the timespec's layout are right), and an untimed wait (no
// timespec) must end at a tick.
func TestTickFires(t *testing.T) {
	l := newTestLoop(t, "uring", 16, 16)
	l.armTick()
	start := time.Now()
	for i := range 3 {
		if _, err := l.ring.SubmitAndWaitBounded(1, 0, -1, 0); err != nil {
			t.Fatal(err)
		}
		head := l.ring.CQHead()
		if l.ring.CQTail() == head {
			t.Fatalf("tick %d: an untimed wait returned with no completion", i+1)
		}
		c := l.ring.CQE(head)
		if udOp(c.UserData) != opTick || c.Res != -int32(unix.ETIME) || c.Flags&abi.IORING_CQE_F_MORE == 0 {
			t.Fatalf("tick %d: completion op %d res %d flags %#x; want the tick, -ETIME, F_MORE", i+1, udOp(c.UserData), c.Res, c.Flags)
		}
		l.ring.CQAdvance(head + 1)
	}
	// Three periods; the upper bound only catches a tick far off its period.
	if d := time.Since(start); d < 3*preempt.TickNs*time.Nanosecond || d > 3*time.Second {
		t.Errorf("three ticks took %v; want about %v", d, 3*preempt.TickNs*time.Nanosecond)
	}
}
