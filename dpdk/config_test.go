package dpdk

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"ringbench/backends"
	"ringbench/workloads"
)

func TestParseServerConfig(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	base := func() backends.Config {
		return backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: "10.203.0.1", CPUs: []int{1}, Iface: "veth0"}
	}
	for _, tc := range []struct {
		name     string
		edit     func(*backends.Config)
		afxdp    bool
		wantVdev string
		wantCsum ChecksumMode
		wantErr  string
	}{
		{"auto picks af_xdp", func(c *backends.Config) {}, true, "net_af_xdp0,iface=veth0,start_queue=0,queue_count=1,busy_budget=0", ChecksumFull, ""},
		{"auto falls back to af_packet", func(c *backends.Config) {}, false, "net_af_packet0,iface=veth0,qpairs=1", ChecksumFull, ""},
		{"pmd forced", func(c *backends.Config) { c.Options = map[string]string{OptPMD: PMDAFPacket} }, true, "net_af_packet0,iface=veth0,qpairs=1", ChecksumFull, ""},
		{"memif server", func(c *backends.Config) { c.Iface = ""; c.Options = map[string]string{OptMemifSocket: "/run/m.sock"} }, false,
			"net_memif0,role=server,id=0,socket=/run/m.sock,socket-abstract=no,mac=02:72:62:00:00:01", ChecksumKeep, ""},
		{"vdev override", func(c *backends.Config) {
			c.Iface = ""
			c.Options = map[string]string{OptVdev: "net_null0", OptUDPChecksum: "zero"}
		}, false, "net_null0", ChecksumZero, ""},
		{"unknown option", func(c *backends.Config) { c.Options = map[string]string{"ring": "1"} }, false, "", 0, "unknown option"},
		{"vdev overrides Iface", func(c *backends.Config) { c.Options = map[string]string{OptVdev: "net_null0"} }, true, "net_null0", ChecksumKeep, ""},
		{"two ports", func(c *backends.Config) { c.Options = map[string]string{OptVdev: "net_null0", OptMemifSocket: "/m"} }, false, "", 0, "exactly one port"},
		{"no port", func(c *backends.Config) { c.Iface = "" }, false, "", 0, "exactly one port"},
		{"bad pmd", func(c *backends.Config) { c.Options = map[string]string{OptPMD: "vfio"} }, false, "", 0, "pmd"},
		{"pmd without iface", func(c *backends.Config) {
			c.Iface = ""
			c.Options = map[string]string{OptPMD: PMDAFXDP, OptVdev: "net_null0"}
		}, false, "", 0, "Iface only"},
		{"bad host", func(c *backends.Config) { c.Host = "::1" }, false, "", 0, "IPv4"},
		{"bad checksum mode", func(c *backends.Config) { c.Options = map[string]string{OptUDPChecksum: "partial"} }, false, "", 0, "full, zero or keep"},
		{"tcp", func(c *backends.Config) { c.Proto = backends.TCP }, false, "", 0, "no kernel TCP stack"},
		{"busy-poll settings on af_packet", func(c *backends.Config) { c.Options = map[string]string{OptNapiDeferHardIRQs: "2"} }, false, "", 0, "af_xdp port only"},
		{"bad gro_flush_timeout", func(c *backends.Config) { c.Options = map[string]string{OptGROFlushTimeout: "-1"} }, true, "", 0, "whole number"},
		{"source needs a size", func(c *backends.Config) { c.Service = backends.Source; c.MsgSize = 4 }, false, "", 0, "MsgSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(&cfg)
			st, ok := parseChecked(t, cfg, tc.afxdp, tc.wantErr)
			if !ok {
				return
			}
			if st.vdev != tc.wantVdev || st.rules.UDPChecksum != tc.wantCsum || !slices.Equal(st.lcores, []int{1}) || !st.noHuge {
				t.Errorf("settings %+v, want vdev %q checksum %d on lcore 1 without hugepages", st, tc.wantVdev, tc.wantCsum)
			}
			if st.rules.Port != DefaultPort || st.rules.IP.String() != "10.203.0.1" {
				t.Errorf("rules %+v", st.rules)
			}
		})
	}
	st, err := parseServerConfig(backends.Config{Proto: backends.UDP, Service: backends.Echo, Port: 7, Iface: "x", CPUs: []int{0}}, yes, yes)
	if err != nil || st.noHuge || st.rules.Port != 7 {
		t.Errorf("hugepages free and port 7: %+v, %v", st, err)
	}
	st, err = parseServerConfig(backends.Config{Proto: backends.UDP, Iface: "x", CPUs: []int{0},
		Options: map[string]string{OptBusyBudget: "64", OptNapiDeferHardIRQs: "2", OptGROFlushTimeout: "200000"}}, yes, no)
	want := []netdevSetting{{OptNapiDeferHardIRQs, "2"}, {OptGROFlushTimeout, "200000"}}
	if err != nil || !strings.HasSuffix(st.vdev, ",busy_budget=64") || st.iface != "x" || !slices.Equal(st.netdev, want) {
		t.Errorf("busy-poll options: %+v, %v; want busy_budget=64 and %v on x", st, err, want)
	}
	_, err = parseServerConfig(backends.Config{Proto: backends.TCP}, yes, yes)
	if !errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("TCP: %v does not match ErrNotSupported", err)
	}
}

