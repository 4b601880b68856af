package workloads

import "ringbench/backends"

// patternSpan is the number of distinct request offsets: a prime, so the
// offsets of consecutive requests on a connection do not repeat with any
// power-of-two period.
const patternSpan = 4093

// requestPattern holds pseudo-random bytes; the request (conn, seq) of n
// bytes is requestPattern[off : off+n] with off = requestOffset(conn, seq).
// Random content makes two requests at different offsets differ, so a lost,
// duplicated or reordered reply is a mismatch.
var requestPattern = makeRequestPattern(backends.MaxTCPMessage + patternSpan)

func makeRequestPattern(n int) []byte {
	p := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range p {
		// xorshift64*: cheap, and good enough that offsets never line up.
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		p[i] = byte((x * 0x2545f4914f6cdd1d) >> 56)
	}
	return p
}

func requestOffset(conn int, seq uint64) int {
	return int((uint64(conn)*2654435761 + seq*7919) % patternSpan)
}

// sourcePattern is the source service's byte stream from offset 0, long
// enough that a read of up to readBufSize bytes at any stream offset o is
// compared against sourcePattern[o%period:] with one bytes.Equal.
var sourcePattern = makeSourcePattern()

// sourcePeriod is the period of backends.SourceByte.
const sourcePeriod = 251

func makeSourcePattern() []byte {
	p := make([]byte, sourcePeriod+readBufSize)
	backends.FillSource(p, 0)
	return p
}

func sourceAt(off uint64, n int) []byte {
	k := int(off % sourcePeriod)
	return sourcePattern[k : k+n]
}
