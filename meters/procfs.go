package meters

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// UserHZ is the unit of /proc/stat times. Linux fixes USER_HZ at 100 on every
// architecture ringbench runs on.
const UserHZ = 100

// CPUTimes is one /proc/stat cpuN line in nanoseconds. On a tick-accounted
// kernel (no CONFIG_VIRT_CPU_ACCOUNTING_GEN, no IRQ_TIME_ACCOUNTING) User,
// System, IRQ and SoftIRQ are 250 Hz samples that miss short bursts; Idle
// and IOWait are accounted when the CPU enters and leaves idle, so they are
// exact under NO_HZ_IDLE. Busy time is therefore derived as wall − idle −
// iowait − steal, never as a sum of the sampled columns.
type CPUTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal float64
}

// ParseProcStat parses /proc/stat's per-CPU lines (the aggregate "cpu" line
// is skipped). A malformed number is an error, not a zero.
func ParseProcStat(b []byte) (map[int]CPUTimes, error) {
	out := map[int]CPUTimes{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			return nil, fmt.Errorf("parse /proc/stat: bad cpu name %q", f[0])
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice];
		// guest time is already inside user and nice.
		if len(f) < 9 {
			return nil, fmt.Errorf("parse /proc/stat %s: %d columns, want at least 8", f[0], len(f)-1)
		}
		var v [8]float64
		for i := range v {
			x, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse /proc/stat %s column %d: %w", f[0], i+1, err)
			}
			v[i] = float64(x) * 1e9 / UserHZ
		}
		out[n] = CPUTimes{User: v[0], Nice: v[1], System: v[2], Idle: v[3], IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("parse /proc/stat: no cpuN lines")
	}
	return out, nil
}

// SNMP is the part of /proc/net/snmp that counts wire units: TCP segments
// and UDP datagrams, as the stack handed them to or took them from the
// device (one segment each, whatever GSO/GRO did below).
type SNMP struct {
	TCPInSegs, TCPOutSegs, TCPRetransSegs uint64
	UDPInDatagrams, UDPOutDatagrams       uint64
	UDPInErrors, UDPRcvbufErrors          uint64
}

// Packets is TCP segments plus UDP datagrams, in and out.
func (s SNMP) Packets() uint64 {
	return s.TCPInSegs + s.TCPOutSegs + s.UDPInDatagrams + s.UDPOutDatagrams
}

// ParseSNMP parses /proc/net/snmp: pairs of lines, a header of names and a
// line of values, each prefixed "Proto:".
func ParseSNMP(b []byte) (SNMP, error) {
	var s SNMP
	want := map[string]*uint64{
		"Tcp:InSegs": &s.TCPInSegs, "Tcp:OutSegs": &s.TCPOutSegs, "Tcp:RetransSegs": &s.TCPRetransSegs,
		"Udp:InDatagrams": &s.UDPInDatagrams, "Udp:OutDatagrams": &s.UDPOutDatagrams,
		"Udp:InErrors": &s.UDPInErrors, "Udp:RcvbufErrors": &s.UDPRcvbufErrors,
	}
	found := 0
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || len(vals) == 0 || names[0] != vals[0] {
			return SNMP{}, fmt.Errorf("parse /proc/net/snmp: line %d and %d do not pair", i+1, i+2)
		}
		if len(names) != len(vals) {
			return SNMP{}, fmt.Errorf("parse /proc/net/snmp %s %d names, %d values", names[0], len(names), len(vals))
		}
		for j := 1; j < len(names); j++ {
			p, ok := want[names[0]+names[j]]
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(vals[j], 10, 64)
			if err != nil {
				return SNMP{}, fmt.Errorf("parse /proc/net/snmp %s%s: %w", names[0], names[j], err)
			}
			*p = v
			found++
		}
	}
	if found != len(want) {
		return SNMP{}, fmt.Errorf("parse /proc/net/snmp: found %d of the %d TCP and UDP counters", found, len(want))
	}
	return s, nil
}

// Link is one interface's packet counters: skbs, so a GSO or GRO aggregate
// of many segments counts once.
type Link struct {
	RxPackets, TxPackets uint64
}

