package workloads

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringbench/backends"
)

// The runtime makes its netpoller's epoll and eventfd descriptors the first
// time anything uses it and never closes them; testenv.Main snapshots open
// descriptors before the tests and would report those two as leaked.
// Starting the poller during package init puts them in the snapshot.
var _ = func() bool {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		ln.Close()
	}
	return true
}()

// peer is a tiny server on 127.0.0.1 built on Go's net package: the
// generator's counterpart in tests. Close stops it and waits for its
// goroutines.
type peer struct {
	addr  netip.AddrPort
	ln    net.Listener
	pc    net.PacketConn
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
	once  sync.Once
	// rx counts bytes received (sinks).
	rx atomic.Uint64
}

func (p *peer) Close() {
	p.once.Do(func() {
		close(p.done)
		if p.ln != nil {
			p.ln.Close()
		}
		if p.pc != nil {
			p.pc.Close()
		}
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
}

// serveTCP accepts connections on 127.0.0.1 and runs handle on each.
func serveTCP(t *testing.T, handle func(p *peer, c net.Conn)) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveTCPOn(t, ln, handle)
}

func serveTCPOn(t *testing.T, ln net.Listener, handle func(p *peer, c net.Conn)) *peer {
	p := &peer{ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			select {
			case <-p.done:
				p.mu.Unlock()
				c.Close()
				return
			default:
			}
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				handle(p, c)
			}()
		}
	}()
	t.Cleanup(p.Close)
	return p
}

// serveUDP runs handle on one socket until Close.
func serveUDP(t *testing.T, handle func(p *peer, pc net.PacketConn)) *peer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{pc: pc, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		handle(p, pc)
	}()
	t.Cleanup(p.Close)
	return p
}

// corrupt, when non-nil, may change a buffer before it is sent back.
type corrupt func(b []byte, n int)

// flipEvery flips the last byte of every k-th buffer.
func flipEvery(k int) corrupt {
	var i atomic.Int64 // shared by the server's connections
	return func(b []byte, n int) {
		if i.Add(1)%int64(k) == 0 && n > 0 {
			b[n-1] ^= 0xff
		}
	}
}

func tcpEchoPeer(t *testing.T, c corrupt) *peer { return serveTCP(t, echoConn(c)) }

func echoConn(c corrupt) func(p *peer, conn net.Conn) {
	return func(p *peer, conn net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if c != nil {
				c(buf[:n], n)
			}
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
		}
	}
}

// udpEchoPeer echoes datagrams; drop(i) true drops the i-th.
func udpEchoPeer(t *testing.T, c corrupt, drop func(i int) bool) *peer {
	return serveUDP(t, func(p *peer, pc net.PacketConn) {
		buf := make([]byte, 64<<10)
		for i := 0; ; i++ {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if drop != nil && drop(i) {
				continue
			}
			if c != nil {
				c(buf[:n], n)
			}
			if _, err := pc.WriteTo(buf[:n], from); err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
	})
}

func tcpSinkPeer(t *testing.T) *peer {
	return serveTCP(t, func(p *peer, conn net.Conn) {
		buf := make([]byte, 256<<10)
		for {
			n, err := conn.Read(buf)
			p.rx.Add(uint64(n))
			if err != nil {
				return
			}
		}
	})
}

func udpSinkPeer(t *testing.T) *peer {
	return serveUDP(t, func(p *peer, pc net.PacketConn) {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p.rx.Add(uint64(n))
		}
	})
}

// tcpSourcePeer streams the source pattern on each connection.
func tcpSourcePeer(t *testing.T, c corrupt) *peer {
	return serveTCP(t, func(p *peer, conn net.Conn) {
		buf := make([]byte, 32<<10)
		var off uint64
		for {
			backends.FillSource(buf, off)
			if c != nil {
				c(buf, len(buf))
			}
			n, err := conn.Write(buf)
			off += uint64(n)
			if err != nil {
				return
			}
		}
	})
}

// udpSourcePeer sends size-byte source datagrams, paced, to every peer
// that sent it one.
func udpSourcePeer(t *testing.T, size int, c corrupt) *peer {
	return serveUDP(t, func(p *peer, pc net.PacketConn) {
		var mu sync.Mutex
		subs := map[string]net.Addr{}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			buf := make([]byte, size)
			var seq uint64
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-p.done:
					return
				case <-tick.C:
				}
				mu.Lock()
				for _, to := range subs {
					for range 8 {
						backends.FillSourceDatagram(buf, seq)
						seq++
						if c != nil {
							c(buf, size)
						}
						pc.WriteTo(buf, to)
					}
				}
				mu.Unlock()
			}
		}()
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			subs[from.String()] = from
			mu.Unlock()
		}
	})
}

// silentTCPPeer accepts and reads but never answers.
func silentTCPPeer(t *testing.T) *peer {
	return serveTCP(t, func(p *peer, conn net.Conn) { io.Copy(io.Discard, conn) })
}
