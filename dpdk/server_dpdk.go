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

// Server is a running DPDK reflector: one port, and one lcore polling each
// of its queue pairs.
type Server struct {
	port int
	mac  [6]byte
	pmd  string
	// loops[q] polls queue pair q on lcore CPUs[q]; loops[0] on the EAL's
	// main lcore, the others on worker lcores. C memory: the Go GC never
	// moves it.
	loops     []C.struct_rb_loop
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
	if err == nil {
		err = checkLcoreIDs(st.lcores)
	}
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
	if err := ealInit(ealArgs(st.lcores, st.vdev, st.pci, st.noHuge, prefix)); err != nil {
		ready <- err
		return nil
	}
	xdpOthers, err := xdpBefore(st.vdev)
	if err != nil {
		ready <- err
		return nil
	}
	p, err := openPort(1024, len(st.lcores), st.needRSS)
	if err != nil {
		ready <- err
		return nil
	}
	forgetXDP, err := recordXDP(st.vdev, os.Getpid(), xdpOthers)
	if err != nil {
		ready <- errors.Join(err, p.close())
		return nil
	}
	// Once the port is closed, its program is off the interface.
	closePort := func() error {
		err := p.close()
		if err == nil {
			forgetXDP()
		}
		return err
	}
	s.mac = p.mac
	st.rules.MAC = p.mac
	s.loops = newLoops(p, &st.rules, len(st.lcores))
	workers := st.lcores[1:]
	for i, lcore := range workers {
		if rc := C.rb_launch(&s.loops[i+1], C.unsigned(lcore)); rc != 0 {
			s.stopLoops()
			waitLcores(workers[:i])
			freeLoops(s.loops)
			ready <- errors.Join(fmt.Errorf("launch lcore %d: error %d", lcore, -int(rc)), closePort())
			return nil
		}
	}
	ready <- nil

	C.rb_run(&s.loops[0])
	// Close stopped every loop: the workers return within a pass, and the
	// port closes only once none polls it.
	waitLcores(workers)

	s.mu.Lock()
	s.last = s.snapshot()
	s.ended = true
	s.mu.Unlock()
	return closePort()
}

// newLoops is the state of n loops, loop q on queue pair q of port p, in
// one block of C memory (rb_run holds on to it, so the Go GC must never move
// it); free it with freeLoops.
func newLoops(p *port, rules *Reflector, n int) []C.struct_rb_loop {
	loops := unsafe.Slice((*C.struct_rb_loop)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.struct_rb_loop{})))), n)
	for q := range loops {
		loops[q].port_id = p.id
		loops[q].queue = C.uint16_t(q)
		loops[q].pool = p.pool
		loops[q].rules = cRules(rules)
	}
	return loops
}

func freeLoops(loops []C.struct_rb_loop) { C.free(unsafe.Pointer(&loops[0])) }

func (s *Server) stopLoops() {
	for q := range s.loops {
		C.rb_stop(&s.loops[q])
	}
}

// waitLcores waits until the loops launched on lcores have returned.
func waitLcores(lcores []int) {
	for _, l := range lcores {
		C.rb_wait(C.unsigned(l))
	}
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

// Counters reads the loops' counters, summed, and the port's statistics in
// one C call; with more than one queue pair, each loop's too (queue<q>_*).
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
	each := make([]C.struct_rb_counters, len(s.loops))
	C.rb_read_queues(&s.loops[0], C.int(len(s.loops)), &snap, &each[0])
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
	if len(each) > 1 {
		for q, e := range each {
			out.Extra[fmt.Sprintf("queue%d_rx_msgs", q)] = uint64(e.rx_msgs)
			out.Extra[fmt.Sprintf("queue%d_tx_msgs", q)] = uint64(e.tx_msgs)
			out.Extra[fmt.Sprintf("queue%d_busy_packets", q)] = uint64(e.busy_packets)
		}
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

// Close stops every loop, stops and closes the port (which detaches an
// af_xdp program from its interface) and puts back the interface settings.
// The EAL stays until the process exits (see ealInit).
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopLoops()
		if err := errors.Join(<-s.done, s.restoreNetdev()); err != nil {
			s.closeErr = fmt.Errorf("close dpdk server: %w", err)
		}
		freeLoops(s.loops)
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