// ParseNetDev parses /proc/net/dev into per-interface packet counters.
func ParseNetDev(b []byte) (map[string]Link, error) {
	out := map[string]Link{}
	for i, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if i < 2 || !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("parse /proc/net/dev %s: %d columns, want 16", strings.TrimSpace(name), len(f))
		}
		rx, err1 := strconv.ParseUint(f[1], 10, 64)
		tx, err2 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("parse /proc/net/dev %s: bad packet count", strings.TrimSpace(name))
		}
		out[strings.TrimSpace(name)] = Link{RxPackets: rx, TxPackets: tx}
	}
	return out, nil
}

// ParseCgroupCPU returns usage_usec of a cgroup v2 cpu.stat in ns. The
// kernel accumulates it from every task's exact runtime (tasks that exited
// included), unlike the tick-sampled user/system split beside it.
func ParseCgroupCPU(b []byte) (float64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "usage_usec" {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse cpu.stat usage_usec: %w", err)
			}
			return float64(v) * 1e3, nil
		}
	}
	return 0, fmt.Errorf("parse cpu.stat: no usage_usec")
}

// ParsePressure returns the "some" total of a PSI file (cpu.pressure) in
// ns: the wall time during which at least one task of the group was
// runnable and waiting for a CPU.
func ParsePressure(b []byte) (float64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				x, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("parse pressure total: %w", err)
				}
				return float64(x) * 1e3, nil
			}
		}
	}
	return 0, fmt.Errorf("parse pressure: no some total")
}

// ParseSchedstat parses /proc/PID/task/TID/schedstat: run time and run
// delay in ns.
func ParseSchedstat(b []byte) (run, delay float64, err error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("parse schedstat: %d fields", len(f))
	}
	r, err1 := strconv.ParseUint(f[0], 10, 64)
	d, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("parse schedstat %q: bad number", strings.TrimSpace(string(b)))
	}
	return float64(r), float64(d), nil
}

// TaskStat is what the noise scan needs from /proc/PID/task/TID/stat.
type TaskStat struct {
	CPU       int    // the CPU it last ran on
	StartTick uint64 // start time after boot, in clock ticks (USER_HZ)
	Comm      string
}

// ParseTaskStat parses a /proc/.../stat line. The comm field may hold spaces
// and parentheses: the fields that follow start after the last ')'.
func ParseTaskStat(b []byte) (TaskStat, error) {
	open := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if open < 0 || i < open {
		return TaskStat{}, fmt.Errorf("parse stat: no comm")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22, processor field 39.
	if len(f) < 37 {
		return TaskStat{}, fmt.Errorf("parse stat: %d fields after comm", len(f))
	}
	st, err1 := strconv.ParseUint(f[19], 10, 64)
	cpu, err2 := strconv.Atoi(f[36])
	if err1 != nil || err2 != nil {
		return TaskStat{}, fmt.Errorf("parse stat: bad starttime or processor")
	}
	return TaskStat{CPU: cpu, StartTick: st, Comm: string(b[open+1 : i])}, nil
}

// ParseInterrupts returns /proc/interrupts' device interrupts (the lines
// numbered by IRQ) as counts by IRQ number and CPU. The other lines (local
// timer, IPIs: rescheduling, function calls, TLB shootdowns) are the
// CPU's own timer and the wake-ups between the trial's threads, and are
// left out.
func ParseInterrupts(b []byte) (map[string]map[int]uint64, error) {
	lines := strings.Split(string(b), "\n")
	var cpus []int // the CPU of each column: offline CPUs have none
	for _, h := range strings.Fields(lines[0]) {
		c, err := strconv.Atoi(strings.TrimPrefix(h, "CPU"))
		if err != nil || !strings.HasPrefix(h, "CPU") {
			return nil, fmt.Errorf("parse interrupts: header field %q", h)
		}
		cpus = append(cpus, c)
	}
	if len(cpus) == 0 {
		return nil, errors.New("parse interrupts: no CPU header")
	}
	out := map[string]map[int]uint64{}
	for _, line := range lines[1:] {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.Trim(name, "0123456789") != "" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < len(cpus) {
			return nil, fmt.Errorf("parse interrupts: IRQ %s has %d counts for %d CPUs", name, len(f), len(cpus))
		}
		counts := make(map[int]uint64, len(cpus))
		for i, c := range cpus {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse interrupts: IRQ %s: %w", name, err)
			}
			counts[c] = v
		}
		out[name] = counts
	}
	return out, nil
}
