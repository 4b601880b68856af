package harness

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

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
	e.TSCHz, e.TSCSource = tscHz()
	e.GoVersion = runtime.Version()
	e.GitRev = gitRev()
	e.Hostname, _ = os.Hostname()
	return e
}

var (
	// The kernel's own calibration, as it logs it at boot.
	refinedTSC  = regexp.MustCompile(`tsc: Refined TSC clocksource calibration: ([0-9.]+) MHz`)
	detectedTSC = regexp.MustCompile(`tsc: Detected ([0-9.]+) MHz`)
)

// tscHz reads the TSC frequency from what the kernel measured: its boot
// log's calibration first, else /proc/cpuinfo's "cpu MHz", which on a
// constant-TSC machine is the TSC rate. It is never a constant of ours.
func tscHz() (float64, string) {
	if out, err := exec.Command("dmesg").Output(); err == nil {
		for _, re := range []*regexp.Regexp{refinedTSC, detectedTSC} {
			if m := re.FindSubmatch(out); m != nil {
				if mhz, err := strconv.ParseFloat(string(m[1]), 64); err == nil && mhz > 0 {
					return mhz * 1e6, "kernel log: " + strings.TrimSpace(string(m[0]))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "cpu MHz") {
				v := strings.TrimSpace(line[strings.IndexByte(line, ':')+1:])
				if mhz, err := strconv.ParseFloat(v, 64); err == nil && mhz > 0 {
					return mhz * 1e6, "/proc/cpuinfo cpu MHz"
				}
			}
		}
	}
	return 0, "unknown"
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
