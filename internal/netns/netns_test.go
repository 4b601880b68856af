package netns

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newNetns(t *testing.T) string {
	t.Helper()
	testenv.SkipUnlessRoot(t, "creating a network namespace")
	path, release, err := Scratch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return path
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestInNetnsEntersNamespace(t *testing.T) {
	path := newNetns(t)
	want := nsInode(t, path)
	mine := nsInode(t, "/proc/thread-self/ns/net")
	if want == mine {
		t.Fatal("the new namespace is the caller's")
	}
	var got uint64
	var fd int
	err := InNetns(path, func() error {
		got = nsInode(t, "/proc/thread-self/ns/net")
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatalf("InNetns: %v", err)
	}
	defer unix.Close(fd)
	if got != want {
		t.Errorf("fn ran in netns inode %d, want %d", got, want)
	}
	// A listener made in the namespace is reachable from a socket made
	// there, even when used from this thread.
	var ln int
	err = InNetns(path, func() error {
		var err error
		ln, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		return unix.Listen(ln, 1)
	})
	if err != nil {
		t.Fatalf("listen in netns: %v", err)
	}
	defer unix.Close(ln)
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		t.Errorf("connect inside the netns: %v", err)
	}
	// The same address from this namespace finds nothing listening.
	here, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(here)
	if err := unix.Connect(here, sa); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("connect from outside the netns: %v, want ECONNREFUSED", err)
	}
}

func TestInNetnsEmptyPathRunsHere(t *testing.T) {
	ran := false
	if err := InNetns("", func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("InNetns(\"\"): ran=%v err=%v", ran, err)
	}
}

func TestInNetnsErrors(t *testing.T) {
	missing := "/run/netns/ringbench-no-such-netns"
	err := InNetns(missing, func() error { t.Error("fn ran"); return nil })
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing netns: got %v", err)
	}
	sentinel := errors.New("from fn")
	path := newNetns(t)
	if err := InNetns(path, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("fn's error: got %v", err)
	}
}
