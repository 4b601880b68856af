package workloads

import (
	"bytes"
	"encoding/binary"
	"time"

	"ringbench/backends"
)

// streamUp sends Size-byte messages to a sink: over TCP as one byte stream
// written in large chunks, over UDP one datagram per message. Closed loop
// it writes whenever the socket is writable; open loop it writes the
// messages the schedule queued. A sink answers nothing, so what it counts
// is what the kernel accepted from its send calls, not verified.
type streamUp struct {
	sock
	size int
	part int    // TCP: bytes of the current message already written
	off  uint64 // TCP: stream offset of the next byte
}

var _ flow = (*streamUp)(nil)

// streamChunk is the most one TCP write of a stream carries.
const streamChunk = readBufSize

func (s *streamUp) start() {
	if !s.l.open {
		s.watchOut(true)
	}
}

func (s *streamUp) readable() {
	// A sink sends nothing; a read here finds an error or the peer's close.
	n := s.read(s.l.rbuf)
	if n > 0 {
		s.l.mismatch(nanotime())
	}
}

func (s *streamUp) writable() { s.pump() }

func (s *streamUp) pump() {
	if s.dgram {
		s.pumpDatagrams()
	} else {
		s.pumpBytes()
	}
}

// pumpBytes costs one write per up to streamChunk bytes. The bytes are
// the source pattern from stream offset 0, so a sink could verify them.
func (s *streamUp) pumpBytes() {
	for {
		want := streamChunk
		if !s.l.open && nanotime() >= s.l.winEnd {
			s.watchOut(false) // closed loop sends nothing after the window
			return
		}
		if s.l.open {
			want = min(streamChunk, s.queue.len()*s.size-s.part)
			if want <= 0 {
				s.watchOut(false)
				return
			}
		}
		n, ok := s.send(sourceAt(s.off, want))
		if !ok {
			return
		}
		now := nanotime()
		s.off += uint64(n)
		s.part += n
		done := s.part / s.size
		s.part %= s.size
		if !s.l.open {
			// Closed loop: every byte is sent at now; a message counts
			// when its last byte is.
			if s.l.inWindow(now) {
				s.l.n.sent += uint64(done)
			}
			s.l.count(now, done, n)
			return // EPOLLOUT stays on: the next event writes again
		}
		// Open loop: a message, its bytes included, belongs to the window
		// of its intended time; it counts when its last byte is written.
		for range done {
			at := s.queue.pop()
			s.l.sent(now, at)
			s.l.count(at, 1, s.size)
		}
		if n < want {
			s.watchOut(true) // the socket is full: wait for room
			return
		}
	}
}

// pumpDatagrams costs one sendmmsg per up to udpBatch messages; the
// loop's send batch already holds the datagram.
func (s *streamUp) pumpDatagrams() {
	k := s.l.tx.Len()
	if !s.l.open && nanotime() >= s.l.winEnd {
		s.watchOut(false) // closed loop sends nothing after the window
		return
	}
	if s.l.open {
		k = min(k, s.queue.len())
		if k == 0 {
			s.watchOut(false)
			return
		}
	}
	n, err := s.l.tx.Send(s.fd, 0, k, 0)
	sent := s.mmsgResult("send", n, err)
	if sent == failed {
		return
	}
	now := nanotime()
	for range max(sent, 0) {
		at := now
		if s.l.open {
			at = s.queue.pop()
		}
		s.l.sent(now, at)
		s.l.count(at, 1, s.size)
	}
	if s.l.open {
		// Come back when writable if the socket was full or more is queued.
		s.watchOut(sent < k || s.queue.len() > 0)
	}
}

func (s *streamUp) expire(int64) {}

func (s *streamUp) pending() bool { return s.queue.len() > 0 }

// abandon counts the messages still queued as unsent; a TCP message
// partly written counts with them.
func (s *streamUp) abandon(int64) {
	for s.queue.len() > 0 {
		s.l.unsent(s.queue.pop())
	}
}

