package sampler_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/pprof/profile"

	"ringbench/sampler"
)

// A link planted at a profile's file name is replaced by the profile, not
// written through.
func TestWriteFileReplacesLink(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t000-r0-epoll-1.pb.gz")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	res := &sampler.Result{Profile: &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}}
	if err := res.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s is not a regular file: %v %v", path, fi, err)
	}
	if _, err := profile.Parse(f); err != nil {
		t.Errorf("the profile written does not parse: %v", err)
	}
}
