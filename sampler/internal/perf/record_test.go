package perf

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// encode writes records as the kernel lays them out for SampleType.
func encodeSample(s Sample) []byte {
	le := binary.NativeEndian
	var chain []uint64
	if len(s.Kernel) > 0 {
		chain = append(append(chain, ContextKernel), s.Kernel...)
	}
	if len(s.User) > 0 {
		chain = append(append(chain, ContextUser), s.User...)
	}
	b := make([]byte, 8+48+8*len(chain))
	le.PutUint32(b[0:], recordSample)
	le.PutUint16(b[6:], uint16(len(b)))
	body := b[8:]
	le.PutUint64(body[0:], s.IP)
	le.PutUint32(body[8:], s.PID)
	le.PutUint32(body[12:], s.TID)
	le.PutUint64(body[16:], s.Time)
	le.PutUint32(body[24:], s.CPU)
	le.PutUint64(body[32:], s.Period)
	le.PutUint64(body[40:], uint64(len(chain)))
	for i, ip := range chain {
		le.PutUint64(body[48+8*i:], ip)
	}
	return b
}

func encodeLost(n uint64) []byte {
	le := binary.NativeEndian
	b := make([]byte, 8+16)
	le.PutUint32(b[0:], recordLost)
	le.PutUint16(b[6:], uint16(len(b)))
	le.PutUint64(b[16:], n)
	return b
}

func TestDecode(t *testing.T) {
	samples := []Sample{
		{IP: 0xffffffff81000010, PID: 7, TID: 8, Time: 100, CPU: 1, Period: 1001001,
			Kernel: []uint64{0xffffffff81000010, 0xffffffff81000200}, User: []uint64{0x401000, 0x402000}},
		{IP: 0x401234, PID: 9, TID: 9, Time: 101, CPU: 0, Period: 1001001, User: []uint64{0x401234}},
		{IP: 0xffffffff81000300, Time: 102, Period: 1001001, Kernel: []uint64{0xffffffff81000300}},
	}
	var b []byte
	for _, s := range samples {
		b = append(b, encodeSample(s)...)
	}
	b = append(b, encodeLost(5)...)
	b = append(b, encodeLost(2)...)
	var r Records
	if err := Decode(&r, b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Samples, samples) {
		t.Errorf("samples:\n got %+v\nwant %+v", r.Samples, samples)
	}
	if r.Lost != 7 {
		t.Errorf("lost = %d, want 7", r.Lost)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := encodeSample(Sample{Kernel: []uint64{1, 2}})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"short header", good[:5]},
		{"truncated record", good[:len(good)-8]},
		{"chain longer than record", func() []byte {
			b := append([]byte(nil), good...)
			binary.NativeEndian.PutUint64(b[8+40:], 100)
			return b
		}()},
		{"size below header", func() []byte {
			b := append([]byte(nil), good...)
			binary.NativeEndian.PutUint16(b[6:], 4)
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Records
			if err := Decode(&r, tc.b); err == nil {
				t.Errorf("Decode succeeded")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeSample(Sample{Kernel: []uint64{1}, User: []uint64{2}}))
	f.Add(encodeLost(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Records
		_ = Decode(&r, b) // must not panic
	})
}
