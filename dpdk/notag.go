//go:build !dpdk

package dpdk

import (
	"io"

	"ringbench/backends"
)

// built says the cgo binding is compiled in.
const built = false

// errNoTag is what every DPDK entry point answers in a build without the tag.
var errNoTag = &backends.NotSupportedError{
	Feature: "dpdk",
	Reason:  "built without the dpdk build tag: install libdpdk-dev, then make build",
}

func probeServer() error { return errNoTag }

func newServer(cfg backends.Config) (backends.Server, error) { return nil, errNoTag }

func generatorMain(req genRequest, stdin io.Reader, stdout io.Writer) error { return errNoTag }
