package uring

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// recvmsgHeadroom is what a multishot recvmsg writes before the payload in
// each provided buffer: the io_uring_recvmsg_out header and the room
// reserved for the peer's sockaddr_in (no control data).
const recvmsgHeadroom = 16 + unix.SizeofSockaddrInet4

// Source and uring-basic slot counts: datagrams in flight at once.
const (
	basicRecvSlots = 64
	sourceSlots    = 16
)

// maxPeers bounds a UDP source's peer table; when full, the oldest peer
// makes room (an unconnected socket cannot tell a gone peer from a quiet one).
const maxPeers = 64

// udpPath is one variant's UDP data path, chosen once at setup.
type udpPath interface {
	// arm starts receiving, or re-arms what ran out of buffers: at most
	// max receives (the free buffers), and says how many it posted.
	arm(max int) int
	onRecvmsg(ud uint64, res int32, flags uint32)
	onSendmsg(ud uint64, res int32, flags uint32)
	onSource(ud uint64, res int32, flags uint32)
}

var (
	_ udpPath = (*ringUDP)(nil)
	_ udpPath = (*zcUDP)(nil)
	_ udpPath = (*pbufUDP)(nil)
	_ udpPath = (*basicUDP)(nil)
)

// udpSource is a UDP source's state: the peers and the datagrams in
// flight, each with its own buffer.
type udpSource struct {
	l      *loop
	peers  [maxPeers]peer
	npeers int
	next   int
	oldest int
	src    []udpSlot
	idle   []int
	// emit sends a filled source slot and sent handles its completion:
	// SENDMSG, or uring-zc's SEND_ZC from registered memory (chosen at
	// setup, newUDPSource).
	emit func(i int)
	sent func(ud uint64, res int32, flags uint32)
}

// udpSlot is a datagram with its own buffer, header and address.
type udpSlot struct {
	buf  []byte
	hdr  unix.Msghdr
	iov  unix.Iovec
	name [unix.SizeofSockaddrInet4]byte
}

type peer struct {
	name [unix.SizeofSockaddrInet4]byte
	seq  uint64
}

func newUDPSource(l *loop) *udpSource {
	u := &udpSource{l: l}
	u.emit, u.sent = u.sendmsg, u.sendmsgDone
	if l.p.service != backends.Source {
		return u
	}
	u.src = make([]udpSlot, sourceSlots)
	for i := range u.src {
		if l.regSource != nil {
			// uring-zc: the slots' buffers are the registered region.
			u.src[i].buf = l.regSource[i*l.p.msgSize : (i+1)*l.p.msgSize : (i+1)*l.p.msgSize]
		} else {
			u.src[i].buf = make([]byte, l.p.msgSize)
		}
		u.idle = append(u.idle, i)
	}
	if l.regSource != nil {
		u.emit, u.sent = u.sendZC, u.sendZCDone
	}
	return u
}

// peerKey packs a sockaddr_in's family, port and address into one word.
func peerKey(name []byte) uint64 { return binary.LittleEndian.Uint64(name) }

// ringUDP receives with one multishot recvmsg on the provided buffer ring
// and echoes each datagram from the buffer it arrived in.
type ringUDP struct {
	*udpSource
	// rx is the multishot recvmsg's template: the kernel reads only its
	// name and control lengths, to lay out each buffer.
	rx unix.Msghdr
	// tx/txIov by bid: the echo's sendmsg header and vector, pointing into
	// the received buffer itself (no copy).
	tx    []unix.Msghdr
	txIov []unix.Iovec
	// echo sends datagram bid back to its sender: a SENDMSG, or uring-zc's
	// SEND_ZC (chosen at setup).
	echo func(bid uint16, buf []byte, namelen uint32, payload int)
}

func newRingUDP(l *loop) *ringUDP {
	u := &ringUDP{udpSource: newUDPSource(l)}
	u.rx.Namelen = unix.SizeofSockaddrInet4
	u.tx = make([]unix.Msghdr, l.p.bufCount)
	u.txIov = make([]unix.Iovec, l.p.bufCount)
	u.echo = u.sendmsgEcho
	return u
}

