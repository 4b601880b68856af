package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ringbench/backends"
	"ringbench/results"
	"ringbench/workloads"
)

// CalibrateSyscall times a null syscall (getppid, which does no work in the
// kernel) on this machine: the price of one crossing, best of five rounds.
func CalibrateSyscall(tscHz float64) *results.SyscallCost {
	const calls = 1_000_000
	best := time.Duration(1 << 62)
	for round := 0; round < 5; round++ {
		start := time.Now()
		for i := 0; i < calls; i++ {
			syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		}
		if d := time.Since(start); d < best {
			best = d
		}
	}
	c := &results.SyscallCost{
		NsPerCall: float64(best.Nanoseconds()) / calls,
		Method:    "getppid via syscall.RawSyscall, 10^6 calls, best of 5 rounds",
		Calls:     calls * 5,
	}
	if tscHz > 0 {
		cyc := c.NsPerCall * tscHz / 1e9
		c.CyclesPerCall = &cyc
	}
	return c
}

// Lesson runs the middle-ground experiments: the null-syscall calibration,
// and for each backend, on the veth topology, whether the kernel's tools
// still see its traffic: an nftables counter rule, an nftables drop rule,
// and ss. When ctx is done before the last row it returns ctx's error: the
// rows it has are not the lesson asked for.
func (r *Runner) Lesson(ctx context.Context, names []string) (*results.Lesson, error) {
	l := &results.Lesson{Env: r.Env}
	l.SyscallCost = CalibrateSyscall(r.Env.TSCHz)
	var why []string
	if _, err := exec.LookPath("nft"); err != nil {
		why = append(why, "nftables checks: the nft command is missing (Debian package nftables)")
	}
	srvCPUs, cliCPUs, err := CPUs(1)
	if err != nil {
		why = append(why, "kernel-feature checks: "+err.Error())
	}
	var topo Topology
	if err == nil {
		topo, err = r.topology(Veth, srvCPUs, cliCPUs)
		if err != nil {
			why = append(why, "kernel-feature checks: "+err.Error())
		}
	}
	if topo == nil {
		l.NotMeasured = why
		return l, ctx.Err()
	}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		row, err := r.featureRow(ctx, topo, name, srvCPUs, cliCPUs)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		l.Features = append(l.Features, row)
	}
	l.NotMeasured = why
	return l, ctx.Err()
}

