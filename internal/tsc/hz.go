package tsc

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	// The kernel's own calibration, as it logs it at boot.
	refinedTSC  = regexp.MustCompile(`tsc: Refined TSC clocksource calibration: ([0-9.]+) MHz`)
	detectedTSC = regexp.MustCompile(`tsc: Detected ([0-9.]+) MHz`)
)

// Hz reads the TSC frequency from what the kernel measured: its boot log's
// calibration first, else /proc/cpuinfo's "cpu MHz", which on a
// constant-TSC machine is the TSC rate. It returns 0 and "unknown" when
// neither says, and otherwise names its source.
func Hz() (float64, string) {
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

// ErrUnknownHz says the TSC frequency could not be found, so a spin on the
// monotonic clock cannot be converted to cycles.
var ErrUnknownHz = errors.New("TSC frequency unknown: neither the kernel log nor /proc/cpuinfo gives it")

// spinClock spins on the monotonic clock for n cycles at hz and returns
// the cycles that passed, as hz converts them: the portable Spin.
func spinClock(n uint64, hz float64) uint64 {
	d := time.Duration(float64(n) / hz * 1e9)
	start := time.Now()
	for {
		if e := time.Since(start); e >= d {
			return uint64(float64(e) * hz / 1e9)
		}
	}
}
