//go:build dpdk

package dpdk

/*
#cgo LDFLAGS: -lrte_net_ring
#include <stdlib.h>
#include "reflector.h"
#include "ringport.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// ringPort is a port over two rte_rings whose far ends the caller holds: it
// puts frames on the receive ring and takes the server's off the transmit
// ring when it likes. Only tests use it, to make what no virtual device
// makes on demand: a transmit ring that refuses, and chained mbufs. It needs
// the EAL, in a process of its own.
type ringPort struct {
	c C.struct_rb_ring_port
}

// openRingPort makes the port with rings of exactly rxCap and txCap frames,
// the port on NUMA node numa (-1: none, as a virtual device), and sets it up
// as a server's port is set up.
func openRingPort(rxCap, txCap, numa int) (*ringPort, error) {
	p := new(ringPort)
	var msg [256]C.char
	if C.rb_ring_port_open(C.unsigned(rxCap), C.unsigned(txCap), C.int(numa), &p.c, &msg[0], C.int(len(msg))) != 0 {
		return nil, fmt.Errorf("open ring port: %s", C.GoString(&msg[0]))
	}
	return p, nil
}

func (p *ringPort) port() *port {
	q := &port{id: p.c.port_id, pool: p.c.pool}
	for i := range q.mac {
		q.mac[i] = byte(p.c.mac[i])
	}
	return q
}

// close drains nothing: the caller takes every frame off the transmit ring
// first, as the pool goes with the port.
func (p *ringPort) close() error {
	err := p.port().close()
	C.rb_ring_port_free(&p.c)
	return err
}

// inject puts a copy of frame on the receive ring in segs chained mbufs.
func (p *ringPort) inject(frame []byte, segs int) error {
	buf := C.CBytes(frame)
	defer C.free(buf)
	if rc := C.rb_ring_inject(&p.c, (*C.uint8_t)(buf), C.uint16_t(len(frame)), C.uint16_t(segs)); rc != 0 {
		return fmt.Errorf("inject frame: error %d", -int(rc))
	}
	return nil
}

// txCount is how many frames wait on the transmit ring.
func (p *ringPort) txCount() int { return int(C.rb_ring_tx_count(&p.c)) }

// drain takes up to max frames off the transmit ring (their first segment)
// and frees their mbufs.
func (p *ringPort) drain(max int) [][]byte {
	const stride = 2048
	buf := C.malloc(C.size_t(max * stride))
	lens := C.malloc(C.size_t(max * 2))
	defer C.free(buf)
	defer C.free(lens)
	n := int(C.rb_ring_drain(&p.c, C.unsigned(max), (*C.uint8_t)(buf), stride, (*C.uint16_t)(lens)))
	all := unsafe.Slice((*byte)(buf), max*stride)
	l := unsafe.Slice((*uint16)(lens), max)
	out := make([][]byte, n)
	for i := range out {
		out[i] = append([]byte(nil), all[i*stride:i*stride+min(int(l[i]), stride)]...)
	}
	return out
}

// inUse is how many of the pool's mbufs are out (on a ring, held by the
// loop, or lost).
func (p *ringPort) inUse() int { return int(C.rb_ring_pool_in_use(&p.c)) }

// sockets are the NUMA node the port setup chose, the polling lcore's, and
// the mempool's.
func (p *ringPort) sockets() (chosen, lcore, pool int) {
	return int(p.c.socket), int(p.c.lcore_socket), int(p.c.pool_socket)
}

// burst is the loop's burst size (RB_BURST).
const burst = C.RB_BURST

// loop makes a reflector loop over the port with rules. run polls on the
// calling thread (the EAL's lcore) until stop; free releases the loop's
// memory once run has returned.
func (p *ringPort) loop(rules *Reflector) (s *Server, run, stop, free func()) {
	s = &Server{loops: newLoops(p.port(), rules, 1)}
	run = func() { C.rb_run(&s.loops[0]) }
	stop = s.stopLoops
	free = func() { freeLoops(s.loops) }
	return s, run, stop, free
}
