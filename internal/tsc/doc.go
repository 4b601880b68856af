// Package tsc reads the CPU's time-stamp counter and spends a known number of
// its cycles: the ground truth that ringbench's cycle meters are checked
// against (the burn backend), and the TSC frequency that converts busy time
// into TSC-equivalent cycles (harness).
//
// Data flow:
//
//  1. Hz finds the TSC frequency from what the kernel measured: its boot
//     log's calibration, else /proc/cpuinfo. It is never a constant of ours.
//  2. Spin(n) reads the counter (RDTSC on amd64, an assembly function: Go
//     has no intrinsic and this package takes no cgo) and loops until it has
//     advanced by n, and returns by how much it did advance. On other
//     architectures it spins on the monotonic clock for n/Hz seconds.
//  3. Available says whether Spin can keep its promise on this machine
//     (elsewhere than amd64 it needs Hz).
//
// Spin counts TSC time, not the thread's CPU time: time the thread spends
// descheduled inside a spin counts as spun. That is the point of a ground
// truth that is cheap (no syscall per request); a trial whose server core
// was shared is flagged noisy by the harness's own meter.
package tsc
