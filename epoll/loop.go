package epoll

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/preempt"
	"ringbench/internal/sockets"
)

const (
	// maxEvents is the size of each loop's fixed epoll event array.
	maxEvents = 256
	// udpBatch is how many datagrams one recvmmsg or sendmmsg moves.
	udpBatch = 32
	// ioBudget caps the reads and writes one socket gets per turn, so one
	// busy peer cannot starve the others; a socket that still has work goes
	// on the loop's again list and epoll_wait stops blocking until it is
	// served.
	ioBudget = 16
)

// loop is one event loop: its epoll instance, its wake eventfd, its
// listening (TCP) or serving (UDP) socket, and what it serves.
type loop struct {
	*plan
	cpu    int // -1: unpinned
	epfd   int
	wakefd int
	tickfd int // the raw wait's tick (see loop.wait); -1 without
	sock   int

	events [maxEvents]unix.EpollEvent
	conns  []*conn // by fd
	// again holds connections whose turn ended with work left; spare is
	// the previous turn's list, reused so requeueing never allocates.
	again, spare []*conn
	// udpAgain: the UDP socket's turn ended with work left.
	udpAgain bool
	udp      *udpState

	// count is written by the loop alone; published is its copy that other
	// goroutines read.
	count     counts
	published publishedCounts
	lastPub   counts // what published holds, the loop's alone

	started bool
	done    chan struct{}
	err     error
}

// newLoop creates the loop's epoll instance, eventfd and socket bound to
// port, freeing what it made if a later step fails.
func newLoop(p *plan, cpu, port int, reusePort bool) (_ *loop, err error) {
	l := &loop{plan: p, cpu: cpu, epfd: -1, wakefd: -1, tickfd: -1, sock: -1, done: make(chan struct{})}
	defer func() {
		if err != nil {
			l.release()
		}
	}()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("create epoll: %w", err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	if err = l.watch(l.wakefd, unix.EPOLLIN); err != nil {
		return nil, err
	}
	if p.raw {
		if l.tickfd, err = newTick(); err != nil {
			return nil, err
		}
		if err = l.watch(l.tickfd, unix.EPOLLIN); err != nil {
			return nil, err
		}
	}
	if l.sock, _, err = sockets.Listen(p.proto, p.addr, port, sockets.Options{ReusePort: reusePort, NonBlock: true}); err != nil {
		return nil, err
	}
	events := uint32(unix.EPOLLIN | unix.EPOLLET)
	if p.proto == backends.UDP {
		l.udp = newUDPState(p)
		if p.service == backends.Source {
			// Only a source waits for room to send: a UDP socket reports
			// EPOLLOUT each time a sent datagram is freed, which would cost
			// echo an extra epoll_wait per batch.
			events |= unix.EPOLLOUT
		}
	}
	if err = l.watch(l.sock, events); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *loop) watch(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("add fd to epoll: %w", err)
	}
	return nil
}

// run is the loop's goroutine. It never unlocks its OS thread: the thread's
// CPU affinity was changed, so it must end with the goroutine rather than go
// back to the runtime's pool.
func (l *loop) run(ready chan<- error) {
	defer close(l.done)
	runtime.LockOSThread()
	if l.cpu >= 0 {
		var set unix.CPUSet
		set.Set(l.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			ready <- fmt.Errorf("pin loop to CPU %d: %w", l.cpu, err)
			return
		}
	}
	ready <- nil
	l.err = l.serve()
	l.publish()
}

// start records, before the goroutine starts, that stop must join it.
func (l *loop) start(ready chan<- error) {
	l.started = true
	go l.run(ready)
}

// serve waits for events and dispatches them until the wake eventfd fires.
func (l *loop) serve() error {
	for {
		l.publish()
		n, err := l.wait(len(l.again) > 0 || l.udpAgain)
		if err != nil {
			return err
		}
		for i := range n {
			ev := &l.events[i]
			switch fd := int(ev.Fd); {
			case fd == l.wakefd:
				return nil
			case fd == l.tickfd:
				l.tick()
			case fd == l.sock && l.proto == backends.UDP:
				l.udp.ready(l, ev.Events)
			case fd == l.sock:
				l.accept()
			case fd < len(l.conns) && l.conns[fd] != nil:
				l.conns[fd].ready(l, ev.Events)
			}
		}
		if l.udpAgain {
			l.udpAgain = false
			l.udp.step(l)
		}
		l.serveAgain()
	}
}

