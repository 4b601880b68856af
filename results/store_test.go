package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A crash mid-write leaves results.jsonl ending in part of a line; the next
// run's first record must not be glued onto it.
func TestCreateRepairsPartialLine(t *testing.T) {
	for _, tc := range []struct {
		name, tail   string
		wantRecs     int
		wantPartial  string
		wantWarnings int
	}{
		{"partial", `{"run":"test","backe`, 2, `{"run":"test","backe` + "\n", 1},
		{"whole record without newline", `{"run":"test"}`, 3, "", 1},
		{"clean", "", 2, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first := `{"run":"test","repeat":0}` + "\n"
			if err := os.WriteFile(filepath.Join(dir, JSONLFile), []byte(first+tc.tail), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(s.Warnings()); got != tc.wantWarnings {
				t.Errorf("warnings %q, want %d", s.Warnings(), tc.wantWarnings)
			}
			if err := s.Append(sample("epoll", 1000, 1, 100)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			recs, warnings, err := LoadWarn(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tc.wantRecs || len(warnings) != 0 {
				t.Errorf("loaded %d records (warnings %q), want %d and none", len(recs), warnings, tc.wantRecs)
			}
			b, _ := os.ReadFile(filepath.Join(dir, PartialFile))
			if string(b) != tc.wantPartial {
				t.Errorf("%s holds %q, want %q", PartialFile, b, tc.wantPartial)
			}
		})
	}
}

func TestDecodeWarnSkipsPartialLastLine(t *testing.T) {
	in := `{"run":"a"}` + "\n" + `{"run":"b"}` + "\n" + `{"run":"c","ba`
	recs, warnings, err := DecodeWarn(strings.NewReader(in))
	if err != nil || len(recs) != 2 || len(warnings) != 1 {
		t.Fatalf("got %d records, warnings %q, err %v; want 2, one warning", len(recs), warnings, err)
	}
	// A bad line that is not the last is an error, naming the line.
	in = `{"run":"a"}` + "\n" + `{"run":"b` + "\n" + `{"run":"c"}` + "\n"
	if _, _, err := DecodeWarn(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
}

func TestCreateRefusesLinkedResults(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	os.Symlink(victim, filepath.Join(dir, JSONLFile))
	if s, err := Create(dir); err == nil {
		s.Close()
		t.Fatal("a results.jsonl link was opened")
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("victim changed: %q", b)
	}
}

func TestLessonSaveReplacesLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	os.Symlink(victim, filepath.Join(dir, LessonFile+".tmp"))
	os.Symlink(victim, filepath.Join(dir, LessonFile))
	if err := (&Lesson{}).Save(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("victim changed: %q", b)
	}
}
