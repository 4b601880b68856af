package uring

// The uring-zcrx data path: a TCP sink on one loop and one NIC rx queue.
// UNTESTED ON HARDWARE: no machine this was written on has a NIC that
// supports zcrx, so only the refusals (zcrx.go) have run. It follows
// Documentation/networking/iou-zcrx.rst step by step and is kept small so
// that a lab run can check it line by line.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/sockets"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// zcrxServer is a running uring-zcrx sink.
type zcrxServer struct {
	port     int
	counters [nCounters]atomic.Uint64
	refills  atomic.Uint64
	efd      int
	done     chan struct{}
	err      error
	once     sync.Once
}

var _ backends.Server = (*zcrxServer)(nil)

// newZcrxServer binds the interface queue on the loop's thread (the ring
// is SINGLE_ISSUER) and returns once the loop serves, or with the reason
// it cannot.
func newZcrxServer(cfg backends.Config) (backends.Server, error) {
	if err := probeZcrxKernel(); err != nil {
		return nil, err
	}
	if cfg.Proto != backends.TCP || cfg.Service != backends.Sink {
		return nil, &backends.NotSupportedError{Feature: zcrxFeature, Reason: fmt.Sprintf("serves TCP sink only, not %s %s", cfg.Proto, cfg.Service)}
	}
	k, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	opts, err := parseZcrxOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	if len(cfg.CPUs) > 1 {
		return nil, &backends.NotSupportedError{Feature: zcrxFeature + " on several cores",
			Reason: "one loop binds one rx queue; a queue per core is not built"}
	}
	ifname, err := zcrxIface(cfg)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	s := &zcrxServer{efd: efd, done: make(chan struct{})}
	ready := make(chan error, 1)
	go s.run(cfg.LoopCPUs()[0], k.Addr, cfg.Port, ifname, opts, ready)
	if err := <-ready; err != nil {
		<-s.done
		unix.Close(efd)
		return nil, err
	}
	return s, nil
}

// zcrxLoop is the loop's state, owned by its thread.
type zcrxLoop struct {
	s    *zcrxServer
	r    *ring.Ring
	q    *zcrxQueue
	sock int
	open map[int32]bool // accepted sockets
	c    [nCounters]uint64
}

// user_data of the loop's requests: the kind in the top byte, a socket fd
// below.
const (
	zcStop   = 1 << 56
	zcAccept = 2 << 56
	zcRecv   = 3 << 56
	zcKind   = 0xff << 56
)

func (s *zcrxServer) run(cpu int, addr [4]byte, port int, ifname string, o zcrxOptions, ready chan<- error) {
	defer close(s.done)
	// Never unlocked: the thread carries the loop's affinity.
	runtime.LockOSThread()
	l, err := s.setup(cpu, addr, port, ifname, o)
	if err != nil {
		ready <- err
		return
	}
	ready <- nil
	s.err = l.serve()
	l.teardown()
}

func (s *zcrxServer) setup(cpu int, addr [4]byte, port int, ifname string, o zcrxOptions) (_ *zcrxLoop, err error) {
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return nil, fmt.Errorf("pin loop to CPU %d: %w", cpu, err)
		}
	}
	l := &zcrxLoop{s: s, sock: -1, open: map[int32]bool{}}
	defer func() {
		if err != nil {
			l.teardown()
		}
	}()
	// The CQ holds as many CQEs as the refill ring has entries.
	if l.r, err = ring.Setup(ring.Params{Entries: 256, CQEntries: zcrxRefillEntries, Flags: zcrxRingFlags}); err != nil {
		return nil, fmt.Errorf("set up zcrx ring: %w", err)
	}
	rxq := max(o.rxq, 0)
	if l.q, err = bindZcrx(l.r, ifname, rxq, o.areaMB<<20); err != nil {
		return nil, err
	}
	if o.rxq < 0 {
		return nil, &backends.NotSupportedError{Feature: zcrxFeature + " on " + ifname, Reason: fmt.Sprintf(
			"option rxq=N not given: name the rx queue that flow steering sends the stream to (%s accepted queue 0, but RSS spreads every flow over it)", ifname)}
	}
	if l.sock, s.port, err = sockets.Listen(backends.TCP, addr, port, sockets.Options{}); err != nil {
		return nil, err
	}
	l.arm(abi.IORING_OP_POLL_ADD, s.efd, zcStop, func(e *abi.IoUringSqe) { e.OpFlags = unix.POLLIN })
	l.arm(abi.IORING_OP_ACCEPT, l.sock, zcAccept, func(e *abi.IoUringSqe) { e.Ioprio = abi.IORING_ACCEPT_MULTISHOT })
	if _, err := l.r.Submit(); err != nil {
		return nil, err
	}
	return l, nil
}

// arm queues one request, submitting what is queued first when the SQ is
// full (a batch arms at most one request per CQE it reaps, and the CQ is
// larger than the SQ).
func (l *zcrxLoop) arm(opcode uint8, fd int, ud uint64, set func(*abi.IoUringSqe)) {
	e := l.r.GetSQE()
	for e == nil {
		l.r.Submit()
		e = l.r.GetSQE()
	}
	e.Opcode = opcode
	e.Fd = int32(fd)
	e.UserData = ud
	if set != nil {
		set(e)
	}
}

