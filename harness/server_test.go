package harness

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/internal/netns"
	"ringbench/internal/testenv"
	"ringbench/meters"
)

// listenScript writes a server for the external backend's tests to dir:
// `python3 listen.py HOST PORT [udp]` listens on HOST:PORT (0: any free
// port), over TCP or UDP, and sleeps.
func listenScript(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("skipped: no python3 for the external server")
	}
	script := filepath.Join(dir, "listen.py")
	if err := os.WriteFile(script, []byte(`import socket, sys, time
if sys.argv[3:] == ["udp"]:
    s = socket.socket(type=socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
else:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
time.sleep(300)
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return script
}

// startExternal starts line as an external server on host 127.0.0.1 of
// topo, told port (0: one ringbench picks).
func startExternal(topo Topology, line string, proto backends.Proto, port int) (*server, error) {
	spec := ServerSpec{Backend: "external", Command: line,
		Config: backends.Config{Host: "127.0.0.1", Proto: proto, Port: port}}
	return startServer(context.Background(), topo, spec)
}

// holdPort listens on addr (port 0: one the kernel picks) in the network
// namespace at nsPath ("" = this one) until the test ends.
func holdPort(t *testing.T, nsPath, addr string) int {
	t.Helper()
	var l net.Listener
	if err := netns.InNetns(nsPath, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// The probe: another process holds the server's port and the
// server listens elsewhere. The trial must fail, not measure the other
// process.
func TestExternalServerPortHeldByAnother(t *testing.T) {
	script := listenScript(t, t.TempDir())
	port := holdPort(t, "", "127.0.0.1:0")
	s, err := startExternal(loopback{}, "python3 "+script+" {host} 0", backends.TCP, port)
	if err == nil {
		s.stop()
		t.Fatalf("started with port %d held by the test process", port)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("error %q does not name port %d", err, port)
	}
}

// Readiness is a listening socket the server's own processes hold (its
// cgroup's, or its process tree's without one): one the test process holds
// on the server's port is not the server's.
func TestWaitListeningOwner(t *testing.T) {
	script := listenScript(t, t.TempDir())
	for _, tc := range []struct {
		name   string
		cgroup bool
	}{{"cgroup", true}, {"process tree", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cgroup {
				skipUnlessCgroups(t)
			}
			start := func(port int) *server {
				argv := []string{"python3", script, "127.0.0.1", strconv.Itoa(port)}
				var s *server
				var err error
				if tc.cgroup {
					s, err = launch(argv, nil, true)
				} else {
					s, err = launchIn(argv, nil, true, -1)
				}
				if err != nil {
					t.Fatal(err)
				}
				if tc.cgroup && s.Cgroup() == "" {
					t.Fatalf("server has no cgroup: %v", s.cgroupErr)
				}
				t.Cleanup(func() { s.stop() })
				return s
			}
			ready := func(s *server, port int) error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return s.waitListening(ctx, loopback{}, backends.Config{Host: "127.0.0.1", Proto: backends.TCP, Port: port})
			}

			held := holdPort(t, "", "127.0.0.1:0")
			err := ready(start(0), held)
			if err == nil {
				t.Fatalf("ready, though port %d is the test process's", held)
			}
			if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the owner (%s)", err, want)
			}

			free, err := serverPort("", backends.TCP, "127.0.0.1", 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := ready(start(free), free); err != nil {
				t.Errorf("the server's own listener: %v", err)
			}
		})
	}
}

// A UDP server is ready once it has a socket bound to its port.
func TestExternalUDPServer(t *testing.T) {
	script := listenScript(t, t.TempDir())
	s, err := startExternal(loopback{}, "python3 "+script+" {host} {port} udp", backends.UDP, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopWithin(t, s, 8*time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// --server-cmd is a shell command line: a list or a cd before the server
// works, and the server, a child of the shell, still dies with the trial.
func TestExternalCompoundCommand(t *testing.T) {
	dir := t.TempDir()
	listenScript(t, dir)
	for _, line := range []string{
		"cd " + dir + " && exec python3 ./listen.py {host} {port}",
		"true; python3 " + dir + "/listen.py {host} {port}",
	} {
		t.Run(line, func(t *testing.T) {
			s, err := startExternal(loopback{}, line, backends.TCP, 0)
			if err != nil {
				t.Fatal(err)
			}
			pids, err := meters.ProcessTree(s.pid)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))); err != nil {
				t.Errorf("dial the server: %v", err)
			} else {
				c.Close()
			}
			if err := stopWithin(t, s, 8*time.Second); err != nil {
				t.Errorf("stop: %v", err)
			}
			for _, pid := range pids {
				if running(pid) {
					t.Errorf("pid %d of the server survived stop", pid)
				}
			}
		})
	}
}

// nsLoopback is loopback moved into a named network namespace of the test's.
type nsLoopback struct {
	loopback
	ns string
}

func (n nsLoopback) ServerNetns() string { return n.ns }

// In a server namespace the port is one the kernel gave there: with only
// 40000 and 40001 to give, 40000 held in the namespace and 40001 in the
// harness's own, the server's port is 40001, and the server listening
// there is found in that namespace's socket table.
func TestExternalPortInNetns(t *testing.T) {
	testenv.SkipUnlessRoot(t, "making a network namespace")
	ns := fmt.Sprintf("rbtest-port-%d", os.Getpid())
	if err := ip("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ip("netns", "del", ns) })
	if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	path := NetnsPath(ns)
	if err := netns.InNetns(path, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40001"), 0)
	}); err != nil {
		t.Fatal(err)
	}
	holdPort(t, path, "127.0.0.1:40000")
	if l, err := net.Listen("tcp", "127.0.0.1:40001"); err == nil {
		defer l.Close()
	}
	script := listenScript(t, t.TempDir())
	s, err := startExternal(nsLoopback{ns: ns}, "python3 "+script+" {host} {port}", backends.TCP, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if s.port != 40001 {
		t.Errorf("port %d, want 40001 (the only one free in the server's namespace)", s.port)
	}
}

func TestParseProcNet(t *testing.T) {
	const head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	for _, tc := range []struct {
		name, table string
		want        []procSocket
		err         bool
	}{
		{"tcp", head + `   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 563 1 00000000bcefefe7 100 0 0 10 0
   1: 0100007F:999C 0100007F:9331 06 00000000:00000000 03:00000ADE 00000000     0        0 0 3 00000000b427acd8
`, []procSocket{
			{netip.MustParseAddr("0.0.0.0"), 2024, "0A", 563},
			{netip.MustParseAddr("127.0.0.1"), 39324, "06", 0},
		}, false},
		{"tcp6 v4-mapped", head + `   0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7781 1 0000000000000000 100 0 0 10 0
`, []procSocket{{netip.MustParseAddr("::ffff:127.0.0.1"), 8080, "0A", 7781}}, false},
		{"udp", head + `  801: 01CBA8C0:4E20 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9012 2 0000000000000000 0
`, []procSocket{{netip.MustParseAddr("192.168.203.1"), 20000, "07", 9012}}, false},
		{"empty", head, nil, false},
		{"short line", head + "   0: 0100007F:1F90 00000000:0000 0A\n", nil, true},
		{"bad address", head + "   0: 0100007:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcNet([]byte(tc.table))
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
