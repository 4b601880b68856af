package sockets

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// Options of a listening socket.
type Options struct {
	// ReusePort sets SO_REUSEPORT: each of a server's loops binds its own
	// socket to the one port.
	ReusePort bool
	// NonBlock makes the socket non-blocking (epoll); io_uring wants
	// blocking sockets, which it polls itself.
	NonBlock bool
	// RcvBuf, when > 0, asks for a receive buffer of this many bytes (UDP:
	// room for bursts while the loop is busy elsewhere).
	RcvBuf int
}

// Listen returns a socket bound to addr:port (TCP: listening) and the port
// it is bound to.
func Listen(proto backends.Proto, addr [4]byte, port int, o Options) (_, _ int, err error) {
	typ := unix.SOCK_STREAM
	if proto == backends.UDP {
		typ = unix.SOCK_DGRAM
	}
	flags := unix.SOCK_CLOEXEC
	if o.NonBlock {
		flags |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(unix.AF_INET, typ|flags, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("create socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	// SO_REUSEADDR lets a TCP server rebind a port whose old connections
	// sit in TIME_WAIT; on UDP it would let two servers share a port
	// silently, so UDP does without.
	if proto == backends.TCP {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return -1, 0, fmt.Errorf("set SO_REUSEADDR: %w", err)
		}
	}
	if o.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return -1, 0, fmt.Errorf("set SO_REUSEPORT: %w", err)
		}
	}
	if o.RcvBuf > 0 {
		// Best effort: the kernel caps it at net.core.rmem_max.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: addr}); err != nil {
		return -1, 0, fmt.Errorf("bind %v:%d: %w", netip.AddrFrom4(addr), port, err)
	}
	if proto == backends.TCP {
		if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
			return -1, 0, fmt.Errorf("listen: %w", err)
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return -1, 0, fmt.Errorf("get socket name: %w", err)
	}
	sa4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return -1, 0, errors.New("get socket name: not an IPv4 address")
	}
	return fd, sa4.Port, nil
}
