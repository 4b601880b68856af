//go:build dpdk

package dpdk

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/workloads"
)

// A memif server on two cores: two lcores, each on a queue pair of its own,
// and a generator that sends each connection on queue conn mod 2. Both
// lcores receive and echo, and every echo comes back verified.
func TestMemifTwoCores(t *testing.T) {
	skipUnlessDPDK(t)
	socket := filepath.Join(t.TempDir(), "memif.sock")
	s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: serverIP.String(), CPUs: []int{0, 1},
		Options: map[string]string{OptMemifSocket: socket, OptHugepages: "0"}}, "")
	spec := workloads.Spec{Workload: workloads.Echo, Proto: backends.UDP, Conns: 4, Depth: 4, Size: 200,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Timeout: 2 * time.Second}
	var before, after backends.Counters
	opt := testGenOptions(t, socket)
	opt.Queues = 2
	opt.BeforeClose = func() { s.close(t) }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Generate(ctx, spec, opt, workloads.Hooks{
		WindowStart: func() { before = s.counters(t) },
		WindowEnd:   func() { after = s.counters(t) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: ops %d sent %d errors %+v window %v", rep.Ops, rep.Sent, rep.Errors, rep.Window)
	if rep.Ops == 0 || rep.Errors.Mismatch != 0 || rep.Errors.Lost != 0 {
		t.Errorf("report %+v: want verified echoes, none differing, none lost", rep)
	}
	var tx uint64 // the queues' echoes in the window
	for q := range 2 {
		d := func(k string) uint64 {
			k = fmt.Sprintf("queue%d_%s", q, k)
			return after.Extra[k] - before.Extra[k]
		}
		t.Logf("queue %d: rx %d tx %d busy packets %d", q, d("rx_msgs"), d("tx_msgs"), d("busy_packets"))
		if d("rx_msgs") == 0 || d("tx_msgs") == 0 || d("busy_packets") == 0 {
			t.Errorf("the lcore on queue %d received or echoed nothing in the window: %v", q, after.Extra)
		}
		tx += d("tx_msgs")
	}
	// The queues' counts against the generator's verified echoes (the
	// server's totals are the queues' sum, from the same snapshot: no
	// check). Requests in flight at the window's edges are counted on one
	// side only.
	slack := uint64(spec.Conns*spec.Depth)*2 + 64
	if tx+slack < rep.Ops || tx > rep.Ops+slack {
		t.Errorf("the queues echoed %d in the window, the generator verified %d", tx, rep.Ops)
	}
}

// A port that spreads flows itself gets RSS over its queues: net_null has
// RSS and hands frames to every queue, so each lcore counts its own; net_ring
// has none, and two cores on it are refused with what is missing.
func TestVdevCores(t *testing.T) {
	skipUnlessDPDK(t)
	t.Run("net_null", func(t *testing.T) {
		s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0, 1},
			Options: map[string]string{OptVdev: "net_null0", OptHugepages: "0"}}, "")
		var c backends.Counters
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c = s.counters(t); c.Extra["queue0_busy_packets"] >= 1000 && c.Extra["queue1_busy_packets"] >= 1000 {
				break
			}
		}
		x := c.Extra
		if x["queue0_busy_packets"] < 1000 || x["queue1_busy_packets"] < 1000 {
			t.Errorf("counters %v: want frames handled on both lcores", x)
		}
		// net_null's frames are no protocol the reflector knows: dropped,
		// and counted as such. (busy_packets is the queues' sum, from the
		// same snapshot: no check.)
		if x["drop_ethertype"] == 0 {
			t.Errorf("counters %v: net_null's frames not counted as dropped", x)
		}
		s.close(t)
	})
	t.Run("net_ring", func(t *testing.T) {
		p, err := spawnServer(backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0, 1},
			Options: map[string]string{OptVdev: "net_ring0", OptHugepages: "0"}}, "", &testLog{t: t})
		if err == nil {
			p.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "dpdk on 2 cores not supported: port net_ring has no RSS hash") {
			t.Errorf("net_ring on two cores: %v, want a refusal naming the missing RSS", err)
		}
	})
}

// net_af_packet on two cores: two sockets in one fanout group, each polled
// by its own lcore; the kernel's flow hash spreads sixteen flows over both
// (all on one socket: one chance in 2^15), and every echo is the request.
func TestAFPacketTwoCores(t *testing.T) {
	skipUnlessDPDK(t)
	v := newVethPair(t)
	s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: serverIP.String(), CPUs: []int{0, 1},
		Iface: v.serverIface, Options: map[string]string{OptPMD: PMDAFPacket, OptHugepages: "0"}}, v.serverNS)
	buf := make([]byte, 2048)
	for flow := range 16 {
		fd := udpClient(t, v, s.ready.Port)
		for i := range 4 {
			msg := []byte(fmt.Sprintf("flow %d request %d", flow, i))
			if _, err := unix.Write(fd, msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			n, err := unix.Read(fd, buf)
			if err != nil {
				t.Fatalf("echo of flow %d request %d: %v", flow, i, err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("echo %q, want %q", buf[:n], msg)
			}
		}
	}
	// A pass publishes its counters after its tx burst: the last echo can
	// arrive before they show.
	var x map[string]uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if x = s.counters(t).Extra; x["queue0_rx_msgs"]+x["queue1_rx_msgs"] >= 64 {
			break
		}
	}
	t.Logf("queue 0 rx %d, queue 1 rx %d", x["queue0_rx_msgs"], x["queue1_rx_msgs"])
	if x["queue0_rx_msgs"] == 0 || x["queue1_rx_msgs"] == 0 || x["queue0_rx_msgs"]+x["queue1_rx_msgs"] != 64 {
		t.Errorf("counters %v: want the 64 requests spread over both lcores", x)
	}
	s.close(t)
}
