package plots

import (
	"testing"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
