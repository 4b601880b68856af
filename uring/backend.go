package uring

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"ringbench/backends"
	"ringbench/internal/sockets"
	"ringbench/uring/internal/abi"
)

// variant is what tells the registered backends apart.
type variant struct {
	name    string
	summary string
	// setup flags wanted; optional ones are dropped when the kernel
	// refuses them (see setupFlags).
	flags    uint32
	optional uint32
	sqpoll   bool
	zc       bool
	bundle   bool
	basic    bool
}

var variants = []*variant{
	{
		name:     "uring",
		summary:  "SINGLE_ISSUER|DEFER_TASKRUN ring, multishot accept (direct fds) and recv into a provided buffer ring, zero-copy echo from the received buffer, one enter per batch",
		flags:    abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN | abi.IORING_SETUP_SUBMIT_ALL,
		optional: abi.IORING_SETUP_NO_SQARRAY,
	},
	{
		name:     "uring-sqpoll",
		summary:  "kernel SQ polling thread submits: on its own CPU (sq_cpu) the loop spins on the CQ, no syscalls under load (as DPDK); sharing the server CPU the loop sleeps in batched waits (fewer syscalls than uring, more latency)",
		flags:    abi.IORING_SETUP_SQPOLL | abi.IORING_SETUP_SQ_AFF | abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_SUBMIT_ALL,
		optional: abi.IORING_SETUP_NO_SQARRAY,
		sqpoll:   true,
	},
	{
		name:     "uring-zc",
		summary:  "as uring, with SEND_ZC/SENDMSG_ZC: buffers return at the notification; counts the sends the kernel copied anyway",
		flags:    abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN | abi.IORING_SETUP_SUBMIT_ALL,
		optional: abi.IORING_SETUP_NO_SQARRAY,
		zc:       true,
	},
	{
		name:     "uring-bundle",
		summary:  "as uring, with recv bundles (one CQE for several buffers) and send bundles (one SEND drains a per-connection buffer group)",
		flags:    abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN | abi.IORING_SETUP_SUBMIT_ALL,
		optional: abi.IORING_SETUP_NO_SQARRAY,
		bundle:   true,
	},
	{
		name:    "uring-basic",
		summary: "the naive port: plain ring, one-shot accept, recv and send with per-connection buffers, no multishot, no provided buffers",
		basic:   true,
	},
}

func init() {
	for _, v := range variants {
		v := v
		family, name := "uring", v.name
		variantName := "default"
		if i := strings.IndexByte(name, '-'); i >= 0 {
			variantName = name[i+1:]
		}
		backends.Register(backends.Backend{
			Name:     name,
			Family:   family,
			Variant:  variantName,
			Summary:  v.summary,
			Protos:   []backends.Proto{backends.TCP, backends.UDP},
			Services: []backends.Service{backends.Echo, backends.Sink, backends.Source},
			Probe:    v.probe,
			New:      func(cfg backends.Config) (backends.Server, error) { return newServer(v, cfg) },
		})
	}
}

// tcpSourceChunk is how many pattern bytes one TCP source send carries: the
// stream has no message boundaries, so fewer, larger sends.
const tcpSourceChunk = 64 << 10

// plan is what every loop of one server shares, read-only.
type plan struct {
	v           *variant
	proto       backends.Proto
	service     backends.Service
	addr        [4]byte
	maxDatagram int
	msgSize     int
	// Options.
	spinNs   int64 // sqpoll: how long the loop spins on the CQ before it sleeps in enter (-1: by core sharing)
	sqIdleMs int64 // -1: by core sharing
	sqCPU    int   // -1: the loop's CPU
	bufSize  int
	bufCount int
	ringSize uint32
	// batch and batchUs: with enough sources active (see
	// loop.waitPolicy) a wait asks for up to batch completions but holds
	// out at most batchUs once one is there. The kernel's min-wait
	// (IORING_FEAT_MIN_TIMEOUT, 6.12) then makes one enter serve what
	// arrives in that window, for at most batchUs of added latency.
	batch   uint32
	batchUs int64 // -1: by variant and core sharing (sharedBatchUs or defaultBatchUs)
	// rawEnter: waits are raw enters that bypass the runtime's syscall
	// bookkeeping (ring.Ring.RawEnter), so the runtime makes no syscall on
	// the loop's behalf (no sysmon retake of the P, no futex hand-off to
	// another M). The runtime then thinks the loop runs while it waits, so
	// the wait is bounded (rawWaitNs) and an idle loop yields and sleeps
	// through the runtime's path (see loop.wait). By default on when every
	// loop can keep a P with one left for the rest of the process
	// (GOMAXPROCS > loops, as ringbench serve runs); raw_enter=1 forces it,
	// raw_enter=0 turns it off.
	rawEnter  bool
	rawForced bool
	connBytes int // uring-basic's per-connection buffer
	// pattern holds the source pattern from offset 0, one send plus
	// backends.SourcePeriod bytes long, so the bytes for any stream offset o start
	// at pattern[o%backends.SourcePeriod].
	pattern []byte
}

