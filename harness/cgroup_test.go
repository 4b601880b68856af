package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

func TestParseCgroup2Mount(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo, want string
	}{
		{"hybrid", `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`, "/sys/fs/cgroup/unified"},
		{"unified, optional fields", `30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
`, "/sys/fs/cgroup"},
		{"escaped", `41 31 0:38 / /mnt/cg\0402 rw - cgroup2 none rw
`, "/mnt/cg 2"},
		{"v1 only", `32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCgroup2Mount(strings.NewReader(tc.mountinfo))
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// skipUnlessCgroups skips t where servers get no cgroup of their own.
func skipUnlessCgroups(t *testing.T) string {
	t.Helper()
	testenv.SkipUnlessRoot(t, "server cgroups")
	dir, err := ServerCgroups()
	if err != nil {
		t.Skipf("skipped: no server cgroups here: %v", err)
	}
	return dir
}

// deadPid is above pid_max: no process ever has it.
const deadPid = 4194305

// running says pid is a process that has not exited: a daemon killed with
// its group is re-parented to init, which may be slow to reap it.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// stopWithin fails t when s.stop takes longer than d.
func stopWithin(t *testing.T, s *server, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.stop() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("stop still blocked after %v", d)
		return nil
	}
}

// An external server that daemonises (setsid -f) keeps the server's output
// open from another session: stop must kill it with the group, not wait
// for it.
func TestStopKillsDaemonisedServer(t *testing.T) {
	skipUnlessCgroups(t)
	s, err := launch([]string{"sh", "-c", "setsid -f sleep 300"}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Cgroup()
	if dir == "" {
		t.Fatalf("server has no cgroup: %v", s.cgroupErr)
	}
	var daemon int
	for deadline := time.Now().Add(5 * time.Second); daemon == 0 && time.Now().Before(deadline); {
		for _, pid := range cgroupPids(dir) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "sleep" {
				daemon = pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if daemon == 0 {
		t.Fatalf("the daemon is not in the server's cgroup (pids %v)", cgroupPids(dir))
	}
	if err := stopWithin(t, s, 8*time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	if running(daemon) {
		syscall.Kill(daemon, syscall.SIGKILL)
		t.Errorf("daemon %d survived stop", daemon)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("cgroup %s left behind", dir)
	}
}

// noCgroups runs servers without a cgroup until t ends, as where there is
// no cgroup2 hierarchy or no root.
func noCgroups(t *testing.T) {
	saved := serverCgroups
	serverCgroups = func() (string, error) { return "", errors.New("forced off by the test") }
	t.Cleanup(func() { serverCgroups = saved })
}

// Without a cgroup, a server that daemonises is out of reach of its
// process group. stop must not wait on it: the daemon still holds the
// server's output, which is how it is found and killed.
func TestStopDaemonisedServerWithoutCgroup(t *testing.T) {
	noCgroups(t)
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	s, err := launch([]string{"sh", "-c", "setsid -f sh -c 'echo $$ > " + pidFile + "; exec sleep 300'"}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cgroup() != "" || s.cgroupErr == nil {
		t.Fatalf("server has a cgroup (%q) though they were turned off", s.Cgroup())
	}
	var daemon int
	for deadline := time.Now().Add(5 * time.Second); daemon == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if daemon == 0 {
		t.Fatal("the daemon did not start")
	}
	t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
	start := time.Now()
	err = stopWithin(t, s, 6*time.Second)
	t.Logf("stop took %v: %v", time.Since(start).Round(time.Millisecond), err)
	// Its output closes as it exits, a moment before it is a zombie.
	for deadline := time.Now().Add(time.Second); running(daemon) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if running(daemon) {
		t.Errorf("daemon %d survived stop", daemon)
	}
	if err != nil {
		t.Errorf("stop: %v", err)
	}
}

// The tester's case end to end: an external server that puts itself in the
// background, listening; the trial's stop returns and nothing survives.
// Without a cgroup the daemon is found by the output it holds.
func TestExternalBackgroundServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cgroup bool
	}{{"cgroup", true}, {"no cgroup", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cgroup {
				skipUnlessCgroups(t)
			} else {
				noCgroups(t)
			}
			script := listenScript(t, t.TempDir())
			s, err := startExternal(loopback{}, "setsid -f timeout 45 python3 "+script+" {host} {port}", backends.TCP, 0)
			if err != nil {
				t.Fatal(err)
			}
			dir := s.Cgroup()
			pids := s.outputHolders()
			if tc.cgroup {
				pids = cgroupPids(dir)
			}
			if len(pids) == 0 {
				t.Error("no process of the server found")
			}
			if err := stopWithin(t, s, 8*time.Second); err != nil {
				t.Errorf("stop: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // from closing its output to a zombie
			for _, pid := range pids {
				if running(pid) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("pid %d of the server survived stop", pid)
				}
			}
			if _, err := os.Stat(dir); tc.cgroup && err == nil {
				t.Errorf("cgroup %s left behind", dir)
			}
		})
	}
}

// A group whose run is dead is killed and removed by the sweep, with a
// process in it that ignores SIGTERM; a live run's group is left alone.
func TestSweepCgroups(t *testing.T) {
	parent := skipUnlessCgroups(t)
	dead := filepath.Join(parent, fmt.Sprintf("%d-1", deadPid))
	live := filepath.Join(parent, fmt.Sprintf("%d-1", os.Getppid()))
	for _, d := range []string{dead, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeCgroup(live, time.Second); removeCgroup(dead, time.Second) })
	fd, err := syscall.Open(dead, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `trap "" TERM; sleep 300`)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = cmd.Start()
	syscall.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	removed := sweepCgroups()
	if !strings.Contains(strings.Join(removed, "\n"), dead) {
		t.Errorf("sweep removed %q, want %s among them", removed, dead)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Error("the process in the dead run's group survived the sweep")
	}
	if _, err := os.Stat(dead); err == nil {
		t.Errorf("%s left", dead)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live run's group was removed: %v", err)
	}
}

// A killed run's namespaces are removed, and their veth pair (and any XDP
// program on it) with them; a live run's are left.
func TestSweepNetns(t *testing.T) {
	testenv.SkipUnlessRoot(t, "network namespaces")
	names := map[string]bool{ // name: removed by the sweep
		fmt.Sprintf("%ssrv-%d", nsPrefix, deadPid):      true,
		fmt.Sprintf("%scli-%d", nsPrefix, deadPid):      true,
		fmt.Sprintf("%ssrv-%d", nsPrefix, os.Getppid()): false,
	}
	for name := range names {
		if err := ip("netns", "add", name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ip("netns", "del", name) })
	}
	srv, cli := fmt.Sprintf("%ssrv-%d", nsPrefix, deadPid), fmt.Sprintf("%scli-%d", nsPrefix, deadPid)
	if err := ip("link", "add", "rbsweep0", "netns", srv, "type", "veth", "peer", "name", "rbsweep1", "netns", cli); err != nil {
		t.Fatal(err)
	}
	removed := strings.Join(SweepStale(), "\n")
	out, _ := exec.Command("ip", "netns", "list").Output()
	for name, gone := range names {
		listed := strings.Contains(string(out), name)
		if gone && (listed || !strings.Contains(removed, name)) {
			t.Errorf("%s: still listed %v, sweep said %q", name, listed, removed)
		}
		if !gone && !listed {
			t.Errorf("a live run's namespace %s was removed", name)
		}
	}
	// The veth pair died with its namespaces: nothing of it is left to
	// move back into the host's.
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); strings.Contains(string(out), "rbsweep") {
		t.Errorf("the killed run's veth survived: %s", out)
	}
}

func TestSweepMemif(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	names := map[string]bool{ // name: removed by the sweep
		fmt.Sprintf("%s%d-abc", memifDirPrefix, deadPid):      true,
		fmt.Sprintf("%s%d-abc", memifDirPrefix, os.Getpid()):  false,
		fmt.Sprintf("%s%d-abc", memifDirPrefix, os.Getppid()): false,
		memifDirPrefix + "12ab":                               false, // an older run's: its owner is unknown
	}
	for name := range names {
		if err := os.MkdirAll(filepath.Join(tmp, name, "sock"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sweepMemif()
	for name, gone := range names {
		_, err := os.Stat(filepath.Join(tmp, name))
		if gone != os.IsNotExist(err) {
			t.Errorf("%s: removed %v, want %v", name, os.IsNotExist(err), gone)
		}
	}
	// newMemif names its folder after this run.
	m, err := newMemif()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if want := fmt.Sprintf("%s%d-", memifDirPrefix, os.Getpid()); !strings.HasPrefix(filepath.Base(m.dir), want) {
		t.Errorf("memif folder %s, want it to start with %s", m.dir, want)
	}
}
