// Package backends defines the one contract every ringbench server implements
// and the registry that names them.
//
// Data flow:
//
//  1. Each backend package (epoll, uring, dpdk) calls Register in its init
//     function with a Backend: its registry name ("epoll", "uring-sqpoll", ...),
//     what it serves, a Probe that says whether this machine can run it, and
//     New, which starts it.
//  2. The harness (or a test) calls Lookup(name), then Probe, then New(Config).
//     New binds, starts one event loop per configured CPU on a locked OS thread
//     and returns a running Server.
//  3. While it runs, Counters returns a snapshot of what the server counted,
//     its own syscalls included. Close stops the loops and frees every fd,
//     mapping and goroutine the server made.
//
// The package knows nothing of load generators or meters; backendtest holds
// the conformance suite that every backend's tests run.
package backends
