package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/uring/internal/abi"
)

// Params is what a ring is set up with.
type Params struct {
	Entries   uint32 // SQ entries (a power of two; the kernel rounds up)
	CQEntries uint32 // 0: the kernel's default, twice Entries
	Flags     uint32 // IORING_SETUP_*
	// SQThreadCPU and SQThreadIdle (milliseconds) apply with
	// IORING_SETUP_SQPOLL (and SQ_AFF for the CPU).
	SQThreadCPU  uint32
	SQThreadIdle uint32
}

// Ring is one io_uring instance and its mappings.
type Ring struct {
	fd int
	// enterFd is what io_uring_enter takes: the fd, or the registered ring
	// index once RegisterRingFd succeeded (then enterFlags carries
	// IORING_ENTER_REGISTERED_RING, which skips the fdget/fdput per enter).
	enterFd    int
	enterFlags uint32
	params     abi.IoUringParams

	sqRing []byte // also holds the CQ ring with IORING_FEAT_SINGLE_MMAP
	cqRing []byte // nil with IORING_FEAT_SINGLE_MMAP
	sqeMem []byte

	sqHead  *uint32
	sqTail  *uint32
	sqFlags *uint32
	sqMask  uint32
	sqSize  uint32
	sqes    []abi.IoUringSqe
	// sqeTail is the local SQ tail: SQEs handed out by GetSQE but not yet
	// published. flushed is the tail last published.
	sqeTail uint32
	flushed uint32

	cqHead     *uint32
	cqTail     *uint32
	cqOverflow *uint32
	cqMask     uint32
	cqes       []abi.IoUringCqe

	// waitArg is the bounded waits' EXT_ARG, kept here so the call does not
	// allocate.
	waitArg abi.IoUringGeteventsArg
	waitTs  abi.KernelTimespec

	// Enters counts io_uring_enter calls made through this ring.
	Enters uint64

	// RawEnter makes Enter skip the Go runtime's syscall bookkeeping
	// (unix.RawSyscall6). Set it only on a ring driven by a goroutine that
	// owns its locked OS thread: the runtime then never hands the thread's
	// P to another M while the enter waits (no futex wake-ups, no sysmon
	// retake), and a preemption signal ends the wait with EINTR, which
	// Enter treats as "go round again".
	RawEnter bool
}

