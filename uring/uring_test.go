package uring

import (
	"testing"

	"ringbench/backends/backendtest"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConformance(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { backendtest.Run(t, v.name) })
	}
}

// The loop's raw enter arms no timer, and a GC gets through an idle loop
// (its multishot-timeout tick): the default, and uring-basic, which waits
// with no min-wait and no registered ring fd.
func TestRawWait(t *testing.T)      { backendtest.RawWait(t, "uring", nil) }
func TestRawWaitBasic(t *testing.T) { backendtest.RawWait(t, "uring-basic", nil) }
