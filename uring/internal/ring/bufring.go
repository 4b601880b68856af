package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/uring/internal/abi"
)

// BufRing is a provided-buffer group: a ring of buffer descriptors shared
// with the kernel (IORING_REGISTER_PBUF_RING) and the buffers themselves, one
// anonymous mapping of Count buffers of Size bytes each. The kernel takes a
// buffer from the head when a receive with IOSQE_BUFFER_SELECT completes and
// names it by bid in the CQE; the owner gives it back with Recycle.
type BufRing struct {
	r     *Ring
	bgid  uint16
	mask  uint32
	Size  int
	Count int

	ringMem []byte
	entries []abi.IoUringBuf
	tail    *uint16
	local   uint16 // tail not yet published
	mem     []byte
	// pos[bid] is the ring position bid was last added at; a bundle's
	// following buffers are the entries after it.
	pos []uint16
}

// NewBufRing registers buffer group bgid with count buffers of size bytes
// (count a power of two, at most 32768).
func NewBufRing(r *Ring, bgid uint16, count, size int) (b *BufRing, err error) {
	if count <= 0 || count&(count-1) != 0 || count > 1<<15 {
		return nil, fmt.Errorf("create buffer ring: count %d is not a power of two up to 32768", count)
	}
	b = &BufRing{r: r, bgid: bgid, mask: uint32(count - 1), Size: size, Count: count, pos: make([]uint16, count)}
	ringBytes := count * int(unsafe.Sizeof(abi.IoUringBuf{}))
	b.ringMem, err = unix.Mmap(-1, 0, ringBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("map buffer ring: %w", err)
	}
	defer func() {
		if err != nil {
			b.unmap()
		}
	}()
	b.mem, err = unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map buffers: %w", err)
	}
	// Buffers cycle through the whole pool in FIFO order; huge pages keep
	// that walk from costing a TLB miss per packet. Advice only.
	_ = unix.Madvise(b.mem, unix.MADV_HUGEPAGE)
	b.entries = unsafe.Slice((*abi.IoUringBuf)(unsafe.Pointer(&b.ringMem[0])), count)
	b.tail = (*uint16)(unsafe.Pointer(&b.ringMem[abi.IoUringBufRingTailOffset]))
	reg := abi.IoUringBufReg{RingAddr: uint64(uintptr(unsafe.Pointer(&b.ringMem[0]))), RingEntries: uint32(count), Bgid: bgid}
	if _, err = r.Register(abi.IORING_REGISTER_PBUF_RING, unsafe.Pointer(&reg), 1); err != nil {
		return nil, fmt.Errorf("register buffer ring %d: %w", bgid, err)
	}
	for bid := 0; bid < count; bid++ {
		b.Recycle(uint16(bid))
	}
	b.Publish()
	return b, nil
}

// Group is the buffer group id to put in an SQE's buf_group.
func (b *BufRing) Group() uint16 { return b.bgid }

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
	i := uint32(b.local) & b.mask
	e := &b.entries[i]
	e.Addr = uint64(uintptr(unsafe.Pointer(&b.mem[int(bid)*b.Size])))
	e.Len = uint32(b.Size)
	e.Bid = bid
	b.pos[bid] = uint16(i)
	b.local++
}

// Publish makes every recycled buffer visible to the kernel with one release
// store of the tail: one store per batch, not per buffer.
func (b *BufRing) Publish() {
	// The tail is a u16 overlaid on entry 0's resv and Go has no 16-bit
	// atomic store, so store the aligned 32-bit word holding entry 0's bid
	// and the tail. Only this goroutine writes the ring, so entry 0's bid
	// is rewritten unchanged; the sequentially consistent store orders
	// every entry written above before the kernel's acquire load of the
	// tail.
	w := (*uint32)(unsafe.Pointer(&b.ringMem[abi.IoUringBufRingTailOffset-2]))
	atomic.StoreUint32(w, uint32(b.entries[0].Bid)|uint32(b.local)<<16)
}

// BundleBid returns the bid of the i-th buffer of a bundle whose first
// buffer is first: bundles take consecutive ring entries.
func (b *BufRing) BundleBid(first uint16, i int) uint16 {
	return b.entries[(uint32(b.pos[first])+uint32(i))&b.mask].Bid
}

// Close unregisters the group and unmaps its memory.
func (b *BufRing) Close() error {
	reg := abi.IoUringBufReg{Bgid: b.bgid}
	var err error
	if b.r != nil && b.r.fd >= 0 {
		if _, e := b.r.Register(abi.IORING_UNREGISTER_PBUF_RING, unsafe.Pointer(&reg), 1); e != nil {
			err = fmt.Errorf("unregister buffer ring %d: %w", b.bgid, e)
		}
	}
	b.unmap()
	return err
}

func (b *BufRing) unmap() {
	if b.mem != nil {
		unix.Munmap(b.mem)
		b.mem = nil
	}
	if b.ringMem != nil {
		unix.Munmap(b.ringMem)
		b.ringMem = nil
	}
	b.entries = nil
}