// Setup creates a ring. On error nothing is left open or mapped.
func Setup(p Params) (r *Ring, err error) {
	params := abi.IoUringParams{
		Flags:        p.Flags,
		SqThreadCPU:  p.SQThreadCPU,
		SqThreadIdle: p.SQThreadIdle,
	}
	if p.CQEntries != 0 {
		params.Flags |= abi.IORING_SETUP_CQSIZE
		params.CqEntries = p.CQEntries
	}
	fd, _, errno := unix.Syscall(abi.SYS_IO_URING_SETUP, uintptr(p.Entries), uintptr(unsafe.Pointer(&params)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("setup io_uring (flags %#x): %w", p.Flags, errno)
	}
	r = &Ring{fd: int(fd), enterFd: int(fd), params: params}
	defer func() {
		if err != nil {
			r.Close()
			r = nil
		}
	}()
	if err := r.mapRings(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Ring) mapRings() error {
	p := &r.params
	sqLen := int(p.SqOff.Array) + int(p.SqEntries)*4
	if p.Flags&abi.IORING_SETUP_NO_SQARRAY != 0 {
		sqLen = int(p.SqOff.Flags) + 4
	}
	cqLen := int(p.CqOff.Cqes) + int(p.CqEntries)*int(unsafe.Sizeof(abi.IoUringCqe{}))<<cqeShift(p.Flags)
	single := p.Features&abi.IORING_FEAT_SINGLE_MMAP != 0
	if single {
		sqLen = max(sqLen, cqLen)
	}
	var err error
	r.sqRing, err = unix.Mmap(r.fd, abi.IORING_OFF_SQ_RING, sqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("map sq ring: %w", err)
	}
	cq := r.sqRing
	if !single {
		r.cqRing, err = unix.Mmap(r.fd, abi.IORING_OFF_CQ_RING, cqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("map cq ring: %w", err)
		}
		cq = r.cqRing
	}
	sqeSize := int(unsafe.Sizeof(abi.IoUringSqe{}))
	r.sqeMem, err = unix.Mmap(r.fd, abi.IORING_OFF_SQES, int(p.SqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("map sqes: %w", err)
	}

	r.sqHead = word(r.sqRing, p.SqOff.Head)
	r.sqTail = word(r.sqRing, p.SqOff.Tail)
	r.sqFlags = word(r.sqRing, p.SqOff.Flags)
	r.sqMask = *word(r.sqRing, p.SqOff.RingMask)
	r.sqSize = *word(r.sqRing, p.SqOff.RingEntries)
	r.sqes = unsafe.Slice((*abi.IoUringSqe)(unsafe.Pointer(&r.sqeMem[0])), r.sqSize)
	if p.Flags&abi.IORING_SETUP_NO_SQARRAY == 0 {
		// An identity index array, written once: SQE i is always slot i, so
		// the hot path never touches the array again.
		array := unsafe.Slice(word(r.sqRing, p.SqOff.Array), r.sqSize)
		for i := range array {
			array[i] = uint32(i)
		}
	}
	r.sqeTail = atomic.LoadUint32(r.sqTail)
	r.flushed = r.sqeTail

	r.cqHead = word(cq, p.CqOff.Head)
	r.cqTail = word(cq, p.CqOff.Tail)
	r.cqOverflow = word(cq, p.CqOff.Overflow)
	r.cqMask = *word(cq, p.CqOff.RingMask)
	cqSize := *word(cq, p.CqOff.RingEntries)
	r.cqes = unsafe.Slice((*abi.IoUringCqe)(unsafe.Pointer(&cq[p.CqOff.Cqes])), cqSize<<cqeShift(p.Flags))
	return nil
}

func word(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

// Fd is the ring's file descriptor.
func (r *Ring) Fd() int { return r.fd }

// Params returns what the kernel reported at setup (sizes, features).
func (r *Ring) Params() abi.IoUringParams { return r.params }

// Features returns the IORING_FEAT_* bits of this kernel.
func (r *Ring) Features() uint32 { return r.params.Features }

// SQEntries and CQEntries are the ring sizes the kernel chose.
func (r *Ring) SQEntries() uint32 { return r.sqSize }
func (r *Ring) CQEntries() uint32 { return uint32(len(r.cqes)) }

// GetSQE returns the next free SQE, zeroed, or nil when the SQ is full (the
// caller submits and tries again).
func (r *Ring) GetSQE() *abi.IoUringSqe {
	// The kernel (or the SQ thread) moves the head; an acquire load sees
	// the slots it has consumed.
	head := atomic.LoadUint32(r.sqHead)
	if r.sqeTail-head >= r.sqSize {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	r.sqeTail++
	*sqe = abi.IoUringSqe{}
	return sqe
}

// SQSpace is how many SQEs GetSQE can still hand out.
func (r *Ring) SQSpace() uint32 { return r.sqSize - (r.sqeTail - atomic.LoadUint32(r.sqHead)) }

// Flush publishes the SQEs taken since the last Flush and returns how many
// published SQEs the kernel has not consumed yet (what to pass to enter).
func (r *Ring) Flush() uint32 {
	if r.sqeTail != r.flushed {
		// Release store: the SQE contents written above become visible
		// before the kernel can see the new tail. Go's atomic store is
		// sequentially consistent, so it is also the full barrier an
		// SQPOLL user needs between this store and reading
		// IORING_SQ_NEED_WAKEUP.
		atomic.StoreUint32(r.sqTail, r.sqeTail)
		r.flushed = r.sqeTail
	}
	return r.flushed - atomic.LoadUint32(r.sqHead)
}

// Pending is how many SQEs were taken but not yet submitted to the kernel
// (flushed or not).
func (r *Ring) Pending() uint32 { return r.sqeTail - atomic.LoadUint32(r.sqHead) }

// SQFlags reads the SQ ring's flags word (IORING_SQ_NEED_WAKEUP,
// IORING_SQ_CQ_OVERFLOW, IORING_SQ_TASKRUN).
func (r *Ring) SQFlags() uint32 { return atomic.LoadUint32(r.sqFlags) }

// CQHead is the local CQ head; CQTail loads the kernel's tail with acquire
// semantics, so the CQEs before it are fully written.
func (r *Ring) CQHead() uint32 { return atomic.LoadUint32(r.cqHead) }
func (r *Ring) CQTail() uint32 { return atomic.LoadUint32(r.cqTail) }

// CQE returns the completion at position pos (between CQHead and CQTail).
func (r *Ring) CQE(pos uint32) *abi.IoUringCqe { return &r.cqes[pos&r.cqMask] }

// CQAdvance hands the completions before head back to the kernel. The
// release store orders the caller's reads of those CQEs before the kernel
// may overwrite them.
func (r *Ring) CQAdvance(head uint32) { atomic.StoreUint32(r.cqHead, head) }

// CQReady is how many completions are waiting.
func (r *Ring) CQReady() uint32 { return r.CQTail() - r.CQHead() }

// CQOverflow is the kernel's count of completions it could not post (only
// non-zero on kernels without IORING_FEAT_NODROP or when memory ran out).
func (r *Ring) CQOverflow() uint32 { return atomic.LoadUint32(r.cqOverflow) }

// Enter calls io_uring_enter once. EINTR is not an error: it returns 0
// submitted and the caller goes round again.
func (r *Ring) Enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (int, error) {
	n, errno := r.enter(toSubmit, minComplete, flags, arg, argSize)
	if errno != 0 {
		return 0, fmt.Errorf("enter io_uring: %w", errno)
	}
	return n, nil
}

// enter is Enter without the error wrapping, which allocates: a bounded
// wait's timeout (ETIME) is routine on the data path.
func (r *Ring) enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (int, unix.Errno) {
	return r.enterVia(r.RawEnter, toSubmit, minComplete, flags, arg, argSize)
}

func (r *Ring) enterVia(raw bool, toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (int, unix.Errno) {
	r.Enters++
	call := unix.Syscall6
	if raw {
		call = unix.RawSyscall6
	}
	n, _, errno := call(abi.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit), uintptr(minComplete),
		uintptr(flags|r.enterFlags), uintptr(arg), argSize)
	switch errno {
	case 0:
		return int(n), 0
	case unix.EINTR:
		return 0, 0
	}
	return 0, errno
}

// Submit flushes and submits without waiting.
func (r *Ring) Submit() (int, error) {
	n := r.Flush()
	if n == 0 && r.params.Flags&abi.IORING_SETUP_SQPOLL != 0 {
		return 0, nil
	}
	return r.Enter(n, 0, 0, nil, 0)
}

// SubmitAndWait flushes, submits and waits for at least want completions in
// one enter.
func (r *Ring) SubmitAndWait(want uint32) (int, error) {
	return r.Enter(r.Flush(), want, abi.IORING_ENTER_GETEVENTS, nil, 0)
}

// SubmitAndWaitTimeout is SubmitAndWait bounded by timeout nanoseconds
// (IORING_ENTER_EXT_ARG); on timeout it returns without error.
func (r *Ring) SubmitAndWaitTimeout(want uint32, timeout int64) (int, error) {
	return r.SubmitAndWaitBounded(want, 0, timeout, 0)
}

// SubmitAndWaitBounded flushes, submits and waits for want completions
// (minWaitUs: at most that long once one is there, and with no timeout the
// wait ends when the min-wait ends, completions or not; io_uring_getevents_arg
// .min_wait_usec, IORING_FEAT_MIN_TIMEOUT, 6.12; 0: no min-wait) for at
// most timeout nanoseconds (< 0: no timeout, so the kernel arms no timer
// for the wait), with extra enter flags (an SQPOLL ring's
// IORING_ENTER_SQ_WAKEUP). A timeout is not an error. The enter is raw
// when RawEnter is set.
func (r *Ring) SubmitAndWaitBounded(want, minWaitUs uint32, timeout int64, flags uint32) (int, error) {
	return r.waitVia(r.RawEnter, want, minWaitUs, timeout, flags)
}

// SubmitAndSleep is SubmitAndWaitBounded through the runtime's syscall
// path whatever RawEnter says: for a wait that may be long, during which
// the runtime must be free to give the thread's P to other goroutines.
func (r *Ring) SubmitAndSleep(want uint32, timeout int64, flags uint32) (int, error) {
	return r.waitVia(false, want, 0, timeout, flags)
}

func (r *Ring) waitVia(raw bool, want, minWaitUs uint32, timeout int64, flags uint32) (int, error) {
	r.waitArg = abi.IoUringGeteventsArg{MinWaitUsec: minWaitUs}
	if timeout >= 0 {
		r.waitTs = abi.KernelTimespec{Sec: timeout / 1e9, Nsec: timeout % 1e9}
		r.waitArg.Ts = uint64(uintptr(unsafe.Pointer(&r.waitTs)))
	}
	n, errno := r.enterVia(raw, r.Flush(), want, flags|abi.IORING_ENTER_GETEVENTS|abi.IORING_ENTER_EXT_ARG,
		unsafe.Pointer(&r.waitArg), unsafe.Sizeof(r.waitArg))
	if errno == 0 || errno == unix.ETIME {
		return n, nil
	}
	return 0, fmt.Errorf("enter io_uring: %w", errno)
}

// Register calls io_uring_register once (setup-time calls are not counted in
// Enters: they are not on the data path).
func (r *Ring) Register(op uint32, arg unsafe.Pointer, nr uint32) (int, error) {
	n, _, errno := unix.Syscall6(abi.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// RegisterRingFd registers the ring's own fd so every later enter skips the
// fd table lookup (IORING_ENTER_REGISTERED_RING).
func (r *Ring) RegisterRingFd() error {
	up := abi.IoUringRsrcUpdate{Offset: ^uint32(0), Data: uint64(r.fd)}
	if _, err := r.Register(abi.IORING_REGISTER_RING_FDS, unsafe.Pointer(&up), 1); err != nil {
		return fmt.Errorf("register ring fd: %w", err)
	}
	r.enterFd = int(up.Offset)
	r.enterFlags = abi.IORING_ENTER_REGISTERED_RING
	return nil
}

// RegisterBuffers registers regions as fixed buffers 0, 1, ... (the
// kernel pins their pages once), which SQEs then name by buf_index with
// IORING_RECVSEND_FIXED_BUF (sends) instead of pinning per request.
func (r *Ring) RegisterBuffers(regions ...[]byte) error {
	iov := make([]unix.Iovec, len(regions))
	for i, m := range regions {
		if len(m) == 0 {
			return fmt.Errorf("register buffers: region %d is empty", i)
		}
		iov[i].Base = &m[0]
		iov[i].SetLen(len(m))
	}
	if _, err := r.Register(abi.IORING_REGISTER_BUFFERS, unsafe.Pointer(&iov[0]), uint32(len(iov))); err != nil {
		return fmt.Errorf("register buffers: %w", err)
	}
	return nil
}

// RingFdRegistered reports whether enters name the ring by its registered
// index (RegisterRingFd succeeded).
func (r *Ring) RingFdRegistered() bool { return r.enterFlags&abi.IORING_ENTER_REGISTERED_RING != 0 }

// RegisterFilesSparse registers an empty direct-descriptor table of n slots
// that multishot accept can fill (IORING_FILE_INDEX_ALLOC).
func (r *Ring) RegisterFilesSparse(n uint32) error {
	reg := abi.IoUringRsrcRegister{Nr: n, Flags: abi.IORING_RSRC_REGISTER_SPARSE}
	if _, err := r.Register(abi.IORING_REGISTER_FILES2, unsafe.Pointer(&reg), uint32(unsafe.Sizeof(reg))); err != nil {
		return fmt.Errorf("register sparse files: %w", err)
	}
	return nil
}

// Probe is the kernel's answer to IORING_REGISTER_PROBE.
type Probe struct{ p abi.IoUringProbe }

// Supports reports whether the kernel knows opcode op.
func (p *Probe) Supports(op uint8) bool {
	return op <= p.p.LastOp && int(op) < int(p.p.OpsLen) && p.p.Ops[op].Flags&abi.IO_URING_OP_SUPPORTED != 0
}

// LastOp is the highest opcode the kernel knows.
func (p *Probe) LastOp() uint8 { return p.p.LastOp }

// RegisterProbe asks the kernel which opcodes it supports.
func (r *Ring) RegisterProbe() (*Probe, error) {
	p := new(Probe)
	if _, err := r.Register(abi.IORING_REGISTER_PROBE, unsafe.Pointer(&p.p), uint32(len(p.p.Ops))); err != nil {
		return nil, fmt.Errorf("register probe: %w", err)
	}
	return p, nil
}

// Close unmaps the rings and closes the ring fd; the kernel then cancels
// whatever is still in flight. It is safe to call twice.
func (r *Ring) Close() error {
	for _, m := range []*[]byte{&r.sqeMem, &r.cqRing, &r.sqRing} {
		if *m != nil {
			unix.Munmap(*m)
			*m = nil
		}
	}
	r.sqes, r.cqes = nil, nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return fmt.Errorf("close io_uring: %w", err)
	}
	return nil
}

// Addr is the address of p as the kernel takes it in an SQE. The caller keeps
// *p reachable (and, for Go memory, off the stack) until the kernel is done
// with it.
func Addr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// SQEs is the submission queue entries' array and SQTailLocal the local
// tail (SQEs handed out so far): what a test reads to see what was queued.
func (r *Ring) SQEs() []abi.IoUringSqe { return r.sqes }
func (r *Ring) SQTailLocal() uint32    { return r.sqeTail }
