package plots

import (
	"fmt"
	"strings"

	"ringbench/results"
)

// validationNotice is the report's first block, so that no reader meets a
// figure before knowing whether the meters behind it were checked: a
// warning when a check failed, a note when there was no check or it was
// made on another machine, a line when every check passed or was skipped.
func (r *run) validationNotice() block {
	v := r.validation
	if v == nil || v.Passed() {
		if failed := r.failedTrialChecks(); len(failed) > 0 {
			return callout{warning, "This run's trials FAILED a check: " + strings.Join(failed, "; ") +
				". The figures below are not trustworthy; see Meter validation."}
		}
	}
	switch {
	case v == nil:
		return callout{note, "The meters were not validated for this run: this folder has no " + results.ValidationFile +
			" (`ringbench validate` writes it). Nothing below has been checked against a ground truth on this machine."}
	case !v.Passed():
		return callout{warning, "Meter validation FAILED on this machine: " + strings.Join(v.Failed(), ", ") +
			". The figures below are not trustworthy until these checks pass; see Meter validation."}
	case len(v.Checks) == 0:
		return callout{note, "The meters were not validated for this run: " + results.ValidationFile + " holds no check."}
	}
	if other := r.otherMachine(); other != "" {
		return callout{note, "Meter validation passed, but " + other + ": it does not vouch for these figures."}
	}
	passed, skipped := 0, 0
	for _, c := range v.Checks {
		switch {
		case c.Skipped:
			skipped++
		case !c.Info:
			passed++
		}
	}
	s := fmt.Sprintf("Meter validation passed on this machine: %s passed", plural(passed, "check"))
	if skipped > 0 {
		s += fmt.Sprintf(", %d skipped (they could not run here)", skipped)
	}
	return paragraph(s + "; see Meter validation.")
}

// failedTrialChecks names each failed check of this run's trials, with
// the trials it names.
func (r *run) failedTrialChecks() []string {
	var out []string
	for _, c := range r.trialChecks {
		if c.Failed() {
			out = append(out, c.Name+" ("+c.Detail+")")
		}
	}
	return out
}

// otherMachine says how the validation's machine differs from the trials'
// (host or kernel), or "" when it is the same or either is unknown.
func (r *run) otherMachine() string {
	ve, te := r.validation.Env, r.env
	var diff []string
	if ve.Hostname != "" && te.Hostname != "" && ve.Hostname != te.Hostname {
		diff = append(diff, fmt.Sprintf("host %s, not %s", ve.Hostname, te.Hostname))
	}
	if ve.Kernel != "" && te.Kernel != "" && ve.Kernel != te.Kernel {
		diff = append(diff, fmt.Sprintf("kernel %s, not %s", ve.Kernel, te.Kernel))
	}
	if len(diff) == 0 {
		return ""
	}
	return "on another machine than these trials' (" + strings.Join(diff, "; ") + ")"
}

// validationSection lists every check of validate.json: what was compared,
// the value found, the limit it had to meet and the verdict.
func (r *run) validationSection(doc *document) {
	doc.add(heading{2, "Meter validation"})
	defer func() {
		if len(r.trialChecks) > 0 {
			doc.add(paragraph("Every measured trial of this run, checked on its own record:"),
				tableBlock{validationTable(&results.Validation{Checks: r.trialChecks})})
		}
	}()
	v := r.validation
	if v == nil {
		doc.add(paragraph("Not validated: this folder has no " + results.ValidationFile + ". `ringbench validate` " +
			"checks each meter against a ground truth on the machine and writes it there."))
		return
	}
	s := "Each meter checked against a ground truth by `ringbench validate`"
	if !v.Time.IsZero() {
		s += ", at " + v.Time.UTC().Format("2006-01-02 15:04 UTC")
	}
	if v.Env.Hostname != "" {
		s += " on " + v.Env.Hostname
		if v.Env.Kernel != "" {
			s += " (kernel " + v.Env.Kernel + ")"
		}
	}
	s += ". A skipped check could not run here; it neither passes nor fails."
	if other := r.otherMachine(); other != "" {
		s += " The checks ran " + other + "."
	}
	doc.add(paragraph(s))
	if len(v.Checks) == 0 {
		doc.add(paragraph(results.ValidationFile + " holds no check."))
		return
	}
	doc.add(tableBlock{validationTable(v)})
}

func validationTable(v *results.Validation) *table {
	t := &table{
		header: []string{"check", "value", "limit", "result", "detail"},
		right:  []bool{false, true, false, false, false},
		badges: map[int]bool{3: true},
	}
	for _, c := range v.Checks {
		value := c.Display
		if value == "" {
			value = num(c.Value)
		}
		if c.Skipped {
			value = missing
		}
		t.rows = append(t.rows, []string{c.Name, value, c.Limit, c.Verdict(), c.Detail})
	}
	return t
}
