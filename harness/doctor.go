package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"ringbench/backends"
	"ringbench/meters"
)

// Check is one line of `ringbench doctor`: a capability, whether this
// machine has it, and why.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Doctor checks what the harness's meters and topologies need.
func Doctor() []Check {
	var out []Check
	add := func(name string, ok bool, format string, a ...any) {
		out = append(out, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
	}
	root := os.Geteuid() == 0
	add("root", root, "euid %d (veth topology, tracefs mount, hugepages and DPDK need root)", os.Geteuid())

	if _, err := exec.LookPath("ip"); err != nil {
		add("netns", false, "ip (iproute2) missing: %v", err)
	} else if !root {
		add("netns", false, "making network namespaces needs root")
	} else {
		name := fmt.Sprintf("%sdoctor-%d", nsPrefix, os.Getpid())
		if err := ip("netns", "add", name); err != nil {
			add("netns", false, "%v", err)
		} else {
			ip("netns", "del", name)
			add("netns", true, "network namespaces and veth pairs can be made (veth topology)")
		}
	}

	if p, err := exec.LookPath("ssh"); err != nil {
		add("ssh", false, "no ssh client: the hosts topology (the generator on another host) cannot run")
	} else {
		add("ssh", true, "%s is there for the hosts topology (the generator on another host; --ssh picks another command)", p)
	}

	if id, err := meters.TracepointID("raw_syscalls/sys_enter"); err != nil {
		add("tracefs", false, "%v: syscalls per op will be empty", err)
	} else {
		add("tracefs", true, "raw_syscalls:sys_enter has id %d", id)
		if byName, err := meters.ProbeSyscallCounting(); err != nil {
			add("syscall counting", false, "%v", err)
		} else {
			add("syscall counting", true, "perf_event_open counts raw_syscalls:sys_enter per thread (in a counting window after each cost window)")
			if byName != nil {
				add("syscalls by name", false, "%v: syscalls_by_name will be empty", byName)
			} else {
				add("syscalls by name", true, "a BPF program on raw_syscalls:sys_enter counts the server's syscalls by id")
			}
		}
	}

	if err := meters.ProbeCycles(0); err != nil {
		add("perf PMU", false, "%v: cycles are busy time × TSC frequency (cycles_source tsc)", err)
	} else {
		add("perf PMU", true, "hardware cycles counted on the server cores (cycles_source perf)")
	}
	if b, err := os.ReadFile("/proc/timer_list"); err != nil {
		add("ns idle clock", false, "%v: core busy from /proc/stat in 10 ms units", err)
	} else if _, err := meters.ParseTimerList(b); err != nil {
		add("ns idle clock", false, "%v: core busy from /proc/stat in 10 ms units", err)
	} else {
		add("ns idle clock", true, "/proc/timer_list gives each CPU's NO_HZ idle time in ns (core busy)")
	}
	env := Environment()
	add("TSC", env.TSCHz > 0, "%.3f MHz from %s", env.TSCHz/1e6, env.TSCSource)

	for _, tool := range []struct{ cmd, why string }{
		{"taskset", "pins servers to their CPUs"},
		{"ss", "external-server readiness and the lesson's socket check"},
		{"nft", "the lesson's firewall checks (Debian package nftables)"},
		{"chromium", "the report's rendering test (Debian package chromium)"},
	} {
		if p, err := exec.LookPath(tool.cmd); err != nil {
			add(tool.cmd, false, "missing: %s", tool.why)
		} else {
			add(tool.cmd, true, "%s: %s", p, tool.why)
		}
	}

	if dir, err := ServerCgroups(); err != nil {
		add("server cgroup", false, "%v: servers run without a cgroup of their own (a daemonised external server outlives its trial)", err)
	} else {
		add("server cgroup", true, "each server starts in a cgroup2 group of its own under %s, killed whole at its end", dir)
	}

	if b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"); err != nil {
		add("hugepages", false, "2 MiB hugepages unavailable: %v (DPDK falls back to --no-huge)", err)
	} else {
		free, _ := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
		add("hugepages", true, "2 MiB pages: %s reserved, %s free (reserved by the harness for DPDK trials, released after)",
			strings.TrimSpace(string(b)), strings.TrimSpace(string(free)))
	}
	for _, b := range backends.All() {
		if err := b.Probe(); err != nil {
			add("backend "+b.Name, false, "%v", err)
		} else {
			add("backend "+b.Name, true, "%s", b.Summary)
		}
	}
	return out
}
