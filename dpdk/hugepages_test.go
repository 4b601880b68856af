package dpdk

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReserveHugepages(t *testing.T) {
	dir := t.TempDir()
	old := hugepagesPath
	hugepagesPath = filepath.Join(dir, "nr_hugepages")
	t.Cleanup(func() { hugepagesPath = old })
	if err := os.WriteFile(hugepagesPath, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	release, err := ReserveHugepages(128)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := readHugepages(); n != 128 {
		t.Errorf("reserved %d, want 128", n)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if n, _ := readHugepages(); n != 3 {
		t.Errorf("after release %d, want the previous 3", n)
	}
	if _, err := ReserveHugepages(-1); err == nil {
		t.Error("negative count accepted")
	}
	os.WriteFile(hugepagesPath, []byte("many\n"), 0o644)
	if _, err := ReserveHugepages(1); err == nil {
		t.Error("unparsable count accepted")
	}
}

// On the real file, as root: the kernel's count comes back after release.
func TestReserveHugepagesKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: reserving hugepages needs root")
	}
	before, err := readHugepages()
	if err != nil {
		t.Skipf("skipped: no 2 MiB hugepages here: %v", err)
	}
	release, err := ReserveHugepages(before + 8)
	if err != nil {
		t.Skipf("skipped: the kernel granted no pages: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if after, _ := readHugepages(); after != before {
		t.Errorf("hugepages %d after release, want %d", after, before)
	}
}
