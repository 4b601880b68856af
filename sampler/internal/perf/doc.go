// Package perf is the sampler's kernel side: the one place that calls
// perf_event_open, maps its ring buffers and reads them (so the one place
// with unsafe and raw syscalls), and decodes the records it copies out.
//
// Data flow:
//
//  1. OpenCPU opens a sampling event on one CPU (pid -1: every task that
//     runs there, the idle task included), disabled, and maps its ring: one
//     metadata page and a power-of-two data area the kernel writes records
//     into.
//  2. Enable and Disable are one ioctl each: the cheap edges of a window.
//  3. Drain copies what the kernel wrote since the last drain out of the
//     ring and hands the space back (data_tail), so a reader that drains
//     more often than the ring fills loses nothing; what the kernel could not
//     write it reports in PERF_RECORD_LOST records.
//  4. Decode walks the copied bytes record by record (pure Go, no unsafe):
//     samples with their call chains, and the lost and throttle counts.
package perf
