// Package plots turns a results folder into what people read: terminal and
// Markdown tables, charts (PNG and SVG), the published report and the
// comparison of two runs.
//
// Data flow:
//
//  1. results.Load, results.LoadLesson and results.LoadValidation read the
//     folder; results.Summarize groups the records by configuration (median
//     and 95% interval over repeats).
//  2. Each chart builder takes those groups (and the Lesson) and returns a
//     Chart, or says why it could not be drawn; nothing is saved yet.
//  3. Report lays out one document: first what a reader came for (the
//     meters' validation, the headline chart of measured cycles per op by
//     category at the same offered load, and a few findings with their
//     confidence and n), then every finding, the tables (each C baseline
//     beside the Go backend of its path, with the Go/C ratio), the io_uring
//     ladder where a run holds two rungs or more at one point (what each
//     feature bought in cycles/op, syscalls/op and p99), the charts
//     and the middle-ground lesson (the measured breakdown; the modelled
//     crossings as a side figure). It renders it twice: report.md (charts
//     beside it as files) and a self-contained report.html (charts inline
//     as SVG). Screenshot renders the page's first screen in Chromium.
//  4. Compare summarizes two folders and judges every change as benchstat
//     does (Mann-Whitney U, "~" when not significant).
//
// Every number shown comes from a record, the lesson or the validation; a meter that was not
// read shows as "–" with its note, a trial that could not run as "n/a" with
// its reason, never as zero. Cycles are labelled for what they are:
// "TSC-equivalent" when they are core busy time × the TSC rate.
package plots
