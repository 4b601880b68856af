package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"ringbench/internal/outdir"
)

// File names inside a results folder.
const (
	JSONLFile   = "results.jsonl"
	BenchFile   = "results.bench" // Go benchmark format, for benchstat
	SummaryFile = "summary.md"
	LessonFile  = "lesson.json"
	ReportMD    = "report.md"
	ReportHTML  = "report.html"
	// FirstScreenPNG is what a reader of report.html sees first, at
	// 1280 × 800 (written where Chromium is installed).
	FirstScreenPNG = "report-first-screen.png"
)

// PartialFile keeps what a crash left at the end of results.jsonl: a line
// cut short, moved aside so that the next record starts on a line of its own.
const PartialFile = JSONLFile + ".partial"

// Store appends records to a folder's results.jsonl, one line per record,
// synced as each trial ends so that an interrupted run keeps every finished
// trial.
type Store struct {
	mu       sync.Mutex
	dir      string
	f        *os.File
	warnings []string
}

// Create opens (or creates) dir and its results.jsonl for appending. The
// folder must be the current user's (a link of the user's own is resolved;
// see outdir.Check), and results.jsonl must not be a link. A last line cut
// short by a crash is moved to results.jsonl.partial, with a warning (see
// Warnings), so that the first record appended starts a line of its own.
func Create(dir string) (_ *Store, err error) {
	dir, err = outdir.Prepare(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, JSONLFile)
	rw, err := outdir.OpenReadWrite(path)
	if err != nil {
		return nil, fmt.Errorf("open results file: %w", err)
	}
	warning, err := repairTail(rw, filepath.Join(dir, PartialFile))
	if cerr := rw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("repair results file: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	f, err := outdir.OpenAppend(path)
	if err != nil {
		return nil, fmt.Errorf("open results file: %w", err)
	}
	s := &Store{dir: dir, f: f}
	if warning != "" {
		s.warnings = append(s.warnings, warning)
	}
	return s, nil
}

// repairTail makes f end with a complete line. A last line without its
// newline is a record a crash cut short (the store writes a line and its
// newline in one write): it is copied to partial and cut off f. A last line
// that decodes whole only lost its newline, which is put back.
func repairTail(f *os.File, partial string) (warning string, err error) {
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("repair results file: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return "", nil
	}
	// Find the last newline, reading back from the end a block at a time.
	lastNL := int64(-1)
	buf := make([]byte, 64<<10)
	for end := size; end > 0 && lastNL < 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return "", fmt.Errorf("repair results file: %w", err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			lastNL = start + int64(i)
		}
		end = start
	}
	if lastNL == size-1 {
		return "", nil
	}
	tail := make([]byte, size-lastNL-1)
	if _, err := f.ReadAt(tail, lastNL+1); err != nil {
		return "", fmt.Errorf("repair results file: %w", err)
	}
	var rec Record
	if json.Unmarshal(tail, &rec) == nil {
		if _, err := f.WriteAt([]byte{'\n'}, size); err != nil {
			return "", fmt.Errorf("repair results file: %w", err)
		}
		return fmt.Sprintf("%s: the last record lacked its newline; added", JSONLFile), nil
	}
	p, err := outdir.OpenAppend(partial)
	if err != nil {
		return "", fmt.Errorf("keep partial record: %w", err)
	}
	_, err = p.Write(append(tail, '\n'))
	if err == nil {
		err = p.Sync()
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("keep partial record: %w", err)
	}
	if err := f.Truncate(lastNL + 1); err != nil {
		return "", fmt.Errorf("repair results file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("repair results file: %w", err)
	}
	return fmt.Sprintf("%s ended in a partial record (%d bytes, an earlier run was killed mid-write); moved to %s",
		JSONLFile, len(tail), PartialFile), nil
}

// Warnings says what Create repaired.
func (s *Store) Warnings() []string { return s.warnings }

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// Append writes r as one line and syncs it to disk.
func (s *Store) Append(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("append record: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync results file: %w", err)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.f.Close() }

// Load reads every record in dir's results.jsonl; see LoadWarn.
func Load(dir string) ([]Record, error) {
	recs, _, err := LoadWarn(dir)
	return recs, err
}

// LoadWarn reads every record in dir's results.jsonl, and says what it
// skipped: a last line cut short by a crash.
func LoadWarn(dir string) ([]Record, []string, error) {
	f, err := os.Open(filepath.Join(dir, JSONLFile))
	if err != nil {
		return nil, nil, fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	return DecodeWarn(f)
}

// Decode reads JSON Lines records; see DecodeWarn.
func Decode(r io.Reader) ([]Record, error) {
	recs, _, err := DecodeWarn(r)
	return recs, err
}

// DecodeWarn reads JSON Lines records. A truncated last line (a run killed
// while writing) is skipped, with a warning; any other malformed line is an
// error naming its line.
func DecodeWarn(r io.Reader) ([]Record, []string, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	var pending error
	for sc.Scan() {
		line++
		if pending != nil {
			return nil, nil, pending
		}
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			// Only the last line may be cut short.
			pending = fmt.Errorf("decode results line %d: %w", line, err)
			continue
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read results: %w", err)
	}
	var syn *json.SyntaxError
	if pending != nil && !errors.As(pending, &syn) {
		return nil, nil, pending
	}
	var warnings []string
	if pending != nil {
		warnings = append(warnings, fmt.Sprintf("skipped line %d, a record cut short (%v)", line, pending))
	}
	return out, warnings, nil
}
