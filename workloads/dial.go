package workloads

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/netns"
)

// connectTimeout bounds the wait for TCP connections at the start.
const connectTimeout = 5 * time.Second

// udpRcvBuf asks for a receive buffer that rides out a loop's scheduling
// hiccups; the kernel caps it at net.core.rmem_max.
const udpRcvBuf = 4 << 20

// dial makes spec.Conns non-blocking sockets connected to target, inside
// target.Netns when set, and waits for TCP connects to complete.
func dial(ctx context.Context, spec Spec, target Target) (fds []int, err error) {
	addr := target.Addr
	if !addr.IsValid() {
		return nil, fmt.Errorf("dial target: invalid address %v", addr)
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	if addr.Addr().Is4() || addr.Addr().Is4In6() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().Unmap().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	typ := unix.SOCK_STREAM
	if spec.Proto == backends.UDP {
		typ = unix.SOCK_DGRAM
	}
	defer func() {
		if err != nil {
			closeAll(fds)
		}
	}()
	err = netns.InNetns(target.Netns, func() error {
		for range spec.Conns {
			fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("create socket: %w", err)
			}
			fds = append(fds, fd)
			if typ == unix.SOCK_STREAM {
				// Requests must leave when written, not when Nagle allows.
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
					return fmt.Errorf("set TCP_NODELAY: %w", err)
				}
			} else {
				_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpRcvBuf) // a hint
			}
			if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
				return fmt.Errorf("connect %s %s: %w", spec.Proto, addr, err)
			}
		}
		return nil
	})
	if err != nil || typ != unix.SOCK_STREAM {
		return fds, err
	}
	return fds, awaitConnected(ctx, fds, spec.Proto, target)
}

// awaitConnected polls the connecting sockets until each is writable, then
// reads its connect result.
func awaitConnected(ctx context.Context, fds []int, proto backends.Proto, target Target) error {
	pending := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pending[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	}
	deadline := time.Now().Add(connectTimeout)
	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connect %s %s: %d of %d connections not up after %v", proto, target.Addr, len(pending), len(fds), connectTimeout)
		}
		// Short polls keep ctx cancellation prompt.
		if _, err := unix.Poll(pending, 50); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll connecting sockets: %w", err)
		}
		left := pending[:0]
		for _, p := range pending {
			if p.Revents == 0 {
				left = append(left, p)
				continue
			}
			soerr, err := unix.GetsockoptInt(int(p.Fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
			if err != nil {
				return fmt.Errorf("connect %s %s: %w", proto, target.Addr, err)
			}
		}
		pending = left
	}
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
