package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"ringbench/results"
)

// AutoTopology is the topology "auto" stands for: veth where root allows
// making namespaces (the fair one), loopback elsewhere.
func AutoTopology() string {
	if os.Geteuid() == 0 {
		return Veth
	}
	return Loopback
}

// Bench runs every trial in order, appending each record to the runner's
// store as it ends. It stops at the first trial after ctx is cancelled;
// every finished trial is already on disk. progress gets a bar with an ETA
// on a terminal, a line per trial elsewhere.
func Bench(ctx context.Context, r *Runner, trials []Trial, progress io.Writer) ([]results.Record, error) {
	var bar *progressbar.ProgressBar
	tty := false
	if f, ok := progress.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
		bar = progressbar.NewOptions(len(trials),
			progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription("bench"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	var out []results.Record
	start := time.Now()
	for i, t := range trials {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if bar != nil {
			bar.Describe(Describe(t))
		}
		rec := r.Trial(ctx, t)
		if ctx.Err() != nil && rec.Status != results.StatusOK {
			return out, ctx.Err()
		}
		out = append(out, rec)
		line := fmt.Sprintf("[%d/%d] %s: %s", i+1, len(trials), Describe(t), Outcome(rec))
		if bar != nil {
			bar.Clear()
			fmt.Fprintln(progress, line)
			bar.Add(1)
		} else if progress != nil {
			eta := time.Duration(float64(time.Since(start)) / float64(i+1) * float64(len(trials)-i-1)).Round(time.Second)
			fmt.Fprintf(progress, "%s (eta %s)\n", line, eta)
		}
	}
	if bar != nil && tty {
		bar.Finish()
	}
	return out, nil
}

// Describe names a trial in one short line.
func Describe(t Trial) string {
	rate := "closed"
	if t.Rate > 0 {
		rate = fmt.Sprintf("%.0f/s", t.Rate)
	}
	w := string(t.Workload)
	if t.Direction == "down" {
		w += "-down"
	}
	cores := ""
	if t.Cores > 1 {
		cores = fmt.Sprintf(" %d cores", t.Cores)
	}
	return fmt.Sprintf("%s %s/%s %s c=%d d=%d %dB%s %s", t.Backend, w, t.Proto, t.Topology, t.Conns, t.Depth, t.Size, cores, rate)
}

// Outcome is a one-line result.
func Outcome(r results.Record) string {
	switch r.Status {
	case results.StatusSkipped:
		return "skipped: " + r.Error
	case results.StatusFailed:
		return "FAILED: " + r.Error
	}
	s := fmt.Sprintf("%.0f ops/s, %.0f %s-cycles/op", r.ThroughputOps, r.CyclesPerOp, r.CyclesSource)
	if r.SyscallsPerOp != nil {
		s += fmt.Sprintf(", %.3f syscalls/op", *r.SyscallsPerOp)
	}
	if r.LatP99 > 0 {
		s += fmt.Sprintf(", p99 %.0f µs", r.LatP99)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d ERRORS", r.Errors)
	}
	if r.ClientBound {
		s += " [client-bound]"
	}
	if r.Noisy {
		s += " [noisy]"
	}
	return s
}
