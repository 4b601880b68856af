package results

import "time"

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
