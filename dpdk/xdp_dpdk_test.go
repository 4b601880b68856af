//go:build dpdk

package dpdk

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"ringbench/backends"
)

// An af_xdp server killed with SIGKILL leaves its XDP program on the
// interface (the port never closed); the server's state file records it,
// and the next run's sweep takes it off.
func TestKilledServerXDPSwept(t *testing.T) {
	skipUnlessDPDK(t)
	if !afxdpAvailable() {
		t.Skip("skipped: this kernel or process cannot open AF_XDP sockets")
	}
	v := newVethPair(t)
	s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: serverIP.String(), CPUs: []int{0},
		Iface: v.serverIface, Options: map[string]string{OptPMD: PMDAFXDP, OptHugepages: "0"}}, v.serverNS)
	pid := s.cmd.Process.Pid
	_, progs, err := xdpPrograms(v.serverNS, v.serverIface)
	if err != nil || len(progs) == 0 {
		t.Fatalf("no XDP program on %s while the server runs: %v %v", v.serverIface, progs, err)
	}
	state, _ := filepath.Glob(filepath.Join(xdpStateDir(), fmt.Sprintf("%d-*.json", pid)))
	if len(state) != 1 {
		t.Fatalf("server %d recorded %v, want one state file", pid, state)
	}
	s.cmd.Process.Kill()
	s.cmd.Wait() // reaped: a zombie's pid is still alive
	if _, left, _ := xdpPrograms(v.serverNS, v.serverIface); len(left) == 0 {
		t.Fatal("the killed server's program went with it: nothing to sweep")
	}
	notes, err := SweepStaleXDP()
	t.Logf("sweep: %q", notes)
	if err != nil {
		t.Fatal(err)
	}
	if _, left, err := xdpPrograms(v.serverNS, v.serverIface); err != nil || len(left) != 0 {
		t.Errorf("program still on %s after the sweep: %v %v", v.serverIface, left, err)
	}
	if _, err := os.Stat(state[0]); err == nil {
		t.Errorf("state file %s left after the sweep", state[0])
	}
}
