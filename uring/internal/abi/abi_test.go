package abi

import (
	"testing"
	"time"
	"unsafe"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The runtime opens its netpoll epoll and eventfd at the first timer; start
// one before testenv.Main takes its fd snapshot so they are not counted as
// leaks (testenv itself sleeps between its checks).
func init() { time.Sleep(time.Microsecond) }

// layout is one struct's size and field offsets as the kernel's uapi header
// lays them out (x86-64 / arm64, natural alignment).
type layout struct {
	name    string
	size    uintptr
	want    uintptr
	offsets []fieldOffset
}

type fieldOffset struct {
	field    string
	got      uintptr
	expected uintptr
}

func TestLayout(t *testing.T) {
	var (
		sqe   IoUringSqe
		cqe   IoUringCqe
		p     IoUringParams
		sqo   IoSqringOffsets
		cqo   IoCqringOffsets
		buf   IoUringBuf
		reg   IoUringBufReg
		rmo   IoUringRecvmsgOut
		probe IoUringProbe
		pop   IoUringProbeOp
		rr    IoUringRsrcRegister
		ru    IoUringRsrcUpdate
		ga    IoUringGeteventsArg
	)
	tests := []layout{
		{"io_uring_sqe", unsafe.Sizeof(sqe), 64, []fieldOffset{
			{"opcode", unsafe.Offsetof(sqe.Opcode), 0},
			{"flags", unsafe.Offsetof(sqe.Flags), 1},
			{"ioprio", unsafe.Offsetof(sqe.Ioprio), 2},
			{"fd", unsafe.Offsetof(sqe.Fd), 4},
			{"off", unsafe.Offsetof(sqe.Off), 8},
			{"addr", unsafe.Offsetof(sqe.Addr), 16},
			{"len", unsafe.Offsetof(sqe.Len), 24},
			{"op_flags", unsafe.Offsetof(sqe.OpFlags), 28},
			{"user_data", unsafe.Offsetof(sqe.UserData), 32},
			{"buf_index", unsafe.Offsetof(sqe.BufIndex), 40},
			{"personality", unsafe.Offsetof(sqe.Personality), 42},
			{"file_index", unsafe.Offsetof(sqe.FileIndex), 44},
			{"addr3", unsafe.Offsetof(sqe.Addr3), 48},
			{"__pad2", unsafe.Offsetof(sqe.Pad2), 56},
		}},
		{"io_uring_cqe", unsafe.Sizeof(cqe), 16, []fieldOffset{
			{"user_data", unsafe.Offsetof(cqe.UserData), 0},
			{"res", unsafe.Offsetof(cqe.Res), 8},
			{"flags", unsafe.Offsetof(cqe.Flags), 12},
		}},
		{"io_uring_params", unsafe.Sizeof(p), 120, []fieldOffset{
			{"sq_entries", unsafe.Offsetof(p.SqEntries), 0},
			{"cq_entries", unsafe.Offsetof(p.CqEntries), 4},
			{"flags", unsafe.Offsetof(p.Flags), 8},
			{"sq_thread_cpu", unsafe.Offsetof(p.SqThreadCPU), 12},
			{"sq_thread_idle", unsafe.Offsetof(p.SqThreadIdle), 16},
			{"features", unsafe.Offsetof(p.Features), 20},
			{"wq_fd", unsafe.Offsetof(p.WqFd), 24},
			{"resv", unsafe.Offsetof(p.Resv), 28},
			{"sq_off", unsafe.Offsetof(p.SqOff), 40},
			{"cq_off", unsafe.Offsetof(p.CqOff), 80},
		}},
		{"io_sqring_offsets", unsafe.Sizeof(sqo), 40, []fieldOffset{
			{"head", unsafe.Offsetof(sqo.Head), 0},
			{"tail", unsafe.Offsetof(sqo.Tail), 4},
			{"ring_mask", unsafe.Offsetof(sqo.RingMask), 8},
			{"ring_entries", unsafe.Offsetof(sqo.RingEntries), 12},
			{"flags", unsafe.Offsetof(sqo.Flags), 16},
			{"dropped", unsafe.Offsetof(sqo.Dropped), 20},
			{"array", unsafe.Offsetof(sqo.Array), 24},
			{"resv1", unsafe.Offsetof(sqo.Resv1), 28},
			{"user_addr", unsafe.Offsetof(sqo.UserAddr), 32},
		}},
		{"io_cqring_offsets", unsafe.Sizeof(cqo), 40, []fieldOffset{
			{"head", unsafe.Offsetof(cqo.Head), 0},
			{"tail", unsafe.Offsetof(cqo.Tail), 4},
			{"ring_mask", unsafe.Offsetof(cqo.RingMask), 8},
			{"ring_entries", unsafe.Offsetof(cqo.RingEntries), 12},
			{"overflow", unsafe.Offsetof(cqo.Overflow), 16},
			{"cqes", unsafe.Offsetof(cqo.Cqes), 20},
			{"flags", unsafe.Offsetof(cqo.Flags), 24},
			{"resv1", unsafe.Offsetof(cqo.Resv1), 28},
			{"user_addr", unsafe.Offsetof(cqo.UserAddr), 32},
		}},
		{"io_uring_buf", unsafe.Sizeof(buf), 16, []fieldOffset{
			{"addr", unsafe.Offsetof(buf.Addr), 0},
			{"len", unsafe.Offsetof(buf.Len), 8},
			{"bid", unsafe.Offsetof(buf.Bid), 12},
			{"resv (ring tail)", unsafe.Offsetof(buf.Resv), IoUringBufRingTailOffset},
		}},
		{"io_uring_buf_reg", unsafe.Sizeof(reg), 40, []fieldOffset{
			{"ring_addr", unsafe.Offsetof(reg.RingAddr), 0},
			{"ring_entries", unsafe.Offsetof(reg.RingEntries), 8},
			{"bgid", unsafe.Offsetof(reg.Bgid), 12},
			{"flags", unsafe.Offsetof(reg.Flags), 14},
			{"resv", unsafe.Offsetof(reg.Resv), 16},
		}},
		{"io_uring_recvmsg_out", unsafe.Sizeof(rmo), 16, []fieldOffset{
			{"namelen", unsafe.Offsetof(rmo.Namelen), 0},
			{"controllen", unsafe.Offsetof(rmo.Controllen), 4},
			{"payloadlen", unsafe.Offsetof(rmo.Payloadlen), 8},
			{"flags", unsafe.Offsetof(rmo.Flags), 12},
		}},
		{"io_uring_probe (header + 256 ops)", unsafe.Sizeof(probe), IoUringProbeHeaderSize + 256*8, []fieldOffset{
			{"last_op", unsafe.Offsetof(probe.LastOp), 0},
			{"ops_len", unsafe.Offsetof(probe.OpsLen), 1},
			{"resv", unsafe.Offsetof(probe.Resv), 2},
			{"resv2", unsafe.Offsetof(probe.Resv2), 4},
			{"ops", unsafe.Offsetof(probe.Ops), IoUringProbeHeaderSize},
		}},
		{"io_uring_probe_op", unsafe.Sizeof(pop), 8, []fieldOffset{
			{"op", unsafe.Offsetof(pop.Op), 0},
			{"resv", unsafe.Offsetof(pop.Resv), 1},
			{"flags", unsafe.Offsetof(pop.Flags), 2},
			{"resv2", unsafe.Offsetof(pop.Resv2), 4},
		}},
		{"io_uring_rsrc_register", unsafe.Sizeof(rr), 32, []fieldOffset{
			{"nr", unsafe.Offsetof(rr.Nr), 0},
			{"flags", unsafe.Offsetof(rr.Flags), 4},
			{"resv2", unsafe.Offsetof(rr.Resv2), 8},
			{"data", unsafe.Offsetof(rr.Data), 16},
			{"tags", unsafe.Offsetof(rr.Tags), 24},
		}},
		{"io_uring_rsrc_update", unsafe.Sizeof(ru), 16, []fieldOffset{
			{"offset", unsafe.Offsetof(ru.Offset), 0},
			{"resv", unsafe.Offsetof(ru.Resv), 4},
			{"data", unsafe.Offsetof(ru.Data), 8},
		}},
		{"io_uring_getevents_arg", unsafe.Sizeof(ga), 24, []fieldOffset{
			{"sigmask", unsafe.Offsetof(ga.Sigmask), 0},
			{"sigmask_sz", unsafe.Offsetof(ga.SigmaskSz), 8},
			{"min_wait_usec", unsafe.Offsetof(ga.MinWaitUsec), 12},
			{"ts", unsafe.Offsetof(ga.Ts), 16},
		}},
	}
	checkLayouts(t, tests)
}

// TestFlagBits catches a typo that gives two flags of one family the same
// bit.
func TestFlagBits(t *testing.T) {
	families := map[string][]uint32{
		"IORING_SETUP_*": {IORING_SETUP_IOPOLL, IORING_SETUP_SQPOLL, IORING_SETUP_SQ_AFF, IORING_SETUP_CQSIZE,
			IORING_SETUP_CLAMP, IORING_SETUP_ATTACH_WQ, IORING_SETUP_R_DISABLED, IORING_SETUP_SUBMIT_ALL,
			IORING_SETUP_COOP_TASKRUN, IORING_SETUP_TASKRUN_FLAG, IORING_SETUP_SQE128, IORING_SETUP_CQE32,
			IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_NO_MMAP,
			IORING_SETUP_REGISTERED_FD_ONLY, IORING_SETUP_NO_SQARRAY, IORING_SETUP_HYBRID_IOPOLL},
		"IORING_FEAT_*": {IORING_FEAT_SINGLE_MMAP, IORING_FEAT_NODROP, IORING_FEAT_SUBMIT_STABLE,
			IORING_FEAT_RW_CUR_POS, IORING_FEAT_CUR_PERSONALITY, IORING_FEAT_FAST_POLL, IORING_FEAT_POLL_32BITS,
			IORING_FEAT_SQPOLL_NONFIXED, IORING_FEAT_EXT_ARG, IORING_FEAT_NATIVE_WORKERS, IORING_FEAT_RSRC_TAGS,
			IORING_FEAT_CQE_SKIP, IORING_FEAT_LINKED_FILE, IORING_FEAT_REG_REG_RING, IORING_FEAT_RECVSEND_BUNDLE,
			IORING_FEAT_MIN_TIMEOUT, IORING_FEAT_RW_ATTR, IORING_FEAT_NO_IOWAIT},
		"IORING_ENTER_*": {IORING_ENTER_GETEVENTS, IORING_ENTER_SQ_WAKEUP, IORING_ENTER_SQ_WAIT,
			IORING_ENTER_EXT_ARG, IORING_ENTER_REGISTERED_RING, IORING_ENTER_ABS_TIMER,
			IORING_ENTER_EXT_ARG_REG, IORING_ENTER_NO_IOWAIT},
		"IOSQE_*": {IOSQE_FIXED_FILE, IOSQE_IO_DRAIN, IOSQE_IO_LINK, IOSQE_IO_HARDLINK, IOSQE_ASYNC,
			IOSQE_BUFFER_SELECT, IOSQE_CQE_SKIP_SUCCESS},
		"IORING_CQE_F_*": {IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, IORING_CQE_F_SOCK_NONEMPTY,
			IORING_CQE_F_NOTIF, IORING_CQE_F_BUF_MORE},
		"IORING_RECVSEND_*": {IORING_RECVSEND_POLL_FIRST, IORING_RECV_MULTISHOT, IORING_RECVSEND_FIXED_BUF,
			IORING_SEND_ZC_REPORT_USAGE, IORING_RECVSEND_BUNDLE},
	}
	for name, bits := range families {
		var seen uint32
		for i, b := range bits {
			if b == 0 || b&(b-1) != 0 {
				t.Errorf("%s: entry %d = %#x is not a single bit", name, i, b)
			}
			if seen&b != 0 {
				t.Errorf("%s: entry %d = %#x repeats a bit", name, i, b)
			}
			seen |= b
		}
	}
}

// checkLayouts compares each struct's size and field offsets with the
// kernel's.
func checkLayouts(t *testing.T, tests []layout) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.size != tt.want {
				t.Errorf("sizeof = %d, kernel has %d", tt.size, tt.want)
			}
			for _, f := range tt.offsets {
				if f.got != f.expected {
					t.Errorf("offsetof(%s) = %d, kernel has %d", f.field, f.got, f.expected)
				}
			}
		})
	}
}
