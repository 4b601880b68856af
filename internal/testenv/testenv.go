package testenv

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ringbench/backends"
)

// SkipUnlessRoot skips t when the test process is not root.
func SkipUnlessRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipped: %s needs root", what)
	}
}

// SkipIfUnsupported skips t when err says this machine lacks a feature
// (errors.Is(err, backends.ErrNotSupported)), and fails it on any other
// non-nil error.
func SkipIfUnsupported(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, backends.ErrNotSupported) {
		t.Skipf("skipped: %v", err)
	}
	t.Fatal(err)
}

// Main runs the package's tests, then fails the run if a file descriptor or
// a goroutine outlived them. Use it as: func TestMain(m *testing.M) { testenv.Main(m) }.
// cleanup runs after the tests, before the process exits.
func Main(m *testing.M, cleanup ...func()) {
	// The runtime opens its poller's epoll and eventfd with the first timer;
	// go test starts its -timeout timer only after TestMain begins, so start
	// one here, or those two descriptors would look leaked.
	time.AfterFunc(time.Hour, func() {}).Stop()
	before := TakeSnapshot(nil)
	code := m.Run()
	for _, f := range cleanup {
		f()
	}
	if code == 0 {
		if err := before.Leaks(time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "leak check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Snapshot is what the process held at one moment: its open file
// descriptors and goroutines.
type Snapshot struct {
	fds        map[string]string
	goroutines goleak.Option
	kept       func(target string) bool
}

// TakeSnapshot records the open fds and goroutines; kept (may be nil) names
// fd targets that are not leaks though they outlive what is checked.
func TakeSnapshot(kept func(target string) bool) Snapshot {
	return Snapshot{fds: openFDs(), goroutines: goleak.IgnoreCurrent(), kept: kept}
}

// Leaks waits up to d for the fds and goroutines made since the snapshot to
// go (closed descriptors and exiting goroutines can lag a moment), and says
// which did not.
func (s Snapshot) Leaks(d time.Duration) error {
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

func (s Snapshot) fdLeaks() error {
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
			fds[e.Name()] = target // the directory's own fd fails: closed by now
		}
	}
	return fds
}
