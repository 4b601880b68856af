package harness

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"ringbench/backends"
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
			pids := meters.ProcessTree(s.pid)
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

