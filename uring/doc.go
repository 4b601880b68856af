// Package uring is ringbench's raw io_uring backend: no cgo, no liburing,
// only io_uring_setup/enter/register through golang.org/x/sys/unix and the
// ring memory shared with the kernel (uring/internal/ring, uring/internal/abi).
//
// The variants are a ladder: each rung is the one below plus one feature,
// so that a report of them at one rate shows what each feature buys
// (backend.go's variants table; TestLadderSteps and TestLadderSetup check
// it):
//
//   - uring-basic: the naive port. A plain ring, one-shot accept, recv
//     and send into each connection's own buffer (UDP: 64 one-shot
//     recvmsg slots), one SQE per operation, every wait for one completion.
//   - uring-pbuf: + a provided buffer ring. Recv with buffer select, still
//     one-shot; the echo goes out of the buffer it arrived in, a
//     connection's queued buffers in one SEND or gathered SENDMSG.
//   - uring-multishot: + multishot accept and recv (UDP: one multishot
//     recvmsg): one SQE serves every arrival.
//   - uring-fixed: + registered files: the ring fd registered, connections
//     accepted into direct descriptors.
//   - uring-defer: + SINGLE_ISSUER|DEFER_TASKRUN: completion task work
//     runs inside the loop's own enter.
//   - uring: + adaptive min-wait batching (IORING_FEAT_MIN_TIMEOUT), used
//     only while the request rate fills a batch within batch_us (below
//     that its timer costs more than it saves: see adaptiveBatching): the
//     default, the whole trunk.
//
// Three branches each add one feature to uring; they do not stack (SQPOLL
// excludes DEFER_TASKRUN and recv bundles; a send bundle is no zero-copy
// send):
//
//   - uring-bundle: + recv and send bundles. TCP echo and sink only (a
//     datagram has nothing to bundle; a source sends one large chunk per
//     SEND); it refuses a kernel without IOU_PBUF_RING_INC rather than
//     send some other way.
//   - uring-sqpoll: + a kernel SQ polling thread, in place of
//     DEFER_TASKRUN. With sq_cpu on a core of its own the loop spins on the
//     CQ and makes no syscalls under load; by default the SQ thread shares
//     the loop's core, a mode its counters name (sq_shared_core_waits).
//   - uring-zc: + SEND_ZC from registered buffers (IORING_RECVSEND_FIXED_BUF)
//     on every send path, echo and source, TCP and UDP; zc_copied says how
//     many sends the kernel copied anyway (every send to a socket of this
//     host, over loopback or veth: the receiving socket must own its pages).
//
// One path is the same on every rung with a provided buffer ring: a
// connection over its queue cap (a peer that does not read its echoes)
// spills what a multishot burst brought over the cap into its own memory,
// gives the buffers back at once and sends the spill with a plain SEND
// after its queue; spilled_bytes counts it.
//
// Data flow:
//
//  1. New binds one listening (TCP) or bound (UDP) socket per loop with
//     SO_REUSEPORT, then starts one goroutine per Config.CPUs entry; each
//     locks its OS thread and pins it BEFORE io_uring_setup, because a
//     SINGLE_ISSUER|DEFER_TASKRUN ring accepts enters only from that thread.
//  2. The loop sets up its ring and registers what its rung uses (the ring
//     fd, a sparse direct-descriptor table, a provided-buffer ring, fixed
//     buffers), chooses its data paths (tcpPath or udpPath, tcpSource) and
//     arms accept (TCP) or its receives (UDP) and a poll on its stop
//     eventfd.
//  3. Each iteration reaps every CQE through the variant's data path,
//     chosen once at setup, so no per-packet function asks which variant
//     it serves: recv -> queue the buffer on its connection (at the
//     per-connection cap, cancel the recv until the queue drains; spill
//     what a burst brought over it) and send the whole queue if no send is
//     in flight; send -> drop what went out, send the rest. It then publishes the
//     recycled buffers with one store, re-arms as many starved receives as
//     there are free buffers (recv_enobufs counts the receives the ring ran
//     dry for, starved_rearms their re-arms), publishes its counters, and makes one
//     io_uring_enter that submits the batch and waits for the next, as
//     chosen at setup (loop.chooseWaits; raw_waits and runtime_waits
//     count which kind it made): a raw
//     enter with no timeout, so the kernel arms no timer for it (min-wait
//     batched, on the rungs that have it, only when more than a handful of
//     sources are active); a multishot timeout ticks every 10 ms so that
//     the runtime can stop an idle loop (see rawWait).
//  4. Close writes each loop's eventfd; the loop sees the poll completion,
//     closes its ring (the kernel cancels what is in flight and drops the
//     direct descriptors), its socket and eventfd, and returns.
//
// Per connection state lives in a slice indexed by direct-descriptor slot;
// an SQE's user_data carries (op, generation, buffer id, slot), so the data
// path allocates nothing and looks nothing up in a map.
package uring
