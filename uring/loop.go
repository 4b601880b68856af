package uring

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/preempt"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// op says what a completion belongs to; it is the top byte of user_data.
type op uint8

const (
	opStop      op = iota + 1 // poll on the stop eventfd
	opAccept                  // accept (multishot and direct, or one-shot)
	opRecv                    // TCP recv (multishot with buffer select, or one-shot)
	opSend                    // TCP send of n queued buffers
	opSource                  // TCP source send of the pattern
	opClose                   // cancel+close of a connection (errors only)
	opRecvmsg                 // UDP recvmsg (multishot with buffer select, or one-shot)
	opSendmsg                 // UDP sendmsg of one received buffer
	opUDPSource               // UDP source datagram
	opCancel                  // cancel of a paused connection's recv (errors only)
	opSpill                   // TCP send of a connection's spill (see takeBuffers)
	opTick                    // the raw wait's multishot timeout (see rawWait)
)

// user_data layout: op 8 | generation 16 | buffer count-1 4 | bid 16 | slot 20.
// The generation tells a completion of a closed connection from one of the
// connection that reused its slot.
const (
	slotBits  = 20
	maxSlots  = 1 << slotBits
	bidShift  = slotBits
	cntShift  = bidShift + 16
	genShift  = cntShift + 4
	opShift   = genShift + 16
	maxGather = 16 // buffers one gathered send carries (4 bits)
)

func userData(o op, gen uint16, n int, bid uint16, slot uint32) uint64 {
	return uint64(o)<<opShift | uint64(gen)<<genShift | uint64(n-1)<<cntShift | uint64(bid)<<bidShift | uint64(slot)
}

func udOp(ud uint64) op          { return op(ud >> opShift) }
func udGen(ud uint64) uint16     { return uint16(ud >> genShift) }
func udCount(ud uint64) int      { return int(ud>>cntShift&0xf) + 1 }
func udBid(ud uint64) uint16     { return uint16(ud >> bidShift) }
func udSlot(ud uint64) uint32    { return uint32(ud & (maxSlots - 1)) }
func cqeBid(flags uint32) uint16 { return uint16(flags >> abi.IORING_CQE_BUFFER_SHIFT) }

// Counter indexes: a loop counts in plain words and publishes them once per
// iteration, so Counters never costs the data path an atomic add.
const (
	cSyscalls = iota
	cAccepted
	cClosed
	cRxBytes
	cTxBytes
	cRxMsgs
	cTxMsgs
	cDropped
	cErrors
	cZCSends
	cZCCopied
	cSQWakeups
	cCQOverflow
	cSendBundles
	cRecvBundleBufs
	cMinWaits
	cSQSharedWaits
	cSpilledBytes
	cTicks         // completions of the raw wait's tick
	cRawWaitOff    // loops whose kernel refused the tick, so they wait through the runtime
	cRecvNoBufs    // receives that ended because the buffer ring ran dry (ENOBUFS)
	cStarvedRearms // receives re-armed once buffers came back (rearmStarved)
	cRawWaits      // waits for completions made raw (rawWait, sqpollRawWait)
	cRuntimeWaits  // waits for completions made through the runtime (runtimeWait)
	nCounters
)

// published is the loop's counters as other goroutines read them, with
// the values last stored: a store is an atomic exchange on x86 (some 20
// cycles), so a batch stores only the few counters that changed, not all
// of them.
type published struct {
	v    [nCounters]atomic.Uint64
	last [nCounters]uint64 // the loop's alone
}

func (p *published) store(c *[nCounters]uint64) {
	for i := range c {
		if c[i] != p.last[i] {
			p.v[i].Store(c[i])
			p.last[i] = c[i]
		}
	}
}

func (p *published) addTo(c *backends.Counters, extra map[string]uint64) {
	c.Syscalls += p.v[cSyscalls].Load()
	c.Accepted += p.v[cAccepted].Load()
	c.Closed += p.v[cClosed].Load()
	c.RxBytes += p.v[cRxBytes].Load()
	c.TxBytes += p.v[cTxBytes].Load()
	c.RxMsgs += p.v[cRxMsgs].Load()
	c.TxMsgs += p.v[cTxMsgs].Load()
	c.Dropped += p.v[cDropped].Load()
	c.Errors += p.v[cErrors].Load()
	for _, e := range []struct {
		name string
		i    int
	}{{"zc_sends", cZCSends}, {"zc_copied", cZCCopied}, {"sq_wakeups", cSQWakeups}, {"cqe_overflow", cCQOverflow},
		{"send_bundles", cSendBundles}, {"recv_bundle_bufs", cRecvBundleBufs}, {"min_wait_waits", cMinWaits},
		{"sq_shared_core_waits", cSQSharedWaits}, {"spilled_bytes", cSpilledBytes},
		{"ticks", cTicks}, {"raw_wait_off", cRawWaitOff}, {"recv_enobufs", cRecvNoBufs}, {"starved_rearms", cStarvedRearms}} {
		if v := p.v[e.i].Load(); v != 0 {
			extra[e.name] += v
		}
	}
	// A zero-copy variant says how many of its sends were copied, zero
	// included: "none" is the finding a ZC figure needs beside it.
	if p.v[cZCSends].Load() != 0 {
		extra["zc_copied"] += 0
	}
	// Whether the waits were raw, both counts, zero included: a record
	// says which kind its window's waits were (raw_wait_off, a loop's
	// refused tick, is counted at setup, before any window).
	extra["raw_waits"] += p.v[cRawWaits].Load()
	extra["runtime_waits"] += p.v[cRuntimeWaits].Load()
}

