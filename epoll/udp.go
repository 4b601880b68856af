package epoll

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/mmsg"
)

// maxPeers bounds a UDP source's peer table. A peer that went away is never
// told apart from one that listens (an unconnected socket hears no ICMP
// errors), so when the table is full the oldest peer makes room.
const maxPeers = 64

// udpState is a loop's UDP socket state: its batches and, for a source, the
// peers it sends to.
type udpState struct {
	// in receives; echo sends its datagrams back from it in place.
	in *mmsg.Batch
	// out holds a source's outgoing datagrams.
	out                *mmsg.Batch
	readable, writable bool

	peers    [maxPeers]sourcePeer
	npeers   int
	next     int // the peer the next source datagram goes to
	oldest   int // the peer a new one replaces when the table is full
	outPeers [udpBatch]int
}

type sourcePeer struct {
	addr mmsg.Peer
	seq  uint64
}

func newUDPState(p *plan) *udpState {
	// One byte over the limit, so an oversize datagram shows as a full
	// buffer or MSG_TRUNC rather than passing for a legal one.
	u := &udpState{in: mmsg.NewBatch(udpBatch, p.maxDatagram+1), writable: true}
	if p.service == backends.Source {
		u.out = mmsg.NewBatch(udpBatch, p.msgSize)
		for i := range udpBatch {
			u.out.SetSize(i, p.msgSize)
		}
	}
	return u
}

func (u *udpState) ready(l *loop, events uint32) {
	if events&(unix.EPOLLIN|unix.EPOLLERR) != 0 {
		u.readable = true
	}
	if events&(unix.EPOLLOUT|unix.EPOLLERR) != 0 {
		u.writable = true
	}
	u.step(l)
}

// step serves the socket until it would block or its budget is spent.
// Per batch of up to 32 datagrams: one recvmmsg and, for echo, one sendmmsg.
func (u *udpState) step(l *loop) {
	for range ioBudget {
		if u.readable {
			u.receive(l)
			continue
		}
		if l.service != backends.Source || u.npeers == 0 || !u.writable {
			return
		}
		u.source(l)
	}
	l.udpAgain = true
}

// receive takes one batch, drops the oversize datagrams and serves the rest.
func (u *udpState) receive(l *loop) {
	n, err := u.in.Recv(l.sock, 0)
	l.count.syscalls++
	switch err {
	case nil:
	case unix.EAGAIN:
		u.readable = false
		return
	case unix.EINTR:
		return
	default:
		l.count.errors++
		return
	}
	if n < u.in.Len() {
		// The queue is drained; later datagrams raise a new edge.
		u.readable = false
	}
	kept := 0
	for i := range n {
		size := u.in.Size(i)
		if u.in.Truncated(i) || size > l.maxDatagram {
			l.count.dropped++
			continue
		}
		l.count.rxBytes += uint64(size)
		l.count.rxMsgs++
		switch l.service {
		case backends.Echo:
			u.in.Swap(kept, i)
			u.in.SetSize(kept, size)
			kept++
		case backends.Source:
			u.addPeer(u.in.Peer(i))
		}
	}
	if kept > 0 {
		l.work.datagrams(l, kept)
		// Echoes the socket has no room for are dropped, as the network
		// would drop them, rather than stall the loop; they count as
		// failed sends.
		if sent := u.send(l, u.in, kept); sent < kept {
			l.count.errors += uint64(kept - sent)
		}
	}
}

// send sends slots 0..n-1 of b and returns how many it is done with. A
// datagram the kernel refuses (a firewall's EPERM) is counted and skipped.
// When the socket buffer is full (EAGAIN) it stops there and leaves the
// rest to the caller.
func (u *udpState) send(l *loop, b *mmsg.Batch, n int) int {
	sent := 0
	for sent < n {
		m, err := b.Send(l.sock, sent, n, 0)
		l.count.syscalls++
		switch err {
		case nil:
			for i := sent; i < sent+m; i++ {
				l.count.txBytes += uint64(b.Size(i))
			}
			l.count.txMsgs += uint64(m)
			sent += m
		case unix.EINTR:
		case unix.EAGAIN:
			u.writable = false
			return sent
		default:
			l.count.errors++
			sent++
		}
	}
	return sent
}

// source sends one batch of FillSourceDatagram datagrams round the peers.
func (u *udpState) source(l *loop) {
	for i := range udpBatch {
		p := &u.peers[u.next]
		u.outPeers[i] = u.next
		u.next = (u.next + 1) % u.npeers
		buf := u.out.Buf(i)
		binary.LittleEndian.PutUint64(buf, p.seq)
		k := p.seq % backends.SourcePeriod
		copy(buf[backends.SourceHeader:], l.pattern[k:])
		u.out.SetPeer(i, p.addr)
		p.seq++
	}
	sent := u.send(l, u.out, udpBatch)
	if sent < udpBatch {
		// The tail the socket had no room for was never on the wire: give
		// those sequence numbers back, the highest of each peer's, so its
		// stream shows no gap.
		for i := udpBatch - 1; i >= sent; i-- {
			p := &u.peers[u.outPeers[i]]
			p.seq--
		}
	}
}

// addPeer adds a sender to the source's peer table.
func (u *udpState) addPeer(a mmsg.Peer) {
	for i := range u.npeers {
		if u.peers[i].addr == a {
			return
		}
	}
	if u.npeers < maxPeers {
		u.peers[u.npeers] = sourcePeer{addr: a}
		u.npeers++
		return
	}
	u.peers[u.oldest] = sourcePeer{addr: a}
	u.oldest = (u.oldest + 1) % maxPeers
}
