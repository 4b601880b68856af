package meters

import (
	"errors"
	"time"

	"ringbench/backends"
)

// Snapshot is every meter's value at one edge of the window. A meter that
// could not be read keeps its error, so the record says why a field is
// empty instead of publishing a zero.
type Snapshot struct {
	// At is CLOCK_MONOTONIC in ns at the middle of the cheap reads.
	At time.Duration
	// ReadTook is how long the cheap reads took: the uncertainty of At.
	ReadTook time.Duration

	CPU    map[int]CPUTimes // /proc/stat, per CPU
	CPUErr error
	// Idle is the nanosecond idle accounting of /proc/timer_list (root);
	// IdleErr says why it is absent, and busy falls back to /proc/stat.
	Idle    IdleClock
	IdleErr error

	// ServerCPU is the server's CPU time in ns: its cgroup's usage (every
	// task it ever ran, exited ones included) or, without a cgroup, the sum
	// of its threads' schedstat run time. RunDelay is the time it waited
	// for a CPU: the cgroup's cpu.pressure "some" total, else the threads'
	// schedstat delay; RunDelayErr says why it is absent.
	ServerCPU, RunDelay float64
	ServerCPUErr        error
	RunDelayErr         error
	Threads             int // server threads seen (schedstat source only)

	// IRQs are /proc/interrupts' device interrupts by IRQ and CPU, read
	// by the task scan of the snapshot's edge (Scanner), not in the
	// snapshot: the file takes ~80 µs to read, and the edge's reads are on
	// the generator's CPU.
	IRQs   map[string]map[int]uint64
	IRQErr error

	SNMP    SNMP // the server namespace's /proc/net/snmp
	SNMPErr error
	Links   map[string]Link // the server namespace's /proc/net/dev
	LinkErr error

	Syscalls uint64 // raw_syscalls:sys_enter of the server's threads
	// SyscallsByName are the same syscalls by name, read right after
	// (OtherSyscalls: those outside the name table); SyscallsByNameErr
	// says why they are absent.
	SyscallsByName    map[string]uint64
	SyscallsByNameErr error
	// SyscallsReadGap is how many syscalls the names counted while the
	// total was being read (SyscallCount.ReadGap).
	SyscallsReadGap uint64
	SyscallsErr     error
	// Traced: a syscall tracepoint of this process was attached when the
	// snapshot was read (Tracing). Sampled: a sampler of this process was
	// enabled at the window's edge (the harness sets it: meters does not
	// run samplers). A cost window must have neither.
	Traced, Sampled bool
	Cycles          uint64 // hardware cycles of the server CPUs, scaled
	CyclesErr       error

	Counters    backends.Counters // the backend's own, read after the rest
	CountersErr error
}

// ErrNotCounted marks a meter that was deliberately off in this window,
// such as the syscall tracepoint during a cost trial.
var ErrNotCounted = errors.New("not counted in this window")
