package epoll

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/preempt"
)

// dataPathSyscalls are the syscalls the loop counts as its own: the wait
// (x/sys's EpollWait and the raw wait are both epoll_pwait), UDP's batches,
// and TCP's accept, its socket option, its epoll_ctl, its reads, writes and
// closes.
var dataPathSyscalls = []string{"epoll_pwait", "recvmmsg", "sendmmsg", "read", "write", "accept4", "setsockopt", "epoll_ctl", "close"}

func init() {
	backends.Register(backends.Backend{
		Name:     "epoll",
		Family:   "epoll",
		Variant:  "default",
		Summary:  "edge-triggered epoll over non-blocking sockets, a syscall per read or write (recvmmsg/sendmmsg batches for UDP)",
		Protos:   []backends.Proto{backends.TCP, backends.UDP},
		Services: []backends.Service{backends.Echo, backends.Sink, backends.Source},
		Probe:    func() error { return nil },
		New:      func(cfg backends.Config) (backends.Server, error) { return New(cfg) },

		CheckOptions:     checkOptions,
		DataPathSyscalls: dataPathSyscalls,
	})
}

// Server is a running epoll backend.
type Server struct {
	port      int
	loops     []*loop
	work      echoWork
	rawPs     int // Ps its raw-waiting loops hold (preempt.Hold)
	closeOnce sync.Once
	closeErr  error
}

var _ backends.Server = (*Server)(nil)

// New binds the sockets, starts one loop per Config.CPUs entry (one unpinned
// loop when it is empty) and returns once every loop is pinned and waiting.
func New(cfg backends.Config) (*Server, error) {
	if err := checkOptions(cfg.Options); err != nil {
		return nil, err
	}
	return start(cfg, noWork{})
}

// checkOptions refuses every option: epoll takes none.
func checkOptions(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Errorf("check config: epoll takes no options, got %s", strings.Join(keys, ", "))
}

// start starts a server whose echo does work with each request: New's and
// NewBurn's common part.
func start(cfg backends.Config, work echoWork) (_ *Server, err error) {
	plan, err := newPlan(cfg, work)
	if err != nil {
		return nil, err
	}
	cpus := cfg.LoopCPUs()
	s := &Server{port: cfg.Port, work: work}
	if plan.raw = preempt.Hold(len(cpus), false); plan.raw {
		s.rawPs = len(cpus)
	}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	for _, cpu := range cpus {
		l, err := newLoop(plan, cpu, s.port, len(cpus) > 1)
		if err != nil {
			return nil, err
		}
		s.loops = append(s.loops, l)
		if s.port == 0 {
			// Later loops join the port the kernel picked for the first.
			if s.port, err = boundPort(l.sock); err != nil {
				return nil, err
			}
		}
	}
	ready := make(chan error, len(s.loops))
	for _, l := range s.loops {
		l.start(ready)
	}
	for range s.loops {
		if e := <-ready; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Port returns the port every loop listens on.
func (s *Server) Port() int { return s.port }

// Counters sums the loops' published counters; the variant's work adds its
// own.
func (s *Server) Counters() backends.Counters {
	// raw_waits and runtime_waits, zero included: a record says which
	// kind its window's waits were.
	c := backends.Counters{Extra: map[string]uint64{"raw_waits": 0, "runtime_waits": 0}}
	var w workCounts
	for _, l := range s.loops {
		l.published.addTo(&c, &w)
	}
	s.work.report(&c, w)
	return c
}

// Close stops the loops and frees everything they held. It returns the first
// error a loop failed with.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.stop() })
	return s.closeErr
}

// stop wakes and joins the loops that run, then releases every loop's fds.
func (s *Server) stop() error {
	for _, l := range s.loops {
		l.wake()
	}
	var first error
	for _, l := range s.loops {
		if l.started {
			<-l.done
		}
		if l.err != nil && first == nil {
			first = l.err
		}
	}
	for _, l := range s.loops {
		l.release()
	}
	preempt.Release(s.rawPs)
	s.rawPs = 0
	return first
}

// plan is what every loop of one server shares, read-only.
type plan struct {
	proto   backends.Proto
	service backends.Service
	addr    [4]byte
	// maxDatagram is the largest UDP payload served; a larger one is dropped.
	maxDatagram int
	msgSize     int
	// connBuffer is the size of each TCP connection's buffer.
	connBuffer int
	// work is what an echo does with each request before it replies.
	work echoWork
	// raw: epoll_wait is issued raw, without a timeout (see loop.wait),
	// when every loop can keep a P with one left for the rest of the
	// process (preempt.Hold; ringbench serve runs GOMAXPROCS = loops + 1).
	raw bool
	// pattern holds the source pattern from offset 0, msgSize+backends.SourcePeriod
	// bytes long, so the bytes for any stream offset o are the slice that
	// starts at o%backends.SourcePeriod: sending costs no pattern computation.
	pattern []byte
}

// newPlan checks cfg, whose options the caller has checked, and derives
// what the loops share.
func newPlan(cfg backends.Config, work echoWork) (*plan, error) {
	k, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	p := &plan{proto: cfg.Proto, service: cfg.Service, addr: k.Addr, maxDatagram: cfg.MaxDatagram(), msgSize: k.MsgSize, work: work}
	p.connBuffer = max(p.msgSize, 32<<10)
	if cfg.Service == backends.Source {
		// A source reads only to see its peer close.
		p.connBuffer = 4 << 10
	}
	if cfg.Service == backends.Source {
		p.pattern = backends.SourcePattern(p.msgSize)
	}
	return p, nil
}

// boundPort returns the local port of socket fd.
func boundPort(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("get socket name: %w", err)
	}
	sa4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return 0, errors.New("get socket name: not an IPv4 address")
	}
	return sa4.Port, nil
}
