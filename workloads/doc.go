// Package workloads is ringbench's load generator: the client side of every
// trial. It drives echo (request/response, Depth requests in flight per
// connection) and stream (one-way bulk, up to a sink or down from a source)
// over TCP and UDP, closed loop or open loop at a target rate, and verifies
// every byte it gets back. It uses non-blocking sockets and epoll through
// golang.org/x/sys/unix, not Go's net package, so its cost per operation is
// close to the servers' and it is rarely the bottleneck.
//
// Data flow of Run:
//  1. Validate the Spec and fill its defaults.
//  2. Dial: create Conns non-blocking sockets (inside Target.Netns when set,
//     see internal/netns) and wait until every TCP connect completes.
//  3. Spread the connections over one event loop per Spec.CPUs entry; each
//     loop owns an epoll instance, a timerfd (open loop) and a latency
//     histogram, and runs on a locked OS thread pinned to its CPU.
//  4. The loops run the workload: closed loop refills each connection's
//     Depth slots as replies come back; open loop follows its share of a
//     global schedule of intended send times (a timerfd wakes the loop),
//     queueing a request whose connection is full so latency counts from
//     the intended time. A connection's queue holds at most maxBacklog
//     requests: one due while every queue of its loop is full is skipped
//     and counted as Unsent (all such requests in one step, however many),
//     so a generator that falls behind keeps bounded memory and keeps
//     seeing the stop flag. TCP requests due together go out in one write;
//     UDP datagrams in one sendmmsg, replies come in by recvmmsg.
//     Every echoed reply is compared with what was sent (TCP: reassembled
//     from the stream in order; UDP: matched by the identity it carries).
//     A stream down checks every byte against the source pattern
//     (backends.FillSource). A stream up's bytes are counted as the
//     kernel accepts them from the send calls: a sink answers nothing, so
//     they are sent, not verified.
//  5. After Spec.Warmup, Run calls Hooks.WindowStart and publishes the
//     window's start; after Spec.Duration it publishes the end and calls
//     Hooks.WindowEnd; Report.Window is end − start. A request belongs to
//     the window when its send time is in [start, end): the intended time
//     in open loop, the actual one in closed loop (a stream down, which
//     sends nothing, counts a message by its arrival). Ops, bytes, Sent,
//     errors and latency all count the window's requests only, so all
//     loops agree on its edges without locks.
//  6. Drain: after the end nothing is sent (the server's meters have been
//     read): an open loop's requests still queued count as Unsent. The
//     loops keep reading until none of their requests in flight is
//     pending, or for min(Spec.Timeout, 200 ms), so that requests sent
//     before the end get their answer.
//  7. A request is given up when its Timeout passes (counted from its
//     actual send), or its TCP connection times out (the byte stream cannot
//     skip a reply: every request in flight or queued on it times out and
//     the connection is closed as dead), or when the drain ends. A given-up
//     request of the window counts as Lost (UDP) or Timeout (TCP) and is
//     recorded in the latency histogram at the time it had waited
//     (Report.Censored counts these). A correct UDP reply that comes after its request
//     was given up counts as a LateReply, not a mismatch.
//  8. Run stops the loops, closes every descriptor, merges their counters
//     and histograms, and adds the loop threads' CPU time in the window.
package workloads
