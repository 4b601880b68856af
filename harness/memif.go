package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"ringbench/workloads"
)

// MemifPath is what the DPDK generator needs to reach a server over memif.
type MemifPath struct {
	Socket    string         // the server's memif control socket
	Server    netip.AddrPort // the server's address and UDP port
	CPUs      []int          // the generator's CPUs
	Queues    int            // the server port's queue pairs, one per server core: the generator spreads its flows over them
	Hugepages bool           // hugepages are reserved (else --no-huge)
	// BeforeClose stops the server after the last window and before the
	// generator closes its port: a memif port is unmapped under a peer
	// that still polls it, so every memif server stops first.
	BeforeClose func()
}

// MemifSession is the DPDK generator attached to one server over memif: a
// trial's windows (cost, profile, syscall count) run one after another in
// it, since its port closes only once the server has stopped.
type MemifSession interface {
	// Window runs spec's warm-up and window; the rest of spec is the load
	// the session was attached with.
	Window(ctx context.Context, spec workloads.Spec, hooks workloads.Hooks) (*workloads.Report, error)
	// Close stops the server (MemifPath.BeforeClose), then the generator.
	Close() error
}

// memif: the DPDK server and ringbench's DPDK generator joined by a shared-
// memory packet interface (net_memif): no kernel on the data path at all.
// Packets are counted by the server's DPDK port.
type memif struct {
	dir string
	n   int // trials so far: each gets a socket of its own
}

// Addresses on the memif link; nothing but the two DPDK processes sees them.
const memifSrvAddr = "10.204.0.1"

// memifDirPrefix starts the name of a memif socket folder in the temporary
// folder; the harness pid follows, so that SweepStale can tell a killed
// run's folder from a live run's.
const memifDirPrefix = "ringbench-memif-"

func newMemif() (*memif, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", memifDirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("make memif socket folder: %w", err)
	}
	return &memif{dir: dir}, nil
}

func (m *memif) Name() string        { return Memif }
func (m *memif) ServerHost() string  { return memifSrvAddr }
func (m *memif) ServerNetns() string { return "" }
func (m *memif) ClientNetns() string { return "" }
func (m *memif) ServerIface() string { return "" }

// next names the control socket of the next trial's server. A server that
// dies leaves its socket file behind, and a socket still bound makes the
// next server's bind fail: a fresh path per trial avoids both.
func (m *memif) next() string {
	m.n++
	return m.Socket()
}

// Socket is the memif control socket path of the current trial's server.
func (m *memif) Socket() string { return filepath.Join(m.dir, fmt.Sprintf("memif-%d.sock", m.n)) }

func (m *memif) PacketsSource() string { return "DPDK port statistics (rx+tx)" }
func (m *memif) Packets() (uint64, error) {
	return 0, fmt.Errorf("memif packets are counted by the DPDK port, not an interface")
}
func (m *memif) Close() error { return os.RemoveAll(m.dir) }

// sweepMemif removes the memif socket folders of dead ringbench runs: the
// current user's folders named ringbench-memif-<pid>-* whose pid is gone.
func sweepMemif() []string {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), memifDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		owner, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(owner)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		// Only our own folders: in a shared /tmp a name proves nothing.
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fileOwner(fi) != os.Geteuid() {
			continue
		}
		if os.RemoveAll(dir) == nil {
			removed = append(removed, "memif socket folder "+dir)
		}
	}
	return removed
}

func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