// arm starts the multishot recvmsg.
func (u *ringUDP) arm(int) int {
	u.l.recvmsgSelect(&u.rx, abi.IORING_RECV_MULTISHOT, 0)
	u.l.udpArmed = true
	return 1
}

// onRecvmsg handles one datagram. Per packet: no copy, no allocation, no
// syscall; the echo's sendmsg points at the received buffer.
func (u *ringUDP) onRecvmsg(ud uint64, res int32, flags uint32) {
	l := u.l
	if flags&abi.IORING_CQE_F_MORE == 0 {
		l.udpArmed = false
		if res != -int32(unix.ENOBUFS) && l.free > 0 {
			u.arm(1)
		} // else afterBatch re-arms once buffers come back
	}
	if res < 0 {
		switch res {
		case -int32(unix.ENOBUFS):
			l.count[cRecvNoBufs]++
		case -int32(unix.ECANCELED):
		default:
			l.count[cErrors]++
		}
		return
	}
	if flags&abi.IORING_CQE_F_BUFFER == 0 {
		return
	}
	bid := cqeBid(flags)
	l.free--
	buf := l.bufs.Buf(bid)
	namelen := binary.LittleEndian.Uint32(buf[0:])
	payload := int(binary.LittleEndian.Uint32(buf[8:]))
	msgFlags := binary.LittleEndian.Uint32(buf[12:])
	if msgFlags&unix.MSG_TRUNC != 0 || payload > l.p.maxDatagram || recvmsgHeadroom+payload > int(res) {
		l.count[cDropped]++
		l.recycle(bid)
		return
	}
	l.count[cRxBytes] += uint64(payload)
	l.count[cRxMsgs]++
	l.load.markPeer(peerKey(buf[16:]))
	switch l.p.service {
	case backends.Echo:
		l.refs[bid] = 1
		u.echo(bid, buf, namelen, payload)
	case backends.Source:
		var name [unix.SizeofSockaddrInet4]byte
		copy(name[:], buf[16:recvmsgHeadroom])
		l.recycle(bid)
		u.addPeer(name)
	default:
		l.recycle(bid)
	}
}

// sendmsgEcho sends the datagram in buffer bid back to its sender with a
// SENDMSG whose header points into the buffer itself (no copy).
func (u *ringUDP) sendmsgEcho(bid uint16, buf []byte, namelen uint32, payload int) {
	l := u.l
	h := &u.tx[bid]
	h.Name = &buf[16]
	h.Namelen = min(namelen, unix.SizeofSockaddrInet4)
	v := &u.txIov[bid]
	v.Base = &buf[recvmsgHeadroom]
	v.SetLen(payload)
	h.Iov = v
	h.Iovlen = 1
	l.msgSQE(abi.IORING_OP_SENDMSG, h, userData(opSendmsg, 0, 1, bid, 0))
}

// msgSQE queues a SENDMSG or RECVMSG of hdr on the socket.
func (l *loop) msgSQE(opcode uint8, hdr *unix.Msghdr, ud uint64) *abi.IoUringSqe {
	s := l.sqe()
	s.Opcode = opcode
	s.Fd = int32(l.sock)
	s.Addr = ring.Addr(hdr)
	s.Len = 1
	if opcode == abi.IORING_OP_SENDMSG {
		s.OpFlags = l.sendFlags
	}
	s.UserData = ud
	return s
}

// onSendmsg: a SENDMSG posts one CQE, its last.
func (u *ringUDP) onSendmsg(ud uint64, res int32, _ uint32) {
	u.l.sent(res)
	u.l.unref(udBid(ud))
}

// zcUDP is ringUDP sending with SEND_ZC from the registered pool (fixed
// buffer zcPoolBuf) to the address the datagram came from: a buffer
// returns at the notification.
type zcUDP struct{ *ringUDP }

