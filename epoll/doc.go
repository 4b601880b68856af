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
//     its CPU, and waits in epoll_wait on a fixed event array.
//  3. TCP: the loop accepts until EAGAIN, then serves each connection from
//     its own buffer: echo reads and writes the bytes back (while output is
//     pending it stops reading, so a slow reader bounds the memory it costs),
//     sink reads and discards, source writes the FillSource pattern.
//     UDP: the loop receives batches with recvmmsg, drops oversize
//     datagrams, and echoes the rest with one sendmmsg (or sinks them, or
//     sources FillSourceDatagram datagrams to the peers that wrote to it).
//  4. Every syscall and byte is counted in loop-owned plain counters that
//     the loop publishes to atomics once per epoll_wait; Counters sums them.
//  5. Close writes each loop's eventfd, joins the loops, then closes every
//     connection, socket, epoll and eventfd they held.
package epoll
