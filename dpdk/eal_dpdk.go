//go:build dpdk

package dpdk

/*
#cgo pkg-config: libdpdk
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include <stdlib.h>
#include "eal.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"ringbench/backends"
)

// built says the cgo binding is compiled in.
const built = true

// errNoTag is never returned in this build; it keeps shared code simple.
var errNoTag error = nil

// ealUsed: the EAL initialises once per process and cannot start again after
// rte_eal_cleanup, so every DPDK server or generator runs in its own process.
var ealUsed atomic.Bool

var errEALUsed = errors.New("init EAL: already used in this process (a DPDK server or generator needs a process of its own)")

// ealInit initialises the EAL with args (args[0] is the program name). The
// calling OS thread becomes the main lcore and is pinned to its CPU, so the
// caller must hold runtime.LockOSThread for as long as the EAL lives.
//
// The EAL is never cleaned up: it lives until its process exits, which
// every process here does right after closing its port. On Linux, DPDK
// 22.11's rte_eal_cleanup unmaps the EAL's memory but leaves its interrupt
// thread running, and closing a memif port unregisters callbacks, which
// wakes that thread: if it runs after the unmap, it reads the freed
// interrupt sources and the process dies of SIGSEGV on its way out (seen
// once in 40 memif closes under load: rte_intr_fd_get on eal-intr-thread).
// Exiting with the memory mapped, the kernel ends every thread at once and
// frees it all; the runtime folder is removed by its owner as before.
func ealInit(args []string) error {
	if !ealUsed.CompareAndSwap(false, true) {
		return errEALUsed
	}
	argv := C.malloc(C.size_t(len(args)+1) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(argv)
	ptrs := unsafe.Slice((**C.char)(argv), len(args)+1)
	for i, a := range args {
		ptrs[i] = C.CString(a)
	}
	ptrs[len(args)] = nil
	// rte_eal_init keeps pointers into argv for its lifetime (lcore and
	// device strings), so the strings are not freed.
	var msg [256]C.char
	if C.rb_eal_init(C.int(len(args)), (**C.char)(argv), &msg[0], C.int(len(msg))) != 0 {
		return fmt.Errorf("init EAL: %s", C.GoString(&msg[0]))
	}
	return nil
}

// port is an opened, started ethdev port and its mbuf pool.
type port struct {
	id   C.uint16_t
	mac  [6]byte
	pool *C.struct_rte_mempool
}

// openPort opens the EAL's one port with queues rx and tx queues of desc
// descriptors. needRSS: the port itself must spread flows over them (a NIC
// or an override; memif's peer and the kernel under af_packet pick the
// queue themselves); a port that cannot is a NotSupportedError.
func openPort(desc, queues int, needRSS bool) (*port, error) {
	var p port
	var mac [6]C.uint8_t
	var msg [512]C.char
	rss := C.int(0)
	if needRSS {
		rss = 1
	}
	switch C.rb_port_open(C.uint16_t(desc), C.uint16_t(queues), rss, &p.id, &mac[0], &p.pool, &msg[0], C.int(len(msg))) {
	case 0:
	case C.RB_PORT_NO_RSS:
		return nil, &backends.NotSupportedError{Feature: fmt.Sprintf("dpdk on %d cores", queues), Reason: C.GoString(&msg[0])}
	default:
		return nil, fmt.Errorf("open port: %s", C.GoString(&msg[0]))
	}
	for i := range mac {
		p.mac[i] = byte(mac[i])
	}
	return &p, nil
}

func (p *port) close() error {
	var msg [256]C.char
	if C.rb_port_close(p.id, p.pool, &msg[0], C.int(len(msg))) != 0 {
		return fmt.Errorf("close port: %s", C.GoString(&msg[0]))
	}
	return nil
}

func (p *port) linkUp() bool { return C.rb_link_up(p.id) != 0 }
