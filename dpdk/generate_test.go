package dpdk

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringbench/workloads"
)

// A generator must be told how to stop the server before it closes its
// memif port: there is no goodbye frame that could make closing safe.
func TestGenRequestNeedsBeforeClose(t *testing.T) {
	spec := workloads.Spec{Workload: workloads.Echo, Size: 64, Duration: time.Second}
	opt := GenOptions{Socket: "/tmp/memif.sock", CPUs: []int{0}, ServerIP: netip.MustParseAddr("10.204.0.1")}
	if _, err := genRequestFor(spec, opt); err == nil || !strings.Contains(err.Error(), "BeforeClose") {
		t.Errorf("without BeforeClose: err = %v, want a BeforeClose error", err)
	}
	opt.BeforeClose = func() {}
	if _, err := genRequestFor(spec, opt); err != nil {
		t.Errorf("with BeforeClose: %v", err)
	}
}

// Requests the TX ring refused never reached the server: they are the
// report's Unsent, never Errors.Lost.
func TestGenReportTxFullIsUnsent(t *testing.T) {
	r := genReport{Sent: 10, TxFull: 5, Errors: workloads.Errors{Lost: 2}}.report()
	if r.Unsent != 5 || r.Errors.Lost != 2 || r.Sent != 10 {
		t.Errorf("report: unsent %d lost %d sent %d, want 5, 2, 10", r.Unsent, r.Errors.Lost, r.Sent)
	}
}