func newZCUDP(l *loop) *zcUDP {
	u := &zcUDP{newRingUDP(l)}
	u.echo = u.sendZCEcho
	return u
}

// sendZCEcho sends datagram bid back with SEND_ZC: the payload named in
// the registered pool, the destination (addr2, addr_len) the sender's
// address the recvmsg wrote into the same buffer.
func (u *zcUDP) sendZCEcho(bid uint16, buf []byte, namelen uint32, payload int) {
	l := u.l
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND_ZC
	s.Ioprio = abi.IORING_SEND_ZC_REPORT_USAGE | abi.IORING_RECVSEND_FIXED_BUF
	s.BufIndex = zcPoolBuf
	s.Fd = int32(l.sock)
	s.Addr = l.bufs.Addr(bid, recvmsgHeadroom)
	s.Len = uint32(payload)
	s.Off = ring.Addr(&buf[16])
	s.FileIndex = min(namelen, unix.SizeofSockaddrInet4) // addr_len
	s.OpFlags = l.sendFlags
	s.UserData = userData(opSendmsg, 0, 1, bid, 0)
}

func (u *zcUDP) onSendmsg(ud uint64, res int32, flags uint32) {
	l := u.l
	bid := udBid(ud)
	if l.zcCompletion(bid, res, flags) {
		return
	}
	l.sent(res)
	l.unref(bid)
}

// basicUDP is uring-basic: each slot is a one-shot recvmsg into its own
// buffer, then a one-shot sendmsg of it back, then the next recvmsg.
type basicUDP struct {
	*udpSource
	basic []udpSlot
}

func newBasicUDP(l *loop) *basicUDP {
	u := &basicUDP{udpSource: newUDPSource(l)}
	if l.p.proto == backends.UDP {
		u.basic = make([]udpSlot, basicRecvSlots)
		for i := range u.basic {
			u.basic[i].buf = make([]byte, l.p.maxDatagram+1)
		}
	}
	return u
}

// arm posts every slot's recvmsg, once: each re-arms itself, with a
// buffer of its own (the budget of free ring buffers is not its).
func (u *basicUDP) arm(int) int {
	n := 0
	if !u.l.udpArmed {
		for i := range u.basic {
			u.recv(i)
		}
		n = len(u.basic)
	}
	u.l.udpArmed = true
	return n
}

func (u *basicUDP) recv(i int) {
	sl := &u.basic[i]
	sl.iov.Base = &sl.buf[0]
	sl.iov.SetLen(len(sl.buf))
	sl.submit(u.l, abi.IORING_OP_RECVMSG, userData(opRecvmsg, 0, 1, 0, uint32(i)))
}

// submit queues a recvmsg or sendmsg of the slot's whole buffer, to or from
// the slot's address.
func (sl *udpSlot) submit(l *loop, opcode uint8, ud uint64) {
	sl.hdr = unix.Msghdr{Name: &sl.name[0], Namelen: unix.SizeofSockaddrInet4, Iov: &sl.iov, Iovlen: 1}
	l.msgSQE(opcode, &sl.hdr, ud)
}

func (u *basicUDP) onRecvmsg(ud uint64, res int32, _ uint32) {
	l := u.l
	i := int(udSlot(ud))
	if res < 0 {
		if res == -int32(unix.ECANCELED) {
			return
		}
		l.count[cErrors]++
		u.recv(i)
		return
	}
	sl := &u.basic[i]
	if u.received(sl, res) {
		// The recvmsg wrote the peer's address into sl.name.
		sl.iov.SetLen(int(res))
		sl.submit(l, abi.IORING_OP_SENDMSG, userData(opSendmsg, 0, 1, 0, uint32(i)))
		return
	}
	u.recv(i)
}

// received takes a slot's datagram of res bytes: an oversize one is
// dropped, a source learns its sender; it reports whether to echo it.
func (u *udpSource) received(sl *udpSlot, res int32) (echo bool) {
	l := u.l
	if int(res) > l.p.maxDatagram {
		l.count[cDropped]++
		return false
	}
	l.count[cRxBytes] += uint64(res)
	l.count[cRxMsgs]++
	l.load.markPeer(peerKey(sl.name[:]))
	switch l.p.service {
	case backends.Echo:
		return true
	case backends.Source:
		u.addPeer(sl.name)
	}
	return false
}

