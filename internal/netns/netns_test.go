package netns

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newNetns makes a fresh network namespace on a parked thread and returns
// its path; the thread (and so the namespace) lives until the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	testenv.SkipUnlessRoot(t, "creating a network namespace")
	type made struct {
		path string
		err  error
	}
	madec := make(chan made, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			madec <- made{err: err}
			return
		}
		madec <- made{path: "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"}
		<-done
	}()
	m := <-madec
	if m.err != nil {
		t.Fatalf("unshare netns: %v", m.err)
	}
	t.Cleanup(func() { close(done) })
	return m.path
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
	// The new namespace's loopback is down, so a socket made there cannot
	// reach 127.0.0.1 while one made here can at least try.
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}})
	if !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("connect from the new netns: got %v, want ENETUNREACH", err)
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
