package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"ringbench/backends"
)

// Topology is where the server and the client sit and what joins them.
type Topology interface {
	Name() string
	// ServerHost is the address the server listens on and the client dials.
	ServerHost() string
	// ServerNetns and ClientNetns name the network namespaces ("" = the
	// harness's own).
	ServerNetns() string
	ClientNetns() string
	// ServerIface is the server-side interface ("" when there is none of
	// the server's own, as on loopback).
	ServerIface() string
	// Packets returns the server-side interface's rx+tx packet counters.
	Packets() (uint64, error)
	// PacketsSource says what Packets counts.
	PacketsSource() string
	Close() error
}

// Topology names.
const (
	Loopback = "loopback"
	Veth     = "veth"
	Memif    = "memif"
)

// NewTopology makes the named topology. serverCPUs and clientCPUs steer
// each side's receive work (RPS) on topologies that have interfaces.
func NewTopology(name string, serverCPUs, clientCPUs []int) (Topology, error) {
	switch name {
	case Loopback:
		return loopback{}, nil
	case Veth:
		return newVeth(serverCPUs, clientCPUs)
	case Memif:
		return newMemif()
	case Hosts:
		return nil, errors.New("topology hosts is made by a Runner, from its HostsConfig")
	default:
		return nil, fmt.Errorf("unknown topology %q (known: loopback, veth, memif, hosts)", name)
	}
}

// loopback: both sides on 127.0.0.1. No root needed, but the receive
// softirq runs in the sender's context, so each side pays for part of the
// other's receive path: the veth topology is the fair one.
type loopback struct{}

