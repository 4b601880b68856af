package main

import (
	"errors"
	"flag"

	"ringbench/harness"
)

// hostsFlags place the two sides of --topology hosts.
type hostsFlags struct {
	c harness.HostsConfig
}

func (f *hostsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.c.ClientHost, "client-host", "", "topology hosts: the generator's host, an ssh destination [user@]HOST")
	fs.StringVar(&f.c.ServerAddr, "server-addr", "", "topology hosts: this host's address the generator connects to (the server listens on it)")
	fs.StringVar(&f.c.ClientCPUs, "client-cpus", "", "topology hosts: the generator's CPUs on its host, e.g. 0-3 or 0,2 (default: every CPU it may use there)")
	fs.StringVar(&f.c.SSH, "ssh", "ssh", "topology hosts: the ssh command line (words split as a shell would, with '…', \"…\" and \\; no expansions); -T and the destination are added")
	fs.StringVar(&f.c.RemoteDir, "remote-dir", harness.DefaultRemoteDir, "topology hosts: the folder on the client host that keeps ringbench's copy of itself")
}

// given says whether any of the flags was set.
func (f *hostsFlags) given(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "client-host", "server-addr", "client-cpus", "ssh", "remote-dir":
			set = true
		}
	})
	return set
}

// config is the hosts settings for a run whose trials use topologies:
// base (a profile's, may be nil) with the flags given on top, checked.
// It is nil when no trial is on the hosts topology, and the flags are an
// error then.
func (f *hostsFlags) config(fs *flag.FlagSet, base *harness.HostsConfig, topologies []string) (*harness.HostsConfig, error) {
	onHosts := false
	for _, t := range topologies {
		onHosts = onHosts || t == harness.Hosts
	}
	if !onHosts {
		if f.given(fs) {
			return nil, errors.New("--client-host, --server-addr, --client-cpus, --ssh and --remote-dir apply to --topology hosts only")
		}
		return nil, nil
	}
	c := harness.HostsConfig{}
	if base != nil {
		c = *base
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "client-host":
			c.ClientHost = f.c.ClientHost
		case "server-addr":
			c.ServerAddr = f.c.ServerAddr
		case "client-cpus":
			c.ClientCPUs = f.c.ClientCPUs
		case "ssh":
			c.SSH = f.c.SSH
		case "remote-dir":
			c.RemoteDir = f.c.RemoteDir
		}
	})
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}
