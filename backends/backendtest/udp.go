package backendtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"ringbench/backends"
)

// udpSizes are the UDP payloads echoed, up to the largest unfragmented one.
var udpSizes = []int{1, 7, 64, 512, 1000, 1400, backends.MaxUDPPayload}

// udpWait is how long a client waits for a datagram before it sends again:
// UDP may lose one even on loopback, so a missing reply is retried, never
// a verdict; a wrong reply always is.
const udpWait = 300 * time.Millisecond

const udpTries = 10

// udpEchoOne sends p until its echo comes back and checks the echo. A
// late echo of an earlier datagram on c (one sent again after a timeout
// comes back twice) is passed over.
func udpEchoOne(c net.Conn, p []byte, earlier ...[]byte) error {
	buf := make([]byte, 64<<10)
	for range udpTries {
		if _, err := c.Write(p); err != nil {
			return fmt.Errorf("send %d bytes: %w", len(p), err)
		}
		c.SetReadDeadline(time.Now().Add(udpWait))
		for {
			n, err := c.Read(buf)
			if isTimeout(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("read echo: %w", err)
			}
			if slices.ContainsFunc(earlier, func(e []byte) bool { return bytes.Equal(e, buf[:n]) }) {
				continue
			}
			return compare(buf[:n], p)
		}
	}
	return fmt.Errorf("no echo of a %d-byte datagram after %d tries", len(p), udpTries)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s suite) udpEcho(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	for i, size := range udpSizes {
		t.Run("size="+strconv.Itoa(size), func(t *testing.T) {
			c := h.dial(t)
			first, second := payload(uint64(i*2), size), payload(uint64(i*2+1), size)
			if err := udpEchoOne(c, first); err != nil {
				t.Fatal(err)
			}
			if err := udpEchoOne(c, second, first); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// udpBurst sends datagrams back to back, more than one receive batch,
// then checks that each echo equals the datagram with its sequence number.
func (s suite) udpBurst(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	c := h.dial(t)
	if err := udpEchoBurst(c, 0, 100, 200); err != nil {
		t.Fatal(err)
	}
}

// udpEchoBurst sends n datagrams of size bytes (an 8-byte sequence number
// from first, then pseudo-random bytes) back to back, and re-sends the
// ones whose echo has not come, until every echo came and matched.
func udpEchoBurst(c net.Conn, first, n, size int) error {
	sent := make(map[uint64][]byte, n)
	for i := range n {
		seq := uint64(first + i)
		p := payload(seq, size)
		binary.LittleEndian.PutUint64(p, seq)
		sent[seq] = p
	}
	buf := make([]byte, 64<<10)
	for try := 0; len(sent) > 0; try++ {
		if try == udpTries {
			return fmt.Errorf("%d of %d datagrams never echoed after %d tries", len(sent), n, udpTries)
		}
		for _, p := range sent {
			if _, err := c.Write(p); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
		for len(sent) > 0 {
			c.SetReadDeadline(time.Now().Add(udpWait))
			k, err := c.Read(buf)
			if isTimeout(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("read echo: %w", err)
			}
			if k < 8 {
				return fmt.Errorf("echo of %d bytes, sent %d", k, size)
			}
			seq := binary.LittleEndian.Uint64(buf)
			want, ok := sent[seq]
			if !ok {
				if seq >= uint64(first) && seq < uint64(first+n) {
					continue // a late echo of a datagram sent twice
				}
				return fmt.Errorf("echo carries sequence %d, never sent", seq)
			}
			if err := compare(buf[:k], want); err != nil {
				return fmt.Errorf("echo of datagram %d: %w", seq, err)
			}
			delete(sent, seq)
		}
	}
	return nil
}

func (s suite) udpEchoCounters(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	c := h.dial(t)
	const n, size = 64, 100
	if err := udpEchoBurst(c, 0, n, size); err != nil {
		t.Fatal(err)
	}
	got := h.eventually(t, "RxMsgs = TxMsgs >= 64, RxBytes = TxBytes", func(c backends.Counters) bool {
		return c.RxMsgs >= n && c.RxMsgs == c.TxMsgs && c.RxBytes == c.TxBytes
	})
	h.checkSyscalls(t)
	if got.RxBytes != got.RxMsgs*size {
		t.Errorf("counters: RxBytes %d for %d datagrams of %d bytes", got.RxBytes, got.RxMsgs, size)
	}
	if got.Dropped != 0 || got.Errors != 0 || got.Accepted != 0 {
		t.Errorf("counters: Dropped %d, Errors %d, Accepted %d after clean UDP echoes", got.Dropped, got.Errors, got.Accepted)
	}
}

func (s suite) udpTwoLoops(t *testing.T) {
	if !usableCPUs(s.o.TwoLoops) {
		t.Skipf("skipped: two loops need CPUs %v", s.o.TwoLoops)
	}
	h := s.start(t, s.config(s.o.TwoLoops))
	const clients = 16
	// Each client has its own source port, so SO_REUSEPORT spreads them.
	cs := h.dialN(t, clients)
	err := concurrently(clients, func(i int) error {
		if err := udpEchoBurst(cs[i], i*1000, 20, 300); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// oversizeConfig limits datagrams to 1000 bytes, so that oversize ones
// still fit a 1500-byte MTU unfragmented (a veth, a DPDK port).
func (s suite) oversizeConfig() backends.Config {
	cfg := s.config(s.o.OneLoop)
	cfg.MaxMsg = 1000
	return cfg
}

var oversize = []int{1001, 1400}

// sendMalformed sends an empty datagram, which a server may echo or drop,
// then the oversize ones, which it must drop.
func sendMalformed(c net.Conn) error {
	if _, err := c.Write(nil); err != nil {
		return fmt.Errorf("send an empty datagram: %w", err)
	}
	for i, n := range oversize {
		if _, err := c.Write(payload(uint64(i), n)); err != nil {
			return fmt.Errorf("send %d bytes: %w", n, err)
		}
	}
	return nil
}

// droppedMalformed: both oversize datagrams dropped, and the empty one
// perhaps.
func droppedMalformed(c backends.Counters) bool {
	return c.Dropped == uint64(len(oversize)) || c.Dropped == uint64(len(oversize))+1
}

func (s suite) udpOversizeEcho(t *testing.T) {
	cfg := s.oversizeConfig()
	h := s.start(t, cfg)
	c := h.dial(t)
	if err := sendMalformed(c); err != nil {
		t.Fatal(err)
	}
	// A legal datagram after them: once its echo is back, an echo of the
	// oversize ones would have come first (one loop, one flow, in order).
	marker := payload(99, cfg.MaxDatagram())
	buf := make([]byte, 64<<10)
	for try := 0; ; try++ {
		if try == udpTries {
			t.Fatalf("no echo of a %d-byte datagram sent after malformed ones, %d tries", len(marker), udpTries)
		}
		if _, err := c.Write(marker); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(udpWait))
		n, err := readUntil(c, buf, len(marker))
		if isTimeout(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := compare(buf[:n], marker); err != nil {
			t.Fatalf("echo of the datagram after malformed ones: %v", err)
		}
		break
	}
	got := h.eventually(t, "Dropped = 2 (3 if the empty datagram counts)", droppedMalformed)
	if got.TxBytes%uint64(len(marker)) != 0 {
		t.Errorf("counters: TxBytes %d, not a multiple of the marker's %d: an oversize datagram went out", got.TxBytes, len(marker))
	}
}

// readUntil reads datagrams until one is not empty and returns its size;
// one of more than max bytes is an error: an oversize echo.
func readUntil(c net.Conn, buf []byte, max int) (int, error) {
	for {
		n, err := c.Read(buf)
		if err != nil {
			return 0, err
		}
		if n > max {
			return 0, fmt.Errorf("a %d-byte datagram came back, over MaxMsg %d", n, max)
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (s suite) udpOversizeSink(t *testing.T) {
	h := s.start(t, s.oversizeConfig())
	c := h.dial(t)
	if err := sendMalformed(c); err != nil {
		t.Fatal(err)
	}
	const legal = 100
	if _, err := c.Write(payload(99, legal)); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "Dropped = 2 (3 if the empty datagram counts), RxBytes = 100", func(c backends.Counters) bool {
		return droppedMalformed(c) && c.RxBytes == legal
	})
}

func (s suite) udpSink(t *testing.T) {
	h := s.start(t, s.config(s.o.OneLoop))
	c := h.dial(t)
	const rounds, perRound, size = 8, 8, 512
	// Rounds small enough for any socket buffer, each waited for, so the
	// count is exact though UDP may drop what overflows a buffer.
	for r := range rounds {
		for i := range perRound {
			if _, err := c.Write(payload(uint64(r*perRound+i), size)); err != nil {
				t.Fatal(err)
			}
		}
		want := uint64((r + 1) * perRound)
		h.eventually(t, fmt.Sprintf("RxMsgs = %d, RxBytes = %d", want, want*size), func(c backends.Counters) bool {
			return c.RxMsgs == want && c.RxBytes == want*size
		})
	}
	h.checkSyscalls(t)
	got := h.srv.Counters()
	if got.TxBytes != 0 || got.Dropped != 0 {
		t.Errorf("counters: a sink sent %d bytes and dropped %d legal datagrams", got.TxBytes, got.Dropped)
	}
}

// udpSource says hello, then checks every datagram the source sends back:
// MsgSize bytes, FillSourceDatagram's content, rising sequence numbers
// (gaps are UDP losses, not errors).
func (s suite) udpSource(t *testing.T) {
	cfg := s.config(s.o.OneLoop)
	cfg.MsgSize = 200
	h := s.start(t, cfg)
	c := h.dial(t)
	const want = 200
	buf := make([]byte, 64<<10)
	expect := make([]byte, cfg.MsgSize)
	got, tries := 0, 0
	var last uint64
	for got < want {
		if got == 0 {
			if tries == udpTries {
				t.Fatalf("no source datagram after %d hellos", udpTries)
			}
			tries++
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
		}
		c.SetReadDeadline(time.Now().Add(udpWait))
		n, err := c.Read(buf)
		if isTimeout(err) && got == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("read source datagram %d: %v", got, err)
		}
		if n != cfg.MsgSize {
			t.Fatalf("source datagram of %d bytes, want MsgSize %d", n, cfg.MsgSize)
		}
		seq := binary.LittleEndian.Uint64(buf)
		backends.FillSourceDatagram(expect, seq)
		if err := compare(buf[:n], expect); err != nil {
			t.Fatalf("source datagram %d: %v", seq, err)
		}
		if got > 0 && seq <= last {
			t.Fatalf("source datagram %d after %d: sequence numbers must rise", seq, last)
		}
		last = seq
		got++
	}
	h.checkSyscalls(t)
}