func (loopback) Name() string        { return Loopback }
func (loopback) ServerHost() string  { return "127.0.0.1" }
func (loopback) ServerNetns() string { return "" }
func (loopback) ClientNetns() string { return "" }
func (loopback) ServerIface() string { return "" }
func (loopback) Close() error        { return nil }
func (loopback) PacketsSource() string {
	return "lo rx_packets (every packet of both sides crosses lo once)"
}
func (loopback) Packets() (uint64, error) {
	b, err := os.ReadFile("/sys/class/net/lo/statistics/rx_packets")
	if err != nil {
		return 0, fmt.Errorf("read lo packets: %w", err)
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// veth: two network namespaces joined by a veth pair. The harness names
// everything after its pid so that a later run can tell what a dead run
// left behind (see SweepStale).
type veth struct {
	id               string
	srvNS, cliNS     string
	srvIf, cliIf     string
	srvAddr, cliAddr string
	made             []string // namespaces made, for Close
	// srvCPUs and cliCPUs are where each side's receive work is steered.
	srvCPUs, cliCPUs []int
}

const (
	nsPrefix     = "ringbench-"
	vethSrvAddr  = "10.203.0.1"
	vethCliAddr  = "10.203.0.2"
	vethPrefixLn = 24
)

func newVeth(serverCPUs, clientCPUs []int) (t *veth, err error) {
	if os.Geteuid() != 0 {
		return nil, &backends.NotSupportedError{Feature: "veth topology", Reason: "making network namespaces needs root (use --topology loopback)"}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, &backends.NotSupportedError{Feature: "veth topology", Reason: "the ip command (iproute2) is missing"}
	}
	id := strconv.Itoa(os.Getpid())
	t = &veth{
		id:    id,
		srvNS: nsPrefix + "srv-" + id, cliNS: nsPrefix + "cli-" + id,
		srvIf: "rbs" + id, cliIf: "rbc" + id,
		srvAddr: vethSrvAddr, cliAddr: vethCliAddr,
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	for _, ns := range []string{t.srvNS, t.cliNS} {
		if err := ip("netns", "add", ns); err != nil {
			return nil, err
		}
		t.made = append(t.made, ns)
	}
	steps := [][]string{
		{"link", "add", t.srvIf, "netns", t.srvNS, "type", "veth", "peer", "name", t.cliIf, "netns", t.cliNS},
		{"-n", t.srvNS, "addr", "add", fmt.Sprintf("%s/%d", t.srvAddr, vethPrefixLn), "dev", t.srvIf},
		{"-n", t.cliNS, "addr", "add", fmt.Sprintf("%s/%d", t.cliAddr, vethPrefixLn), "dev", t.cliIf},
		{"-n", t.srvNS, "link", "set", "lo", "up"},
		{"-n", t.cliNS, "link", "set", "lo", "up"},
		{"-n", t.srvNS, "link", "set", t.srvIf, "up"},
		{"-n", t.cliNS, "link", "set", t.cliIf, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	if err := t.steer(serverCPUs, clientCPUs); err != nil {
		return nil, err
	}
	return t, nil
}

// steer sets RPS: a veth delivers to its peer in the sender's softirq
// context; steering each side's receive processing to its own CPUs puts
// the server's receive work on the server's cores, where it is measured.
// The runner keeps one veth for every trial, so a trial on other cores (a
// scaling experiment's) steers it again.
func (t *veth) steer(serverCPUs, clientCPUs []int) error {
	if slices.Equal(t.srvCPUs, serverCPUs) && slices.Equal(t.cliCPUs, clientCPUs) {
		return nil
	}
	t.srvCPUs, t.cliCPUs = nil, nil // unknown until both are set
	if err := t.setRPS(t.srvNS, t.srvIf, serverCPUs); err != nil {
		return err
	}
	if err := t.setRPS(t.cliNS, t.cliIf, clientCPUs); err != nil {
		return err
	}
	t.srvCPUs, t.cliCPUs = slices.Clone(serverCPUs), slices.Clone(clientCPUs)
	return nil
}

// steer points a topology the runner made for an earlier trial at this
// trial's CPUs; a topology without interfaces of its own has nothing to
// steer.
func steer(t Topology, serverCPUs, clientCPUs []int) error {
	if v, ok := t.(*veth); ok {
		return v.steer(serverCPUs, clientCPUs)
	}
	return nil
}

func (t *veth) setRPS(ns, dev string, cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var mask uint64
	for _, c := range cpus {
		mask |= 1 << uint(c)
	}
	path := fmt.Sprintf("/sys/class/net/%s/queues/rx-0/rps_cpus", dev)
	// ip netns exec remounts /sys for the namespace, so the device is visible.
	out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", fmt.Sprintf("echo %x > %s", mask, path)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("set rps on %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (t *veth) Name() string        { return Veth }
func (t *veth) ServerHost() string  { return t.srvAddr }
func (t *veth) ServerNetns() string { return t.srvNS }
func (t *veth) ClientNetns() string { return t.cliNS }
func (t *veth) ServerIface() string { return t.srvIf }
func (t *veth) PacketsSource() string {
	return "server veth end rx_packets + tx_packets (GSO/GRO aggregates count once)"
}

func (t *veth) Packets() (uint64, error) { return linkPackets(t.srvNS, t.srvIf) }

// linkPackets reads an interface's rx+tx packets in a namespace.
func linkPackets(ns, dev string) (uint64, error) {
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		return 0, fmt.Errorf("read %s packets: %w", dev, err)
	}
	var links []struct {
		Stats64 struct {
			RX struct{ Packets uint64 } `json:"rx"`
			TX struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("parse %s packets: %v", dev, err)
	}
	return links[0].Stats64.RX.Packets + links[0].Stats64.TX.Packets, nil
}

// Close deletes the namespaces, which deletes the veth pair with them.
func (t *veth) Close() error {
	var errs []error
	for _, ns := range t.made {
		if err := ip("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	t.made = nil
	return errors.Join(errs...)
}

// NetnsPath is the file a named network namespace is pinned at.
func NetnsPath(name string) string {
	if name == "" {
		return ""
	}
	return "/run/netns/" + name
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SweepStale removes what earlier ringbench runs made and did not remove
// (they were killed), and says what it removed: server cgroups, with every
// process still in them (an external server that outlived its run, which
// also frees the network namespace it held), network namespaces and memif
// socket folders. What belongs to a run still alive is left alone.
func SweepStale() []string {
	removed := sweepCgroups()
	removed = append(removed, sweepNetns()...)
	return append(removed, sweepMemif()...)
}

func sweepNetns() []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var removed []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		name := f[0]
		i := strings.LastIndexByte(name, '-')
		pid, err := strconv.Atoi(name[i+1:])
		if err != nil || processAlive(pid) {
			continue
		}
		if ip("netns", "del", name) == nil {
			removed = append(removed, "network namespace "+name)
		}
	}
	return removed
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
