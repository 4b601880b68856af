package harness

import (
	"fmt"
	"time"

	"ringbench/backends"
)

// MinDuration is the shortest measurement window a trial takes. Every
// meter is read at the window's two edges, and on a loaded machine a
// reading can take milliseconds: below 100 ms a window measures mostly
// its own edges (a 1 ns window reported ok with nothing in it).
const MinDuration = 100 * time.Millisecond

// MaxTrials caps the trials (and searches) one profile expands to: at a
// few seconds each, 10000 trials are already more than a day, and a
// matrix of millions took gigabytes only to list.
const MaxTrials = 10000

// Check reports the first thing wrong with t that can be known before it
// runs, in one line: its topology, backend and backend options, and its
// workload's limits (workloads.Spec.Validate). Whether this machine can
// run it (server cores, kernel features) is the trial's to find: it is
// skipped with the reason.
func (t Trial) Check() error {
	switch t.Topology {
	case Loopback, Veth, Memif, Hosts:
	default:
		return fmt.Errorf("unknown topology %q (known: %s, %s, %s, %s, auto)", t.Topology, Loopback, Veth, Memif, Hosts)
	}
	if t.Backend == "external" {
		if t.ServerCmd == "" {
			return fmt.Errorf("the external backend needs a server command")
		}
	} else {
		b, err := backends.Lookup(t.Backend)
		if err != nil {
			return err
		}
		if b.CheckOptions != nil {
			if err := b.CheckOptions(t.Options); err != nil {
				return fmt.Errorf("%s: %w", t.Backend, err)
			}
		}
	}
	if t.Duration < MinDuration {
		return fmt.Errorf("duration %v: want at least %v (a shorter window measures mostly the meters' own reads)", t.Duration, MinDuration)
	}
	return t.spec(nil).Validate()
}
