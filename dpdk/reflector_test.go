package dpdk

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"testing"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The runtime makes its netpoller (an epoll fd and an eventfd) on the first
// file it opens, which under go test is m.Run's test log: after testenv.Main
// listed the fds, so it reports them as leaked. Opening a file in init makes
// them before the list. (Reported: testenv.Main should do this itself.)
func init() {
	if f, err := os.Open(os.DevNull); err == nil {
		f.Close()
	}
}

var (
	serverMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	serverIP  = netip.MustParseAddr("10.203.0.1")
	clientIP  = netip.MustParseAddr("10.203.0.2")
)

const serverPort = 9000

func testReflector(svc backends.Service) *Reflector {
	return &Reflector{MAC: serverMAC, IP: serverIP, Port: serverPort, MaxPayload: backends.MaxUDPPayload, Service: svc}
}

// udpFrame builds a valid client-to-server datagram; edit mutates the frame
// before the IPv4 checksum is (re)computed unless the edit says otherwise.
type udpFrame struct {
	payload     []byte
	partialCsum bool    // leave the UDP checksum as veth does: pseudo-header only
	dstMAC      [6]byte // default serverMAC
	dstPort     uint16  // default serverPort
}

func (f udpFrame) build() []byte {
	if f.dstMAC == [6]byte{} {
		f.dstMAC = serverMAC
	}
	if f.dstPort == 0 {
		f.dstPort = serverPort
	}
	b := make([]byte, ethHeaderLen+ipv4HeaderLen+udpHeaderLen+len(f.payload))
	copy(b[0:6], f.dstMAC[:])
	copy(b[6:12], clientMAC[:])
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv4)
	ip := b[ethHeaderLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:6], 0x1234)
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64
	ip[9] = protoUDP
	src, dst := clientIP.As4(), serverIP.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	fixIPChecksum(ip)
	udp := ip[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[0:2], 40000)
	binary.BigEndian.PutUint16(udp[2:4], f.dstPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(len(udp)))
	copy(udp[udpHeaderLen:], f.payload)
	if f.partialCsum {
		binary.BigEndian.PutUint16(udp[6:8], checksum(uint32(protoUDP)+uint32(len(udp)), ip[12:20]))
	} else {
		binary.BigEndian.PutUint16(udp[6:8], udpChecksum(ip[12:20], udp))
	}
	return b
}

func fixIPChecksum(ip []byte) {
	ihl := int(ip[0]&0x0f) * 4
	binary.BigEndian.PutUint16(ip[10:12], 0)
	binary.BigEndian.PutUint16(ip[10:12], ^checksum(0, ip[:ihl]))
}

func arpRequest(target netip.Addr) []byte {
	b := make([]byte, 60) // padded to Ethernet's minimum, as a kernel sends it
	copy(b[0:6], broadcastMAC[:])
	copy(b[6:12], clientMAC[:])
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], 1)
	copy(a[8:14], clientMAC[:])
	src, dst := clientIP.As4(), target.As4()
	copy(a[14:18], src[:])
	copy(a[24:28], dst[:])
	return b
}

// validEcho checks what every echo reply must be: addressed back to the
// client, valid IPv4 and UDP checksums, the payload unchanged.
func validEcho(t *testing.T, out []byte, payload []byte) {
	t.Helper()
	if !bytes.Equal(out[0:6], clientMAC[:]) || !bytes.Equal(out[6:12], serverMAC[:]) {
		t.Errorf("MACs not swapped: dst %x src %x", out[0:6], out[6:12])
	}
	ip := out[ethHeaderLen:]
	if s, c := ip[12:16], ip[16:20]; [4]byte(s) != serverIP.As4() || [4]byte(c) != clientIP.As4() {
		t.Errorf("IPs not swapped: src %v dst %v", s, c)
	}
	if checksum(0, ip[:ipv4HeaderLen]) != 0xffff {
		t.Errorf("IPv4 header checksum invalid")
	}
	udp := ip[ipv4HeaderLen:]
	if sp, dp := binary.BigEndian.Uint16(udp[0:2]), binary.BigEndian.Uint16(udp[2:4]); sp != serverPort || dp != 40000 {
		t.Errorf("ports not swapped: %d -> %d", sp, dp)
	}
	if !udpChecksumValid(ip) {
		t.Errorf("UDP checksum invalid")
	}
	if !bytes.Equal(udp[udpHeaderLen:], payload) {
		t.Errorf("payload changed")
	}
}

