package harness

import (
	"os"
	"testing"
	"time"

	"ringbench/meters"
)

// TestNoiseScanSpansTheWindow: the task scans are asked for at the
// window's edges, not before the warm-up and after the drain, so other
// tasks' share is over the window every other meter covers. When the idle
// thread then reads them depends on the load (90 ms late once under CI);
// that they are read after their edge is checked, and the lateness is
// the trial's to report.
func TestNoiseScanSpansTheWindow(t *testing.T) {
	reader, err := meters.NewReader(meters.Target{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	scanner := meters.NewScanner()
	defer scanner.Close()
	rec := &edgeRecorder{edgeScanner: scanner}
	w := &window{reader: reader, scanner: rec}
	w.startScan()
	defer w.dropScan()
	h := w.hooks()
	time.Sleep(100 * time.Millisecond) // warm-up
	var edges [2][2]time.Duration      // before and after each hook
	edges[0][0] = meters.Now()
	h.WindowStart()
	edges[0][1] = meters.Now()
	time.Sleep(200 * time.Millisecond)
	edges[1][0] = meters.Now()
	h.WindowEnd()
	edges[1][1] = meters.Now()
	time.Sleep(100 * time.Millisecond) // drain
	w.finish()
	if !w.scanned || w.scanA.Err != nil || w.scanB.Err != nil {
		t.Fatalf("scanned %v: %v, %v", w.scanned, w.scanA.Err, w.scanB.Err)
	}
	if len(rec.asked) != 2 {
		t.Fatalf("%d edges asked for, want 2", len(rec.asked))
	}
	for i, name := range []string{"start", "end"} {
		if at := rec.asked[i]; at < edges[i][0] || at > edges[i][1] {
			t.Errorf("the scan of the window's %s was asked for at %v, want in its hook [%v, %v]", name, at, edges[i][0], edges[i][1])
		}
		if read := []meters.TaskScan{w.scanA, w.scanB}[i].At; read < rec.asked[i] {
			t.Errorf("the scan of the window's %s was read at %v, before it was asked for (%v)", name, read, rec.asked[i])
		}
	}
}

// edgeRecorder notes when each edge's scan is asked for.
type edgeRecorder struct {
	edgeScanner
	asked []time.Duration
}

func (r *edgeRecorder) Edge() {
	r.asked = append(r.asked, meters.Now())
	r.edgeScanner.Edge()
}

// TestNICIRQs: a NIC's interrupts are found, so that on the hosts
// topology they are the trial's, not noise.
func TestNICIRQs(t *testing.T) {
	// A virtual interface (the hosts demo's veth) has no device and no
	// interrupts of its own: none to leave out, not an error that voids
	// the interrupt count. A missing one is an error.
	if irqs, err := nicIRQs("lo"); err != nil || len(irqs) != 0 {
		t.Errorf("lo: IRQs %v, %v; want none and no error", irqs, err)
	}
	if _, err := nicIRQs("rb-no-such-if"); err == nil {
		t.Error("an interface that does not exist: no error")
	}
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		if _, err := os.Stat("/sys/class/net/" + e.Name() + "/device"); err != nil {
			continue // virtual: no device, no IRQ
		}
		irqs, err := nicIRQs(e.Name())
		if err != nil || len(irqs) == 0 {
			t.Errorf("%s: IRQs %v, %v", e.Name(), irqs, err)
		}
		return
	}
	t.Skip("no NIC with a device on this machine")
}
