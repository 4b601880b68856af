package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// File names inside a results folder.
const (
	JSONLFile   = "results.jsonl"
	BenchFile   = "results.bench" // Go benchmark format, for benchstat
	SummaryFile = "summary.md"
	LessonFile  = "lesson.json"
	ReportMD    = "report.md"
	ReportHTML  = "report.html"
)

// Store appends records to a folder's results.jsonl, one line per record,
// synced as each trial ends so that an interrupted run keeps every finished
// trial.
type Store struct {
	mu  sync.Mutex
	dir string
	f   *os.File
}

// Create opens (or creates) dir and its results.jsonl for appending.
func Create(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create results folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, JSONLFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open results file: %w", err)
	}
	return &Store{dir: dir, f: f}, nil
}

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

// Load reads every record in dir's results.jsonl.
func Load(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, JSONLFile))
	if err != nil {
		return nil, fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	return Decode(f)
}

// Decode reads JSON Lines records. A truncated last line (a run killed while
// writing) is ignored; any other malformed line is an error naming its line.
func Decode(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	var pending error
	for sc.Scan() {
		line++
		if pending != nil {
			return nil, pending
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
		return nil, fmt.Errorf("read results: %w", err)
	}
	var syn *json.SyntaxError
	if pending != nil && !errors.As(pending, &syn) {
		return nil, pending
	}
	return out, nil
}
