package dpdk

import (
	"errors"

	"ringbench/backends"
)

var errTestpmdPending = &backends.NotSupportedError{Feature: "dpdk-testpmd", Reason: "not wired yet"}

func probeTestpmd() error { return errors.Join(errTestpmdPending) }

func newTestpmd(cfg backends.Config) (backends.Server, error) { return nil, errTestpmdPending }
