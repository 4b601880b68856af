// Package uring is ringbench's raw io_uring backend: no cgo, no liburing,
// only io_uring_setup/enter/register through golang.org/x/sys/unix and the
// ring memory shared with the kernel (uring/internal/ring, uring/internal/abi).
//
// Variants, each registered by name: "uring" (SINGLE_ISSUER|DEFER_TASKRUN,
// multishot accept into direct descriptors, multishot recv into a provided
// buffer ring, echo sent straight from the received buffer, every queued
// buffer of a connection in one SEND or gathered SENDMSG, one enter per
// loop iteration that submits and waits), "uring-sqpoll" (a kernel SQ thread
// submits; with a CPU of its own the loop spins on the CQ and makes no
// syscalls under load, sharing the loop's CPU it sleeps in batched waits),
// "uring-zc" (SEND_ZC/SENDMSG_ZC; buffers recycled at the notification),
// "uring-bundle" (recv bundles: one CQE for several buffers; send bundles:
// each connection's queue mirrored in its own incrementally consumed buffer
// group, one SEND for all of it) and "uring-basic" (one-shot accept, recv
// and send with per-connection buffers: the naive port).
//
// Data flow:
//
//  1. New binds one listening (TCP) or bound (UDP) socket per loop with
//     SO_REUSEPORT, then starts one goroutine per Config.CPUs entry; each
//     locks its OS thread and pins it BEFORE io_uring_setup, because a
//     SINGLE_ISSUER|DEFER_TASKRUN ring accepts enters only from that thread.
//  2. The loop sets up its ring, registers the ring fd, a sparse
//     direct-descriptor table and a provided-buffer ring, arms multishot
//     accept (TCP) or multishot recvmsg (UDP) and a poll on its stop eventfd.
//  3. Each iteration reaps every CQE through the variant's data path,
//     chosen once at setup (tcpPath, udpPath): recv -> queue the buffer on
//     its connection (at the per-connection cap, cancel the recv until the
//     queue drains) and send the whole queue if no send is in flight;
//     send -> drop what went out, send the rest. It then publishes the
//     recycled buffers with one store, re-arms as many starved receives as
//     there are free buffers, publishes its counters, and makes one
//     io_uring_enter that submits the batch and waits for the next: a raw
//     enter bounded at a millisecond, min-wait batched only when more than
//     a handful of sources are active; an idle loop then sleeps through
//     the runtime until something arrives.
//  4. Close writes each loop's eventfd; the loop sees the poll completion,
//     closes its ring (the kernel cancels what is in flight and drops the
//     direct descriptors), its socket and eventfd, and returns.
//
// Per connection state lives in a slice indexed by direct-descriptor slot;
// an SQE's user_data carries (op, generation, buffer id, slot), so the data
// path allocates nothing and looks nothing up in a map.
package uring
