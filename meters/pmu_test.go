package meters

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
	"ringbench/results"
)

// The machines this is developed on have no PMU: the cycle meter's path
// (open pinned per CPU, read with enabled/running, scale, derive) runs here
// on the software cpu-clock event, which counts nanoseconds on its CPU.
var cpuClock = perfEvent{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK}

// A Target that sets no event counts hardware cycles: production never
// counts the tests' event.
func TestZeroEventIsHardwareCycles(t *testing.T) {
	if (Target{}).cycleEvent != hardwareCycles {
		t.Errorf("a zero Target counts %v, want hardware cycles %v", Target{}.cycleEvent, hardwareCycles)
	}
}

// The counter is pinned (never multiplexed silently), enabled from its
// open, and reads its enabled and running times.
func TestCycleAttr(t *testing.T) {
	a := cycleAttr(hardwareCycles)
	if a.Type != unix.PERF_TYPE_HARDWARE || a.Config != unix.PERF_COUNT_HW_CPU_CYCLES {
		t.Errorf("event type %d config %d, want hardware cycles", a.Type, a.Config)
	}
	if a.Bits&unix.PerfBitPinned == 0 {
		t.Error("cycle counter not pinned")
	}
	if a.Bits&unix.PerfBitDisabled != 0 {
		t.Error("cycle counter opened disabled: it would count nothing")
	}
	if want := uint64(unix.PERF_FORMAT_TOTAL_TIME_ENABLED | unix.PERF_FORMAT_TOTAL_TIME_RUNNING); a.Read_format != want {
		t.Errorf("read format %#x, want %#x (enabled and running, no group, no id)", a.Read_format, want)
	}
	if b := cycleAttr(cpuClock); b.Type != cpuClock.Type || b.Config != cpuClock.Config || b.Bits != a.Bits || b.Read_format != a.Read_format {
		t.Errorf("the tests' event differs from the production one in more than the event: %+v", b)
	}
}

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		name             string
		v, en, run, want uint64
		err              string
	}{
		{"on the PMU all the time", 100, 10, 10, 100, ""},
		{"multiplexed half the time", 100, 20, 10, 200, ""},
		{"multiplexed a third of the time", 1000, 3_000_000, 1_000_000, 3000, ""},
		{"not enabled yet", 0, 0, 0, 0, ""},
		{"never scheduled", 5, 10, 0, 0, "never scheduled"},
		{"never scheduled, nothing counted", 0, 10, 0, 0, "never scheduled"},
		// 2^60 cycles scaled by 3/2 is exact in 128 bits; float64 would
		// round it.
		{"large count stays exact", 1<<60 + 1, 3, 2, (1<<60 + 1) * 3 / 2, ""},
		{"overflow is an error", math.MaxUint64, 4, 2, 0, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scale(tc.v, tc.en, tc.run)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("scale(%d, %d, %d) = %d, %v; want an error with %q", tc.v, tc.en, tc.run, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("scale(%d, %d, %d) = %d, %v; want %d", tc.v, tc.en, tc.run, got, err, tc.want)
			}
		})
	}
}