// udpChecksumValid verifies a datagram's checksum as a receiving kernel
// does: zero means none; otherwise the full sum must fold to 0xffff.
func udpChecksumValid(ip []byte) bool {
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	udp := ip[ipv4HeaderLen:total]
	if binary.BigEndian.Uint16(udp[6:8]) == 0 {
		return true
	}
	return checksum(uint32(protoUDP)+uint32(len(udp))+uint32(checksum(0, ip[12:20])), udp) == 0xffff
}

func TestReflectEcho(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		partial bool
		zero    bool
	}{
		{"empty", nil, false, false},
		{"odd", []byte("hello"), false, false},
		{"partial checksum from veth", bytes.Repeat([]byte{0xab, 0xcd, 0xef}, 100), true, false},
		{"zero checksum mode", []byte("0123456789"), true, true},
		{"max payload", bytes.Repeat([]byte{0xff}, backends.MaxUDPPayload), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testReflector(backends.Echo)
			if tc.zero {
				r.UDPChecksum = ChecksumZero
			}
			in := udpFrame{payload: tc.payload, partialCsum: tc.partial}.build()
			frame := append(in, make([]byte, 6)...) // Ethernet padding is not echoed
			v := r.Reflect(frame)
			if v.Action != Reply || v.Len != len(in) || v.Payload != len(tc.payload) {
				t.Fatalf("verdict %+v, want Reply of %d bytes", v, len(in))
			}
			validEcho(t, frame[:v.Len], tc.payload)
			if got := binary.BigEndian.Uint16(frame[ethHeaderLen+ipv4HeaderLen+6:]); tc.zero && got != 0 {
				t.Errorf("zero-checksum mode sent checksum %#x", got)
			}
		})
	}
}

func TestReflectSinkConsumes(t *testing.T) {
	for _, svc := range []backends.Service{backends.Sink, backends.Source} {
		in := udpFrame{payload: []byte("abc")}.build()
		orig := bytes.Clone(in)
		v := testReflector(svc).Reflect(in)
		if v.Action != Consume || v.Payload != 3 {
			t.Errorf("%s: verdict %+v, want Consume of 3", svc, v)
		}
		if !bytes.Equal(in, orig) {
			t.Errorf("%s: frame modified", svc)
		}
	}
}

func TestReflectARP(t *testing.T) {
	r := testReflector(backends.Echo)
	frame := arpRequest(serverIP)
	v := r.Reflect(frame)
	if v.Action != Reply || !v.ARP || v.Len != len(frame) {
		t.Fatalf("verdict %+v, want ARP reply", v)
	}
	a := frame[ethHeaderLen:]
	for _, c := range []struct {
		what      string
		got, want []byte
	}{
		{"eth dst", frame[0:6], clientMAC[:]},
		{"eth src", frame[6:12], serverMAC[:]},
		{"op", a[6:8], []byte{0, 2}},
		{"sender MAC", a[8:14], serverMAC[:]},
		{"sender IP", a[14:18], serverIP.AsSlice()},
		{"target MAC", a[18:24], clientMAC[:]},
		{"target IP", a[24:28], clientIP.AsSlice()},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = %x, want %x", c.what, c.got, c.want)
		}
	}

	if v := r.Reflect(arpRequest(netip.MustParseAddr("10.203.0.9"))); v.Action != Drop || v.Reason != ReasonARP {
		t.Errorf("ARP for another host: %+v, want drop arp", v)
	}
	noIP := testReflector(backends.Echo)
	noIP.IP = netip.Addr{}
	if v := noIP.Reflect(arpRequest(serverIP)); v.Action != Drop || v.Reason != ReasonARP {
		t.Errorf("ARP with no server address: %+v, want drop arp", v)
	}
}

