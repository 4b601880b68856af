// Package sampler profiles the server's cores over a trial's window: it
// samples them with perf_event_open, symbolizes the samples, writes them as
// one pprof profile, and classifies each by its call chain into the
// categories that teach the tradeoff between the three I/O paths (syscall,
// sched, net, dev, io_uring, runtime, app, poll, other).
//
// Data flow:
//
//  1. Open opens, disabled, one sampling event per server CPU (pid -1: the
//     whole core, so softirq work done there and the idle task are seen):
//     cpu-clock, an hrtimer, where no PMU exists (VMs), else hardware
//     cycles; sample type IP|TID|TIME|CPU|PERIOD|CALLCHAIN with kernel and
//     user call chains. It reads /proc/kallsyms and starts a goroutine that
//     copies the rings out every 50 ms, so a ring never fills (what the
//     kernel drops anyway comes back as PERF_RECORD_LOST, counted).
//  2. Start and Stop are the window's edges: one enable or disable ioctl
//     per CPU. After its disables, Stop drains and decodes the rings and,
//     while the server still lives, reads each sampled process's comm,
//     /proc/PID/maps and the ELF symbols of its mapped files (through
//     /proc/PID/map_files, so a binary deleted since still resolves).
//  3. Profile symbolizes every sample (kernel addresses from kallsyms,
//     user addresses by mapping, file offset and the file's .symtab or
//     .dynsym), classifies it with the rules table (classify.go: the
//     innermost frame some rule claims wins), and builds the pprof profile
//     (every sample labelled with its category, comm, pid, tid and cpu,
//     the process's comm as its root frame) and the Breakdown.
//  4. The caller writes the profile (Result.WriteFile) beside the trial's
//     record, measures the samples' coverage of the cores' busy time
//     (Breakdown.Coverage) and puts the split of the busy time in it
//     (Breakdown.Split: each category's share of the samples × the
//     coverage, and Unsampled the rest).
//
// Idle is explicit: a sample of the idle task whose leaf is the halt is
// Idle, counted and left out of the shares, which are of the time the
// cores worked. The idle task's other samples (entering and leaving idle,
// and the softirq receive work an idle core does for the server) are
// classified like any other, where the kernel writes them: a guest kernel
// that writes no sample while the idle task runs (the development VM's)
// leaves that work unseen, which is why coverage is measured and the
// unseen part kept apart. DutyCycle is the ground truth for it: a thread
// of known CPU time, woken by its own timer or from another CPU.
//
// Overhead: a sample costs its CPU an interrupt and a stack walk, which no
// sample can see. MeasureOverhead measures it on a core by paired windows of
// a fixed work loop with and without sampling (overhead.go); the trial-level
// figure is a paired trial (see Overhead).
//
// unsafe and raw syscalls live in internal/perf alone.
package sampler
