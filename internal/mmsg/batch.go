package mmsg

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is a datagram's source or destination address, kept in the kernel's
// raw form so that copying it costs no parsing and no allocation. It is
// comparable, so a peer table can match senders with ==.
type Peer struct {
	raw unix.RawSockaddrInet6 // large enough for IPv4 and IPv6
	len uint32
}

// Port returns the peer's port, 0 for an empty Peer.
func (p Peer) Port() int {
	if p.len == 0 {
		return 0
	}
	// The port sits at the same offset, in network order, in sockaddr_in
	// and sockaddr_in6.
	b := (*[2]byte)(unsafe.Pointer(&p.raw.Port))
	return int(b[0])<<8 | int(b[1])
}

// Batch is n message slots for one recvmmsg or sendmmsg call.
type Batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	peers []Peer
	bufs  [][]byte
}

// NewBatch returns a batch of n slots, each with a buffer of size bytes.
func NewBatch(n, size int) *Batch {
	if n <= 0 || size <= 0 {
		panic("mmsg: NewBatch needs n > 0 and size > 0")
	}
	b := &Batch{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		peers: make([]Peer, n),
		bufs:  make([][]byte, n),
	}
	slab := make([]byte, n*size)
	for i := range n {
		b.bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		h := &b.hdrs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&b.peers[i].raw))
	}
	return b
}

// Len returns the number of slots.
func (b *Batch) Len() int { return len(b.hdrs) }

// Buf returns slot i's whole buffer, to fill before Send.
func (b *Batch) Buf(i int) []byte { return b.bufs[i] }

// Size returns the bytes the last Recv put in slot i (or the last Send sent
// from it).
func (b *Batch) Size(i int) int { return int(b.hdrs[i].Len) }

// Payload returns the bytes the last Recv put in slot i.
func (b *Batch) Payload(i int) []byte { return b.bufs[i][:b.hdrs[i].Len] }

// Truncated reports whether slot i's datagram was larger than its buffer
// (MSG_TRUNC): its tail was discarded by the kernel.
func (b *Batch) Truncated(i int) bool { return b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 }

// SetSize sets how many bytes of slot i's buffer the next Send sends.
func (b *Batch) SetSize(i, n int) { b.iovs[i].SetLen(n) }

// Peer returns the sender of slot i's datagram after Recv.
func (b *Batch) Peer(i int) Peer {
	p := b.peers[i]
	p.len = b.hdrs[i].Hdr.Namelen
	return p
}

// SetPeer makes p the destination of slot i for the next Send.
func (b *Batch) SetPeer(i int, p Peer) {
	b.peers[i] = p
	b.hdrs[i].Hdr.Namelen = p.len
}

// ClearPeer sends slot i to a connected socket's peer.
func (b *Batch) ClearPeer(i int) { b.hdrs[i].Hdr.Namelen = 0 }

// Swap exchanges slots i and j: buffers, sizes and peers. An echo server
// uses it to close the gaps that dropped datagrams leave before it sends
// the rest back in one call.
func (b *Batch) Swap(i, j int) {
	if i == j {
		return
	}
	b.bufs[i], b.bufs[j] = b.bufs[j], b.bufs[i]
	b.iovs[i], b.iovs[j] = b.iovs[j], b.iovs[i]
	b.peers[i], b.peers[j] = b.peers[j], b.peers[i]
	hi, hj := &b.hdrs[i], &b.hdrs[j]
	hi.Len, hj.Len = hj.Len, hi.Len
	hi.Hdr.Namelen, hj.Hdr.Namelen = hj.Hdr.Namelen, hi.Hdr.Namelen
	hi.Hdr.Flags, hj.Hdr.Flags = hj.Hdr.Flags, hi.Hdr.Flags
	// Iov and Name keep pointing at their own slot's iovec and peer, whose
	// contents moved with them.
}

// Recv receives up to Len() datagrams from fd with one recvmmsg(2) and
// returns how many arrived. Every slot's buffer is offered whole.
func (b *Batch) Recv(fd, flags int) (int, error) {
	for i := range b.hdrs {
		b.iovs[i].SetLen(len(b.bufs[i]))
		h := &b.hdrs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Send sends slots from..to-1 (each SetSize bytes to its peer) with one
// sendmmsg(2) and returns how many went. A short count means the next slot
// failed; sending from there returns its error.
func (b *Batch) Send(fd, from, to, flags int) (int, error) {
	if from >= to {
		return 0, nil
	}
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&b.hdrs[from])), uintptr(to-from), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
