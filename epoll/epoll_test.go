package epoll_test

import (
	"testing"

	"ringbench/backends/backendtest"
	_ "ringbench/epoll"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConformance(t *testing.T) { backendtest.Run(t, "epoll") }
