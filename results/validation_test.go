package results

import (
	"strings"
	"testing"
)

// Every measured trial must read core busy at or above its process CPU
// (− 1%) and have a cost window with no tracepoint and no sampler on; a
// failing check names the trials.
func TestTrialChecks(t *testing.T) {
	ok := Record{Status: StatusOK, Config: Config{Backend: "epoll", Variant: "default"}, CPUNs: 1e9, BusyNs: 1.2e9}
	below, traced, sampled, broken := ok, ok, ok, ok
	below.BusyNs, below.Repeat = 0.95e9, 3 // the core ran the process longer than it was busy: impossible
	traced.WindowTraced = true
	sampled.WindowSampled = true
	broken.Status, broken.BusyNs, broken.WindowTraced = StatusFailed, 0.5e9, true
	edge := ok
	edge.BusyNs = 0.995e9 // within the 1% allowance
	// Without root, busy comes from /proc/stat's 10 ms ticks: 200 ms of
	// process CPU on one core may read 197 ms busy, and 160 ms is wrong.
	ticked := Record{Status: StatusOK, Config: Config{Backend: "epoll", Variant: "default", ServerCPUs: []int{1}},
		CPUNs: 0.2e9, BusyNs: 0.197e9, BusySource: "proc_stat"}
	tickedBelow := ticked
	tickedBelow.BusyNs = 0.16e9
	for _, tc := range []struct {
		name   string
		recs   []Record
		want   [3]bool
		detail string
	}{
		{"all good", []Record{ok, edge}, [3]bool{true, true, true}, ""},
		{"busy below CPU", []Record{ok, below}, [3]bool{false, true, true}, "epoll r3 -5.0%"},
		{"traced", []Record{ok, traced}, [3]bool{true, false, true}, "epoll r0"},
		{"sampled", []Record{sampled, ok}, [3]bool{true, true, false}, "epoll r0"},
		{"a failed trial is not judged", []Record{ok, broken}, [3]bool{true, true, true}, ""},
		{"busy read in ticks, within a tick", []Record{ok, ticked}, [3]bool{true, true, true}, ""},
		{"busy read in ticks, below CPU", []Record{ok, tickedBelow}, [3]bool{false, true, true}, "epoll r0 -20.0%"},
		{"the tick allowance is proc_stat's alone", []Record{ok, func() Record { r := ticked; r.BusySource = "timer_list"; return r }()},
			[3]bool{false, true, true}, "epoll r0 -1.5%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := TrialChecks(tc.recs)
			if len(cs) != 3 {
				t.Fatalf("%d checks, want 3", len(cs))
			}
			for i, c := range cs {
				if c.Pass != tc.want[i] || c.Failed() == tc.want[i] {
					t.Errorf("%s: pass %v failed %v, want pass %v (%s; %s)", c.Name, c.Pass, c.Failed(), tc.want[i], c.Display, c.Detail)
				}
				if !c.Pass && tc.detail != "" && !strings.Contains(c.Detail, tc.detail) {
					t.Errorf("%s: detail %q does not name %q", c.Name, c.Detail, tc.detail)
				}
			}
		})
	}
	if cs := TrialChecks([]Record{broken}); cs != nil {
		t.Errorf("no measured trial, yet checks %+v", cs)
	}
}
