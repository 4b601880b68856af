package sampler

import (
	"math"
	"testing"
)

// k and u build kernel and user frames for synthetic call chains.
func k(names ...string) []Frame {
	fs := make([]Frame, len(names))
	for i, n := range names {
		fs[i] = Frame{Func: n, Kernel: true}
	}
	return fs
}

func u(names ...string) []Frame {
	fs := make([]Frame, len(names))
	for i, n := range names {
		fs[i] = Frame{Func: n, File: "/usr/bin/server"}
	}
	return fs
}

func chain(parts ...[]Frame) []Frame {
	var fs []Frame
	for _, p := range parts {
		fs = append(fs, p...)
	}
	return fs
}

var goServer = u("ringbench/epoll.(*loop).run", "runtime.goexit")

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frames   []Frame
		idleTask bool
		notOurs  bool // another process's sample
		want     Category
	}{
		// syscall: the crossing and bodies nothing else claims
		{"null syscall body", chain(k("__task_pid_nr_ns", "__x64_sys_getppid", "x64_sys_call", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"), u("syscall.RawSyscall6.abi0"), goServer), false, false, Syscall},
		{"entry code", chain(k("entry_SYSCALL_64"), goServer), false, false, Syscall},
		{"exit path", chain(k("syscall_exit_to_user_mode", "do_syscall_64"), goServer), false, false, Syscall},
		{"go stub after sysret", chain(u("internal/runtime/syscall/linux.Syscall6", "syscall.RawSyscall6.abi0"), goServer), false, false, Syscall},
		{"libc wrapper", []Frame{{Func: "__libc_recvfrom", File: "/usr/lib/x86_64-linux-gnu/libc.so.6"}, {Func: "main", File: "/usr/bin/c-epoll"}}, false, false, Syscall},
		{"epoll_wait bookkeeping", chain(k("ep_send_events", "ep_poll", "do_epoll_wait", "__x64_sys_epoll_wait", "do_syscall_64"), goServer), false, false, Syscall},
		// net: the innermost known subsystem wins over the syscall under it
		{"tcp under sendto", chain(k("tcp_sendmsg_locked", "tcp_sendmsg", "__sys_sendto", "__x64_sys_sendto", "do_syscall_64"), goServer), false, false, Net},
		{"memcpy under udp recv", chain(k("_copy_to_iter", "skb_copy_datagram_iter", "udp_recvmsg", "__sys_recvfrom", "__x64_sys_recvfrom"), goServer), false, false, Net},
		{"netfilter", chain(k("nft_do_chain", "nft_do_chain_ipv4", "nf_hook_slow", "ip_local_deliver"), goServer), false, false, Net},
		{"cloned kernel names", chain(k("tcp_v4_rcv.part.0", "do_syscall_64")), false, false, Net},
		// dev
		{"veth xmit", chain(k("veth_xmit", "dev_hard_start_xmit", "__dev_queue_xmit", "ip_finish_output2", "tcp_sendmsg"), goServer), false, false, Dev},
		{"netif receive in softirq", chain(k("__netif_receive_skb_core", "process_backlog", "__napi_poll", "net_rx_action", "handle_softirqs"), goServer), false, false, Dev},
		{"xdp program", chain(k("bpf_prog_6deef7357e7b4530_xdp_sock_prog", "veth_xdp_rcv", "veth_poll")), false, false, Dev},
		// sched
		{"wake-up from a socket", chain(k("try_to_wake_up", "__wake_up_common", "sock_def_readable", "udp_queue_rcv_skb")), false, false, Sched},
		{"context switch", chain(k("finish_task_switch", "__schedule", "schedule", "do_epoll_wait", "__x64_sys_epoll_wait")), false, false, Sched},
		{"timer interrupt on user code", chain(k("hrtimer_interrupt", "__sysvec_apic_timer_interrupt", "asm_sysvec_apic_timer_interrupt"), goServer), false, false, Sched},
		{"paravirt msr write", chain(k("native_write_msr", "x2apic_send_IPI", "native_smp_send_reschedule", "resched_curr")), false, false, Sched},
		{"wake-up ipi", chain(k("native_write_msr", "x2apic_send_IPI", "__smp_call_single_queue", "ttwu_queue_wakelist", "try_to_wake_up")), false, false, Sched},
		// dev: an IPI that hands received packets to another CPU's backlog
		{"rps ipi", chain(k("native_write_msr", "x2apic_send_IPI", "generic_exec_single", "smp_call_function_single_async", "net_rps_send_ipi", "net_rx_action", "handle_softirqs", "__local_bh_enable_ip", "__dev_queue_xmit", "tcp_sendmsg"), goServer), false, false, Dev},
		{"rps ipi queueing", chain(k("call_function_single_prep_ipi", "__smp_call_single_queue", "generic_exec_single", "smp_call_function_single_async", "net_rps_send_ipi", "net_rx_action")), false, false, Dev},
		{"timer interrupt under an rps ipi is sched", chain(k("native_write_msr", "lapic_next_deadline", "clockevents_program_event", "hrtimer_interrupt", "__sysvec_apic_timer_interrupt", "asm_sysvec_apic_timer_interrupt", "generic_exec_single", "smp_call_function_single_async", "net_rps_send_ipi", "net_rx_action")), false, false, Sched},
		{"masked timer taken at irq enable", chain(k("pv_native_irq_enable", "tcp_sendmsg")), false, false, Sched},
		{"ipi", chain(k("__flush_smp_call_function_queue", "__sysvec_call_function_single", "asm_sysvec_call_function_single")), false, false, Sched},
		// a timer that came due while an interrupt held interrupts masked is
		// taken where the softirq loop unmasks them: the interrupt's
		{"masked timer taken at softirq start under an ipi", chain(k("handle_softirqs", "__irq_exit_rcu", "sysvec_call_function_single", "asm_sysvec_call_function_single", "io_sq_thread", "ret_from_fork")), false, false, Sched},
		{"masked timer taken at softirq start under a device interrupt", chain(k("handle_softirqs", "__irq_exit_rcu", "common_interrupt", "asm_common_interrupt"), goServer), false, false, Dev},
		{"masked timer taken at softirq start on bh enable", chain(k("handle_softirqs", "do_softirq.part.0", "__local_bh_enable_ip", "__dev_queue_xmit", "ip_finish_output2", "tcp_sendmsg")), false, false, Dev},
		{"idle exit", chain(k("tick_nohz_idle_exit", "do_idle", "cpu_startup_entry")), true, false, Sched},
		{"futex wait", chain(k("futex_wait_queue", "futex_wait", "__x64_sys_futex"), u("runtime.futex")), false, false, Sched},
		// idle: the idle task halted; not so when it does softirq work
		{"halted", chain(k("pv_native_safe_halt", "default_idle", "default_enter_idle", "cpuidle_enter_state", "do_idle")), true, false, Idle},
		{"halt of a non-idle task is not idle", chain(k("pv_native_safe_halt")), false, false, Sched},
		{"softirq on the idle task", chain(k("udp_rcv", "ip_local_deliver", "__netif_receive_skb_core", "net_rx_action", "handle_softirqs", "__irq_exit_rcu", "common_interrupt", "pv_native_safe_halt", "do_idle")), true, false, Net},
		// io_uring
		{"submission", chain(k("io_submit_sqes", "__do_sys_io_uring_enter", "do_syscall_64"), goServer), false, false, IOUring},
		{"task work", chain(k("__io_run_local_work", "__do_sys_io_uring_enter")), false, false, IOUring},
		{"send under io_uring is net", chain(k("tcp_sendmsg", "sock_sendmsg", "io_send", "__io_issue_sqe")), false, false, Net},
		{"io_schedule is sched", chain(k("io_schedule", "folio_wait_bit")), false, false, Sched},
		// poll
		{"sqpoll spin", chain(k("io_sq_thread", "ret_from_fork")), false, false, Poll},
		{"sqpoll submitting is io_uring", chain(k("io_submit_sqes", "__io_sq_thread", "io_sq_thread")), false, false, IOUring},
		{"dpdk pmd", []Frame{{Func: "af_xdp_rx_zc", File: "/usr/lib/librte_net_af_xdp.so.24"}, {Func: "rte_eth_rx_burst", File: "/usr/bin/ringbench"}, {Func: "main", File: "/usr/bin/ringbench"}}, false, false, Poll},
		{"napi busy poll", chain(k("napi_busy_loop", "sk_busy_loop", "udp_recvmsg")), false, false, Poll},
		// runtime
		{"gc", chain(u("runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker", "runtime.goexit")), false, false, Runtime},
		{"scheduler", chain(u("runtime.findRunnable", "runtime.schedule", "runtime.mcall")), false, false, Runtime},
		{"memmove is the caller's", chain(u("runtime.memmove", "ringbench/epoll.(*loop).echo"), goServer), false, false, App},
		{"vdso is the caller's", chain(u("[vdso]", "runtime.nanotime1"), goServer), false, false, Runtime},
		// app
		{"burn spin", chain(u("ringbench/internal/tsc.Spin", "ringbench/epoll.(*burnWork).spin"), goServer), false, false, App},
		{"page fault in app code", chain(k("clear_page_erms", "handle_mm_fault", "exc_page_fault", "asm_exc_page_fault"), goServer), false, false, App},
		// other
		{"another process's user code", chain(u("main.generate")), false, true, Other},
		{"another process's kernel net work is net", chain(k("tcp_sendmsg")), false, true, Net},
		{"rcu", chain(k("rcu_core", "handle_softirqs")), false, false, Other},
		{"unknown kernel thread work", chain(k("some_driver_work", "process_one_work", "worker_thread", "kthread")), false, false, Other},
		{"unknown softirq on app is not app", chain(k("mystery", "handle_softirqs", "__irq_exit_rcu", "asm_sysvec_call_function_single"), goServer), false, false, Other},
		{"empty chain", nil, false, false, Other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Chain{Frames: tc.frames, IdleTask: tc.idleTask, Server: !tc.notOurs && !tc.idleTask}
			if got := Classify(c); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.frames, got, tc.want)
			}
		})
	}
}

