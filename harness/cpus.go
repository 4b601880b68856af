package harness

import (
	"fmt"
	"os"
	"runtime"

	"ringbench/backends"
	"ringbench/meters"
	"ringbench/results"
)

// splitCPUs divides the CPUs this process may run on (cpus, ascending:
// its affinity mask, which under taskset or a cpuset need not be 0..n−1)
// between a server of cores loops and its generator. The server takes the
// last cores CPUs (CPU 0 takes most device
// interrupts, so the server is kept off it while it can be) and the
// generator the rest.
//
// On a machine too small to leave the generator a CPU (cores == n), the
// trial still runs: the server takes every CPU and the generator runs on
// every CPU too, one loop beside each server loop, so that each server
// core carries the same share of the generator's work and SO_REUSEPORT's
// spread is not skewed by one crowded core. shared is then true: such a
// trial's core busy and cycles per op include the generator's work on
// those cores, and the record is flagged (client_shares_server_cpus).
// More cores than CPUs is not supported here.
func splitCPUs(cores int, cpus []int) (server, client []int, shared bool, err error) {
	n := len(cpus)
	if cores < 1 {
		return nil, nil, false, fmt.Errorf("cores must be at least 1, got %d", cores)
	}
	if cores > n {
		return nil, nil, false, &backends.NotSupportedError{Feature: fmt.Sprintf("%d server cores", cores),
			Reason: fmt.Sprintf("this machine has %d CPUs", n)}
	}
	for i, c := range cpus {
		if i >= n-cores {
			server = append(server, c)
		} else {
			client = append(client, c)
		}
	}
	if len(client) == 0 {
		return server, append([]int(nil), server...), true, nil
	}
	return server, client, false, nil
}

// startCPUs is the affinity mask this process started with, read at
// package init on the main thread, before the harness pins any thread of
// its own (a later sched_getaffinity on a pinned thread would see one CPU).
// If the mask cannot be read: CPUs 0..NumCPU−1.
var startCPUs = func() []int {
	if cpus, err := allowedCPUs(); err == nil && len(cpus) > 0 {
		return cpus
	}
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}()

// guests are the processes expected on the server cores beside the server:
// this process (the generator's loops, the harness) and its children, when
// the generator shares the server's CPUs; none otherwise. Their time there
// is the trial's own load, not other tasks' noise.
func guests(server, client []int) ([]int, error) {
	if len((results.Config{ServerCPUs: server, ClientCPUs: client}).SharedCPUs()) == 0 {
		return nil, nil
	}
	return meters.ProcessTree(os.Getpid())
}
