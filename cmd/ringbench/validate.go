package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"ringbench/harness"
	"ringbench/results"
)

// errValidation is the exit status of a validation that ran and failed.
var errValidation = errors.New("meter validation failed")

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := harness.DefaultValidateOptions
	out := fs.String("out", "", "results folder for the validation's trials and validate.json (default bench-results/<time>-validate)")
	fs.StringVar(&o.Topology, "topology", "", "loopback or veth (default: veth as root, else loopback)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "each trial's measurement window")
	fs.IntVar(&o.Repeats, "repeats", o.Repeats, "repeats per backend of the cycles/op spread check (at least 3)")
	fs.Uint64Var(&o.BurnLow, "burn-low", o.BurnLow, "the burn server's first setting, TSC cycles per request")
	fs.Uint64Var(&o.BurnHigh, "burn-high", o.BurnHigh, "the burn server's second setting, TSC cycles per request")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("validate takes no arguments, got %q", fs.Args())
	}
	if o.Duration < harness.MinDuration {
		return fmt.Errorf("validate: --duration %v: want at least %v", o.Duration, harness.MinDuration)
	}
	unlock, err := lockRuns("validate", stderr)
	if err != nil {
		return err
	}
	defer unlock()
	if *out == "" {
		*out = defaultOut() + "-validate"
	}
	v, err := runValidation(ctx, out, o, stderr)
	if v != nil {
		printValidation(stdout, v)
		fmt.Fprintf(stdout, "\nvalidation: %s\n", filepath.Join(*out, results.ValidationFile))
	}
	if err != nil {
		return err
	}
	if !v.Passed() {
		return fmt.Errorf("%w: %v", errValidation, v.Failed())
	}
	return nil
}

// runValidation runs the cross-checks with their own runner, whose trials go
// to out, and saves validate.json there.
func runValidation(ctx context.Context, out *string, o harness.ValidateOptions, log io.Writer) (*results.Validation, error) {
	r, err := newRunner(out, log)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fmt.Fprintf(log, "validate: the meters against ground truths, into %s\n", *out)
	v, err := r.Validate(ctx, o, log)
	if v != nil {
		if serr := v.Save(*out); serr != nil {
			return v, errors.Join(err, serr)
		}
	}
	return v, err
}

func printValidation(w io.Writer, v *results.Validation) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "check\tresult\tvalue\tlimit\tdetail")
	for _, c := range v.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Verdict(), c.Display, c.Limit, c.Detail)
	}
	tw.Flush()
}
