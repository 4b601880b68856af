//go:build dpdk

package dpdk

/*
#include <stdlib.h>
#include <string.h>
#include "gen.h"
*/
import "C"

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/workloads"
)

// chunk bounds one C call, so the window's edges and the parent's answers
// are seen within it.
const chunk = 10 * time.Millisecond

// genBasePort is the first source port; connection c sends from base+c.
const genBasePort = 40000

func generatorMain(req genRequest, stdin io.Reader, stdout io.Writer) (err error) {
	// The EAL pins this thread to the generator's lcore; the process ends
	// after the report, so the thread is never handed back.
	runtime.LockOSThread()
	// The memif client's control sendmsg runs on an EAL thread too
	// (ignoreSIGPIPE says why).
	ignoreSIGPIPE()
	prefix := filePrefix("gen")
	if err := ealInit(ealArgs([]int{req.Lcore}, memifVdev(req.Socket, "client"), "", !req.Hugepages, prefix)); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, removeRuntimeDir(prefix)) }()
	p, err := openPort(1024, req.Queues, false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.close()) }()
	for deadline := time.Now().Add(10 * time.Second); !p.linkUp(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("connect memif %s: link still down after 10s", req.Socket)
		}
	}

	g, free := newGen(req, p)
	defer free()
	serverMAC, err := resolveServer(g, req, p)
	if err != nil {
		return err
	}
	header(g, req, p.mac, serverMAC)

	answers := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			answers <- sc.Text()
		}
		close(answers)
	}()
	counts := unsafe.Slice((*uint64)(unsafe.Pointer(g.hist)), C.RB_HIST_LEN)
	drive := func(until time.Time) {
		hz := float64(C.rb_tsc_hz())
		for now := time.Now(); now.Before(until); now = time.Now() {
			d := min(until.Sub(now), chunk)
			C.rb_gen_run(g, C.rb_tsc()+C.uint64_t(d.Seconds()*hz))
		}
	}
	// waitFor pauses the load while the parent runs its hook, so what the
	// server counts between the hooks is what this window sent.
	waitFor := func(word string) error {
		for a := range answers {
			if a == word {
				return nil
			}
		}
		return errors.New("parent went away")
	}

	drive(time.Now().Add(req.Spec.Warmup))
	fmt.Fprintln(stdout, lineWindowStart)
	if err := waitFor("go"); err != nil {
		return err
	}
	g.c = C.struct_rb_gen_counters{}
	clear(counts)
	g.win_start = C.rb_tsc()
	cpu0 := threadCPU()
	start := time.Now()
	drive(start.Add(req.Spec.Duration))
	window := time.Since(start)
	cpu := threadCPU() - cpu0
	c := g.c
	hist := newLatencyHistogram()
	for i, n := range counts {
		if n > 0 {
			hist.RecordValues(max(int64(C.rb_hist_value(C.uint32_t(i))), 1), int64(n))
		}
	}
	fmt.Fprintln(stdout, lineWindowEnd)
	if err := waitFor("ok"); err != nil {
		return err
	}
	rep := genReport{
		WindowNS: int64(window), Ops: uint64(c.ops), Bytes: uint64(c.bytes), Sent: uint64(c.sent),
		Errors:      workloads.Errors{Mismatch: uint64(c.mismatch), Lost: uint64(c.lost)},
		Late:        uint64(c.late),
		Stale:       uint64(c.stale),
		TxFull:      uint64(c.tx_full),
		ClientCPUNS: int64(cpu),
		Polls:       uint64(c.polls),
		IdlePolls:   uint64(c.idle_polls),
		Latency:     hist.Export(),
		ServerMAC:   serverMAC.String(),
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	fmt.Fprintf(stdout, "%s %s\n", lineReport, b)
	// The parent stops the server, then says close: the port is closed
	// only once nothing polls its peer (GenOptions.BeforeClose says why).
	if err := waitFor(lineClose); err != nil {
		fmt.Fprintf(os.Stderr, "dpdkgen: %v before close; closing the port\n", err)
	}
	return nil
}

