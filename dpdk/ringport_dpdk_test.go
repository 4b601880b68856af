//go:build dpdk

package dpdk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
)

// ringTxCap is the ring port's transmit ring: not a multiple of the burst,
// so some bursts are taken in part.
const ringTxCap = 45

// TestRingPortLoop runs the reflector loop on a port over two rings that
// the test holds (ringport.c), in a child process since the EAL lives once
// per process. The loop is a source whose transmit ring nobody drains for a
// while, then a test that takes a few frames at a time:
//
//   - frames counted sent are the frames that entered the ring, and busy
//     packets count those and the received ones only (a loop that counted
//     the frames it built, as before the source held them, fails here);
//   - every frame is built once: the sequence the test drains is contiguous
//     (a loop that dropped refused frames and built new ones leaves gaps);
//   - passes that only retry a full ring add no busy cycles;
//   - no mbuf is lost: once drained and stopped, the pool is whole;
//   - a frame in two chained mbufs is dropped as multi_seg, not truncated,
//     and the memif goodbye of earlier versions as a foreign EtherType;
//   - the mempool is on the node the port setup chose, and a port with no
//     node (as a virtual device) gets the polling lcore's.
func TestRingPortLoop(t *testing.T) {
	if os.Getenv("RINGBENCH_DPDK_RINGPORT") != "" {
		ringPortChild()
		return
	}
	skipUnlessDPDK(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRingPortLoop$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RINGBENCH_DPDK_RINGPORT=1")
	cmd.Stderr = &testLog{t: t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	line, ok := strings.CutPrefix(lastLine(out), "result ")
	if !ok {
		t.Fatalf("child said %q", out)
	}
	var res ringPortResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("child result %q: %v", line, err)
	}
	for _, l := range res.Logs {
		t.Log(l)
	}
	for _, e := range res.Errors {
		t.Error(e)
	}
	if res.Drained == 0 {
		t.Error("no frame drained")
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

type ringPortResult struct {
	Drained int
	Errors  []string
	Logs    []string
}

// ringPortChild is the child's body: it prints "result <json>" and exits,
// so the EAL's threads and descriptors never meet the leak check.
func ringPortChild() {
	var res ringPortResult
	errorf := func(format string, a ...any) { res.Errors = append(res.Errors, fmt.Sprintf(format, a...)) }
	logf := func(format string, a ...any) { res.Logs = append(res.Logs, fmt.Sprintf(format, a...)) }
	if err := runRingPort(&res, errorf, logf); err != nil {
		errorf("%v", err)
	}
	b, _ := json.Marshal(res)
	fmt.Printf("result %s\n", b)
	os.Exit(0)
}

func runRingPort(res *ringPortResult, errorf, logf func(string, ...any)) error {
	// The EAL pins this thread to the lcore; the loop runs on it, as a
	// server's does. The process exits after, so it is never unlocked.
	runtime.LockOSThread()
	lcore, err := firstAllowedCPU()
	if err != nil {
		return err
	}
	prefix := filePrefix("ringtest")
	defer removeRuntimeDir(prefix)
	if err := ealInit(ealArgs([]int{lcore}, "", "", true, prefix)); err != nil {
		return err
	}
	rp, err := openRingPort(64, ringTxCap, -1)
	if err != nil {
		return err
	}
	defer rp.close()
	chosen, lcoreNode, poolNode := rp.sockets()
	if chosen != lcoreNode || poolNode != chosen {
		errorf("NUMA: port without a node got node %d for its queues, pool on %d; the lcore is on %d", chosen, poolNode, lcoreNode)
	}

	// The ring PMD's MAC is all zeros: the rules carry the server's.
	rules := Reflector{MAC: serverMAC, IP: serverIP, Port: serverPort, MaxPayload: backends.MaxUDPPayload,
		Service: backends.Source, SourceSize: 100, UDPChecksum: ChecksumFull}
	s, run, stop, free := rp.loop(&rules)
	defer free()

	// Two frames that are no request, then the request that makes the
	// client a peer. A chain of two mbufs holds a valid datagram whose IP
	// length exceeds its first segment: judged by that segment it would
	// be truncated.
	req := udpFrame{payload: []byte("send")}.build()
	big := udpFrame{payload: bytes.Repeat([]byte{5}, 1000)}.build()
	bye := memifGoodbye()
	for _, f := range []struct {
		frame []byte
		segs  int
	}{{big, 2}, {bye, 1}, {req, 1}} {
		if err := rp.inject(f.frame, f.segs); err != nil {
			return err
		}
	}
	const received = 3

	done := make(chan struct{})
	go func() {
		defer close(done)
		defer stop()
		drainRingPort(rp, s, res, received, errorf, logf)
	}()
	run()
	<-done

	// Stopped: what is left on the ring continues the sequence, and with
	// it every frame the loop counted sent is accounted for.
	final := s.snapshot()
	rest := rp.drain(ringTxCap)
	next := uint64(res.Drained)
	for _, f := range rest {
		if err := checkSourceFrame(f, next); err != nil {
			errorf("after stop: %v", err)
			break
		}
		next++
	}
	res.Drained += len(rest)
	if final.TxMsgs != uint64(res.Drained) || final.Extra["port_tx_packets"] != final.TxMsgs {
		errorf("counted %d sent (port %d), %d entered the ring", final.TxMsgs, final.Extra["port_tx_packets"], res.Drained)
	}
	if bp := final.Extra["busy_packets"]; bp != final.TxMsgs+received {
		errorf("busy_packets %d, want %d sent + %d received", bp, final.TxMsgs, received)
	}
	if n := rp.inUse(); n != 0 {
		errorf("%d mbufs still out of the pool after the loop stopped and the ring was drained", n)
	}
	x := final.Extra
	if x["drop_multi_seg"] != 1 || x["drop_truncated"] != 0 || x["drop_ethertype"] != 1 || final.RxMsgs != 1 {
		errorf("received: multi_seg %d truncated %d ethertype %d requests %d, want 1 0 1 1",
			x["drop_multi_seg"], x["drop_truncated"], x["drop_ethertype"], final.RxMsgs)
	}
	if x["tx_full"] != 0 || x["mbuf_nomem"] != 0 {
		errorf("tx_full %d mbuf_nomem %d: a source's refused frames are held, not dropped", x["tx_full"], x["mbuf_nomem"])
	}
	logf("%d frames drained in order; %d refused transmit attempts; counters %+v", res.Drained, x["tx_held"], final)
	return nil
}

// drainRingPort is the far end of the transmit ring while the loop runs.
func drainRingPort(rp *ringPort, s *Server, res *ringPortResult, received uint64, errorf, logf func(string, ...any)) {
	// waitRefused waits until the loop has been refused n more frames
	// (tx_held counts each refusal): many passes on a full ring.
	waitRefused := func(n uint64) (backends.Counters, bool) {
		start := s.snapshot().Extra["tx_held"]
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if c := s.snapshot(); c.Extra["tx_held"] >= start+n {
				return c, true
			}
		}
		errorf("the loop was not refused %d frames within 30s", n)
		return backends.Counters{}, false
	}
	c1, ok := waitRefused(100 * burst)
	if !ok {
		return
	}
	if n := rp.txCount(); n != ringTxCap || c1.TxMsgs != ringTxCap {
		errorf("full ring: %d frames on it, %d counted sent, want %d", n, c1.TxMsgs, ringTxCap)
	}
	if bp := c1.Extra["busy_packets"]; bp != c1.TxMsgs+received {
		errorf("full ring: busy_packets %d, want %d sent + %d received", bp, c1.TxMsgs, received)
	}
	if n := rp.inUse(); n > ringTxCap+burst {
		errorf("full ring: %d mbufs out, more than the ring and one held burst (%d)", n, ringTxCap+burst)
	}
	c2, ok := waitRefused(100 * burst)
	if !ok {
		return
	}
	if c2.Extra["busy_cycles"] != c1.Extra["busy_cycles"] || c2.Extra["busy_packets"] != c1.Extra["busy_packets"] {
		errorf("passes that only retried a full ring counted busy: cycles %d -> %d, packets %d -> %d",
			c1.Extra["busy_cycles"], c2.Extra["busy_cycles"], c1.Extra["busy_packets"], c2.Extra["busy_packets"])
	}

	// Take a few frames at a time, as a slow peer would, and let the loop
	// fill the ring again each time.
	var next uint64
	for round := 0; round < 40; round++ {
		frames := rp.drain(1 + round%(ringTxCap+5))
		for _, f := range frames {
			if err := checkSourceFrame(f, next); err != nil {
				errorf("round %d: %v", round, err)
				return
			}
			next++
		}
		res.Drained += len(frames)
		for deadline := time.Now().Add(30 * time.Second); rp.txCount() < ringTxCap; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				errorf("round %d: the ring was not refilled within 30s", round)
				return
			}
		}
	}
}

// checkSourceFrame checks that f is source datagram seq from the ring
// port's server to the test's client, with valid checksums.
func checkSourceFrame(f []byte, seq uint64) error {
	const size = 100
	if len(f) != ethHeaderLen+ipv4HeaderLen+udpHeaderLen+size {
		return fmt.Errorf("frame of %d bytes", len(f))
	}
	if [6]byte(f[0:6]) != clientMAC || [6]byte(f[6:12]) != serverMAC {
		return fmt.Errorf("frame from %x to %x", f[6:12], f[0:6])
	}
	ip := f[ethHeaderLen:]
	if checksum(0, ip[:ipv4HeaderLen]) != 0xffff || !udpChecksumValid(ip) {
		return fmt.Errorf("seq %d: invalid checksum", seq)
	}
	want := make([]byte, size)
	backends.FillSourceDatagram(want, seq)
	if got := ip[ipv4HeaderLen+udpHeaderLen:]; !bytes.Equal(got, want) {
		return fmt.Errorf("got datagram %d, want %d (a gap or a repeat)", binary.LittleEndian.Uint64(got), seq)
	}
	return nil
}
