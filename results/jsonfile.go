package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ringbench/internal/outdir"
)

// loadJSON decodes dir/name into v. A folder without the file gives false
// and no error: the file is optional (what is one of lesson, validation).
func loadJSON(dir, name, what string, v any) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", what, err)
	}
	return true, nil
}

// saveJSON writes v as dir/name, indented, replacing the file whole so
// that a reader never sees half of it, in a folder that outdir accepts.
func saveJSON(dir, name, what string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if dir, err = outdir.Prepare(dir); err != nil {
		return err
	}
	if err := outdir.WriteBytes(filepath.Join(dir, name), append(b, '\n')); err != nil {
		return fmt.Errorf("save %s: %w", what, err)
	}
	return nil
}
