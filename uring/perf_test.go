package uring

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	_ "ringbench/epoll"
	"ringbench/workloads"
)

// TestSameRateCost is a measurement, not a check: with RINGBENCH_PERF=1 it
// serves the quick profile's same-rate echo (64 B, open loop) from CPU 1
// with the generator on CPU 0, and logs each backend's server CPU per op
// (the schedstat run time of every thread pinned to CPU 1: loops, SQ
// threads) and its own syscalls per op. Loopback only: the receive softirq
// runs in the sender's context, so each side also pays for the other's
// receive path, alike for every backend.
func TestSameRateCost(t *testing.T) {
	if os.Getenv("RINGBENCH_PERF") == "" {
		t.Skip("skipped: a measurement; set RINGBENCH_PERF=1 to run it")
	}
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil || !set.IsSet(0) || !set.IsSet(1) {
		t.Skip("skipped: needs CPUs 0 and 1")
	}
	names := strings.Split(envOr("RINGBENCH_PERF_BACKENDS", "epoll,uring-basic,uring-pbuf,uring-multishot,uring-fixed,uring-defer,uring,uring-bundle,uring-sqpoll,uring-zc"), ",")
	conns, _ := strconv.Atoi(envOr("RINGBENCH_PERF_CONNS", "64"))
	depth, _ := strconv.Atoi(envOr("RINGBENCH_PERF_DEPTH", "4"))
	rate, _ := strconv.ParseFloat(envOr("RINGBENCH_PERF_RATE", "20000"), 64)
	proto := backends.Proto(envOr("RINGBENCH_PERF_PROTO", "tcp"))
	for _, name := range names {
		b, err := backends.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if b.Probe() != nil {
			continue
		}
		cfg := backends.Config{Proto: proto, Service: backends.Echo, Host: "127.0.0.1", CPUs: []int{1}, MsgSize: 64}
		if opts := os.Getenv("RINGBENCH_PERF_OPTS"); opts != "" && b.Family == "uring" {
			cfg.Options = map[string]string{}
			for _, kv := range strings.Split(opts, ",") {
				k, v, _ := strings.Cut(kv, "=")
				cfg.Options[k] = v
			}
		}
		srv, err := b.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var cpu0, cpu1 time.Duration
		var cs0, cs1 int64
		var c0, c1 backends.Counters
		spec := workloads.Spec{Workload: workloads.Echo, Proto: proto, Conns: conns, Depth: depth, Size: 64, Rate: rate,
			Warmup: 500 * time.Millisecond, Duration: perfWindow(), CPUs: []int{0}}
		rep, err := workloads.Run(context.Background(), spec,
			workloads.Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.Port()))},
			workloads.Hooks{
				WindowStart: func() { cpu0, cs0, c0 = pinnedCPU(1), pinnedSwitches(1), srv.Counters() },
				WindowEnd:   func() { cpu1, cs1, c1 = pinnedCPU(1), pinnedSwitches(1), srv.Counters() },
			})
		srv.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ops := float64(rep.Ops)
		t.Logf("%-13s %7.0f ops/s  server CPU %6.2f µs/op  syscalls %.3f/op  switches %.3f/op  p50 %6.1f µs p99 %7.1f µs  errors %+v extra %v",
			name, ops/rep.Window.Seconds(), float64((cpu1-cpu0).Nanoseconds())/ops/1e3,
			float64(c1.Syscalls-c0.Syscalls)/ops, float64(cs1-cs0)/ops,
			float64(rep.Latency.ValueAtQuantile(50))/1e3, float64(rep.Latency.ValueAtQuantile(99))/1e3, rep.Errors, c1.Extra)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// pinnedSwitches sums the context switches (voluntary: the thread slept;
// involuntary: it was preempted) of the threads pinned to cpu alone.
func pinnedSwitches(cpu int) int64 {
	var total int64
	eachPinned(cpu, func(dir string) {
		b, _ := os.ReadFile(dir + "/status")
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(strings.SplitN(line, ":", 2)[0], "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), 10, 64)
				total += n
			}
		}
	})
	return total
}

func eachPinned(cpu int, f func(dir string)) {
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if unix.SchedGetaffinity(tid, &set) != nil || set.Count() != 1 || !set.IsSet(cpu) {
			continue
		}
		f("/proc/self/task/" + e.Name())
	}
}

// pinnedCPU sums the run time (schedstat) of this process's threads whose
// affinity is exactly {cpu}.
func pinnedCPU(cpu int) time.Duration {
	var total int64
	eachPinned(cpu, func(dir string) {
		b, _ := os.ReadFile(dir + "/schedstat")
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += ns
		}
	})
	return time.Duration(total)
}

func perfWindow() time.Duration {
	d, err := time.ParseDuration(os.Getenv("RINGBENCH_PERF_WINDOW"))
	if err != nil || d <= 0 {
		return 3 * time.Second
	}
	return d
}
