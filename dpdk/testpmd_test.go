package dpdk

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

func TestParseTestpmdStats(t *testing.T) {
	b, err := os.ReadFile("testdata/testpmd_stats.txt")
	if err != nil {
		t.Fatal(err)
	}
	c := parseTestpmdStats(strings.Split(string(b), "\n"))
	want := map[string]uint64{
		"port_rx_packets": 31928032, "port_tx_packets": 31608512, "port_rx_missed": 7,
		"port_rx_errors": 3, "port_tx_errors": 5, "port_rx_nombuf": 2,
		"port_rx_bytes": 2043394048, "port_tx_bytes": 2022944768,
		"busy_cycles": 2359038528, "busy_packets": 31665088, "tsc_hz": 2100000000,
	}
	for k, v := range want {
		if c.Extra[k] != v {
			t.Errorf("%s = %d, want %d", k, c.Extra[k], v)
		}
	}
	if c.RxMsgs != 31928032 || c.TxMsgs != 31608512 || c.RxBytes != 2043394048 || c.Syscalls != 0 {
		t.Errorf("counters %+v", c)
	}
}

// testpmd forwards net_null's endless frames; its counters come from its
// own statistics and it quits cleanly.
func TestTestpmdNullPort(t *testing.T) {
	testenv.SkipIfUnsupported(t, probeTestpmd())
	srv, err := newTestpmd(backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0},
		Options: map[string]string{OptVdev: "net_null0", OptHugepages: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if len(srv.(*Testpmd).MAC()) != 6 {
		t.Errorf("no MAC parsed from testpmd's start-up")
	}
	// A memif peer gone first must cost testpmd an EPIPE, not its life:
	// it runs with SIGPIPE ignored.
	if ign, err := sigIgnored(srv.(*Testpmd).cmd.Process.Pid); err != nil || ign&(1<<(13-1)) == 0 {
		t.Errorf("testpmd's ignored signals %#x (%v): SIGPIPE is not among them", ign, err)
	}
	var c backends.Counters
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c = srv.Counters(); c.Extra["busy_packets"] > 0 {
			break
		}
	}
	x := c.Extra
	if x["port_rx_packets"] == 0 || x["busy_packets"] == 0 || x["busy_cycles"] == 0 || x["tsc_hz"] == 0 {
		t.Errorf("counters %v: want packets forwarded and busy cycles recorded", x)
	}
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
	if after := srv.Counters(); after.Extra["port_rx_packets"] < x["port_rx_packets"] {
		t.Errorf("counters after Close went back: %v", after.Extra)
	}
}

func TestTestpmdEchoOnly(t *testing.T) {
	_, err := newTestpmd(backends.Config{Proto: backends.UDP, Service: backends.Sink, Options: map[string]string{OptVdev: "net_null0"}})
	if err == nil || !strings.Contains(err.Error(), "echo only") {
		t.Errorf("err = %v, want echo only", err)
	}
}

// sigIgnored is the SigIgn mask of process pid.
func sigIgnored(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no SigIgn in /proc/%d/status", pid)
}
