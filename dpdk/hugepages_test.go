package dpdk

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeHugepages points the package at a fake sysfs file and state folder,
// holding nr reserved pages of which free are free.
func fakeHugepages(t *testing.T, nr, free int) {
	t.Helper()
	dir := t.TempDir()
	oldPath, oldState := hugepagesPath, hugepagesStateDir
	hugepagesPath = filepath.Join(dir, "nr_hugepages")
	hugepagesStateDir = filepath.Join(dir, "run")
	t.Cleanup(func() { hugepagesPath, hugepagesStateDir = oldPath, oldState })
	setPages(t, "nr_hugepages", nr)
	setPages(t, "free_hugepages", free)
}

func setPages(t *testing.T, name string, n int) {
	t.Helper()
	p := filepath.Join(filepath.Dir(hugepagesPath), name)
	if err := os.WriteFile(p, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantPages(t *testing.T, when string, want int) {
	t.Helper()
	if n, err := readHugepages(); err != nil || n != want {
		t.Errorf("%s: nr_hugepages %d (%v), want %d", when, n, err, want)
	}
}

// deadPid is above pid_max: no process ever has it.
const deadPid = 4194305

func TestReserveHugepages(t *testing.T) {
	fakeHugepages(t, 3, 0)
	release, err := ReserveHugepages(128)
	if err != nil {
		t.Fatal(err)
	}
	wantPages(t, "reserved", 131)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wantPages(t, "after release", 3)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wantPages(t, "after a second release", 3)
	if _, err := ReserveHugepages(-1); err == nil {
		t.Error("negative count accepted")
	}
	os.WriteFile(hugepagesPath, []byte("many\n"), 0o644)
	if _, err := ReserveHugepages(1); err == nil {
		t.Error("unparsable count accepted")
	}
}

// A larger reservation already there, with its pages free, is used as it
// is: nothing added, nothing lowered.
func TestReserveHugepagesKeepsLarger(t *testing.T) {
	fakeHugepages(t, 1024, 1024)
	release, err := ReserveHugepages(512)
	if err != nil {
		t.Fatal(err)
	}
	wantPages(t, "reserved", 1024)
	release()
	wantPages(t, "released", 1024)
}

// A run killed (kill -9) before its release leaves its state file: the next
// run gives the pages back instead of treating them as the machine's own.
func TestReserveHugepagesRestoresKilledRun(t *testing.T) {
	fakeHugepages(t, 512, 0)
	os.MkdirAll(filepath.Join(hugepagesStateDir, "hugepages"), 0o755)
	os.WriteFile(filepath.Join(hugepagesStateDir, "hugepages", fmt.Sprintf("%d-1", deadPid)), []byte("512\n"), 0o644)
	// A live run's reservation (this process's parent, say) stays.
	os.WriteFile(filepath.Join(hugepagesStateDir, "hugepages", fmt.Sprintf("%d-1", os.Getppid())), []byte("0\n"), 0o644)
	notes, err := RestoreStaleHugepages()
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], strconv.Itoa(deadPid)) {
		t.Fatalf("notes %q, err %v; want one about pid %d", notes, err, deadPid)
	}
	wantPages(t, "after restoring", 0)
	release, err := ReserveHugepages(512)
	if err != nil {
		t.Fatal(err)
	}
	wantPages(t, "reserved", 512)
	release()
	wantPages(t, "released", 0)
	if _, err := os.Stat(filepath.Join(hugepagesStateDir, "hugepages", fmt.Sprintf("%d-1", os.Getppid()))); err != nil {
		t.Errorf("a live run's state was removed: %v", err)
	}
}

// Concurrent runs each add their share and release only it, whatever the
// order: the count ends where it began.
func TestReserveHugepagesConcurrent(t *testing.T) {
	fakeHugepages(t, 7, 0)
	a, err := ReserveHugepages(512)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReserveHugepages(512)
	if err != nil {
		t.Fatal(err)
	}
	wantPages(t, "two reserved", 7+1024)
	a()
	wantPages(t, "first released", 7+512)
	b()
	wantPages(t, "both released", 7)

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := ReserveHugepages(64)
			if err != nil {
				t.Error(err)
				return
			}
			if err := release(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	wantPages(t, "after 8 concurrent reserve/release", 7)
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
	release, err := ReserveHugepages(freeHugepages() + 8)
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
