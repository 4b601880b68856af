package dpdk

import "ringbench/backends"

func init() {
	backends.Register(backends.Backend{
		Name:      "dpdk",
		Family:    "dpdk",
		Variant:   "default",
		Summary:   "DPDK poll-mode UDP reflector: owns its port, no syscall on its data path",
		Protos:    []backends.Proto{backends.UDP},
		Services:  []backends.Service{backends.Echo, backends.Sink, backends.Source},
		NotServed: map[backends.Proto]string{backends.TCP: "no kernel TCP stack"},
		Probe:     probeServer,
		New:       newServer,

		CheckOptions: checkOptions,
	})
	backends.Register(backends.Backend{
		Name:      "dpdk-testpmd",
		Family:    "dpdk",
		Variant:   "testpmd",
		Summary:   "Debian's dpdk-testpmd forwarding in 5tswap mode, as a reference",
		Protos:    []backends.Proto{backends.UDP},
		Services:  []backends.Service{backends.Echo},
		NotServed: map[backends.Proto]string{backends.TCP: "no kernel TCP stack"},
		Probe:     probeTestpmd,
		New:       newTestpmd,

		CheckOptions: checkOptions,
	})
}

// checkOptions is the registry's CheckOptions: parseServerConfig itself, on
// a stand-in for what the harness adds when the trial runs (one core, and
// an interface when the options name no port), so the rules stay the
// parser's. Whether AF_XDP works here is assumed, so an option of that port
// is not refused before the trial can say whether it has one.
func checkOptions(opts map[string]string) error {
	cfg := backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0}, Options: opts}
	if opts[OptVdev] == "" && opts[OptPCI] == "" && opts[OptMemifSocket] == "" {
		cfg.Iface = "veth0"
	}
	_, err := parseServerConfig(cfg, func() bool { return true }, func() bool { return true })
	return err
}
