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
func Main(m *testing.M) {
	// The runtime opens its poller's epoll and eventfd with the first timer;
	// go test starts its -timeout timer only after TestMain begins, so start
	// one here, or those two descriptors would look leaked.
	time.AfterFunc(time.Hour, func() {}).Stop()
	before := openFDs()
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(before); err != nil {
			fmt.Fprintln(os.Stderr, "leak check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func checkLeaks(before map[string]string) error {
	var err error
	// Closed descriptors and exiting goroutines can lag a test by a moment.
	for i := 0; i < 50; i++ {
		err = goleak.Find()
		if err == nil {
			err = fdDiff(before, openFDs())
		}
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func fdDiff(before, after map[string]string) error {
	var leaked []string
	for fd, target := range after {
		if before[fd] != target {
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
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own fd, closed by now
		}
		fds[e.Name()] = target
	}
	return fds
}