// featureRow measures one backend's row with a UDP echo (the protocol every
// backend serves).
func (r *Runner) featureRow(ctx context.Context, topo Topology, name string, srvCPUs, cliCPUs []int) (row results.KernelFeatures, err error) {
	b, err := backends.Lookup(name)
	if err != nil {
		return row, err
	}
	if err := b.Probe(); err != nil {
		return row, fmt.Errorf("backend unavailable: %w", err)
	}
	label := b.Family
	if b.Variant != "default" {
		label += "-" + b.Variant
	}
	row = results.KernelFeatures{Backend: label, Topology: Veth, Proto: "udp"}
	cfg := backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: topo.ServerHost(), CPUs: srvCPUs, MsgSize: 64, Iface: topo.ServerIface()}
	if b.Family == "dpdk" {
		cfg.Options = map[string]string{}
		if !r.hugepages() {
			cfg.Options["hugepages"] = "0"
		}
	}
	srv, err := startServer(ctx, topo, ServerSpec{Backend: name, Config: cfg})
	if err != nil {
		return row, err
	}
	defer srv.stop()
	ns := topo.ServerNetns()
	port := srv.port

	// ss: does the kernel know the socket?
	out, err := exec.Command("ss", "-N", ns, "-Hlun", fmt.Sprintf("sport = :%d", port)).Output()
	switch {
	case err != nil:
		row.SSListsSocket = results.FeatureCheck{Verdict: results.Unmeasured, Reason: "ss: " + err.Error()}
	case strings.TrimSpace(string(out)) != "":
		row.SSListsSocket = results.FeatureCheck{Verdict: results.Yes, Note: strings.Join(strings.Fields(string(out)), " ")}
	default:
		row.SSListsSocket = results.FeatureCheck{Verdict: results.No, Note: "no socket bound to the port: the port belongs to a user-space driver"}
	}

	addr := netip.MustParseAddr(topo.ServerHost())
	target := workloads.Target{Addr: netip.AddrPortFrom(addr, uint16(port)), Netns: NetnsPath(topo.ClientNetns())}
	load := func(d time.Duration) (*workloads.Report, error) {
		spec := workloads.Spec{Workload: workloads.Echo, Proto: backends.UDP, Conns: 4, Depth: 1, Size: 64,
			Rate: 2000, Arrival: workloads.Constant, Warmup: 200 * time.Millisecond, Duration: d,
			Timeout: 200 * time.Millisecond, CPUs: cliCPUs}
		return workloads.Run(ctx, spec, target, workloads.Hooks{})
	}
	if _, err := exec.LookPath("nft"); err != nil {
		row.NftCounts = results.FeatureCheck{Verdict: results.Unmeasured, Reason: "nft command missing"}
		row.NftDropStops = row.NftCounts
		return row, nil
	}
	const table = "ringbench_lesson"
	nft := func(args ...string) ([]byte, error) {
		full := append([]string{"netns", "exec", ns, "nft"}, args...)
		out, err := exec.Command("ip", full...).CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return out, nil
	}
	defer nft("delete", "table", "inet", table)
	rule := fmt.Sprintf("table inet %s {\n chain input {\n  type filter hook input priority 0; policy accept\n  udp dport %d counter\n }\n}\n", table, port)
	if err := nftApply(ns, rule); err != nil {
		row.NftCounts = results.FeatureCheck{Verdict: results.Unmeasured, Reason: err.Error()}
		row.NftDropStops = row.NftCounts
		return row, nil
	}
	rep, err := load(time.Second)
	if err != nil {
		return row, fmt.Errorf("load for nft counter: %w", err)
	}
	listing, err := nft("-j", "list", "table", "inet", table)
	if err != nil {
		row.NftCounts = results.FeatureCheck{Verdict: results.Unmeasured, Reason: err.Error()}
	} else {
		counted := nftCounterPackets(listing)
		sent := rep.Sent
		v := results.No
		if counted > 0 {
			v = results.Yes
		}
		row.NftCounts = results.FeatureCheck{Verdict: v, Counted: &counted, Sent: &sent,
			Note: fmt.Sprintf("a counter rule on the input hook counted %d packets while the generator sent %d requests (warm-up included in the count, not in sent)", counted, sent)}
	}

	// Drop rule: does the kernel's firewall stop this server's traffic?
	nft("delete", "table", "inet", table)
	drop := fmt.Sprintf("table inet %s {\n chain input {\n  type filter hook input priority 0; policy accept\n  udp dport %d drop\n }\n}\n", table, port)
	if err := nftApply(ns, drop); err != nil {
		row.NftDropStops = results.FeatureCheck{Verdict: results.Unmeasured, Reason: err.Error()}
		return row, nil
	}
	rep, err = load(time.Second)
	if err != nil {
		return row, fmt.Errorf("load under nft drop: %w", err)
	}
	answered := rep.Ops
	sent := rep.Sent
	v := results.No
	if answered == 0 && sent > 0 {
		v = results.Yes
	}
	row.NftDropStops = results.FeatureCheck{Verdict: v, Counted: &answered, Sent: &sent,
		Note: fmt.Sprintf("with a drop rule on the input hook, %d of %d requests were answered", answered, sent)}
	return row, nil
}

func nftApply(ns, ruleset string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft -f: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

var nftPacketsRe = regexp.MustCompile(`"packets":\s*([0-9]+)`)

// nftCounterPackets sums the packet counts of the counters in an nft -j
// listing.
func nftCounterPackets(listing []byte) uint64 {
	if !json.Valid(listing) {
		return 0
	}
	var sum uint64
	for _, m := range nftPacketsRe.FindAllSubmatch(listing, -1) {
		n, _ := strconv.ParseUint(string(m[1]), 10, 64)
		sum += n
	}
	return sum
}