// loop is one event loop: one ring, one socket, on one locked OS thread.
type loop struct {
	p    *plan
	cpu  int
	sock int // TCP listener or UDP socket; the loop closes it
	efd  int // stop eventfd; the Server closes it after the loop exits
	// fixed: connections are direct descriptors (featFixed); fileFlag is
	// what an SQE on a connection carries for it (IOSQE_FIXED_FILE or 0).
	fixed    bool
	fileFlag uint8
	// tcp and udp are the variant's data paths, chosen once at setup.
	tcp tcpPath
	udp udpPath
	// source sends a TCP source's stream (plain SEND, or SEND_ZC from the
	// registered pattern).
	source tcpSource
	// sendRingMem backs uring-bundle's per-connection send groups.
	sendRingMem []byte
	// recvIoprio is what every TCP recv with buffer select asks for:
	// IORING_RECV_MULTISHOT from uring-multishot up (uring-bundle:
	// IORING_RECVSEND_BUNDLE too), 0 on uring-pbuf's one-shot recv.
	recvIoprio uint16
	// recvArms counts TCP recv SQEs (read by tests once the loop is done:
	// a one-shot rung arms one per receive, a multishot one per connection).
	recvArms uint64
	// recvLen caps what one recv bundle takes (the queue cap's worth of
	// buffers): a bundle is otherwise bounded only by the free buffers, so
	// one completion could take the pool before the cap is seen.
	recvLen uint32
	// queueCap bounds the buffers one connection may hold queued for
	// sending: at the cap its recv is cancelled until the queue drains, so
	// a peer that stops reading holds queueCap buffers, not the pool.
	queueCap int
	// batching says how many completions each wait asks for, and waiter
	// how it waits for them; both chosen at setup (chooseWaits), so that
	// no wait asks which variant or mode it serves.
	batching batching
	waiter   waiter
	// spinNs: how long serveSQPoll spins on the CQ before it waits (see
	// serveSQPoll for why a shared core does not spin).
	spinNs int64
	// batchUs: the plan's, or the default for this loop's core sharing.
	batchUs int64
	// sqShared: an SQPOLL loop whose SQ thread shares its CPU (see
	// serveSQPoll); its waits are counted in sq_shared_core_waits, so a
	// record says which mode it measured.
	sqShared bool
	// tickTs is the tick's period, read by the kernel when it takes the
	// TIMEOUT SQE.
	tickTs abi.KernelTimespec
	load   loadMeter
	// serveLoop is the variant's loop (serve or serveSQPoll) and makeRoom
	// how it gets a full SQ consumed (see sqe); both chosen at setup.
	serveLoop func() error
	makeRoom  func() error
	// regSource: uring-zc's registered copy of the source's bytes (the
	// TCP pattern, or the UDP source slots' buffers), fixed buffer 1.
	regSource []byte

	ring *ring.Ring
	bufs *ring.BufRing // nil without featPbuf

	// Buffer state by bid: a buffer is the kernel's while in the ring and
	// the loop's from its recv completion until refs drops to 0.
	refs     []uint8
	next     []int32  // per-connection send queue links
	off, end []int32  // bytes [off, end) of the buffer still to send
	bids     []uint16 // scratch: the buffers of the completion being taken
	free     int      // buffers in the ring, as far as the loop knows
	recycled bool
	conns    []conn
	// starved: connections whose multishot recv ended with ENOBUFS, first
	// in first out from starvedHead, re-armed as buffers come back.
	starved     []uint32
	starvedHead int
	udpArmed    bool
	// acceptWaiting: accept stopped on a full descriptor table; the next
	// close re-arms it.
	acceptWaiting bool
	sendFlags     uint32 // MSG_NOSIGNAL and friends

	// fatal is an enter error sqe could not get past: serve returns it.
	// scratch is the SQE sqe hands out meanwhile, which nothing submits.
	fatal   error
	scratch abi.IoUringSqe

	count    [nCounters]uint64
	pub      published
	stopping atomic.Bool
	done     bool
	err      error
	ready    chan error
	exited   chan struct{}
}

// startLoop starts a loop on cpu (-1: unpinned) serving sock, and waits
// until its ring is set up and armed. It owns sock from here on, even on
// error.
func startLoop(p *plan, cpu, sock int) (*loop, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(sock)
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	l := newLoop(p, cpu, sock, efd)
	go l.run()
	if err := <-l.ready; err != nil {
		<-l.exited
		unix.Close(efd)
		return nil, err
	}
	return l, nil
}

func newLoop(p *plan, cpu, sock, efd int) *loop {
	l := &loop{p: p, cpu: cpu, sock: sock, efd: efd, fixed: p.v.has(featFixed), sendFlags: unix.MSG_NOSIGNAL,
		ready: make(chan error, 1), exited: make(chan struct{})}
	if l.fixed {
		l.fileFlag = abi.IOSQE_FIXED_FILE
	}
	l.serveLoop, l.makeRoom = l.serve, l.submitForRoom
	if p.v.has(featSQPoll) {
		l.serveLoop, l.makeRoom = l.serveSQPoll, l.waitForRoom
	}
	return l
}

