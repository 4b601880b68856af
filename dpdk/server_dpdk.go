//go:build dpdk

package dpdk

/*
#include <stdlib.h>
#include <string.h>
#include "reflector.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"ringbench/backends"
)

var _ backends.Server = (*Server)(nil)

// Server is a running DPDK reflector: one port, one lcore polling it.
type Server struct {
	port      int
	mac       [6]byte
	pmd       string
	loop      *C.struct_rb_loop // C memory: the Go GC never moves it
	done      chan error
	closeOnce sync.Once
	closeErr  error
	// restoreNetdev puts back the interface settings the options changed.
	restoreNetdev func() error

	mu    sync.Mutex
	ended bool // the loop returned; last holds its final counters
	last  backends.Counters
}

func probeServer() error {
	if os.Geteuid() != 0 {
		return &backends.NotSupportedError{Feature: "dpdk", Reason: "driving a port needs root"}
	}
	return nil
}

// startElsewhere, when set, starts servers in place of this process. The
// EAL lives once per process, so the tests that start many servers (the
// conformance suite) set it to run each in a child process.
var startElsewhere func(backends.Config) (backends.Server, error)

func newServer(cfg backends.Config) (backends.Server, error) {
	if startElsewhere != nil {
		return startElsewhere(cfg)
	}
	st, err := parseServerConfig(cfg, afxdpAvailable, hugepagesFree)
	if err != nil {
		return nil, err
	}
	ignoreSIGPIPE()
	restore, err := applyNetdev(st.iface, st.netdev)
	if err != nil {
		return nil, fmt.Errorf("start dpdk server: %w", err)
	}
	s := &Server{port: int(st.rules.Port), pmd: st.chosenPMD, done: make(chan error, 1), restoreNetdev: restore}
	ready := make(chan error, 1)
	go s.run(st, ready)
	if err := <-ready; err != nil {
		<-s.done
		return nil, errors.Join(err, restore())
	}
	return s, nil
}

// run owns the EAL's main lcore for the server's life. It never unlocks its
// OS thread: the EAL pinned that thread to the server CPU, and a locked
// goroutine that returns takes its thread with it instead of handing a
// pinned thread back to the scheduler.
func (s *Server) run(st serverSettings, ready chan<- error) {
	runtime.LockOSThread()
	err := s.serve(st, ready)
	s.done <- err
}

func (s *Server) serve(st serverSettings, ready chan<- error) (err error) {
	prefix := filePrefix("server")
	defer removeRuntimeDir(prefix)
	if err := ealInit(ealArgs(st.lcore, st.vdev, st.pci, st.noHuge, prefix)); err != nil {
		ready <- err
		return nil
	}
	p, err := openPort(1024)
	if err != nil {
		ready <- err
		return nil
	}
	s.mac = p.mac
	st.rules.MAC = p.mac
	s.loop = newLoop(p, &st.rules)
	ready <- nil

	C.rb_run(s.loop)

	s.mu.Lock()
	s.last = s.snapshot()
	s.ended = true
	s.mu.Unlock()
	return p.close()
}

// newLoop is the loop's state for port p in C memory (rb_run holds on to
// it, so the Go GC must never move it); free it with C.free.
func newLoop(p *port, rules *Reflector) *C.struct_rb_loop {
	loop := (*C.struct_rb_loop)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_rb_loop{}))))
	loop.port_id = p.id
	loop.pool = p.pool
	loop.rules = cRules(rules)
	return loop
}

func cRules(r *Reflector) C.struct_rb_rules {
	var c C.struct_rb_rules
	for i, b := range r.MAC {
		c.mac[i] = C.uint8_t(b)
	}
	if r.IP.Is4() {
		c.has_ip = 1
		for i, b := range r.IP.As4() {
			c.ip[i] = C.uint8_t(b)
		}
	}
	c.port = C.uint16_t(r.Port)
	c.max_payload = C.uint16_t(r.MaxPayload)
	switch r.Service {
	case backends.Sink:
		c.service = C.RB_SINK
	case backends.Source:
		c.service = C.RB_SOURCE
	default:
		c.service = C.RB_ECHO
	}
	c.csum_mode = C.uint8_t(r.UDPChecksum)
	c.source_size = C.uint16_t(r.SourceSize)
	return c
}

// Port is the UDP port the server answers on.
func (s *Server) Port() int { return s.port }

// MAC is the port's Ethernet address.
func (s *Server) MAC() [6]byte { return s.mac }

// PMD is the poll-mode driver chosen for Config.Iface ("af_xdp",
// "af_packet"), "memif", or "" for an override.
func (s *Server) PMD() string { return s.pmd }

// Counters reads the loop's counters and the port's statistics in one C call.
func (s *Server) Counters() backends.Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return s.last
	}
	return s.snapshot()
}

func (s *Server) snapshot() backends.Counters {
	var snap C.struct_rb_snapshot
	C.rb_read(s.loop, &snap)
	c := snap.c
	out := backends.Counters{
		RxMsgs:  uint64(c.rx_msgs),
		RxBytes: uint64(c.rx_bytes),
		TxMsgs:  uint64(c.tx_msgs),
		TxBytes: uint64(c.tx_bytes),
		Extra: map[string]uint64{
			"busy_cycles":  uint64(c.busy_cycles),
			"busy_packets": uint64(c.busy_packets),
			"tsc_hz":       uint64(snap.tsc_hz),
			"arp_replies":  uint64(c.arp_replies),
			"tx_full":      uint64(c.tx_full),
			"mbuf_nomem":   uint64(c.nomem),
			"tx_held":      uint64(c.tx_held),
		},
	}
	for r := ReasonNone + 1; r < numReasons; r++ {
		n := uint64(c.drops[r])
		out.Extra["drop_"+r.String()] = n
		if r.Malformed() {
			out.Dropped += n
		}
	}
	if snap.stats_err == 0 {
		out.Extra["port_rx_packets"] = uint64(snap.port_rx_packets)
		out.Extra["port_tx_packets"] = uint64(snap.port_tx_packets)
		out.Extra["port_rx_missed"] = uint64(snap.port_rx_missed)
		out.Extra["port_rx_errors"] = uint64(snap.port_rx_errors)
		out.Extra["port_tx_errors"] = uint64(snap.port_tx_errors)
		out.Extra["port_rx_nombuf"] = uint64(snap.port_rx_nombuf)
	}
	return out
}

// Close stops the loop, stops and closes the port (which detaches an
// af_xdp program from its interface) and puts back the interface settings.
// The EAL stays until the process exits (see ealInit).
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		C.rb_stop(s.loop)
		if err := errors.Join(<-s.done, s.restoreNetdev()); err != nil {
			s.closeErr = fmt.Errorf("close dpdk server: %w", err)
		}
		C.free(unsafe.Pointer(s.loop))
	})
	return s.closeErr
}

// reflectC runs the C fast path's rules (rb_judge, as the loop calls it) on
// one frame that arrived in segs mbufs, frame being the first; tests compare
// it with Reflector.Reflect.
func reflectC(r *Reflector, frame []byte, segs int) Verdict {
	rules := cRules(r)
	buf := C.CBytes(frame)
	defer C.free(buf)
	v := C.rb_judge(&rules, (*C.uint8_t)(buf), C.uint32_t(len(frame)), C.uint16_t(segs))
	copy(frame, unsafe.Slice((*byte)(buf), len(frame)))
	return Verdict{Action: Action(v.action), Reason: DropReason(v.reason), Len: int(v.len), Payload: int(v.payload), ARP: v.arp != 0}
}
