package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"

	"ringbench/backends"
)

// tcpSizes are the TCP message sizes echoed: odd and MSS-sized ones, and up
// to the largest message the workloads send.
var tcpSizes = []int{1, 7, 64, 1000, 1460, 4096, 16 << 10, backends.MaxTCPMessage}

// payload returns n reproducible pseudo-random bytes, different per seed,
// so a byte from the wrong place or the wrong message shows.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// exchange writes msgs back to back from one goroutine while it reads the
// echo, and checks the echo equals their concatenation.
func exchange(c net.Conn, msgs ...[]byte) error {
	var want []byte
	for _, m := range msgs {
		want = append(want, m...)
	}
	werr := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if _, err := c.Write(m); err != nil {
				werr <- fmt.Errorf("write: %w", err)
				return
			}
		}
		werr <- nil
	}()
	got := make([]byte, len(want))
	_, rerr := io.ReadFull(c, got)
	if rerr != nil {
		c.Close() // unblocks the writer
	}
	if err := <-werr; err != nil && rerr == nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("read echo of %d bytes: %w", len(want), rerr)
	}
	return compare(got, want)
}

// compare says where got first differs from want.
func compare(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("byte %d of %d is %#02x, want %#02x", i, len(want), got[i], want[i])
		}
	}
	return nil
}

