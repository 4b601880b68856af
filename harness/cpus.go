package harness

import (
	"fmt"
	"os"

	"ringbench/backends"
	"ringbench/meters"
	"ringbench/results"
)

// splitCPUs divides n CPUs between a server of cores loops and its
// generator. The server takes the last cores CPUs (CPU 0 takes most device
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
func splitCPUs(cores, n int) (server, client []int, shared bool, err error) {
	if cores < 1 {
		return nil, nil, false, fmt.Errorf("cores must be at least 1, got %d", cores)
	}
	if cores > n {
		return nil, nil, false, &backends.NotSupportedError{Feature: fmt.Sprintf("%d server cores", cores),
			Reason: fmt.Sprintf("this machine has %d CPUs", n)}
	}
	for c := 0; c < n; c++ {
		if c >= n-cores {
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

// guests are the processes expected on the server cores beside the server:
// this process (the generator's loops, the harness) and its children, when
// the generator shares the server's CPUs; none otherwise. Their time there
// is the trial's own load, not other tasks' noise.
func guests(server, client []int) []int {
	if len((results.Config{ServerCPUs: server, ClientCPUs: client}).SharedCPUs()) == 0 {
		return nil
	}
	return meters.ProcessTree(os.Getpid())
}