// parseChecked parses cfg (no hugepages free) and checks its error against
// wantErr, a part of the message or "" for none; ok says there are settings
// to check.
func parseChecked(t *testing.T, cfg backends.Config, afxdp bool, wantErr string) (st serverSettings, ok bool) {
	t.Helper()
	st, err := parseServerConfig(cfg, func() bool { return afxdp }, func() bool { return false })
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return st, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return st, true
}

// One lcore per core, each on a queue pair of its own: every port kind
// takes N queues or is refused with what it lacks.
func TestParseServerConfigCores(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cpus     []int
		options  map[string]string
		iface    string
		afxdp    bool
		wantVdev string
		wantRSS  bool
		wantErr  string
	}{
		{"af_packet spreads by fanout hash", []int{0, 1}, nil, "veth0", false, "net_af_packet0,iface=veth0,qpairs=2", false, ""},
		{"memif: the peer picks the queue", []int{1, 0}, map[string]string{OptMemifSocket: "/m"}, "", false,
			"net_memif0,role=server,id=0,socket=/m,socket-abstract=no,mac=02:72:62:00:00:01", false, ""},
		{"override spreads by RSS", []int{0, 1}, map[string]string{OptVdev: "net_null0"}, "", false, "net_null0", true, ""},
		{"pci spreads by RSS", []int{0, 1}, map[string]string{OptPCI: "0000:3b:00.0"}, "", false, "", true, ""},
		{"af_xdp on a single-queue veth", []int{0, 1}, nil, "veth0", true, "", false, "allows queue_count up to the interface's combined channels"},
		{"a cpu twice", []int{1, 1}, nil, "veth0", false, "", false, "cpu 1 named twice"},
		{"a negative cpu", []int{0, -1}, nil, "veth0", false, "", false, "cpu -1 outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: tc.cpus, Iface: tc.iface, Options: tc.options}
			st, ok := parseChecked(t, cfg, tc.afxdp, tc.wantErr)
			if !ok {
				return
			}
			if st.vdev != tc.wantVdev || st.needRSS != tc.wantRSS || !slices.Equal(st.lcores, tc.cpus) {
				t.Errorf("vdev %q, needRSS %v, lcores %v; want %q, %v, %v", st.vdev, st.needRSS, st.lcores, tc.wantVdev, tc.wantRSS, tc.cpus)
			}
		})
	}
	var nse *backends.NotSupportedError
	_, err := parseServerConfig(backends.Config{Proto: backends.UDP, CPUs: []int{0, 1}, Iface: "veth0"}, func() bool { return true }, func() bool { return false })
	if !errors.As(err, &nse) || nse.Feature != "dpdk on 2 cores" {
		t.Errorf("af_xdp on 2 cores: %v, want a NotSupportedError for dpdk on 2 cores", err)
	}
	// testpmd forwards on one lcore and one queue pair, its reference point.
	_, err = newTestpmd(backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0, 1},
		Options: map[string]string{OptMemifSocket: "/m", OptHugepages: "0"}})
	if !errors.As(err, &nse) || !strings.Contains(nse.Reason, "--nb-cores=1") {
		t.Errorf("dpdk-testpmd on 2 cores: %v, want a NotSupportedError naming --nb-cores=1", err)
	}
}

