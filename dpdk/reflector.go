package dpdk

import (
	"encoding/binary"
	"net/netip"

	"ringbench/backends"
)

// These rules are the contract of the C fast path in reflector.c: the same
// checks in the same order, the same drop reasons with the same numbers, so
// a frame gets the same verdict on both sides (TestReflectCMatchesGo in
// server_dpdk_test.go and FuzzReflect in reflector_test.go check it when
// the dpdk tag is on).

// Frame layout sizes.
const (
	ethHeaderLen  = 14
	arpLen        = 28
	ipv4HeaderLen = 20
	udpHeaderLen  = 8

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	protoUDP      = 17
)

// Action is what the server does with a received frame.
type Action uint8

// Actions.
const (
	// Drop discards the frame and counts it under its DropReason.
	Drop Action = iota
	// Reply sends the frame, rewritten in place, back out of the port (a UDP
	// echo or an ARP reply).
	Reply
	// Consume counts a valid datagram addressed to the server and sends
	// nothing back (sink; source registers the sender as a peer).
	Consume
)

// DropReason says why a frame was dropped. The numbers are shared with
// reflector.h.
type DropReason uint8

// Drop reasons, in the order the checks run.
const (
	ReasonNone       DropReason = iota
	ReasonTruncated             // shorter than the headers it claims
	ReasonEtherType             // neither IPv4 nor ARP
	ReasonDstMAC                // not addressed to the port's MAC
	ReasonARP                   // ARP that is not a request for the server's address
	ReasonVersion               // IP version is not 4
	ReasonIHL                   // IHL below 5 words
	ReasonIPOptions             // IHL above 5: options are not served
	ReasonIPLength              // total length below the header's
	ReasonIPChecksum            // IPv4 header checksum is wrong
	ReasonFragment              // MF set or a fragment offset
	ReasonNotUDP                // IP protocol is not UDP
	ReasonDstIP                 // not addressed to the server's IPv4 address
	ReasonUDPLength             // UDP length disagrees with the IP length
	ReasonDstPort               // not addressed to the server's UDP port
	ReasonOversize              // payload larger than the configured maximum
	// ReasonMultiSeg: the PMD handed the frame in a chain of mbufs (larger
	// than one mbuf's data room). The C loop judges only contiguous frames;
	// Reflect never returns it, as a Go frame is always one slice.
	ReasonMultiSeg
	numReasons
)

var reasonNames = [numReasons]string{
	"none", "truncated", "ethertype", "dst_mac", "arp", "version", "ihl",
	"ip_options", "ip_length", "ip_checksum", "fragment", "not_udp", "dst_ip",
	"udp_length", "dst_port", "oversize", "multi_seg",
}

