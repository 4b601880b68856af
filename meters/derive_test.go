package meters

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/results"
)

// snap builds a snapshot at wall time at (s) with cpu1's precise idle and
// /proc/stat columns, the server's CPU, SNMP counters and steal.
func snap(at, idle, statIdle, steal, srvCPU float64, snmp SNMP) Snapshot {
	return Snapshot{
		At:        time.Duration(at * 1e9),
		CPU:       map[int]CPUTimes{0: {Idle: at * 0.5e9}, 1: {Idle: statIdle * 1e9, Steal: steal * 1e9}},
		Idle:      IdleClock{Now: at * 1e9, Idle: map[int]float64{0: at * 0.5e9, 1: idle * 1e9}},
		ServerCPU: srvCPU * 1e9,
		SNMP:      snmp,
		Links:     map[string]Link{"veth0": {RxPackets: uint64(at * 100), TxPackets: uint64(at * 100)}},
		// Cost windows run without the tracepoint; no PMU here.
		SyscallsErr: ErrNotCounted, CyclesErr: errors.New("no PMU"), CountersErr: errors.New("external"),
	}
}

func TestFill(t *testing.T) {
	base := func() Window {
		return Window{
			A:          snap(10, 4, 4, 0, 1, SNMP{TCPInSegs: 1000, TCPOutSegs: 1000}),
			B:          snap(12, 4.5, 4.5, 0, 2.2, SNMP{TCPInSegs: 21000, TCPOutSegs: 21000}),
			ServerCPUs: []int{1}, ClientCPUs: []int{0},
			TSCHz: 2e9, Iface: "veth0", CPUSource: "cgroup",
			Gen: Generator{Ops: 10000, Bytes: 640000, Window: 2 * time.Second, ThreadCPU: time.Second, Loops: 1, IdlePollShare: -1},
		}
	}
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name   string
		change func(*Window)
		check  func(*testing.T, results.Record)
	}{
		{"busy from the ns idle clock", nil, func(t *testing.T, r results.Record) {
			// 2 s wall, 0.5 s idle: 1.5 s busy over 10000 ops.
			eq(t, "busy_ns", r.BusyNs, 1.5e9)
			eq(t, "busy_ns_per_op", r.BusyNsPerOp, 150000)
			eq(t, "server_busy", r.ServerBusy, 0.75)
			eq(t, "cycles_per_op (tsc)", r.CyclesPerOp, 300000)
			eq(t, "cpu_ns_per_op", r.CPUNsPerOp, 120000)
			eq(t, "outside_ns_per_op", r.OutsideNsPerOp, 30000)
			eq(t, "throughput_ops", r.ThroughputOps, 5000)
			eqp(t, "packets", r.Packets, u(40000))
			eqp(t, "cycles_per_packet", r.CyclesPerPacket, f(75000))
			eqp(t, "link_packets", r.LinkPackets, u(400))
			if r.BusySource != BusyTimerList || r.CyclesSource != "tsc" || r.CPUSource != "cgroup" {
				t.Errorf("sources %q %q %q", r.BusySource, r.CyclesSource, r.CPUSource)
			}
			if r.Syscalls != nil || !strings.Contains(r.SyscallsNote, "not counted") {
				t.Errorf("a cost window has syscalls %v (%q)", r.Syscalls, r.SyscallsNote)
			}
			if r.Noisy || r.ClientBound {
				t.Errorf("flags noisy %v client-bound %v", r.Noisy, r.ClientBound)
			}
		}},
		{"a stream's cost per byte and throughput per busy core", func(w *Window) {
			w.Stream = true
		}, func(t *testing.T, r results.Record) {
			// 3e9 TSC-equivalent cycles over 640000 bytes; 2.56 Mbit/s
			// on 0.75 of a core.
			eqp(t, "cycles_per_byte", r.CyclesPerByte, f(3e9/640000))
			eqp(t, "gbps_per_core", r.GbpsPerCore, f(640000*8/2/1e9/0.75))
		}},
		{"an echo has no cost per byte", nil, func(t *testing.T, r results.Record) {
			if r.CyclesPerByte != nil || r.GbpsPerCore != nil {
				t.Errorf("cycles_per_byte %v, gbps_per_core %v on an echo", r.CyclesPerByte, r.GbpsPerCore)
			}
		}},
		{"busy from /proc/stat without the ns clock", func(w *Window) {
			w.A.IdleErr, w.B.IdleErr = errors.New("not root"), errors.New("not root")
			w.B.CPU[1] = CPUTimes{Idle: 4.2e9, IOWait: 0.1e9}
		}, func(t *testing.T, r results.Record) {
			eq(t, "busy_ns", r.BusyNs, 1.7e9) // 2 − (0.2 + 0.1)
			if r.BusySource != BusyProcStat {
				t.Errorf("busy source %q", r.BusySource)
			}
		}},
		{"steal is not busy and flags noise", func(w *Window) {
			w.B.CPU[1] = CPUTimes{Idle: 4.5e9, Steal: 0.2e9}
		}, func(t *testing.T, r results.Record) {
			eq(t, "busy_ns", r.BusyNs, 1.3e9)
			eq(t, "noise_steal", r.NoiseSteal, 0.1)
			if !r.Noisy {
				t.Error("10% steal not flagged noisy")
			}
		}},
		{"tasks the scan missed are in the ticks", func(w *Window) {
			// 1.8 s of user and system ticks on the server core, of which
			// the server ran 1.2 s: another task took 0.6 s of 2.
			w.A.CPU[1] = CPUTimes{Idle: 4e9, User: 10e9, System: 5e9}
			w.B.CPU[1] = CPUTimes{Idle: 4.5e9, User: 11.3e9, System: 5.5e9}
		}, func(t *testing.T, r results.Record) {
			eq(t, "noise_ticked", r.NoiseTicked, 0.3)
			if !r.Noisy || !hasNote(r, "noisy: the server cores' user and system ticks exceed") {
				t.Errorf("a task that took 30%% of the core, seen only by the ticks, not flagged: noisy %v, notes %q", r.Noisy, r.Notes)
			}
		}},
		{"the server's own ticks are not noise", func(w *Window) {
			w.A.CPU[1] = CPUTimes{Idle: 4e9, User: 10e9, System: 5e9}
			w.B.CPU[1] = CPUTimes{Idle: 4.5e9, User: 10.9e9, System: 5.35e9} // 1.25 s against 1.2 s: a tick's error
		}, func(t *testing.T, r results.Record) {
			eq(t, "noise_ticked", r.NoiseTicked, 0.025)
			if r.Noisy {
				t.Errorf("flagged noisy on the ticks' own error: %q", r.Notes)
			}
		}},
		{"loopback halves the shared snmp", func(w *Window) { w.Packets = PacketsSNMPShared }, func(t *testing.T, r results.Record) {
			eqp(t, "packets", r.Packets, u(20000))
		}},
		{"port packets from the backend's counters", func(w *Window) {
			w.Packets = PacketsPort
			w.A.CountersErr, w.B.CountersErr = nil, nil
			w.A.Counters = backends.Counters{Extra: map[string]uint64{"port_rx_packets": 5, "port_tx_packets": 5}}
			w.B.Counters = backends.Counters{Syscalls: 500, Extra: map[string]uint64{"port_rx_packets": 10005, "port_tx_packets": 10005, "busy_cycles": 1e6, "busy_packets": 1e4}}
		}, func(t *testing.T, r results.Record) {
			eqp(t, "packets", r.Packets, u(20000))
			eqp(t, "backend_syscalls_per_op", r.BackendSyscallsPerOp, f(0.05))
			eqp(t, "busy_cycles_per_packet", r.BusyCyclesPerPacket, f(100))
		}},
		{"a counting window has syscalls", func(w *Window) {
			w.A.SyscallsErr, w.B.SyscallsErr = nil, nil
			w.A.Syscalls, w.B.Syscalls = 100, 25100
		}, func(t *testing.T, r results.Record) {
			eqp(t, "syscalls_per_op", r.SyscallsPerOp, f(2.5))
		}},
		{"hardware cycles where a PMU counts", func(w *Window) {
			w.A.CyclesErr, w.B.CyclesErr = nil, nil
			w.A.Cycles, w.B.Cycles = 1e9, 4e9
		}, func(t *testing.T, r results.Record) {
			eq(t, "cycles_per_op", r.CyclesPerOp, 300000)
			if r.CyclesSource != "perf" {
				t.Errorf("cycles source %q", r.CyclesSource)
			}
		}},
		{"generator threads on CPU flag client-bound", func(w *Window) { w.Gen.ThreadCPU = 1960 * time.Millisecond }, func(t *testing.T, r results.Record) {
			if !r.ClientBound {
				t.Error("98% busy generator threads not flagged")
			}
		}},
		{"a generator on the server's CPUs is flagged, not judged by their busy time", func(w *Window) {
			w.ClientCPUs = []int{0, 1}
			w.Gen.Loops = 2
			w.B.Idle.Idle[0] = w.A.Idle.Idle[0] // both CPUs fully busy
			w.B.Idle.Idle[1] = w.A.Idle.Idle[1]
		}, func(t *testing.T, r results.Record) {
			if !r.ClientSharesServerCPUs || !hasNote(r, "the generator shares the server's CPUs [1]") {
				t.Errorf("shared CPUs not flagged: %v, notes %q", r.ClientSharesServerCPUs, r.Notes)
			}
			if r.ClientBusy < 0.95 || r.ClientBound {
				t.Errorf("client busy %v: the server's work on shared CPUs flagged client-bound %v", r.ClientBusy, r.ClientBound)
			}
		}},
		{"a generator on CPUs of its own is not flagged shared, and its busy cores bind it", func(w *Window) {
			w.B.Idle.Idle[0] = w.A.Idle.Idle[0]
		}, func(t *testing.T, r results.Record) {
			if r.ClientSharesServerCPUs || !r.ClientBound {
				t.Errorf("shared %v client-bound %v, want false, true", r.ClientSharesServerCPUs, r.ClientBound)
			}
		}},
		{"no counters of its own is a note", nil, func(t *testing.T, r results.Record) {
			if r.BackendSyscallsPerOp != nil || !hasNote(r, results.NoOwnCounters+"external") {
				t.Errorf("backend syscalls %v, notes %q", r.BackendSyscallsPerOp, r.Notes)
			}
		}},
		{"local client cores' busy", nil, func(t *testing.T, r results.Record) {
			eq(t, "client_busy", r.ClientBusy, 0.5) // cpu0 idle half the wall
			if r.ClientBusySource != "" {
				t.Errorf("client busy source %q on one host", r.ClientBusySource)
			}
		}},
		{"a generator on another host brings its cores' busy", func(w *Window) {
			// This host's cpu0 is fully busy: it is not the generator's.
			w.B.Idle.Idle[0] = w.A.Idle.Idle[0]
			w.ClientCPUs = nil
			w.Gen.CoresBusy, w.Gen.CoresBusySource = f(0.25), "timer_list on the client host gen1"
		}, func(t *testing.T, r results.Record) {
			eq(t, "client_busy", r.ClientBusy, 0.25)
			if r.ClientBusySource != "timer_list on the client host gen1" || r.ClientBound {
				t.Errorf("client busy source %q, client-bound %v", r.ClientBusySource, r.ClientBound)
			}
		}},
		{"a busy generator host flags client-bound", func(w *Window) {
			w.ClientCPUs = nil
			w.Gen.CoresBusy = f(0.97)
		}, func(t *testing.T, r results.Record) {
			if !r.ClientBound {
				t.Error("97% busy client host cores not flagged")
			}
		}},
		{"a polling generator is not judged by its busy core", func(w *Window) {
			w.Gen.Polling, w.Gen.ThreadCPU = true, 2*time.Second
			w.B.Idle.Idle[0] = 0
		}, func(t *testing.T, r results.Record) {
			if r.ClientBound {
				t.Error("polling generator flagged for its busy core")
			}
		}},
		{"a polling generator without idle polls is bound", func(w *Window) {
			w.Gen.Polling, w.Gen.IdlePollShare = true, 0.01
		}, func(t *testing.T, r results.Record) {
			if !r.ClientBound {
				t.Error("polling generator with 1% idle polls not flagged")
			}
		}},
		{"a missed open-loop rate is said", func(w *Window) { w.Rate = 10000 }, func(t *testing.T, r results.Record) {
			if !hasNote(r, "achieved 5000 of 10000 ops/s") {
				t.Errorf("notes %q", r.Notes)
			}
		}},
		{"an open loop that fell behind and left requests unsent is client-bound, with the shortfall", func(w *Window) {
			// 10000 ops/s over the 2 s window: 20000 due, 500 never sent.
			w.Rate, w.Gen.Unsent, w.Gen.Behind = 10000, 500, 700
		}, func(t *testing.T, r results.Record) {
			if !r.ClientBound || !hasNote(r, "client-bound: 500 of the window's 20000 requests (2.5%) were never sent") {
				t.Errorf("client-bound %v, notes %q", r.ClientBound, r.Notes)
			}
		}},
		{"requests left unsent by a loop on time are the server's, said but not flagged", func(w *Window) {
			w.Rate, w.Gen.Unsent = 10000, 500
		}, func(t *testing.T, r results.Record) {
			if r.ClientBound || !hasNote(r, "500 of the window's 20000 requests (2.5%) were never sent") ||
				!hasNote(r, "achieved 5000 of 10000 ops/s (50.0%): the server saturated") {
				t.Errorf("client-bound %v, notes %q", r.ClientBound, r.Notes)
			}
		}},
		{"other tasks over the scans at the window's edges", func(w *Window) {
			// 2 s, one server core: another task ran 0.2 s on it; the
			// server's own thread is skipped.
			w.ScanA = &TaskScan{At: w.A.At + time.Millisecond, Tasks: map[int]TaskSample{7: {CPU: 1, RunNs: 1e9}, 8: {CPU: 1, RunNs: 5e9}}}
			w.ScanB = &TaskScan{At: w.B.At + time.Millisecond, Tasks: map[int]TaskSample{7: {CPU: 1, RunNs: 1.2e9}, 8: {CPU: 1, RunNs: 6e9}}}
			w.Skip = map[int]bool{8: true}
		}, func(t *testing.T, r results.Record) {
			eq(t, "noise_other_cpu", r.NoiseOtherCPU, 0.1)
			if !r.Noisy || hasNote(r, "off the window's edges") {
				t.Errorf("noisy %v, notes %q", r.Noisy, r.Notes)
			}
		}},
		{"a scan read late is said", func(w *Window) {
			w.ScanA = &TaskScan{At: w.A.At, Tasks: map[int]TaskSample{}}
			w.ScanB = &TaskScan{At: w.B.At + 50*time.Millisecond, Tasks: map[int]TaskSample{}}
		}, func(t *testing.T, r results.Record) {
			if !hasNote(r, "the task scans were read up to 50.0 ms off the window's edges") {
				t.Errorf("notes %q", r.Notes)
			}
		}},
		{"a failed scan is a note, not a zero", func(w *Window) {
			w.ScanA = &TaskScan{At: w.A.At, Tasks: map[int]TaskSample{}}
			w.ScanB = &TaskScan{Err: errors.New("task 9: parse schedstat")}
		}, func(t *testing.T, r results.Record) {
			if r.NoiseSource != "" || !hasNote(r, "other tasks on the server cores not scanned: task 9: parse schedstat") {
				t.Errorf("source %q, notes %q", r.NoiseSource, r.Notes)
			}
		}},
		{"device interrupts on the server cores, not the trial NIC's", func(w *Window) {
			w.A.IRQs = map[string]map[int]uint64{"36": {0: 100, 1: 1000}, "41": {1: 50}}
			w.B.IRQs = map[string]map[int]uint64{"36": {0: 200, 1: 1400}, "41": {1: 4050}, "99": {1: 7}}
			w.TrialIRQs = map[string]bool{"41": true}
		}, func(t *testing.T, r results.Record) {
			// 400 on the server's CPU 1 over 2 s; the NIC's 4000 and an
			// IRQ set up inside the window left out.
			eqp(t, "noise_device_irqs_per_s", r.NoiseDeviceIRQs, f(200))
		}},
		{"an IRQ whose count went back is left out, not wrapped", func(w *Window) {
			w.A.IRQs = map[string]map[int]uint64{"36": {1: 1000}, "37": {1: 5000}}
			w.B.IRQs = map[string]map[int]uint64{"36": {1: 1400}, "37": {1: 20}} // 37 freed and set up again
		}, func(t *testing.T, r results.Record) {
			eqp(t, "noise_device_irqs_per_s", r.NoiseDeviceIRQs, f(200))
		}},
		{"scans that missed most of the window measure no noise", func(w *Window) {
			// Scan A read 1.5 s after its edge: the scans cover a quarter
			// of the window, and the task's 0.2 s there says nothing of it.
			w.ScanA = &TaskScan{At: w.A.At + 1500*time.Millisecond, Tasks: map[int]TaskSample{7: {CPU: 1, RunNs: 1e9}}}
			w.ScanB = &TaskScan{At: w.B.At, Tasks: map[int]TaskSample{7: {CPU: 1, RunNs: 1.2e9}}}
		}, func(t *testing.T, r results.Record) {
			if r.NoiseOtherCPU != 0 || r.NoiseSource != "" || r.Noisy ||
				!hasNote(r, "other tasks on the server cores not measured: the task scans were read up to 1500.0 ms off the window's edges") {
				t.Errorf("noise %v from %q, noisy %v, notes %q", r.NoiseOtherCPU, r.NoiseSource, r.Noisy, r.Notes)
			}
		}},
		{"a generator on the server cores is not ticked noise", func(w *Window) {
			// The generator's 0.6 s on the shared core is in its ticks.
			w.ClientCPUs = []int{0, 1}
			w.A.CPU[1] = CPUTimes{Idle: 4e9, User: 10e9, System: 5e9}
			w.B.CPU[1] = CPUTimes{Idle: 4.5e9, User: 11.3e9, System: 5.5e9}
		}, func(t *testing.T, r results.Record) {
			if !r.ClientSharesServerCPUs || r.NoiseTicked != 0 || hasNote(r, "noisy: the server cores' user and system ticks") {
				t.Errorf("shares %v, noise_ticked %v, notes %q", r.ClientSharesServerCPUs, r.NoiseTicked, r.Notes)
			}
		}},
		{"unreadable interrupts are a note, not a zero", func(w *Window) { w.B.IRQErr = errors.New("parse interrupts: IRQ 36: bad") }, func(t *testing.T, r results.Record) {
			if r.NoiseDeviceIRQs != nil || !hasNote(r, "device interrupts on the server cores not counted: parse interrupts: IRQ 36: bad") {
				t.Errorf("irqs %v notes %q", r.NoiseDeviceIRQs, r.Notes)
			}
		}},
		{"the trial NIC's unknown interrupts are a note, not noise", func(w *Window) { w.TrialIRQsErr = errors.New("no msi_irqs") }, func(t *testing.T, r results.Record) {
			if r.NoiseDeviceIRQs != nil || !hasNote(r, "device interrupts on the server cores not counted: no msi_irqs") {
				t.Errorf("irqs %v notes %q", r.NoiseDeviceIRQs, r.Notes)
			}
		}},
		{"windows within 0.1% are one window", func(w *Window) { w.Gen.Window = 2001 * time.Millisecond }, func(t *testing.T, r results.Record) {
			if r.Noisy || hasNote(r, "differ by more than 0.1%") {
				t.Errorf("noisy %v, notes %q", r.Noisy, r.Notes)
			}
		}},
		{"an edge held up: the ops cover another span, noisy", func(w *Window) { w.Gen.Window = 2015 * time.Millisecond }, func(t *testing.T, r results.Record) {
			if !r.Noisy || !hasNote(r, "noisy: meter window 2.0000 s and generator window 2.0150 s differ by more than 0.1%") {
				t.Errorf("noisy %v, notes %q", r.Noisy, r.Notes)
			}
		}},
		{"an unreadable process CPU is a note, not a zero", func(w *Window) { w.B.ServerCPUErr = errors.New("gone") }, func(t *testing.T, r results.Record) {
			if r.CPUNs != 0 || !hasNote(r, "process CPU not read: gone") {
				t.Errorf("cpu %v notes %q", r.CPUNs, r.Notes)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			if tc.change != nil {
				tc.change(&w)
			}
			var r results.Record
			Fill(&r, w)
			tc.check(t, r)
		})
	}
}

func TestMeasured(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  results.Record
		want string // "" when the record measured
	}{
		{"answered", results.Record{Ops: 1000, ErrLost: 3, ErrReset: 1}, ""},
		{"one wrong byte", results.Record{Ops: 1000, ErrMismatch: 1}, "1 replies were not the bytes sent"},
		{"every byte flipped", results.Record{ErrMismatch: 57050}, "57050 replies were not the bytes sent"},
		{"every request lost", results.Record{ErrLost: 20, ErrTimeout: 4}, "every request was lost: none answered, 20 lost, 4 timed out"},
		{"nothing at all", results.Record{}, "0 ops in the measurement window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Measured(&tc.rec)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Measured = %v, want %q", err, tc.want)
			}
		})
	}
}

func eq(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func eqp[T uint64 | float64](t *testing.T, name string, got, want *T) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %v", name, *want)
		return
	}
	eq(t, name, float64(*got), float64(*want))
}

func hasNote(r results.Record, s string) bool {
	for _, n := range r.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
