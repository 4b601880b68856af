// Package dpdk is ringbench's kernel-bypass backend: a UDP reflector (echo,
// sink, source) on a DPDK port that never enters the kernel on its data path,
// the reference dpdk-testpmd run as a child process, and a DPDK load
// generator for the memif topology.
//
// Data flow of a server ("dpdk"):
//
//  1. New checks the Config and its Options, then initialises the EAL once
//     per process: an lcore on each server CPU, --no-pci unless a PCI address
//     is set, --no-huge when no hugepages are reserved, and one --vdev
//     (net_af_xdp or net_af_packet on Config.Iface, net_memif, or an override).
//  2. It sets up the port: a mempool, one RX and TX queue pair per lcore
//     (RSS over them where the port itself must spread flows), all on the
//     port's NUMA node (the lcore's for a virtual device), burst 32; an
//     af_xdp port's interface gets the busy-poll settings the options ask
//     for, put back at Close, and the XDP program its port attached is
//     recorded, so that the next run detaches it should this process be
//     killed before its port closes (SweepStaleXDP).
//  3. The reflector loop runs in C, one per queue pair: on the main lcore, a
//     locked, pinned Go thread in one cgo call, and on each worker lcore by
//     rte_eal_remote_launch; each loops until its stop flag is set. Each burst is received, every frame
//     is judged by the rules Reflector.Reflect states in Go (ARP reply, UDP
//     echo with swapped addresses and valid checksums, sink, or a counted
//     drop), and the replies go out in one tx burst.
//  4. Counters reads the loops' counters (one C struct each, summed) and the
//     port's statistics; Close stops every loop and waits for each, then
//     stops and closes the port. The
//     EAL lives until the process exits (ealInit says why it is never
//     cleaned up), which a server's process does right after Close.
//
// The reference ("dpdk-testpmd") is Debian's dpdk-testpmd in 5tswap mode as a
// child process; its Counters ask its interactive shell for port and
// forwarding statistics (busy cycles from --record-core-cycles).
//
// The memif generator (Attach, Generate) runs in a child process too, since
// the EAL lives once per process:
//  1. the child connects as memif client and waits for the parent;
//  2. per window the parent asks for ("window <warm-up> <duration>"), it
//     warms up, says "window-start" and waits while the parent runs its
//     hook, measures, says "window-end", waits again, and prints its report
//     (counts and an HDR histogram snapshot) as JSON; a trial's cost,
//     profile and counting windows run so, in one attachment;
//  3. it holds its port until the parent has stopped the server
//     (GenOptions.BeforeClose) and says "close": closing a memif port
//     unmaps the rings under a server that still polls them.
//
// Requests go to memifServerMAC, which the server end's vdev sets (dpdk and
// dpdk-testpmd alike: testpmd answers no ARP).
//
// The cgo binding lives in the files tagged dpdk (build with -tags dpdk, which
// make build turns on when pkg-config finds libdpdk). Without the tag the
// package still builds: the dpdk backend and Generate answer with a
// NotSupportedError saying how to enable them, and the pure-Go parts
// (Reflector, ReserveHugepages, option checks, testpmd) work and are tested
// everywhere.
package dpdk
