package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/uring/internal/abi"
)

// DescRing is a provided-buffer ring: buffer descriptors shared with the
// kernel (IORING_REGISTER_PBUF_RING) in caller-provided, page-aligned memory.
// The kernel takes descriptors from the head when a request with
// IOSQE_BUFFER_SELECT on this group runs; the owner appends with Push and
// publishes the tail with Publish.
type DescRing struct {
	r       *Ring
	bgid    uint16
	mask    uint32
	entries []abi.IoUringBuf
	tailW   *uint32 // the 32-bit word holding entry 0's bid and the tail
	local   uint16  // tail not yet published
}

// RegisterDescRing registers mem (page-aligned, n descriptors of 16 bytes,
// n a power of two up to 32768) as buffer group bgid, with IOU_PBUF_RING_*
// flags.
func RegisterDescRing(r *Ring, bgid uint16, mem []byte, n int, flags uint16) (*DescRing, error) {
	if n <= 0 || n&(n-1) != 0 || n > 1<<15 || len(mem) < n*int(unsafe.Sizeof(abi.IoUringBuf{})) {
		return nil, fmt.Errorf("register buffer ring %d: %d entries in %d bytes", bgid, n, len(mem))
	}
	d := &DescRing{r: r, bgid: bgid, mask: uint32(n - 1)}
	d.entries = unsafe.Slice((*abi.IoUringBuf)(unsafe.Pointer(&mem[0])), n)
	d.tailW = (*uint32)(unsafe.Pointer(&mem[abi.IoUringBufRingTailOffset-2]))
	// A new group's head is 0, so its tail must be too (mem may be reused).
	atomic.StoreUint32(d.tailW, 0)
	reg := abi.IoUringBufReg{RingAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), RingEntries: uint32(n), Bgid: bgid, Flags: flags}
	if _, err := r.Register(abi.IORING_REGISTER_PBUF_RING, unsafe.Pointer(&reg), 1); err != nil {
		return nil, fmt.Errorf("register buffer ring %d: %w", bgid, err)
	}
	return d, nil
}

// Group is the buffer group id to put in an SQE's buf_group.
func (d *DescRing) Group() uint16 { return d.bgid }

// Push appends a descriptor (seen by the kernel after Publish) and returns
// its ring position.
func (d *DescRing) Push(addr uint64, n uint32, bid uint16) uint16 {
	pos := d.local
	e := &d.entries[uint32(pos)&d.mask]
	e.Addr = addr
	e.Len = n
	e.Bid = bid
	d.local++
	return pos
}

// Publish makes every pushed descriptor visible to the kernel with one
// release store of the tail: one store per batch, not per buffer.
func (d *DescRing) Publish() {
	// The tail is a u16 overlaid on entry 0's resv and Go has no 16-bit
	// atomic store, so store the aligned 32-bit word holding entry 0's bid
	// and the tail. Only this goroutine writes descriptors, so entry 0's
	// bid is rewritten unchanged; the sequentially consistent store orders
	// every descriptor written before it ahead of the kernel's acquire load
	// of the tail.
	atomic.StoreUint32(d.tailW, uint32(d.entries[0].Bid)|uint32(d.local)<<16)
}

// BidAt is the bid of the descriptor at ring position pos.
func (d *DescRing) BidAt(pos uint16) uint16 { return d.entries[uint32(pos)&d.mask].Bid }

// Unregister removes the group from the ring (the memory stays the
// caller's); a ring already closed needs no unregistering.
func (d *DescRing) Unregister() error {
	if d.r == nil || d.r.fd < 0 {
		return nil
	}
	reg := abi.IoUringBufReg{Bgid: d.bgid}
	if _, err := d.r.Register(abi.IORING_UNREGISTER_PBUF_RING, unsafe.Pointer(&reg), 1); err != nil {
		return fmt.Errorf("unregister buffer ring %d: %w", d.bgid, err)
	}
	return nil
}

// BufRing is a receive buffer pool: a DescRing and the buffers themselves,
// one anonymous mapping of Count buffers of Size bytes each. The kernel
// names the buffer a receive took by bid in the CQE; the owner gives it back
// with Recycle.
type BufRing struct {
	desc    *DescRing
	Size    int
	Count   int
	ringMem []byte
	mem     []byte
	// pos[bid] is the ring position bid was last pushed at; a bundle's
	// following buffers are the descriptors after it.
	pos []uint16
}

