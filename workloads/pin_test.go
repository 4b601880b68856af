package workloads

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
)

// TestLoopThreadsUnpinned: after Run, no thread of the process is left
// pinned to one of the loops' CPUs.
func TestLoopThreadsUnpinned(t *testing.T) {
	before := pinnedThreads(t)
	srv := tcpEchoPeer(t, nil)
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 1, Size: 10,
		Duration: 50 * time.Millisecond, CPUs: []int{0, 1}}
	for range 4 {
		if _, err := Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{}); err != nil {
			t.Fatal(err)
		}
	}
	if after := pinnedThreads(t); after > before {
		t.Errorf("%d threads pinned to one CPU after Run, %d before", after, before)
	}
}

func pinnedThreads(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		st, err := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && !strings.ContainsAny(v, ",-") {
				n++
			}
		}
	}
	return n
}
