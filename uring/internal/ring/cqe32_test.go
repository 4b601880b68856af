package ring

import (
	"testing"

	"ringbench/uring/internal/abi"
)

// On a CQE32 ring completions are 32 bytes apart: more NOPs than half the
// CQ's 16-byte slots come back each under its own user_data, in order, and
// a NOP's second half is zero.
func TestBigCQE(t *testing.T) {
	r := setup(t, abi.IORING_SETUP_CQE32)
	if r.CQEntries() < 12 {
		t.Fatalf("CQ of %d entries", r.CQEntries())
	}
	const n = 12 // over half the 16 CQEs: a 16-byte stride would read the wrong ones
	var pos uint32
	for round := range 2 {
		for i := range n / 2 {
			e := r.GetSQE()
			e.Opcode = abi.IORING_OP_NOP
			e.UserData = uint64(100 + round*n/2 + i)
		}
		if _, err := r.SubmitAndWait(n / 2); err != nil {
			t.Fatal(err)
		}
		for tail := r.CQTail(); pos != tail; pos++ {
			cqe, big := r.BigCQE(pos)
			if want := uint64(100 + pos); cqe.UserData != want || cqe.Res != 0 {
				t.Errorf("CQE %d: user_data %d res %d, want %d and 0", pos, cqe.UserData, cqe.Res, want)
			}
			if *big != (abi.IoUringZcrxCqe{}) {
				t.Errorf("CQE %d: second half %+v, want zero for a NOP", pos, *big)
			}
		}
		r.CQAdvance(pos)
	}
	if pos != n {
		t.Errorf("reaped %d completions, want %d", pos, n)
	}
}
