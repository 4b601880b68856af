// Package ring drives one io_uring instance through raw syscalls: setup, the
// shared-memory rings, io_uring_enter and io_uring_register, and provided
// buffer rings. It knows nothing of sockets or servers.
//
// Data flow:
//
//  1. Setup calls io_uring_setup with the caller's flags and maps the SQ and
//     CQ rings (one mapping when the kernel offers IORING_FEAT_SINGLE_MMAP)
//     and the SQE array.
//  2. The caller takes SQEs with GetSQE and fills them; nothing is visible to
//     the kernel until Flush publishes the local SQ tail with a release store.
//  3. Enter (or Submit/SubmitAndWait) calls io_uring_enter once to submit
//     what was flushed and, with GETEVENTS, to wait for completions; every
//     enter is counted in Enters.
//  4. The caller reads completions between CQHead and CQTail (an acquire
//     load) and hands the slots back with CQAdvance (a release store).
//  5. BufRing registers a provided-buffer ring with its buffers; the caller
//     recycles buffers into it and publishes the tail once per batch.
//  6. Close unmaps every mapping and closes the ring fd.
//
// The ring is not safe for concurrent use: one goroutine, on one locked OS
// thread when the ring is IORING_SETUP_SINGLE_ISSUER, owns it.
package ring
