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
