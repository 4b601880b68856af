package uring

import (
	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// tcpPath is one variant's TCP data path, chosen once at setup
// (loop.choosePaths), so that the per-packet functions never ask which
// variant they serve.
type tcpPath interface {
	armAccept()
	// accepted starts serving a connection onAccept has just set up.
	accepted(c *conn, slot uint32)
	onRecv(ud uint64, res int32, flags uint32)
	// queued is told that c's send queue holds buffers to send; fresh is
	// the first of those that joined it since the last call (-1: none).
	queued(c *conn, slot uint32, fresh int32)
	onSend(ud uint64, res int32, flags uint32)
}

var (
	_ tcpPath = (*gatherTCP)(nil)
	_ tcpPath = (*zcTCP)(nil)
	_ tcpPath = (*bundleTCP)(nil)
	_ tcpPath = (*basicTCP)(nil)
)

// conn is one TCP connection, indexed by its direct-descriptor slot (by its
// fd for uring-basic).
type conn struct {
	gen     uint16
	open    bool
	eof     bool // the peer shut its side; close once the queue drains
	sending bool // a send is in flight; the next waits (per-connection order)
	recving bool // a multishot recv is armed
	paused  bool // the queue reached loop.queueCap: recv cancelled until it drains
	starved bool // on loop.starved, waiting for buffers
	seen    uint32
	// qHead/qTail: the buffers waiting to be sent, linked by loop.next;
	// -1 when empty; queued counts them. The first inflight of them are
	// the in-flight send's.
	qHead, qTail int32
	queued       int
	inflight     int
	// notifs: zero-copy notifications pending, each holding a buffer the
	// queue no longer lists; they count against the cap as queued ones do.
	notifs int
	srcOff uint64 // source: stream offset of the next byte
	// uring-basic: the connection's own buffer and what of it is unsent.
	buf      []byte
	off, end int
	// spill holds what arrived over the queue cap, copied out of the
	// provided buffers (which went straight back to the ring); bytes
	// [spillOff:] are still to send, after the queue. While it holds
	// anything, everything received goes there too, in order.
	spill    []byte
	spillOff int
	// A gathered send's header and vectors; the kernel reads them at
	// submission (IORING_FEAT_SUBMIT_STABLE), the pointer keeps them in
	// place.
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

// onAccept handles an accept completion: a new connection, or an error
// that decides whether accepting goes on.
func (l *loop) onAccept(res int32, flags uint32) {
	more := flags&abi.IORING_CQE_F_MORE != 0
	if res < 0 {
		l.acceptFailed(unix.Errno(-res), more)
		return
	}
	if !more {
		l.tcp.armAccept()
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
		// The slot's previous connection closed with a send in flight;
		// its cancel and close have completed, so the kernel is done with
		// the buffers that send held.
		l.releaseQueue(c)
	}
	*c = conn{gen: c.gen + 1, open: true, qHead: -1, qTail: -1, pushNext: -1, buf: c.buf, gather: c.gather, sendRing: c.sendRing,
		spill: c.spill[:0]}
	l.count[cAccepted]++
	l.tcp.accepted(c, slot)
}

// acceptFailed decides what an accept error means. A multishot accept
// that ends (no F_MORE) is re-armed only when another accept can succeed:
// after a transient error at once, after a full descriptor table at the
// next close; after an error of the listener itself (EBADF, EINVAL,
// ENOTSOCK, ...) never, since each re-arm would fail at once, forever.
func (l *loop) acceptFailed(errno unix.Errno, more bool) {
	switch errno {
	case unix.ECANCELED:
		// The loop's own doing (the ring is closing): nothing to re-arm.
	case unix.ENFILE, unix.EMFILE:
		l.count[cErrors]++
		if !more {
			l.acceptWaiting = true
		}
	case unix.ECONNABORTED, unix.EINTR, unix.EAGAIN, unix.ENOMEM, unix.ENOBUFS, unix.EPERM,
		unix.EPROTO, unix.ENETDOWN, unix.ENONET, unix.EHOSTDOWN, unix.EHOSTUNREACH, unix.ENETUNREACH:
		l.count[cErrors]++
		if !more {
			l.tcp.armAccept()
		}
	default:
		l.count[cErrors]++
	}
}

// ringTCP is what the provided-buffer variants share: accept, and recv
// into the buffer ring. One-shot or multishot, into the fd table or the
// direct-descriptor table: the SQE's fields for it are chosen at setup
// (loop.choosePaths), so arming asks nothing.
type ringTCP struct {
	l               *loop
	acceptIoprio    uint16 // IORING_ACCEPT_MULTISHOT or 0
	acceptFileIndex uint32 // IORING_FILE_INDEX_ALLOC (direct) or 0
	acceptFlags     uint32 // SOCK_CLOEXEC for an fd in the process table
}

func (t *ringTCP) armAccept() {
	l := t.l
	s := l.sqe()
	s.Opcode = abi.IORING_OP_ACCEPT
	s.Fd = int32(l.sock)
	s.UserData = userData(opAccept, 0, 1, 0, 0)
	s.Ioprio = t.acceptIoprio
	s.FileIndex = t.acceptFileIndex
	s.OpFlags = t.acceptFlags
}

func (t *ringTCP) accepted(c *conn, slot uint32) {
	l := t.l
	if c.gather == nil {
		c.gather = new(gatherMsg)
	}
	// A source also receives, to see the peer's close.
	l.armRecv(slot)
	if l.p.service == backends.Source {
		l.source.send(slot)
	}
}

// armRecv arms a recv with buffer select. Multishot (recvIoprio): one SQE,
// then a CQE per arrival until the socket closes, the buffer ring runs dry
// or the loop cancels it; one-shot (uring-pbuf): one CQE, and onRecv arms
// the next.
func (l *loop) armRecv(slot uint32) {
	c := &l.conns[slot]
	s := l.sqe()
	s.Opcode = abi.IORING_OP_RECV
	s.Fd = int32(slot)
	s.Flags = l.fileFlag | abi.IOSQE_BUFFER_SELECT
	s.BufIndex = l.bufs.Group()
	s.Ioprio = l.recvIoprio
	s.Len = l.recvLen
	s.UserData = userData(opRecv, c.gen, 1, 0, slot)
	c.recving = true
	l.recvArms++
}

// onRecv handles a receive. Per packet: no copy (echo sends this buffer),
// no allocation, no syscall.
func (t *ringTCP) onRecv(ud uint64, res int32, flags uint32) {
	l := t.l
	slot := udSlot(ud)
	c := l.connOf(ud)
	if c == nil {
		if res > 0 {
			l.takeBuffers(nil, slot, res, flags)
		}
		return
	}
	if flags&abi.IORING_CQE_F_MORE == 0 {
		c.recving = false
	}
	switch {
	case res > 0:
		l.takeBuffers(c, slot, res, flags)
		if c.open && !c.recving && !c.paused {
			l.armRecv(slot) // one-shot, or a multishot that ended: re-arm
		}
	case res == 0:
		c.eof = true
		if !c.sending || l.p.service == backends.Source {
			l.closeConn(slot)
		}
	case res == -int32(unix.ENOBUFS):
		// The ring ran dry. Re-arm once buffers come back (afterBatch),
		// not now, or the loop would spin on ENOBUFS; a paused
		// connection is re-armed when its queue drains instead.
		l.count[cRecvNoBufs]++
		if !c.paused {
			l.starve(slot)
		}
	case res == -int32(unix.ECANCELED):
		// Paused; or the queue drained before the cancel landed.
		if !c.paused && !c.eof && !c.recving {
			l.armRecv(slot)
		}
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
// or with a bundle several consecutive ring entries, each full but the last
// (see recvBundlesSafe for why their bids can be read from the ring).
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
	echo := c != nil && l.p.service == backends.Echo
	tail := int32(-1) // the queue's tail before this completion's buffers
	if echo {
		tail = c.qTail
	}
	// Every bid of a bundle is read before any buffer is recycled: a
	// recycle pushes at the ring's tail, which is where the bundle's own
	// entries were, and moves the pushed buffer's position.
	bids := l.bids[:n]
	bids[0] = first
	for i := 1; i < n; i++ {
		bids[i] = l.bufs.BundleBid(first, i)
	}
	for _, bid := range bids {
		l.free--
		chunk := min(res, size)
		res -= chunk
		if !echo {
			l.recycle(bid)
			continue
		}
		if len(c.spill) > 0 || c.queued+c.notifs >= l.queueCap {
			// Over the cap: a multishot recv took more in one burst than
			// the connection may hold before the loop could cancel it.
			// The bytes are copied out and the buffer goes back at once,
			// so a peer that does not read holds queueCap buffers, never
			// the pool. Per spilled buffer: one copy (an append that
			// grows the connection's spill to its high-water mark once).
			c.spill = append(c.spill, l.bufs.Buf(bid)[:chunk]...)
			l.count[cSpilledBytes] += uint64(chunk)
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
		c.queued++
	}
	if c == nil {
		return
	}
	l.load.mark(&c.seen)
	if !echo {
		return
	}
	if (len(c.spill) > 0 || c.queued+c.notifs >= l.queueCap) && !c.paused {
		l.pause(c, slot)
	}
	fresh := c.qHead
	if tail >= 0 {
		fresh = l.next[tail]
	}
	l.sendNext(c, slot, fresh)
}

// sendNext starts c's next send, if none is in flight: its queue first
// (through the variant's path; fresh as in tcpPath.queued), else its spill.
func (l *loop) sendNext(c *conn, slot uint32, fresh int32) {
	switch {
	case c.qHead >= 0:
		l.tcp.queued(c, slot, fresh)
	case len(c.spill) > c.spillOff && !c.sending:
		l.sendSpill(c, slot)
	}
}

// sendSpill sends c's spill with a plain SEND, whatever the variant: it is
// the overload path of a peer over its cap (counted in spilled_bytes), not
// the path a variant is measured on.
func (l *loop) sendSpill(c *conn, slot uint32) {
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND
	s.Fd = int32(slot)
	s.Flags = l.fileFlag
	s.OpFlags = l.sendFlags
	s.Addr = ring.Addr(&c.spill[c.spillOff])
	s.Len = uint32(len(c.spill) - c.spillOff)
	s.UserData = userData(opSpill, c.gen, 1, 0, slot)
	c.sending = true
}

// onSpill handles a spill send's completion: the rest goes next; once all
// of it is out the connection may receive again.
func (l *loop) onSpill(ud uint64, res int32) {
	c, slot := l.sendEnded(ud, res)
	if c == nil {
		return
	}
	c.spillOff += int(res)
	if c.spillOff < len(c.spill) {
		l.sendSpill(c, slot)
		return
	}
	c.spill, c.spillOff = c.spill[:0], 0
	l.drained(c, slot)
	if c.eof {
		l.closeConn(slot)
	}
}

// pause stops receiving on a connection whose queue is at the cap: its
// peer is not reading its echoes as fast as it sends, and must not take
// the whole pool. The multishot recv is cancelled; drained re-arms it.
func (l *loop) pause(c *conn, slot uint32) {
	c.paused = true
	if !c.recving {
		return
	}
	s := l.sqe()
	s.Opcode = abi.IORING_OP_ASYNC_CANCEL
	s.Addr = userData(opRecv, c.gen, 1, 0, slot)
	s.Flags = abi.IOSQE_CQE_SKIP_SUCCESS
	s.UserData = userData(opCancel, 0, 1, 0, slot)
}

// drained resumes a paused connection once half its cap has gone out.
func (l *loop) drained(c *conn, slot uint32) {
	if !c.paused || c.queued+c.notifs > l.queueCap/2 || len(c.spill) > 0 {
		return
	}
	c.paused = false
	if !c.recving && !c.eof && !c.starved {
		l.armRecv(slot)
	}
}

// consume takes res sent bytes off the head of c's queue and returns how
// many buffers went out in full (each unreferenced); a short send leaves
// the rest of a buffer at the head, to go next.
func (l *loop) consume(c *conn, res int32) int {
	done := 0
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
		c.queued--
		done++
		l.unref(uint16(b))
	}
	// The in-flight send held the head buffers; a send bundle's group
	// (inRing) held them too.
	c.inflight = max(c.inflight-done, 0)
	c.inRing = max(c.inRing-done, 0)
	return done
}

// sendDone handles the result of an open connection's send. A CQE with
// F_MORE is partial: the send goes on (a send bundle posts one per burst)
// and stays the connection's one send in flight. A final one frees the
// connection for its next send, or closes it.
func (l *loop) sendDone(c *conn, slot uint32, res int32, flags uint32) {
	l.sent(res)
	if res < 0 {
		if flags&abi.IORING_CQE_F_MORE == 0 {
			c.sending = false
		}
		l.closeConn(slot)
		return
	}
	l.consume(c, res)
	if flags&abi.IORING_CQE_F_MORE != 0 {
		return
	}
	c.sending = false
	l.drained(c, slot)
	switch {
	case c.qHead >= 0 || len(c.spill) > 0:
		l.sendNext(c, slot, -1)
	case c.eof:
		l.closeConn(slot)
	}
}

// closedSendDone handles a send completion of a closed connection: its
// final one releases the buffers closeConn kept for it, unless the slot
// was reused meanwhile (then onAccept did).
func (l *loop) closedSendDone(ud uint64, flags uint32) {
	if flags&abi.IORING_CQE_F_MORE != 0 {
		return
	}
	slot := udSlot(ud)
	if int(slot) < len(l.conns) {
		if z := &l.conns[slot]; !z.open && z.gen == udGen(ud) {
			l.releaseQueue(z)
		}
	}
}

// gatherTCP is the default send path: every queued buffer of a connection
// in one SQE, a SEND for one buffer and a SENDMSG gathering up to
// maxGather (the queue cap) for more.
type gatherTCP struct{ ringTCP }

func (t *gatherTCP) queued(c *conn, slot uint32, _ int32) {
	if !c.sending {
		t.send(c, slot)
	}
}

func (t *gatherTCP) send(c *conn, slot uint32) {
	l := t.l
	bid := uint16(c.qHead)
	s := l.sqe()
	s.Fd = int32(slot)
	s.Flags = l.fileFlag
	s.OpFlags = l.sendFlags
	c.sending = true
	if l.next[bid] < 0 {
		s.Opcode = abi.IORING_OP_SEND
		s.Addr = l.bufs.Addr(bid, int(l.off[bid]))
		s.Len = uint32(l.end[bid] - l.off[bid])
		c.inflight = 1
		s.UserData = userData(opSend, c.gen, 1, bid, slot)
		return
	}
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
}

func (t *gatherTCP) onSend(ud uint64, res int32, flags uint32) {
	l := t.l
	c := l.connOf(ud)
	if c == nil {
		l.closedSendDone(ud, flags)
		return
	}
	l.sendDone(c, udSlot(ud), res, flags)
}

// zcTCP sends with SEND_ZC, one buffer at a time, from the provided buffer
// pool registered as fixed buffer 0 (IORING_RECVSEND_FIXED_BUF: the kernel
// pinned its pages once, at setup, not per send): the buffer returns at
// the notification, not at the result.
type zcTCP struct{ ringTCP }

func (t *zcTCP) queued(c *conn, slot uint32, _ int32) {
	if c.sending {
		return
	}
	l := t.l
	bid := uint16(c.qHead)
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND_ZC
	s.Ioprio = abi.IORING_SEND_ZC_REPORT_USAGE | abi.IORING_RECVSEND_FIXED_BUF
	s.BufIndex = zcPoolBuf
	s.Fd = int32(slot)
	s.Flags = l.fileFlag
	s.OpFlags = l.sendFlags
	s.Addr = l.bufs.Addr(bid, int(l.off[bid]))
	s.Len = uint32(l.end[bid] - l.off[bid])
	c.sending = true
	c.inflight = 1
	s.UserData = userData(opSend, c.gen, 1, bid, slot)
}

func (t *zcTCP) onSend(ud uint64, res int32, flags uint32) {
	l := t.l
	c := l.connOf(ud)
	if l.zcCompletion(udBid(ud), res, flags) {
		if c != nil {
			c.notifs--
			l.drained(c, udSlot(ud))
		}
		return
	}
	if c != nil && flags&abi.IORING_CQE_F_MORE != 0 {
		c.notifs++
	}
	// The result is final; its F_MORE meant the notification.
	flags &^= abi.IORING_CQE_F_MORE
	if c == nil {
		l.closedSendDone(ud, flags)
		return
	}
	l.sendDone(c, udSlot(ud), res, flags)
}

// zcCompletion does the zero-copy bookkeeping of a SEND_ZC/SENDMSG_ZC
// completion on buffer bid and reports whether the CQE was the
// notification, which ends there. A result with F_MORE promises a
// notification: the buffer keeps a reference until it comes, since the
// kernel may still be reading its pages. Only the zero-copy paths call it:
// on any other send F_MORE means something else.
func (l *loop) zcCompletion(bid uint16, res int32, flags uint32) bool {
	if flags&abi.IORING_CQE_F_NOTIF != 0 {
		l.zcNotified(res)
		l.unref(bid)
		return true
	}
	if flags&abi.IORING_CQE_F_MORE != 0 {
		l.refs[bid]++
	}
	return false
}

// zcNotified counts a zero-copy send's notification, and whether the
// kernel copied its data after all (IORING_NOTIF_USAGE_ZC_COPIED: a
// device without scatter-gather or checksum offload, or a loopback or veth
// peer in this host, whose receive path must own its pages).
func (l *loop) zcNotified(res int32) {
	l.count[cZCSends]++
	if uint32(res)&abi.IORING_NOTIF_USAGE_ZC_COPIED != 0 {
		l.count[cZCCopied]++
	}
}

// Fixed buffers uring-zc registers (loop.registerZCBuffers).
const (
	zcPoolBuf   = 0 // the provided buffer pool
	zcSourceBuf = 1 // the source's bytes
)

// bundleTCP echoes through per-connection send groups: the queue is
// mirrored into the connection's incrementally consumed buffer group, and
// one SEND with IORING_RECVSEND_BUNDLE sends all of it. The kernel may post
// a partial result with F_MORE and go on sending: the send stays in
// flight until a CQE without it.
type bundleTCP struct{ ringTCP }

func (t *bundleTCP) accepted(c *conn, slot uint32) {
	if err := t.l.newSendRing(c, slot); err != nil {
		t.l.count[cErrors]++
		t.l.closeConn(slot)
		return
	}
	t.ringTCP.accepted(c, slot)
}

func (t *bundleTCP) queued(c *conn, slot uint32, fresh int32) {
	l := t.l
	if c.pushNext < 0 {
		c.pushNext = fresh // every buffer queued before it is in the group
	}
	l.pushSends(c)
	if c.sending || c.inRing == 0 {
		return
	}
	// The kernel sends from the head of the connection's group, as many
	// buffers as it holds, and consumes them byte by byte
	// (IOU_PBUF_RING_INC), so a short send leaves the rest in place.
	c.sendRing.Publish()
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND
	s.Fd = int32(slot)
	s.Flags = l.fileFlag | abi.IOSQE_BUFFER_SELECT
	s.OpFlags = l.sendFlags
	s.BufIndex = c.sendRing.Group()
	s.Ioprio = abi.IORING_RECVSEND_BUNDLE
	c.sending = true
	c.inflight = c.inRing
	l.count[cSendBundles]++
	s.UserData = userData(opSend, c.gen, 1, uint16(c.qHead), slot)
}

func (t *bundleTCP) onSend(ud uint64, res int32, flags uint32) {
	l := t.l
	c := l.connOf(ud)
	if c == nil {
		l.closedSendDone(ud, flags)
		return
	}
	l.sendDone(c, udSlot(ud), res, flags)
}

// tcpSource is how a TCP source sends its stream, chosen at setup.
type tcpSource interface {
	// send sends the next chunk to slot's connection.
	send(slot uint32)
	onSource(ud uint64, res int32, flags uint32)
}

var (
	_ tcpSource = plainSource{}
	_ tcpSource = zcSource{}
)

// plainSource sends the pattern with SEND.
type plainSource struct{ l *loop }

func (p plainSource) send(slot uint32) {
	p.l.sendPattern(slot, p.l.p.pattern, abi.IORING_OP_SEND)
}

func (p plainSource) onSource(ud uint64, res int32, _ uint32) { p.l.sourceSent(ud, res) }

// zcSource sends the pattern with SEND_ZC from its registered copy (fixed
// buffer zcSourceBuf). The pattern never changes, so the next chunk need
// not wait for the previous one's notification.
type zcSource struct{ l *loop }

func (z zcSource) send(slot uint32) {
	s := z.l.sendPattern(slot, z.l.regSource, abi.IORING_OP_SEND_ZC)
	s.Ioprio = abi.IORING_SEND_ZC_REPORT_USAGE | abi.IORING_RECVSEND_FIXED_BUF
	s.BufIndex = zcSourceBuf
}

func (z zcSource) onSource(ud uint64, res int32, flags uint32) {
	if flags&abi.IORING_CQE_F_NOTIF != 0 {
		z.l.zcNotified(res)
		return
	}
	// The result; its F_MORE announces the notification.
	z.l.sourceSent(ud, res)
}

// sendPattern sends the next chunk of the source pattern, held from offset
// 0 in mem. The pattern starts at any offset's phase, so a send costs no
// pattern computation.
func (l *loop) sendPattern(slot uint32, mem []byte, opcode uint8) *abi.IoUringSqe {
	c := &l.conns[slot]
	chunk := len(l.p.pattern) - backends.SourcePeriod
	s := l.sqe()
	s.Opcode = opcode
	s.Fd = int32(slot)
	s.Flags = l.fileFlag
	s.OpFlags = l.sendFlags
	s.Addr = ring.Addr(&mem[c.srcOff%backends.SourcePeriod])
	s.Len = uint32(chunk)
	s.UserData = userData(opSource, c.gen, 1, 0, slot)
	c.sending = true
	return s
}

// sourceSent handles a source send's result: the next chunk goes at once.
func (l *loop) sourceSent(ud uint64, res int32) {
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
		l.source.send(udSlot(ud))
	}
}

// sendEnded takes the final result of a one-SQE send (no queue): it
// returns the connection to go on with, or nil when it is closed, or was
// closed now because the send failed.
func (l *loop) sendEnded(ud uint64, res int32) (*conn, uint32) {
	c := l.connOf(ud)
	if c == nil {
		return nil, 0
	}
	slot := udSlot(ud)
	c.sending = false
	l.sent(res)
	if res < 0 {
		l.closeConn(slot)
		return nil, 0
	}
	return c, slot
}

// closeConn closes a connection: the queued buffers go back now, except
// those an in-flight send holds (the first c.inflight: the kernel may be
// reading them), which stay queued until the send's final completion or
// the slot's reuse. Whatever is armed on the socket is cancelled, then the
// descriptor closed, both in one linked pair of SQEs that post nothing on
// success.
func (l *loop) closeConn(slot uint32) {
	c := &l.conns[slot]
	c.open = false
	l.count[cClosed]++
	keep := 0
	if c.sending {
		keep = c.inflight
	}
	last := int32(-1)
	for b, i := c.qHead, 0; b >= 0; i++ {
		nb := l.next[b]
		if i < keep {
			last = b
		} else {
			l.unref(uint16(b))
			c.queued--
		}
		b = nb
	}
	if last < 0 {
		c.qHead = -1
	} else {
		l.next[last] = -1
	}
	c.qTail = last
	c.pushNext = -1
	if c.sending {
		// A spill send may be in flight: its memory stays its own (the
		// next connection of the slot grows a new spill).
		c.spill = nil
	}
	c.spill, c.spillOff = c.spill[:0], 0
	l.cancelAndClose(slot)
	if l.acceptWaiting {
		l.acceptWaiting = false
		l.tcp.armAccept()
	}
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
	c.qHead, c.qTail, c.pushNext, c.inRing, c.queued, c.inflight = -1, -1, -1, 0, 0, 0
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
		c.inflight = c.inRing
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

// basicTCP is uring-basic: one one-shot recv into the connection's own
// buffer, then one-shot sends of what it read, then the next recv. Every
// packet costs two SQEs and two CQEs, and the connection is idle while a
// send waits.
type basicTCP struct{ l *loop }

func (t *basicTCP) armAccept() {
	l := t.l
	s := l.sqe()
	s.Opcode = abi.IORING_OP_ACCEPT
	s.Fd = int32(l.sock)
	s.OpFlags = unix.SOCK_CLOEXEC
	s.UserData = userData(opAccept, 0, 1, 0, 0)
}

func (t *basicTCP) accepted(c *conn, slot uint32) {
	if c.buf == nil {
		c.buf = make([]byte, t.l.p.connBytes)
	}
	if t.l.p.service == backends.Source {
		t.l.source.send(slot)
	} else {
		t.recv(slot)
	}
}

func (t *basicTCP) recv(slot uint32) {
	l := t.l
	c := &l.conns[slot]
	s := l.sqe()
	s.Opcode = abi.IORING_OP_RECV
	s.Fd = int32(slot)
	s.Addr = ring.Addr(&c.buf[0])
	s.Len = uint32(len(c.buf))
	s.UserData = userData(opRecv, c.gen, 1, 0, slot)
}

func (t *basicTCP) send(slot uint32) {
	l := t.l
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

// queued is never called: uring-basic queues nothing.
func (t *basicTCP) queued(*conn, uint32, int32) {}

func (t *basicTCP) onRecv(ud uint64, res int32, _ uint32) {
	l := t.l
	c := l.connOf(ud)
	if c == nil {
		return
	}
	slot := udSlot(ud)
	switch {
	case res > 0:
		l.count[cRxBytes] += uint64(res)
		l.count[cRxMsgs]++
		l.load.mark(&c.seen)
		if l.p.service == backends.Echo {
			c.off, c.end = 0, int(res)
			t.send(slot)
		} else {
			t.recv(slot)
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

func (t *basicTCP) onSend(ud uint64, res int32, _ uint32) {
	l := t.l
	c, slot := l.sendEnded(ud, res)
	if c == nil {
		return
	}
	c.off += int(res)
	switch {
	case c.off < c.end:
		t.send(slot)
	case c.eof:
		l.closeConn(slot)
	default:
		t.recv(slot)
	}
}