func TestReflectDrops(t *testing.T) {
	ip := func(f []byte) []byte { return f[ethHeaderLen:] }
	valid := func() []byte { return udpFrame{payload: []byte("payload!")}.build() }
	for _, tc := range []struct {
		name  string
		frame func() []byte
		want  DropReason
	}{
		{"empty", func() []byte { return nil }, ReasonTruncated},
		{"short ethernet", func() []byte { return valid()[:13] }, ReasonTruncated},
		{"short IPv4 header", func() []byte { return valid()[:ethHeaderLen+19] }, ReasonTruncated},
		{"short ARP", func() []byte { return arpRequest(serverIP)[:ethHeaderLen+27] }, ReasonTruncated},
		{"IPv6", func() []byte { f := valid(); binary.BigEndian.PutUint16(f[12:14], 0x86dd); return f }, ReasonEtherType},
		{"old memif goodbye", memifGoodbye, ReasonEtherType},
		{"VLAN tag", func() []byte { f := valid(); binary.BigEndian.PutUint16(f[12:14], 0x8100); return f }, ReasonEtherType},
		{"other MAC", func() []byte { f := valid(); f[5] = 0x77; return f }, ReasonDstMAC},
		{"broadcast IPv4", func() []byte { f := valid(); copy(f[0:6], broadcastMAC[:]); return f }, ReasonDstMAC},
		{"ARP reply", func() []byte { f := arpRequest(serverIP); f[ethHeaderLen+7] = 2; return f }, ReasonARP},
		{"ARP not IPv4", func() []byte { f := arpRequest(serverIP); f[ethHeaderLen+2] = 0x86; return f }, ReasonARP},
		{"version 6", func() []byte { f := valid(); ip(f)[0] = 0x65; fixIPChecksum(ip(f)); return f }, ReasonVersion},
		{"IHL 4", func() []byte { f := valid(); ip(f)[0] = 0x44; return f }, ReasonIHL},
		{"IHL 0", func() []byte { f := valid(); ip(f)[0] = 0x40; return f }, ReasonIHL},
		{"IP options", func() []byte { f := valid(); ip(f)[0] = 0x46; return f }, ReasonIPOptions},
		{"total below header", func() []byte {
			f := valid()
			binary.BigEndian.PutUint16(ip(f)[2:4], 19)
			fixIPChecksum(ip(f))
			return f
		}, ReasonIPLength},
		{"total beyond frame", func() []byte {
			f := valid()
			binary.BigEndian.PutUint16(ip(f)[2:4], uint16(len(ip(f))+1))
			fixIPChecksum(ip(f))
			return f
		}, ReasonTruncated},
		{"total without UDP header", func() []byte {
			f := valid()
			binary.BigEndian.PutUint16(ip(f)[2:4], 27)
			fixIPChecksum(ip(f))
			return f
		}, ReasonTruncated},
		{"bad IP checksum", func() []byte { f := valid(); ip(f)[10] ^= 1; return f }, ReasonIPChecksum},
		{"more fragments", func() []byte { f := valid(); ip(f)[6] |= 0x20; fixIPChecksum(ip(f)); return f }, ReasonFragment},
		{"fragment offset", func() []byte {
			f := valid()
			binary.BigEndian.PutUint16(ip(f)[6:8], 0x0010)
			fixIPChecksum(ip(f))
			return f
		}, ReasonFragment},
		{"TCP", func() []byte { f := valid(); ip(f)[9] = 6; fixIPChecksum(ip(f)); return f }, ReasonNotUDP},
		{"ICMP", func() []byte { f := valid(); ip(f)[9] = 1; fixIPChecksum(ip(f)); return f }, ReasonNotUDP},
		{"other IP", func() []byte { f := valid(); ip(f)[19] = 9; fixIPChecksum(ip(f)); return f }, ReasonDstIP},
		{"UDP length short", func() []byte { f := valid(); binary.BigEndian.PutUint16(ip(f)[24:26], 9); return f }, ReasonUDPLength},
		{"UDP length long", func() []byte { f := valid(); binary.BigEndian.PutUint16(ip(f)[24:26], 200); return f }, ReasonUDPLength},
		{"other port", func() []byte { f := valid(); binary.BigEndian.PutUint16(ip(f)[22:24], 9001); return f }, ReasonDstPort},
		{"oversize", func() []byte { return udpFrame{payload: make([]byte, backends.MaxUDPPayload+1)}.build() }, ReasonOversize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.frame()
			orig := bytes.Clone(f)
			v := testReflector(backends.Echo).Reflect(f)
			if v.Action != Drop || v.Reason != tc.want {
				t.Fatalf("verdict %+v (reason %s), want drop %s", v, v.Reason, tc.want)
			}
			if !bytes.Equal(f, orig) {
				t.Errorf("a dropped frame was modified")
			}
		})
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := DropReason(0); r < numReasons; r++ {
		n := r.String()
		if n == "" || seen[n] {
			t.Errorf("reason %d has empty or duplicate name %q", r, n)
		}
		seen[n] = true
	}
	if numReasons.String() != "unknown" {
		t.Errorf("out-of-range reason named %q", numReasons.String())
	}
}

