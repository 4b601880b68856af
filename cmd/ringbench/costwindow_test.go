package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/harness"
	"ringbench/internal/testenv"
	"ringbench/meters"
	"ringbench/results"
	"ringbench/sampler"
	"ringbench/workloads"
)

// A cost window is judged by what the meters found at its edges, not by
// which window the harness meant it to be: with a syscall tracepoint or a
// sampler of this process left on, the trial's cost window reads as traced
// or sampled and validate's check of it fails.
func TestCostWindowTracedOrSampledFails(t *testing.T) {
	testenv.SkipUnlessRoot(t, "the syscall tracepoint and the sampler")
	srv, _, err := harness.CPUs(1)
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	r := harness.NewRunner(nil, "costwindow", io.Discard)
	defer r.Close()
	r.NoProfile, r.NoSyscallCount = true, true
	trial := harness.Trial{Backend: "epoll", Workload: workloads.Echo, Proto: backends.TCP, Topology: harness.Loopback,
		Conns: 2, Depth: 1, Size: 64, Rate: 2000, Arrival: workloads.Constant, Cores: 1,
		Warmup: 200 * time.Millisecond, Duration: 500 * time.Millisecond}
	measure := func() results.Record {
		t.Helper()
		rec := r.Trial(context.Background(), trial)
		if rec.Status != results.StatusOK {
			t.Fatalf("trial %s: %s", rec.Status, rec.Error)
		}
		return rec
	}
	judge := func(name string, rec results.Record, want [2]bool) {
		t.Helper()
		for i, c := range results.TrialChecks([]results.Record{rec})[1:] {
			if c.Pass != want[i] {
				t.Errorf("%s: %s pass %v, want %v (traced %v, sampled %v)", name, c.Name, c.Pass, want[i], rec.WindowTraced, rec.WindowSampled)
			}
		}
	}
	judge("clean", measure(), [2]bool{true, true})

	rd, err := meters.NewReader(meters.Target{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.CountSyscalls(); err != nil {
		rd.Close()
		t.Skipf("skipped: no syscall tracepoint: %v", err)
	}
	traced := measure()
	rd.Close()
	judge("tracepoint left attached", traced, [2]bool{false, true})

	smp, err := sampler.Open(sampler.Config{CPUs: srv, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Skipf("skipped: no sampler: %v", err)
	}
	if err := smp.Start(); err != nil {
		smp.Close()
		t.Fatal(err)
	}
	sampled := measure()
	smp.Close()
	judge("sampler left enabled", sampled, [2]bool{true, false})
	judge("after both were closed", measure(), [2]bool{true, true})
}

// bench fails when one of its own trials reads core busy below its
// process CPU, though validate passed, and names the check.
func TestBenchVerdictChecksItsTrials(t *testing.T) {
	ok := results.Record{Status: results.StatusOK, Config: results.Config{Backend: "uring"}, CPUNs: 1e9, BusyNs: 1.1e9}
	below := ok
	below.BusyNs = 0.8e9
	passed := &results.Validation{Checks: []results.Check{{Name: "burn slope", Pass: true}}}
	var log strings.Builder
	if err := trustVerdict(passed, []results.Record{ok, ok}, "dir", &log); err != nil {
		t.Errorf("good trials: %v", err)
	}
	err := trustVerdict(passed, []results.Record{ok, below}, "dir", &log)
	if !errors.Is(err, errValidation) || !strings.Contains(err.Error(), "core busy ≥ process CPU in every trial") {
		t.Errorf("a trial with busy below CPU: %v", err)
	}
	if !strings.Contains(log.String(), "uring r0 -20.0%") {
		t.Errorf("stderr does not name the trial: %q", log.String())
	}
}

// report saves the first screen beside the report where Chromium is
// installed; where it is not, it says so in a note and the report stands.
func TestReportFirstScreenWithoutChromium(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{results.JSONLFile, results.LessonFile} {
		b, err := os.ReadFile(filepath.Join("..", "..", "plots", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An earlier rendering's picture must not stand beside this report.
	stale := filepath.Join(dir, results.FirstScreenPNG)
	if err := os.WriteFile(stale, []byte("an older screen"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	var out, errOut strings.Builder
	if err := ringbench(context.Background(), []string{"report", dir}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("report: %v\n%s", err, errOut.String())
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("%s of an earlier rendering left beside the new report", results.FirstScreenPNG)
	}
	if !strings.Contains(errOut.String(), "note: no "+results.FirstScreenPNG+": chromium is not installed") {
		t.Errorf("stderr %q does not say why there is no screenshot", errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, results.ReportHTML)); err != nil {
		t.Errorf("no report: %v", err)
	}
}