// read decodes what the kernel writes for a scaled counter (value, time
// enabled, time running) and refuses what a counter that stopped counting
// gives. A pinned event that loses its PMU cannot be made here (software
// events are always schedulable and there is no PMU), so a pipe stands in
// for its file descriptor: the bytes read are what perf_event_open(2)
// documents, an error-state event's read being 0 bytes.
func TestReadDecodesAndRefuses(t *testing.T) {
	record := func(v, en, run uint64) []byte {
		b := make([]byte, 24)
		binary.NativeEndian.PutUint64(b, v)
		binary.NativeEndian.PutUint64(b[8:], en)
		binary.NativeEndian.PutUint64(b[16:], run)
		return b
	}
	for _, tc := range []struct {
		name  string
		reads [][]byte // one per counter (fd)
		want  uint64
		err   string
	}{
		{"one counter on the PMU", [][]byte{record(1000, 50, 50)}, 1000, ""},
		{"two CPUs sum, one multiplexed", [][]byte{record(1000, 50, 50), record(300, 60, 20)}, 1900, ""},
		{"pinned event in error state reads 0 bytes", [][]byte{{}}, 0, "error state"},
		{"one CPU of two in error state", [][]byte{record(1000, 50, 50), {}}, 0, "error state"},
		{"short read", [][]byte{record(1000, 50, 50)[:8]}, 0, "short read of 8 bytes"},
		{"never scheduled", [][]byte{record(0, 50, 0)}, 0, "never scheduled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &perfCounter{scaled: true}
			defer c.Close()
			for _, b := range tc.reads {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				if _, err := unix.Write(p[1], b); err != nil {
					t.Fatal(err)
				}
				unix.Close(p[1]) // an empty pipe then reads 0 bytes, as an error-state event
				c.fds = append(c.fds, p[0])
			}
			got, err := c.read()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("read = %d, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("read = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if !errors.Is(errPinnedLost, errPinnedLost) || !strings.Contains(errPinnedLost.Error(), "pinned") {
		t.Errorf("errPinnedLost says %q", errPinnedLost)
	}
}

// The whole path, Reader → Snapshot → Fill, on the software cpu-clock
// event: a CPU-wide cpu-clock counter counts the wall time of its CPU in
// any state, so over a window in which a thread spins pinned on one CPU,
// the counter's delta is the window's wall time on each counted CPU (the
// ground truth), and at least the spinning thread's own CPU time. The
// record says perf, and its cycles per op are the delta over the ops.
func TestCycleMeterOnSoftwareEvent(t *testing.T) {
	testenv.SkipUnlessRoot(t, "a CPU-wide perf counter (perf_event_paranoid)")
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	t.Run("the spinning cpu", func(t *testing.T) { spinAndCount(t, cpus[0], cpus[:1]) })
	if len(cpus) < 2 {
		t.Skip("skipped: summing over CPUs needs two allowed CPUs")
	}
	t.Run("every cpu", func(t *testing.T) { spinAndCount(t, cpus[0], cpus) })
}

// spinAndCount spins on cpu for a window while the reader counts cpu-clock
// on counted, and checks the record against the window's wall time.
func spinAndCount(t *testing.T, cpu int, counted []int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	// The thread is unlocked (and so reused) only with its mask restored.
	defer unix.SchedSetaffinity(0, &set)

	r, err := NewReader(Target{PID: os.Getpid(), ServerCPUs: counted, cycleEvent: cpuClock})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	testenv.SkipIfUnsupported(t, r.CyclesErr())
	if !r.HasPMU() {
		t.Fatal("counter open but HasPMU false")
	}

	const spin = 200 * time.Millisecond
	thread0 := threadCPU()
	a := r.Read(false)
	for start := Now(); Now()-start < spin; {
	}
	b := r.Read(false)
	spun := threadCPU() - thread0
	if a.CyclesErr != nil || b.CyclesErr != nil {
		t.Fatalf("cycle reads: %v, %v", a.CyclesErr, b.CyclesErr)
	}

	const ops = 1000
	var rec results.Record
	Fill(&rec, Window{A: a, B: b, ServerCPUs: counted, TSCHz: 1e9,
		Gen: Generator{Ops: ops, Window: b.At - a.At, IdlePollShare: -1}})
	if rec.CyclesSource != "perf" {
		t.Fatalf("cycles_source %q, want perf", rec.CyclesSource)
	}
	delta := float64(b.Cycles - a.Cycles)
	if rec.Cycles != delta || rec.CyclesPerOp != delta/ops {
		t.Errorf("record cycles %.0f, per op %.1f; want the counter's %.0f, per op %.1f", rec.Cycles, rec.CyclesPerOp, delta, delta/ops)
	}
	// Each edge's counter read lies within that edge's cheap reads, which
	// At sits in the middle of.
	n := float64(len(counted))
	wall := float64(b.At - a.At)
	tol := n * (float64(a.ReadTook+b.ReadTook) + 0.002*wall)
	if math.Abs(delta-n*wall) > tol {
		t.Errorf("cpu-clock counted %.3f ms on cpus %v over a %.3f ms window: off by more than %.3f ms from %.0f × the window",
			delta/1e6, counted, wall/1e6, tol/1e6, n)
	}
	if float64(spun) > delta+tol {
		t.Errorf("the spinning thread ran %.3f ms on cpu %d, more than the %.3f ms counted on %v", float64(spun)/1e6, cpu, delta/1e6, counted)
	}
	t.Logf("cpus %v: counted %.3f ms, window %.3f ms (reads took %v, %v), spinning thread %.3f ms, %.0f per op",
		counted, delta/1e6, wall/1e6, a.ReadTook, b.ReadTook, float64(spun)/1e6, rec.CyclesPerOp)
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}
