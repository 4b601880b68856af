package workloads

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
)

// udpEcho is a connected UDP socket with Depth request slots. A request
// carries its identity: an 8-byte id (generation << 16 | slot) when Size
// allows, else its slot in one byte; the rest is requestPattern at an
// offset derived from the id. A request unanswered after Timeout is lost;
// a correct reply to a request recently given up is a late reply; any
// other reply that matches no outstanding request is a mismatch.
type udpEcho struct {
	sock
	size, depth int
	hdr         int      // identity bytes at the front of a request
	slotID      []uint64 // 0: free
	slotAt      []int64  // latency base: intended time in open loop
	slotSent    []int64  // actual send time, for Timeout
	oldest      int64    // at most the oldest slotSent in flight
	free        []int32
	gen         uint64
	// given remembers the last requests given up as lost (id, latency
	// base), a ring, so that a correct reply that comes after all is told
	// from a corrupt one. 0: empty.
	givenID []uint64
	givenAt []int64
	givenN  int // next entry to overwrite
}

// maxGivenUp bounds the ring of given-up requests; it is scanned only for
// a reply that matches no outstanding request.
const maxGivenUp = 1024

var _ flow = (*udpEcho)(nil)

var errTimeout = errors.New("request timed out")

func newUDPEcho(s sock, size, depth int) *udpEcho {
	u := &udpEcho{
		sock: s, size: size, depth: depth, hdr: udpIDBytes,
		slotID: make([]uint64, depth), slotAt: make([]int64, depth), slotSent: make([]int64, depth),
		free: make([]int32, depth),
	}
	g := min(max(2*depth, 64), maxGivenUp)
	u.givenID, u.givenAt = make([]uint64, g), make([]int64, g)
	if size < udpIDBytes {
		u.hdr = 1
	}
	u.oldest = math.MaxInt64
	for i := range u.free {
		u.free[i] = int32(depth - 1 - i)
	}
	return u
}

func (u *udpEcho) start() { u.pump() }

func (u *udpEcho) writable() { u.pump() }

// pump sends one datagram per free slot (closed loop) or per queued
// request (open loop), up to udpBatch per sendmmsg. Cost per request: a
// copy of Size bytes; one syscall per batch.
func (u *udpEcho) pump() {
	tx := u.l.tx
	for !u.dead && len(u.free) > 0 {
		k := min(len(u.free), tx.Len())
		if u.l.open {
			k = min(k, u.queue.len())
		} else if nanotime() >= u.l.winEnd {
			k = 0 // closed loop sends nothing after the window
		}
		if k == 0 {
			break
		}
		for i := range k {
			slot := u.free[len(u.free)-1-i]
			u.gen++
			u.slotID[slot] = u.gen<<16 | uint64(slot) // committed when sent
			u.fillRequest(tx.Buf(i), slot)
			tx.SetSize(i, u.size)
			tx.ClearPeer(i)
		}
		n, err := tx.Send(u.fd, 0, k, 0)
		sent := u.mmsgResult("send", n, err)
		if sent == failed {
			return
		}
		now := nanotime()
		for i := range max(sent, 0) {
			slot := u.free[len(u.free)-1-i]
			at := now
			if u.l.open {
				at = u.queue.pop()
			}
			u.slotAt[slot], u.slotSent[slot] = at, now
			u.oldest = min(u.oldest, now)
			u.l.sent(now, at)
		}
		for i := max(sent, 0); i < k; i++ {
			u.slotID[u.free[len(u.free)-1-i]] = 0 // not sent after all
		}
		u.free = u.free[:len(u.free)-max(sent, 0)]
		if sent < k {
			u.watchOut(true)
			return
		}
	}
	u.watchOut(false)
}

// fillRequest writes the request for slot's current id into b.
func (u *udpEcho) fillRequest(b []byte, slot int32) {
	id := u.slotID[slot]
	if u.hdr == udpIDBytes {
		binary.LittleEndian.PutUint64(b, id)
	} else {
		b[0] = byte(slot)
	}
	off := requestOffset(u.conn, id)
	copy(b[u.hdr:u.size], requestPattern[off:])
}

