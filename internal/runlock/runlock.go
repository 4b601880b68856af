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

// Path is the lock file's path, and whether it came from EnvPath.
func Path() (string, bool) {
	if p := os.Getenv(EnvPath); p != "" {
		return p, true
	}
	run := filepath.Join("/run", name)
	if _, err := os.Lstat(run); err == nil || unix.Access("/run", unix.W_OK) == nil {
		return run, false
	}
	return filepath.Join(os.TempDir(), name), false
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
type Lock struct{ f *os.File }

// Acquire takes the lock at path, or fails at once with a HeldError if
// another process holds it. The file is opened without following a link:
// in a shared temporary folder another user could plant one.
func Acquire(path string) (*Lock, error) {
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
	return &Lock{f: f}, nil
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

// Release drops the lock; the file stays for the next run.
func (l *Lock) Release() error {
	return l.f.Close()
}
