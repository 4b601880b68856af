// Package results holds ringbench's result records and everything that reads
// or writes them without running anything.
//
// Data flow:
//
//  1. The harness fills one Record per trial (configuration, every meter,
//     flags, environment) and appends it to a Store (results.jsonl) as soon
//     as the trial ends, so an interrupted run keeps every finished trial.
//  2. Load reads a results folder back; Summarize groups records by
//     configuration and gives the median and a confidence interval over
//     repeats of each metric.
//  3. WriteBenchfmt writes the same records in Go's benchmark format, so
//     benchstat compares two runs.
//
// The package imports nothing of the harness: plots and reports read only
// what is here.
package results
