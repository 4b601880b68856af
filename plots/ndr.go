package plots

import (
	"fmt"
	"strconv"

	"ringbench/results"
)

// ndrSection adds the maximum sustainable rate per backend, from the
// folder's ndr.jsonl, when `ringbench ndr` wrote one.
func (r *run) ndrSection(doc *document) {
	if len(r.ndr) == 0 {
		return
	}
	doc.add(heading{2, "Maximum sustainable rate"},
		paragraph("Per backend, the highest open-loop rate at which the loss ratio ((lost + timed out + unsent) / offered) "+
			"and the p99 latency stayed within their limits and the answered rate within 2% of the target, found by "+
			"`ringbench ndr`: coarse steps up, bisection to the stated precision, then a confirmation trial at the rate found. "+
			"Cycles/op are the confirmation trial's. Every step's trial is in results.jsonl with a note \"ndr step k\". "+
			"\"generator-bound\" marks a search that stopped because a failing trial was client-bound: the generator, "+
			"not the server, was the limit, and the rate is a lower bound of the server's."),
		tableBlock{ndrTable(r.ndr)})
}

func ndrTable(found []results.NDR) *table {
	t := &table{header: []string{"backend", "proto", "size", "conns×depth", "max rate ops/s", "cycles/op", "p99 µs",
		"loss limit", "p99 limit µs", "precision", "trials", "flags"},
		right:  []bool{false, false, true, true, true, true, true, true, true, true, true, false},
		badges: map[int]bool{11: true}}
	for _, n := range found {
		rate, cycles, p99 := missing, missing, missing
		if n.Rate > 0 {
			rate = strconv.FormatFloat(n.Rate, 'f', 0, 64)
			cycles = fmt.Sprintf("%.0f (%s)", n.CyclesPerOp, n.CyclesSource)
			p99 = fmt.Sprintf("%.0f", n.P99US)
		}
		var flag string
		switch {
		case n.GeneratorBound:
			flag = fmt.Sprintf("generator-bound at %.0f ops/s", n.GeneratorBoundRate)
		case n.Error != "":
			flag = "error"
		case n.Rate == 0:
			flag = "none passed"
		}
		rate += " " + t.note(n.Stop)
		if n.Error != "" {
			rate += " " + t.note(n.Error)
		}
		t.rows = append(t.rows, []string{n.Backend, n.Config.Proto, strconv.Itoa(n.Config.Size),
			fmt.Sprintf("%d×%d", n.Config.Conns, n.Config.Depth), rate, cycles, p99,
			strconv.FormatFloat(n.LossLimit, 'g', -1, 64), strconv.FormatFloat(n.P99LimitUS, 'g', -1, 64),
			strconv.FormatFloat(n.Precision, 'g', -1, 64), strconv.Itoa(n.Trials), flag})
	}
	return t
}