// onSendmsg: the slot receives again.
func (u *basicUDP) onSendmsg(ud uint64, res int32, _ uint32) {
	u.l.sent(res)
	if res == -int32(unix.ECANCELED) {
		return
	}
	u.recv(int(udSlot(ud)))
}

// pbufUDP is uring-pbuf: each slot is a one-shot recvmsg with its own
// header and peer address, its payload in a buffer the kernel picks from
// the ring (IOSQE_BUFFER_SELECT); the echo goes back from that buffer,
// then the slot receives again. A slot that found the ring empty waits
// for buffers to come back (loop.rearmStarved).
type pbufUDP struct {
	*udpSource
	slots   []udpSlot
	starved []int
}

func newPbufUDP(l *loop) *pbufUDP {
	return &pbufUDP{udpSource: newUDPSource(l), slots: make([]udpSlot, basicRecvSlots)}
}

// arm posts every slot's recvmsg the first time, then those that starved,
// oldest first, at most max of them: the rest wait for more buffers.
func (u *pbufUDP) arm(max int) int {
	if u.starved == nil {
		u.starved = make([]int, 0, len(u.slots))
		for i := range u.slots {
			u.recv(i)
		}
		u.l.udpArmed = true
		return len(u.slots)
	}
	n := min(max, len(u.starved))
	for _, i := range u.starved[:n] {
		u.recv(i)
	}
	u.starved = append(u.starved[:0], u.starved[n:]...)
	u.l.udpArmed = len(u.starved) == 0
	return n
}

func (u *pbufUDP) recv(i int) {
	l := u.l
	sl := &u.slots[i]
	// With buffer select the kernel reads only the vector's length.
	sl.iov = unix.Iovec{}
	sl.iov.SetLen(l.p.bufSize)
	sl.hdr = unix.Msghdr{Name: &sl.name[0], Namelen: unix.SizeofSockaddrInet4, Iov: &sl.iov, Iovlen: 1}
	l.recvmsgSelect(&sl.hdr, 0, uint32(i))
}

// recvmsgSelect queues a recvmsg with buffer select on the socket, for
// receive slot slot (ioprio: IORING_RECV_MULTISHOT or 0).
func (l *loop) recvmsgSelect(hdr *unix.Msghdr, ioprio uint16, slot uint32) {
	s := l.msgSQE(abi.IORING_OP_RECVMSG, hdr, userData(opRecvmsg, 0, 1, 0, slot))
	s.Flags = abi.IOSQE_BUFFER_SELECT
	s.BufIndex = l.bufs.Group()
	s.Ioprio = ioprio
}

func (u *pbufUDP) onRecvmsg(ud uint64, res int32, flags uint32) {
	l := u.l
	i := int(udSlot(ud))
	switch {
	case res == -int32(unix.ENOBUFS):
		l.count[cRecvNoBufs]++
		u.starved = append(u.starved, i)
		l.udpArmed = false
		return
	case res == -int32(unix.ECANCELED):
		return
	case res < 0 || flags&abi.IORING_CQE_F_BUFFER == 0:
		l.count[cErrors]++
		u.recv(i)
		return
	}
	bid := cqeBid(flags)
	l.free--
	sl := &u.slots[i]
	if u.received(sl, res) {
		// The recvmsg wrote the peer's address into sl.name.
		sl.iov.Base = &l.bufs.Buf(bid)[0]
		sl.iov.SetLen(int(res))
		sl.hdr.Namelen = unix.SizeofSockaddrInet4
		l.msgSQE(abi.IORING_OP_SENDMSG, &sl.hdr, userData(opSendmsg, 0, 1, bid, uint32(i)))
		return
	}
	l.recycle(bid)
	u.recv(i)
}

