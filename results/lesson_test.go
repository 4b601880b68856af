package results

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLessonRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if l, err := LoadLesson(dir); l != nil || err != nil {
		t.Fatalf("LoadLesson of a folder without lesson.json = %v, %v; want nil, nil", l, err)
	}
	counted, sent := uint64(0), uint64(1000)
	want := &Lesson{
		SyscallCost: &SyscallCost{NsPerCall: 90, Method: "test input", Calls: 1000, CyclesPerCall: f64(234)},
		Features: []KernelFeatures{{
			Backend: "dpdk", Topology: "veth", Proto: "udp",
			NftCounts:     FeatureCheck{Verdict: No, Counted: &counted, Sent: &sent},
			NftDropStops:  FeatureCheck{Verdict: No},
			SSListsSocket: FeatureCheck{Verdict: Unmeasured, Reason: "ss: not found"},
		}},
		NotMeasured: []string{"memif: not run"},
		Env:         Env{Kernel: "6.18.0"},
	}
	if err := want.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLesson(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, LessonFile+".tmp")); err == nil {
		t.Error("Save left its temporary file")
	}
}

func TestLoadLessonMalformed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LessonFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLesson(dir); err == nil {
		t.Error("a malformed lesson.json loaded")
	}
}