// TestEveryCategoryHasARule keeps the table and the category list in step.
func TestEveryCategoryHasARule(t *testing.T) {
	for _, h := range handoffs {
		if h.why == "" {
			t.Errorf("the %s handoff under %s does not say why", h.category, h.caller)
		}
	}
	ruled := map[Category]bool{}
	for _, r := range rules {
		ruled[r.category] = true
		if r.why == "" {
			t.Errorf("a %s rule does not say why", r.category)
		}
	}
	for _, c := range Categories {
		if !ruled[c] {
			t.Errorf("category %s has no rule", c)
		}
	}
}

// A stripped DPDK poll-mode driver is known by its library's file name.
func TestStrippedPMD(t *testing.T) {
	c := Chain{Frames: []Frame{{Func: "[librte_net_memif.so.23.0]", File: "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_memif.so.23.0"}}, Server: true}
	if got := Classify(c); got != Poll {
		t.Errorf("memif PMD frame: %s, want poll", got)
	}
	c.Frames[0] = Frame{Func: "[librte_mempool.so.23.0]", File: "/usr/lib/x86_64-linux-gnu/librte_mempool.so.23.0"}
	if got := Classify(c); got == Poll {
		t.Errorf("mempool frame: poll, want not poll")
	}
}

// A user-mode sample right after a syscall instruction is the syscall's
// (its interrupt was held off through the kernel's exit path); the same
// address in another process, or with kernel frames, is not.
func TestAfterSyscall(t *testing.T) {
	for _, tc := range []struct {
		c    Chain
		want Category
	}{
		{Chain{Frames: u("main.getppid", "main.loop"), Server: true, AfterSyscall: true}, Syscall},
		{Chain{Frames: u("main.getppid", "main.loop"), Server: true}, App},
		{Chain{Frames: u("main.loop"), Server: false, AfterSyscall: true}, Other},
	} {
		if got := Classify(tc.c); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.c, got, tc.want)
		}
	}
}

