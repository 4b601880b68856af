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

// Report is what the generator measured in the window. Every count is of
// the window's requests (echo) or messages (stream): those whose send time
// falls in [start, end) of the window, the intended send time in open loop
// and the actual one in closed loop; their answers are collected wherever
// they arrive, the window's end included (see the drain in the package
// doc). A stream down, where the generator sends nothing, counts messages
// by their arrival instead.
type Report struct {
	Window time.Duration // measured length of the window: its end − its start
	Ops    uint64        // requests answered with a verified reply (echo), messages received and verified (stream down) or sent (stream up)
	// Bytes: payload bytes verified (echo, stream down), or accepted by the
	// kernel's send calls (stream up: a sink reports nothing back, so these
	// bytes are sent, not verified).
	Bytes uint64
	Sent  uint64 // the window's requests or messages that were sent
	// Latency in nanoseconds, from the intended send time in open loop, of
	// every answered request and, at the time they had waited when given
	// up, of every lost or timed-out one (see Censored).
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
	// Behind counts the Late requests that the generator's loop itself saw
	// over a millisecond after their intended time: its thread did not run
	// (the generator, the harness beside it or the machine held it up).
	// The rest of Late waited for a free slot behind the server.
	Behind uint64
	// Censored counts the requests recorded in Latency not at a reply but
	// when they were given up: Errors.Lost and Errors.Timeout, each recorded
	// at the time it had waited (at least Timeout for one that expired,
	// less for one still unanswered when the drain ended). Their true
	// latency is at least the value recorded.
	Censored uint64
	// LateReplies counts correct replies that came after their request
	// had been given up as lost (UDP echo). Such a request is counted once
	// in Errors.Lost and once here, never in Ops or Errors.Mismatch.
	LateReplies uint64
	// Unsent counts open-loop requests or messages of the window that were
	// never sent: due while every backlog of their loop's connections was
	// full (maxBacklog queued), or still queued when the window ended. The
	// load asked for was not offered: the generator could not keep up, or
	// the server's slots stayed full. They are not in Sent or Latency.
	Unsent uint64
	// Polls and IdlePolls are a polling generator's (DPDK's) loop passes
	// in the window and those that found nothing to receive or send: its
	// core is always busy, so its slack is its idle polls.
	Polls, IdlePolls uint64
}

// Errors seen by the generator.
type Errors struct {
	Mismatch uint64 `json:"mismatch"` // reply bytes differ from what was sent, or a reply to no request
	Reset    uint64 `json:"reset"`    // connection reset or refused
	// Timeout: TCP request unanswered within Timeout, or given up with the
	// connection of such a request (queued or in flight behind it), or
	// unanswered when the drain after the window ended.
	Timeout uint64 `json:"timeout"`
	// Lost: UDP request unanswered within Timeout, or when the drain after
	// the window ended.
	Lost uint64 `json:"lost"`
}

// Total is the sum of all errors.
func (e Errors) Total() uint64 { return e.Mismatch + e.Reset + e.Timeout + e.Lost }
