package dpdk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNetdev points sysClassNet at a folder holding iface's attributes
// with the given values.
func fakeNetdev(t *testing.T, iface string, attrs map[string]string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, iface)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range attrs {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := sysClassNet
	sysClassNet = root
	t.Cleanup(func() { sysClassNet = old })
	return dir
}

func readAttr(t *testing.T, dir, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, attr))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// The settings hold for the server's life and the values found come back.
func TestApplyNetdevRestores(t *testing.T) {
	dir := fakeNetdev(t, "veth9", map[string]string{OptNapiDeferHardIRQs: "0", OptGROFlushTimeout: "20000"})
	restore, err := applyNetdev("veth9", []netdevSetting{{OptNapiDeferHardIRQs, "2"}, {OptGROFlushTimeout, "200000"}})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := readAttr(t, dir, OptNapiDeferHardIRQs), readAttr(t, dir, OptGROFlushTimeout); a != "2" || b != "200000" {
		t.Fatalf("while running: %s=%s %s=%s, want 2 and 200000", OptNapiDeferHardIRQs, a, OptGROFlushTimeout, b)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if a, b := readAttr(t, dir, OptNapiDeferHardIRQs), readAttr(t, dir, OptGROFlushTimeout); a != "0" || b != "20000" {
		t.Fatalf("after: %s=%s %s=%s, want the values found, 0 and 20000", OptNapiDeferHardIRQs, a, OptGROFlushTimeout, b)
	}
}

// A setting that cannot be made puts back those already made.
func TestApplyNetdevUndoesOnError(t *testing.T) {
	dir := fakeNetdev(t, "veth9", map[string]string{OptNapiDeferHardIRQs: "0"})
	_, err := applyNetdev("veth9", []netdevSetting{{OptNapiDeferHardIRQs, "2"}, {OptGROFlushTimeout, "200000"}})
	if err == nil || !strings.Contains(err.Error(), OptGROFlushTimeout) {
		t.Fatalf("err = %v, want one naming %s", err, OptGROFlushTimeout)
	}
	if a := readAttr(t, dir, OptNapiDeferHardIRQs); a != "0" {
		t.Errorf("%s left at %s, want 0 back", OptNapiDeferHardIRQs, a)
	}
}
