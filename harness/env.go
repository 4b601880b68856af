package harness

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"ringbench/internal/tsc"
	"ringbench/results"
)

// Environment describes this machine for every record.
func Environment() results.Env {
	var e results.Env
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	e.CPUs = runtime.NumCPU()
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if e.CPUModel == "" && strings.HasPrefix(line, "model name") {
				e.CPUModel = strings.TrimSpace(line[strings.IndexByte(line, ':')+1:])
			}
			if strings.HasPrefix(line, "flags") && strings.Contains(line, " hypervisor") {
				e.Virtualized = true
			}
		}
		f.Close()
	}
	e.TSCHz, e.TSCSource = tsc.Hz()
	e.GoVersion = runtime.Version()
	e.GitRev = gitRev()
	e.Hostname, _ = os.Hostname()
	return e
}

// gitRev is the revision the binary was built from: the build's VCS stamp,
// else the Makefile's -X flag, else "unknown".
var buildRev string

func gitRev() string {
	if buildRev != "" {
		return buildRev
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