func (s suite) tcpEcho(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	for i, size := range tcpSizes {
		t.Run("size="+strconv.Itoa(size), func(t *testing.T) {
			c := h.dial(t)
			// Twice on one connection: the second shows the first left
			// nothing behind.
			for round := range 2 {
				if err := exchange(c, payload(uint64(i*2+round), size)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func (s suite) tcpPipelined(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	const depth = 16
	for i, size := range tcpSizes {
		t.Run("size="+strconv.Itoa(size), func(t *testing.T) {
			c := h.dial(t)
			msgs := make([][]byte, depth)
			for j := range msgs {
				msgs[j] = payload(uint64(i*depth+j), size)
			}
			if err := exchange(c, msgs...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// echoConns dials n connections at once, then has each echo rounds
// messages of size bytes concurrently, and returns the first failure.
func (h *server) echoConns(t *testing.T, n, rounds, size int) {
	t.Helper()
	conns := h.dialN(t, n)
	err := concurrently(n, func(i int) error {
		for r := range rounds {
			if err := exchange(conns[i], payload(uint64(i*rounds+r), size)); err != nil {
				return fmt.Errorf("connection %d round %d: %w", i, r, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// concurrently runs f(0) .. f(n-1) each on its own goroutine and joins
// their errors.
func concurrently(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s suite) tcpManyConns(t *testing.T) {
	const conns = 300
	h := s.start(t, s.config(s.o.OneLoop))
	h.echoConns(t, conns, 3, 100)
	h.eventually(t, "Accepted = 300", func(c backends.Counters) bool { return c.Accepted == conns })
}

func (s suite) tcpTwoLoops(t *testing.T) {
	if !usableCPUs(s.o.TwoLoops) {
		t.Skipf("skipped: two loops need CPUs %v", s.o.TwoLoops)
	}
	const conns = 32
	h := s.start(t, s.config(s.o.TwoLoops))
	h.echoConns(t, conns, 5, 1000)
	h.eventually(t, "Accepted = 32, RxBytes = TxBytes", func(c backends.Counters) bool {
		return c.Accepted == conns && c.RxBytes == c.TxBytes
	})
}

func (s suite) tcpHalfClose(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	c := h.dial(t)
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Skipf("skipped: the dialer's %T has no CloseWrite", c)
	}
	want := payload(1, 256<<10)
	werr := make(chan error, 1)
	go func() {
		if _, err := c.Write(want); err != nil {
			werr <- fmt.Errorf("write: %w", err)
			return
		}
		werr <- hc.CloseWrite()
	}()
	// io.ReadAll returns at EOF: the server must close its side once it
	// has echoed everything.
	got, rerr := io.ReadAll(c)
	if rerr != nil {
		c.Close()
	}
	if err := <-werr; err != nil {
		t.Fatalf("half-close: %v", err)
	}
	if rerr != nil {
		t.Fatalf("read echo until EOF: %v (after %d of %d bytes)", rerr, len(got), len(want))
	}
	if err := compare(got, want); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "Closed = 1", func(c backends.Counters) bool { return c.Closed == 1 })
}

func (s suite) tcpReset(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	c := h.dial(t)
	lc, ok := c.(interface{ SetLinger(int) error })
	if !ok {
		t.Skipf("skipped: the dialer's %T has no SetLinger", c)
	}
	if err := exchange(c, payload(1, 1000)); err != nil {
		t.Fatal(err)
	}
	// Mid-stream: bytes on their way in and echoes unread when the RST
	// goes out.
	if _, err := c.Write(payload(2, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := lc.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	h.eventually(t, "Errors >= 1 after a reset", func(c backends.Counters) bool { return c.Errors >= 1 })
	// The server keeps serving.
	if err := exchange(h.dial(t), payload(3, 4096)); err != nil {
		t.Fatalf("echo after a peer reset: %v", err)
	}
}

func (s suite) tcpEchoCounters(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	const conns, rounds, size = 4, 8, 512
	h.echoConns(t, conns, rounds, size)
	const total = conns * rounds * size
	c := h.eventually(t, "Accepted = 4, RxBytes = TxBytes = 16384, RxMsgs and TxMsgs > 0", func(c backends.Counters) bool {
		return c.Accepted == conns && c.RxBytes == total && c.TxBytes == total && c.RxMsgs > 0 && c.TxMsgs > 0
	})
	h.checkSyscalls(t)
	if c.Errors != 0 || c.Dropped != 0 {
		t.Errorf("counters: Errors %d, Dropped %d after clean echoes", c.Errors, c.Dropped)
	}
}

func (s suite) tcpSink(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	const conns, size = 2, 1 << 20
	cs := h.dialN(t, conns)
	err := concurrently(conns, func(i int) error {
		defer cs[i].Close()
		if _, err := cs[i].Write(payload(uint64(i), size)); err != nil {
			return fmt.Errorf("write to sink: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := h.eventually(t, "RxBytes = 2 MiB, Accepted = Closed = 2", func(c backends.Counters) bool {
		return c.RxBytes == conns*size && c.Accepted == conns && c.Closed == conns
	})
	h.checkSyscalls(t)
	if c.TxBytes != 0 {
		t.Errorf("counters: a sink sent %d bytes", c.TxBytes)
	}
}

func (s suite) tcpSource(t *testing.T) {
	cfg := s.config(s.o.OneLoop)
	cfg.MsgSize = 1000 // not a divisor of the pattern's period nor a power of two
	h := s.start(t, cfg)
	const conns, want = 2, 256 << 10
	cs := h.dialN(t, conns)
	err := concurrently(conns, func(i int) error {
		if err := readSource(cs[i], want); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "Accepted = 2, TxBytes >= what the clients read", func(c backends.Counters) bool {
		return c.Accepted == conns && c.TxBytes >= conns*want
	})
	h.checkSyscalls(t)
}

// readSource reads n bytes of a TCP source and checks each against the
// pattern from offset 0.
func readSource(c net.Conn, n int) error {
	buf := make([]byte, 32<<10)
	want := make([]byte, len(buf))
	for off := 0; off < n; {
		k, err := c.Read(buf)
		if k > 0 {
			backends.FillSource(want[:k], uint64(off))
			if err := compare(buf[:k], want[:k]); err != nil {
				return fmt.Errorf("source stream at offset %d: %w", off, err)
			}
			off += k
		}
		if err != nil {
			return fmt.Errorf("read source at offset %d: %w", off, err)
		}
	}
	return nil
}
