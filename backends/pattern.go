package backends

import "encoding/binary"

// SourcePeriod is the period of the source pattern. The source service sends bytes a client can verify without a copy of what
// was sent: the byte at stream offset o is SourceByte(o). A prime modulus
// keeps the pattern from lining up with power-of-two message sizes, so a
// lost, repeated or reordered chunk shows as a mismatch.
const SourcePeriod = 251

// SourceByte is the byte a TCP source sends at stream offset off.
func SourceByte(off uint64) byte { return byte(off % SourcePeriod) }

// FillSource writes the source pattern for stream offsets off, off+1, ...
// into p.
func FillSource(p []byte, off uint64) {
	k := off % SourcePeriod
	for i := range p {
		p[i] = byte(k)
		k++
		if k == SourcePeriod {
			k = 0
		}
	}
}

// SourceHeader is the size of a UDP source datagram's sequence header.
const SourceHeader = 8

// FillSourceDatagram writes UDP source datagram seq into p: an 8-byte
// little-endian sequence number, then the source pattern from offset seq.
// p must hold at least SourceHeader bytes.
func FillSourceDatagram(p []byte, seq uint64) {
	binary.LittleEndian.PutUint64(p, seq)
	FillSource(p[SourceHeader:], seq)
}

// SourcePattern returns the source pattern from offset 0, n+SourcePeriod
// bytes long: the n bytes for any stream offset o are
// p[o%SourcePeriod:][:n], so a source sends slices of it and computes
// nothing per message.
func SourcePattern(n int) []byte {
	p := make([]byte, n+SourcePeriod)
	FillSource(p, 0)
	return p
}
