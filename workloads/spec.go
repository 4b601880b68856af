package workloads

import (
	"net/netip"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"ringbench/backends"
)

// Kind is a workload.
type Kind string

// Workloads.
const (
	// Echo is request/response: Depth requests of Size bytes in flight per
	// connection; every reply is verified byte for byte.
	Echo Kind = "echo"
	// Stream is one-way bulk: Size-byte messages to a sink (Direction Up) or
	// from a source (Direction Down), as fast as they go or at Rate messages/s.
	Stream Kind = "stream"
)

// Direction of a stream.
type Direction string

// Stream directions.
const (
	Up   Direction = "up"   // client sends, the server sinks
	Down Direction = "down" // the server sources, the client receives and verifies
)

// Arrival is the open-loop arrival process.
type Arrival string

// Arrival processes.
const (
	Constant Arrival = "constant"
	Poisson  Arrival = "poisson"
)

// Spec is one load to generate.
type Spec struct {
	Workload  Kind
	Direction Direction // stream only; default Up
	Proto     backends.Proto
	Conns     int // connections (UDP: connected sockets, each its own source port)
	Depth     int // echo: requests in flight per connection
	Size      int // message size in bytes
	// Rate > 0 makes the load open loop at Rate ops/s (requests for echo,
	// messages for stream); 0 is closed loop, as fast as it goes.
	Rate    float64
	Arrival Arrival
	Warmup  time.Duration
	// Duration of the measurement window.
	Duration time.Duration
	// Timeout: a request unanswered this long after it was actually sent
	// (not its intended time) counts as lost and frees its slot (UDP), or
	// closes the connection, its requests in flight counting as timed out
	// (TCP: a byte stream cannot skip a reply). Default 1s.
	Timeout time.Duration
	// CPUs the generator's loops run on, one loop per CPU, each on a locked
	// OS thread pinned to its CPU. Empty means one unpinned loop.
	CPUs []int
}

// Target is where the load goes.
type Target struct {
	Addr netip.AddrPort
	// Netns is the path of the network namespace the client's sockets are
	// made in (/run/netns/NAME); empty means the caller's namespace.
	Netns string
}

// Hooks lets the caller read its meters at the window's edges. WindowStart
// runs just before the generator zeroes its counters, WindowEnd just after it
// takes their final values; both run synchronously, so a slow hook delays
// the window rather than blurring it.
type Hooks struct {
	WindowStart func()
	WindowEnd   func()
}

// Report is what the generator measured in the window.
type Report struct {
	Window time.Duration // measured length of the window
	Ops    uint64        // completed requests (echo) or messages (stream)
	Bytes  uint64        // payload bytes verified (echo, stream down) or sent (stream up)
	Sent   uint64        // requests or messages sent in the window
	// Latency in nanoseconds, from the intended send time in open loop.
	Latency *hdrhistogram.Histogram
	Errors  Errors
	// ClientCPU is the CPU time of the generator's loop threads in the
	// window; ClientBusy is that time over the window and the loop count.
	ClientCPU  time.Duration
	ClientBusy float64
	// Late counts open-loop requests sent more than a millisecond after their
	// intended time: the generator fell behind, or the request waited for a
	// free slot behind a server slower than the schedule.
	Late uint64
}

// Errors seen by the generator.
type Errors struct {
	Mismatch uint64 `json:"mismatch"` // reply bytes differ from what was sent
	Reset    uint64 `json:"reset"`    // connection reset or refused
	Timeout  uint64 `json:"timeout"`  // TCP request unanswered within Timeout
	Lost     uint64 `json:"lost"`     // UDP request unanswered within Timeout
}

// Total is the sum of all errors.
func (e Errors) Total() uint64 { return e.Mismatch + e.Reset + e.Timeout + e.Lost }
