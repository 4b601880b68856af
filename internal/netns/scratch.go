package netns

import (
	"fmt"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Scratch makes a fresh, unnamed network namespace with its loopback up,
// for tests and probes that need an isolated network without naming one
// under /run/netns. A parked thread holds the namespace until release; its
// path, usable with InNetns, is valid until then. It needs CAP_SYS_ADMIN.
func Scratch() (path string, release func(), err error) {
	type made struct {
		path string
		err  error
	}
	madec := make(chan made, 1)
	done := make(chan struct{})
	go func() {
		// The thread leaves the process's namespace, so it must die with
		// this goroutine: no UnlockOSThread.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			madec <- made{err: fmt.Errorf("unshare netns: %w", err)}
			return
		}
		if err := loopbackUp(); err != nil {
			madec <- made{err: err}
			return
		}
		madec <- made{path: "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"}
		<-done
	}()
	m := <-madec
	if m.err != nil {
		return "", nil, m.err
	}
	return m.path, func() { close(done) }, nil
}

// loopbackUp sets IFF_UP on lo in the calling thread's namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("create socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("name lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("read lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}