// Coverage is the samples' time over the busy time, for cpu-clock only.
func TestCoverage(t *testing.T) {
	cpuClock := Breakdown{Event: "cpu-clock", Hz: 1000, Samples: 400}
	for _, tc := range []struct {
		name   string
		b      Breakdown
		busyNs float64
		want   float64
		ok     bool
	}{
		{"a third seen", cpuClock, 1.2e9, 400e6 / 1.2e9, true},
		{"all seen", cpuClock, 0.4e9, 1, true},
		{"no busy time", cpuClock, 0, 0, false},
		{"no samples", Breakdown{Event: "cpu-clock", Hz: 1000}, 1e9, 0, false},
		{"cycles are not time", Breakdown{Event: "cycles", Hz: 1000, Samples: 400}, 1e9, 0, false},
		{"999 Hz is a 1001001 ns period", Breakdown{Event: "cpu-clock", Hz: 999, Samples: 999}, 999 * 1001001, 1, true},
	} {
		got, ok := tc.b.Coverage(tc.busyNs)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: Coverage(%v) = %v, %v; want %v, %v", tc.name, tc.busyNs, got, ok, tc.want, tc.ok)
		}
	}
}

// Split hands the time no sample saw to Unsampled, never to the
// categories that were seen; its parts sum to the whole.
func TestSplit(t *testing.T) {
	b := Breakdown{Shares: map[string]float64{"app": 0.75, "syscall": 0.25}}
	for _, tc := range []struct {
		name     string
		coverage float64
		want     map[string]float64 // shares
	}{
		{"full coverage", 1, map[string]float64{"app": 0.75, "syscall": 0.25}},
		{"over-covered is full", 1.08, map[string]float64{"app": 0.75, "syscall": 0.25}},
		{"a third unseen", 2.0 / 3, map[string]float64{"app": 0.5, "syscall": 1.0 / 6, Unsampled: 1.0 / 3}},
		{"nothing seen", 0, map[string]float64{"app": 0, "syscall": 0, Unsampled: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.Split(3000, tc.coverage)
			if len(got) != len(tc.want) {
				t.Fatalf("Split = %v, want shares %v", got, tc.want)
			}
			share, cycles := 0.0, 0.0
			for c, w := range tc.want {
				p := got[c]
				if math.Abs(p.Share-w) > 1e-12 || math.Abs(p.CyclesPerOp-w*3000) > 1e-9 {
					t.Errorf("%s: %+v, want share %v of 3000 cycles", c, p, w)
				}
				share += p.Share
				cycles += p.CyclesPerOp
			}
			if math.Abs(share-1) > 1e-12 || math.Abs(cycles-3000) > 1e-9 {
				t.Errorf("parts sum to share %v and %v cycles, want 1 and 3000", share, cycles)
			}
		})
	}
	if got := (Breakdown{}).Split(3000, 0.5); len(got) != 0 {
		t.Errorf("a breakdown with no samples splits into %v, want nothing", got)
	}
}
