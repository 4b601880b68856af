package workloads

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/mmsg"
)

const (
	// readBufSize is each loop's receive buffer: large, so one read drains
	// many pipelined replies or a socket's worth of stream.
	readBufSize = 256 << 10
	// maxEvents is the epoll event array, reused by every wait.
	maxEvents = 256
	// pollTimeout bounds every wait, so a loop sees the stop flag, window
	// edges and timeouts even when no socket is ready.
	pollTimeout = 10 // ms
	// expireEvery is how often a loop scans for unanswered requests.
	expireEvery = int64(10 * time.Millisecond)
	// lateAfter: an open-loop request sent later than this after its
	// intended time counts as Late.
	lateAfter = int64(time.Millisecond)
	// maxLatency is the histogram's highest trackable value.
	maxLatency = int64(60 * time.Second)
	// udpBatch is the datagrams one recvmmsg or sendmmsg moves at most, so
	// also the most one socket gets per readiness event.
	udpBatch = 32
	// udpSlotBytes holds the largest datagram plus one byte, so an oversize
	// reply shows as truncated.
	udpSlotBytes = 2048
	// timerTag marks the timerfd in epoll event data; flows use their index.
	timerTag = -1
	// maxBacklog bounds each connection's queue of due open-loop requests
	// waiting for a free slot or a writable socket. A request due when the
	// queues of all its loop's connections are full is not queued but
	// counted as Unsent, so a generator that falls behind holds bounded
	// memory and still returns to its wait (the stop flag, the window).
	maxBacklog = 1024
	// maxDrain bounds the drain after the window (besides Spec.Timeout):
	// the loops keep collecting the replies of the window's requests until
	// none is outstanding, or this long.
	maxDrain = 200 * time.Millisecond
)

var epoch = time.Now()

// nanotime reads the monotonic clock through the vDSO: no syscall.
func nanotime() int64 { return int64(time.Since(epoch)) }

// flow is one connection's side of a workload, driven by its loop.
type flow interface {
	base() *sock
	// start runs once, on the loop's thread, before the first wait.
	start()
	readable()
	writable()
	// pump sends what may go now: queued open-loop requests, or closed-loop
	// work up to the connection's limit.
	pump()
	// expire ends requests unanswered since before now-Timeout.
	expire(now int64)
	// pending reports whether requests sent or queued are still waiting for
	// their end (reply, loss, timeout). After the window nothing new is
	// sent, so pending then means requests of the window or before.
	pending() bool
	// abandon gives up, at the end of the run, what is still pending.
	abandon(now int64)
}

// counters are one loop's counts of the window's requests: those whose
// send time (intended in open loop) is inside it.
type counters struct {
	ops, bytes, sent, late, behind uint64
	unsent, censored, lateReplies  uint64
	errs                           Errors
}

// loop is one event loop: its connections, its epoll instance and its
// share of the open-loop schedule. Only its own thread touches it while it
// runs; Run reads it after the loop has ended.
type loop struct {
	r      *runState
	spec   Spec
	cpu    int // -1: unpinned
	ep     int
	tfd    int // -1 in closed loop
	flows  []flow
	live   int
	events []unix.EpollEvent
	rbuf   []byte
	// UDP datagram batches, one recvmmsg or sendmmsg each, shared by the
	// loop's connections.
	rx, tx  *mmsg.Batch
	hist    *hdrhistogram.Histogram
	n       counters
	open    bool
	arr     arrivals
	rr      int
	dirty   []flow
	timerAt int64
	// winStart and winEnd are the window edges as of this iteration.
	winStart, winEnd int64
	timeout          int64 // Spec.Timeout in ns
	fatal            error
	tid              int
	drained          bool // told Run that nothing of the window is pending
	ended            bool // the window has ended and the queues are emptied
}

