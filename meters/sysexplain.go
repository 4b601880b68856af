package meters

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// syscallSumSlack is how far the by-name counts of a window may sum from
// the total counter's beyond the readings' gaps (SyscallCount.ReadGap: the
// syscalls made while the total was read, at either edge): a syscall in
// flight between the program's count and the perf counter's. 0.1% is the
// syscall meter's own tolerance (validate's known-count check); at least 2
// counts, for short windows.
func syscallSumSlack(total uint64) uint64 {
	return max(2, total/1000)
}

// SyscallsByName is the window's count by name (b − a), checked against the
// total counter's: the names count every id of the same tasks, so they
// must sum to total within the edges' read gaps and syscallSumSlack, or
// the two meters did not count the same syscalls and no by-name figure is
// published. Names that counted nothing are left out.
func SyscallsByName(a, b map[string]uint64, total, readGaps uint64) (map[string]uint64, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("no syscall counted by name")
	}
	if len(a) != len(b) {
		return nil, fmt.Errorf("the window's edges count %d and %d syscall names", len(a), len(b))
	}
	d := map[string]uint64{}
	var sum uint64
	for n, vb := range b {
		va, ok := a[n]
		if !ok {
			return nil, fmt.Errorf("syscall %s counted at the window's end only", n)
		}
		if vb < va {
			return nil, fmt.Errorf("syscall %s counted %d then %d: the counter went back", n, va, vb)
		}
		if v := vb - va; v > 0 {
			d[n] = v
			sum += v
		}
	}
	diff := max(sum, total) - min(sum, total)
	if limit := syscallSumSlack(total) + readGaps; diff > limit {
		return nil, fmt.Errorf("syscalls by name sum to %d, the total counter counted %d (off by more than %d, of which %d made while the edges read the total)", sum, total, limit, readGaps)
	}
	return d, nil
}

// ExplainSyscalls says in one line what the outside count is made of: the
// backend's data-path syscalls (the names it declares, with its own count
// beside them) plus every name beyond them, largest first. total is the
// outside count per op, own the backend's own count per op in the same
// window (nil when it was not read), byName the outside count per op by
// name, dataPath the names the backend's own count counts.
//
// "outside 2.33/op = data path 2.25 (recvmmsg 1.00, sendmmsg 1.00,
// epoll_pwait 0.25; own count 2.25) + beyond it 0.08 (futex 0.05,
// nanosleep 0.03)"
func ExplainSyscalls(total float64, own *float64, byName map[string]float64, dataPath []string) string {
	inPath := map[string]bool{}
	for _, n := range dataPath {
		inPath[n] = true
	}
	var path, beyond []nameCount
	var pathSum, beyondSum float64
	for n, v := range byName {
		if inPath[n] {
			path, pathSum = append(path, nameCount{n, v}), pathSum+v
		} else {
			beyond, beyondSum = append(beyond, nameCount{n, v}), beyondSum+v
		}
	}
	ownText := "own count not read"
	if own != nil {
		ownText = "own count " + perOpText(*own)
	}
	s := fmt.Sprintf("outside %s/op = data path %s (", perOpText(total), perOpText(pathSum))
	if len(path) > 0 {
		s += listNames(path) + "; "
	}
	s += ownText + ") + beyond it " + perOpText(beyondSum)
	if len(beyond) > 0 {
		s += " (" + listNames(beyond) + ")"
	}
	return s
}

// nameCount is one syscall name's count per op.
type nameCount struct {
	name string
	v    float64
}

// maxListed is how many names a list shows before it sums the rest: the
// note stays one line.
const maxListed = 6

// listNames lists the names largest first (by name where equal); past
// maxListed the rest are summed as "k more".
func listNames(ns []nameCount) string {
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].v != ns[j].v {
			return ns[i].v > ns[j].v
		}
		return ns[i].name < ns[j].name
	})
	var parts []string
	for i, nc := range ns {
		if i == maxListed-1 && len(ns) > maxListed {
			rest := 0.0
			for _, r := range ns[i:] {
				rest += r.v
			}
			parts = append(parts, fmt.Sprintf("%d more %s", len(ns)-i, perOpText(rest)))
			break
		}
		parts = append(parts, nc.name+" "+perOpText(nc.v))
	}
	return strings.Join(parts, ", ")
}

// perOpText writes a per-op count with two decimals, or with two
// significant digits below 0.1, so that a runtime's few syscalls per
// thousand ops do not print as 0.00.
func perOpText(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a < 1e-6:
		return "<0.000001"
	}
	return strconv.FormatFloat(roundSig(v, 2), 'f', -1, 64)
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	e := math.Floor(math.Log10(math.Abs(v)))
	p := math.Pow(10, float64(n-1)-e)
	return math.Round(v*p) / p
}
