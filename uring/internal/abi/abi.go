package abi

// Syscall numbers (x86-64 and arm64 share them for io_uring).
const (
	SYS_IO_URING_SETUP    = 425
	SYS_IO_URING_ENTER    = 426
	SYS_IO_URING_REGISTER = 427
)

// IoUringSqe is struct io_uring_sqe (64 bytes). Unions are flattened to the
// member this suite uses; the comment names the others sharing the bytes.
type IoUringSqe struct {
	Opcode      uint8
	Flags       uint8  // IOSQE_*
	Ioprio      uint16 // also: IORING_RECV_*, IORING_ACCEPT_* flags
	Fd          int32
	Off         uint64 // also: addr2
	Addr        uint64 // also: splice_off_in
	Len         uint32
	OpFlags     uint32 // rw_flags, msg_flags, accept_flags, cancel_flags, ...
	UserData    uint64
	BufIndex    uint16 // also: buf_group
	Personality uint16
	FileIndex   uint32 // also: splice_fd_in, optlen, addr_len+__pad3
	Addr3       uint64
	Pad2        uint64
}

// IoUringCqe is struct io_uring_cqe (16 bytes, no IORING_SETUP_CQE32).
type IoUringCqe struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// IoSqringOffsets is struct io_sqring_offsets.
type IoSqringOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Flags       uint32
	Dropped     uint32
	Array       uint32
	Resv1       uint32
	UserAddr    uint64
}

// IoCqringOffsets is struct io_cqring_offsets.
type IoCqringOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Overflow    uint32
	Cqes        uint32
	Flags       uint32
	Resv1       uint32
	UserAddr    uint64
}

// IoUringParams is struct io_uring_params (120 bytes).
type IoUringParams struct {
	SqEntries    uint32
	CqEntries    uint32
	Flags        uint32
	SqThreadCPU  uint32
	SqThreadIdle uint32
	Features     uint32
	WqFd         uint32
	Resv         [3]uint32
	SqOff        IoSqringOffsets
	CqOff        IoCqringOffsets
}

// IoUringBuf is struct io_uring_buf: one provided-buffer ring entry. The
// ring's tail overlays Resv of entry 0 (struct io_uring_buf_ring).
type IoUringBuf struct {
	Addr uint64
	Len  uint32
	Bid  uint16
	Resv uint16
}

// IoUringBufRingTailOffset is where struct io_uring_buf_ring keeps its tail.
const IoUringBufRingTailOffset = 14

// IoUringBufReg is struct io_uring_buf_reg, the IORING_REGISTER_PBUF_RING
// argument.
type IoUringBufReg struct {
	RingAddr    uint64
	RingEntries uint32
	Bgid        uint16
	Flags       uint16 // IOU_PBUF_RING_*; "pad" before 6.4
	Resv        [3]uint64
}

// IoUringRecvmsgOut is struct io_uring_recvmsg_out: the header a multishot
// recvmsg writes at the start of each provided buffer, followed by the name
// (msg_namelen bytes reserved), the control data (msg_controllen bytes
// reserved) and the payload.
type IoUringRecvmsgOut struct {
	Namelen    uint32
	Controllen uint32
	Payloadlen uint32
	Flags      uint32
}

// IoUringProbeOp is struct io_uring_probe_op.
type IoUringProbeOp struct {
	Op    uint8
	Resv  uint8
	Flags uint16 // IO_URING_OP_SUPPORTED
	Resv2 uint32
}

// IoUringProbe is struct io_uring_probe; Ops is the flexible array, sized
// here for every opcode a byte can name.
type IoUringProbe struct {
	LastOp uint8
	OpsLen uint8
	Resv   uint16
	Resv2  [3]uint32
	Ops    [256]IoUringProbeOp
}

// IoUringProbeHeaderSize is sizeof(struct io_uring_probe) without ops[].
const IoUringProbeHeaderSize = 16

// IoUringRsrcRegister is struct io_uring_rsrc_register, the
// IORING_REGISTER_FILES2 argument.
type IoUringRsrcRegister struct {
	Nr    uint32
	Flags uint32 // IORING_RSRC_REGISTER_SPARSE
	Resv2 uint64
	Data  uint64
	Tags  uint64
}

// IoUringRsrcUpdate is struct io_uring_rsrc_update, the
// IORING_REGISTER_RING_FDS argument.
type IoUringRsrcUpdate struct {
	Offset uint32
	Resv   uint32
	Data   uint64
}

