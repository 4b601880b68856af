package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"ringbench/backends"
	"ringbench/harness"
	"ringbench/results"
)

// ndrFlags are the search's own flags, beside the run flags.
type ndrFlags struct {
	backends                                     string
	loss, p99, minRate, maxRate, precision, step float64
}

func (f *ndrFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backends, "backends", "", "comma-separated backends to search, one after the other (default: --backend)")
	fs.Float64Var(&f.loss, "loss", 0, "largest loss ratio allowed: (lost + timed out + unsent) / offered; 0 for NDR, e.g. 0.005 for PDR")
	fs.Float64Var(&f.p99, "p99", 1000, "largest p99 latency allowed, in µs")
	fs.Float64Var(&f.minRate, "min-rate", 1000, "lower bound of the search, ops/s: its first trial")
	fs.Float64Var(&f.maxRate, "max-rate", 0, "upper bound of the search, ops/s (0: a closed-loop trial's rate × 1.1)")
	fs.Float64Var(&f.precision, "precision", 0.05, "bisect until (hi − lo) / hi is at most this")
	fs.Float64Var(&f.step, "factor", 2, "coarse step: each rate is the last × this until a trial fails")
}

func (f *ndrFlags) search() (harness.Search, error) {
	s := harness.Search{
		Criteria: harness.Criteria{Loss: f.loss, P99US: f.p99, RateTolerance: harness.DefaultRateTolerance},
		MinRate:  f.minRate, MaxRate: f.maxRate, Factor: f.step, Precision: f.precision,
	}
	switch {
	case !(f.loss >= 0 && f.loss < 1):
		return s, fmt.Errorf("--loss must be in [0, 1), got %g", f.loss)
	case !(f.p99 > 0):
		return s, fmt.Errorf("--p99 must be a positive number of µs, got %g", f.p99)
	case !(f.minRate > 0):
		return s, fmt.Errorf("--min-rate must be positive, got %g", f.minRate)
	case f.maxRate != 0 && f.maxRate < f.minRate:
		return s, fmt.Errorf("--max-rate %g is below --min-rate %g", f.maxRate, f.minRate)
	case !(f.precision > 0 && f.precision < 1):
		return s, fmt.Errorf("--precision must be in (0, 1), got %g", f.precision)
	case !(f.step > 1):
		return s, fmt.Errorf("--factor must be over 1, got %g", f.step)
	}
	return s, nil
}

func ndrCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var nf ndrFlags
	c, err := parseTrialCommand("ndr", args, stderr, nf.register)
	if err != nil {
		return err
	}
	fs, tf, out, m := c.fs, &c.tf, c.out, &c.m
	var conflict error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rate", "repeats":
			conflict = fmt.Errorf("ndr: --%s does not apply: the search sets the rate and runs each step once", f.Name)
		case "backend":
			if nf.backends != "" {
				conflict = errors.New("ndr: give --backend or --backends, not both")
			}
		}
	})
	if conflict != nil {
		return conflict
	}
	s, err := nf.search()
	if err != nil {
		return fmt.Errorf("ndr: %w", err)
	}
	names := []string{tf.backend}
	if nf.backends != "" {
		names = nil
		for _, b := range strings.Split(nf.backends, ",") {
			if b = strings.TrimSpace(b); b != "" {
				names = append(names, b)
			}
		}
		if len(names) == 0 {
			return errors.New("ndr: --backends names no backend")
		}
	}
	var trials []harness.Trial
	for _, name := range names {
		f := tf
		f.backend = name
		t, err := f.trial()
		if err != nil {
			return fmt.Errorf("ndr: %s: %w", name, err)
		}
		trials = append(trials, t)
	}
	r, done, err := openRunner("ndr", out, stderr)
	if err != nil {
		return err
	}
	defer done()
	m.apply(r)
	r.Hosts = c.hosts
	fmt.Fprintf(stderr, "ndr: loss ≤ %g, p99 ≤ %g µs, precision %g, into %s\n", s.Loss, s.P99US, s.Precision, *out)
	plans := make([]harness.NDRPlan, len(trials))
	for i, t := range trials {
		t.Index = i
		plans[i] = harness.NDRPlan{Trial: t, Search: s}
	}
	found, errs, err := searchAll(ctx, r, *out, plans, stderr)
	if err != nil {
		return err
	}
	ran := 0
	for _, n := range found {
		ran += n.Trials
	}
	if ran > 0 {
		if err := writeOutputs(*out, stderr); err != nil {
			return err
		}
	}
	printNDR(stdout, found)
	fmt.Fprintf(stdout, "\nresults: %s (%s, %s with every step's trial)\n", *out, results.NDRFile, results.JSONLFile)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: finished searches kept in %s", filepath.Join(*out, results.NDRFile))
	}
	if len(errs) == 0 {
		recs, err := results.Load(*out)
		if err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("ndr: load the searches' trials: %w", err)
		}
		return trustVerdict(nil, recs, *out, stderr)
	}
	err = fmt.Errorf("ndr: %w", errors.Join(errs...))
	for _, e := range errs {
		if !errors.Is(e, backends.ErrNotSupported) {
			return err
		}
	}
	// As run's skipped trial: what was asked was not measured here.
	return &statusError{exitSkipped, err}
}

func passFail(pass bool) string {
	if pass {
		return "pass"
	}
	return "FAIL"
}

// printNDR writes one row per backend: the rate and the confirmation's
// figures, and why the search stopped.
func printNDR(w io.Writer, found []results.NDR) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "backend\tmax rate ops/s\tcycles/op\tp99 µs\tloss\tlimits\ttrials\tstop")
	for _, n := range found {
		rate := fmt.Sprintf("%.0f", n.Rate)
		if n.GeneratorBound {
			rate = "≥ " + fmt.Sprintf("%.0f", max(n.Rate, n.PassedRate))
		}
		stop := n.Stop
		if n.Error != "" {
			stop += ": " + n.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f %s\t%.0f\t%.3g%%\tloss ≤ %g, p99 ≤ %g µs, ±%g\t%d\t%s\n", n.Backend, rate, n.CyclesPerOp, n.CyclesSource,
			n.P99US, 100*n.LossRatio, n.LossLimit, n.P99LimitUS, n.Precision, n.Trials, stop)
	}
	tw.Flush()
}
