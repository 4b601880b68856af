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
	"strings"
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
	header(g, req, p.mac, memifServerMAC)

	answers := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			answers <- sc.Text()
		}
		close(answers)
	}()
	// The parent asks for one window at a time, then says close once it
	// has stopped the server: the port is closed only once nothing polls
	// its peer (GenOptions.BeforeClose says why).
	for a := range answers {
		word, rest, _ := strings.Cut(a, " ")
		switch word {
		case lineClose:
			return nil
		case lineWindow:
			var warmup, duration time.Duration
			if _, err := fmt.Sscan(rest, &warmup, &duration); err != nil {
				return fmt.Errorf("parse window %q: %w", rest, err)
			}
			if err := runWindow(g, answers, warmup, duration, stdout); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected line from the parent: %q", a)
		}
	}
	fmt.Fprintln(os.Stderr, "dpdkgen: parent went away before close; closing the port")
	return nil
}

// runWindow drives the load for warmup, then for the window between the
// parent's edge hooks, and writes the window's report.
func runWindow(g *C.struct_rb_gen, answers <-chan string, warmup, duration time.Duration, stdout io.Writer) error {
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

	if g.started != 0 && g.open_loop != 0 {
		// The pause since the last window is no load the schedule owes:
		// without this the loop would send it all at once, late.
		g.next_tsc = C.rb_tsc()
	}
	drive(time.Now().Add(warmup))
	fmt.Fprintln(stdout, lineWindowStart)
	if err := waitFor("go"); err != nil {
		return err
	}
	g.c = C.struct_rb_gen_counters{}
	clear(counts)
	g.win_start = C.rb_tsc()
	cpu0 := threadCPU()
	start := time.Now()
	drive(start.Add(duration))
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
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	fmt.Fprintf(stdout, "%s %s\n", lineReport, b)
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
