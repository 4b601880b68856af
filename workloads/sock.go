package workloads

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// sock is what every flow shares: its socket and its place in the loop.
type sock struct {
	l     *loop
	fd    int
	conn  int   // index over all connections; seeds its request offsets
	tag   int32 // index in l.flows, the epoll event data
	dgram bool  // UDP
	dead  bool
	out   bool // EPOLLOUT is watched
	// queue holds the intended send times of open-loop requests that wait
	// for a free slot (or a writable socket).
	queue backlog
	dirty bool // in l.dirty
}

func (s *sock) base() *sock { return s }

// watchOut turns write readiness events on or off; the syscall happens only
// on a change.
func (s *sock) watchOut(on bool) {
	if s.out == on || s.dead {
		return
	}
	s.out = on
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: s.tag}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(s.l.ep, unix.EPOLL_CTL_MOD, s.fd, &ev); err != nil {
		s.l.fatal = fmt.Errorf("modify epoll: %w", err)
	}
}

// errEOF stands for a read of zero bytes: the peer closed the connection.
var errEOF = errors.New("closed by peer")

// ioFailed handles an error from read or write on s: a connection the peer
// reset or refused is counted and closed; anything else is a bug and stops
// the loop.
func (s *sock) ioFailed(op string, err error) {
	if connGone(err) {
		s.kill(nanotime(), 1, 0, err)
		return
	}
	s.l.fatal = fmt.Errorf("%s connection %d: %w", op, s.conn, err)
}

func connGone(err error) bool {
	switch {
	case err == errEOF,
		errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.ECONNREFUSED),
		errors.Is(err, unix.EPIPE), errors.Is(err, unix.ECONNABORTED),
		errors.Is(err, unix.ETIMEDOUT), errors.Is(err, unix.EHOSTUNREACH),
		errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.ENOTCONN):
		return true
	}
	return false
}

// kill closes a dead connection and counts resets and timeouts against it.
func (s *sock) kill(now int64, resets, timeouts uint64, cause error) {
	if s.dead {
		return
	}
	l := s.l
	if l.inWindow(now) {
		l.n.errs.Reset += resets
		l.n.errs.Timeout += timeouts
	}
	s.closeFD()
	s.dead = true
	l.live--
	l.r.connDied(s.conn, now, cause)
}

func (s *sock) closeFD() {
	if s.fd >= 0 {
		// Closing the descriptor also removes it from the epoll set.
		unix.Close(s.fd)
		s.fd = -1
	}
}

// Results of read and write besides a byte count.
const (
	wouldBlock = -1 // EAGAIN: wait for readiness
	failed     = -2 // the connection died or the loop failed; handled
)

// read reads into p, retrying on EINTR. It returns the byte count,
// wouldBlock or failed; a zero-byte read is EOF on a stream socket and an
// empty datagram on a datagram socket.
func (s *sock) read(p []byte) int {
	for {
		n, err := unix.Read(s.fd, p)
		switch {
		case err == nil && (n > 0 || s.dgram):
			return n
		case err == nil:
			s.ioFailed("read", errEOF)
			return failed
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return wouldBlock
		}
		s.ioFailed("read", err)
		return failed
	}
}

// write writes p once, retrying on EINTR, and returns like read.
func (s *sock) write(p []byte) int {
	for {
		n, err := unix.Write(s.fd, p)
		switch {
		case err == nil:
			return n
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return wouldBlock
		}
		s.ioFailed("write", err)
		return failed
	}
}

// mmsgResult turns a recvmmsg or sendmmsg result into a count, wouldBlock
// or failed, like read and write.
func (s *sock) mmsgResult(op string, n int, err error) int {
	switch {
	case err == nil:
		return n
	case err == unix.EAGAIN, err == unix.EINTR:
		return wouldBlock // epoll reports the socket again
	}
	s.ioFailed(op, err)
	return failed
}

// send writes p once; when the socket is full it watches for room and
// reports false, as it does when the connection failed.
func (s *sock) send(p []byte) (int, bool) {
	n := s.write(p)
	if n == wouldBlock {
		s.watchOut(true)
	}
	return n, n >= 0
}

// backlog is a FIFO of intended send times. It grows when the generator
// falls behind and never shrinks, so a steady run allocates nothing.
type backlog struct {
	buf        []int64
	head, size int
}

func (b *backlog) len() int { return b.size }

func (b *backlog) push(t int64) {
	if b.size == len(b.buf) {
		b.grow()
	}
	b.buf[(b.head+b.size)%len(b.buf)] = t
	b.size++
}

func (b *backlog) peek() int64 { return b.buf[b.head] }

// at returns the i-th oldest time, i < len().
func (b *backlog) at(i int) int64 { return b.buf[(b.head+i)%len(b.buf)] }

func (b *backlog) pop() int64 {
	t := b.buf[b.head]
	b.head++
	if b.head == len(b.buf) {
		b.head = 0
	}
	b.size--
	return t
}

func (b *backlog) grow() {
	n := 2 * len(b.buf)
	if n == 0 {
		n = 16
	}
	buf := make([]int64, n)
	for i := 0; i < b.size; i++ {
		buf[i] = b.buf[(b.head+i)%len(b.buf)]
	}
	b.buf, b.head = buf, 0
}