// NewBufRing registers buffer group bgid with count buffers of size bytes
// (count a power of two, at most 32768).
func NewBufRing(r *Ring, bgid uint16, count, size int) (b *BufRing, err error) {
	if count <= 0 || count&(count-1) != 0 || count > 1<<15 {
		return nil, fmt.Errorf("create buffer ring: count %d is not a power of two up to 32768", count)
	}
	b = &BufRing{Size: size, Count: count, pos: make([]uint16, count)}
	b.ringMem, err = MapAnon(count * int(unsafe.Sizeof(abi.IoUringBuf{})))
	if err != nil {
		return nil, fmt.Errorf("map buffer ring: %w", err)
	}
	defer func() {
		if err != nil {
			b.unmap()
		}
	}()
	b.mem, err = MapAnon(count * size)
	if err != nil {
		return nil, fmt.Errorf("map buffers: %w", err)
	}
	// Buffers cycle through the whole pool in FIFO order; huge pages keep
	// that walk from costing a TLB miss per packet. Advice only.
	_ = unix.Madvise(b.mem, unix.MADV_HUGEPAGE)
	if b.desc, err = RegisterDescRing(r, bgid, b.ringMem, count, 0); err != nil {
		return nil, err
	}
	for bid := 0; bid < count; bid++ {
		b.Recycle(uint16(bid))
	}
	b.Publish()
	return b, nil
}

// MapAnon maps n bytes of zeroed, page-aligned private memory: memory the
// kernel may hold pointers into, which Go's heap cannot promise.
func MapAnon(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

// Group is the buffer group id to put in an SQE's buf_group.
func (b *BufRing) Group() uint16 { return b.desc.bgid }

// Mem is the whole pool: every buffer, bid 0 first (what a variant
// registers as a fixed buffer to send from).
func (b *BufRing) Mem() []byte { return b.mem }

// SmallPages takes back the huge-page advice NewBufRing gave the pool, for
// a pool registered as a fixed buffer to send from: the kernel then makes
// one bvec per huge page, and a zero-copy send charges each skb the page
// size rounded up from its offset in the bvec, so a 64-byte datagram from
// the middle of a 2 MiB page would count as up to 2 MiB against its
// receiver's buffer. Call it before anything touches the pool.
func (b *BufRing) SmallPages() error {
	if err := unix.Madvise(b.mem, unix.MADV_NOHUGEPAGE); err != nil {
		return fmt.Errorf("advise small pages: %w", err)
	}
	return nil
}

// Buf returns buffer bid's memory.
func (b *BufRing) Buf(bid uint16) []byte {
	off := int(bid) * b.Size
	return b.mem[off : off+b.Size : off+b.Size]
}

// Addr is the address of byte off of buffer bid.
func (b *BufRing) Addr(bid uint16, off int) uint64 {
	return uint64(uintptr(unsafe.Pointer(&b.mem[int(bid)*b.Size+off])))
}

// Recycle gives buffer bid back; the kernel sees it after Publish.
func (b *BufRing) Recycle(bid uint16) {
	b.pos[bid] = b.desc.Push(b.Addr(bid, 0), uint32(b.Size), bid)
}

// Publish makes every recycled buffer visible to the kernel.
func (b *BufRing) Publish() { b.desc.Publish() }

// BundleBid returns the bid of the i-th buffer of a bundle whose first
// buffer is first: bundles take consecutive ring entries.
func (b *BufRing) BundleBid(first uint16, i int) uint16 {
	return b.desc.BidAt(b.pos[first] + uint16(i))
}

// Close unregisters the group and unmaps its memory.
func (b *BufRing) Close() error {
	var err error
	if b.desc != nil {
		err = b.desc.Unregister()
	}
	b.unmap()
	return err
}

func (b *BufRing) unmap() {
	for _, m := range []*[]byte{&b.mem, &b.ringMem} {
		if *m != nil {
			unix.Munmap(*m)
			*m = nil
		}
	}
}
