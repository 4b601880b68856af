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
}

// counters are one loop's counts in the window.
type counters struct {
	ops, bytes, sent, late uint64
	errs                   Errors
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
		if l.r.stop.Load() {
			return nil
		}
		l.winStart, l.winEnd = l.r.start.Load(), l.r.end.Load()
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
	}
}

// schedule queues every request due by now on the next live connections,
// sends what their slots allow, and arms the timer for the next one. It
// reports whether the next request is already due.
func (l *loop) schedule(now int64) bool {
	for l.arr.next <= now {
		f := l.nextLive()
		if f == nil {
			return false
		}
		s := f.base()
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

func (l *loop) nextLive() flow {
	for range l.flows {
		f := l.flows[l.rr]
		l.rr++
		if l.rr == len(l.flows) {
			l.rr = 0
		}
		if !f.base().dead {
			return f
		}
	}
	return nil
}

func (l *loop) inWindow(now int64) bool { return now >= l.winStart && now < l.winEnd }

// complete counts one operation of size bytes finished at now; lat < 0
// means the workload measures no latency.
func (l *loop) complete(now, lat int64, size int) {
	if !l.inWindow(now) {
		return
	}
	l.n.ops++
	l.n.bytes += uint64(size)
	if lat >= 0 {
		if lat < 1 {
			lat = 1
		} else if lat > maxLatency {
			lat = maxLatency
		}
		_ = l.hist.RecordValue(lat) // in range by the clamp above
	}
}

// completeN counts n operations of bytes in all, without latency.
func (l *loop) completeN(now int64, n, bytes int) {
	if l.inWindow(now) {
		l.n.ops += uint64(n)
		l.n.bytes += uint64(bytes)
	}
}

// sent counts one request or message sent at now, intended at at.
func (l *loop) sent(now, at int64) {
	if !l.inWindow(now) {
		return
	}
	l.n.sent++
	if now-at > lateAfter {
		l.n.late++
	}
}

func (l *loop) mismatch(now int64) {
	if l.inWindow(now) {
		l.n.errs.Mismatch++
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
