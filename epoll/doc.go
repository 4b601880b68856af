// Package epoll is ringbench's syscall backend, registered as "epoll": one
// edge-triggered epoll event loop per server CPU over non-blocking sockets,
// on golang.org/x/sys/unix alone (no net package, no runtime netpoller).
//
// Data flow:
//
//  1. New binds one listening TCP socket, or one UDP socket, per loop
//     (SO_REUSEPORT when there are several, so the kernel spreads flows
//     across them), an epoll instance and an eventfd for each loop.
//  2. Each loop runs on its own goroutine locked to an OS thread pinned to
//     its CPU, and waits in epoll_wait on a fixed event array: raw (no
//     runtime bookkeeping) and without a timeout, so the kernel arms no
//     timer for it; a timerfd ticks every 10 ms so that the runtime can
//     stop an idle loop (see loop.wait).
//  3. TCP: the loop accepts until EAGAIN, then serves each connection from
//     its own buffer: echo reads and writes the bytes back (while output is
//     pending it stops reading, so a slow reader bounds the memory it costs),
//     sink reads and discards, source writes the FillSource pattern.
//     UDP: the loop receives batches with recvmmsg, drops oversize
//     datagrams, and echoes the rest with one sendmmsg (or sinks them, or
//     sources FillSourceDatagram datagrams to the peers that wrote to it).
//  4. Every syscall and byte is counted in loop-owned plain counters that
//     the loop publishes to atomics once per epoll_wait; Counters sums them,
//     with the waits that were raw and those made through the runtime
//     (Extra "raw_waits" and "runtime_waits").
//  5. Close writes each loop's eventfd, joins the loops, then closes every
//     connection, socket, epoll and eventfd they held.
//
// The same loops serve a second backend, "burn" (NewBurn): the meters'
// ground truth, not a path to compare. It is an echo that spins
// Config.Options["cycles"] = N TSC cycles (internal/tsc.Spin) per request,
// after reading the request and before echoing it, so that running it at
// one rate with two values of N must move the measured cycles per op by
// exactly their difference. What an echo does with a request is the
// server's echoWork, chosen once by its constructor: epoll's does nothing,
// burn's spins; the per-packet functions never ask which one they serve.
//
// A request, as burn counts it:
//
//   - UDP: one datagram echoed (an oversize one is dropped, not spun for).
//   - TCP: Config.MsgSize bytes of the stream (backends.DefaultMsgSize when
//     0), the size of the workload's messages. TCP keeps no message
//     boundaries, so each connection remembers how many bytes of an
//     unfinished request it has read: a request split across reads is spun
//     for once, when its last byte arrives; a read that completes k requests
//     spins k×N in one spin, then echoes the whole read at once. The bytes
//     of a request still unfinished when the peer closes cost nothing.
//
// burn counts in Counters.Extra: "burn_requests", the requests spun for,
// and "burn_cycles", the TSC cycles the spins took as the counter measured
// them (at least N per request; each spin overshoots by one counter read).
// It serves echo only (sink and source have no requests) and the cycles
// option only; N is at most 2^32 (a loop cannot see Close mid-spin).
package epoll
