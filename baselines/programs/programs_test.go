package programs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/backends"
	"ringbench/backends/backendtest"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// build compiles the named baseline into the test's own folder, as the
// Makefile does into bin/, so the test checks this tree's C code and not
// whatever bin/ holds. It skips, with the reason, without gcc or (c-uring)
// liburing.
func build(t *testing.T, name string) {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("skipped: no gcc to build the C baselines")
	}
	args := []string{"-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", filepath.Join(dir, name),
		filepath.Join("..", name+".c"), filepath.Join("..", "serve.c")}
	if name == "c-uring" {
		if _, err := os.Stat("/usr/include/liburing.h"); err != nil {
			t.Skip("skipped: no liburing headers (Debian: liburing-dev) to build c-uring")
		}
		args = append(args, "-luring")
	}
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
}

// The conformance suite, against each baseline as a child process.
func TestConformance(t *testing.T) {
	dir = t.TempDir()
	t.Cleanup(func() { dir = "" })
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			build(t, p.name)
			backendtest.Run(t, p.name)
		})
	}
}

// A baseline that is not built is not supported, and says how to build it.
func TestProbeMissing(t *testing.T) {
	dir = t.TempDir()
	t.Cleanup(func() { dir = "" })
	for _, p := range programs {
		b, err := backends.Lookup(p.name)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Probe()
		if !errors.Is(err, backends.ErrNotSupported) || !strings.Contains(err.Error(), "make build") {
			t.Errorf("%s: Probe() = %v; want ErrNotSupported naming make build", p.name, err)
		}
		if b.BaselineOf == "" || b.Command == nil {
			t.Errorf("%s: registry entry lacks BaselineOf or Command", p.name)
		}
	}
}

// The command line carries every flag of `ringbench serve` the program
// reads, and refuses options.
func TestCommand(t *testing.T) {
	dir = "/opt/rb"
	t.Cleanup(func() { dir = "" })
	p := programs[0]
	for _, tc := range []struct {
		name string
		cfg  backends.Config
		want string
		err  bool
	}{
		{"pinned", backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "10.0.0.1", Port: 7, CPUs: []int{1, 3}, MsgSize: 64},
			"/opt/rb/c-epoll --proto tcp --service echo --host 10.0.0.1 --port 7 --msg-size 64 --max-msg 0 --cpus 1,3", false},
		{"unpinned", backends.Config{Proto: backends.UDP, Service: backends.Sink, MaxMsg: 100},
			"/opt/rb/c-epoll --proto udp --service sink --host  --port 0 --msg-size 0 --max-msg 100", false},
		{"options", backends.Config{Proto: backends.TCP, Service: backends.Echo, Options: map[string]string{"batch": "1"}}, "", true},
		{"bad host", backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "::1"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, err := p.command(tc.cfg)
			if (err != nil) != tc.err {
				t.Fatalf("command() error = %v, want error %v", err, tc.err)
			}
			if got := strings.Join(argv, " "); !tc.err && got != tc.want {
				t.Errorf("command() = %q\nwant        %q", got, tc.want)
			}
		})
	}
}
