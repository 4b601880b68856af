package plots

import (
	"fmt"
	"sort"
	"strings"

	"ringbench/results"
)

// maxBeyondNames is how many names a beyond-data-path cell lists before it
// sums the rest: the cell stays short in a wide table.
const maxBeyondNames = 3

// beyondDataPath is the part of a record's outside syscall count beyond
// the backend's data path, by name (syscalls_by_name less the names in
// syscalls_data_path); false when the record has no count by name.
func beyondDataPath(rec *results.Record) (map[string]float64, bool) {
	if rec.SyscallsExplained == "" {
		return nil, false
	}
	inPath := map[string]bool{}
	for _, n := range rec.SyscallsDataPath {
		inPath[n] = true
	}
	beyond := map[string]float64{}
	for n, v := range rec.SyscallsByName {
		if !inPath[n] {
			beyond[n] = v
		}
	}
	return beyond, true
}

// beyondCell is the median over g's counted repeats of the syscalls per op
// beyond the data path, and its largest names' medians (a name absent from
// a repeat counted 0 there): "0.10 (futex 0.06, nanosleep 0.04)".
func (t *table) beyondCell(g *results.Group) string {
	var beyonds []map[string]float64
	names := map[string]bool{}
	for i := range g.OK {
		rec := &g.OK[i]
		if !results.Counted(rec) {
			continue
		}
		if b, ok := beyondDataPath(rec); ok {
			beyonds = append(beyonds, b)
			for n := range b {
				names[n] = true
			}
		}
	}
	if len(beyonds) == 0 {
		if g.Counted() == 0 {
			return t.noCounted(g)
		}
		why := "the records hold no syscalls_by_name (written before the meter counted names)"
		for _, rec := range g.OK {
			for _, n := range rec.Notes {
				if strings.Contains(n, "syscalls by name not published") {
					why = n
				}
			}
		}
		if _, ok := g.Stat(results.MSyscallsPerOp); !ok {
			why = "syscalls not counted: " + meterNote(g, results.MSyscallsPerOp)
		}
		return missing + " " + t.note("syscalls beyond the data path not read for "+g.Key+": "+why)
	}
	type named struct {
		name string
		v    float64
	}
	var list []named
	sums := make([]float64, len(beyonds))
	for n := range names {
		vals := make([]float64, len(beyonds))
		for i, b := range beyonds {
			vals[i] = b[n]
			sums[i] += b[n]
		}
		list = append(list, named{n, median(vals)})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].name < list[j].name
	})
	s := num(median(sums))
	var parts []string
	for i, nv := range list {
		if nv.v == 0 {
			break
		}
		if i == maxBeyondNames {
			parts = append(parts, fmt.Sprintf("%d more", len(list)-i))
			break
		}
		parts = append(parts, nv.name+" "+num(nv.v))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}
