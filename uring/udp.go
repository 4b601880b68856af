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

// udpState is a loop's UDP side.
type udpState struct {
	// rx is the multishot recvmsg's template: the kernel reads only its
	// name and control lengths, to lay out each buffer.
	rx unix.Msghdr
	// tx/txIov by bid: the echo's sendmsg header and vector, pointing into
	// the received buffer itself (no copy).
	tx    []unix.Msghdr
	txIov []unix.Iovec
	// uring-basic's one-shot receive slots.
	basic []udpSlot
	// Source: the peers and the datagrams in flight.
	peers  [maxPeers]peer
	npeers int
	next   int
	oldest int
	src    []udpSlot
	idle   []int
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

func newUDPState(l *loop) *udpState {
	u := &udpState{}
	u.rx.Namelen = unix.SizeofSockaddrInet4
	if l.p.v.basic {
		u.basic = make([]udpSlot, basicRecvSlots)
		for i := range u.basic {
			u.basic[i].buf = make([]byte, l.p.maxDatagram+1)
		}
	} else {
		u.tx = make([]unix.Msghdr, l.p.bufCount)
		u.txIov = make([]unix.Iovec, l.p.bufCount)
	}
	if l.p.service == backends.Source {
		u.src = make([]udpSlot, sourceSlots)
		for i := range u.src {
			u.src[i].buf = make([]byte, l.p.msgSize)
			u.idle = append(u.idle, i)
		}
	}
	return u
}

func (u *udpState) free() {}

// arm starts receiving: one multishot recvmsg on the provided buffer ring,
// or uring-basic's one-shot recvmsgs.
func (u *udpState) arm(l *loop) {
	if l.p.v.basic {
		if !l.udpArmed {
			for i := range u.basic {
				u.recvBasic(l, i)
			}
		}
		l.udpArmed = true
		return
	}
	s := l.sqe()
	s.Opcode = abi.IORING_OP_RECVMSG
	s.Fd = int32(l.sock)
	s.Addr = ring.Addr(&u.rx)
	s.Len = 1
	s.Flags = abi.IOSQE_BUFFER_SELECT
	s.BufIndex = l.bufs.Group()
	s.Ioprio = abi.IORING_RECV_MULTISHOT
	s.UserData = userData(opRecvmsg, 0, 1, 0, 0)
	l.udpArmed = true
}

// onRecvmsg handles one datagram. Per packet: no copy, no allocation, no
// syscall; the echo's sendmsg points at the received buffer.
func (u *udpState) onRecvmsg(l *loop, ud uint64, res int32, flags uint32) {
	if l.p.v.basic {
		u.onRecvBasic(l, int(udSlot(ud)), res)
		return
	}
	if flags&abi.IORING_CQE_F_MORE == 0 {
		l.udpArmed = false
		if res != -int32(unix.ENOBUFS) && l.free > 0 {
			u.arm(l)
		} // else afterBatch re-arms once buffers come back
	}
	if res < 0 {
		if res != -int32(unix.ENOBUFS) && res != -int32(unix.ECANCELED) {
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
	switch l.p.service {
	case backends.Echo:
		h := &u.tx[bid]
		h.Name = &buf[16]
		h.Namelen = min(namelen, unix.SizeofSockaddrInet4)
		v := &u.txIov[bid]
		v.Base = &buf[recvmsgHeadroom]
		v.SetLen(payload)
		h.Iov = v
		h.Iovlen = 1
		l.refs[bid] = 1
		s := l.sqe()
		s.Opcode = abi.IORING_OP_SENDMSG
		if l.p.v.zc {
			s.Opcode = abi.IORING_OP_SENDMSG_ZC
			s.Ioprio = abi.IORING_SEND_ZC_REPORT_USAGE
		}
		s.Fd = int32(l.sock)
		s.Addr = ring.Addr(h)
		s.Len = 1
		s.OpFlags = l.sendFlags
		s.UserData = userData(opSendmsg, 0, 1, bid, 0)
	case backends.Source:
		var name [unix.SizeofSockaddrInet4]byte
		copy(name[:], buf[16:recvmsgHeadroom])
		l.recycle(bid)
		u.addPeer(l, name)
	default:
		l.recycle(bid)
	}
}

func (u *udpState) onSendmsg(l *loop, ud uint64, res int32, flags uint32) {
	if l.p.v.basic {
		u.onSendmsgBasic(l, ud, res)
		return
	}
	bid := udBid(ud)
	if l.zcCompletion(bid, res, flags) {
		return
	}
	l.sent(res)
	l.unref(bid)
}

// uring-basic: each slot is a one-shot recvmsg into its own buffer, then a
// one-shot sendmsg of it back, then the next recvmsg.

func (u *udpState) recvBasic(l *loop, i int) {
	sl := &u.basic[i]
	sl.iov.Base = &sl.buf[0]
	sl.iov.SetLen(len(sl.buf))
	sl.submit(l, abi.IORING_OP_RECVMSG, userData(opRecvmsg, 0, 1, 0, uint32(i)))
}

// submit queues a recvmsg or sendmsg of the slot's whole buffer, to or from
// the slot's address.
func (sl *udpSlot) submit(l *loop, opcode uint8, ud uint64) {
	sl.hdr = unix.Msghdr{Name: &sl.name[0], Namelen: unix.SizeofSockaddrInet4, Iov: &sl.iov, Iovlen: 1}
	s := l.sqe()
	s.Opcode = opcode
	s.Fd = int32(l.sock)
	s.Addr = ring.Addr(&sl.hdr)
	s.Len = 1
	if opcode == abi.IORING_OP_SENDMSG {
		s.OpFlags = l.sendFlags
	}
	s.UserData = ud
}

func (u *udpState) onRecvBasic(l *loop, i int, res int32) {
	if res < 0 {
		if res == -int32(unix.ECANCELED) {
			return
		}
		l.count[cErrors]++
		u.recvBasic(l, i)
		return
	}
	sl := &u.basic[i]
	if int(res) > l.p.maxDatagram {
		l.count[cDropped]++
		u.recvBasic(l, i)
		return
	}
	l.count[cRxBytes] += uint64(res)
	l.count[cRxMsgs]++
	switch l.p.service {
	case backends.Echo:
		// The recvmsg wrote the peer's address into sl.name.
		sl.iov.SetLen(int(res))
		sl.submit(l, abi.IORING_OP_SENDMSG, userData(opSendmsg, 0, 1, 0, uint32(i)))
		return
	case backends.Source:
		u.addPeer(l, sl.name)
	}
	u.recvBasic(l, i)
}

// onSendmsgBasic is onSendmsg for uring-basic: the slot receives again.
func (u *udpState) onSendmsgBasic(l *loop, ud uint64, res int32) {
	l.sent(res)
	if res == -int32(unix.ECANCELED) {
		return
	}
	u.recvBasic(l, int(udSlot(ud)))
}

// addPeer adds a sender to the source's peer table and starts the idle
// source slots.
func (u *udpState) addPeer(l *loop, name [unix.SizeofSockaddrInet4]byte) {
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
		u.sendSource(l, i)
	}
}

// sendSource fills slot i with the next datagram for the next peer, round
// robin, and sends it. The send waits for socket space in the kernel, so a
// sequence number is never skipped.
func (u *udpState) sendSource(l *loop, i int) {
	p := &u.peers[u.next]
	u.next = (u.next + 1) % u.npeers
	sl := &u.src[i]
	binary.LittleEndian.PutUint64(sl.buf, p.seq)
	copy(sl.buf[backends.SourceHeader:], l.p.pattern[p.seq%backends.SourcePeriod:])
	p.seq++
	sl.name = p.name
	sl.iov.Base = &sl.buf[0]
	sl.iov.SetLen(len(sl.buf))
	sl.submit(l, abi.IORING_OP_SENDMSG, userData(opUDPSource, 0, 1, 0, uint32(i)))
}

func (u *udpState) onSource(l *loop, ud uint64, res int32) {
	l.sent(res)
	if res == -int32(unix.ECANCELED) {
		return
	}
	u.sendSource(l, int(udSlot(ud)))
}
