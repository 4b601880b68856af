// Package backendtest is the conformance suite every ringbench backend's
// tests run: Run(t, "epoll") checks, over real sockets, everything the
// backends.Server contract promises.
//
// Data flow:
//
//  1. Run looks the backend up in the registry and skips, with the reason,
//     when its Probe reports ErrNotSupported.
//  2. For each protocol and service the backend declares, a subtest starts
//     servers (port 0, one loop; a two-loop server with SO_REUSEPORT in one
//     subtest) and, before each, snapshots the process's fds and goroutines.
//  3. Clients made with Go's net package (or RunOptions.Dial, e.g. from
//     inside a network namespace) drive each case: echo for every size,
//     pipelined, many connections, half-close, peer reset, oversize
//     datagrams, sink, source; every echoed or sourced byte is verified.
//  4. The server's Counters are checked against what the clients did.
//  5. Close must return; afterwards no fd and no goroutine made since the
//     snapshot (testenv.TakeSnapshot) may remain.
//
// RunOptions lets other backends reuse the suite as they are: extra
// Config.Options, another host and dialer (a DPDK server behind a veth,
// dialed from the client's network namespace), checks skipped with a
// reason, a backend that makes no syscalls, fds a backend keeps for the
// process's life (DPDK's EAL). The package's own test runs the suite
// against mutant backends that break one rule each, and checks it fails
// them.
package backendtest
