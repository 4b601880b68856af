package dpdk

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// hugepagesPath is where the kernel takes the count of 2 MiB pages; tests
// point it elsewhere.
var hugepagesPath = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

// ReserveHugepages asks the kernel for n 2 MiB hugepages (root only) and
// returns a release that restores the count found before. The kernel may
// grant fewer pages than asked when memory is fragmented: that is an error,
// after the previous count is restored.
func ReserveHugepages(n int) (release func() error, err error) {
	if n < 0 {
		return nil, fmt.Errorf("reserve hugepages: negative count %d", n)
	}
	prev, err := readHugepages()
	if err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	restore := func() error {
		if err := writeHugepages(prev); err != nil {
			return fmt.Errorf("release hugepages: %w", err)
		}
		return nil
	}
	if err := writeHugepages(n); err != nil {
		return nil, fmt.Errorf("reserve hugepages: %w", err)
	}
	got, err := readHugepages()
	if err == nil && got < n {
		err = fmt.Errorf("kernel granted %d of %d pages", got, n)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("reserve hugepages: %w", err), restore())
	}
	return restore, nil
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

// hugepagesFree reports whether enough 2 MiB pages are reserved and free
// for the EAL to use them instead of --no-huge.
func hugepagesFree() bool {
	b, err := os.ReadFile(strings.TrimSuffix(hugepagesPath, "nr_hugepages") + "free_hugepages")
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && n >= minFreeHugepages
}
