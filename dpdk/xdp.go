package dpdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// net_af_xdp attaches an XDP program to its interface and takes it off when
// the port closes; a server killed with SIGKILL (a stop that escalated, or
// the next run's sweep of a killed run's cgroup) leaves it attached, and
// the interface then hands its packets to a socket nobody reads. On veth
// the program dies with the namespace; on a real interface (--topology
// hosts, --opt vdev=net_af_xdp0,iface=IF) it stays until someone removes it.
// So the server records what it attached in a state file beside the
// hugepages' (<pid>-<n>.json in hugepagesStateDir/xdp), removes the file
// when its port has closed, and the next run detaches a dead server's
// program if it is still the one recorded (SweepStaleXDP).

// xdpState is one state file: the programs a server's port attached to one
// interface.
type xdpState struct {
	Pid int `json:"pid"`
	// Netns is the named network namespace (ip netns) of the interface, ""
	// for the host's own.
	Netns    string        `json:"netns,omitempty"`
	Iface    string        `json:"iface"`
	Ifindex  int           `json:"ifindex"`
	Programs []xdpAttached `json:"programs"`
}

// xdpAttached is a program attached in one mode, as ip -j link prints it.
type xdpAttached struct {
	Mode int `json:"mode"` // 1 driver, 2 generic (skb), 3 offloaded
	Prog struct {
		ID int `json:"id"`
	} `json:"prog"`
}

// xdpOff is ip link's keyword that detaches a program of each mode.
var xdpOff = map[int]string{1: "xdpdrv", 2: "xdpgeneric", 3: "xdpoffload"}

var xdpRecords atomic.Int64

func xdpStateDir() string { return filepath.Join(hugepagesStateDir, "xdp") }

// afxdpIface is the interface of an af_xdp vdev ("net_af_xdp0,iface=X,..."),
// "" for any other port.
func afxdpIface(vdev string) string {
	args := strings.Split(vdev, ",")
	if !strings.HasPrefix(args[0], "net_af_xdp") {
		return ""
	}
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "iface="); ok {
			return v
		}
	}
	return ""
}

// xdpBefore reads the XDP programs on an af_xdp vdev's interface before
// its port opens: they are another's (a program in another mode, a
// dispatcher), and recordXDP leaves them out.
func xdpBefore(vdev string) ([]xdpAttached, error) {
	iface := afxdpIface(vdev)
	if iface == "" {
		return nil, nil
	}
	netns, named, err := netnsName()
	if err != nil || !named {
		return nil, err
	}
	_, progs, err := xdpPrograms(netns, iface)
	if err != nil {
		return nil, fmt.Errorf("read xdp programs before the port opens: %w", err)
	}
	return progs, nil
}

