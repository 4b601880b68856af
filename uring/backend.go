package uring

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"ringbench/backends"
	"ringbench/internal/preempt"
	"ringbench/internal/sockets"
	"ringbench/uring/internal/abi"
)

// feat is one io_uring feature a variant uses. The variants form a
// ladder (see doc.go): each rung is the one below it plus one feature, so
// that the report can show what each feature buys. Features are read at
// setup only, where they choose the loop's data paths and wait policy.
type feat uint16

const (
	// featPbuf: receives take buffers from a provided buffer ring
	// (IOSQE_BUFFER_SELECT) and the echo is sent from the buffer it arrived
	// in; a connection's queued buffers go out in one SEND or gathered
	// SENDMSG.
	featPbuf feat = 1 << iota
	// featMultishot: one accept SQE for every connection, one recv SQE for
	// every arrival of a connection (UDP: one recvmsg for the socket).
	featMultishot
	// featFixed: the ring's own fd is registered (no fd lookup per enter)
	// and connections are accepted into direct descriptors (no fd table).
	featFixed
	// featDefer: SINGLE_ISSUER|DEFER_TASKRUN: the network completions' task
	// work runs inside the loop's own enter, not as an interrupt.
	featDefer
	// featMinWait: adaptive min-wait batching (IORING_FEAT_MIN_TIMEOUT).
	featMinWait
	// featBundle: recv and send bundles (IORING_RECVSEND_BUNDLE).
	featBundle
	// featSQPoll: a kernel SQ thread submits (IORING_SETUP_SQPOLL).
	featSQPoll
	// featZC: SEND_ZC from registered buffers (IORING_RECVSEND_FIXED_BUF).
	featZC
)

// variant is one rung of the ladder: a registered backend name.
type variant struct {
	name string
	// adds is the one feature this rung adds to the one below (base).
	adds    feat
	base    string
	summary string
	// setup flags wanted; optional ones are dropped when the kernel
	// refuses them (see setupRing).
	flags    uint32
	optional uint32
	feats    feat
	// protos and services: what the variant serves; notServed says why a
	// protocol is refused.
	protos    []backends.Proto
	services  []backends.Service
	notServed map[backends.Proto]string
}

func (v *variant) has(f feat) bool { return v.feats&f != 0 }

// serves refuses what the variant does not serve, with the reason: New
// checks it too, so that no caller runs another path under its name.
func (v *variant) serves(proto backends.Proto, svc backends.Service) error {
	if why, ok := v.notServed[proto]; ok {
		return &backends.NotSupportedError{Feature: v.name + " over " + string(proto), Reason: why}
	}
	if !slices.Contains(v.protos, proto) || !slices.Contains(v.services, svc) {
		return &backends.NotSupportedError{Feature: fmt.Sprintf("%s %s over %s", v.name, svc, proto),
			Reason: fmt.Sprintf("it serves %v over %v", v.services, v.protos)}
	}
	return nil
}

const (
	deferFlags = abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN | abi.IORING_SETUP_SUBMIT_ALL
)

// variants is the ladder, from the naive port up. The trunk (basic to
// uring) adds one feature per rung; bundle, sqpoll and zc are each uring
// plus one feature (they cannot stack: SQPOLL excludes DEFER_TASKRUN and
// recv bundles, and a send bundle is not a zero-copy send).
var variants = []*variant{
	{
		name:    "uring-basic",
		summary: "the naive port: plain ring, one-shot accept, recv and send into each connection's own buffer, one SQE per operation, one enter waiting for one completion",
	},
	{
		name: "uring-pbuf", base: "uring-basic", adds: featPbuf,
		summary: "basic + a provided buffer ring: one-shot recv with buffer select, the echo sent from the buffer it arrived in",
	},
	{
		name: "uring-multishot", base: "uring-pbuf", adds: featMultishot,
		summary: "pbuf + multishot accept and multishot recv: one SQE serves every arrival",
	},
	{
		name: "uring-fixed", base: "uring-multishot", adds: featFixed,
		summary: "multishot + registered files: the ring fd registered, connections accepted into direct descriptors",
	},
	{
		name: "uring-defer", base: "uring-fixed", adds: featDefer,
		summary: "fixed + SINGLE_ISSUER|DEFER_TASKRUN: completion task work runs inside the loop's enter",
		flags:   deferFlags, optional: abi.IORING_SETUP_NO_SQARRAY,
	},
	{
		name: "uring", base: "uring-defer", adds: featMinWait,
		summary: "defer + adaptive min-wait batching (IORING_FEAT_MIN_TIMEOUT, 6.12; an older kernel runs it without, as uring-defer): the default, every feature of the ladder's trunk",
		flags:   deferFlags, optional: abi.IORING_SETUP_NO_SQARRAY,
	},
	{
		name: "uring-bundle", base: "uring", adds: featBundle,
		summary: "uring + bundles: one recv CQE for several buffers, one SEND for a connection's whole queue (needs IOU_PBUF_RING_INC; TCP echo and sink only)",
		flags:   deferFlags, optional: abi.IORING_SETUP_NO_SQARRAY,
		protos:   []backends.Proto{backends.TCP},
		services: []backends.Service{backends.Echo, backends.Sink},
		notServed: map[backends.Proto]string{backends.UDP: "a UDP socket has no byte stream to bundle: " +
			"each datagram is its own recv and send, so uring-bundle would run uring's path under another name"},
	},
	{
		name: "uring-sqpoll", base: "uring", adds: featSQPoll,
		summary: "uring + a kernel SQ polling thread (SQPOLL, without DEFER_TASKRUN, which it excludes): with sq_cpu on a core of its own the loop makes no syscall under load; " +
			"by default the SQ thread shares the loop's core (shared-core mode, counted in sq_shared_core_waits): fewer syscalls, more latency",
		flags:    abi.IORING_SETUP_SQPOLL | abi.IORING_SETUP_SQ_AFF | abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_SUBMIT_ALL,
		optional: abi.IORING_SETUP_NO_SQARRAY,
	},
	{
		name: "uring-zc", base: "uring", adds: featZC,
		summary: "uring + SEND_ZC from registered buffers (IORING_RECVSEND_FIXED_BUF) on every send path, sources included; buffers return at the notification; zc_copied counts the sends the kernel copied anyway",
		flags:   deferFlags, optional: abi.IORING_SETUP_NO_SQARRAY,
	},
}

