package workloads

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// udpEcho is a connected UDP socket with Depth request slots. A request
// carries its identity: an 8-byte id (generation << 16 | slot) when Size
// allows, else its slot in one byte; the rest is requestPattern at an
// offset derived from the id. A reply that matches no outstanding request
// is a mismatch; a request unanswered after Timeout is lost.
type udpEcho struct {
	sock
	size, depth int
	hdr         int      // identity bytes at the front of a request
	slotID      []uint64 // 0: free
	slotAt      []int64
	free        []int32
	gen         uint64
	wbuf        []byte
}

var _ flow = (*udpEcho)(nil)

var errTimeout = errors.New("request timed out")

func newUDPEcho(s sock, size, depth int) *udpEcho {
	u := &udpEcho{
		sock: s, size: size, depth: depth, hdr: udpIDBytes,
		slotID: make([]uint64, depth), slotAt: make([]int64, depth),
		free: make([]int32, depth), wbuf: make([]byte, size),
	}
	if size < udpIDBytes {
		u.hdr = 1
	}
	for i := range u.free {
		u.free[i] = int32(depth - 1 - i)
	}
	return u
}

func (u *udpEcho) start() { u.pump() }

func (u *udpEcho) writable() { u.pump() }

// pump sends one datagram per free slot (closed loop) or per queued
// request (open loop). Cost per request: a copy of Size bytes and a write.
func (u *udpEcho) pump() {
	for !u.dead && len(u.free) > 0 {
		now := nanotime()
		at := now
		if u.l.open {
			if u.queue.len() == 0 {
				break
			}
			at = u.queue.peek()
		}
		slot := u.free[len(u.free)-1]
		u.gen++
		id := u.gen<<16 | uint64(slot)
		if u.hdr == udpIDBytes {
			binary.LittleEndian.PutUint64(u.wbuf, id)
		} else {
			u.wbuf[0] = byte(slot)
		}
		off := requestOffset(u.conn, id)
		copy(u.wbuf[u.hdr:], requestPattern[off:])
		if _, ok := u.send(u.wbuf); !ok {
			return
		}
		if u.l.open {
			u.queue.pop()
		}
		u.free = u.free[:len(u.free)-1]
		u.slotID[slot], u.slotAt[slot] = id, at
		u.l.sent(now, at)
	}
	u.watchOut(false)
}

// udpReadBatch bounds the datagrams read per readiness event, so one busy
// socket cannot starve the loop's others.
const udpReadBatch = 64

func (u *udpEcho) readable() {
	for range udpReadBatch {
		n := u.read(u.l.rbuf)
		if n < 0 {
			break
		}
		u.verify(u.l.rbuf[:n], nanotime())
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
		u.l.mismatch(now)
		return
	}
	id = u.slotID[slot]
	off := requestOffset(u.conn, id)
	ok := len(p) == u.size && bytes.Equal(p[u.hdr:], requestPattern[off:off+u.size-u.hdr])
	// A wrong reply still answers its request: free the slot either way.
	u.slotID[slot] = 0
	u.free = append(u.free, int32(slot))
	if ok {
		u.l.complete(now, now-u.slotAt[slot], u.size)
	} else {
		u.l.mismatch(now)
	}
}

func (u *udpEcho) expire(now int64) {
	freed := false
	for slot, id := range u.slotID {
		if id != 0 && now-u.slotAt[slot] > u.l.timeout {
			u.slotID[slot] = 0
			u.free = append(u.free, int32(slot))
			freed = true
			if u.l.inWindow(now) {
				u.l.n.errs.Lost++
			}
		}
	}
	if freed {
		u.pump()
	}
}