func (l *loop) run() {
	defer close(l.exited)
	// The thread is never unlocked: it carries the loop's CPU affinity, so
	// it must die with the goroutine rather than go back to the scheduler.
	runtime.LockOSThread()
	err := l.setup()
	if err != nil {
		l.teardown()
		l.ready <- err
		return
	}
	l.ready <- nil
	l.err = l.serveLoop()
	l.teardown()
}

// setup pins the thread, then (in that order, for SINGLE_ISSUER) creates
// the ring, registers what the variant uses and arms the first requests.
func (l *loop) setup() error {
	if l.cpu >= 0 {
		var set unix.CPUSet
		set.Set(l.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin loop to CPU %d: %w", l.cpu, err)
		}
	}
	r, err := setupRing(l.p, l.cpu)
	if err != nil {
		return err
	}
	l.ring = r
	r.RawEnter = l.p.rawEnter
	shared := l.p.sqShared(l.cpu)
	l.sqShared = shared
	l.spinNs, l.batchUs = l.p.spinNs, l.p.batchUs
	if l.spinNs < 0 {
		l.spinNs = sqSpinOwnCore
		if shared {
			l.spinNs = 0
		}
	}
	if l.batchUs < 0 {
		l.batchUs = defaultBatchUs
		if shared {
			l.batchUs = sharedBatchUs
		}
	}
	l.chooseWaits(l.p.v.has(featMinWait) && l.p.batch > 1 && l.batchUs > 0 && r.Features()&abi.IORING_FEAT_MIN_TIMEOUT != 0)
	if l.p.v.has(featFixed) {
		if err := r.RegisterRingFd(); err != nil {
			return err
		}
		if l.p.proto == backends.TCP {
			if err := r.RegisterFilesSparse(uint32(maxConnsPerLoop)); err != nil {
				return err
			}
		}
	}
	if l.p.proto == backends.TCP {
		// Accepted sockets inherit TCP_NODELAY from the listener, so no
		// connection needs a setsockopt of its own.
		if err := unix.SetsockoptInt(l.sock, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fmt.Errorf("set TCP_NODELAY: %w", err)
		}
	}
	if l.p.v.has(featPbuf) {
		if err := l.initBuffers(); err != nil {
			return err
		}
	}
	if err := l.choosePaths(r.Params().Flags); err != nil {
		return err
	}
	l.armStop()
	if _, ok := l.waiter.(rawWait); ok {
		l.armTick()
	}
	if l.p.proto == backends.TCP {
		l.tcp.armAccept()
	} else {
		l.udp.arm(math.MaxInt) // the first arm posts every receive
	}
	if _, err := l.ring.Submit(); err != nil {
		return err
	}
	return nil
}

// initBuffers registers the provided-buffer ring and the loop's per-buffer
// state.
func (l *loop) initBuffers() error {
	var err error
	l.bufs, err = ring.NewBufRing(l.ring, 0, l.p.bufCount, l.p.bufSize)
	if err != nil {
		return err
	}
	n := l.p.bufCount
	l.refs = make([]uint8, n)
	l.next = make([]int32, n)
	l.off = make([]int32, n)
	l.end = make([]int32, n)
	l.bids = make([]uint16, n)
	l.free = n
	l.queueCap = min(maxGather, max(1, n/4))
	return nil
}

// choosePaths picks the variant's TCP or UDP data path, once: the hot
// functions then never ask which variant they serve. ringFlags are the
// flags the ring was set up with. A variant that cannot do here what its
// name says fails with a NotSupportedError rather than run another path.
func (l *loop) choosePaths(ringFlags uint32) error {
	v := l.p.v
	if v.has(featZC) {
		if err := l.registerZCBuffers(); err != nil {
			return err
		}
	}
	if l.p.proto == backends.UDP {
		switch {
		case v.has(featBundle):
			return &backends.NotSupportedError{Feature: v.name + " over udp", Reason: v.notServed[backends.UDP]}
		case !v.has(featPbuf):
			l.udp = newBasicUDP(l)
		case !v.has(featMultishot):
			l.udp = newPbufUDP(l)
		case v.has(featZC):
			l.udp = newZCUDP(l)
		default:
			l.udp = newRingUDP(l)
		}
		return nil
	}
	l.source = plainSource{l}
	if !v.has(featPbuf) {
		l.tcp = &basicTCP{l: l}
		return nil
	}
	t := ringTCP{l: l}
	if v.has(featMultishot) {
		t.acceptIoprio = abi.IORING_ACCEPT_MULTISHOT
		l.recvIoprio = abi.IORING_RECV_MULTISHOT
	}
	if l.fixed {
		// Straight into the direct-descriptor table: no fd in the
		// process table, no fdget/fdput per request afterwards.
		t.acceptFileIndex = abi.IORING_FILE_INDEX_ALLOC
	} else {
		t.acceptFlags = unix.SOCK_CLOEXEC
	}
	switch {
	case v.has(featZC):
		l.tcp = &zcTCP{t}
		l.source = zcSource{l}
	case v.has(featBundle):
		if !recvBundlesSafe(ringFlags) {
			return &backends.NotSupportedError{Feature: v.name + ": recv bundles",
				Reason: "the ring lacks DEFER_TASKRUN, so a bundle's buffers could not be read from the ring"}
		}
		l.recvIoprio |= abi.IORING_RECVSEND_BUNDLE
		l.recvLen = uint32(l.queueCap * l.p.bufSize)
		if l.p.service != backends.Echo {
			l.tcp = &gatherTCP{t} // a sink sends nothing
			return nil
		}
		if err := l.mapSendGroups(); err != nil {
			return err
		}
		l.tcp = &bundleTCP{t}
	default:
		l.tcp = &gatherTCP{t}
	}
	return nil
}

