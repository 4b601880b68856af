package abi

import (
	"testing"
	"unsafe"
)

// The zcrx structs against include/uapi/linux/io_uring.h (6.15–6.18, and
// io_uring/zcrx.h from 6.18): sizes and offsets as the kernel lays them out.
func TestZcrxLayout(t *testing.T) {
	var (
		rd  IoUringRegionDesc
		ar  IoUringZcrxAreaReg
		off IoUringZcrxOffsets
		reg IoUringZcrxIfqReg
		rqe IoUringZcrxRqe
		cqe IoUringZcrxCqe
	)
	tests := []layout{
		{"io_uring_region_desc", unsafe.Sizeof(rd), 64, []fieldOffset{
			{"user_addr", unsafe.Offsetof(rd.UserAddr), 0},
			{"size", unsafe.Offsetof(rd.Size), 8},
			{"flags", unsafe.Offsetof(rd.Flags), 16},
			{"id", unsafe.Offsetof(rd.ID), 20},
			{"mmap_offset", unsafe.Offsetof(rd.MmapOffset), 24},
			{"__resv", unsafe.Offsetof(rd.Resv), 32},
		}},
		{"io_uring_zcrx_area_reg", unsafe.Sizeof(ar), 48, []fieldOffset{
			{"addr", unsafe.Offsetof(ar.Addr), 0},
			{"len", unsafe.Offsetof(ar.Len), 8},
			{"rq_area_token", unsafe.Offsetof(ar.RqAreaToken), 16},
			{"flags", unsafe.Offsetof(ar.Flags), 24},
			{"dmabuf_fd", unsafe.Offsetof(ar.DmabufFd), 28},
			{"__resv2", unsafe.Offsetof(ar.Resv2), 32},
		}},
		{"io_uring_zcrx_offsets", unsafe.Sizeof(off), 32, []fieldOffset{
			{"head", unsafe.Offsetof(off.Head), 0},
			{"tail", unsafe.Offsetof(off.Tail), 4},
			{"rqes", unsafe.Offsetof(off.Rqes), 8},
			{"__resv2", unsafe.Offsetof(off.Resv2), 12},
			{"__resv", unsafe.Offsetof(off.Resv), 16},
		}},
		{"io_uring_zcrx_ifq_reg", unsafe.Sizeof(reg), 96, []fieldOffset{
			{"if_idx", unsafe.Offsetof(reg.IfIdx), 0},
			{"if_rxq", unsafe.Offsetof(reg.IfRxq), 4},
			{"rq_entries", unsafe.Offsetof(reg.RqEntries), 8},
			{"flags", unsafe.Offsetof(reg.Flags), 12},
			{"area_ptr", unsafe.Offsetof(reg.AreaPtr), 16},
			{"region_ptr", unsafe.Offsetof(reg.RegionPtr), 24},
			{"offsets", unsafe.Offsetof(reg.Offsets), 32},
			{"zcrx_id", unsafe.Offsetof(reg.ZcrxID), 64},
			{"__resv2", unsafe.Offsetof(reg.Resv2), 68},
			{"__resv", unsafe.Offsetof(reg.Resv), 72},
		}},
		{"io_uring_zcrx_rqe", unsafe.Sizeof(rqe), 16, []fieldOffset{
			{"off", unsafe.Offsetof(rqe.Off), 0},
			{"len", unsafe.Offsetof(rqe.Len), 8},
			{"__pad", unsafe.Offsetof(rqe.Pad), 12},
		}},
		{"io_uring_zcrx_cqe", unsafe.Sizeof(cqe), 16, []fieldOffset{
			{"off", unsafe.Offsetof(cqe.Off), 0},
			{"__pad", unsafe.Offsetof(cqe.Pad), 8},
		}},
	}
	checkLayouts(t, tests)
	// A zcrx CQE is the second half of a 32-byte CQE.
	if got := unsafe.Sizeof(IoUringCqe{}) + unsafe.Sizeof(cqe); got != 32 {
		t.Errorf("a CQE32 is %d bytes, want 32", got)
	}
	if IORING_ZCRX_AREA_MASK != 0xffff_0000_0000_0000 {
		t.Errorf("IORING_ZCRX_AREA_MASK = %#x, want the bits from 48 up", uint64(IORING_ZCRX_AREA_MASK))
	}
}