// wait waits for events (poll: only collects those ready) and returns how
// many are in l.events.
//
// A raw epoll_wait (plan.raw) keeps the thread's P: the runtime makes no
// syscall on the loop's behalf (no sysmon retake, no futex hand-off to
// another M). It has no timeout, because a timeout is a kernel timer armed
// and cancelled on every sleep: at 20000 ops/s that was ~20000 TSC-deadline
// writes a second, 1.17x the C server's cycles per op (see
// measurements/raw-wait.md). The runtime believes the goroutine runs
// meanwhile and, with async preemption off, cannot interrupt it: a
// stop-the-world or a preemption it asks for lands only at a preemption
// point. The loop's tick (a periodic timerfd, preempt.TickNs) wakes an idle loop
// to one (preempt.Point), at one wake-up per tick.
func (l *loop) wait(poll bool) (int, error) {
	if poll || l.raw {
		timeout := -1
		if poll {
			timeout = 0
		} else {
			l.count.rawWaits++
		}
		l.count.syscalls++
		n, errno := rawEpollWait(l.epfd, l.events[:], timeout)
		switch {
		case errno == unix.EINTR:
			return 0, nil
		case errno != 0:
			return 0, fmt.Errorf("wait for events: %w", errno)
		}
		return n, nil
	}
	l.count.syscalls++
	l.count.runtimeWaits++
	n, err := unix.EpollWait(l.epfd, l.events[:], -1)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wait for events: %w", err)
	}
	return n, nil
}

// tick reads the tick's timerfd (a periodic timerfd re-arms only when
// read) and offers the runtime a preemption point.
func (l *loop) tick() {
	var n [8]byte
	l.count.syscalls++
	unix.Read(l.tickfd, n[:]) // EAGAIN only if another read took the expiry
	preempt.Point()
}

// newTick makes the loop's tick: a periodic, non-blocking timerfd.
func newTick() (int, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("create the loop's tick: %w", err)
	}
	period := unix.NsecToTimespec(preempt.TickNs)
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: period, Value: period}, nil); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("start the loop's tick: %w", err)
	}
	return fd, nil
}

// rawEpollWait is epoll_wait without the runtime's syscall bookkeeping
// (epoll_pwait with no signal mask: every architecture has it).
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, unix.Errno) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	return int(r), errno
}

// serveAgain gives every connection whose last turn ran out of budget
// another turn.
func (l *loop) serveAgain() {
	if len(l.again) == 0 {
		return
	}
	list := l.again
	l.again = l.spare[:0]
	for _, c := range list {
		c.queued = false
		if !c.closed {
			c.step(l)
		}
	}
	clear(list)
	l.spare = list[:0]
}