// recvBundlesSafe reports whether a ring set up with flags may take recv
// bundles. A bundle's CQE names only its first buffer; the others are the
// ring entries that followed it (BufRing.BundleBid), which the loop reads
// when it reaps the CQE. That is right only while no entry after the
// bundle's has been overwritten by a recycle, which holds when CQEs arrive
// in the order their buffers were taken: every buffer taken after the
// bundle is then still the loop's, so the ring cannot have wrapped onto
// the bundle's entries. A DEFER_TASKRUN ring guarantees that order (every
// receive runs and posts in this thread's enter); with SQPOLL, or task
// work run elsewhere, completions of different requests may post out of
// order while the loop recycles, so bundles are not used there.
func recvBundlesSafe(flags uint32) bool {
	return flags&abi.IORING_SETUP_DEFER_TASKRUN != 0 && flags&abi.IORING_SETUP_SQPOLL == 0
}

// mapSendGroups maps the send groups' pages and checks that this kernel
// takes an incrementally consumed group (IOU_PBUF_RING_INC, 6.12): send
// bundles need it, since a short send must leave the rest of a buffer in
// place. Without it uring-bundle refuses (the probe says so first).
func (l *loop) mapSendGroups() error {
	mem, err := ring.MapAnon(maxConnsPerLoop * sendRingEntries * 16)
	if err != nil {
		return fmt.Errorf("map send groups: %w", err)
	}
	d, err := ring.RegisterDescRing(l.ring, 0xffff, mem[:sendRingEntries*16], sendRingEntries, abi.IOU_PBUF_RING_INC)
	if err == nil {
		err = d.Unregister()
	}
	if err != nil {
		unix.Munmap(mem)
		return &backends.NotSupportedError{Feature: l.p.v.name + ": send bundles (IOU_PBUF_RING_INC)", MinKernel: "6.12", Reason: err.Error()}
	}
	l.sendRingMem = mem
	return nil
}

// registerZCBuffers registers what uring-zc sends from as fixed buffers, so
// that no SEND_ZC pins pages of its own: the provided buffer pool (index
// 0, where echoes are sent from) and the source's bytes (index 1: the TCP
// pattern, or the UDP source slots), copied into mapped memory that stays
// put until the ring is gone.
func (l *loop) registerZCBuffers() error {
	if err := l.bufs.SmallPages(); err != nil {
		return err
	}
	regions := [][]byte{l.bufs.Mem()}
	if l.p.service == backends.Source {
		n := len(l.p.pattern)
		if l.p.proto == backends.UDP {
			n = sourceSlots * l.p.msgSize
		}
		mem, err := ring.MapAnon(n)
		if err != nil {
			return fmt.Errorf("map source buffers: %w", err)
		}
		l.regSource = mem
		if l.p.proto == backends.TCP {
			copy(mem, l.p.pattern)
		}
		regions = append(regions, mem)
	}
	return l.ring.RegisterBuffers(regions...)
}

// maxConnsPerLoop sizes the direct-descriptor table.
const maxConnsPerLoop = 1 << 14

// setupRing creates the variant's ring, dropping optional flags the kernel
// refuses (NO_SQARRAY before 6.6).
func setupRing(p *plan, cpu int) (*ring.Ring, error) {
	// CLAMP: a CQ of 8x a large SQ is over the kernel's CQ limit
	// (IORING_MAX_CQ_ENTRIES); clamped, it is just the largest CQ.
	rp := ring.Params{Entries: p.ringSize, CQEntries: p.ringSize * 8, Flags: p.v.flags | p.v.optional | abi.IORING_SETUP_CLAMP}
	if p.v.has(featSQPoll) {
		switch {
		case p.sqIdleMs >= 0:
			rp.SQThreadIdle = uint32(p.sqIdleMs)
		case p.sqShared(cpu):
			rp.SQThreadIdle = sharedSQIdleMs
		default:
			rp.SQThreadIdle = defaultSQIdleMs
		}
		switch {
		case p.sqCPU >= 0:
			rp.SQThreadCPU = uint32(p.sqCPU)
		case cpu >= 0:
			rp.SQThreadCPU = uint32(cpu)
		default:
			rp.Flags &^= abi.IORING_SETUP_SQ_AFF
		}
	}
	r, err := ring.Setup(rp)
	if errors.Is(err, unix.EINVAL) && p.v.optional != 0 {
		rp.Flags &^= p.v.optional
		r, err = ring.Setup(rp)
	}
	return r, err
}

func (l *loop) teardown() {
	// Closing the ring cancels every request and drops the direct
	// descriptors; only then may the buffers it wrote into be unmapped.
	if l.ring != nil {
		if !l.fixed {
			// uring-basic's sockets are in the process's fd table: submit
			// the closes already queued, then close what is still open.
			l.ring.Submit()
			for fd := range l.conns {
				if l.conns[fd].open {
					unix.Close(fd)
				}
			}
		}
		l.count[cSyscalls] = l.ring.Enters
		l.ring.Close()
	}
	if l.bufs != nil {
		l.bufs.Close()
	}
	if l.sendRingMem != nil {
		unix.Munmap(l.sendRingMem)
	}
	if l.regSource != nil {
		unix.Munmap(l.regSource)
	}
	l.pub.store(&l.count)
	unix.Close(l.sock)
}

