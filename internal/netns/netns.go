package netns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNetns runs fn on a thread inside the network namespace at path and
// returns fn's error. An empty path runs fn on the calling goroutine, in the
// caller's namespace.
func InNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the thread's namespace no longer matches the
		// process's, so it must die with this goroutine.
		runtime.LockOSThread()
		errc <- enter(path, fn)
	}()
	return <-errc
}

func enter(path string, fn func() error) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	return fn()
}