// String is the reason's counter name without its "drop_" prefix.
func (r DropReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Malformed reports whether a reason marks a broken or misdirected packet
// (counted in Counters.Dropped), as opposed to link-layer traffic that was
// never meant for the server (IPv6 neighbour discovery, other hosts' ARP),
// which is counted only in its drop_<reason> counter.
func (r DropReason) Malformed() bool {
	switch r {
	case ReasonNone, ReasonEtherType, ReasonDstMAC, ReasonARP:
		return false
	}
	return true
}

// Verdict is the outcome for one frame.
type Verdict struct {
	Action Action
	Reason DropReason // set when Action is Drop
	// Len is the length of the frame to send (Reply) and Payload the UDP
	// payload length (Reply or Consume of a datagram; 0 for ARP).
	Len     int
	Payload int
	ARP     bool // the reply is an ARP reply
}

// Reflector holds what the server answers to. Its Reflect method is the
// pure-Go statement of the fast path's rules.
type Reflector struct {
	MAC [6]byte
	// IP is the server's IPv4 address; the zero value accepts any
	// destination and answers no ARP.
	IP         netip.Addr
	Port       uint16
	MaxPayload int
	Service    backends.Service
	// SourceSize is the payload size of each datagram a source sends.
	SourceSize int
	// UDPChecksum says what checksum an echo carries.
	UDPChecksum ChecksumMode
}

// ChecksumMode is what the reflector does with an echo's UDP checksum. The
// numbers are shared with reflector.h.
type ChecksumMode uint8

// Checksum modes.
const (
	// ChecksumFull computes the full checksum: the only right answer to a
	// peer on the same host (veth, tap) whose kernel left it partial.
	ChecksumFull ChecksumMode = iota
	// ChecksumZero sends 0, "no checksum", which IPv4 allows.
	ChecksumZero
	// ChecksumKeep leaves it: swapping addresses and ports does not change
	// a one's-complement sum, so a complete checksum stays valid. For peers
	// whose frames carry complete checksums (memif, a real wire).
	ChecksumKeep
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Reflect classifies frame and, for a Reply, rewrites it in place: an ARP
// reply, or the echo with MACs, IPs and ports swapped and checksums made
// valid. veth hands over UDP checksums that are only partial (the sender's
// kernel left the payload sum to a NIC that does not exist), so a swap
// alone would send a wrong one: the UDP checksum is recomputed or zeroed.
func (r *Reflector) Reflect(frame []byte) Verdict {
	if len(frame) < ethHeaderLen {
		return drop(ReasonTruncated)
	}
	var dst [6]byte
	copy(dst[:], frame[0:6])
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherTypeARP:
		if dst != r.MAC && dst != broadcastMAC {
			return drop(ReasonDstMAC)
		}
		return r.arp(frame)
	case etherTypeIPv4:
		if dst != r.MAC {
			return drop(ReasonDstMAC)
		}
		return r.ipv4(frame)
	}
	return drop(ReasonEtherType)
}

func drop(why DropReason) Verdict { return Verdict{Action: Drop, Reason: why} }

func (r *Reflector) arp(frame []byte) Verdict {
	if len(frame) < ethHeaderLen+arpLen {
		return drop(ReasonTruncated)
	}
	a := frame[ethHeaderLen:]
	if !r.IP.Is4() ||
		binary.BigEndian.Uint16(a[0:2]) != 1 || // Ethernet
		binary.BigEndian.Uint16(a[2:4]) != etherTypeIPv4 ||
		a[4] != 6 || a[5] != 4 ||
		binary.BigEndian.Uint16(a[6:8]) != 1 || // request
		[4]byte(a[24:28]) != r.IP.As4() {
		return drop(ReasonARP)
	}
	// The asker becomes the target; the server answers as sender.
	copy(frame[0:6], frame[6:12])
	copy(frame[6:12], r.MAC[:])
	binary.BigEndian.PutUint16(a[6:8], 2)
	copy(a[18:28], a[8:18])
	copy(a[8:14], r.MAC[:])
	ip := r.IP.As4()
	copy(a[14:18], ip[:])
	return Verdict{Action: Reply, Len: len(frame), ARP: true}
}

func (r *Reflector) ipv4(frame []byte) Verdict {
	if len(frame) < ethHeaderLen+ipv4HeaderLen {
		return drop(ReasonTruncated)
	}
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 != 4 {
		return drop(ReasonVersion)
	}
	switch ihl := ip[0] & 0x0f; {
	case ihl < 5:
		return drop(ReasonIHL)
	case ihl > 5:
		return drop(ReasonIPOptions)
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total < ipv4HeaderLen {
		return drop(ReasonIPLength)
	}
	if total > len(ip) {
		return drop(ReasonTruncated)
	}
	if checksum(0, ip[:ipv4HeaderLen]) != 0xffff {
		return drop(ReasonIPChecksum)
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // MF or an offset
		return drop(ReasonFragment)
	}
	if ip[9] != protoUDP {
		return drop(ReasonNotUDP)
	}
	if r.IP.Is4() && [4]byte(ip[16:20]) != r.IP.As4() {
		return drop(ReasonDstIP)
	}
	if total < ipv4HeaderLen+udpHeaderLen {
		return drop(ReasonTruncated)
	}
	udp := ip[ipv4HeaderLen:total]
	if int(binary.BigEndian.Uint16(udp[4:6])) != len(udp) {
		return drop(ReasonUDPLength)
	}
	if binary.BigEndian.Uint16(udp[2:4]) != r.Port {
		return drop(ReasonDstPort)
	}
	payload := len(udp) - udpHeaderLen
	if payload > r.MaxPayload {
		return drop(ReasonOversize)
	}
	if r.Service != backends.Echo {
		return Verdict{Action: Consume, Payload: payload}
	}

	var mac [6]byte
	copy(mac[:], frame[0:6])
	copy(frame[0:6], frame[6:12])
	copy(frame[6:12], mac[:])
	var addr [4]byte
	copy(addr[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], addr[:])
	// A swap leaves the IPv4 header sum unchanged, and it was checked above.
	var port [2]byte
	copy(port[:], udp[0:2])
	copy(udp[0:2], udp[2:4])
	copy(udp[2:4], port[:])
	switch r.UDPChecksum {
	case ChecksumZero:
		binary.BigEndian.PutUint16(udp[6:8], 0)
	case ChecksumFull:
		binary.BigEndian.PutUint16(udp[6:8], 0)
		binary.BigEndian.PutUint16(udp[6:8], udpChecksum(ip[12:20], udp))
	}
	return Verdict{Action: Reply, Len: ethHeaderLen + total, Payload: payload}
}

// checksum adds b to the one's-complement sum sum, folded to 16 bits.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// udpChecksum is the full UDP checksum of udp (its checksum field zero)
// under the pseudo-header of addrs (source then destination IPv4).
func udpChecksum(addrs, udp []byte) uint16 {
	pseudo := uint32(protoUDP) + uint32(len(udp))
	s := ^checksum(pseudo+uint32(checksum(0, addrs)), udp)
	if s == 0 {
		return 0xffff // 0 means "no checksum"
	}
	return s
}
