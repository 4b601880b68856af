// Package meters reads and derives every figure of a trial's measurement
// window. It is the only place that knows what a kernel file means.
//
// Data flow:
//
//  1. A Reader is opened once per server, before the warm-up: it keeps the
//     files it reads open (/proc/stat, the server namespace's /proc/PID/net
//     files, the server's cgroup) so that a snapshot is a handful of preads
//     and never starts a process or scans /proc.
//  2. Reader.Read takes a Snapshot at each edge of the window. The cheap
//     kernel counters are read back to back, timestamped at their middle.
//     Slower readings (the backend's own counters, a round trip to the
//     server) are taken after the cheap ones at both edges, so every meter
//     spans a window of the same length.
//  3. Other tasks' share of the server cores comes from the sampler's
//     samples (package sampler) when it ran; else from per-task deltas of
//     run time between two TaskScans read right after the window's edges
//     by an idle-priority thread (Scanner), which never delays the
//     generator sharing the harness's CPU. Every task's files are opened
//     during the warm-up, so a scan is a pread per task; tasks that
//     appear are picked up at each edge.
//  4. Fill derives every record field from the two snapshots, the noise
//     estimate and the generator's report. It is a pure function: every
//     published number passes through code that a table test pins.
//
// The syscall meter (counting windows only) is a perf counter per server
// thread for the total and a BPF program that counts the server's
// syscalls by id (sysnames.go, bpfcount.go); Fill checks that the names
// sum to the total and explains the total against the backend's own count.
//
// The ground truths the meters are checked against (the burn backend's
// known cycles per request, perf stat's task-clock, an independent /proc/stat
// sampler, a known number of syscalls) are run by `ringbench validate`.
package meters