// onSendmsg: the buffer goes back, the slot receives again.
func (u *pbufUDP) onSendmsg(ud uint64, res int32, _ uint32) {
	u.l.sent(res)
	u.l.recycle(udBid(ud))
	if res == -int32(unix.ECANCELED) {
		return
	}
	u.recv(int(udSlot(ud)))
}

// addPeer adds a sender to the source's peer table and starts the idle
// source slots.
func (u *udpSource) addPeer(name [unix.SizeofSockaddrInet4]byte) {
	known := false
	for i := range u.npeers {
		if u.peers[i].name == name {
			known = true
			break
		}
	}
	if !known {
		if u.npeers < maxPeers {
			u.peers[u.npeers] = peer{name: name}
			u.npeers++
		} else {
			u.peers[u.oldest] = peer{name: name}
			u.oldest = (u.oldest + 1) % maxPeers
		}
	}
	for len(u.idle) > 0 {
		i := u.idle[len(u.idle)-1]
		u.idle = u.idle[:len(u.idle)-1]
		u.sendSource(i)
	}
}

// sendSource fills slot i with the next datagram for the next peer, round
// robin, and sends it. The send waits for socket space in the kernel, so a
// sequence number is never skipped.
func (u *udpSource) sendSource(i int) {
	l := u.l
	p := &u.peers[u.next]
	u.next = (u.next + 1) % u.npeers
	sl := &u.src[i]
	binary.LittleEndian.PutUint64(sl.buf, p.seq)
	copy(sl.buf[backends.SourceHeader:], l.p.pattern[p.seq%backends.SourcePeriod:])
	p.seq++
	sl.name = p.name
	u.emit(i)
}

func (u *udpSource) onSource(ud uint64, res int32, flags uint32) { u.sent(ud, res, flags) }

// sendmsg sends source slot i with SENDMSG.
func (u *udpSource) sendmsg(i int) {
	sl := &u.src[i]
	sl.iov.Base = &sl.buf[0]
	sl.iov.SetLen(len(sl.buf))
	sl.submit(u.l, abi.IORING_OP_SENDMSG, userData(opUDPSource, 0, 1, 0, uint32(i)))
}

// sendmsgDone: the slot's datagram is out; it sends the next.
func (u *udpSource) sendmsgDone(ud uint64, res int32, _ uint32) {
	u.l.sent(res)
	if res == -int32(unix.ECANCELED) {
		return
	}
	u.sendSource(int(udSlot(ud)))
}

// sendZC sends source slot i with SEND_ZC from the registered source
// region (fixed buffer zcSourceBuf) to the slot's peer (addr2).
func (u *udpSource) sendZC(i int) {
	l := u.l
	sl := &u.src[i]
	s := l.sqe()
	s.Opcode = abi.IORING_OP_SEND_ZC
	s.Ioprio = abi.IORING_SEND_ZC_REPORT_USAGE | abi.IORING_RECVSEND_FIXED_BUF
	s.BufIndex = zcSourceBuf
	s.Fd = int32(l.sock)
	s.Addr = ring.Addr(&sl.buf[0])
	s.Len = uint32(len(sl.buf))
	s.Off = ring.Addr(&sl.name[0])
	s.FileIndex = unix.SizeofSockaddrInet4 // addr_len
	s.OpFlags = l.sendFlags
	s.UserData = userData(opUDPSource, 0, 1, 0, uint32(i))
}

// sendZCDone: the slot's buffer may be rewritten only at the notification
// (the kernel may still read it), so the next datagram waits for it; a
// result without F_MORE has no notification coming.
func (u *udpSource) sendZCDone(ud uint64, res int32, flags uint32) {
	l := u.l
	if flags&abi.IORING_CQE_F_NOTIF != 0 {
		l.zcNotified(res)
	} else {
		l.sent(res)
		if flags&abi.IORING_CQE_F_MORE != 0 {
			return
		}
	}
	if res == -int32(unix.ECANCELED) {
		return
	}
	u.sendSource(int(udSlot(ud)))
}
