package harness

import (
	"os"
	"testing"
	"time"

	"ringbench/meters"
)

// TestNoiseScanSpansTheWindow: the task scans are read at the window's
// edges, not before the warm-up and after the drain, so other tasks'
// share is over the window every other meter covers.
func TestNoiseScanSpansTheWindow(t *testing.T) {
	reader, err := meters.NewReader(meters.Target{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	scanner := meters.NewScanner()
	defer scanner.Close()
	w := &window{reader: reader, scanner: scanner}
	w.startScan()
	defer w.dropScan()
	h := w.hooks()
	time.Sleep(100 * time.Millisecond) // warm-up
	h.WindowStart()
	time.Sleep(200 * time.Millisecond)
	h.WindowEnd()
	time.Sleep(100 * time.Millisecond) // drain
	w.finish()
	if !w.scanned || w.scanA.Err != nil || w.scanB.Err != nil {
		t.Fatalf("scanned %v: %v, %v", w.scanned, w.scanA.Err, w.scanB.Err)
	}
	for name, off := range map[string]time.Duration{"start": w.scanA.At - w.a.At, "end": w.scanB.At - w.b.At} {
		if off < 0 || off > 20*time.Millisecond {
			t.Errorf("the scan of the window's %s was read %v after it, want within 20 ms", name, off)
		}
	}
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
