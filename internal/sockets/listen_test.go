package sockets

import (
	"testing"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestListen(t *testing.T) {
	lo := [4]byte{127, 0, 0, 1}
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		t.Run(string(proto), func(t *testing.T) {
			fd, port, err := Listen(proto, lo, 0, Options{ReusePort: true, NonBlock: true})
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if port == 0 {
				t.Fatal("port 0: the kernel's choice was not read back")
			}
			// SO_REUSEPORT lets a second loop join the port.
			fd2, port2, err := Listen(proto, lo, port, Options{ReusePort: true})
			if err != nil {
				t.Fatalf("second socket on port %d: %v", port, err)
			}
			unix.Close(fd2)
			if port2 != port {
				t.Errorf("second socket bound %d, want %d", port2, port)
			}
			// Without it, the port is taken.
			if fd3, _, err := Listen(proto, lo, port, Options{}); err == nil {
				unix.Close(fd3)
				t.Errorf("a socket without SO_REUSEPORT bound a taken port")
			}
		})
	}
}
