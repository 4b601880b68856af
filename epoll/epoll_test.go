package epoll_test

import (
	"testing"

	"ringbench/backends/backendtest"
	_ "ringbench/epoll"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConformance(t *testing.T) { backendtest.Run(t, "epoll") }

// burn is epoll with a spin per request: the same contract, with no spin
// and with one.
func TestConformanceBurn(t *testing.T) {
	for _, cycles := range []string{"0", "10000"} {
		t.Run("cycles="+cycles, func(t *testing.T) {
			backendtest.Run(t, "burn", backendtest.RunOptions{Options: map[string]string{"cycles": cycles}})
		})
	}
}

// The loop's raw epoll_wait arms no timer, and a GC gets through an idle
// loop (its tick).
func TestRawWait(t *testing.T) { backendtest.RawWait(t, "epoll", nil) }
