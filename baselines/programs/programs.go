package programs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"ringbench/backends"
)

// program is one C baseline. dataPath are the syscalls its own count
// counts (see the l->c.syscalls++ beside each call in its source).
type program struct {
	name, of, summary string
	dataPath          []string
}

var programs = []program{
	{"c-epoll", "epoll", "C baseline of the epoll path: the epoll backend's design (edge-triggered, a read and a write per echo, recvmmsg/sendmmsg batches) without Go",
		// glibc's epoll_wait is the epoll_wait syscall where the
		// architecture has one (amd64), else epoll_pwait (arm64).
		[]string{"epoll_wait", "epoll_pwait", "recvmmsg", "sendmmsg", "read", "write", "accept4", "setsockopt", "epoll_ctl", "close"}},
	{"c-uring", "uring", "C baseline of the io_uring path (liburing): the uring backend's design (multishot accept into direct fds, multishot recv into a buffer ring, send from the received buffer, one min-wait enter per batch) without Go",
		[]string{"io_uring_enter"}},
}

func init() {
	for _, p := range programs {
		backends.Register(backends.Backend{
			Name:       p.name,
			Family:     p.name,
			Summary:    p.summary,
			Protos:     []backends.Proto{backends.TCP, backends.UDP},
			Services:   []backends.Service{backends.Echo, backends.Sink},
			Probe:      p.probe,
			Command:    p.command,
			BaselineOf: p.of,

			CheckOptions:     p.checkOptions,
			DataPathSyscalls: p.dataPath,
			New: func(cfg backends.Config) (backends.Server, error) {
				argv, err := p.command(cfg)
				if err != nil {
					return nil, err
				}
				return Start(argv)
			},
		})
	}
}

// EnvDir names the folder the baselines are looked for in; by default the
// folder of the running executable (bin/, where make builds them).
const EnvDir = "RINGBENCH_BASELINES"

// dir overrides EnvDir and the executable's folder (tests).
var dir string

// path returns where the program should be.
func (p program) path() (string, error) {
	d := dir
	if d == "" {
		d = os.Getenv(EnvDir)
	}
	if d == "" {
		self, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find own executable: %w", err)
		}
		d = filepath.Dir(self)
	}
	return filepath.Join(d, p.name), nil
}

// probe reports the program missing as not supported, with the fix.
func (p program) probe() error {
	path, err := p.path()
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		why := "run make build"
		if p.name == "c-uring" {
			why += " (with liburing-dev installed)"
		}
		return &backends.NotSupportedError{Feature: p.name + " baseline", Reason: path + " is not built: " + why}
	}
	return nil
}

// checkOptions refuses every option: the programs take none.
func (p program) checkOptions(opts map[string]string) error {
	if len(opts) > 0 {
		return fmt.Errorf("check config: %s takes no options, got %d", p.name, len(opts))
	}
	return nil
}

// command is the program's command line: the flags of `ringbench serve`.
func (p program) command(cfg backends.Config) ([]string, error) {
	if err := p.checkOptions(cfg.Options); err != nil {
		return nil, err
	}
	if _, err := cfg.Check(); err != nil {
		return nil, err
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	argv := []string{path, "--proto", string(cfg.Proto), "--service", string(cfg.Service),
		"--host", cfg.Host, "--port", strconv.Itoa(cfg.Port),
		"--msg-size", strconv.Itoa(cfg.MsgSize), "--max-msg", strconv.Itoa(cfg.MaxMsg)}
	if len(cfg.CPUs) > 0 {
		cpus := ""
		for i, c := range cfg.CPUs {
			if i > 0 {
				cpus += ","
			}
			cpus += strconv.Itoa(c)
		}
		argv = append(argv, "--cpus", cpus)
	}
	return argv, nil
}