// stop asks the loop to return; it does not wait.
func (l *loop) stop() {
	l.stopping.Store(true)
	one := [8]byte{1}
	unix.Write(l.efd, one[:])
}

// join waits for the loop to exit, closes its eventfd and returns the
// error it failed with, if any.
func (l *loop) join() error {
	<-l.exited
	unix.Close(l.efd)
	l.efd = -1
	return l.err
}

// serve is the default loop. Per iteration: reap every CQE, then one
// io_uring_enter that submits what the batch produced and waits for at
// least one completion. Under load one enter serves many packets; the
// DEFER_TASKRUN ring runs the network completions' task work inside that
// same enter, on this thread, instead of interrupting it.
func (l *loop) serve() error {
	for {
		l.reap()
		if l.done {
			return nil
		}
		if l.fatal != nil {
			return l.fatal
		}
		l.afterBatch()
		want, minUs := l.batching.next(l)
		if err := l.waiter.wait(l, want, minUs, 0); err != nil {
			return err
		}
	}
}

// chooseWaits picks, once, how the loop waits and how many completions
// each wait asks for: min-wait batching where batched (the rung has it,
// the kernel has IORING_FEAT_MIN_TIMEOUT and the plan asks for batches),
// else one completion per wait; a raw wait where the plan's waits are raw
// (SQPOLL's bounded one on an SQPOLL ring), else the runtime's.
func (l *loop) chooseWaits(batched bool) {
	l.batching = wakeEach{}
	if batched {
		l.batching = adaptiveBatching{}
	}
	switch {
	case !l.p.rawEnter:
		l.waiter = runtimeWait{}
	case l.p.v.has(featSQPoll):
		l.waiter = sqpollRawWait{}
	default:
		l.waiter = rawWait{}
	}
}

// waiter submits what is queued and waits for want completions (minUs: the
// min-wait, 0 for none), with extra enter flags.
type waiter interface {
	wait(l *loop, want, minUs, flags uint32) error
}

var (
	_ waiter = rawWait{}
	_ waiter = sqpollRawWait{}
	_ waiter = runtimeWait{}
)

// rawWait is the default wait. A raw wait keeps the thread's P: no runtime
// hand-off, no sysmon retake, no futex wake of another M, so every syscall
// the process makes on the data path is the backend's own. It has no
// timeout, because a timeout is a kernel timer armed and cancelled on
// every sleep: at 20000 ops/s that was ~20000 TSC-deadline writes a second
// and 1.17x the C server's cycles per op (see measurements/raw-wait.md).
// The runtime believes the goroutine runs meanwhile and, with async
// preemption off, cannot interrupt it: a stop-the-world or a preemption it
// asks for lands only at a preemption point. The loop's tick (a multishot
// timeout, preempt.TickNs, armed at setup) wakes an idle loop to one
// (preempt.Point), at one completion per tick. Close wakes the loop
// through the stop eventfd's poll.
type rawWait struct{}

func (rawWait) wait(l *loop, want, minUs, flags uint32) error {
	l.count[cRawWaits]++
	// A min-wait with no overall timeout ends when its own timer fires,
	// completions or not; with one, the kernel reuses that timer, so the
	// long bound costs nothing.
	timeout := int64(-1)
	if minUs > 0 {
		timeout = idleWaitNs
	}
	_, err := l.ring.SubmitAndWaitBounded(want, minUs, timeout, flags)
	return l.enterErr(err)
}

// sqpollRawWait is an SQPOLL loop's raw wait: bounded, with no tick (see
// sqRawWaitNs); a loop still idle at the bound yields, then sleeps through
// the runtime.
type sqpollRawWait struct{}

func (sqpollRawWait) wait(l *loop, want, minUs, flags uint32) error {
	l.count[cRawWaits]++
	_, err := l.ring.SubmitAndWaitBounded(want, minUs, sqRawWaitNs, flags)
	if err != nil || l.ring.CQReady() > 0 {
		return l.enterErr(err)
	}
	runtime.Gosched()
	// The raw enter woke the SQ thread.
	return runtimeWait{}.wait(l, 1, 0, flags&^abi.IORING_ENTER_SQ_WAKEUP)
}

// runtimeWait waits through the runtime's syscall path, bounded by
// idleWaitNs: the runtime may hand the thread's P to other goroutines
// meanwhile. It is the wait of a loop whose plan has no P to spare for raw
// waits, or whose kernel refused the tick (onTick).
type runtimeWait struct{}

func (runtimeWait) wait(l *loop, want, minUs, flags uint32) error {
	l.count[cRuntimeWaits]++
	var err error
	if minUs > 0 {
		_, err = l.ring.SubmitAndWaitBounded(want, minUs, idleWaitNs, flags)
	} else {
		_, err = l.ring.SubmitAndSleep(want, idleWaitNs, flags)
	}
	return l.enterErr(err)
}

