package ring

import (
	"unsafe"

	"ringbench/uring/internal/abi"
)

// cqeShift is log2 of a CQE's size in 16-byte io_uring_cqe units: 1 on an
// IORING_SETUP_CQE32 ring, whose CQEs carry 16 more bytes (a zero-copy
// receive's buffer offset), else 0.
func cqeShift(flags uint32) uint {
	if flags&abi.IORING_SETUP_CQE32 != 0 {
		return 1
	}
	return 0
}

// BigCQE returns the completion at position pos of an IORING_SETUP_CQE32
// ring and its second half, which a RECV_ZC completion fills with the
// buffer's offset in the zcrx area. CQE must not be used on such a ring: it
// would index 16-byte entries.
func (r *Ring) BigCQE(pos uint32) (*abi.IoUringCqe, *abi.IoUringZcrxCqe) {
	i := (pos & r.cqMask) << 1
	return &r.cqes[i], (*abi.IoUringZcrxCqe)(unsafe.Pointer(&r.cqes[i+1]))
}
