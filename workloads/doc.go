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
//     the intended time. TCP requests due together go out in one write;
//     UDP datagrams in one sendmmsg, replies come in by recvmmsg.
//     Every reply is compared with what was sent (TCP: reassembled from the
//     stream in order; UDP: matched by the identity it carries).
//  5. After Spec.Warmup, Run calls Hooks.WindowStart and publishes the
//     window's start; after Spec.Duration it publishes the end and calls
//     Hooks.WindowEnd. A loop counts an operation when it completes inside
//     the window, so all loops agree on its edges without locks.
//  6. Run stops the loops, closes every descriptor, merges their counters
//     and histograms, and adds the loop threads' CPU time in the window.
package workloads
