package backendtest

import (
	"fmt"
	"os"
	"sort"
	"time"

	"go.uber.org/goleak"
)

// snapshot is what the process held before a server started. testenv.Main
// checks the package as a whole; the suite checks each server, so a leak is
// pinned to the case that made it.
type snapshot struct {
	fds        map[string]string
	goroutines goleak.Option
	kept       func(target string) bool
}

// takeSnapshot records the open fds and goroutines; kept (may be nil)
// names fds that are not leaks though they outlive a server.
func takeSnapshot(kept func(target string) bool) snapshot {
	return snapshot{fds: openFDs(), goroutines: goleak.IgnoreCurrent(), kept: kept}
}

// leaks waits up to d for the fds and goroutines made since the snapshot to
// go, and says which did not.
func (s snapshot) leaks(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := s.fdLeaks()
		if err == nil {
			err = goleak.Find(s.goroutines)
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s snapshot) fdLeaks() error {
	var leaked []string
	for fd, target := range openFDs() {
		if s.fds[fd] != target && (s.kept == nil || !s.kept(target)) {
			leaked = append(leaked, fd+" -> "+target)
		}
	}
	if len(leaked) == 0 {
		return nil
	}
	sort.Strings(leaked)
	return fmt.Errorf("%d file descriptors leaked: %v", len(leaked), leaked)
}

func openFDs() map[string]string {
	fds := map[string]string{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fds
	}
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}
