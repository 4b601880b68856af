package uring

import (
	"testing"
	"time"
)

// TestWaitPolicy: min-wait only where chosen at setup (batched), with more
// than fewSources sources active and batchMin requests expected within
// batchUs; otherwise a wait wakes per completion. The load is set as the meter would have counted it over
// one epoch (loadEpochNs = 1 ms, batchUs 50: 20 requests per epoch expect
// one within batchUs, 80 expect four).
func TestWaitPolicy(t *testing.T) {
	for _, tc := range []struct {
		name              string
		batched           bool
		batchMin          int
		sources           int
		reqs              int64
		wantN, wantMinUs  uint32
		wantMinWaitsCount uint64
	}{
		{"not batched", false, 4, 64, 1000, 1, 0, 0},
		{"ping-pong", true, 4, fewSources, 1000, 1, 0, 0},
		{"20k/s over 64 sources", true, 4, 64, 20, 1, 0, 0},
		{"just under batchMin", true, 4, 64, 79, 1, 0, 0},
		{"at batchMin", true, 4, 64, 80, 16, 50, 1},
		{"two per source", true, 4, 5, 1000, 10, 50, 1},
		{"batchMin 0: sources alone", true, 0, 64, 0, 16, 50, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &loop{p: &plan{batch: 16, batchMin: tc.batchMin}, batchUs: 50}
			l.chooseWaits(tc.batched)
			l.load = loadMeter{initialized: true, start: time.Now(), last: tc.sources, lastR: tc.reqs}
			n, us := l.batching.next(l)
			if n != tc.wantN || us != tc.wantMinUs {
				t.Errorf("next wait: %d, %d µs; want %d, %d µs", n, us, tc.wantN, tc.wantMinUs)
			}
			if got := l.count[cMinWaits]; got != tc.wantMinWaitsCount {
				t.Errorf("min_wait_waits = %d, want %d", got, tc.wantMinWaitsCount)
			}
		})
	}
}

// TestChooseWaits: the wait each plan gets at setup. Raw waits where the
// plan's are raw, SQPOLL's bounded raw wait on an SQPOLL rung (its tick
// would keep the SQ thread awake), the runtime's otherwise.
func TestChooseWaits(t *testing.T) {
	for _, tc := range []struct {
		variant string
		raw     bool
		want    waiter
	}{
		{"uring", true, rawWait{}},
		{"uring-basic", true, rawWait{}},
		{"uring-sqpoll", true, sqpollRawWait{}},
		{"uring", false, runtimeWait{}},
		{"uring-sqpoll", false, runtimeWait{}},
	} {
		l := &loop{p: &plan{v: variantNamed(t, tc.variant), rawEnter: tc.raw}}
		l.chooseWaits(false)
		if l.waiter != tc.want {
			t.Errorf("%s, raw_enter %v: waiter %T, want %T", tc.variant, tc.raw, l.waiter, tc.want)
		}
	}
}

// TestLoadMeterEpochs: requests and sources are counted per epoch, the
// larger of this epoch's and the last's is what the policy sees, and an
// epoch older than two drops out.
func TestLoadMeterEpochs(t *testing.T) {
	var m loadMeter
	m.sources() // opens the first epoch
	seen := make([]uint32, 3)
	for i := 0; i < 30; i++ {
		m.mark(&seen[i%3])
	}
	m.markPeer(1)
	m.markPeer(1)
	if a, r := m.sources(); a != 4 || r != 32 {
		t.Fatalf("this epoch: %d sources, %d requests; want 4, 32", a, r)
	}
	m.start = m.start.Add(-loadEpochNs) // the epoch is over
	if a, r := m.sources(); a != 4 || r != 32 {
		t.Fatalf("after one epoch: %d sources, %d requests; want the last epoch's 4, 32", a, r)
	}
	m.mark(&seen[0])
	m.start = m.start.Add(-loadEpochNs)
	if a, r := m.sources(); a != 1 || r != 1 {
		t.Fatalf("after two epochs: %d sources, %d requests; want 1, 1", a, r)
	}
}
