package backends

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Proto is a transport protocol.
type Proto string

// Protocols a backend may serve.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// Service is what a server does with the bytes it receives.
type Service string

// Services. Echo returns every byte it receives (TCP: a byte stream echo, so
// any echo server is a valid peer; UDP: each datagram back to its sender).
// Sink reads and discards. Source sends without being asked: TCP, a stream of
// SourceByte pattern on every accepted connection; UDP, datagrams of MsgSize
// bytes (see FillSourceDatagram) to every peer that sent it a datagram.
const (
	Echo   Service = "echo"
	Sink   Service = "sink"
	Source Service = "source"
)

// Protocol limits.
const (
	// MaxUDPPayload is the largest UDP payload on a 1500-byte MTU without
	// fragmentation (1500 - 20 IPv4 - 8 UDP).
	MaxUDPPayload = 1472
	// MaxTCPMessage is the largest message the workloads send over TCP.
	MaxTCPMessage = 64 << 10
)

// Config is what a server is started with.
type Config struct {
	Proto   Proto
	Service Service
	// Host is the IPv4 address to listen on ("127.0.0.1", "10.203.0.1").
	// Empty means all addresses.
	Host string
	// Port to listen on; 0 lets the kernel pick one, reported by Server.Port.
	Port int
	// CPUs: one event loop per CPU, each on a locked OS thread pinned to its
	// CPU. Empty means one unpinned loop.
	CPUs []int
	// MsgSize is the size of each message a source sends; echo and sink
	// servers may use it as a hint for buffer sizes.
	MsgSize int
	// MaxMsg is the largest UDP datagram accepted; a larger one is dropped
	// and counted in Counters.Dropped. 0 means MaxUDPPayload.
	MaxMsg int
	// Iface names the network interface a kernel-bypass backend drives (the
	// server's veth end); kernel backends ignore it.
	Iface string
	// Options carries backend-specific settings ("key" -> "value"), such as
	// DPDK's EAL arguments. Unknown keys are an error.
	Options map[string]string
}

// LoopCPUs lists the CPU of each event loop to start: CPUs, or one
// unpinned loop (-1) when CPUs is empty.
func (c Config) LoopCPUs() []int {
	if len(c.CPUs) == 0 {
		return []int{-1}
	}
	return c.CPUs
}

// MaxDatagram returns the configured UDP size limit.
func (c Config) MaxDatagram() int {
	if c.MaxMsg > 0 {
		return c.MaxMsg
	}
	return MaxUDPPayload
}

// Counters is a snapshot of what a running server counted since it started.
// Every field is cumulative; consumers take differences between snapshots.
type Counters struct {
	// Syscalls the server issued itself on its data path (an io_uring_enter
	// is one; a DPDK poll is none).
	Syscalls uint64 `json:"syscalls"`
	// Accepted and Closed connections (TCP).
	Accepted uint64 `json:"accepted"`
	Closed   uint64 `json:"closed"`
	// Bytes and messages (reads or datagrams) received and sent.
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
	RxMsgs  uint64 `json:"rx_msgs"`
	TxMsgs  uint64 `json:"tx_msgs"`
	// Dropped counts malformed or oversize input that was discarded.
	Dropped uint64 `json:"dropped"`
	// Errors counts connection errors (resets, failed sends).
	Errors uint64 `json:"errors"`
	// Extra holds backend-specific counters, such as "zc_copied" (io_uring
	// zero-copy sends the kernel copied anyway) or "busy_cycles" (DPDK).
	Extra map[string]uint64 `json:"extra,omitempty"`
}

// Server is a running backend.
type Server interface {
	// Port is the port the server listens on.
	Port() int
	// Counters returns a snapshot; it is safe to call from any goroutine.
	Counters() Counters
	// Close stops every loop and frees every resource the server made. It
	// returns the first error a loop failed with, if any.
	Close() error
}