func newLoop(r *runState, spec Spec, cpu int) (l *loop, err error) {
	l = &loop{
		r: r, spec: spec, cpu: cpu, ep: -1, tfd: -1,
		events:   make([]unix.EpollEvent, maxEvents),
		rbuf:     make([]byte, readBufSize),
		hist:     newHistogram(),
		open:     spec.Rate > 0,
		timeout:  int64(spec.Timeout),
		winStart: math.MaxInt64, winEnd: math.MaxInt64,
	}
	if spec.Proto == backends.UDP {
		l.rx = mmsg.NewBatch(udpBatch, udpSlotBytes)
		l.tx = mmsg.NewBatch(udpBatch, udpSlotBytes)
		if spec.Workload == Stream {
			// A stream's datagrams are all alike: fill them once.
			for i := range udpBatch {
				copy(l.tx.Buf(i), sourcePattern[:spec.Size])
				l.tx.SetSize(i, spec.Size)
			}
		}
	}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("create epoll: %w", err)
	}
	if l.open {
		if l.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
			return nil, fmt.Errorf("create timerfd: %w", err)
		}
		// Edge-triggered and never read: each expiry of a one-shot timer
		// wakes the wait once, which saves a read(2) per wake-up. (A
		// periodic timerfd would not do: it re-arms only when read.)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: timerTag}
		if err = unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.tfd, &ev); err != nil {
			return nil, fmt.Errorf("watch timerfd: %w", err)
		}
	}
	return l, nil
}

func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxLatency, 3) }

// add hands f's socket to the loop, which closes it from now on.
func (l *loop) add(f flow) error {
	s := f.base()
	s.l = l
	s.tag = int32(len(l.flows))
	l.flows = append(l.flows, f)
	l.live++
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: s.tag}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return fmt.Errorf("watch socket: %w", err)
	}
	return nil
}

// run is the loop's goroutine, on a thread of its own. When it ends, the
// thread gets its CPU mask back and returns to the runtime; if the mask
// cannot be restored the thread stays locked, so the runtime ends it rather
// than run other goroutines pinned (or, on the main thread, parks it).
func (l *loop) run(ready chan<- error) error {
	runtime.LockOSThread()
	var orig unix.CPUSet
	restored := l.cpu < 0 || unix.SchedGetaffinity(0, &orig) == nil
	defer func() {
		if l.cpu >= 0 && restored {
			restored = unix.SchedSetaffinity(0, &orig) == nil
		}
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	defer l.close()
	l.tid = unix.Gettid()
	if l.cpu >= 0 {
		var set unix.CPUSet
		set.Set(l.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			err = fmt.Errorf("pin loop to cpu %d: %w", l.cpu, err)
			ready <- err
			return err
		}
	}
	ready <- nil
	return l.serve()
}

func (l *loop) serve() error {
	l.dirty = make([]flow, 0, len(l.flows))
	for _, f := range l.flows {
		f.start()
	}
	nextExpire := nanotime() + expireEvery
	wait := pollTimeout
	for {
		n, err := unix.EpollWait(l.ep, l.events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait epoll: %w", err)
		}
		l.winStart, l.winEnd = l.r.start.Load(), l.r.end.Load()
		if l.r.stop.Load() {
			l.abandon(nanotime())
			return nil
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			if ev.Fd == timerTag {
				continue
			}
			f := l.flows[ev.Fd]
			if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 && !f.base().dead {
				f.readable()
			}
			if ev.Events&unix.EPOLLOUT != 0 && !f.base().dead {
				f.writable()
			}
		}
		if l.fatal != nil {
			return l.fatal
		}
		now := nanotime()
		wait = pollTimeout
		if l.open && l.live > 0 && l.schedule(now) {
			wait = 0
		}
		if now >= nextExpire {
			for _, f := range l.flows {
				if !f.base().dead {
					f.expire(now)
				}
			}
			nextExpire = now + expireEvery
		}
		if !l.ended && now >= l.winEnd {
			l.ended = true
			l.dropQueued()
		}
		if !l.drained && now >= l.winEnd && !l.pending() {
			l.drained = true
			l.r.loopDrained()
		}
	}
}

// pending reports whether a live connection still waits for an answer.
func (l *loop) pending() bool {
	for _, f := range l.flows {
		if !f.base().dead && f.pending() {
			return true
		}
	}
	return false
}

// dropQueued counts the requests still queued when the window ends as
// Unsent: nothing is sent after the window, whose server meters are read.
func (l *loop) dropQueued() {
	for _, f := range l.flows {
		q := &f.base().queue
		for q.len() > 0 {
			l.unsent(q.pop())
		}
	}
}

// abandon gives up every live connection's pending requests at the end of
// the run.
func (l *loop) abandon(now int64) {
	for _, f := range l.flows {
		if !f.base().dead {
			f.abandon(now)
		}
	}
}

// schedule queues every request due by now on the next live connections
// with room in their backlog, sends what their slots allow, and arms the
// timer for the next one. When every backlog is full, the requests due are
// skipped and counted as Unsent in one step, however many they are. The
// schedule ends at the window's end. It reports whether the next request
// is already due.
func (l *loop) schedule(now int64) bool {
	for l.arr.next <= now && l.arr.next < l.winEnd {
		f := l.nextWithRoom()
		if f == nil {
			l.skipDue(now)
			break
		}
		s := f.base()
		if now-l.arr.next > lateAfter && l.inWindow(l.arr.next) {
			// The loop itself saw this request late: the generator's
			// thread did not run (the generator or its machine, not the
			// server, held it up).
			l.n.behind++
		}
		s.queue.push(l.arr.next)
		if !s.dirty {
			s.dirty = true
			l.dirty = append(l.dirty, f)
		}
		l.arr.advance()
	}
	for _, f := range l.dirty {
		f.base().dirty = false
		if !f.base().dead {
			f.pump()
		}
	}
	l.dirty = l.dirty[:0]
	if l.arr.next >= l.winEnd {
		return false // the rest of the schedule is after the window
	}
	d := l.arr.next - nanotime()
	if d <= 0 {
		return true
	}
	if l.timerAt != l.arr.next {
		l.timerAt = l.arr.next
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d)}
		if err := unix.TimerfdSettime(l.tfd, 0, &spec, nil); err != nil {
			l.fatal = fmt.Errorf("arm timerfd: %w", err)
		}
	}
	return false
}