// newGen allocates the engine and its tables in C memory, which the C loop
// keeps pointers into across calls.
func newGen(req genRequest, p *port) (*C.struct_rb_gen, func()) {
	s := req.Spec
	g := (*C.struct_rb_gen)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_rb_gen{}))))
	g.port_id = p.id
	g.nq = C.uint16_t(req.Queues)
	g.pool = p.pool
	g.size = C.uint16_t(s.Size)
	g.server_port = C.uint16_t(req.ServerPort)
	g.base_sport = genBasePort
	g.conns = C.uint32_t(s.Conns)
	if s.Workload == workloads.Stream {
		g.mode = C.RB_GEN_STREAM_UP
	}
	hz := float64(C.rb_tsc_hz())
	g.ns_per_tsc = C.double(1e9 / hz)
	g.timeout_tsc = C.uint64_t(s.Timeout.Seconds() * hz)
	g.late_tsc = C.uint64_t(hz / 1000)
	g.rng = 0x9e3779b97f4a7c15
	nslots := s.Conns * s.Depth
	if s.Rate > 0 {
		g.open_loop = 1
		if s.Arrival == workloads.Poisson {
			g.poisson = 1
		}
		g.interval_tsc = C.uint64_t(hz / s.Rate)
		// Enough slots for every request a timeout can hold in flight.
		want := max(1024, min(int(s.Rate*s.Timeout.Seconds())*2, 1<<20))
		nslots = 1 << bits.Len(uint(want-1))
	}
	g.nslots = C.uint32_t(nslots)
	g.slots = (*C.struct_rb_slot)(C.calloc(C.size_t(nslots), C.size_t(unsafe.Sizeof(C.struct_rb_slot{}))))
	g.ready = (*C.uint32_t)(C.calloc(C.size_t(nslots), 4))
	g.hist = (*C.uint64_t)(C.calloc(C.RB_HIST_LEN, 8))
	pattern := (*C.uint8_t)(C.malloc(251 + 1472))
	pat := unsafe.Slice((*byte)(unsafe.Pointer(pattern)), 251+1472)
	for i := range pat {
		pat[i] = byte(i % 251)
	}
	g.pattern = pattern
	return g, func() {
		C.free(unsafe.Pointer(g.slots))
		C.free(unsafe.Pointer(g.ready))
		C.free(unsafe.Pointer(g.hist))
		C.free(unsafe.Pointer(pattern))
		C.free(unsafe.Pointer(g))
	}
}

// resolveServer returns the server's MAC: given, answered to ARP, or
// broadcast for a server that answers no ARP (testpmd swaps whatever comes).
func resolveServer(g *C.struct_rb_gen, req genRequest, p *port) (net.HardwareAddr, error) {
	if req.ServerMAC != "" {
		mac, err := net.ParseMAC(req.ServerMAC)
		if err != nil {
			return nil, fmt.Errorf("parse server MAC: %w", err)
		}
		return mac, nil
	}
	var src, mac [6]C.uint8_t
	var sip, dip [4]C.uint8_t
	for i := range p.mac {
		src[i] = C.uint8_t(p.mac[i])
	}
	for i, b := range req.ClientIP.As4() {
		sip[i] = C.uint8_t(b)
	}
	for i, b := range req.ServerIP.As4() {
		dip[i] = C.uint8_t(b)
	}
	until := C.rb_tsc() + C.rb_tsc_hz() // a second
	if C.rb_gen_arp(g, &src[0], &sip[0], &dip[0], &mac[0], until) == 0 {
		return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil
	}
	out := make(net.HardwareAddr, 6)
	for i := range out {
		out[i] = byte(mac[i])
	}
	return out, nil
}

// header writes the Ethernet, IPv4 and UDP headers every request shares;
// the C loop fills in the source port and leaves the UDP checksum 0 (none),
// which IPv4 allows and spares the generator a pass over each payload.
func header(g *C.struct_rb_gen, req genRequest, src [6]byte, dst net.HardwareAddr) {
	h := unsafe.Slice((*byte)(unsafe.Pointer(&g.hdr[0])), 42)
	copy(h[0:6], dst)
	copy(h[6:12], src[:])
	binary.BigEndian.PutUint16(h[12:14], etherTypeIPv4)
	ip := h[ethHeaderLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4HeaderLen+udpHeaderLen+req.Spec.Size))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000)
	ip[8] = 64
	ip[9] = protoUDP
	s, d := req.ClientIP.As4(), req.ServerIP.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:12], ^checksum(0, ip[:ipv4HeaderLen]))
	udp := ip[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[2:4], uint16(req.ServerPort))
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpHeaderLen+req.Spec.Size))
}

// threadCPU is the calling thread's CPU time: the generator's loop runs on
// this locked thread and nowhere else.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// histBucket maps a latency to its bucket of the C loop's histogram and
// back: for tests of the bucketing.
func histBucket(ns uint64) (index int, value uint64) {
	i := C.rb_hist_index(C.uint64_t(ns))
	return int(i), uint64(C.rb_hist_value(i))
}
