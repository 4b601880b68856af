package harness

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"ringbench/backends"
	"ringbench/internal/netns"
)

// An external server cannot say where it listens, so ringbench tells it a
// port and checks the answer itself:
//  1. serverPort binds the port in the server's namespace and releases it:
//     one the kernel gives there, or the user's, refused up front when
//     another socket holds it.
//  2. waitListening reads that namespace's socket table until a socket of
//     the trial's protocol serves the port, and counts the server ready
//     only when every such socket is held by the server's own processes
//     (its cgroup, else its process tree): another program's listener
//     would be measured in its place.

// serverPort returns the port an external server is told to listen on:
// port when it is not 0, else one the kernel picks. Either way it is bound
// and released on host in the network namespace at nsPath ("" = this one),
// so the server finds it free unless something takes it in between.
func serverPort(nsPath string, proto backends.Proto, host string, port int) (int, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var got int
	err := netns.InNetns(nsPath, func() error {
		if proto == backends.UDP {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return err
			}
			got = c.LocalAddr().(*net.UDPAddr).Port
			return c.Close()
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		got = l.Addr().(*net.TCPAddr).Port
		return l.Close()
	})
	switch {
	case err != nil && port != 0:
		return 0, fmt.Errorf("check server port %d is free: %w", port, err)
	case err != nil:
		return 0, fmt.Errorf("pick a server port: %w", err)
	}
	return got, nil
}

// procSocket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type procSocket struct {
	addr  netip.Addr
	port  int
	state string // hex, as the kernel prints it: 0A is TCP LISTEN, 07 an unconnected UDP socket
	inode uint64
}

// parseProcNet parses a /proc/net/{tcp,tcp6,udp,udp6} table: a header, then
// "sl local_address rem_address st ... uid timeout inode ...", addresses as
// hex words in the machine's byte order, ports as big hex.
func parseProcNet(b []byte) ([]procSocket, error) {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	var out []procSocket
	for _, line := range lines[1:] {
		f := strings.Fields(string(line))
		if len(f) < 10 {
			return nil, fmt.Errorf("socket table line %q: want at least 10 fields", line)
		}
		a, p, ok := strings.Cut(f[1], ":")
		raw, err := hex.DecodeString(a)
		if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
			return nil, fmt.Errorf("socket table line %q: bad local address", line)
		}
		for i := 0; i < len(raw); i += 4 {
			binary.BigEndian.PutUint32(raw[i:], binary.NativeEndian.Uint32(raw[i:]))
		}
		addr, _ := netip.AddrFromSlice(raw)
		port, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("socket table line %q: bad local port", line)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("socket table line %q: bad inode", line)
		}
		out = append(out, procSocket{addr: addr, port: int(port), state: f[3], inode: inode})
	}
	return out, nil
}

// portSockets returns the inodes of the sockets that serve proto on
// host:port (bound to host or to every address) in the namespace at nsPath:
// TCP listeners, or UDP sockets not connected to a peer.
func portSockets(nsPath string, proto backends.Proto, host netip.Addr, port int) ([]uint64, error) {
	tables, state := []string{"tcp", "tcp6"}, "0A"
	if proto == backends.UDP {
		tables, state = []string{"udp", "udp6"}, "07"
	}
	var inodes []uint64
	err := netns.InNetns(nsPath, func() error {
		for _, name := range tables {
			// thread-self: this thread may be the one in the server's namespace.
			b, err := os.ReadFile("/proc/thread-self/net/" + name)
			if os.IsNotExist(err) && name != tables[0] {
				continue // IPv6 off
			}
			if err != nil {
				return fmt.Errorf("read socket table: %w", err)
			}
			socks, err := parseProcNet(b)
			if err != nil {
				return fmt.Errorf("read %s socket table: %w", name, err)
			}
			for _, s := range socks {
				if s.state == state && s.port == port && (s.addr.IsUnspecified() || s.addr.Unmap() == host) {
					inodes = append(inodes, s.inode)
				}
			}
		}
		return nil
	})
	return inodes, err
}

// socketsOf returns the inodes of the sockets the processes pids have open.
func socketsOf(pids []int) map[uint64]bool {
	held := map[uint64]bool{}
	for _, pid := range pids {
		fds := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		ents, _ := os.ReadDir(fds)
		for _, e := range ents {
			if ino, ok := socketInode(filepath.Join(fds, e.Name())); ok {
				held[ino] = true
			}
		}
	}
	return held
}

// socketInode reads a /proc/PID/fd link to a socket, "socket:[INODE]".
func socketInode(fd string) (uint64, bool) {
	link, err := os.Readlink(fd)
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return ino, err == nil
}

// socketHolder names a process that holds the socket inode, for an error
// message: "pid N (COMM)", or a phrase when none is found (a process this
// one may not inspect, or one that has just exited).
func socketHolder(inode uint64) string {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if socketsOf([]int{pid})[inode] {
			comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
			return fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
		}
	}
	return "a process ringbench cannot see"
}
