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