// armTick arms the raw wait's tick (see rawWait).
func (l *loop) armTick() {
	l.tickTs = abi.KernelTimespec{Sec: preempt.TickNs / 1_000_000_000, Nsec: preempt.TickNs % 1_000_000_000}
	s := l.sqe()
	s.Opcode = abi.IORING_OP_TIMEOUT
	s.Fd = -1
	s.Addr = uint64(uintptr(unsafe.Pointer(&l.tickTs)))
	s.Len = 1
	s.OpFlags = abi.IORING_TIMEOUT_MULTISHOT
	s.UserData = userData(opTick, 0, 1, 0, 0)
}

// onTick handles a tick: its completion ended the wait, and the loop
// offers the runtime a preemption point. A tick that ended re-arms; one
// the kernel refuses (a kernel before 6.4 has no multishot timeout) turns
// raw waits off, since nothing would wake them.
func (l *loop) onTick(res int32, flags uint32) {
	preempt.Point()
	l.count[cTicks]++
	switch {
	case flags&abi.IORING_CQE_F_MORE != 0 || l.done:
	case res == -int32(unix.ETIME) || res == -int32(unix.ECANCELED):
		l.armTick()
	default:
		l.waiter = runtimeWait{}
		l.ring.RawEnter = false
		l.count[cRawWaitOff]++
	}
}

// enterErr passes on an enter error that is more than "reap and go round".
func (l *loop) enterErr(err error) error {
	if err != nil && !retryable(err) {
		return err
	}
	return nil
}

// serveSQPoll is the SQPOLL loop. The kernel's SQ thread picks up SQEs as
// soon as the tail moves, so submitting costs no syscall. How the loop
// waits for completions depends on where the SQ thread runs.
//
// With a CPU of its own (sq_cpu), the loop spins on the CQ tail for up to
// sqSpinOwnCore, as a DPDK poll-mode driver spins on its RX ring, and makes
// no syscall under load; only an idle server sleeps in
// io_uring_enter(GETEVENTS). The core is 100% busy either way.
//
// Sharing the loop's CPU (SQ_AFF on the loop's CPU, as the harness runs one
// server core), spinning is worse than useless: every network completion's
// task work runs in the SQ thread, which cannot run while the loop spins,
// so the two would take turns only at scheduler ticks. So a shared loop
// does not spin (spin_us 0): once the CQ is empty it sleeps in a min-wait
// enter, which hands the CPU to the SQ thread. Each hand-over is then one
// syscall, so the loop batches longer (sharedBatchUs, not the default's
// defaultBatchUs), and the SQ thread idles out after sharedSQIdleMs, so
// that an idle SQ thread sleeps instead of holding the CPU the loop wants.
// The result is fewer syscalls than the default loop, paid in latency
// under light load; the zero needs the SQ thread on its own core (sq_cpu).
func (l *loop) serveSQPoll() error {
	for {
		n := l.reap()
		if l.done {
			return nil
		}
		if l.fatal != nil {
			return l.fatal
		}
		l.afterBatch()
		pending := l.ring.Flush()
		flags := l.ring.SQFlags()
		if pending > 0 && flags&abi.IORING_SQ_NEED_WAKEUP != 0 {
			l.count[cSQWakeups]++
			if _, err := l.ring.Enter(0, 0, abi.IORING_ENTER_SQ_WAKEUP, nil, 0); err != nil && !retryable(err) {
				return err
			}
		}
		if flags&abi.IORING_SQ_CQ_OVERFLOW != 0 {
			if _, err := l.ring.Enter(0, 0, abi.IORING_ENTER_GETEVENTS, nil, 0); err != nil && !retryable(err) {
				return err
			}
			continue
		}
		if n > 0 || l.ring.CQReady() > 0 {
			continue
		}
		if l.spinNs > 0 && l.spin() {
			continue
		}
		if err := l.waitSQPoll(); err != nil {
			return err
		}
	}
}

// waitSQPoll sleeps in io_uring_enter(GETEVENTS) until completions come,
// waking the SQ thread on the way if it sleeps with SQEs pending.
func (l *loop) waitSQPoll() error {
	var ef uint32
	if l.ring.Pending() > 0 && l.ring.SQFlags()&abi.IORING_SQ_NEED_WAKEUP != 0 {
		ef |= abi.IORING_ENTER_SQ_WAKEUP
		l.count[cSQWakeups]++
	}
	if l.sqShared {
		l.count[cSQSharedWaits]++
	}
	want, minUs := l.batching.next(l)
	return l.waiter.wait(l, want, minUs, ef)
}

// batching is how many completions the next wait asks for and how long a
// min-wait holds out for them.
type batching interface {
	next(l *loop) (want, minUs uint32)
}

var (
	_ batching = wakeEach{}
	_ batching = adaptiveBatching{}
)

// wakeEach wakes per completion: the rungs without min-wait batching.
type wakeEach struct{}

func (wakeEach) next(*loop) (want, minUs uint32) { return 1, 0 }

// adaptiveBatching is uring's min-wait batching, adaptive. Min-wait pays only when
// enough requests arrive within batchUs to fill a batch: a min-wait whose
// timer fires with one or two completions costs a timer wake-up more than
// waking per completion, and on a VM (timer programming and its interrupt
// both trap to the hypervisor) that costs more than it saves. So the loop
// counts, over the last loadEpochNs, the sources (TCP connections, UDP
// peers) that sent anything and the requests they sent. It wakes per
// completion with up to fewSources sources (one connection's ping-pong:
// min-wait would only delay each answer) and while fewer than p.batchMin
// requests are expected within batchUs; beyond, it asks for two
// completions per source (a request and its echo's send) up to the plan's
// batch, held out for at most batchUs. The crossover that set batchMin's
// default is measured in measurements/minwait-crossover.md.
type adaptiveBatching struct{}