func TestEALArgs(t *testing.T) {
	for _, tc := range []struct {
		noHuge  bool
		pci     string
		want    []string
		mustNot string
	}{
		{true, "", []string{"-l", "3", "--no-huge", "--no-shconf", "--no-pci", "--vdev", "--file-prefix"}, "--in-memory"},
		{false, "", []string{"--in-memory", "--no-pci"}, "--no-huge"},
		{false, "0000:3b:00.0", []string{"-a", "0000:3b:00.0"}, "--no-pci"},
	} {
		args := ealArgs([]int{3}, "net_null0", tc.pci, tc.noHuge, "p")
		for _, w := range tc.want {
			if !slices.Contains(args, w) {
				t.Errorf("ealArgs(noHuge=%v, pci=%q) = %v, lacks %s", tc.noHuge, tc.pci, args, w)
			}
		}
		if slices.Contains(args, tc.mustNot) {
			t.Errorf("ealArgs(noHuge=%v, pci=%q) = %v, has %s", tc.noHuge, tc.pci, args, tc.mustNot)
		}
		if slices.Contains(args, "--main-lcore") {
			t.Errorf("ealArgs on one lcore = %v: the main lcore is the only one", args)
		}
	}
	// The first CPU is the main lcore even when it is not the lowest.
	args := strings.Join(ealArgs([]int{3, 1}, "", "", true, "p"), " ")
	if !strings.Contains(args, "-l 3,1 ") || !strings.Contains(args, "--main-lcore 3") {
		t.Errorf("ealArgs on lcores 3 and 1 = %s, want -l 3,1 --main-lcore 3", args)
	}
}

func TestNotSupportedWithoutTag(t *testing.T) {
	if built {
		t.Skip("skipped: built with the dpdk tag")
	}
	for _, name := range []string{"dpdk"} {
		b, err := backends.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{b.Probe(), func() error { _, err := b.New(backends.Config{}); return err }()} {
			if !errors.Is(err, backends.ErrNotSupported) || !strings.Contains(err.Error(), "make build") {
				t.Errorf("%s: %v, want a not-supported error saying how to build", name, err)
			}
		}
	}
	if _, err := Generate(t.Context(), workloads.Spec{Workload: workloads.Echo, Size: 64, Duration: 1}, GenOptions{}, workloads.Hooks{}); !errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("Generate: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	for _, tc := range []struct{ name, variant string }{{"dpdk", "default"}, {"dpdk-testpmd", "testpmd"}} {
		b, err := backends.Lookup(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if b.Family != "dpdk" || b.Variant != tc.variant {
			t.Errorf("%s: family %q variant %q", tc.name, b.Family, b.Variant)
		}
		err = b.Supports(backends.TCP, backends.Echo)
		if !errors.Is(err, backends.ErrNotSupported) || !strings.Contains(err.Error(), "no kernel TCP stack") {
			t.Errorf("%s over TCP: %v", tc.name, err)
		}
		if err := b.Supports(backends.UDP, backends.Echo); err != nil {
			t.Errorf("%s over UDP: %v", tc.name, err)
		}
	}
}

// The registry's check refuses at parse time what the server would refuse
// when it starts, and accepts what it would take.
func TestCheckOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want string // "" for accepted
	}{
		{nil, ""},
		{map[string]string{OptVdev: "net_null0"}, ""},
		{map[string]string{OptPMD: PMDAFXDP, OptBusyBudget: "64"}, ""},
		{map[string]string{"bogus": "1"}, `unknown option "bogus"`},
		{map[string]string{OptPMD: "dpdk"}, `pmd="dpdk"`},
		{map[string]string{OptBusyBudget: "70000"}, "busy_budget"},
		{map[string]string{OptPMD: PMDAFPacket, OptBusyBudget: "1"}, "af_xdp port only"},
		{map[string]string{OptUDPChecksum: "maybe"}, "udp_checksum"},
		{map[string]string{OptHugepages: "2"}, "hugepages"},
		{map[string]string{OptVdev: "net_null0", OptPCI: "0000:01:00.0"}, "exactly one port"},
	} {
		err := checkOptions(tc.opts)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// TestLcoreIDs: a CPU past DPDK's lcore ids is refused for the server,
// whose EAL takes CPUs as lcore ids, and not for testpmd's settings, which
// map lcores onto any CPU.
func TestLcoreIDs(t *testing.T) {
	if err := checkLcoreIDs([]int{0, maxLcore - 1}); err != nil {
		t.Errorf("CPUs 0 and %d: %v", maxLcore-1, err)
	}
	if err := checkLcoreIDs([]int{1, maxLcore}); err == nil || !strings.Contains(err.Error(), "lcore ids stop at") {
		t.Errorf("CPU %d: %v, want a refusal naming the lcore limit", maxLcore, err)
	}
	if _, err := parseServerConfig(backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{maxLcore + 2}, Iface: "veth0"},
		func() bool { return true }, func() bool { return true }); err != nil {
		t.Errorf("the shared parser refused CPU %d, which testpmd can use: %v", maxLcore+2, err)
	}
}