// nextWithRoom returns the next live connection, round robin, whose
// backlog has room, or nil.
func (l *loop) nextWithRoom() flow {
	for range l.flows {
		f := l.flows[l.rr]
		l.rr++
		if l.rr == len(l.flows) {
			l.rr = 0
		}
		if s := f.base(); !s.dead && s.queue.len() < maxBacklog {
			return f
		}
	}
	return nil
}

// skipDue drops every request due by now from the schedule, counting those
// intended inside the window as Unsent.
func (l *loop) skipDue(now int64) {
	until := min(now, l.winEnd-1)
	if l.arr.next < l.winStart {
		l.arr.skip(min(until, l.winStart-1))
	}
	l.n.unsent += l.arr.skip(until)
}

// inWindow reports whether a request sent (intended, in open loop) at at
// belongs to the window.
func (l *loop) inWindow(at int64) bool { return at >= l.winStart && at < l.winEnd }

// record adds one latency to the histogram, clamped to its range.
func (l *loop) record(lat int64) {
	if lat < 1 {
		lat = 1
	} else if lat > maxLatency {
		lat = maxLatency
	}
	_ = l.hist.RecordValue(lat) // in range by the clamp above
}

// complete counts a request sent (intended) at at and answered at now
// with size verified bytes.
func (l *loop) complete(at, now int64, size int) {
	if l.inWindow(at) {
		l.n.ops++
		l.n.bytes += uint64(size)
		l.record(now - at)
	}
}

// count counts n messages of bytes in all, sent (or, for a stream down,
// received) at at, without latency.
func (l *loop) count(at int64, n, bytes int) {
	if l.inWindow(at) {
		l.n.ops += uint64(n)
		l.n.bytes += uint64(bytes)
	}
}

// sent counts one request or message sent at now, intended at at.
func (l *loop) sent(now, at int64) {
	if !l.inWindow(at) {
		return
	}
	l.n.sent++
	if now-at > lateAfter {
		l.n.late++
	}
}

// mismatch counts a wrong reply to the request sent (intended) at at; a
// reply that belongs to no request counts by its arrival time.
func (l *loop) mismatch(at int64) {
	if l.inWindow(at) {
		l.n.errs.Mismatch++
	}
}

// gaveUp counts a request sent (intended) at at and given up at now, lost
// (UDP) or timed out (TCP), and records it in the histogram at the time it
// had waited: a lower bound of its latency, so it counts as Censored.
func (l *loop) gaveUp(at, now int64, lost bool) {
	if !l.inWindow(at) {
		return
	}
	if lost {
		l.n.errs.Lost++
	} else {
		l.n.errs.Timeout++
	}
	l.n.censored++
	l.record(now - at)
}

// unsent counts a queued request intended at at that was never sent.
func (l *loop) unsent(at int64) {
	if l.inWindow(at) {
		l.n.unsent++
	}
}

func (l *loop) close() {
	for _, f := range l.flows {
		f.base().closeFD()
	}
	if l.tfd >= 0 {
		unix.Close(l.tfd)
		l.tfd = -1
	}
	if l.ep >= 0 {
		unix.Close(l.ep)
		l.ep = -1
	}
}