// armRecv starts a multishot zero-copy receive on an accepted socket: no
// buffer of its own, the payloads land in the area (len 0: no limit).
func (l *zcrxLoop) armRecv(fd int32) {
	l.arm(abi.IORING_OP_RECV_ZC, int(fd), zcRecv|uint64(uint32(fd)), func(e *abi.IoUringSqe) {
		e.Ioprio = abi.IORING_RECV_MULTISHOT
		e.FileIndex = l.q.id // sqe.zcrx_ifq_idx
	})
}

// serve reaps completions until the stop eventfd fires. Per packet it
// costs one CQE read and one refill ring entry; the refill tail and the
// counters are published once per batch.
func (l *zcrxLoop) serve() error {
	for {
		// A wait that may block, through the runtime's syscall path.
		l.c[cRuntimeWaits]++
		if _, err := l.r.SubmitAndWait(1); err != nil {
			return err
		}
		l.c[cSyscalls] = l.r.Enters
		head, tail := l.r.CQHead(), l.r.CQTail()
		stop := false
		for ; head != tail; head++ {
			cqe, zc := l.r.BigCQE(head)
			switch cqe.UserData & zcKind {
			case zcStop:
				stop = true
			case zcAccept:
				l.accepted(cqe)
			case zcRecv:
				l.received(int32(uint32(cqe.UserData)), cqe, zc)
			}
		}
		l.r.CQAdvance(head)
		atomic.StoreUint32(l.q.tail, l.q.local)
		l.publish()
		if stop {
			return nil
		}
	}
}

func (l *zcrxLoop) accepted(cqe *abi.IoUringCqe) {
	if cqe.Res < 0 {
		l.c[cErrors]++
	} else {
		l.c[cAccepted]++
		l.open[cqe.Res] = true
		l.armRecv(cqe.Res)
	}
	if cqe.Flags&abi.IORING_CQE_F_MORE == 0 {
		l.arm(abi.IORING_OP_ACCEPT, l.sock, zcAccept, func(e *abi.IoUringSqe) { e.Ioprio = abi.IORING_ACCEPT_MULTISHOT })
	}
}

// received counts a payload in place and hands its buffer straight back
// through the refill ring: a sink reads nothing, so the NIC's buffer is
// free as soon as it is counted.
func (l *zcrxLoop) received(fd int32, cqe *abi.IoUringCqe, zc *abi.IoUringZcrxCqe) {
	switch {
	case cqe.Res > 0:
		l.c[cRxBytes] += uint64(cqe.Res)
		l.c[cRxMsgs]++
		off := zc.Off &^ abi.IORING_ZCRX_AREA_MASK
		if off+uint64(cqe.Res) > uint64(len(l.q.area)) {
			// The kernel said the payload lies outside the area: count it,
			// never touch it.
			l.c[cErrors]++
			break
		}
		if l.q.local-atomic.LoadUint32(l.q.head) > l.q.mask {
			// Cannot happen with a refill ring as large as the CQ; if it
			// does, the buffer stays with us rather than overwrite one the
			// kernel has not taken.
			l.c[cDropped]++
			break
		}
		e := &l.q.rqes[l.q.local&l.q.mask]
		e.Off = off | l.q.token
		e.Len = uint32(cqe.Res)
		l.q.local++
		l.s.refills.Add(1)
	case cqe.Res == 0:
		l.closeConn(fd) // the peer closed
		return
	default:
		if cqe.Res != -int32(unix.ECONNRESET) {
			l.c[cErrors]++
		}
		if cqe.Flags&abi.IORING_CQE_F_MORE == 0 && cqe.Res != -int32(unix.ENOBUFS) {
			l.closeConn(fd)
			return
		}
	}
	if cqe.Flags&abi.IORING_CQE_F_MORE == 0 && l.open[fd] {
		l.armRecv(fd) // the kernel ended the multishot (buffers ran short): again
	}
}

func (l *zcrxLoop) closeConn(fd int32) {
	if l.open[fd] {
		delete(l.open, fd)
		unix.Close(int(fd))
		l.c[cClosed]++
	}
}

func (l *zcrxLoop) publish() {
	for i := range l.c {
		l.s.counters[i].Store(l.c[i])
	}
}

// teardown closes the ring first: that cancels the receives and unbinds
// the queue, after which the area may be unmapped.
func (l *zcrxLoop) teardown() {
	if l.r != nil {
		l.r.Close()
	}
	if l.q != nil {
		l.q.release()
	}
	for fd := range l.open {
		unix.Close(int(fd))
	}
	if l.sock >= 0 {
		unix.Close(l.sock)
	}
}

// Port is the port the server listens on.
func (s *zcrxServer) Port() int { return s.port }

// Counters is the loop's last published counters; refills are the
// buffers handed back through the refill ring.
func (s *zcrxServer) Counters() backends.Counters {
	var p published
	for i := range p.v {
		p.v[i].Store(s.counters[i].Load())
	}
	var c backends.Counters
	extra := map[string]uint64{"zcrx_refills": s.refills.Load()}
	p.addTo(&c, extra)
	c.Extra = extra
	return c
}

// Close stops the loop and waits until it freed its ring, queue and
// sockets.
func (s *zcrxServer) Close() error {
	s.once.Do(func() {
		var one [8]byte
		one[0] = 1
		if _, err := unix.Write(s.efd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
			s.err = errors.Join(s.err, fmt.Errorf("wake zcrx loop: %w", err))
		}
		<-s.done
		unix.Close(s.efd)
	})
	return s.err
}