// readable takes up to udpBatch replies with one recvmmsg.
func (u *udpEcho) readable() {
	rx := u.l.rx
	n, err := rx.Recv(u.fd, 0)
	n = u.mmsgResult("receive", n, err)
	now := nanotime()
	for i := range max(n, 0) {
		if rx.Truncated(i) {
			u.l.mismatch(now)
			continue
		}
		u.verify(rx.Payload(i), now)
	}
	if !u.dead {
		u.pump()
	}
}

func (u *udpEcho) verify(p []byte, now int64) {
	if len(p) < u.hdr {
		u.l.mismatch(now)
		return
	}
	var slot int
	var id uint64
	if u.hdr == udpIDBytes {
		id = binary.LittleEndian.Uint64(p)
		slot = int(id & 0xffff)
	} else {
		slot = int(p[0])
	}
	if slot >= u.depth || u.slotID[slot] == 0 || (u.hdr == udpIDBytes && u.slotID[slot] != id) {
		if !u.lateReply(p, slot, id) {
			u.l.mismatch(now)
		}
		return
	}
	ok := u.matches(p, u.slotID[slot])
	if !ok && u.hdr != udpIDBytes && u.lateReply(p, slot, 0) {
		// A one-byte identity names only the slot: this is the reply to an
		// earlier request in it, given up; the current one still waits.
		return
	}
	// A wrong reply still answers its request: free the slot either way.
	u.slotID[slot] = 0
	u.free = append(u.free, int32(slot))
	if ok {
		u.l.complete(u.slotAt[slot], now, u.size)
	} else {
		u.l.mismatch(u.slotAt[slot])
	}
}

// matches reports whether p is the exact echo of request id.
func (u *udpEcho) matches(p []byte, id uint64) bool {
	off := requestOffset(u.conn, id)
	return len(p) == u.size && bytes.Equal(p[u.hdr:], requestPattern[off:off+u.size-u.hdr])
}

// lateReply reports whether p is the correct reply to a request given up
// (by its id, or with a one-byte identity by its slot and content), and
// counts it once: a second copy is a mismatch.
func (u *udpEcho) lateReply(p []byte, slot int, id uint64) bool {
	for i, g := range u.givenID {
		if g == 0 || (u.hdr == udpIDBytes && g != id) || (u.hdr != udpIDBytes && int(g&0xffff) != slot) {
			continue
		}
		if !u.matches(p, g) {
			continue
		}
		u.givenID[i] = 0
		if u.l.inWindow(u.givenAt[i]) {
			u.l.n.lateReplies++
		}
		return true
	}
	return false
}

// expire frees the slots of requests unanswered for Timeout. It scans the
// slots only when the oldest send could be overdue, so a healthy
// connection costs one comparison per scan.
func (u *udpEcho) expire(now int64) {
	if now-u.oldest <= u.l.timeout {
		return
	}
	freed := false
	u.oldest = math.MaxInt64
	for slot, id := range u.slotID {
		if id == 0 {
			continue
		}
		if now-u.slotSent[slot] <= u.l.timeout {
			u.oldest = min(u.oldest, u.slotSent[slot])
			continue
		}
		u.giveUp(slot, now)
		freed = true
	}
	if freed {
		u.pump()
	}
}

// giveUp counts slot's request as lost, remembers it for a late reply and
// frees the slot.
func (u *udpEcho) giveUp(slot int, now int64) {
	u.l.gaveUp(u.slotAt[slot], now, true)
	u.givenID[u.givenN], u.givenAt[u.givenN] = u.slotID[slot], u.slotAt[slot]
	u.givenN++
	if u.givenN == len(u.givenID) {
		u.givenN = 0
	}
	u.slotID[slot] = 0
	u.free = append(u.free, int32(slot))
}

func (u *udpEcho) pending() bool { return len(u.free) < u.depth || u.queue.len() > 0 }

// abandon counts the requests in flight as lost; the queued ones were
// never sent.
func (u *udpEcho) abandon(now int64) {
	for slot, id := range u.slotID {
		if id != 0 {
			u.giveUp(slot, now)
		}
	}
	for u.queue.len() > 0 {
		u.l.unsent(u.queue.pop())
	}
}