func (adaptiveBatching) next(l *loop) (want, minUs uint32) {
	active, reqs := l.load.sources()
	if active <= fewSources || reqs*l.batchUs*1000 < int64(l.p.batchMin)*loadEpochNs {
		return 1, 0
	}
	l.count[cMinWaits]++
	return uint32(min(uint64(l.p.batch), 2*uint64(active))), uint32(l.batchUs)
}

// fewSources: up to this many active sources the loop does not min-wait.
const fewSources = 4

// loadEpochNs is the window active sources are counted over.
const loadEpochNs = 1e6

// loadMeter counts active sources and requests (receive completions that
// brought data) per epoch. Per packet it costs an increment and a compare
// (TCP: the connection's epoch; UDP: a slot of a small peer table); per
// wait, a vDSO clock read.
type loadMeter struct {
	epoch       uint32
	start       time.Time
	cur, last   int   // sources
	reqs, lastR int64 // requests
	peers       [64]peerMark
	initialized bool
}

type peerMark struct {
	key   uint64
	epoch uint32
}

// sources is how many sources sent, and how many requests, in this epoch
// or the last, whichever is more; it starts a new epoch when the current
// one is over.
func (m *loadMeter) sources() (active int, reqs int64) {
	now := time.Now()
	if !m.initialized || now.Sub(m.start) >= loadEpochNs {
		m.initialized = true
		m.last, m.cur = m.cur, 0
		m.lastR, m.reqs = m.reqs, 0
		m.start = now
		m.epoch++
	}
	return max(m.cur, m.last), max(m.reqs, m.lastR)
}

// mark counts a request, and its source (whose epoch mark is *seen) once
// per epoch.
func (m *loadMeter) mark(seen *uint32) {
	m.reqs++
	if *seen != m.epoch {
		*seen = m.epoch
		m.cur++
	}
}

// markPeer counts a request, and its UDP peer (address and port packed into
// key) once per epoch; two peers in one slot count once, an undercount that only
// makes batching start later.
func (m *loadMeter) markPeer(key uint64) {
	m.reqs++
	e := &m.peers[(key*0x9e3779b97f4a7c15)>>58]
	if e.key != key || e.epoch != m.epoch {
		if e.epoch != m.epoch {
			m.cur++
		}
		e.key, e.epoch = key, m.epoch
	}
}

// spin polls the CQ tail for up to spinNs and reports whether a completion
// arrived. Reading the clock costs a vDSO call, not a syscall; it is read
// once per 256 polls.
func (l *loop) spin() bool {
	start := time.Now()
	for i := 1; ; i++ {
		if l.ring.CQReady() > 0 {
			return true
		}
		if i&255 == 0 {
			if l.stopping.Load() || time.Since(start).Nanoseconds() > l.spinNs {
				return l.ring.CQReady() > 0
			}
		}
	}
}

// idleWaitNs bounds a wait through the runtime's path; Close does not wait
// for it: it wakes the loop.
//
// sqRawWaitNs bounds an SQPOLL loop's raw wait instead of a tick: a
// timeout's expiry is task work for the thread that submitted it, which on
// an SQPOLL ring is the SQ thread, and running it restarts the SQ thread's
// idle period, so a 10 ms tick kept an idle SQ thread spinning for good
// (60-100% of a core). An SQPOLL loop waits rarely under load, so the
// bound's timer costs little there; an idle one yields and sleeps through
// the runtime.
const (
	sqRawWaitNs = 1_000_000
	idleWaitNs  = 10e9
)

// Defaults that depend on whether an SQPOLL loop shares its CPU with its SQ
// thread (see serveSQPoll). sqSpinOwnCore is long enough to ride out the
// gaps of a steady load without an enter.
const (
	sqSpinOwnCore   = 2e6
	defaultBatchUs  = 50
	sharedBatchUs   = 500
	defaultBatchMin = 4
	defaultSQIdleMs = 100
	sharedSQIdleMs  = 1
)

// sqShared reports whether an SQPOLL loop on cpu (-1: unpinned) shares that
// CPU with its SQ thread: pinned, and sq_cpu unset or the same CPU.
func (p *plan) sqShared(cpu int) bool {
	return p.v.has(featSQPoll) && cpu >= 0 && (p.sqCPU < 0 || p.sqCPU == cpu)
}

// retryable reports whether an enter error only means "reap and go round":
// EBUSY/EAGAIN say the CQ (or its overflow list) is full.
func retryable(err error) bool {
	return errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)
}

// reap handles every completion that is ready and returns how many.
func (l *loop) reap() int {
	head, tail := l.ring.CQHead(), l.ring.CQTail()
	n := int(tail - head)
	for ; head != tail; head++ {
		cqe := l.ring.CQE(head)
		ud, res, flags := cqe.UserData, cqe.Res, cqe.Flags
		switch udOp(ud) {
		case opStop:
			l.done = true
		case opTick:
			l.onTick(res, flags)
		case opAccept:
			l.onAccept(res, flags)
		case opRecv:
			l.tcp.onRecv(ud, res, flags)
		case opSend:
			l.tcp.onSend(ud, res, flags)
		case opSource:
			l.source.onSource(ud, res, flags)
		case opSpill:
			l.onSpill(ud, res)
		case opClose, opCancel:
			// Only failures post (CQE_SKIP_SUCCESS): a close's connection
			// is gone either way, a cancel's recv had ended already.
		case opRecvmsg:
			l.udp.onRecvmsg(ud, res, flags)
		case opSendmsg:
			l.udp.onSendmsg(ud, res, flags)
		case opUDPSource:
			l.udp.onSource(ud, res, flags)
		}
	}
	l.ring.CQAdvance(head)
	return n
}