// IoUringGeteventsArg is struct io_uring_getevents_arg, passed with
// IORING_ENTER_EXT_ARG.
type IoUringGeteventsArg struct {
	Sigmask     uint64
	SigmaskSz   uint32
	MinWaitUsec uint32 // "pad" before 6.12
	Ts          uint64
}

// KernelTimespec is struct __kernel_timespec.
type KernelTimespec struct {
	Sec  int64
	Nsec int64
}

// Setup flags (io_uring_params.flags).
const (
	IORING_SETUP_IOPOLL             = 1 << 0
	IORING_SETUP_SQPOLL             = 1 << 1
	IORING_SETUP_SQ_AFF             = 1 << 2
	IORING_SETUP_CQSIZE             = 1 << 3
	IORING_SETUP_CLAMP              = 1 << 4
	IORING_SETUP_ATTACH_WQ          = 1 << 5
	IORING_SETUP_R_DISABLED         = 1 << 6
	IORING_SETUP_SUBMIT_ALL         = 1 << 7  // 5.18
	IORING_SETUP_COOP_TASKRUN       = 1 << 8  // 5.19
	IORING_SETUP_TASKRUN_FLAG       = 1 << 9  // 5.19
	IORING_SETUP_SQE128             = 1 << 10 // 5.19
	IORING_SETUP_CQE32              = 1 << 11 // 5.19
	IORING_SETUP_SINGLE_ISSUER      = 1 << 12 // 6.0
	IORING_SETUP_DEFER_TASKRUN      = 1 << 13 // 6.1
	IORING_SETUP_NO_MMAP            = 1 << 14 // 6.5
	IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15 // 6.5
	IORING_SETUP_NO_SQARRAY         = 1 << 16 // 6.6
	IORING_SETUP_HYBRID_IOPOLL      = 1 << 17 // 6.13
)

// Opcodes (enum io_uring_op).
const (
	IORING_OP_NOP              = 0
	IORING_OP_READV            = 1
	IORING_OP_WRITEV           = 2
	IORING_OP_FSYNC            = 3
	IORING_OP_READ_FIXED       = 4
	IORING_OP_WRITE_FIXED      = 5
	IORING_OP_POLL_ADD         = 6
	IORING_OP_POLL_REMOVE      = 7
	IORING_OP_SYNC_FILE_RANGE  = 8
	IORING_OP_SENDMSG          = 9
	IORING_OP_RECVMSG          = 10
	IORING_OP_TIMEOUT          = 11
	IORING_OP_TIMEOUT_REMOVE   = 12
	IORING_OP_ACCEPT           = 13
	IORING_OP_ASYNC_CANCEL     = 14
	IORING_OP_LINK_TIMEOUT     = 15
	IORING_OP_CONNECT          = 16
	IORING_OP_FALLOCATE        = 17
	IORING_OP_OPENAT           = 18
	IORING_OP_CLOSE            = 19
	IORING_OP_FILES_UPDATE     = 20
	IORING_OP_STATX            = 21
	IORING_OP_READ             = 22
	IORING_OP_WRITE            = 23
	IORING_OP_FADVISE          = 24
	IORING_OP_MADVISE          = 25
	IORING_OP_SEND             = 26
	IORING_OP_RECV             = 27
	IORING_OP_OPENAT2          = 28
	IORING_OP_EPOLL_CTL        = 29
	IORING_OP_SPLICE           = 30
	IORING_OP_PROVIDE_BUFFERS  = 31
	IORING_OP_REMOVE_BUFFERS   = 32
	IORING_OP_TEE              = 33
	IORING_OP_SHUTDOWN         = 34
	IORING_OP_RENAMEAT         = 35
	IORING_OP_UNLINKAT         = 36
	IORING_OP_MKDIRAT          = 37
	IORING_OP_SYMLINKAT        = 38
	IORING_OP_LINKAT           = 39
	IORING_OP_MSG_RING         = 40
	IORING_OP_FSETXATTR        = 41
	IORING_OP_SETXATTR         = 42
	IORING_OP_FGETXATTR        = 43
	IORING_OP_GETXATTR         = 44
	IORING_OP_SOCKET           = 45
	IORING_OP_URING_CMD        = 46
	IORING_OP_SEND_ZC          = 47 // 6.0
	IORING_OP_SENDMSG_ZC       = 48 // 6.1
	IORING_OP_READ_MULTISHOT   = 49 // 6.7
	IORING_OP_WAITID           = 50 // 6.7
	IORING_OP_FUTEX_WAIT       = 51 // 6.7
	IORING_OP_FUTEX_WAKE       = 52 // 6.7
	IORING_OP_FUTEX_WAITV      = 53 // 6.7
	IORING_OP_FIXED_FD_INSTALL = 54 // 6.8
	IORING_OP_FTRUNCATE        = 55 // 6.9
	IORING_OP_BIND             = 56 // 6.11
	IORING_OP_LISTEN           = 57 // 6.11
	IORING_OP_RECV_ZC          = 58 // 6.15
	IORING_OP_EPOLL_WAIT       = 59 // 6.15
	IORING_OP_READV_FIXED      = 60 // 6.15
	IORING_OP_WRITEV_FIXED     = 61 // 6.15
)

