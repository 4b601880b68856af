package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Every server process starts inside a cgroup2 group of its own,
// <cgroup2 mount>/ringbench/<harness pid>-<n>, placed there by clone3
// (CLONE_INTO_CGROUP) before its first instruction. The group holds
// everything the server ever forks, daemons that leave its process group
// and session included, so stopping a server is killing its group
// (cgroup.kill), and the group's cpu.stat is the CPU of the whole server.
// The harness pid in the name lets a later run tell a killed run's groups
// from a live run's (see SweepStale).

// cgroupParent is the folder of ringbench's groups in the cgroup2
// hierarchy.
const cgroupParent = "ringbench"

// serverCgroups is where server groups are made, or why they cannot be:
// found once per process.
var serverCgroups = sync.OnceValues(func() (string, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(mount, cgroupParent)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	return dir, nil
})

// ServerCgroups returns the folder server groups are made in, or why
// servers run without a group of their own (then a server's CPU is read per
// task and a daemonised descendant can outlive its trial).
func ServerCgroups() (string, error) { return serverCgroups() }

var cgroupSeq atomic.Int64

// newServerCgroup makes a fresh group for one server and opens it for
// SysProcAttr.CgroupFD.
func newServerCgroup() (dir string, fd int, err error) {
	parent, err := serverCgroups()
	if err != nil {
		return "", -1, err
	}
	dir = filepath.Join(parent, fmt.Sprintf("%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", -1, fmt.Errorf("make server cgroup: %w", err)
	}
	// cgroup.kill is in the kernel since 5.14; without it a group cannot
	// be stopped whole, so it is not worth having.
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		syscall.Rmdir(dir)
		return "", -1, fmt.Errorf("server cgroup: no cgroup.kill (kernel 5.14): %w", err)
	}
	fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		syscall.Rmdir(dir)
		return "", -1, fmt.Errorf("open server cgroup: %w", err)
	}
	return dir, fd, nil
}

// cgroup2Mount finds the cgroup2 hierarchy's mount point in
// /proc/self/mountinfo: /sys/fs/cgroup on a unified system,
// /sys/fs/cgroup/unified beside the v1 controllers on a hybrid one.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup2: %w", err)
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

// parseCgroup2Mount returns the mount point of the first cgroup2 line of a
// mountinfo file: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - TYPE
// SOURCE SUPEROPTS", the mount point with spaces and the like \ooo-escaped.
func parseCgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(f) || f[sep+1] != "cgroup2" {
			continue
		}
		return unescapeMountinfo(f[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errors.New("no cgroup2 hierarchy mounted")
}

func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupPopulated reads "populated" from a group's cgroup.events: whether
// any process is left in it or below it.
func cgroupPopulated(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return v != "0", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events has no populated line", dir)
}

// cgroupPids lists the processes in a group.
func cgroupPids(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroup kills whatever is left in a group, waits up to timeout for
// it to empty, and removes it. It never waits longer: a process that does
// not die of SIGKILL (stuck in the kernel) is reported, not waited for.
func removeCgroup(dir string, timeout time.Duration) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone already
		}
		return fmt.Errorf("kill server cgroup: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		populated, err := cgroupPopulated(dir)
		if err == nil && !populated {
			err = syscall.Rmdir(dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				return nil
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("still populated after %v (pids %v)", timeout, cgroupPids(dir))
			}
			return fmt.Errorf("remove server cgroup %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sweepCgroups kills and removes the server groups of ringbench runs that
// are no longer alive (killed, so they never stopped their servers).
func sweepCgroups() []string {
	parent, err := serverCgroups()
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		owner, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(owner)
		if !ok || err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if removeCgroup(dir, 2*time.Second) == nil {
			removed = append(removed, "server cgroup "+dir)
		}
	}
	return removed
}
