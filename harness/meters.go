package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ringbench/backends"
)

// meters reads everything measured around a trial's window. Each meter that
// cannot be read keeps its error, so the record says why a field is empty.
type meters struct {
	srv        *server
	topo       Topology
	dpdkPort   bool // packets come from the DPDK port's counters
	serverCPUs []int
	clientCPUs []int
	softirqd   []int // ksoftirqd threads of the server CPUs

	syscalls    *perfCounter
	syscallsErr error
	cycles      *perfCounter
	cyclesErr   error
}

// snapshot is every meter's value at one instant.
type snapshot struct {
	at       time.Time
	cpu      map[int]cpuTimes
	server   taskTimes
	softirqd taskTimes
	// others is the run time of each other task last seen on a server CPU.
	others map[int]float64

	syscalls    uint64
	syscallsErr error
	cycles      uint64
	cyclesErr   error
	packets     uint64
	packetsErr  error
	counters    backends.Counters
	countersErr error
}

func newMeters(srv *server, topo Topology, dpdkPort bool, serverCPUs, clientCPUs []int) *meters {
	m := &meters{srv: srv, topo: topo, dpdkPort: dpdkPort, serverCPUs: serverCPUs, clientCPUs: clientCPUs}
	m.softirqd = kernelThreads("ksoftirqd/", serverCPUs)
	// Counters open before the warm-up so that threads the server makes
	// during it are inherited; only differences across the window are used.
	m.syscalls, m.syscallsErr = openSyscallCounter(processTree(srv.pid))
	m.cycles, m.cyclesErr = openCycleCounter(serverCPUs)
	return m
}

func (m *meters) Close() {
	if m.syscalls != nil {
		m.syscalls.Close()
	}
	if m.cycles != nil {
		m.cycles.Close()
	}
}

// read takes a snapshot. The slow meters (a process to spawn, a round trip to
// the server) are read first at the window's start and last at its end, so
// the kernel counters sit closest to the window's edges.
func (m *meters) read(start bool) snapshot {
	var s snapshot
	slow := func() {
		if m.dpdkPort {
			s.counters, s.countersErr = m.srv.counters()
			if s.countersErr == nil {
				s.packets = s.counters.Extra["port_rx_packets"] + s.counters.Extra["port_tx_packets"]
			} else {
				s.packetsErr = s.countersErr
			}
			return
		}
		s.packets, s.packetsErr = m.topo.Packets()
		s.counters, s.countersErr = m.srv.counters()
	}
	fast := func() {
		s.at = time.Now()
		s.cpu, _ = readCPUTimes()
		pids := processTree(m.srv.pid)
		s.server = readTaskTimes(pids)
		s.softirqd = readTaskTimes(m.softirqd)
		skip := map[int]bool{}
		for _, t := range tasksOf(append(pids, m.softirqd...)) {
			skip[t] = true
		}
		s.others = otherTasksOn(m.serverCPUs, skip)
		s.syscallsErr = m.syscallsErr
		if m.syscalls != nil {
			s.syscalls, s.syscallsErr = m.syscalls.read()
		}
		s.cyclesErr = m.cyclesErr
		if m.cycles != nil {
			s.cycles, s.cyclesErr = m.cycles.read()
		}
	}
	if start {
		slow()
		fast()
	} else {
		fast()
		slow()
	}
	return s
}

// kernelThreads finds per-CPU kernel threads ("ksoftirqd/3") of cpus. Their
// time on the server cores is the server's receive work pushed out of
// interrupt context, not noise.
func kernelThreads(prefix string, cpus []int) []int {
	want := map[string]bool{}
	for _, c := range cpus {
		want[prefix+strconv.Itoa(c)] = true
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		if want[strings.TrimSpace(string(b))] {
			pids = append(pids, pid)
		}
	}
	return pids
}

var errNoWindow = errors.New("the generator never opened its measurement window")