// tcpStreamDown reads a TCP source's byte stream and checks every byte
// against backends.FillSource from stream offset 0; a message is Size bytes
// of the stream and is a mismatch if any of its bytes differs. The
// generator sends nothing, so a message belongs to the window in which it
// arrives.
type tcpStreamDown struct {
	sock
	size   int
	off    uint64 // stream offset of the next byte
	msgPos int    // bytes of the current message seen
	bad    bool
}

var _ flow = (*tcpStreamDown)(nil)

func (t *tcpStreamDown) start()    {}
func (t *tcpStreamDown) writable() {}
func (t *tcpStreamDown) pump()     {}

func (t *tcpStreamDown) expire(int64)  {}
func (t *tcpStreamDown) pending() bool { return false }
func (t *tcpStreamDown) abandon(int64) {}

// readable costs one read and one bytes.Equal per up to readBufSize bytes
// when they are right; only a chunk that differs is compared message by
// message, to count the messages it spoils.
func (t *tcpStreamDown) readable() {
	n := t.read(t.l.rbuf)
	if n <= 0 {
		return
	}
	now := nanotime()
	p := t.l.rbuf[:n]
	if !bytes.Equal(p, sourceAt(t.off, n)) {
		t.verifyEach(p, now)
		return
	}
	t.off += uint64(n)
	done := (t.msgPos + n) / t.size
	t.msgPos = (t.msgPos + n) % t.size
	if done > 0 && t.bad {
		t.l.mismatch(now) // the message that was spoiled before this chunk
		t.bad = false
		done--
	}
	t.l.count(now, done, done*t.size)
}

func (t *tcpStreamDown) verifyEach(p []byte, now int64) {
	for len(p) > 0 {
		k := min(t.size-t.msgPos, len(p))
		if !bytes.Equal(p[:k], sourceAt(t.off, k)) {
			t.bad = true
		}
		p = p[k:]
		t.off += uint64(k)
		t.msgPos += k
		if t.msgPos < t.size {
			break
		}
		if t.bad {
			t.l.mismatch(now)
		} else {
			t.l.count(now, 1, t.size)
		}
		t.msgPos, t.bad = 0, false
	}
}

// udpStreamDown subscribes to a UDP source with one datagram, then checks
// each datagram it receives against backends.FillSourceDatagram. A source
// sends without flow control, so a gap in its sequence numbers is the
// receiver's overflow, not an error; it resubscribes when the source falls
// silent, in case its first datagram was lost.
type udpStreamDown struct {
	sock
	size   int
	lastRx int64
}

var _ flow = (*udpStreamDown)(nil)

// resubscribeAfter is the silence after which the subscription is resent.
const resubscribeAfter = int64(100 * time.Millisecond)

// subscribeMsg is the datagram that asks a source for its stream.
var subscribeMsg = []byte{'S'}

func (u *udpStreamDown) start() {
	u.lastRx = nanotime()
	u.write(subscribeMsg)
}

func (u *udpStreamDown) writable() {}
func (u *udpStreamDown) pump()     {}

// readable takes up to udpBatch datagrams with one recvmmsg and compares
// each with one bytes.Equal.
func (u *udpStreamDown) readable() {
	rx := u.l.rx
	n, err := rx.Recv(u.fd, 0)
	n = u.mmsgResult("receive", n, err)
	if n <= 0 {
		return
	}
	now := nanotime()
	u.lastRx = now
	for i := range n {
		p := rx.Payload(i)
		if len(p) != u.size || rx.Truncated(i) {
			u.l.mismatch(now)
			continue
		}
		seq := binary.LittleEndian.Uint64(p)
		if !bytes.Equal(p[backends.SourceHeader:], sourceAt(seq, len(p)-backends.SourceHeader)) {
			u.l.mismatch(now)
			continue
		}
		u.l.count(now, 1, len(p))
	}
}

func (u *udpStreamDown) pending() bool { return false }
func (u *udpStreamDown) abandon(int64) {}

func (u *udpStreamDown) expire(now int64) {
	if now-u.lastRx > resubscribeAfter {
		u.lastRx = now
		u.write(subscribeMsg)
	}
}
