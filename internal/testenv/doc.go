// Package testenv is what ringbench's tests share: one way to skip a test
// that needs root, a kernel feature or DPDK (always with the reason), and a
// TestMain wrapper that fails the run when a test leaked a file descriptor
// or a goroutine.
package testenv
