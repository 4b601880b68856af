package abi

// io_uring zero-copy receive (zcrx), Linux 6.15: the structs and constants
// of include/uapi/linux/io_uring.h (from 6.18 also
// include/uapi/linux/io_uring/zcrx.h) and of
// Documentation/networking/iou-zcrx.rst, which Debian 12's 6.1 headers lack.

// IORING_REGISTER_ZCRX_IFQ binds a NIC's hardware rx queue to a ring: its
// page pool then takes buffers from a user memory area (6.15).
const IORING_REGISTER_ZCRX_IFQ = 32

// IORING_MEM_REGION_TYPE_USER in io_uring_region_desc.flags: the region is
// memory the caller mapped (user_addr), not memory the kernel allocates.
const IORING_MEM_REGION_TYPE_USER = 1

// IORING_ZCRX_AREA_SHIFT is the bit from which a zcrx offset carries its
// area id; the bits below are the offset inside the area.
const IORING_ZCRX_AREA_SHIFT = 48

// IORING_ZCRX_AREA_MASK keeps the area id bits of a zcrx offset.
const IORING_ZCRX_AREA_MASK = ^(uint64(1)<<IORING_ZCRX_AREA_SHIFT - 1)

// IoUringRegionDesc is struct io_uring_region_desc (64 bytes).
type IoUringRegionDesc struct {
	UserAddr   uint64
	Size       uint64
	Flags      uint32 // IORING_MEM_REGION_TYPE_*
	ID         uint32
	MmapOffset uint64
	Resv       [4]uint64
}

// IoUringZcrxAreaReg is struct io_uring_zcrx_area_reg (48 bytes): the user
// memory the NIC writes payloads into. The kernel writes RqAreaToken back.
type IoUringZcrxAreaReg struct {
	Addr        uint64
	Len         uint64
	RqAreaToken uint64
	Flags       uint32 // IORING_ZCRX_AREA_DMABUF
	DmabufFd    uint32 // "__resv1" in 6.15
	Resv2       [2]uint64
}

// IoUringZcrxOffsets is struct io_uring_zcrx_offsets (32 bytes): where the
// refill ring's head, tail and entries lie in its region.
type IoUringZcrxOffsets struct {
	Head  uint32
	Tail  uint32
	Rqes  uint32
	Resv2 uint32
	Resv  [2]uint64
}

// IoUringZcrxIfqReg is struct io_uring_zcrx_ifq_reg (96 bytes), the
// IORING_REGISTER_ZCRX_IFQ argument. The kernel writes back Offsets and
// ZcrxID (6.16; zero on 6.15, which has one ifq per ring).
type IoUringZcrxIfqReg struct {
	IfIdx     uint32
	IfRxq     uint32
	RqEntries uint32
	Flags     uint32
	AreaPtr   uint64 // *IoUringZcrxAreaReg
	RegionPtr uint64 // *IoUringRegionDesc
	Offsets   IoUringZcrxOffsets
	ZcrxID    uint32
	Resv2     uint32 // rx_buf_len in later kernels: 0 asks for the default
	Resv      [3]uint64
}

// IoUringZcrxRqe is struct io_uring_zcrx_rqe (16 bytes): one refill ring
// entry, a received buffer handed back to the kernel.
type IoUringZcrxRqe struct {
	Off uint64 // offset in the area | the area's rq_area_token
	Len uint32
	Pad uint32
}

// IoUringZcrxCqe is struct io_uring_zcrx_cqe (16 bytes): the second half of
// a RECV_ZC completion on an IORING_SETUP_CQE32 ring.
type IoUringZcrxCqe struct {
	Off uint64 // area id << IORING_ZCRX_AREA_SHIFT | offset in the area
	Pad uint64
}