// Options the backend takes (Config.Options).
const (
	optSpinUs   = "spin_us"    // sqpoll: CQ spin before sleeping, µs (default 2000, 0 when the SQ thread shares the loop's CPU)
	optSqIdle   = "sq_idle_ms" // sqpoll: sq_thread_idle, ms (default 100, 1 when the SQ thread shares the loop's CPU)
	optSqCPU    = "sq_cpu"     // sqpoll: CPU of the SQ thread (default: the loop's)
	optBufSize  = "buf_size"   // provided buffer size, bytes
	optBufCount = "buf_count"  // provided buffers per loop (power of two)
	optEntries  = "sq_entries" // SQ ring size (CQ is 8x, clamped to the kernel's limit)
	optBatch    = "batch"      // completions one wait asks for (default 16)
	optBatchUs  = "batch_us"   // how long a wait holds out for them, µs (default 50, sqpoll sharing a CPU 500; 0 wakes per completion)
	optRawEnter = "raw_enter"  // 1: waits are raw, bounded enters; 0: through the runtime (default: raw when GOMAXPROCS > loops)
)

func newPlan(v *variant, cfg backends.Config) (*plan, error) {
	k, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	p := &plan{v: v, proto: cfg.Proto, service: cfg.Service, addr: k.Addr, maxDatagram: cfg.MaxDatagram(), msgSize: k.MsgSize,
		spinNs: -1, sqIdleMs: -1, sqCPU: -1, ringSize: 1024, batch: 16, batchUs: -1}
	// Provided buffers: TCP reads at most a buffer per CQE, so larger
	// messages want larger buffers; UDP needs the recvmsg header, the peer's
	// address and one byte over the limit (so an oversize datagram shows).
	if cfg.Proto == backends.UDP {
		p.bufSize = nextPow2(recvmsgHeadroom + p.maxDatagram + 1)
	} else {
		p.bufSize = min(max(nextPow2(p.msgSize), 4096), 64<<10)
	}
	p.bufCount = min(max(nextPow2((8<<20)/p.bufSize), 256), 4096)
	p.connBytes = max(p.msgSize, 32<<10)
	if err := p.options(cfg.Options); err != nil {
		return nil, err
	}
	if cfg.Service == backends.Source {
		chunk := p.msgSize
		if cfg.Proto == backends.TCP {
			chunk = max(chunk, tcpSourceChunk)
		}
		p.pattern = backends.SourcePattern(chunk)
	}
	return p, nil
}

func (p *plan) options(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n, err := strconv.Atoi(opts[k])
		if err != nil || n < 0 {
			return fmt.Errorf("check option %s=%q: want a non-negative integer", k, opts[k])
		}
		switch k {
		case optSpinUs:
			p.spinNs = int64(n) * 1000
		case optSqIdle:
			p.sqIdleMs = int64(n)
		case optSqCPU:
			p.sqCPU = n
		case optBufSize:
			if n < recvmsgHeadroom+1 {
				return fmt.Errorf("check option %s=%d: too small", k, n)
			}
			p.bufSize = n
		case optBufCount:
			if n == 0 || n&(n-1) != 0 || n > 1<<15 {
				return fmt.Errorf("check option %s=%d: want a power of two up to 32768", k, n)
			}
			p.bufCount = n
		case optBatch:
			p.batch = uint32(n)
		case optBatchUs:
			p.batchUs = int64(n)
		case optRawEnter:
			p.rawEnter, p.rawForced = n != 0, true
		case optEntries:
			if n == 0 || n&(n-1) != 0 || n > 32768 {
				return fmt.Errorf("check option %s=%d: want a power of two up to 32768", k, n)
			}
			p.ringSize = uint32(n)
		default:
			return fmt.Errorf("check config: unknown option %q (known: %s)", k, strings.Join([]string{
				optSpinUs, optSqIdle, optSqCPU, optBufSize, optBufCount, optEntries, optBatch, optBatchUs, optRawEnter}, ", "))
		}
	}
	return nil
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Server is a running io_uring backend.
type Server struct {
	port      int
	loops     []*loop
	closeOnce sync.Once
	closeErr  error
}

var _ backends.Server = (*Server)(nil)

// newServer binds the sockets, starts one loop per Config.CPUs entry (one
// unpinned loop when it is empty) and returns once every loop has its ring
// set up and armed.
func newServer(v *variant, cfg backends.Config) (_ *Server, err error) {
	if err := v.probe(); err != nil {
		return nil, err
	}
	p, err := newPlan(v, cfg)
	if err != nil {
		return nil, err
	}
	cpus := cfg.LoopCPUs()
	if !p.rawForced {
		// A raw wait holds its P: with no P to spare, goroutines queued
		// behind a waiting loop would wait out rawWaitNs each time.
		p.rawEnter = runtime.GOMAXPROCS(0) > len(cpus)
	}
	s := &Server{port: cfg.Port}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for _, cpu := range cpus {
		// Blocking sockets: io_uring polls them itself.
		fd, port, err := sockets.Listen(p.proto, p.addr, s.port, sockets.Options{ReusePort: len(cpus) > 1, RcvBuf: udpRcvBuf(p.proto)})
		if err != nil {
			return nil, err
		}
		s.port = port
		l, err := startLoop(p, cpu, fd)
		if err != nil {
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	return s, nil
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.port }

// Counters sums every loop's last published counters.
func (s *Server) Counters() backends.Counters {
	var c backends.Counters
	extra := map[string]uint64{}
	for _, l := range s.loops {
		l.pub.addTo(&c, extra)
	}
	if len(extra) > 0 {
		c.Extra = extra
	}
	return c
}

// Close stops every loop and waits for it to free its ring and sockets.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, l := range s.loops {
			l.stop()
		}
		for _, l := range s.loops {
			if err := l.join(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// udpRcvBuf gives UDP sockets room for bursts while the loop is busy
// elsewhere.
func udpRcvBuf(proto backends.Proto) int {
	if proto == backends.UDP {
		return 4 << 20
	}
	return 0
}
