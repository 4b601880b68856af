package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"ringbench/harness"
	"ringbench/internal/outdir"
	"ringbench/results"
)

// ndrDir is where a bench run's searches keep their trials.
const ndrDir = results.NDRTrialsDir

// filterSearches keeps the searches of the backends --backends names and
// moves them to --topology, as filterTrials does the matrix.
func filterSearches(plans []harness.NDRPlan, topology, only string) []harness.NDRPlan {
	var out []harness.NDRPlan
	for _, p := range plans {
		if kept, err := filterTrials([]harness.Trial{p.Trial}, topology, only); err == nil {
			p.Trial = kept[0]
			out = append(out, p)
		}
	}
	return out
}

// listSearches prints the searches of a dry run.
func listSearches(w io.Writer, plans []harness.NDRPlan) {
	if len(plans) == 0 {
		return
	}
	fmt.Fprintf(w, "then %d ndr searches (the rate is the search's; each step one trial):\n", len(plans))
	for i, p := range plans {
		fmt.Fprintf(w, "%3d %s: %s\n", i+1, describeConfig(p.Trial), describeSearch(p.Search))
	}
}

func describeConfig(t harness.Trial) string {
	return strings.TrimSuffix(harness.Describe(t), " closed")
}

func describeSearch(s harness.Search) string {
	upper := "a closed-loop trial's rate × " + fmt.Sprint(harness.UpperBoundMargin)
	if s.MaxRate > 0 {
		upper = fmt.Sprintf("%.0f ops/s", s.MaxRate)
	}
	precision := s.Precision
	if precision == 0 {
		precision = 0.05
	}
	return fmt.Sprintf("loss ≤ %g, p99 ≤ %g µs, precision %g, from %.0f ops/s up to %s", s.Loss, s.P99US, precision, s.MinRate, upper)
}

// runSearches runs a bench profile's searches on r after its matrix: their
// trials go to out/ndr/results.jsonl, one line per search to
// out/ndr.jsonl, and the table of rates to stdout. A search that could not
// finish is a line with its error, not the end of the run (benchVerdict
// judges the lines found); the error returned is ctx's, when the run was
// interrupted, or one that stops every search.
func runSearches(ctx context.Context, r *harness.Runner, out string, plans []harness.NDRPlan, stdout, stderr io.Writer) ([]results.NDR, error) {
	dir, err := outdir.Subdir(out, ndrDir)
	if err != nil {
		return nil, err
	}
	store, err := results.Create(dir)
	if err != nil {
		return nil, err
	}
	// The runner keeps its topologies, hugepages and meters; only the
	// store changes, and the runner closes whichever it holds.
	if err := r.Store.Close(); err != nil {
		store.Close()
		return nil, fmt.Errorf("close matrix results: %w", err)
	}
	r.Store = store
	fmt.Fprintf(stderr, "ndr: %d searches, their trials into %s\n", len(plans), dir)
	found, _, err := searchAll(ctx, r, out, plans, stderr)
	if err != nil {
		return found, err
	}
	if len(found) > 0 {
		if err := writeOutputs(dir, stderr); err != nil {
			return found, err
		}
		fmt.Fprintln(stdout)
		printNDR(stdout, found)
	}
	return found, ctx.Err()
}

// benchVerdict is verdict over a bench's trials and its searches' lines: a
// search that could not finish fails the bench as a failed trial does; a
// skipped one (the backend refused: not supported here) is fine unless
// nothing, trial or search, measured.
func benchVerdict(recs []results.Record, searches []results.NDR, dir string) error {
	var failed, skipped int
	for _, n := range searches {
		switch {
		case n.Skipped:
			skipped++
		case n.Error != "":
			failed++
		}
	}
	err := verdict(recs, dir, true)
	var allSkipped *statusError
	switch {
	case err != nil && !errors.As(err, &allSkipped):
		return err
	case failed > 0:
		return fmt.Errorf("%d of %d ndr searches could not finish (the reasons are above); their lines are in %s", failed, len(searches), filepath.Join(dir, results.NDRFile))
	case allSkipped != nil && skipped < len(searches):
		return nil // every trial skipped, but a search measured
	case err == nil && len(recs) == 0 && skipped > 0 && skipped == len(searches):
		return &statusError{exitSkipped, fmt.Errorf("%d of %d ndr searches skipped, not supported here (the reasons are above)", skipped, len(searches))}
	}
	return err
}

// searchAll runs each plan's search on r, one after the other, and appends
// its line to out/ndr.jsonl. errs are the searches' own (each is in its
// line too); err is what stops them all (the ndr file could not be
// written). An interrupted search gets no line.
func searchAll(ctx context.Context, r *harness.Runner, out string, plans []harness.NDRPlan, stderr io.Writer) (found []results.NDR, errs []error, err error) {
	for _, p := range plans {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "ndr: searching %s (%s)\n", describeConfig(p.Trial), describeSearch(p.Search))
		n, serr := r.NDR(ctx, p.Trial, p.Search)
		for _, st := range n.Steps {
			fmt.Fprintf(stderr, "  %-7s %9.0f ops/s: %s (%s)\n", st.Phase, st.Rate, passFail(st.Pass), st.Why)
		}
		if serr != nil {
			fmt.Fprintf(stderr, "ndr: %s: %v\n", n.Backend, serr)
			errs = append(errs, fmt.Errorf("%s: %w", n.Backend, serr))
		}
		if ctx.Err() != nil && serr != nil {
			break
		}
		if err := results.AppendNDR(out, n); err != nil {
			return found, errs, err
		}
		found = append(found, n)
	}
	return found, errs, nil
}
