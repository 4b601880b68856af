// Command ringbench measures what a packet costs on Linux's syscall
// (epoll), io_uring and DPDK paths.
//
// main only calls ringbench(ctx, args, stdin, stdout, stderr), so every
// command is testable. The commands:
//
//  1. run and bench build trials (one configuration, or a profile's
//     matrix) and hand them to the harness, which appends a record per trial
//     to DIR/results.jsonl; ndr searches each backend's configuration for
//     its maximum sustainable rate (every step a trial there) and appends a
//     line per backend to DIR/ndr.jsonl;
//  2. when the trials end, the benchmark-format file and the summary table
//     are written, and bench runs the lesson and renders the report
//     (neither after an interrupt);
//  3. report, compare and lesson work on results folders; doctor and
//     backends describe this machine; serve and dpdkgen are the internal
//     processes the harness starts;
//  4. exit (exit.go) prints the command's error once and turns it into
//     the exit status README.md lists: an interrupt's, whatever the
//     command returned, else a failed trial's, a skipped one's or usage's.
package main