// SQE flags (io_uring_sqe.flags).
const (
	IOSQE_FIXED_FILE       = 1 << 0
	IOSQE_IO_DRAIN         = 1 << 1
	IOSQE_IO_LINK          = 1 << 2
	IOSQE_IO_HARDLINK      = 1 << 3
	IOSQE_ASYNC            = 1 << 4
	IOSQE_BUFFER_SELECT    = 1 << 5
	IOSQE_CQE_SKIP_SUCCESS = 1 << 6
)

// Send and receive flags (io_uring_sqe.ioprio for send/recv opcodes).
const (
	IORING_RECVSEND_POLL_FIRST  = 1 << 0
	IORING_RECV_MULTISHOT       = 1 << 1 // 6.0
	IORING_RECVSEND_FIXED_BUF   = 1 << 2
	IORING_SEND_ZC_REPORT_USAGE = 1 << 3 // 6.2
	IORING_RECVSEND_BUNDLE      = 1 << 4 // 6.10
)

// IORING_NOTIF_USAGE_ZC_COPIED is set in a SEND_ZC notification's res when
// the kernel copied the data after all (IORING_SEND_ZC_REPORT_USAGE).
const IORING_NOTIF_USAGE_ZC_COPIED = 1 << 31

// Accept flags (io_uring_sqe.ioprio for IORING_OP_ACCEPT).
const (
	IORING_ACCEPT_MULTISHOT  = 1 << 0 // 5.19
	IORING_ACCEPT_DONTWAIT   = 1 << 1 // 6.10
	IORING_ACCEPT_POLL_FIRST = 1 << 2 // 6.10
)

// Cancel flags (io_uring_sqe.cancel_flags).
const (
	IORING_ASYNC_CANCEL_ALL      = 1 << 0
	IORING_ASYNC_CANCEL_FD       = 1 << 1
	IORING_ASYNC_CANCEL_ANY      = 1 << 2
	IORING_ASYNC_CANCEL_FD_FIXED = 1 << 3
)

// IORING_POLL_ADD_MULTI asks POLL_ADD to stay armed (io_uring_sqe.len).
const IORING_POLL_ADD_MULTI = 1 << 0

// IORING_TIMEOUT_MULTISHOT (io_uring_sqe.timeout_flags) makes a TIMEOUT
// post a CQE (-ETIME, IORING_CQE_F_MORE) every period, io_uring_sqe.off
// times (0: until cancelled); 6.4.
const IORING_TIMEOUT_MULTISHOT = 1 << 6

// IORING_FILE_INDEX_ALLOC in io_uring_sqe.file_index lets the kernel pick a
// free direct-descriptor slot and return it in the CQE's res.
const IORING_FILE_INDEX_ALLOC = ^uint32(0)

// CQE flags (io_uring_cqe.flags).
const (
	IORING_CQE_F_BUFFER        = 1 << 0
	IORING_CQE_F_MORE          = 1 << 1
	IORING_CQE_F_SOCK_NONEMPTY = 1 << 2
	IORING_CQE_F_NOTIF         = 1 << 3
	IORING_CQE_F_BUF_MORE      = 1 << 4 // 6.12
	IORING_CQE_BUFFER_SHIFT    = 16
)

// SQ ring flags (the word at IoSqringOffsets.Flags).
const (
	IORING_SQ_NEED_WAKEUP = 1 << 0
	IORING_SQ_CQ_OVERFLOW = 1 << 1
	IORING_SQ_TASKRUN     = 1 << 2
)

