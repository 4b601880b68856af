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
	})
}
