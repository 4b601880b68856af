package sampler

import "strings"

// Category is where a sample's CPU time went, named for the tradeoff the
// report teaches.
type Category string

// The categories, in the order reports list them.
const (
	// Syscall is the crossing itself: the kernel's entry and exit code and
	// the syscall wrappers, plus the user-side stubs that hold the syscall
	// instruction (an interrupt held off on the exit path is taken at the
	// first user instruction after it), and the body of a syscall that no
	// subsystem below claims (getppid's, epoll_wait's bookkeeping).
	Syscall Category = "syscall"
	// Sched is wake-ups, context switches, futexes, timers, IPIs and
	// entering and leaving idle (not the halted time itself: see Idle).
	Sched Category = "sched"
	// Net is the socket layer, TCP, UDP, IP, routing and netfilter.
	Net Category = "net"
	// Dev is the device layer: veth, XDP and AF_XDP, netif receive, NAPI,
	// GRO, RPS, qdiscs and drivers.
	Dev Category = "dev"
	// IOUring is the io_uring core and its task work.
	IOUring Category = "io_uring"
	// Runtime is the Go runtime: scheduler, allocator, GC, cgo crossings.
	Runtime Category = "runtime"
	// App is the server's own user code (and its libraries).
	App Category = "app"
	// Poll is busy polling: DPDK poll-mode drivers' rx/tx bursts, the
	// SQPOLL thread's spin, kernel NAPI busy polling.
	Poll Category = "poll"
	// Other is what no rule claims, interrupt and softirq plumbing whose
	// handler is not known, and other processes' user code.
	Other Category = "other"
	// Idle is a sample of the idle task halted (its leaf is the halt
	// itself). It is counted, and left out of the shares: a share is of
	// the time the core worked.
	Idle Category = "idle"
)

// Categories lists the categories that shares are given for, in report
// order (Idle is not one).
var Categories = []Category{Syscall, Sched, Net, Dev, IOUring, Runtime, App, Poll, Other}

// Frame is one symbolized call chain entry.
type Frame struct {
	Func   string
	Kernel bool
	// File is the user frame's mapped file ("" for kernel frames).
	File string
}

// Chain is a sample's symbolized call chain, leaf first (kernel frames,
// then user frames), and who it belongs to.
type Chain struct {
	Frames []Frame
	// IdleTask is true for the idle task (pid 0).
	IdleTask bool
	// Server is true when the sample's process is the server's: only then
	// is user code app or runtime; another process's user code (noise, the
	// generator) is Other, though the kernel work it did on the server's
	// core is classified like the server's.
	Server bool
	// AfterSyscall is true for a sample taken in user mode on the
	// instruction right after a syscall instruction: the sampling
	// interrupt came due while the kernel ran the syscall with interrupts
	// off (its exit path) and was taken at the first user instruction. On
	// a hrtimer-sampled machine that is where most of a syscall's time
	// lands; it is the syscall's.
	AfterSyscall bool
}

// space says which frames a rule looks at.
type space int

const (
	kernelSpace space = iota
	userSpace         // the server's user frames
)

// rule claims the frames whose function matches for its category.
type rule struct {
	category Category
	space    space
	exact    []string
	prefix   []string
	contains []string
	// except are prefixes that look like this rule's but are not its.
	except []string
	// files, when set, limits a user rule to frames in files whose base
	// name starts with one of these ("libc.so").
	files []string
	why   string
}

func (r *rule) matches(f Frame) bool {
	if (r.space == kernelSpace) != f.Kernel {
		return false
	}
	f.Func = matchName(f)
	if len(r.files) > 0 && !hasAnyPrefix(baseName(f.File), r.files) {
		return false
	}
	if hasAnyPrefix(f.Func, r.except) {
		return false
	}
	for _, e := range r.exact {
		if f.Func == e {
			return true
		}
	}
	if hasAnyPrefix(f.Func, r.prefix) {
		return true
	}
	for _, c := range r.contains {
		if strings.Contains(f.Func, c) {
			return true
		}
	}
	return false
}

