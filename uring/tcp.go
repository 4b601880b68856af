package uring

import (
	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// conn is one TCP connection, indexed by its direct-descriptor slot (by its
// fd for uring-basic).
type conn struct {
	gen     uint16
	open    bool
	eof     bool // the peer shut its side; close once the queue drains
	sending bool // a send is in flight; the next waits (per-connection order)
	starved bool // on loop.starved, waiting for buffers
	// qHead/qTail: the buffers waiting to be sent, linked by loop.next;
	// -1 when empty. The head is the one in flight while sending.
	qHead, qTail int32
	inflight     int    // buffers the in-flight send carries
	srcOff       uint64 // source: stream offset of the next byte
	// uring-basic: the connection's own buffer and what of it is unsent.
	buf      []byte
	off, end int
	// uring-bundle: the gathered send's header and vectors; the kernel
	// reads them at submission (IORING_FEAT_SUBMIT_STABLE), the pointer
	// keeps them in place.
	gather *gatherMsg
	// uring-bundle with send bundles: the connection's own buffer group
	// (bgid 1+slot, IOU_PBUF_RING_INC) mirrors the head of its queue; one
	// SEND with IORING_RECVSEND_BUNDLE sends everything in it. inRing
	// counts the queued buffers pushed there, pushNext is the first one
	// not pushed yet (-1: none).
	sendRing *ring.DescRing
	inRing   int
	pushNext int32
}

type gatherMsg struct {
	hdr unix.Msghdr
	iov [maxGather]unix.Iovec
}

// fd is what an SQE names for slot: the slot itself with IOSQE_FIXED_FILE.
func (l *loop) fileFlags() uint8 {
	if l.fixed {
		return abi.IOSQE_FIXED_FILE
	}
	return 0
}

func (l *loop) armAccept() {
	s := l.sqe()
	s.Opcode = abi.IORING_OP_ACCEPT
	s.Fd = int32(l.sock)
	s.UserData = userData(opAccept, 0, 1, 0, 0)
	if l.p.v.basic {
		s.OpFlags = unix.SOCK_CLOEXEC
		return
	}
	// Multishot accept straight into the fixed file table: no fd in the
	// process table, no fdget/fdput per request afterwards.
	s.Ioprio = abi.IORING_ACCEPT_MULTISHOT
	s.FileIndex = abi.IORING_FILE_INDEX_ALLOC
}

func (l *loop) onAccept(res int32, flags uint32) {
	if flags&abi.IORING_CQE_F_MORE == 0 {
		l.armAccept()
	}
	if res < 0 {
		if res != -int32(unix.ECANCELED) {
			l.count[cErrors]++
		}
		return
	}
	slot := uint32(res)
	if slot >= maxSlots {
		l.count[cErrors]++
		l.closeFd(slot)
		return
	}
	for int(slot) >= len(l.conns) {
		l.conns = append(l.conns, conn{qHead: -1, qTail: -1, pushNext: -1})
	}
	c := &l.conns[slot]
	if c.qHead >= 0 {
		// The slot's previous connection closed with a bundle send in
		// flight; its cancel and close have completed, so the kernel is
		// done with those buffers.
		l.releaseQueue(c)
	}
	*c = conn{gen: c.gen + 1, open: true, qHead: -1, qTail: -1, pushNext: -1, buf: c.buf, gather: c.gather, sendRing: c.sendRing}
	l.count[cAccepted]++
	if l.sendBundles && l.p.service == backends.Echo {
		if err := l.newSendRing(c, slot); err != nil {
			l.count[cErrors]++
			l.closeConn(slot)
			return
		}
	}
	if l.p.v.basic {
		if c.buf == nil {
			c.buf = make([]byte, l.p.connBytes)
		}
		if l.p.service == backends.Source {
			l.sendSource(slot)
		} else {
			l.recvBasic(slot)
		}
		return
	}
	if l.p.v.bundle && !l.sendBundles && c.gather == nil {
		c.gather = new(gatherMsg)
	}
	// A source also receives, to see the peer's close.
	l.armRecv(slot)
	if l.p.service == backends.Source {
		l.sendSource(slot)
	}
}

// armRecv arms a multishot recv with buffer select: one SQE, then a CQE per
// arrival until the socket closes or the buffer ring runs dry.
func (l *loop) armRecv(slot uint32) {
	c := &l.conns[slot]
	s := l.sqe()
	s.Opcode = abi.IORING_OP_RECV
	s.Fd = int32(slot)
	s.Flags = abi.IOSQE_FIXED_FILE | abi.IOSQE_BUFFER_SELECT
	s.BufIndex = l.bufs.Group()
	s.Ioprio = abi.IORING_RECV_MULTISHOT
	if l.p.v.bundle {
		s.Ioprio |= abi.IORING_RECVSEND_BUNDLE
	}
	s.UserData = userData(opRecv, c.gen, 1, 0, slot)
}

// onRecv handles a receive. Per packet: no copy (echo sends this buffer),
// no allocation, no syscall.
func (l *loop) onRecv(ud uint64, res int32, flags uint32) {
	if l.p.v.basic {
		l.onRecvBasic(ud, res)
		return
	}
	slot := udSlot(ud)
	c := l.connOf(ud)
	if res > 0 {
		l.takeBuffers(c, slot, res, flags)
		if c != nil && flags&abi.IORING_CQE_F_MORE == 0 {
			l.armRecv(slot) // multishot ended without an error: re-arm
		}
		return
	}
	if c == nil {
		return
	}
	switch {
	case res == 0:
		c.eof = true
		if !c.sending || l.p.service == backends.Source {
			l.closeConn(slot)
		}
	case res == -int32(unix.ENOBUFS):
		// The ring ran dry: every buffer is queued for sending. Re-arm
		// once some come back (afterBatch), not now, or the loop would
		// spin on ENOBUFS.
		if !c.starved {
			c.starved = true
			l.starved = append(l.starved, slot)
		}
	case res == -int32(unix.ECANCELED):
	default:
		l.count[cErrors]++
		l.closeConn(slot)
	}
}

// connOf returns the open connection a completion belongs to, or nil for a
// completion of a connection that is closed (its slot maybe reused).
func (l *loop) connOf(ud uint64) *conn {
	slot := udSlot(ud)
	if int(slot) >= len(l.conns) {
		return nil
	}
	c := &l.conns[slot]
	if !c.open || c.gen != udGen(ud) {
		return nil
	}
	return c
}

// takeBuffers takes the res bytes a recv completion delivered: one buffer,
// or with a bundle several consecutive ring entries, each full but the last.
func (l *loop) takeBuffers(c *conn, slot uint32, res int32, flags uint32) {
	if flags&abi.IORING_CQE_F_BUFFER == 0 {
		return
	}
	first := cqeBid(flags)
	size := int32(l.bufs.Size)
	n := int((res + size - 1) / size)
	l.count[cRxBytes] += uint64(res)
	l.count[cRxMsgs]++
	if n > 1 {
		l.count[cRecvBundleBufs] += uint64(n)
	}
	for i := 0; i < n; i++ {
		bid := first
		if i > 0 {
			bid = l.bufs.BundleBid(first, i)
		}
		l.free--
		chunk := min(res, size)
		res -= chunk
		if c == nil || l.p.service != backends.Echo {
			l.recycle(bid)
			continue
		}
		l.refs[bid] = 1
		l.off[bid], l.end[bid] = 0, chunk
		l.next[bid] = -1
		if c.qTail < 0 {
			c.qHead = int32(bid)
		} else {
			l.next[c.qTail] = int32(bid)
		}
		c.qTail = int32(bid)
		if c.sendRing != nil && c.pushNext < 0 {
			c.pushNext = int32(bid)
		}
	}
	if c != nil && c.sendRing != nil {
		l.pushSends(c)
	}
	if c != nil && l.p.service == backends.Echo && !c.sending {
		l.send(slot)
	}
}

// send sends the head of the connection's queue (uring-bundle: up to
// maxGather queued buffers in one SENDMSG). One send at a time per
// connection keeps the stream in order.
func (l *loop) send(slot uint32) {
	c := &l.conns[slot]
	bid := uint16(c.qHead)
	s := l.sqe()
	s.Fd = int32(slot)
	s.Flags = abi.IOSQE_FIXED_FILE
	s.OpFlags = l.sendFlags
	c.sending = true
	if c.sendRing != nil {
		// The kernel sends from the head of the connection's group, as
		// many buffers as it holds, and consumes them byte by byte
		// (IOU_PBUF_RING_INC), so a short send leaves the rest in place.
		c.sendRing.Publish()
		s.Opcode = abi.IORING_OP_SEND
		s.Flags |= abi.IOSQE_BUFFER_SELECT
		s.BufIndex = c.sendRing.Group()
		s.Ioprio = abi.IORING_RECVSEND_BUNDLE
		c.inflight = c.inRing
		l.count[cSendBundles]++
		s.UserData = userData(opSend, c.gen, 1, bid, slot)
		return
	}
	if l.p.v.bundle && l.next[bid] >= 0 {
		g := c.gather
		n := 0
		for b := int32(bid); b >= 0 && n < maxGather; b = l.next[b] {
			g.iov[n].Base = &l.bufs.Buf(uint16(b))[l.off[b]]
			g.iov[n].SetLen(int(l.end[b] - l.off[b]))
			n++
		}
		g.hdr.Iov = &g.iov[0]
		g.hdr.SetIovlen(n)
		s.Opcode = abi.IORING_OP_SENDMSG
		s.Addr = ring.Addr(&g.hdr)
		s.Len = 1
		c.inflight = n
		s.UserData = userData(opSend, c.gen, n, bid, slot)
		return
	}
	s.Opcode = abi.IORING_OP_SEND
	if l.p.v.zc {
		s.Opcode = abi.IORING_OP_SEND_ZC
		s.Ioprio = abi.IORING_SEND_ZC_REPORT_USAGE
	}
	s.Addr = l.bufs.Addr(bid, int(l.off[bid]))
	s.Len = uint32(l.end[bid] - l.off[bid])
	c.inflight = 1
	s.UserData = userData(opSend, c.gen, 1, bid, slot)
}

// onSend handles a send completion (and, for SEND_ZC, its notification).
func (l *loop) onSend(ud uint64, res int32, flags uint32) {
	if l.p.v.basic {
		l.onSendBasic(ud, res)
		return
	}
	bid := udBid(ud)
	if l.zcCompletion(bid, res, flags) {
		return
	}
	slot := udSlot(ud)
	c := l.connOf(ud)
	if c == nil && l.sendBundles {
		// closeConn kept the queue of a bundle send in flight; release it
		// now, unless the slot was reused and onAccept did.
		if int(slot) < len(l.conns) {
			if z := &l.conns[slot]; !z.open && z.gen == udGen(ud) {
				l.releaseQueue(z)
			}
		}
		return
	}
	if c == nil {
		// The connection closed with this send in flight; closeConn left
		// its buffers for this completion to release.
		b := int32(bid)
		for i := udCount(ud); i > 0 && b >= 0; i-- {
			nb := l.next[b]
			l.unref(uint16(b))
			b = nb
		}
		return
	}
	c.sending = false
	l.sent(res)
	if res < 0 {
		l.closeConn(slot)
		return
	}
	// Consume res bytes from the head of the queue; a short send leaves the
	// rest of a buffer at the head, to go next.
	for res > 0 && c.qHead >= 0 {
		b := c.qHead
		left := l.end[b] - l.off[b]
		if res < left {
			l.off[b] += res
			break
		}
		res -= left
		c.qHead = l.next[b]
		if c.qHead < 0 {
			c.qTail = -1
		}
		if c.sendRing != nil {
			c.inRing--
		}
		l.unref(uint16(b))
	}
	if c.sendRing != nil {
		l.pushSends(c)
	}
	switch {
	case c.qHead >= 0:
		l.send(slot)
	case c.eof:
		l.closeConn(slot)
	}
}

// sendSource sends the next chunk of the source pattern. The pattern slice
// starts at any offset's phase, so a send costs no pattern computation.
func (l *loop) sendSource(slot uint32) {
	c := &l.conns[slot]
	chunk := len(l.p.pattern) - backends.SourcePeriod
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND
	s.Fd = int32(slot)
	s.Flags = l.fileFlags()
	s.OpFlags = l.sendFlags
	s.Addr = ring.Addr(&l.p.pattern[c.srcOff%backends.SourcePeriod])
	s.Len = uint32(chunk)
	s.UserData = userData(opSource, c.gen, 1, 0, slot)
	c.sending = true
}

func (l *loop) onSource(ud uint64, res int32) {
	c := l.connOf(ud)
	if c == nil {
		return
	}
	c.sending = false
	l.sent(res)
	if res <= 0 {
		l.closeConn(udSlot(ud))
		return
	}
	c.srcOff += uint64(res)
	if !c.eof {
		l.sendSource(udSlot(ud))
	}
}

// closeConn closes a connection: the buffers queued behind an in-flight
// send go back now, the in-flight ones when its completion comes; whatever
// is armed on the socket is cancelled, then the descriptor closed, both in
// one linked pair of SQEs that post nothing on success.
func (l *loop) closeConn(slot uint32) {
	c := &l.conns[slot]
	c.open = false
	l.count[cClosed]++
	if c.sendRing != nil && c.sending {
		// The kernel may be reading any buffer in the connection's group:
		// keep the queue until the send's completion or the slot's reuse.
		l.cancelAndClose(slot)
		return
	}
	skip := 0
	if c.sending {
		skip = c.inflight
	}
	for b := c.qHead; b >= 0; {
		nb := l.next[b]
		if skip > 0 {
			skip--
		} else {
			l.unref(uint16(b))
		}
		b = nb
	}
	c.qHead, c.qTail = -1, -1
	l.cancelAndClose(slot)
}

// cancelAndClose cancels whatever is armed on the socket, then closes it.
func (l *loop) cancelAndClose(slot uint32) {
	s := l.sqe()
	s.Opcode = abi.IORING_OP_ASYNC_CANCEL
	s.Fd = int32(slot)
	s.OpFlags = abi.IORING_ASYNC_CANCEL_ALL | abi.IORING_ASYNC_CANCEL_FD
	if l.fixed {
		s.OpFlags |= abi.IORING_ASYNC_CANCEL_FD_FIXED
	}
	s.Flags = abi.IOSQE_IO_HARDLINK | abi.IOSQE_CQE_SKIP_SUCCESS
	s.UserData = userData(opClose, 0, 1, 0, slot)
	l.closeFd(slot)
}

// releaseQueue drops the buffers of a closed connection's queue.
func (l *loop) releaseQueue(c *conn) {
	for b := c.qHead; b >= 0; {
		nb := l.next[b]
		l.unref(uint16(b))
		b = nb
	}
	c.qHead, c.qTail, c.pushNext, c.inRing = -1, -1, -1, 0
}

// sendRingEntries is the size of a connection's send group: a page.
const sendRingEntries = 256

// newSendRing registers the connection's send group in its slot's page of
// l.sendRingMem, replacing the previous connection's (which may hold
// descriptors it never sent).
func (l *loop) newSendRing(c *conn, slot uint32) error {
	if c.sendRing != nil {
		if err := c.sendRing.Unregister(); err != nil {
			return err
		}
		c.sendRing = nil
	}
	const page = sendRingEntries * 16
	mem := l.sendRingMem[int(slot)*page : (int(slot)+1)*page]
	d, err := ring.RegisterDescRing(l.ring, uint16(1+slot), mem, sendRingEntries, abi.IOU_PBUF_RING_INC)
	if err != nil {
		return err
	}
	c.sendRing = d
	return nil
}

// pushSends pushes queued buffers into the connection's send group while it
// has room; they are published when the next send is issued.
func (l *loop) pushSends(c *conn) {
	for c.pushNext >= 0 && c.inRing < sendRingEntries {
		b := c.pushNext
		c.sendRing.Push(l.bufs.Addr(uint16(b), int(l.off[b])), uint32(l.end[b]-l.off[b]), uint16(b))
		c.inRing++
		c.pushNext = l.next[b]
	}
	if c.sending {
		// A send in flight may pick them up when it retries.
		c.sendRing.Publish()
	}
}

// closeFd closes a descriptor: a direct slot (file_index is slot+1) or, for
// uring-basic, a plain fd.
func (l *loop) closeFd(slot uint32) {
	s := l.sqe()
	s.Opcode = abi.IORING_OP_CLOSE
	if l.fixed {
		s.FileIndex = slot + 1
	} else {
		s.Fd = int32(slot)
	}
	s.Flags = abi.IOSQE_CQE_SKIP_SUCCESS
	s.UserData = userData(opClose, 0, 1, 0, slot)
}

// uring-basic: one one-shot recv into the connection's own buffer, then
// one-shot sends of what it read, then the next recv. Every packet costs
// two SQEs and two CQEs, and the connection is idle while a send waits.

func (l *loop) recvBasic(slot uint32) {
	c := &l.conns[slot]
	s := l.sqe()
	s.Opcode = abi.IORING_OP_RECV
	s.Fd = int32(slot)
	s.Addr = ring.Addr(&c.buf[0])
	s.Len = uint32(len(c.buf))
	s.UserData = userData(opRecv, c.gen, 1, 0, slot)
}

func (l *loop) sendBasic(slot uint32) {
	c := &l.conns[slot]
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND
	s.Fd = int32(slot)
	s.OpFlags = l.sendFlags
	s.Addr = ring.Addr(&c.buf[c.off])
	s.Len = uint32(c.end - c.off)
	s.UserData = userData(opSend, c.gen, 1, 0, slot)
	c.sending = true
}

func (l *loop) onRecvBasic(ud uint64, res int32) {
	c := l.connOf(ud)
	if c == nil {
		return
	}
	slot := udSlot(ud)
	switch {
	case res > 0:
		l.count[cRxBytes] += uint64(res)
		l.count[cRxMsgs]++
		if l.p.service == backends.Echo {
			c.off, c.end = 0, int(res)
			l.sendBasic(slot)
		} else {
			l.recvBasic(slot)
		}
	case res == 0:
		c.eof = true
		if !c.sending {
			l.closeConn(slot)
		}
	default:
		if res != -int32(unix.ECANCELED) {
			l.count[cErrors]++
		}
		l.closeConn(slot)
	}
}

func (l *loop) onSendBasic(ud uint64, res int32) {
	c := l.connOf(ud)
	if c == nil {
		return
	}
	slot := udSlot(ud)
	c.sending = false
	l.sent(res)
	if res < 0 {
		l.closeConn(slot)
		return
	}
	c.off += int(res)
	switch {
	case c.off < c.end:
		l.sendBasic(slot)
	case c.eof:
		l.closeConn(slot)
	default:
		l.recvBasic(slot)
	}
}
