package perf

import (
	"encoding/binary"
	"fmt"
)

// Record types and call chain context markers, as perf_event.h names them.
const (
	recordLost        = 2
	recordThrottle    = 5
	recordSample      = 9
	recordLostSamples = 13

	// ContextKernel and ContextUser mark where a call chain's kernel and
	// user parts begin; every value at or above contextMax is such a marker.
	ContextKernel = ^uint64(0) - 128 + 1 // (u64)-128
	ContextUser   = ^uint64(0) - 512 + 1 // (u64)-512
	contextMax    = ^uint64(0) - 4095 + 1
)

// Sample is one decoded PERF_RECORD_SAMPLE.
type Sample struct {
	IP       uint64
	PID, TID uint32
	Time     uint64
	CPU      uint32
	Period   uint64
	// Kernel and User are the call chain's two parts, leaf first, without
	// the context markers; either may be empty.
	Kernel, User []uint64
}

// Records is what Decode found in a stream of records.
type Records struct {
	Samples []Sample
	// Lost counts samples the kernel could not write (ring full), from
	// PERF_RECORD_LOST and PERF_RECORD_LOST_SAMPLES.
	Lost uint64
	// Throttled counts PERF_RECORD_THROTTLE: the kernel slowed the event
	// down because sampling took too much of the CPU.
	Throttled uint64
	// Other counts records of other types, skipped.
	Other uint64
}

// Decode appends to r the records in b, which holds whole records of
// events opened with SampleType, and fails on a record that does not fit
// its own header or does not fit the layout.
func Decode(r *Records, b []byte) error {
	le := binary.NativeEndian
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return fmt.Errorf("decode perf records: %d trailing bytes at offset %d", len(b)-off, off)
		}
		typ := le.Uint32(b[off:])
		size := int(le.Uint16(b[off+6:]))
		if size < 8 || off+size > len(b) {
			return fmt.Errorf("decode perf records: record of type %d at offset %d claims %d bytes, %d left", typ, off, size, len(b)-off)
		}
		body := b[off+8 : off+size]
		switch typ {
		case recordSample:
			s, err := decodeSample(body)
			if err != nil {
				return fmt.Errorf("decode perf records: sample at offset %d: %w", off, err)
			}
			r.Samples = append(r.Samples, s)
		case recordLost:
			if len(body) < 16 {
				return fmt.Errorf("decode perf records: lost record at offset %d has %d bytes", off, len(body))
			}
			r.Lost += le.Uint64(body[8:]) // id, then lost
		case recordLostSamples:
			if len(body) < 8 {
				return fmt.Errorf("decode perf records: lost-samples record at offset %d has %d bytes", off, len(body))
			}
			r.Lost += le.Uint64(body)
		case recordThrottle:
			r.Throttled++
		default:
			r.Other++
		}
		off += size
	}
	return nil
}

// decodeSample reads the fields of SampleType in the kernel's order: ip,
// pid/tid, time, cpu/res, period, then nr and nr call chain entries.
func decodeSample(b []byte) (Sample, error) {
	le := binary.NativeEndian
	const fixed = 6 * 8
	if len(b) < fixed {
		return Sample{}, fmt.Errorf("%d bytes, want at least %d", len(b), fixed)
	}
	s := Sample{
		IP:     le.Uint64(b[0:]),
		PID:    le.Uint32(b[8:]),
		TID:    le.Uint32(b[12:]),
		Time:   le.Uint64(b[16:]),
		CPU:    le.Uint32(b[24:]),
		Period: le.Uint64(b[32:]),
	}
	nr := le.Uint64(b[40:])
	if nr > uint64(len(b)-fixed)/8 {
		return Sample{}, fmt.Errorf("call chain of %d entries in %d bytes", nr, len(b)-fixed)
	}
	var cur *[]uint64
	for i := range int(nr) {
		ip := le.Uint64(b[fixed+8*i:])
		switch {
		case ip == ContextKernel:
			cur = &s.Kernel
		case ip == ContextUser:
			cur = &s.User
		case ip >= contextMax:
			cur = nil // hypervisor or guest parts: not ours to symbolize
		case cur != nil:
			*cur = append(*cur, ip)
		}
	}
	return s, nil
}
