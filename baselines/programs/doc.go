// Package programs registers the C servers of the kernel paths, c-epoll
// and c-uring: what each path costs without Go, measured under the same
// generator and meters as the Go backend of the same path (epoll, uring)
// and shown beside it.
//
// The servers are C programs in the folder above (baselines/c-epoll.c, c-uring.c, and
// serve.c, the main they share), built by `make build` into bin/ next to
// the ringbench binary. Data flow:
//
//  1. init registers each program as a backend whose Command is its
//     command line, with BaselineOf naming the Go backend of its path.
//  2. Probe finds the program (RINGBENCH_BASELINES, else the folder of
//     the running executable) and reports ErrNotSupported, with "make
//     build" as the fix, when it is not built.
//  3. The harness starts Command in place of `ringbench serve`: the
//     program prints {"port":N}, answers "counters" with its own counters
//     (its syscalls included) and exits when its stdin closes.
//  4. New, for tests and `ringbench serve`, starts the same program as a
//     child process and speaks that protocol to it (Process).
package programs