// matchName drops what compilers add to a name: the kernel's .part.0,
// .isra.0, .constprop.0 and .cold clones, Go's .abi0 assembly wrappers.
func matchName(f Frame) string {
	if f.Kernel {
		if i := strings.IndexByte(f.Func, '.'); i > 0 {
			return f.Func[:i]
		}
		return f.Func
	}
	return strings.TrimSuffix(f.Func, ".abi0")
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// idleLeaves are the functions a halted core's sample lands in.
var idleLeaves = []string{
	"pv_native_safe_halt", "native_safe_halt", "default_idle", "arch_cpu_idle",
	"acpi_safe_halt", "acpi_idle_do_entry", "mwait_idle_with_hints", "intel_idle",
	"poll_idle", "cpu_idle_poll", "amd_e400_idle", "haltpoll_enter_idle",
}

// rules is the one classification table. Classify walks a chain from the
// leaf and charges the sample to the first frame any rule claims: the
// innermost known subsystem wins, so tcp_sendmsg under __x64_sys_sendto is
// net, and syscall gets only what runs in the entry code or in a syscall
// body no other rule knows. For one frame, the earlier rule wins. Frames no
// rule claims (memcpy, spinlocks, page faults, epoll's own functions) are
// transparent: the sample goes to their caller's category.
var rules = []rule{
	{category: Poll, space: kernelSpace,
		exact:  []string{"io_sq_thread", "__io_sq_thread", "io_sqd_handle_event", "io_napi_sqpoll_busy_poll"},
		prefix: []string{"napi_busy_loop", "__napi_busy_loop", "sk_busy_loop", "busy_poll_stop"},
		why:    "the SQPOLL thread's loop with nothing to submit, and NAPI busy polling: a core spent waiting by spinning"},
	{category: IOUring, space: kernelSpace,
		prefix: []string{"io_", "__io_", "tctx_task_work", "io_uring"},
		except: []string{"io_schedule", "io_apic", "io_serial", "io_watchdog", "io_delay", "io_tlb", "io_remap", "io_mapping", "io_page_fault"},
		why:    "io_uring's functions are io_ and __io_; io_schedule is the scheduler's, the rest are not io_uring"},
	{category: Syscall, space: kernelSpace,
		exact: []string{"do_syscall_64", "x64_sys_call", "syscall_trace_enter", "clear_bhb_loop", "do_int80_syscall_32"},
		prefix: []string{"entry_SYSCALL", "entry_SYSRET", "syscall_exit_to_user_mode", "syscall_enter_from_user_mode",
			"exit_to_user_mode", "arch_exit_to_user_mode", "__x64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_", "ksys_"},
		why: "entry and exit code and the per-syscall wrappers"},
	{category: Sched, space: kernelSpace,
		exact: []string{"schedule", "__schedule", "context_switch", "do_idle", "cpu_startup_entry", "start_secondary",
			"default_enter_idle", "do_nanosleep", "native_sched_clock", "sched_clock", "resched_curr", "update_curr",
			"common_startup_64"},
		prefix: []string{
			// scheduling and wake-ups
			"schedule_", "io_schedule", "preempt_schedule", "__cond_resched", "try_to_wake_up", "wake_up_", "__wake_up", "ttwu_",
			"enqueue_task", "dequeue_task", "enqueue_entity", "dequeue_entity", "pick_next_", "pick_task", "put_prev_",
			"set_next_", "finish_task_switch", "__switch_to", "switch_mm", "update_rq_clock", "update_load_avg",
			"sched_", "__sched_", "select_task_rq", "check_preempt", "wakeup_preempt", "psi_", "futex_", "__futex",
			// timers
			"hrtimer", "__hrtimer", "__run_hrtimer", "tick_", "__tick", "timerqueue_", "run_timer", "__run_timers",
			"call_timer_fn", "lapic_", "clockevents_", "update_process_times", "account_process_tick",
			"asm_sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "__sysvec_apic_timer_interrupt",
			// IPIs
			"asm_sysvec_call_function", "sysvec_call_function", "__sysvec_call_function", "asm_sysvec_reschedule_ipi",
			"sysvec_reschedule_ipi", "generic_smp_call_function", "smp_call_function", "__flush_smp_call_function",
			"flush_smp_call_function", "send_call_function", "native_send_call_func", "x2apic_send_IPI",
			"__x2apic_send_IPI", "default_send_IPI", "kvm_send_ipi", "native_smp_send_reschedule",
			"smp_send_reschedule", "__smp_call_single_queue", "native_apic_",
			// entering and leaving idle
			"cpuidle_", "arch_cpu_idle", "schedule_idle", "cpu_idle_poll",
		},
		// An hrtimer sample pending while interrupts are masked is taken
		// where they are unmasked; on a paravirtualised VM that, and the
		// timer and IPI programming, are MSR writes that trap to the host.
		contains: append([]string{"irq_enable", "write_msr"}, idleLeaves...),
		why:      "the scheduler, timers, IPIs and the idle loop, and where a masked timer interrupt lands"},
	{category: Dev, space: kernelSpace,
		exact: []string{"net_rx_action", "process_backlog", "enqueue_to_backlog", "get_rps_cpu", "eth_type_trans",
			"loopback_xmit", "sch_direct_xmit", "__qdisc_run", "common_interrupt", "asm_common_interrupt"},
		prefix: []string{"veth_", "__veth", "xdp_", "__xdp", "bpf_prog_", "xsk_", "__xsk", "netif_", "__netif",
			"napi_", "__napi", "dev_", "__dev_", "netdev_", "gro_", "__gro", "rps_", "virtnet_", "virtqueue_",
			"vring_", "vp_", "qdisc_", "pfifo_", "validate_xmit_", "e1000", "igb_", "ixgbe_", "i40e_", "ice_",
			"mlx5", "mlx4", "ena_", "gve_", "tun_", "br_", "bond_", "macvlan_", "ipvlan_"},
		why: "the device side: veth, XDP, netif receive, NAPI, GRO, RPS, qdiscs, drivers and their interrupts"},
	{category: Net, space: kernelSpace,
		exact: []string{"lock_sock_nested", "release_sock", "__release_sock", "__lock_sock", "datagram_poll",
			"do_accept", "move_addr_to_kernel", "move_addr_to_user", "raw_v4_input", "raw_local_deliver"},
		prefix: []string{"tcp", "__tcp", "udp", "__udp", "ip_", "__ip_", "ipv4_", "ipv6_", "ip6_", "__ip6", "inet",
			"__inet", "sock_", "__sock", "sk_", "__sk_", "skb_", "__skb", "kfree_skb", "__kfree_skb", "consume_skb",
			"alloc_skb", "__alloc_skb", "build_skb", "nf_", "__nf_", "nft_", "ipt_", "icmp", "fib", "__fib",
			"dst_", "neigh_", "__neigh", "arp_", "__sys_", "___sys_", "____sys_", "sockfd_lookup", "security_sock",
			"selinux_sock", "apparmor_sock", "packet_", "tpacket_", "netlink_", "__netlink", "ping_", "secure_tcp",
			"csum_", "__csum", "ip_route", "rt_dst", "__sys_recvmmsg", "do_recvmmsg", "__sys_sendmmsg"},
		why: "the socket layer and the protocols under it"},
	{category: Other, space: kernelSpace,
		exact: []string{"handle_softirqs", "__do_softirq", "do_softirq", "irq_exit_rcu", "__irq_exit_rcu",
			"irq_enter_rcu", "run_ksoftirqd"},
		prefix: []string{"asm_sysvec_", "sysvec_", "__sysvec_", "rcu_"},
		why:    "interrupt and softirq plumbing: work under it whose handler no rule knows is not the interrupted code's"},
	{category: Syscall, space: userSpace,
		exact: []string{"internal/runtime/syscall/linux.Syscall6", "internal/runtime/syscall.Syscall6",
			"syscall.RawSyscall", "syscall.RawSyscall6", "syscall.Syscall", "syscall.Syscall6",
			"syscall.rawSyscallNoError", "syscall.rawVforkSyscall"},
		why: "Go's stubs around the syscall instruction"},
	{category: Syscall, space: userSpace, files: []string{"libc.so", "libc-", "liburing.so"},
		prefix: []string{"__libc_", "__GI___libc_", "__syscall", "__sys_io_uring"},
		exact: []string{"syscall", "read", "write", "recv", "send", "recvfrom", "sendto", "recvmsg", "sendmsg",
			"recvmmsg", "sendmmsg", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "accept4", "close",
			"io_uring_enter", "io_uring_submit", "io_uring_submit_and_wait", "io_uring_wait_cqe_timeout"},
		why: "libc's and liburing's syscall wrappers"},
	{category: Poll, space: userSpace,
		contains: []string{"_recv_pkts", "_xmit_pkts", "rx_burst", "tx_burst"},
		prefix:   []string{"rte_eth_rx", "rte_eth_tx", "eth_af_xdp_rx", "eth_af_xdp_tx", "af_xdp_rx", "af_xdp_tx", "eth_af_packet_rx", "eth_af_packet_tx", "eth_memif_rx", "eth_memif_tx", "memif_rx", "memif_tx"},
		exact:    []string{"rb_run"},
		why:      "DPDK poll-mode drivers' receive and transmit bursts, and ringbench's reflector loop that calls them"},
	{category: Poll, space: userSpace,
		files:  []string{"librte_net_"},
		prefix: []string{""},
		why:    "anywhere in a DPDK poll-mode driver's library (Debian strips their symbols: the file is all there is)"},
	{category: Runtime, space: userSpace,
		prefix: []string{"runtime.", "internal/runtime/", "runtime/internal/", "runtime/cgo", "_cgo_", "crosscall2", "gcWriteBarrier", "x_cgo_"},
		except: []string{"runtime.memmove", "runtime.memclrNoHeapPointers", "runtime.memequal", "runtime.duffcopy", "runtime.duffzero", "runtime.cmpstring"},
		why:    "the Go runtime; its memory primitives are transparent, charged to their callers"},
	{category: App, space: userSpace,
		prefix: []string{""}, // every other frame of the server's own code
		why:    "the server's code: what a frame of the server process is when no rule above claims it"},
}

// handoff is a call path whose innermost frames are one subsystem's
// machinery (an IPI is sched's) but whose purpose is another's: a sample
// whose frames, from the leaf, are all via's until caller is caller's
// category. Only an unbroken path counts: an interrupt taken inside the
// machinery (a timer's MSR write under net_rps_send_ipi) has frames of its
// own between and stays sched.
type handoff struct {
	category Category
	caller   string
	via      rule
	why      string
}

// ipiSend is the machinery that sends one IPI (a single-CPU function call):
// queueing the call, the APIC write, and on a paravirtualised guest the
// MSR write that traps to the host.
var ipiSend = rule{space: kernelSpace,
	exact: []string{"smp_call_function_single_async", "generic_exec_single", "__smp_call_single_queue",
		"call_function_single_prep_ipi", "send_call_function_single_ipi", "arch_send_call_function_single_ipi",
		"native_send_call_func_single_ipi", "x2apic_send_IPI", "__x2apic_send_IPI_dest", "__x2apic_send_IPI_mask",
		"default_send_IPI_single", "default_send_IPI_single_phys", "kvm_send_ipi_mask", "__send_ipi_mask"},
	contains: []string{"write_msr"},
}

var handoffs = []handoff{
	{category: Dev, caller: "net_rps_send_ipi", via: ipiSend,
		why: "RPS/RFS hands received packets to another CPU's backlog and kicks that CPU with an IPI: " +
			"the device-level delivery of a packet to its consumer's CPU, as a NIC's doorbell is, " +
			"not a wake-up of this CPU's tasks"},
}

// handoffOf says whether the chain's innermost frames are a handoff's path.
func handoffOf(frames []Frame) (Category, bool) {
	for _, h := range handoffs {
		for _, f := range frames {
			if !f.Kernel {
				break
			}
			if matchName(f) == h.caller {
				return h.category, true
			}
			if !h.via.matches(f) {
				break
			}
		}
	}
	return "", false
}

// softirqStart is the softirq loop's first act, unmasking interrupts: a
// sample whose leaf it is (no handler above it) came due while they were
// masked before it, in the interrupt that raised the softirq (entry,
// handler, irq exit) or in the bh-enable that ran it. So the leaf and the
// plumbing under it are skipped and what ran masked claims the sample: an
// IPI's or a timer's vector is sched, a device interrupt dev, a transmit's
// bh-enable dev. On the development VM these were most of every path's
// `other` (measurements/unsampled.md).
var softirqStart = rule{space: kernelSpace,
	exact: []string{"handle_softirqs", "__do_softirq", "do_softirq", "do_softirq_own_stack", "__irq_exit_rcu",
		"irq_exit_rcu", "irq_exit", "__local_bh_enable_ip", "local_bh_enable"},
}

// maskedFrames drops a chain's leading softirqStart frames when its leaf is
// the softirq loop itself (see softirqStart).
func maskedFrames(frames []Frame) []Frame {
	if len(frames) == 0 || !frames[0].Kernel || !hasExact(matchName(frames[0]), []string{"handle_softirqs", "__do_softirq"}) {
		return frames
	}
	for len(frames) > 1 && softirqStart.matches(frames[0]) {
		frames = frames[1:]
	}
	return frames
}

// Classify says where a sample's time went (see handoffs, softirqStart,
// then rules).
func Classify(c Chain) Category {
	if c.IdleTask && len(c.Frames) > 0 && c.Frames[0].Kernel && hasExact(matchName(c.Frames[0]), idleLeaves) {
		return Idle
	}
	if c.AfterSyscall && c.Server && len(c.Frames) > 0 && !c.Frames[0].Kernel {
		return Syscall
	}
	if cat, ok := handoffOf(c.Frames); ok {
		return cat
	}
	for _, f := range maskedFrames(c.Frames) {
		if !f.Kernel && !c.Server {
			return Other // another process's user code
		}
		if f.Func == "[vdso]" {
			continue // a clock read: the caller's
		}
		for i := range rules {
			if rules[i].matches(f) {
				return rules[i].category
			}
		}
	}
	return Other
}

// irqEntries are the frames an interrupt or a softirq run begins with.
var irqEntries = []string{"asm_sysvec_", "asm_common_interrupt", "handle_softirqs", "__do_softirq", "run_ksoftirqd"}

// InInterrupt says whether the sample was taken in interrupt or softirq
// work, which runs on whatever task the core happened to be running: on a
// shared machine, other processes' network traffic lands on the server's
// core this way.
func InInterrupt(c Chain) bool {
	for _, f := range c.Frames {
		if f.Kernel && hasAnyPrefix(f.Func, irqEntries) {
			return true
		}
	}
	return false
}

func hasExact(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}
