package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"ringbench/results"
)

// Exit statuses, as README.md's "Exit status" lists them. An interrupted
// command exits 128 + the signal's number, as a shell reports it.
const (
	exitFailed  = 1 // an error, or a trial meant to run failed
	exitUsage   = 2 // the command line could not be parsed
	exitSkipped = 3 // nothing failed, but what was asked was not measured here
)

// interrupted is the cause of a context a signal cancelled.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "interrupted (" + i.sig.String() + ")" }

// signalContext is cancelled, with interrupted as its cause, by the first
// SIGINT or SIGTERM; later ones are ignored while the command cleans up.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			cancel(interrupted{s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// statusError is an error that stands for an exit status other than 1.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// exit prints err once to stderr and returns the exit status for it. An
// interrupt decides the status whatever the command returned.
func exit(ctx context.Context, err error, stderr io.Writer) int {
	var sig interrupted
	if errors.As(context.Cause(ctx), &sig) {
		if err == nil || errors.Is(err, context.Canceled) {
			err = sig
		}
		fmt.Fprintln(stderr, "ringbench:", err)
		return 128 + int(sig.sig)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "ringbench:", err)
	var se *statusError
	switch {
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, &se):
		return se.status
	}
	return exitFailed
}

// verdict is the error of a command whose trials all ended (recs): nil
// when every one meant to run measured. A skipped trial is fine in a
// matrix (DPDK over TCP is skipped by design) unless none measured;
// skipOK is false for run, whose trial is the one asked for. The
// reasons are on each trial's progress line, so they are not repeated.
func verdict(recs []results.Record, dir string, skipOK bool) error {
	var failed, skipped int
	for _, rec := range recs {
		switch rec.Status {
		case results.StatusFailed:
			failed++
		case results.StatusSkipped:
			skipped++
		}
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%d of %d trials failed (the reasons are above); their records are in %s", failed, len(recs), dir)
	case skipped > 0 && (!skipOK || skipped == len(recs)):
		return &statusError{exitSkipped, fmt.Errorf("%d of %d trials skipped, not supported here (the reasons are above)", skipped, len(recs))}
	}
	return nil
}