// wake makes the loop's epoll_wait return so that the loop exits.
func (l *loop) wake() {
	if l.wakefd < 0 {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(l.wakefd, one[:]) // an eventfd write fails only on counter overflow
}

// release closes every fd the loop holds; the loop must not be running.
func (l *loop) release() {
	for fd, c := range l.conns {
		if c != nil {
			unix.Close(fd)
		}
	}
	l.conns = nil
	for _, fd := range []*int{&l.sock, &l.wakefd, &l.tickfd, &l.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// counts is what a loop counts, in plain fields only the loop writes.
// rawWaits and runtimeWaits count the waits that may block, raw or
// through the runtime's syscall path (a poll for more events is neither):
// the record's word on whether the loop's waits were raw.
type counts struct {
	syscalls, accepted, closed       uint64
	rxBytes, txBytes, rxMsgs, txMsgs uint64
	dropped, errors                  uint64
	rawWaits, runtimeWaits           uint64
	work                             workCounts
}

// publishedCounts is the loop's counts as other goroutines read them,
// behind a sequence count (a seqlock) so that a reader gets one moment's
// counts, never RxBytes from one turn and TxBytes from another. The
// padding keeps two loops' counters off one cache line.
type publishedCounts struct {
	_ atomicPad
	// seq is odd while the loop writes.
	seq                              atomic.Uint64
	syscalls, accepted, closed       atomic.Uint64
	rxBytes, txBytes, rxMsgs, txMsgs atomic.Uint64
	dropped, errors                  atomic.Uint64
	rawWaits, runtimeWaits           atomic.Uint64
	requests, cycles                 atomic.Uint64
	_                                atomicPad
}

type atomicPad [64]byte

// publish copies the loop's counts for readers: a few atomic stores per
// epoll_wait rather than an atomic add per packet, and only of the counts
// that changed since the last publish (a store is an atomic exchange on
// x86, some 20 cycles).
func (l *loop) publish() {
	c, last, p := &l.count, &l.lastPub, &l.published
	if *c == *last {
		return
	}
	p.seq.Add(1)
	storeChanged(&p.syscalls, c.syscalls, last.syscalls)
	storeChanged(&p.accepted, c.accepted, last.accepted)
	storeChanged(&p.closed, c.closed, last.closed)
	storeChanged(&p.rxBytes, c.rxBytes, last.rxBytes)
	storeChanged(&p.txBytes, c.txBytes, last.txBytes)
	storeChanged(&p.rxMsgs, c.rxMsgs, last.rxMsgs)
	storeChanged(&p.txMsgs, c.txMsgs, last.txMsgs)
	storeChanged(&p.dropped, c.dropped, last.dropped)
	storeChanged(&p.errors, c.errors, last.errors)
	storeChanged(&p.rawWaits, c.rawWaits, last.rawWaits)
	storeChanged(&p.runtimeWaits, c.runtimeWaits, last.runtimeWaits)
	storeChanged(&p.requests, c.work.requests, last.work.requests)
	storeChanged(&p.cycles, c.work.cycles, last.work.cycles)
	*last = *c
	p.seq.Add(1)
}

// storeChanged stores v in a unless it is what was stored last.
func storeChanged(a *atomic.Uint64, v, last uint64) {
	if v != last {
		a.Store(v)
	}
}

// addTo adds one consistent snapshot of the loop's counts to c (its
// waits to c.Extra, which the caller made), and of its work's to w.
func (p *publishedCounts) addTo(c *backends.Counters, w *workCounts) {
	for {
		seq := p.seq.Load()
		if seq&1 != 0 {
			runtime.Gosched() // the loop is mid-publish, or preempted there
			continue
		}
		snap := backends.Counters{
			Syscalls: p.syscalls.Load(),
			Accepted: p.accepted.Load(),
			Closed:   p.closed.Load(),
			RxBytes:  p.rxBytes.Load(),
			TxBytes:  p.txBytes.Load(),
			RxMsgs:   p.rxMsgs.Load(),
			TxMsgs:   p.txMsgs.Load(),
			Dropped:  p.dropped.Load(),
			Errors:   p.errors.Load(),
		}
		raw, runtimeWaits := p.rawWaits.Load(), p.runtimeWaits.Load()
		work := workCounts{requests: p.requests.Load(), cycles: p.cycles.Load()}
		if p.seq.Load() != seq {
			continue
		}
		c.Syscalls += snap.Syscalls
		c.Accepted += snap.Accepted
		c.Closed += snap.Closed
		c.RxBytes += snap.RxBytes
		c.TxBytes += snap.TxBytes
		c.RxMsgs += snap.RxMsgs
		c.TxMsgs += snap.TxMsgs
		c.Dropped += snap.Dropped
		c.Errors += snap.Errors
		c.Extra["raw_waits"] += raw
		c.Extra["runtime_waits"] += runtimeWaits
		w.requests += work.requests
		w.cycles += work.cycles
		return
	}
}
