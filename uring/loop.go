package uring

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
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
	nCounters
)

type published [nCounters]atomic.Uint64

func (p *published) store(c *[nCounters]uint64) {
	for i := range c {
		p[i].Store(c[i])
	}
}

func (p *published) addTo(c *backends.Counters, extra map[string]uint64) {
	c.Syscalls += p[cSyscalls].Load()
	c.Accepted += p[cAccepted].Load()
	c.Closed += p[cClosed].Load()
	c.RxBytes += p[cRxBytes].Load()
	c.TxBytes += p[cTxBytes].Load()
	c.RxMsgs += p[cRxMsgs].Load()
	c.TxMsgs += p[cTxMsgs].Load()
	c.Dropped += p[cDropped].Load()
	c.Errors += p[cErrors].Load()
	for _, e := range []struct {
		name string
		i    int
	}{{"zc_sends", cZCSends}, {"zc_copied", cZCCopied}, {"sq_wakeups", cSQWakeups}, {"cqe_overflow", cCQOverflow},
		{"send_bundles", cSendBundles}, {"recv_bundle_bufs", cRecvBundleBufs}} {
		if v := p[e.i].Load(); v != 0 {
			extra[e.name] += v
		}
	}
}

// loop is one event loop: one ring, one socket, on one locked OS thread.
type loop struct {
	p     *plan
	cpu   int
	sock  int // TCP listener or UDP socket; the loop closes it
	efd   int // stop eventfd; the Server closes it after the loop exits
	fixed bool
	// sendBundles: uring-bundle echoes through per-connection send groups
	// (kernel 6.12+: IOU_PBUF_RING_INC); else it gathers with SENDMSG.
	sendBundles bool
	sendRingMem []byte
	// batched: wait with min_wait_usec (the kernel has
	// IORING_FEAT_MIN_TIMEOUT and the plan asks for batches).
	batched bool
	// spinNs: how long serveSQPoll spins on the CQ before it waits (see
	// serveSQPoll for why a shared core does not spin).
	spinNs int64
	// batchUs: the plan's, or the default for this loop's core sharing.
	batchUs int64

	ring *ring.Ring
	bufs *ring.BufRing // nil for uring-basic

	// Buffer state by bid: a buffer is the kernel's while in the ring and
	// the loop's from its recv completion until refs drops to 0.
	refs      []uint8
	next      []int32 // per-connection send queue links
	off, end  []int32 // bytes [off, end) of the buffer still to send
	free      int     // buffers in the ring, as far as the loop knows
	recycled  bool
	conns     []conn
	starved   []uint32 // connections whose multishot recv ended with ENOBUFS
	udpArmed  bool
	udp       *udpState
	sendFlags uint32 // MSG_NOSIGNAL and friends

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
	l := &loop{p: p, cpu: cpu, sock: sock, efd: efd, fixed: !p.v.basic, sendFlags: unix.MSG_NOSIGNAL,
		ready: make(chan error, 1), exited: make(chan struct{})}
	go l.run()
	if err := <-l.ready; err != nil {
		<-l.exited
		unix.Close(efd)
		return nil, err
	}
	return l, nil
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
	if l.p.v.sqpoll {
		l.err = l.serveSQPoll()
	} else {
		l.err = l.serve()
	}
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
	l.batched = l.p.batch > 1 && l.batchUs > 0 && r.Features()&abi.IORING_FEAT_MIN_TIMEOUT != 0
	if err := r.RegisterRingFd(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	if !l.p.v.basic {
		if l.p.proto == backends.TCP {
			if err := r.RegisterFilesSparse(uint32(maxConnsPerLoop)); err != nil {
				return err
			}
			// Accepted sockets inherit TCP_NODELAY from the listener, so
			// direct descriptors need no setsockopt of their own.
			if err := unix.SetsockoptInt(l.sock, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
				return fmt.Errorf("set TCP_NODELAY: %w", err)
			}
		}
		l.bufs, err = ring.NewBufRing(r, 0, l.p.bufCount, l.p.bufSize)
		if err != nil {
			return err
		}
		n := l.p.bufCount
		l.refs = make([]uint8, n)
		l.next = make([]int32, n)
		l.off = make([]int32, n)
		l.end = make([]int32, n)
		l.free = n
		if l.p.v.bundle && l.p.proto == backends.TCP && l.p.service == backends.Echo {
			l.sendBundles = l.trySendBundles()
		}
	} else if l.p.proto == backends.TCP {
		if err := unix.SetsockoptInt(l.sock, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fmt.Errorf("set TCP_NODELAY: %w", err)
		}
	}
	l.armStop()
	if l.p.proto == backends.TCP {
		l.armAccept()
	} else {
		l.udp = newUDPState(l)
		l.udp.arm(l)
	}
	if _, err := l.ring.Submit(); err != nil {
		return err
	}
	return nil
}

// trySendBundles maps the send groups' pages and checks that this kernel
// takes an incrementally consumed group (IOU_PBUF_RING_INC, 6.12).
func (l *loop) trySendBundles() bool {
	mem, err := ring.MapAnon(maxConnsPerLoop * sendRingEntries * 16)
	if err != nil {
		return false
	}
	d, err := ring.RegisterDescRing(l.ring, 0xffff, mem[:sendRingEntries*16], sendRingEntries, abi.IOU_PBUF_RING_INC)
	if err != nil || d.Unregister() != nil {
		unix.Munmap(mem)
		return false
	}
	l.sendRingMem = mem
	return true
}

// maxConnsPerLoop sizes the direct-descriptor table.
const maxConnsPerLoop = 1 << 14

// setupRing creates the variant's ring, dropping optional flags the kernel
// refuses (NO_SQARRAY before 6.6).
func setupRing(p *plan, cpu int) (*ring.Ring, error) {
	rp := ring.Params{Entries: p.ringSize, CQEntries: p.ringSize * 8, Flags: p.v.flags | p.v.optional}
	if p.v.sqpoll {
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
	if l.udp != nil {
		l.udp.free()
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

// wait waits for the loop to exit, closes its eventfd and returns the error
// it failed with, if any.
func (l *loop) wait() error {
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
		l.afterBatch()
		var err error
		switch {
		case l.batched:
			_, err = l.ring.SubmitAndWaitMin(l.batchWant(), uint32(l.batchUs))
		case l.p.rawEnter:
			// The runtime thinks this goroutine is running; bound the wait
			// so a goroutine queued behind it on its P waits 1 ms at most,
			// and give the P away when the wait found nothing.
			_, err = l.ring.SubmitAndWaitTimeout(1, rawWaitNs)
			if err == nil && l.ring.CQReady() == 0 {
				runtime.Gosched()
			}
		default:
			_, err = l.ring.SubmitAndWait(1)
		}
		if err != nil && !retryable(err) {
			return err
		}
	}
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
// so the two took turns only at scheduler ticks. Measured on veth (64-byte
// TCP echo, raw_enter) with a 2 ms spin: 1 conn 160 echoes/s, 16x1 closed
// 2.9k/s, 64x4 at 20k/s held but p99 110-150 ms. So a shared loop does not
// spin (spin_us 0): once the CQ is empty it sleeps in a min-wait enter,
// which hands the CPU to the SQ thread. Each hand-over is then one
// syscall, so the loop batches: batch_us 500 (not the default's 50), with
// the wait capped at two completions per open connection so that one
// connection's echo wakes it at once; and sq_thread_idle 1 ms, so an idle
// SQ thread sleeps instead of holding the CPU the loop wants. Measured the
// same way (noisy machine, default uring in brackets): 1 conn 6.5-8.4k/s
// at 1.06 syscalls/op (6.6-8.6k, 1.06-1.15); 16x1 closed 30-41k/s at 0.13
// (7.6-51k, 0.16-0.33); 16x1 at 5k/s held at 0.45 (1.57), p99 3.8 ms
// (3.2); 64x4 at 20k/s held at 0.14 (0.32-0.40), p99 4-5 ms (1.7-4.3).
// Fewer syscalls than the default, paid in latency under light load; the
// zero needs the SQ thread on its own core (sq_cpu).
func (l *loop) serveSQPoll() error {
	for {
		n := l.reap()
		if l.done {
			return nil
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
		if err := l.waitSQPoll(); err != nil && !retryable(err) {
			return err
		}
	}
}

// waitSQPoll sleeps in io_uring_enter(GETEVENTS) until completions come,
// waking the SQ thread on the way if it sleeps with SQEs pending. With
// min-wait batching a wait holds out for a batch, as the default loop's
// does; on a shared core that is when the SQ thread gets the CPU.
func (l *loop) waitSQPoll() error {
	var ef uint32
	if l.ring.Pending() > 0 && l.ring.SQFlags()&abi.IORING_SQ_NEED_WAKEUP != 0 {
		ef |= abi.IORING_ENTER_SQ_WAKEUP
		l.count[cSQWakeups]++
	}
	var err error
	switch {
	case l.batched:
		_, err = l.ring.SubmitAndWaitBounded(l.batchWant(), uint32(l.batchUs), rawWaitNs, ef)
	case l.p.rawEnter:
		_, err = l.ring.SubmitAndWaitBounded(1, 0, rawWaitNs, ef)
		if err == nil && l.ring.CQReady() == 0 {
			runtime.Gosched()
		}
	default:
		_, err = l.ring.Enter(0, 1, ef|abi.IORING_ENTER_GETEVENTS, nil, 0)
	}
	return err
}

// batchWant is how many completions a min-wait asks for. Waiting for more
// than can come only waits out batchUs: an echo connection brings at most
// two a round (its echo's send and its next request), so one connection's
// loop wakes once per round trip, not once per min-wait. (Measured on veth,
// one TCP connection, closed loop: 8.6k echoes/s with an uncapped batch of
// 16 against epoll's 15k.)
func (l *loop) batchWant() uint32 {
	want := l.p.batch
	if open := 2 * (l.count[cAccepted] - l.count[cClosed]); l.p.proto == backends.TCP && open > 0 && open < uint64(want) {
		want = uint32(open)
	}
	return want
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

// rawWaitNs bounds a raw enter's wait (see plan.rawEnter).
const rawWaitNs = 1e6

// Defaults that depend on whether an SQPOLL loop shares its CPU with its SQ
// thread (see serveSQPoll). sqSpinOwnCore is long enough to ride out the
// gaps of a steady load without an enter.
const (
	sqSpinOwnCore   = 2e6
	defaultBatchUs  = 50
	sharedBatchUs   = 500
	defaultSQIdleMs = 100
	sharedSQIdleMs  = 1
)

// sqShared reports whether an SQPOLL loop on cpu (-1: unpinned) shares that
// CPU with its SQ thread: pinned, and sq_cpu unset or the same CPU.
func (p *plan) sqShared(cpu int) bool {
	return p.v.sqpoll && cpu >= 0 && (p.sqCPU < 0 || p.sqCPU == cpu)
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
		case opAccept:
			l.onAccept(res, flags)
		case opRecv:
			l.onRecv(ud, res, flags)
		case opSend:
			l.onSend(ud, res, flags)
		case opSource:
			l.onSource(ud, res)
		case opClose:
			// Only failures post (CQE_SKIP_SUCCESS); the connection is gone
			// either way.
		case opRecvmsg:
			l.udp.onRecvmsg(l, ud, res, flags)
		case opSendmsg:
			l.udp.onSendmsg(l, ud, res, flags)
		case opUDPSource:
			l.udp.onSource(l, ud, res)
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
	if l.free > 0 {
		for len(l.starved) > 0 && l.free > 0 {
			slot := l.starved[len(l.starved)-1]
			l.starved = l.starved[:len(l.starved)-1]
			c := &l.conns[slot]
			if !c.starved {
				continue // closed, and the slot maybe reused, meanwhile
			}
			c.starved = false
			if c.open && !c.eof {
				l.armRecv(slot)
			}
		}
		if l.udp != nil && !l.udpArmed {
			l.udp.arm(l)
		}
	}
	if l.ring.SQFlags()&abi.IORING_SQ_CQ_OVERFLOW != 0 {
		l.count[cCQOverflow]++
	}
	l.count[cSyscalls] = l.ring.Enters
	l.pub.store(&l.count)
}

// sqe returns a free SQE. When the SQ is full it submits what is queued
// first: one extra enter, counted, and rare with a 1024-entry ring. With
// SQPOLL the enter waits (IORING_ENTER_SQ_WAIT) for the SQ thread to make
// room, since spinning would starve an SQ thread that shares the CPU.
func (l *loop) sqe() *abi.IoUringSqe {
	for {
		if s := l.ring.GetSQE(); s != nil {
			return s
		}
		var err error
		if l.p.v.sqpoll {
			l.ring.Flush()
			ef := uint32(abi.IORING_ENTER_SQ_WAIT)
			if l.ring.SQFlags()&abi.IORING_SQ_NEED_WAKEUP != 0 {
				ef |= abi.IORING_ENTER_SQ_WAKEUP
				l.count[cSQWakeups]++
			}
			_, err = l.ring.Enter(0, 0, ef, nil, 0)
		} else {
			_, err = l.ring.Submit()
		}
		if err != nil && !retryable(err) {
			l.count[cErrors]++
		}
	}
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

// zcCompletion does the zero-copy bookkeeping of a send completion on
// buffer bid and reports whether the CQE was a notification, which ends
// there. A SEND_ZC/SENDMSG_ZC result with F_MORE promises a notification:
// the buffer keeps a reference until it comes, since the kernel may still
// be reading its pages.
func (l *loop) zcCompletion(bid uint16, res int32, flags uint32) bool {
	if flags&abi.IORING_CQE_F_NOTIF != 0 {
		l.count[cZCSends]++
		if uint32(res)&abi.IORING_NOTIF_USAGE_ZC_COPIED != 0 {
			l.count[cZCCopied]++
		}
		l.unref(bid)
		return true
	}
	if flags&abi.IORING_CQE_F_MORE != 0 {
		l.refs[bid]++
	}
	return false
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