// Backend describes one registered server implementation.
type Backend struct {
	// Name is the registry name: Family alone for the default variant,
	// else Family-Variant ("uring-sqpoll").
	Name    string
	Family  string
	Variant string
	// Summary says in one line what this variant does.
	Summary  string
	Protos   []Proto
	Services []Service
	// NotServed says why a protocol is not served ("no kernel TCP stack");
	// tables show it in place of a figure.
	NotServed map[Proto]string
	// Probe reports whether this machine can run the backend; a missing
	// feature is an error that matches ErrNotSupported.
	Probe func() error
	// New starts a server.
	New func(Config) (Server, error)
	// CheckOptions checks Config.Options as New will, before anything
	// starts: the commands call it when they parse their flags and
	// profiles, so a bad option is a one-line error rather than a failed
	// trial. It is the backend's own option parser, not a copy of its
	// rules. Nil: the options are checked only when the server starts.
	CheckOptions func(map[string]string) error
	// ThreadCPUs lists the CPUs the options pin threads of the server to
	// beyond its loops' cores (uring-sqpoll's sq_cpu: the SQ thread). The
	// server's cost includes them: the harness meters them as server
	// cores, or flags the trial where one is the generator's. Nil: none.
	ThreadCPUs func(map[string]string) []int
	// Command is set for a backend that is a program of its own rather
	// than Go code in this binary (the C baselines): the command line that
	// starts it serving cfg. The program speaks the line protocol of
	// `ringbench serve` on its stdin and stdout, so the harness starts it
	// in place of a serve process and reads its counters the same way.
	// Nil for the built-in backends.
	Command func(cfg Config) ([]string, error)
	// DataPathSyscalls names the syscalls that Counters.Syscalls counts,
	// as the kernel's syscall table spells them ("recvmmsg",
	// "io_uring_enter"); a name absent on an architecture is never made
	// there and harmless. The harness sets them apart in the outside count
	// (the raw_syscalls tracepoint, by name): what the count holds beyond
	// them (the Go runtime's futex and nanosleep, a PMD's sendto) is not
	// the backend's data path. It is a fact of the backend's code, so it
	// lives here rather than in a table keyed by family elsewhere, and it
	// is read in the harness's own process: the server is not asked. Nil
	// for a backend whose own loop makes none (DPDK).
	DataPathSyscalls []string
	// BaselineOf names the Go backend whose kernel path this backend
	// serves without Go ("epoll" for c-epoll): its figures belong beside
	// that backend's, as what the path costs without the Go runtime.
	BaselineOf string
}

// Supports reports whether the backend serves proto and service, and if not,
// why.
func (b Backend) Supports(p Proto, s Service) error {
	if !contains(b.Protos, p) {
		if why, ok := b.NotServed[p]; ok {
			return &NotSupportedError{Feature: fmt.Sprintf("%s over %s", b.Name, p), Reason: why}
		}
		return fmt.Errorf("%s does not serve %s (it serves %s): %w", b.Name, p, join(b.Protos), ErrNotSupported)
	}
	if !contains(b.Services, s) {
		return fmt.Errorf("%s does not serve %s (it serves %s): %w", b.Name, s, join(b.Services), ErrNotSupported)
	}
	return nil
}

var (
	mu       sync.Mutex
	registry = map[string]Backend{}
)

// Register adds b to the registry. It panics on a duplicate or incomplete
// entry: that is a programming error found at init.
func Register(b Backend) {
	mu.Lock()
	defer mu.Unlock()
	if b.Name == "" || b.Family == "" || b.New == nil {
		panic("backends: Register needs Name, Family and New")
	}
	if b.Variant == "" {
		b.Variant = "default"
	}
	if b.Probe == nil {
		b.Probe = func() error { return nil }
	}
	if _, dup := registry[b.Name]; dup {
		panic("backends: duplicate backend " + b.Name)
	}
	registry[b.Name] = b
}

// Lookup returns the backend registered as name.
func Lookup(name string) (Backend, error) {
	mu.Lock()
	defer mu.Unlock()
	b, ok := registry[name]
	if !ok {
		return Backend{}, fmt.Errorf("unknown backend %q (known: %s)", name, strings.Join(namesLocked(), ", "))
	}
	return b, nil
}

// All returns every registered backend, sorted by name.
func All() []Backend {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Backend, 0, len(registry))
	for _, n := range namesLocked() {
		out = append(out, registry[n])
	}
	return out
}

func namesLocked() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrNotSupported is matched (errors.Is) by every error that says this
// machine, kernel or build lacks what a backend or meter needs.
var ErrNotSupported = errors.New("not supported")

// NotSupportedError names a missing feature and, where known, the kernel
// version that brought it.
type NotSupportedError struct {
	Feature   string // "IORING_OP_RECV multishot"
	MinKernel string // "6.0"; empty when not a kernel matter
	Reason    string // what was observed: "probe: opcode unsupported"
}

func (e *NotSupportedError) Error() string {
	s := e.Feature + " not supported"
	if e.MinKernel != "" {
		s += " (needs Linux " + e.MinKernel + ")"
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func join[T ~string](s []T) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, ", ")
}
