package epoll

import (
	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// conn is one accepted TCP connection.
type conn struct {
	fd int
	// buf is allocated at accept and reused for every read.
	buf []byte
	// buf[off:end] is echo output not yet written: while it is pending the
	// connection reads nothing more.
	off, end int
	// srcOff is a source's stream offset: the next byte it writes is
	// SourceByte(srcOff).
	srcOff uint64
	// partial is the bytes read of a request not yet complete, for an
	// echo whose work counts requests (burn).
	partial int
	// readable and writable remember the last edge epoll reported until a
	// read or write returns EAGAIN, since edge-triggered epoll will not
	// report it again.
	readable, writable bool
	// hungUp: the peer shut down or reset; reads go on until they say so.
	hungUp         bool
	queued, closed bool
}

// accept takes every pending connection (edge-triggered: until EAGAIN).
func (l *loop) accept() {
	for {
		// The Sockaddr that Accept4 returns costs an allocation per
		// connection, never per packet.
		fd, _, err := unix.Accept4(l.sock, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		l.count.syscalls++
		switch err {
		case nil:
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			// EMFILE, ENOBUFS...: the connections wait in the backlog
			// until the next edge.
			l.count.errors++
			return
		}
		if l.service == backends.Echo {
			// Small echoes must not wait for Nagle's timer.
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			l.count.syscalls++
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
		l.count.syscalls++
		if err != nil {
			unix.Close(fd)
			l.count.syscalls++
			l.count.errors++
			continue
		}
		for fd >= len(l.conns) {
			l.conns = append(l.conns, nil)
		}
		l.conns[fd] = &conn{fd: fd, buf: make([]byte, l.connBuffer)}
		l.count.accepted++
	}
}

// ready records the edges epoll reported and serves the connection.
func (c *conn) ready(l *loop, events uint32) {
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
	}
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.hungUp = true
	}
	if events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.writable = true
	}
	c.step(l)
}

// step serves the connection until it would block or its budget is spent.
func (c *conn) step(l *loop) {
	var more bool
	switch l.service {
	case backends.Echo:
		more = c.echo(l)
	case backends.Sink:
		more = c.sink(l)
	case backends.Source:
		more = c.source(l)
	}
	if more && !c.closed && !c.queued {
		c.queued = true
		l.again = append(l.again, c)
	}
}

// echo writes back what it read, after the variant's work on it (none for
// epoll). Per packet: one read and one write syscall, no allocation. It returns true when its budget ran out with
// work left.
func (c *conn) echo(l *loop) bool {
	for range ioBudget {
		if c.off < c.end {
			if !c.writable {
				return false // EPOLLOUT will resume it
			}
			n, ok := c.write(l, c.buf[c.off:c.end])
			if !ok {
				return false
			}
			c.off += n
			continue
		}
		if !c.readable {
			return false
		}
		n, ok := c.read(l)
		if !ok {
			return false
		}
		l.work.stream(l, c, n)
		c.off, c.end = 0, n
	}
	return true
}

// sink reads and discards.
func (c *conn) sink(l *loop) bool {
	for range ioBudget {
		if !c.readable {
			return false
		}
		if _, ok := c.read(l); !ok {
			return false
		}
	}
	return true
}

// source writes the pattern continuously, msgSize bytes per write, and
// reads only to notice the peer's close.
func (c *conn) source(l *loop) bool {
	for range ioBudget {
		if c.readable {
			if _, ok := c.read(l); !ok && c.closed {
				return false
			}
			continue
		}
		if !c.writable {
			return false
		}
		k := c.srcOff % backends.SourcePeriod
		n, ok := c.write(l, l.pattern[k:k+uint64(l.msgSize)])
		if !ok {
			return false
		}
		c.srcOff += uint64(n)
	}
	return true
}

// write writes p once, retrying on EINTR. It returns the bytes written and
// true, or false when the socket buffer is full (EAGAIN: wait for EPOLLOUT)
// or the connection failed and is closed.
func (c *conn) write(l *loop, p []byte) (int, bool) {
	for {
		n, err := unix.Write(c.fd, p)
		l.count.syscalls++
		switch err {
		case nil:
			l.count.txBytes += uint64(n)
			l.count.txMsgs++
			if n < len(p) {
				// The socket buffer is full: EPOLLOUT reports the room,
				// without a write that returns EAGAIN.
				c.writable = false
			}
			return n, true
		case unix.EINTR:
		case unix.EAGAIN:
			c.writable = false
			return 0, false
		default:
			l.fail(c)
			return 0, false
		}
	}
}

// read reads once into the connection's buffer, retrying on EINTR. It
// returns the bytes read and true, or false when there is nothing to read
// (EAGAIN) or the connection is gone: closed at EOF (all earlier input has
// been served by then, so a half-closed peer still gets its echo) or failed
// on an error.
func (c *conn) read(l *loop) (int, bool) {
	for {
		n, err := unix.Read(c.fd, c.buf)
		l.count.syscalls++
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.readable = false
			return 0, false
		case err != nil:
			l.fail(c)
			return 0, false
		case n == 0:
			l.closeConn(c)
			return 0, false
		}
		l.count.rxBytes += uint64(n)
		l.count.rxMsgs++
		if n < len(c.buf) && !c.hungUp {
			// A short read drained the socket; bytes that arrive later
			// raise a new edge, so the EAGAIN read is a syscall saved.
			// Not after a hang-up: its EOF or error is still to be read
			// and no new edge will announce it.
			c.readable = false
		}
		return n, true
	}
}

// fail counts a connection error (a reset, a broken pipe) and closes it.
func (l *loop) fail(c *conn) {
	l.count.errors++
	l.closeConn(c)
}

func (l *loop) closeConn(c *conn) {
	unix.Close(c.fd)
	l.count.syscalls++
	l.count.closed++
	l.conns[c.fd] = nil
	c.closed = true
	c.buf = nil
}
