package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"ringbench/internal/outdir"
)

// NDRFile holds one line per backend searched by `ringbench ndr`.
const NDRFile = "ndr.jsonl"

// NDRTrialsDir is the folder, inside a bench run's, that holds the trials
// of its maximum-sustainable-rate searches (their own results.jsonl): each
// search runs a dozen rates of one configuration, which would crowd the
// matrix's tables and charts. The searches' verdicts, NDRFile, go to the
// run's own folder.
const NDRTrialsDir = "ndr"

// LoadSearchTrials reads the trials of a bench run's searches, in
// dir/NDRTrialsDir; a run without searches gives nil, nil.
func LoadSearchTrials(dir string) ([]Record, error) {
	recs, err := Load(filepath.Join(dir, NDRTrialsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return recs, err
}

// NDR is one backend's maximum sustainable rate: the highest open-loop rate
// at which the loss ratio stayed within LossLimit and p99 latency within
// P99LimitUS, found by a bounded search (MLRsearch's manner: coarse steps,
// then bisection to Precision, then a confirmation trial). Every trial of
// the search is in results.jsonl with a note "ndr step k: ...".
type NDR struct {
	Run     string    `json:"run"`
	Time    time.Time `json:"time"`
	Backend string    `json:"backend"` // label: epoll, uring-sqpoll, ...
	// Rate is the confirmed rate in ops/s; 0 when none passed (Stop says why).
	Rate       float64 `json:"rate"`
	LossLimit  float64 `json:"loss_limit"`
	P99LimitUS float64 `json:"p99_limit_us"`
	// Precision: the search stopped bisecting once (hi − lo) / hi ≤ it.
	Precision float64 `json:"precision"`
	// Trials counts every trial the search ran: noisy re-runs, the
	// confirmation and the closed-loop trial that set MaxRate included.
	Trials  int     `json:"trials"`
	MinRate float64 `json:"min_rate"`
	MaxRate float64 `json:"max_rate"`
	// GeneratorBound: the search stopped because a failing trial was
	// client-bound at GeneratorBoundRate: the generator, not the server,
	// was the limit, and Rate is a lower bound of the server's.
	GeneratorBound     bool    `json:"generator_bound"`
	GeneratorBoundRate float64 `json:"generator_bound_rate,omitempty"`
	// PassedRate: with no confirmed Rate in a generator-bound search, the
	// highest rate a trial passed at: a lower bound of the server's.
	PassedRate float64 `json:"passed_rate,omitempty"`
	// Stop says in a sentence why the search ended where it did.
	Stop string `json:"stop"`
	// Error is set when the search could not finish (a trial failed or
	// could not run here).
	Error string `json:"error,omitempty"`
	// Skipped: the search could not run here by design (a trial was
	// skipped: the backend does not support it); Error says why.
	Skipped bool `json:"skipped,omitempty"`

	// The confirmation trial's figures (zero when there was none).
	CyclesPerOp   float64 `json:"cycles_per_op"`
	CyclesSource  string  `json:"cycles_source,omitempty"`
	ThroughputOps float64 `json:"throughput_ops"`
	LossRatio     float64 `json:"loss_ratio"`
	P99US         float64 `json:"lat_p99_us"`

	Config Config    `json:"config"` // the configuration searched; RateTarget is Rate
	Steps  []NDRStep `json:"steps"`
}

// NDRStep is one trial of a search.
type NDRStep struct {
	Phase string  `json:"phase"` // coarse, bisect, confirm
	Rate  float64 `json:"rate"`
	Pass  bool    `json:"pass"`
	Why   string  `json:"why"`
}

// AppendNDR appends n as one line of dir's ndr.jsonl.
func AppendNDR(dir string, n NDR) (err error) {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode ndr: %w", err)
	}
	f, err := outdir.OpenAppend(filepath.Join(dir, NDRFile))
	if err != nil {
		return fmt.Errorf("append ndr: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("append ndr: %w", cerr)
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append ndr: %w", err)
	}
	return f.Sync()
}

// LoadNDR reads dir's ndr.jsonl; a folder without one gives nil, nil. A
// malformed line is an error naming it.
func LoadNDR(dir string) ([]NDR, error) {
	f, err := os.Open(filepath.Join(dir, NDRFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open ndr: %w", err)
	}
	defer f.Close()
	var out []NDR
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var n NDR
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
			return nil, fmt.Errorf("decode %s line %d: %w", NDRFile, line, err)
		}
		out = append(out, n)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ndr: %w", err)
	}
	return out, nil
}
