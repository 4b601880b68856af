package dpdk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// hugepagesPath is where the kernel takes the count of 2 MiB pages; tests
// point it elsewhere.
var hugepagesPath = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

// hugepagesStateDir holds the lock that serialises every ringbench run's
// read-modify-write of nr_hugepages, and one file per reservation,
// <pid>-<n>, holding the pages that reservation added: a run killed before
// its release leaves its file, and the next run gives the pages back. It is
// on /run, which a reboot empties as it empties the pool; tests point it
// elsewhere.
var hugepagesStateDir = "/run/ringbench"

var reservations atomic.Int64

// ReserveHugepages makes sure n 2 MiB hugepages are free for this run (root
// only): it adds to the kernel's count what is missing, never lowering a
// larger reservation made by anyone else, and returns a release that takes
// back exactly the pages it added. Concurrent runs each add their own
// share under a lock and release only it; the pages of a run that was
// killed are given back first (RestoreStaleHugepages). The kernel may
// grant fewer pages than asked when memory is fragmented: that is an
// error, after what was granted is given back.
func ReserveHugepages(n int) (release func() error, err error) {
	if n < 0 {
		return nil, fmt.Errorf("reserve hugepages: negative count %d", n)
	}
	unlock, err := lockHugepages()
	if err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	defer unlock()
	if _, err := restoreStaleLocked(); err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	cur, err := readHugepages()
	if err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	// Free pages that another live run added are that run's, even while
	// its DPDK process has not taken them yet.
	claimed, err := liveClaims()
	if err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	add := n - max(freeHugepages()-claimed, 0)
	if add <= 0 {
		return func() error { return nil }, nil
	}
	state := filepath.Join(hugepagesStateDir, "hugepages", fmt.Sprintf("%d-%d", os.Getpid(), reservations.Add(1)))
	// The state file is written first: a kill between the two writes
	// leaves a run that added nothing recorded as having added, which the
	// next run corrects by lowering the count (never below zero); the other
	// order would leak the pages for good.
	if err := writeState(state, add); err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	giveBack := func(pages int) error {
		now, err := readHugepages()
		if err == nil {
			err = writeHugepages(max(now-pages, 0))
		}
		if err != nil {
			return fmt.Errorf("release hugepages: %w", err)
		}
		os.Remove(state)
		return nil
	}
	if err := writeHugepages(cur + add); err != nil {
		os.Remove(state)
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	got, err := readHugepages()
	if err == nil && got < cur+add {
		err = fmt.Errorf("kernel granted %d of %d pages", max(got-cur, 0), add)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("reserve hugepages: %w", err), giveBack(max(got-cur, 0)))
	}
	var once sync.Once
	return func() (err error) {
		once.Do(func() {
			unlock, lerr := lockHugepages()
			if lerr != nil {
				err = fmt.Errorf("release hugepages: %w", lerr)
				return
			}
			defer unlock()
			err = giveBack(add)
		})
		return err
	}, nil
}

// RestoreStaleHugepages gives back the pages that ringbench runs no longer
// alive reserved and never released (they were killed), and says what it
// gave back.
func RestoreStaleHugepages() ([]string, error) {
	unlock, err := lockHugepages()
	if err != nil {
		return nil, fmt.Errorf("restore hugepages: %w", err)
	}
	defer unlock()
	return restoreStaleLocked()
}

// lockHugepages takes the lock on hugepagesStateDir/hugepages.lock.
func lockHugepages() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Join(hugepagesStateDir, "hugepages"), 0o755); err != nil {
		return nil, fmt.Errorf("make hugepages state folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(hugepagesStateDir, "hugepages.lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open hugepages lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock hugepages: %w", err)
	}
	return func() { f.Close() }, nil // closing the file drops the lock
}

// reservation is one state file: a run's pid and the pages it added.
type reservation struct {
	path  string
	pid   int
	pages int
}

func readReservations() ([]reservation, error) {
	dir := filepath.Join(hugepagesStateDir, "hugepages")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read hugepages state: %w", err)
	}
	var out []reservation
	for _, e := range entries {
		owner, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(owner)
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read hugepages state: %w", err)
		}
		pages, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pages < 0 {
			return nil, fmt.Errorf("parse hugepages state %s: %q", path, b)
		}
		out = append(out, reservation{path: path, pid: pid, pages: pages})
	}
	return out, nil
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// restoreStaleLocked gives back dead runs' pages; the caller holds the lock.
func restoreStaleLocked() ([]string, error) {
	rs, err := readReservations()
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, r := range rs {
		if pidAlive(r.pid) {
			continue
		}
		cur, err := readHugepages()
		if err == nil {
			err = writeHugepages(max(cur-r.pages, 0))
		}
		if err != nil {
			return notes, fmt.Errorf("give back hugepages of dead pid %d: %w", r.pid, err)
		}
		os.Remove(r.path)
		notes = append(notes, fmt.Sprintf("%d hugepages that killed run %d reserved", r.pages, r.pid))
	}
	return notes, nil
}

// liveClaims is the pages that live runs (this one included) added.
func liveClaims() (int, error) {
	rs, err := readReservations()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rs {
		if pidAlive(r.pid) {
			n += r.pages
		}
	}
	return n, nil
}

func writeState(path string, pages int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("write hugepages state: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d\n", pages)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write hugepages state: %w", err)
	}
	return nil
}

func readHugepages() (int, error) {
	b, err := os.ReadFile(hugepagesPath)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", hugepagesPath, err)
	}
	return n, nil
}

func writeHugepages(n int) error {
	return os.WriteFile(hugepagesPath, []byte(strconv.Itoa(n)+"\n"), 0o644)
}

// minFreeHugepages is what one DPDK process here needs: the mbuf pool
// (8191 mbufs of about 2.3 KiB) plus the EAL's own heap, with room to spare.
const minFreeHugepages = 64

// freeHugepages is the kernel's count of free 2 MiB pages, 0 when it
// cannot be read.
func freeHugepages() int {
	b, err := os.ReadFile(strings.TrimSuffix(hugepagesPath, "nr_hugepages") + "free_hugepages")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}

// hugepagesFree reports whether enough 2 MiB pages are reserved and free
// for the EAL to use them instead of --no-huge.
func hugepagesFree() bool { return freeHugepages() >= minFreeHugepages }