// reflectTwin, set in a build with the dpdk tag, runs the C fast path's
// rules (rb_judge) on a frame that arrived in segs mbufs, so FuzzReflect
// holds the C path to the same verdicts and rewrites as the Go statement.
var reflectTwin func(r *Reflector, frame []byte, segs int) Verdict

// memifGoodbye is the frame (EtherType 0x88b5, opcode 1) after which
// earlier versions parked the loop; now it is one more foreign EtherType.
func memifGoodbye() []byte {
	b := make([]byte, 60)
	copy(b[0:6], serverMAC[:])
	copy(b[6:12], clientMAC[:])
	binary.BigEndian.PutUint16(b[12:14], 0x88b5)
	b[ethHeaderLen] = 1
	return b
}

// fuzzReflectors are the rules each fuzzed frame is judged under: every
// service that parses (source consumes as sink does), every checksum mode,
// with and without a server address (no-IP: any destination, no ARP).
func fuzzReflectors() []*Reflector {
	var out []*Reflector
	for _, svc := range []backends.Service{backends.Echo, backends.Sink} {
		for _, mode := range []ChecksumMode{ChecksumFull, ChecksumZero, ChecksumKeep} {
			for _, noIP := range []bool{false, true} {
				r := testReflector(svc)
				r.UDPChecksum = mode
				if noIP {
					r.IP = netip.Addr{}
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// FuzzReflect: whatever arrives, Reflect never panics, never replies with
// more bytes than it got, and every echo it sends carries valid checksums
// (zero mode: none) and the payload it got. With the dpdk tag the C path
// must give the same verdict and the same bytes, and drop a frame that came
// in a chain of mbufs as multi_seg, untouched.
func FuzzReflect(f *testing.F) {
	f.Add(udpFrame{payload: []byte("seed")}.build())
	f.Add(udpFrame{payload: []byte("partial"), partialCsum: true}.build())
	f.Add(arpRequest(serverIP))
	f.Add(memifGoodbye())
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, r := range fuzzReflectors() {
			out := bytes.Clone(frame)
			v := r.Reflect(out)
			checkVerdict(t, r, frame, out, v)
			if reflectTwin == nil {
				continue
			}
			c := bytes.Clone(frame)
			if cv := reflectTwin(r, c, 1); cv != v || !bytes.Equal(c, out) {
				t.Fatalf("%s checksum %d ip %v: C %+v %x, Go %+v %x", r.Service, r.UDPChecksum, r.IP, cv, c, v, out)
			}
			c = bytes.Clone(frame)
			if cv := reflectTwin(r, c, 2); cv != (Verdict{Action: Drop, Reason: ReasonMultiSeg}) || !bytes.Equal(c, frame) {
				t.Fatalf("two segments: C %+v, want drop multi_seg with the frame untouched", cv)
			}
		}
	})
}

// checkVerdict holds v, r's verdict on in (out is in after Reflect), to what
// any verdict must be.
func checkVerdict(t *testing.T, r *Reflector, in, out []byte, v Verdict) {
	t.Helper()
	switch v.Action {
	case Drop:
		if v.Reason == ReasonNone || v.Reason >= numReasons || v.Reason == ReasonMultiSeg {
			t.Fatalf("drop with reason %d", v.Reason)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("dropped frame modified")
		}
		if len(in) >= ethHeaderLen && binary.BigEndian.Uint16(in[12:14]) == 0x88b5 && v.Reason != ReasonEtherType {
			t.Fatalf("old goodbye frame dropped as %s, want ethertype", v.Reason)
		}
	case Consume:
		if r.Service == backends.Echo || !bytes.Equal(out, in) {
			t.Fatalf("consume from %s, frame modified %v", r.Service, !bytes.Equal(out, in))
		}
	case Reply:
		if v.Len > len(out) || v.Len < ethHeaderLen+arpLen {
			t.Fatalf("reply of %d bytes from %d", v.Len, len(out))
		}
		if v.ARP {
			if !r.IP.Is4() {
				t.Fatalf("ARP reply with no server address")
			}
			return
		}
		if r.Service != backends.Echo {
			t.Fatalf("echo from %s", r.Service)
		}
		ip := out[ethHeaderLen:v.Len]
		// Keep mode sends the checksum that came: valid if it was (a swap
		// keeps a complete sum), not if veth left it partial.
		wantValid := r.UDPChecksum != ChecksumKeep || udpChecksumValid(in[ethHeaderLen:v.Len])
		if checksum(0, ip[:ipv4HeaderLen]) != 0xffff || udpChecksumValid(ip) != wantValid {
			t.Fatalf("echo in checksum mode %d: IPv4 checksum %#x, UDP checksum valid %v", r.UDPChecksum, checksum(0, ip[:ipv4HeaderLen]), udpChecksumValid(ip))
		}
		if zero := binary.BigEndian.Uint16(ip[26:28]) == 0; zero != (r.UDPChecksum == ChecksumZero) && r.UDPChecksum != ChecksumKeep {
			t.Fatalf("echo in checksum mode %d carries checksum %#x", r.UDPChecksum, binary.BigEndian.Uint16(ip[26:28]))
		}
		if !bytes.Equal(ip[28:], in[ethHeaderLen+28:v.Len]) {
			t.Fatalf("echo payload changed")
		}
	default:
		t.Fatalf("action %d", v.Action)
	}
}

// A swap leaves a complete checksum valid, so keep mode sends the one that
// came; full mode repairs veth's partial one.
func TestReflectChecksumKeep(t *testing.T) {
	r := testReflector(backends.Echo)
	r.UDPChecksum = ChecksumKeep
	payload := []byte("complete checksum from a memif peer")
	frame := udpFrame{payload: payload}.build()
	if v := r.Reflect(frame); v.Action != Reply {
		t.Fatalf("verdict %+v", v)
	}
	validEcho(t, frame, payload)
}

// BenchmarkReflect: the Go statement of the rules allocates nothing per
// frame (the C fast path allocates nothing at all).
func BenchmarkReflect(b *testing.B) {
	r := testReflector(backends.Echo)
	frame := udpFrame{payload: make([]byte, 64)}.build()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		// An echo swaps in place; a second swap restores the request.
		if v := r.Reflect(frame); v.Action != Reply {
			b.Fatal(v)
		}
		copy(frame[0:6], serverMAC[:])
		copy(frame[6:12], clientMAC[:])
		ip := frame[ethHeaderLen:]
		src, dst := clientIP.As4(), serverIP.As4()
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		binary.BigEndian.PutUint16(ip[20:22], 40000)
		binary.BigEndian.PutUint16(ip[22:24], serverPort)
	}
}
