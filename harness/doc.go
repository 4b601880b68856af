// Package harness turns a profile into measured trials.
//
// Data flow:
//
//  1. A Profile (built-in YAML under profiles/, or a user's file) expands
//     into Trials: the cartesian product of each experiment's lists, over its
//     backends, repeated.
//  2. For each Trial, the Runner makes (once, then reuses) the Topology:
//     loopback, veth (two network namespaces and a veth pair, RPS steering
//     each side's receive work to its own CPUs), memif (DPDK only) or hosts
//     (the generator on another host: ringbench finds or copies its own
//     build there and runs `ringbench remotegen` in an ssh session, whose
//     JSON events fire the window's hooks here; see remotegen.go).
//  3. It starts the server as its own process: `ringbench serve` (Serve, on
//     the other side of a line protocol over stdin/stdout) or an external
//     command line (sh -c, told a port bound and released in the server
//     namespace, ready once its own processes hold the listening socket:
//     serverport.go), under taskset on the server CPUs, in the server namespace,
//     and, where cgroup2 and root allow, in a cgroup2 group of its own
//     (server.Cgroup) from its first instruction; stopping the server kills
//     that group whole, and SweepStale clears what killed runs left.
//  4. It opens the meters (hardware cycles per server CPU where a PMU
//     exists; in the counting window after the cost window,
//     perf_event_open on raw_syscalls:sys_enter per server thread and a
//     BPF program counting the server's syscalls by id), and
//     runs the workload's generator, which calls back at the edges of its
//     measurement window; the meters are read there (/proc/stat,
//     /proc/schedstat, the server's task schedstat, interface counters, the
//     server's own counters).
//  5. The two snapshots become a results.Record: throughput, latency,
//     server CPU and cycles per op and per packet, syscalls per op (by
//     name too, set against the backend's DataPathSyscalls), errors,
//     and the client-bound and noise flags. A noisy trial is re-run; the
//     record is appended to the store at once.
//  6. NDR searches one configuration for its maximum sustainable rate:
//     Search, a pure function over a Measure (coarse steps, bisection, a
//     confirmation), each step a trial as in 2–5, judged by Criteria.
//  7. Lesson runs the middle-ground experiments: a null-syscall
//     calibration, and whether nftables and ss still see each backend's
//     traffic on the veth topology.
//
// The harness imports backends (the registry), workloads (the generator) and
// results (the records); nothing imports the harness but the command.
package harness
