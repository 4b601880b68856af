package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"ringbench/internal/outdir"
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
// Skipped with its reason in Detail; it neither passes nor fails.
type Check struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Display string  `json:"display"` // Value as the table shows it
	Limit   string  `json:"limit"`
	Pass    bool    `json:"pass"`
	Skipped bool    `json:"skipped,omitempty"`
	Detail  string  `json:"detail,omitempty"`
}

// Passed says whether no check failed.
func (v *Validation) Passed() bool {
	for _, c := range v.Checks {
		if !c.Pass && !c.Skipped {
			return false
		}
	}
	return true
}

// Failed lists the names of the checks that failed.
func (v *Validation) Failed() []string {
	var out []string
	for _, c := range v.Checks {
		if !c.Pass && !c.Skipped {
			out = append(out, c.Name)
		}
	}
	return out
}

// Save writes v as dir's validate.json, replacing it whole.
func (v *Validation) Save(dir string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode validation: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create results folder: %w", err)
	}
	if err := outdir.WriteBytes(filepath.Join(dir, ValidationFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write validation: %w", err)
	}
	return nil
}

// LoadValidation reads dir's validate.json; a folder without one gives nil.
func LoadValidation(dir string) (*Validation, error) {
	b, err := os.ReadFile(filepath.Join(dir, ValidationFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read validation: %w", err)
	}
	var v Validation
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode validation: %w", err)
	}
	return &v, nil
}
