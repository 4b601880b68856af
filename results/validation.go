package results

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// ValidationFile is where `ringbench validate` leaves its checks.
const ValidationFile = "validate.json"

// Validation is the outcome of `ringbench validate`: each meter checked
// against a ground truth on this machine, before any figure is published.
type Validation struct {
	Time   time.Time `json:"time"`
	Env    Env       `json:"env"`
	Checks []Check   `json:"checks"`
}

// Check is one cross-check: what was compared, the value found, the limit
// it must meet and whether it did. A check that could not run here is
// Skipped with its reason in Detail; it neither passes nor fails. An Info
// row is a figure reported beside the checks, with no limit to meet:
// neither pass nor fail, and never shown as either.
type Check struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Display string  `json:"display"` // Value as the table shows it
	Limit   string  `json:"limit"`
	Pass    bool    `json:"pass"`
	Skipped bool    `json:"skipped,omitempty"`
	Info    bool    `json:"info,omitempty"`
	Detail  string  `json:"detail,omitempty"`
}

// Passed says whether no check failed.
func (v *Validation) Passed() bool {
	for _, c := range v.Checks {
		if c.Failed() {
			return false
		}
	}
	return true
}

// Failed lists the names of the checks that failed.
func (v *Validation) Failed() []string {
	var out []string
	for _, c := range v.Checks {
		if c.Failed() {
			out = append(out, c.Name)
		}
	}
	return out
}

// Save writes v as dir's validate.json, replacing it whole.
func (v *Validation) Save(dir string) error { return saveJSON(dir, ValidationFile, "validation", v) }

// LoadValidation reads dir's validate.json; a folder without one gives nil.
func LoadValidation(dir string) (*Validation, error) {
	var v Validation
	if ok, err := loadJSON(dir, ValidationFile, "validation", &v); !ok {
		return nil, err
	}
	return &v, nil
}

// Failed says whether c is a check that ran and missed its limit.
func (c Check) Failed() bool { return !c.Pass && !c.Skipped && !c.Info }

// Verdict is the word the tables show for c.
func (c Check) Verdict() string {
	switch {
	case c.Skipped:
		return "skipped"
	case c.Info:
		return "info"
	case c.Pass:
		return "pass"
	}
	return "FAIL"
}

// BusyBelowCPULimit: a server core's busy time may read at most 1% below
// the server's own CPU time over the same window; any lower and one of
// the two meters is wrong (the core ran the process at least that long).
const BusyBelowCPULimit = 0.01

// procStatSlack is what a busy time read from /proc/stat (without root:
// no nanosecond idle clock) may be off by, as a share of the record's CPU
// time: its idle and iowait columns count 10 ms ticks (USER_HZ), and each
// column's difference over a window is within a tick of the truth on every
// server core. A light trial's 1% is less than that (20 ms of 200 ms), and
// failed a sound run.
func procStatSlack(r Record) float64 {
	if r.BusySource != "proc_stat" || r.CPUNs <= 0 {
		return 0
	}
	const tickNs = 10e6
	return 2 * tickNs * float64(max(len(r.ServerCPUs), 1)) / r.CPUNs
}

// TrialChecks are what every measured trial of a run must hold, checked
// on the run's own records (bench's, and validate's trials): core busy not
// below the server's CPU time, and a cost window with no syscall
// tracepoint and no sampler on (window_traced, window_sampled). Each
// failing check names its trials. With no measured trial there is
// nothing to check: nil.
func TrialChecks(recs []Record) []Check {
	busy := Check{Name: "core busy ≥ process CPU in every trial", Limit: fmt.Sprintf("busy ≥ CPU − %.0f%%", 100*BusyBelowCPULimit)}
	traced := Check{Name: "cost windows without the syscall tracepoint", Limit: "none traced"}
	sampled := Check{Name: "cost windows without the sampler", Limit: "none sampled"}
	var n, nBusy int
	worst := math.Inf(1)
	var below, tr, sa []string
	for _, r := range recs {
		if r.Status != StatusOK {
			continue
		}
		n++
		name := fmt.Sprintf("%s r%d", r.Label(), r.Repeat)
		if r.CPUNs > 0 && r.BusyNs > 0 {
			nBusy++
			d := r.BusyNs/r.CPUNs - 1
			worst = min(worst, d)
			if d < -BusyBelowCPULimit-procStatSlack(r) {
				below = append(below, fmt.Sprintf("%s %+.1f%%", name, 100*d))
			}
		}
		if r.WindowTraced {
			tr = append(tr, name)
		}
		if r.WindowSampled {
			sa = append(sa, name)
		}
	}
	if n == 0 {
		return nil
	}
	busy.Pass = nBusy > 0 && len(below) == 0
	busy.Detail = fmt.Sprintf("%d trials", nBusy)
	if nBusy == 0 {
		busy.Skipped, busy.Detail = true, "no trial read both core busy and process CPU"
	}
	if nBusy > 0 {
		busy.Value, busy.Display = worst, fmt.Sprintf("worst %+.1f%%", 100*worst)
	}
	if len(below) > 0 {
		busy.Detail += "; below: " + strings.Join(below, ", ")
	}
	for _, x := range []struct {
		c   *Check
		bad []string
	}{{&traced, tr}, {&sampled, sa}} {
		x.c.Value = float64(len(x.bad))
		x.c.Display = fmt.Sprintf("%d of %d", len(x.bad), n)
		x.c.Pass = len(x.bad) == 0
		if len(x.bad) > 0 {
			x.c.Detail = strings.Join(x.bad, ", ")
		}
	}
	return []Check{busy, traced, sampled}
}
