package workloads

import "bytes"

// tcpEcho is a byte-stream echo connection: it pipelines up to Depth
// requests, taken from requestPattern, and reassembles the replies from the
// stream in order, comparing each chunk where it lands.
type tcpEcho struct {
	sock
	size, depth int
	// The request ring: offset in requestPattern, latency base (intended
	// time in open loop) and actual send time of each request in flight,
	// oldest at head.
	reqOff   []int32
	reqAt    []int64
	reqSent  []int64
	head     int
	inflight int
	got      int  // bytes of the head's reply seen so far
	bad      bool // the head's reply differs from its request
	seq      uint64
	// wbuf holds requests copied in for one write; wbuf[wOff:wEnd] is
	// still to be written.
	wbuf       []byte
	wOff, wEnd int
}

var _ flow = (*tcpEcho)(nil)

// tcpBatchBytes bounds one pipelined write.
const tcpBatchBytes = 64 << 10

func newTCPEcho(s sock, size, depth int) *tcpEcho {
	wb := min(depth*size, max(size, tcpBatchBytes))
	return &tcpEcho{
		sock: s, size: size, depth: depth,
		reqOff: make([]int32, depth), reqAt: make([]int64, depth), reqSent: make([]int64, depth),
		wbuf: make([]byte, wb),
	}
}

func (t *tcpEcho) start() { t.pump() }

func (t *tcpEcho) writable() { t.pump() }

// pump writes what is pending, then refills and writes again while slots
// are free: closed loop every free slot, open loop each queued request.
// Cost per request: a copy of Size bytes; one write per batch.
func (t *tcpEcho) pump() {
	for !t.dead {
		if t.wOff == t.wEnd && !t.fill() {
			t.watchOut(false)
			return
		}
		n, ok := t.send(t.wbuf[t.wOff:t.wEnd])
		if !ok {
			return
		}
		t.wOff += n
	}
}

// fill copies as many due requests into wbuf as slots and room allow.
func (t *tcpEcho) fill() bool {
	now := nanotime()
	n := 0
	for t.inflight < t.depth && n+t.size <= len(t.wbuf) {
		at := now
		if t.l.open {
			if t.queue.len() == 0 {
				break
			}
			at = t.queue.pop()
		} else if now >= t.l.winEnd {
			break // closed loop sends nothing after the window
		}
		off := requestOffset(t.conn, t.seq)
		t.seq++
		copy(t.wbuf[n:n+t.size], requestPattern[off:])
		n += t.size
		i := (t.head + t.inflight) % t.depth
		t.reqOff[i], t.reqAt[i], t.reqSent[i] = int32(off), at, now
		t.inflight++
		t.l.sent(now, at)
	}
	t.wOff, t.wEnd = 0, n
	return n > 0
}

func (t *tcpEcho) readable() {
	n := t.read(t.l.rbuf)
	if n <= 0 {
		return
	}
	t.verify(t.l.rbuf[:n], nanotime())
	t.pump()
}

// verify consumes reply bytes in order: each chunk is compared with the
// part of the head request it covers (one bytes.Equal, no allocation).
func (t *tcpEcho) verify(p []byte, now int64) {
	for len(p) > 0 {
		if t.inflight == 0 {
			// Bytes nobody asked for: the server sent too much.
			t.l.mismatch(now)
			return
		}
		at := t.reqAt[t.head]
		off := int(t.reqOff[t.head]) + t.got
		k := min(t.size-t.got, len(p))
		if !bytes.Equal(p[:k], requestPattern[off:off+k]) {
			t.bad = true
		}
		p = p[k:]
		t.got += k
		if t.got < t.size {
			return
		}
		if t.bad {
			t.l.mismatch(at)
		} else {
			t.l.complete(at, now, t.size)
		}
		t.got, t.bad = 0, false
		t.head++
		if t.head == t.depth {
			t.head = 0
		}
		t.inflight--
	}
}

// expire gives up on the connection when its oldest request is overdue:
// a byte stream cannot skip a reply, so every request in flight and every
// one queued behind them times out with it, each counted and recorded at
// the time it had waited; then the connection is closed as dead.
// Overdue counts from the actual send, not the intended time, so an open
// loop that queues behind a slow server does not time its requests out.
func (t *tcpEcho) expire(now int64) {
	if t.inflight > 0 && now-t.reqSent[t.head] > t.l.timeout {
		t.giveUp(now)
		for t.queue.len() > 0 {
			t.l.gaveUp(t.queue.pop(), now, false)
		}
		t.kill(now, 0, 0, errTimeout)
	}
}

// giveUp counts every request in flight as timed out.
func (t *tcpEcho) giveUp(now int64) {
	for ; t.inflight > 0; t.inflight-- {
		t.l.gaveUp(t.reqAt[t.head], now, false)
		t.head++
		if t.head == t.depth {
			t.head = 0
		}
	}
	t.got, t.bad = 0, false
}

func (t *tcpEcho) pending() bool { return t.inflight > 0 || t.queue.len() > 0 }

// abandon times out the requests in flight; the queued ones were never
// sent.
func (t *tcpEcho) abandon(now int64) {
	t.giveUp(now)
	for t.queue.len() > 0 {
		t.l.unsent(t.queue.pop())
	}
}
