//go:build dpdk

package dpdk

import "testing"

// The C loop's latency histogram: exact below 2048 ns, within 0.1% above,
// and its buckets in the order of the values.
func TestLatencyBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 2047, 2048, 2049, 4095, 4096, 10_000, 123_456, 1_000_000, 59_999_999_999, 1 << 49} {
		i, got := histBucket(v)
		if i < prev {
			t.Errorf("bucket of %d is %d, before the previous value's %d", v, i, prev)
		}
		prev = i
		if v < 2048 && got != v {
			t.Errorf("%d ns reads back %d: want exact", v, got)
		}
		if v >= 2048 {
			if d := float64(got)/float64(v) - 1; d > 0.001 || d < -0.001 {
				t.Errorf("%d ns reads back %d (%.3f%%)", v, got, 100*d)
			}
		}
	}
}
