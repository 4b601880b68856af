package runlock

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// EnvPath names the variable that overrides the lock's path. It is meant
// for tests, which run trials in processes of their own beside real runs;
// the commands say so when it is set, so it is no silent way round the
// lock.
const EnvPath = "RINGBENCH_LOCK"

const name = "ringbench.lock"

// Paths are the lock files a run takes, every one of them, and whether
// they came from EnvPath. /tmp/ringbench.lock is one every user reaches (a
// fixed path: os.TempDir follows $TMPDIR, which differs between users), so
// that a user's run and root's exclude each other whichever came first;
// /run/ringbench.lock, where it exists or root can make it, keeps root's
// runs apart even when another user has planted a link at the /tmp one.
func Paths() ([]string, bool) {
	if p := os.Getenv(EnvPath); p != "" {
		return []string{p}, true
	}
	var paths []string
	run := filepath.Join("/run", name)
	if _, err := os.Lstat(run); err == nil || unix.Access("/run", unix.W_OK) == nil {
		paths = append(paths, run)
	}
	return append(paths, filepath.Join("/tmp", name)), false
}

// HeldError says another process holds the lock.
type HeldError struct {
	Path string
	PID  int // 0 when it did not write one
}

func (e *HeldError) Error() string {
	who := "another ringbench run"
	if e.PID > 0 {
		who += fmt.Sprintf(" (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s holds %s: two runs would pin the same CPUs and measure each other; wait for it to end", who, e.Path)
}

// Lock is a held run lock.
type Lock struct{ fs []*os.File }

// Acquire takes the lock at every path, in order, or fails at once with a
// HeldError if another process holds one of them (and holds none itself).
// A file is opened without following a link: in a shared temporary folder
// another user could plant one.
func Acquire(paths ...string) (*Lock, error) {
	l := &Lock{}
	for _, path := range paths {
		f, err := acquire(path)
		if err != nil {
			l.Release()
			return nil, err
		}
		l.fs = append(l.fs, f)
	}
	return l, nil
}

func acquire(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
	writable := err == nil
	if errors.Is(err, fs.ErrPermission) {
		// Another user's lock file: a read-only descriptor locks it too.
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open run lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if writable {
		// Best effort: the pid only names the holder in a HeldError.
		if f.Truncate(0) == nil {
			f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
	}
	return f, nil
}

// readPID reads the holder's pid, 0 if there is none.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid < 1 {
		return 0
	}
	return pid
}

// Release drops the lock; the files stay for the next run.
func (l *Lock) Release() error {
	var errs []error
	for _, f := range l.fs {
		errs = append(errs, f.Close())
	}
	l.fs = nil
	return errors.Join(errs...)
}
