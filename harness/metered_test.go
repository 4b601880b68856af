package harness

import (
	"slices"
	"testing"

	_ "ringbench/epoll"
	_ "ringbench/uring"
)

// The server's metered cores are its loops' and those its options pin a
// thread of its own to: an SQ thread on sq_cpu works for the server, and
// core busy that left its core out read up to 57% below the process's own
// CPU time (the ladder's sq_cpu=0 trials).
func TestMeteredCPUs(t *testing.T) {
	for _, tc := range []struct {
		backend string
		opts    map[string]string
		want    []int
	}{
		{"uring-sqpoll", map[string]string{"sq_cpu": "0"}, []int{1, 0}},
		{"uring-sqpoll", map[string]string{"sq_cpu": "1"}, []int{1}},
		{"uring-sqpoll", nil, []int{1}},
		{"uring", map[string]string{"sq_cpu": "0"}, []int{1}}, // no SQ thread to pin
		{"epoll", nil, []int{1}},
		{"external", nil, []int{1}},
	} {
		got := meteredCPUs(Trial{Backend: tc.backend, Options: tc.opts}, []int{1})
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %v: metered CPUs %v, want %v", tc.backend, tc.opts, got, tc.want)
		}
	}
}
