package preempt

import (
	"runtime"
	"testing"
)

// Hold leaves one P for the rest of the process across every reservation,
// unless forced, and Release gives the Ps back.
func TestHold(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	steps := []struct {
		n     int
		force bool
		want  bool
	}{
		{2, false, true},  // 2 held, 2 left
		{2, false, false}, // would leave none
		{1, false, true},  // 3 held, 1 left
		{1, false, false}, // would leave none
		{1, true, true},   // forced: 4 held
	}
	for i, s := range steps {
		if got := Hold(s.n, s.force); got != s.want {
			t.Fatalf("step %d: Hold(%d, %v) = %v, want %v (held %d of GOMAXPROCS 4)", i, s.n, s.force, got, s.want, held.n)
		}
	}
	Release(4)
	if held.n != 0 {
		t.Fatalf("after releasing every P, %d held", held.n)
	}
	if !Hold(3, false) {
		t.Fatal("Hold(3) with none held and GOMAXPROCS 4 refused")
	}
	Release(3)
}
