package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/harness"
	"ringbench/internal/testenv"
)

func TestMarkLatest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plant   func(link string) // what is at root/latest before
		wantErr bool
		want    string // the link's target after, "" when it must not be a link
	}{
		{"none", func(string) {}, false, "run2"},
		{"old link", func(l string) { os.Symlink("run1", l) }, false, "run2"},
		{"dangling link", func(l string) { os.Symlink("gone", l) }, false, "run2"},
		{"a file", func(l string) { os.WriteFile(l, []byte("mine"), 0o644) }, true, ""},
		{"a folder", func(l string) { os.Mkdir(l, 0o755) }, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			link := filepath.Join(root, "latest")
			tc.plant(link)
			err := markLatest(root, filepath.Join(root, "run2"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			got, lerr := os.Readlink(link)
			if tc.want == "" {
				if lerr == nil {
					t.Errorf("%s was replaced by a link to %s", tc.name, got)
				}
				if tc.name == "a file" {
					if b, _ := os.ReadFile(link); string(b) != "mine" {
						t.Errorf("the file latest was changed: %q", b)
					}
				}
			} else if got != tc.want {
				t.Errorf("latest -> %q (%v), want %q", got, lerr, tc.want)
			}
			left, _ := filepath.Glob(filepath.Join(root, ".latest.tmp-*"))
			if len(left) != 0 {
				t.Errorf("temporary links left: %v", left)
			}
		})
	}
}

// --out naming the user's own latest link writes into the folder it points
// at; summary.md planted there as a link to another file is replaced, not
// written through; no latest link is made beside an explicit --out.
func TestRunOutputsSafe(t *testing.T) {
	if _, _, err := harness.CPUs(1); err != nil {
		t.Skipf("skipped: %v", err)
	}
	root := t.TempDir()
	run1 := filepath.Join(root, "run1")
	os.Mkdir(run1, 0o755)
	os.Symlink("run1", filepath.Join(root, "latest"))
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	for _, name := range []string{"summary.md", "results.bench"} {
		os.Symlink(victim, filepath.Join(run1, name))
	}
	args := []string{"run", "--out", filepath.Join(root, "latest"), "--warmup", "200ms", "--duration", "500ms",
		"--backend", "epoll", "--conns", "2", "--topology", "loopback"}
	var out, errOut strings.Builder
	if err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("ringbench %v: %v\nstderr: %s", args, err, errOut.String())
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the planted link's target was written: %q", b)
	}
	for _, name := range []string{"results.jsonl", "summary.md", "results.bench"} {
		fi, err := os.Lstat(filepath.Join(run1, name))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v, want a regular file", name, fi, err)
		}
	}
	if target, _ := os.Readlink(filepath.Join(root, "latest")); target != "run1" {
		t.Errorf("latest -> %q, want it untouched", target)
	}
}

// A profiles folder planted in the results folder as a link to another
// folder is refused, never written through: the trial keeps its figures and
// says why it has no profile file.
func TestRunProfilesNotFollowed(t *testing.T) {
	testenv.SkipUnlessRoot(t, "sampling the server cores")
	if _, _, err := harness.CPUs(1); err != nil {
		t.Skipf("skipped: %v", err)
	}
	out := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(out, harness.ProfilesDir)); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--out", out, "--warmup", "200ms", "--duration", "500ms",
		"--backend", "epoll", "--conns", "2", "--topology", "loopback"}
	var stdout, stderr strings.Builder
	if err := ringbench(context.Background(), args, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("ringbench %v: %v\nstderr: %s", args, err, stderr.String())
	}
	if left, _ := os.ReadDir(elsewhere); len(left) != 0 {
		t.Errorf("written through the planted link: %v", left)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "profile: ") || !strings.Contains(string(b), "symbolic link") {
		t.Errorf("the record does not say why it has no profile: %s", b)
	}
}
