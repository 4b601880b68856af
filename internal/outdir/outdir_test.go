package outdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// victim is a file outside the results folder that a planted link points at.
func victim(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(p, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkVictim(t *testing.T, p string) {
	t.Helper()
	if b, _ := os.ReadFile(p); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
}

func TestWriteFileReplacesLink(t *testing.T) {
	dir := t.TempDir()
	v := victim(t)
	target := filepath.Join(dir, "summary.md")
	if err := os.Symlink(v, target); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(target, []byte("summary\n")); err != nil {
		t.Fatal(err)
	}
	checkVictim(t, v)
	fi, err := os.Lstat(target)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("target is not a regular file after the write: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "summary\n" {
		t.Errorf("target holds %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".summary.md.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestOpenAppendRefusesLink(t *testing.T) {
	dir := t.TempDir()
	v := victim(t)
	p := filepath.Join(dir, "results.jsonl")
	if err := os.Symlink(v, p); err != nil {
		t.Fatal(err)
	}
	f, err := OpenAppend(p)
	if err == nil {
		f.Close()
		t.Fatal("a link was opened for appending")
	}
	if !errors.Is(err, ErrUnsafe) {
		t.Errorf("error %v is not ErrUnsafe", err)
	}
	checkVictim(t, v)
}

func TestCheck(t *testing.T) {
	base := t.TempDir()
	own := filepath.Join(base, "own")
	os.Mkdir(own, 0o755)
	ownLink := filepath.Join(base, "latest")
	os.Symlink("own", ownLink)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		name, dir, want string
		unsafe          bool
	}{
		{"own folder", own, own, false},
		{"own link resolves", ownLink, own, false},
		{"file", file, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(tc.dir)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted %s", tc.dir)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Check(%s) = %q, %v; want %q", tc.dir, got, err, tc.want)
			}
		})
	}
}

// Another user's folder or link is refused; making them needs root.
func TestCheckOtherUser(t *testing.T) {
	testenv.SkipUnlessRoot(t, "making files of another user")
	const nobody = 65534
	base := t.TempDir()
	theirs := filepath.Join(base, "theirs")
	os.Mkdir(theirs, 0o777)
	if err := os.Chown(theirs, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(base, "own")
	os.Mkdir(own, 0o755)
	link := filepath.Join(base, "planted")
	os.Symlink("own", link)
	if err := os.Lchown(link, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{theirs, link} {
		if _, err := Prepare(dir); !errors.Is(err, ErrUnsafe) {
			t.Errorf("Prepare(%s) = %v, want ErrUnsafe", dir, err)
		}
	}
}

func TestPrepareMakes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	got, err := Prepare(dir)
	if err != nil || got != dir {
		t.Fatalf("Prepare = %q, %v", got, err)
	}
}

// A subfolder is made in place; a link at its name is refused, whoever
// owns it, since nothing ringbench makes inside a results folder is a link.
func TestSubdir(t *testing.T) {
	parent := t.TempDir()
	got, err := Subdir(parent, "profiles")
	if want := filepath.Join(parent, "profiles"); err != nil || got != want {
		t.Fatalf("Subdir = %q, %v; want %q", got, err, want)
	}
	if got2, err := Subdir(parent, "profiles"); err != nil || got2 != got {
		t.Fatalf("Subdir of an existing folder = %q, %v", got2, err)
	}
	elsewhere := t.TempDir()
	os.Symlink(elsewhere, filepath.Join(parent, "charts"))
	if _, err := Subdir(parent, "charts"); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Subdir of a link = %v, want ErrUnsafe", err)
	}
	os.WriteFile(filepath.Join(parent, "ndr"), nil, 0o644)
	if _, err := Subdir(parent, "ndr"); err == nil {
		t.Error("Subdir of a file succeeded")
	}
}
