// Package results holds ringbench's result records and everything that reads
// or writes them without running anything.
//
// Data flow:
//
//  1. The harness fills one Record per trial (configuration, every meter,
//     flags, environment) and appends it to a Store (results.jsonl) as soon
//     as the trial ends, so an interrupted run keeps every finished trial.
//  2. Load reads a results folder back; Summarize groups records by
//     configuration and gives the median and a 95% interval over the
//     counted repeats of each metric (ok, not flagged noisy or
//     client-bound; six or more for a finite interval). CostMeter picks
//     the cost meter a comparison of two groups is judged on.
//  3. WriteBenchfmt writes the counted records in Go's benchmark format,
//     so that `benchstat a/results.bench b/results.bench` compares two
//     runs per configuration.
//
// The package imports nothing of the harness: plots and reports read only
// what is here.
package results