func init() {
	byName := map[string]*variant{}
	for _, v := range variants {
		v.feats = v.adds
		if v.base != "" {
			b := byName[v.base]
			if b == nil {
				panic("uring: variant " + v.name + " is built on " + v.base + ", which is not registered before it")
			}
			v.feats |= b.feats
		}
		if v.has(featSQPoll) {
			v.feats &^= featDefer // SQPOLL's SQ thread runs the task work
		}
		byName[v.name] = v
		if v.protos == nil {
			v.protos = []backends.Proto{backends.TCP, backends.UDP}
		}
		if v.services == nil {
			v.services = []backends.Service{backends.Echo, backends.Sink, backends.Source}
		}
	}
	for _, v := range variants {
		v := v
		variantName := "default"
		if i := strings.IndexByte(v.name, '-'); i >= 0 {
			variantName = v.name[i+1:]
		}
		backends.Register(backends.Backend{
			Name:         v.name,
			Family:       "uring",
			Variant:      variantName,
			Summary:      v.summary,
			Protos:       v.protos,
			Services:     v.services,
			NotServed:    v.notServed,
			Probe:        v.probe,
			New:          func(cfg backends.Config) (backends.Server, error) { return newServer(v, cfg) },
			CheckOptions: checkOptions,
			ThreadCPUs:   v.threadCPUs(),
			// The ring counts its enters, the only syscall of every
			// variant's loop (SQPOLL's enters wake its SQ thread).
			DataPathSyscalls: []string{"io_uring_enter"},
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
	// batch and batchUs: with enough sources active and at least batchMin
	// requests expected within batchUs (see adaptiveBatching) a wait asks
	// for up to batch completions but holds out at most batchUs once one
	// is there. The kernel's min-wait (IORING_FEAT_MIN_TIMEOUT, 6.12) then
	// makes one enter serve what arrives in that window, for at most
	// batchUs of added latency.
	batch    uint32
	batchUs  int64 // -1: by variant and core sharing (sharedBatchUs or defaultBatchUs)
	batchMin int
	// rawEnter: waits are raw enters that bypass the runtime's syscall
	// bookkeeping (ring.Ring.RawEnter), so the runtime makes no syscall on
	// the loop's behalf (no sysmon retake of the P, no futex hand-off to
	// another M). The runtime then thinks the loop runs while it waits, so
	// a tick bounds how long it waits for the loop (see rawWait). By
	// default on when every loop can keep a P with one left for the rest
	// of the process, counting other servers' raw loops (preempt.Hold;
	// ringbench serve runs GOMAXPROCS = loops + 1); raw_enter=1 forces it,
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
	optEntries  = "sq_entries" // SQ ring size: a power of two up to 32768 (CQ is 8x, clamped to the kernel's limit)
	optBatch    = "batch"      // completions one wait asks for (default 16)
	optBatchUs  = "batch_us"   // how long a wait holds out for them, µs (default 50, sqpoll sharing a CPU 500; 0 wakes per completion)
	optBatchMin = "batch_min"  // requests expected within batch_us before a wait min-waits (default 4; 0: whenever enough sources are active)
	optRawEnter = "raw_enter"  // 1: waits are raw enters; 0: through the runtime (default: raw while a P is left for the rest of the process)
)

// optionMax bounds each numeric option: far above any useful setting, and
// low enough that the loop's arithmetic on it (µs to ns, the uint32 fields
// of io_uring_params and of a wait) cannot overflow.
var optionMax = map[string]int{
	optSpinUs:   1_000_000, // 1 s
	optSqIdle:   60_000,    // 1 min
	optSqCPU:    1 << 16,   // and a CPU that exists: checkOptions
	optBufSize:  1 << 20,
	optBufCount: 1 << 15,
	optEntries:  1 << 15,
	optBatch:    1 << 16,
	optBatchUs:  1_000_000, // 1 s
	optBatchMin: 1 << 20,
	optRawEnter: 1,
}

// checkOptions is the registry's CheckOptions: the plan's own parser, and
// that sq_cpu names a CPU of this machine (the kernel's refusal is a bare
// EINVAL). It runs in the harness's process, where every CPU is visible;
// the server's are pinned.
func checkOptions(opts map[string]string) error {
	var p plan
	if err := p.options(opts); err != nil {
		return err
	}
	if _, ok := opts[optSqCPU]; ok {
		if _, err := os.Stat(fmt.Sprintf("/sys/devices/system/cpu/cpu%d", p.sqCPU)); err != nil {
			return fmt.Errorf("check option %s=%d: CPU %d does not exist on this machine", optSqCPU, p.sqCPU, p.sqCPU)
		}
	}
	return nil
}

// threadCPUs is the registry's ThreadCPUs: an SQPOLL variant's sq_cpu,
// where its SQ thread polls (without it the thread shares the loop's
// core). Other variants have no thread of their own to pin.
func (v *variant) threadCPUs() func(map[string]string) []int {
	if !v.has(featSQPoll) {
		return nil
	}
	return sqThreadCPUs
}

func sqThreadCPUs(opts map[string]string) []int {
	var p plan
	if _, ok := opts[optSqCPU]; !ok || p.options(opts) != nil {
		return nil
	}
	return []int{p.sqCPU}
}

func newPlan(v *variant, cfg backends.Config) (*plan, error) {
	k, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	p := &plan{v: v, proto: cfg.Proto, service: cfg.Service, addr: k.Addr, maxDatagram: cfg.MaxDatagram(), msgSize: k.MsgSize,
		spinNs: -1, sqIdleMs: -1, sqCPU: -1, ringSize: 1024, batch: 16, batchUs: -1, batchMin: defaultBatchMin}
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

// powerOfTwo refuses an option k=n that is not a power of two (its bound
// is optionMax's).
func powerOfTwo(k string, n int) error {
	if n == 0 || n&(n-1) != 0 {
		return fmt.Errorf("check option %s=%d: want a power of two up to %d", k, n, optionMax[k])
	}
	return nil
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
		if m, ok := optionMax[k]; ok && n > m {
			return fmt.Errorf("check option %s=%d: want at most %d", k, n, m)
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
			if err := powerOfTwo(k, n); err != nil {
				return err
			}
			p.bufCount = n
		case optBatch:
			p.batch = uint32(n)
		case optBatchUs:
			p.batchUs = int64(n)
		case optBatchMin:
			p.batchMin = n
		case optRawEnter:
			p.rawEnter, p.rawForced = n != 0, true
		case optEntries:
			// Refused, not rounded up or clamped as the kernel would: the
			// record must name the ring that was measured.
			if err := powerOfTwo(k, n); err != nil {
				return err
			}
			p.ringSize = uint32(n)
		default:
			return fmt.Errorf("check config: unknown option %q (known: %s)", k, strings.Join([]string{
				optSpinUs, optSqIdle, optSqCPU, optBufSize, optBufCount, optEntries, optBatch, optBatchUs, optBatchMin, optRawEnter}, ", "))
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
	rawPs     int // Ps its raw-waiting loops hold (preempt.Hold)
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
	if err := v.serves(cfg.Proto, cfg.Service); err != nil {
		return nil, err
	}
	p, err := newPlan(v, cfg)
	if err != nil {
		return nil, err
	}
	cpus := cfg.LoopCPUs()
	s := &Server{port: cfg.Port}
	// A raw wait keeps its P: with no P to spare, goroutines queued behind
	// a waiting loop would wait out a tick each time.
	if !p.rawForced || p.rawEnter {
		if p.rawEnter = preempt.Hold(len(cpus), p.rawForced); p.rawEnter {
			s.rawPs = len(cpus)
		}
	}
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
		preempt.Release(s.rawPs)
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