// recordXDP records the XDP programs attached to the interface of an
// af_xdp vdev since before (xdpBefore), in this thread's network namespace, for a later run to
// detach should process pid (this one, or a testpmd child) die with its
// port open; forget removes the record once the port is closed. A
// namespace without a name dies with its run, taking the program along:
// nothing is recorded for it.
func recordXDP(vdev string, pid int, before []xdpAttached) (forget func(), err error) {
	forget = func() {}
	iface := afxdpIface(vdev)
	if iface == "" {
		return forget, nil
	}
	netns, named, err := netnsName()
	if err != nil || !named {
		return forget, err
	}
	st := xdpState{Pid: pid, Netns: netns, Iface: iface}
	var now []xdpAttached
	if st.Ifindex, now, err = xdpPrograms(netns, iface); err != nil {
		return forget, fmt.Errorf("record xdp program: %w", err)
	}
	for _, prog := range now {
		if !slices.Contains(before, prog) {
			st.Programs = append(st.Programs, prog)
		}
	}
	if len(st.Programs) == 0 {
		return forget, nil
	}
	path := filepath.Join(xdpStateDir(), fmt.Sprintf("%d-%d.json", st.Pid, xdpRecords.Add(1)))
	if err := writeXDPState(path, st); err != nil {
		return forget, fmt.Errorf("record xdp program: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

// netnsName names this process's network namespace: "" for the host's
// (init's), else the name under /run/netns that is the same namespace;
// named is false for a namespace with no name.
func netnsName() (name string, named bool, err error) {
	self, err := nsInode("/proc/thread-self/ns/net")
	if err != nil {
		return "", false, fmt.Errorf("read network namespace: %w", err)
	}
	if host, err := nsInode("/proc/1/ns/net"); err == nil && host == self {
		return "", true, nil
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if ino, err := nsInode(filepath.Join("/run/netns", e.Name())); err == nil && ino == self {
			return e.Name(), true, nil
		}
	}
	return "", false, nil
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// xdpPrograms reads an interface's index and attached XDP programs.
func xdpPrograms(netns, iface string) (ifindex int, progs []xdpAttached, err error) {
	out, err := ipCommand(netns, "-j", "link", "show", "dev", iface).Output()
	if err != nil {
		return 0, nil, fmt.Errorf("ip link show dev %s: %w", iface, err)
	}
	var links []struct {
		Ifindex int `json:"ifindex"`
		XDP     struct {
			Mode     int               `json:"mode"`
			Prog     *struct{ ID int } `json:"prog"`
			Attached []xdpAttached     `json:"attached"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, nil, fmt.Errorf("parse ip link show dev %s: %q", iface, out)
	}
	l := links[0]
	progs = l.XDP.Attached
	if len(progs) == 0 && l.XDP.Prog != nil {
		// An ip that prints no "attached" list: the one program.
		p := xdpAttached{Mode: l.XDP.Mode}
		p.Prog.ID = l.XDP.Prog.ID
		progs = append(progs, p)
	}
	return l.Ifindex, progs, nil
}

// ipCommand is ip with args, in the named namespace netns ("" = here).
func ipCommand(netns string, args ...string) *exec.Cmd {
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	return exec.Command("ip", args...)
}

func writeXDPState(path string, st xdpState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// SweepStaleXDP detaches the XDP programs that servers no longer alive
// attached and never took off (they were killed), each only while it is
// still the program recorded on the same interface: one attached since by
// anyone else is left alone. It says what it detached.
func SweepStaleXDP() ([]string, error) {
	entries, err := os.ReadDir(xdpStateDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep xdp programs: %w", err)
	}
	var notes []string
	var errs []error
	for _, e := range entries {
		path := filepath.Join(xdpStateDir(), e.Name())
		owner, _, _ := strings.Cut(e.Name(), "-")
		if pid, err := strconv.Atoi(owner); err != nil || !e.Type().IsRegular() || pidAlive(pid) {
			continue
		}
		n, err := detachStale(path)
		notes = append(notes, n...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(path)
	}
	return notes, errors.Join(errs...)
}

// detachStale detaches the programs of one dead server's state file that
// are still attached as recorded.
func detachStale(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweep xdp programs: %w", err)
	}
	var st xdpState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("sweep xdp programs: parse %s: %w", path, err)
	}
	if st.Netns != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", st.Netns)); err != nil {
			return nil, nil // the namespace, and the program with it, is gone
		}
	}
	ifindex, cur, err := xdpPrograms(st.Netns, st.Iface)
	if err != nil || ifindex != st.Ifindex {
		return nil, nil // the interface is gone, or the name is another's now
	}
	var notes []string
	for _, rec := range st.Programs {
		off, ok := xdpOff[rec.Mode]
		if !ok || !slices.Contains(cur, rec) {
			continue
		}
		// ip cannot detach only if expected (IFLA_XDP_EXPECTED_FD): a
		// program attached between the check and the detach would go.
		if out, err := ipCommand(st.Netns, "link", "set", "dev", st.Iface, off, "off").CombinedOutput(); err != nil {
			return notes, fmt.Errorf("detach xdp program %d from %s: %v: %s", rec.Prog.ID, st.Iface, err, strings.TrimSpace(string(out)))
		}
		notes = append(notes, fmt.Sprintf("XDP program %d on %s that killed server %d attached", rec.Prog.ID, st.Iface, st.Pid))
	}
	return notes, nil
}