// afterBatch does once per batch what would be waste per packet: publish
// the recycled buffers with one store, re-arm receives that ran out of
// buffers, publish the counters.
func (l *loop) afterBatch() {
	if l.recycled {
		l.bufs.Publish()
		l.recycled = false
	}
	l.rearmStarved()
	if l.ring.SQFlags()&abi.IORING_SQ_CQ_OVERFLOW != 0 {
		l.count[cCQOverflow]++
	}
	l.count[cSyscalls] = l.ring.Enters
	l.pub.store(&l.count)
}

// rearmStarved re-arms receives that ran out of buffers, oldest first, one
// per free buffer: each re-armed receive takes at least one as soon as its
// peer sends, so arming more than there are buffers would only post more
// ENOBUFS completions.
func (l *loop) rearmStarved() {
	budget := l.free
	if budget > 0 && l.udp != nil && !l.udpArmed {
		n := l.udp.arm(budget)
		l.count[cStarvedRearms] += uint64(n)
		budget -= n
	}
	for budget > 0 && l.starvedHead < len(l.starved) {
		slot := l.starved[l.starvedHead]
		l.starvedHead++
		c := &l.conns[slot]
		if !c.starved {
			continue // closed, and the slot maybe reused, meanwhile
		}
		c.starved = false
		if c.open && !c.eof && !c.paused && !c.recving {
			l.armRecv(slot)
			l.count[cStarvedRearms]++
			budget--
		}
	}
	if l.starvedHead == len(l.starved) {
		l.starved, l.starvedHead = l.starved[:0], 0
	}
}

// starve puts slot on the starved list (its recv ended with ENOBUFS).
func (l *loop) starve(slot uint32) {
	c := &l.conns[slot]
	if !c.starved {
		c.starved = true
		l.starved = append(l.starved, slot)
	}
}

// sqe returns a free SQE. When the SQ is full it submits what is queued
// first: one extra enter, counted, and rare with a 1024-entry ring. With
// SQPOLL the enter waits (IORING_ENTER_SQ_WAIT) for the SQ thread to make
// room, since spinning would starve an SQ thread that shares the CPU.
//
// An enter that fails for good (anything but EBUSY/EAGAIN), or a queue
// still full after maxSQRetries enters, is fatal: the loop records it,
// hands out a scratch SQE that nothing submits, and serve returns the
// error after this reap. Retrying would spin forever.
func (l *loop) sqe() *abi.IoUringSqe {
	for try := 0; l.fatal == nil; try++ {
		if s := l.ring.GetSQE(); s != nil {
			return s
		}
		if try == maxSQRetries {
			l.fatal = fmt.Errorf("submit: the submission queue stays full after %d enters", try)
			break
		}
		if err := l.makeRoom(); err != nil && !retryable(err) {
			l.count[cErrors]++
			l.fatal = fmt.Errorf("submit: %w", err)
		}
	}
	l.scratch = abi.IoUringSqe{}
	return &l.scratch
}

// maxSQRetries bounds the enters sqe makes for room in a full SQ.
const maxSQRetries = 64

// submitForRoom submits what the full SQ holds.
func (l *loop) submitForRoom() error {
	_, err := l.ring.Submit()
	return err
}

// waitForRoom is an SQPOLL loop's way: the SQ thread consumes the SQ, so
// the enter waits for it (IORING_ENTER_SQ_WAIT), waking it if it sleeps.
func (l *loop) waitForRoom() error {
	l.ring.Flush()
	ef := uint32(abi.IORING_ENTER_SQ_WAIT)
	if l.ring.SQFlags()&abi.IORING_SQ_NEED_WAKEUP != 0 {
		ef |= abi.IORING_ENTER_SQ_WAKEUP
		l.count[cSQWakeups]++
	}
	_, err := l.ring.Enter(0, 0, ef, nil, 0)
	return err
}

// recycle gives buffer bid back to the kernel (published in afterBatch).
func (l *loop) recycle(bid uint16) {
	l.bufs.Recycle(bid)
	l.free++
	l.recycled = true
}

// unref drops one reference to bid and recycles it at the last one.
func (l *loop) unref(bid uint16) {
	l.refs[bid]--
	if l.refs[bid] == 0 {
		l.recycle(bid)
	}
}

// sent counts a send's result: bytes and a message, or an error (a
// cancelled send is the loop's own doing at close, not an error).
func (l *loop) sent(res int32) {
	switch {
	case res >= 0:
		l.count[cTxBytes] += uint64(res)
		l.count[cTxMsgs]++
	case res != -int32(unix.ECANCELED):
		l.count[cErrors]++
	}
}

func (l *loop) armStop() {
	s := l.sqe()
	s.Opcode = abi.IORING_OP_POLL_ADD
	s.Fd = int32(l.efd)
	s.OpFlags = unix.POLLIN
	s.UserData = userData(opStop, 0, 1, 0, 0)
}
