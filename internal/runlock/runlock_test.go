package runlock

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"ringbench/internal/testenv"
)

// holdEnv makes the test binary a process that holds the lock at its path
// until it is killed.
const holdEnv = "RUNLOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		if _, err := Acquire(path); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("held\n")
		select {}
	}
	testenv.Main(m)
}

func TestSecondAcquireRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second Acquire: %v, want a HeldError naming pid %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l.Release()
}

// A run killed outright leaves no stale lock: the kernel drops it with the
// process.
func TestLockEndsWithKilledHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "held\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("holder said %q: %v", line, err)
	}
	_, err = Acquire(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != cmd.Process.Pid {
		t.Errorf("Acquire while held: %v, want a HeldError naming pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}

// A link planted at the lock's path is not followed.
func TestLinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lock")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(path); err == nil {
		l.Release()
		t.Fatal("Acquire followed a link")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link's target now holds %q", b)
	}
}

func TestPathFromEnv(t *testing.T) {
	t.Setenv(EnvPath, "/x/y.lock")
	if p, env := Paths(); !slices.Equal(p, []string{"/x/y.lock"}) || !env {
		t.Errorf("Paths() = %q, %v", p, env)
	}
}

// A user's run and root's exclude each other: both take the one lock in
// /tmp whatever their $TMPDIR (root took only /run's, and a user only
// $TMPDIR's when /run's did not exist yet), and root also /run's.
func TestPathsShared(t *testing.T) {
	t.Setenv(EnvPath, "")
	t.Setenv("TMPDIR", t.TempDir())
	paths, env := Paths()
	if env || !slices.Contains(paths, "/tmp/ringbench.lock") {
		t.Errorf("Paths() = %q, %v; want /tmp/ringbench.lock among them", paths, env)
	}
	if os.Geteuid() == 0 && (len(paths) != 2 || paths[0] != "/run/ringbench.lock") {
		t.Errorf("root's Paths() = %q, want /run/ringbench.lock first", paths)
	}
}

// A lock over several files is all or nothing: one held elsewhere refuses
// it, and the ones it took are let go.
func TestAcquireAll(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	held, err := Acquire(b)
	if err != nil {
		t.Fatal(err)
	}
	var he *HeldError
	if _, err := Acquire(a, b); !errors.As(err, &he) || he.Path != b {
		t.Fatalf("Acquire(a, b) with b held: %v, want b's HeldError", err)
	}
	if l, err := Acquire(a); err != nil {
		t.Errorf("a after the refused Acquire(a, b): %v, want it free", err)
	} else {
		l.Release()
	}
	held.Release()
	l, err := Acquire(a, b)
	if err != nil {
		t.Fatalf("Acquire(a, b), both free: %v", err)
	}
	if _, err := Acquire(a); !errors.As(err, &he) {
		t.Errorf("a while Acquire(a, b) holds it: %v, want a HeldError", err)
	}
	l.Release()
}