// io_uring_enter flags.
const (
	IORING_ENTER_GETEVENTS       = 1 << 0
	IORING_ENTER_SQ_WAKEUP       = 1 << 1
	IORING_ENTER_SQ_WAIT         = 1 << 2
	IORING_ENTER_EXT_ARG         = 1 << 3
	IORING_ENTER_REGISTERED_RING = 1 << 4 // 5.18
	IORING_ENTER_ABS_TIMER       = 1 << 5 // 6.12
	IORING_ENTER_EXT_ARG_REG     = 1 << 6 // 6.13
	IORING_ENTER_NO_IOWAIT       = 1 << 7 // 6.15
)

// Feature bits (io_uring_params.features).
const (
	IORING_FEAT_SINGLE_MMAP     = 1 << 0
	IORING_FEAT_NODROP          = 1 << 1
	IORING_FEAT_SUBMIT_STABLE   = 1 << 2
	IORING_FEAT_RW_CUR_POS      = 1 << 3
	IORING_FEAT_CUR_PERSONALITY = 1 << 4
	IORING_FEAT_FAST_POLL       = 1 << 5
	IORING_FEAT_POLL_32BITS     = 1 << 6
	IORING_FEAT_SQPOLL_NONFIXED = 1 << 7
	IORING_FEAT_EXT_ARG         = 1 << 8
	IORING_FEAT_NATIVE_WORKERS  = 1 << 9
	IORING_FEAT_RSRC_TAGS       = 1 << 10
	IORING_FEAT_CQE_SKIP        = 1 << 11
	IORING_FEAT_LINKED_FILE     = 1 << 12
	IORING_FEAT_REG_REG_RING    = 1 << 13 // 6.3
	IORING_FEAT_RECVSEND_BUNDLE = 1 << 14 // 6.10
	IORING_FEAT_MIN_TIMEOUT     = 1 << 15 // 6.12
	IORING_FEAT_RW_ATTR         = 1 << 16 // 6.14
	IORING_FEAT_NO_IOWAIT       = 1 << 17 // 6.15
)

// mmap offsets.
const (
	IORING_OFF_SQ_RING    = 0
	IORING_OFF_CQ_RING    = 0x8000000
	IORING_OFF_SQES       = 0x10000000
	IORING_OFF_PBUF_RING  = 0x80000000
	IORING_OFF_PBUF_SHIFT = 16
)

// io_uring_register opcodes.
const (
	IORING_REGISTER_BUFFERS          = 0
	IORING_UNREGISTER_BUFFERS        = 1
	IORING_REGISTER_FILES            = 2
	IORING_UNREGISTER_FILES          = 3
	IORING_REGISTER_EVENTFD          = 4
	IORING_UNREGISTER_EVENTFD        = 5
	IORING_REGISTER_FILES_UPDATE     = 6
	IORING_REGISTER_EVENTFD_ASYNC    = 7
	IORING_REGISTER_PROBE            = 8
	IORING_REGISTER_PERSONALITY      = 9
	IORING_UNREGISTER_PERSONALITY    = 10
	IORING_REGISTER_RESTRICTIONS     = 11
	IORING_REGISTER_ENABLE_RINGS     = 12
	IORING_REGISTER_FILES2           = 13
	IORING_REGISTER_FILES_UPDATE2    = 14
	IORING_REGISTER_BUFFERS2         = 15
	IORING_REGISTER_BUFFERS_UPDATE   = 16
	IORING_REGISTER_IOWQ_AFF         = 17
	IORING_UNREGISTER_IOWQ_AFF       = 18
	IORING_REGISTER_IOWQ_MAX_WORKERS = 19
	IORING_REGISTER_RING_FDS         = 20
	IORING_UNREGISTER_RING_FDS       = 21
	IORING_REGISTER_PBUF_RING        = 22
	IORING_UNREGISTER_PBUF_RING      = 23
	IORING_REGISTER_SYNC_CANCEL      = 24
	IORING_REGISTER_FILE_ALLOC_RANGE = 25
	IORING_REGISTER_PBUF_STATUS      = 26 // 6.8
	IORING_REGISTER_NAPI             = 27 // 6.9
	IORING_UNREGISTER_NAPI           = 28 // 6.9

	// IORING_REGISTER_USE_REGISTERED_RING makes io_uring_register take a
	// registered ring index in place of the ring fd (6.3).
	IORING_REGISTER_USE_REGISTERED_RING = 1 << 31
)

// Registration flags.
const (
	IORING_RSRC_REGISTER_SPARSE = 1 << 0
	IOU_PBUF_RING_MMAP          = 1 << 0 // 6.4
	IOU_PBUF_RING_INC           = 1 << 1 // 6.12
	IO_URING_OP_SUPPORTED       = 1 << 0
)
