package plots

import (
	"fmt"
	"strconv"
	"strings"

	"ringbench/results"
)

// middleGround is the lesson, drawn from measurements: where each path's
// cycles go (sampled, by category), what each path removed and kept
// against the plain syscall path and against its C baseline, and which
// kernel features still see it. The old split of cycles into crossings and
// the rest, a model, follows as a side figure.
func (r *run) middleGround(doc *document, head *Chart, breakdowns map[string]*Chart, crossing []*Chart, svgs map[*Chart][]byte) {
	doc.add(heading{2, "The middle ground"})
	doc.add(paragraph("Measured: where each path's " + r.cyclesNoun() + " go at the same offered load. The server " +
		"cores were sampled with call chains in a window of their own after each cost window, on the same server, since " +
		"sampling moves the cost (a pprof file per trial, under profiles/ in " +
		"the results folder); every sample is classified by its chain into one category — " +
		categoryList() + " — and a category's cycles per op is its share of the samples × the share of the busy time the samples " +
		"saw (profile_coverage) × the cost window's cycles/op; the busy time no sample saw is unsampled. Figures are medians over the counted repeats. Each path is set against the first (the plain " +
		"syscall path) and each C baseline against the Go backend of its path."))
	if s := r.samplingCaveat(); s != "" {
		doc.add(callout{note, s})
	}
	any := false
	for _, f := range r.order {
		p, ok := r.mainPoint(f)
		if !ok {
			continue
		}
		t := r.breakdownTable(p)
		if len(t.rows) == 0 {
			continue
		}
		any = true
		doc.add(heading{3, "Where the cycles go — " + p.String()})
		name := breakdownPrefix + f.slug()
		switch {
		case head != nil && head.Name == name:
			doc.add(paragraph("The chart is the headline at the top of the report."))
		case breakdowns[name] != nil:
			c := breakdowns[name]
			doc.add(figure{c, ChartDir + "/" + c.Name + ".svg", svgs[c]})
		}
		doc.add(paragraph("Cycles per op by category and path (median; its share of the path's sampled time in brackets):"),
			tableBlock{t})
		if texts := r.breakdownTexts(p, false); len(texts) > 0 {
			doc.add(bullets(texts))
		}
	}
	if !any {
		doc.add(paragraph("Not measured: no record carries a cycles breakdown (the trials ran without a sampled profile)."))
	}

	doc.add(heading{3, "Crossings, modelled (side figure)"})
	doc.add(paragraph("Modelled, not measured: syscalls per op × the calibrated cost of one null syscall, against " +
		"the measured cycles per op; the rest is what remains (the kernel's network stack and the application). A " +
		"real syscall costs more than a null one (its work, cache and TLB misses), so the model is a lower bound on " +
		"crossings; the measured syscall category above is the figure to quote. The last column sets each path's " +
		"rest against the first path's."))
	if t := r.pathTable(); len(t.rows) > 0 {
		doc.add(tableBlock{t})
	} else {
		doc.add(paragraph("No trial finished, so there is no per-path cost to show."))
	}
	switch {
	case r.lesson == nil:
		doc.add(paragraph("Null-syscall calibration not measured: this folder has no " + results.LessonFile + "."))
	case r.lesson.SyscallCost == nil:
		doc.add(paragraph("Null-syscall calibration not measured: it did not run (see Not measured)."))
	default:
		c := r.lesson.SyscallCost
		s := fmt.Sprintf("Null-syscall calibration (the model's input): a null syscall cost %s ns on this machine, measured over %d calls (%s).",
			num(c.NsPerCall), c.Calls, c.Method)
		if cyc, ok := r.crossingCycles(); ok {
			s += fmt.Sprintf(" That is %s TSC cycles per crossing.", num(cyc))
		}
		doc.add(paragraph(s))
	}
	for _, c := range crossing {
		doc.add(figure{c, ChartDir + "/" + c.Name + ".svg", svgs[c]})
	}

	doc.add(heading{3, "Kernel features kept"})
	if r.lesson == nil || len(r.lesson.Features) == 0 {
		doc.add(paragraph("Not measured: no kernel-feature checks in this folder (see Not measured)."))
		return
	}
	doc.add(paragraph("Measured live on the veth topology for each backend: does an nftables counter rule in the " +
		"server's namespace count the backend's packets, does an nftables drop rule stop its traffic, does `ss` " +
		"list its socket."))
	doc.add(tableBlock{r.featureTable()})
}

// categoryList names the categories with what each holds.
func categoryList() string {
	var parts []string
	for _, c := range breakdownCategories {
		parts = append(parts, c+" ("+categoryGloss[c]+")")
	}
	return strings.Join(parts, ", ")
}

func (r *run) pathTable() *table {
	t := &table{
		header: []string{"workload", "backend", "syscalls/op", "own syscalls/op", "beyond data path", r.cyclesLabel("cycles/op"), r.cyclesLabel("cycles/pkt"),
			"crossings cycles/op (modelled)", "rest cycles/op (modelled)", "rest vs first"},
		right: []bool{false, false, true, true, false, true, true, true, true, true},
	}
	perCall, haveCal := r.crossingCycles()
	for _, f := range r.order {
		p, ok := r.mainPoint(f)
		if !ok {
			continue
		}
		firstRest, firstN := 0.0, 0
		for _, l := range r.labels {
			g := r.group(l, p)
			if g == nil {
				continue
			}
			row := []string{p.String(), l}
			if len(g.OK) == 0 {
				row = append(row, notRun+": "+truncate(g.Reason(), 50), notRun, notRun, notRun, notRun, notRun, notRun, notRun)
				t.rows = append(t.rows, row)
				continue
			}
			stat := func(m string) string {
				if s, ok := g.Stat(m); ok {
					return num(s.Center) + " " + ciPct(s)
				}
				return missing + " " + t.note(m+" not read for "+l+": "+meterNote(g, m))
			}
			row = append(row, stat(results.MSyscallsPerOp), stat(results.MBackendSyscalls), t.beyondCell(g),
				stat(results.MCyclesPerOp), stat(results.MCyclesPerPacket))
			sp, ok := r.crossingSplit(l, p, perCall)
			switch {
			case !haveCal:
				why := missing + " " + t.note("no null-syscall calibration")
				row = append(row, why, why, why)
			case !ok:
				why := missing + " " + t.note("needs both cycles/op and syscalls/op")
				row = append(row, why, why, why)
			default:
				cross := num(sp.crossing)
				rest := num(sp.rest)
				if sp.busy {
					rest += " " + t.note(l+" busy-polls: its rest is its own busy-cycle count (polls that found work), not core busy time")
				}
				if sp.clamped {
					cross += " " + t.note("the crossing estimate exceeded the measured cycles/op; shown clamped")
				}
				vs := "1.00×"
				if firstRest == 0 {
					firstRest, firstN = sp.rest, sp.n
				} else {
					vs = ratio(sp.rest, firstRest)
					if sp.n == 1 || firstN == 1 {
						vs += " (n=1)"
					}
				}
				row = append(row, cross, rest, vs)
			}
			t.rows = append(t.rows, row)
		}
	}
	return t
}

func (r *run) featureTable() *table {
	t := &table{header: []string{"backend", "topology", "proto", "nft counter counts its packets (counted of sent)",
		"nft drop rule stops it (answered of sent)", "ss lists its socket"}}
	for _, kf := range r.lesson.Features {
		t.rows = append(t.rows, []string{kf.Backend, kf.Topology, kf.Proto,
			t.checkCell(kf.Backend, kf.NftCounts), t.checkCell(kf.Backend, kf.NftDropStops), t.checkCell(kf.Backend, kf.SSListsSocket)})
	}
	return t
}

func (t *table) checkCell(backend string, c results.FeatureCheck) string {
	s := string(c.Verdict)
	if s == "" {
		s = string(results.Unmeasured)
	}
	if c.Counted != nil && c.Sent != nil {
		s += fmt.Sprintf(" (%d of %d)", *c.Counted, *c.Sent)
	} else if c.Counted != nil {
		s += fmt.Sprintf(" (%d counted)", *c.Counted)
	}
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	if c.Note != "" {
		s += " " + t.note(backend+": "+c.Note)
	}
	return s
}

func (r *run) envTable() *table {
	e := r.env
	tsc := missing
	if e.TSCHz > 0 {
		tsc = fmt.Sprintf("%s GHz (%s)", strconv.FormatFloat(e.TSCHz/1e9, 'f', 3, 64), e.TSCSource)
	}
	t := &table{header: []string{"", ""}}
	for _, kv := range [][2]string{
		{"CPU", e.CPUModel},
		{"CPUs", strconv.Itoa(e.CPUs)},
		{"kernel", e.Kernel},
		{"virtualized", strconv.FormatBool(e.Virtualized)},
		{"TSC", tsc},
		{"cycles_source", r.cyclesSource()},
		{"Go", e.GoVersion},
		{"git revision", e.GitRev},
		{"host", e.Hostname},
	} {
		v := kv[1]
		if v == "" || v == "0" {
			v = missing
		}
		t.rows = append(t.rows, []string{kv[0], v})
	}
	t.header = []string{"", "value"}
	return t
}

// method explains how each meter was read and lists the trials whose
// numbers need a caveat.
func (r *run) method(doc *document) {
	doc.add(heading{2, "Method"})
	doc.add(bullets{
		"ops and bytes: counted by the load generator, which verifies every echoed payload.",
		"packets: wire TCP segments + UDP datagrams, in and out, from /proc/net/snmp in the server's network namespace (DPDK: its port statistics); the server interface's skbs, where a GSO/GRO aggregate counts once, are recorded beside them.",
		"latency: an HDR histogram of per-request latency; in open loop measured from each request's intended send time, so it is corrected for coordinated omission. A request given up (lost or timed out) enters at its give-up time, a lower bound of its latency; \"lat censored\" counts them. A UDP reply that comes after its request was given up counts as lost and answered late, never as a mismatch. \"late / unsent\": open-loop requests sent over 1 ms after their intended time, and those never sent in the window; either means the generator or the server's slots, not the offered rate, set the pace.",
		"CPU ns/op: process CPU time of the server over the window, per op: its cgroup v2 cpu.stat usage, which keeps the time of threads that exited (cpu_source cgroup), else the sum of its threads' schedstat run time (cpu_source schedstat); io_uring's iou-sqp and iou-wrk threads are included.",
		"core busy: wall − idle − iowait − steal per server CPU, from /proc/timer_list's nanosecond NO_HZ idle accounting where it can be read (root; busy_source timer_list), else from /proc/stat in 10 ms units (busy_source proc_stat). outside ns/op is core busy − process CPU, per op: kernel work on the server cores outside the process (softirqs run from idle, kworkers); a negative value means the two meters disagree and is shown as it is.",
		"cycles: hardware cycles on the server cores via perf_event_open where the machine has a PMU (cycles_source perf, labelled cycles); otherwise core busy time × the TSC frequency (cycles_source tsc, labelled TSC-equivalent cycles).",
		"syscalls/op: the raw_syscalls:sys_enter tracepoint filtered to the server process (every syscall, the Go runtime's included). The tracepoint slows every syscall on the machine, so it is attached only in a separate counting window (up to 1 s) after the cost window, on the same server: every other figure comes from the cost window. \"syscall meter effect\" is cycles/op in the counting window over the cost window's, − 1: what counting would have done to the cost. own syscalls/op is the backend's count of its data-path syscalls, from the cost window. \"beyond data path\": the counting window's outside count by syscall name (a BPF program on the same tracepoint counts the server's syscalls by id), less the names the backend declares as its data path (its registry entry), with the largest names; each record's syscalls_explained line sets the whole outside count out as data path (beside the own count of the same window) plus the rest.",
		"DPDK's syscalls are its poll-mode driver's (ringbench's own loop makes none). On a veth end net_af_xdp runs in copy mode, where the kernel transmits only inside a syscall: one sendto per transmit burst is inherent to copy mode, and receive needs none (veth's NAPI copies frames onto the socket's ring). With a busy_budget (the PMD's default 64; ringbench's is 0) the PMD also calls recvfrom on every receive poll that finds its ring empty, for preferred busy polling: a polling choice, not a cost of the path. On memif there are none.",
		"noise: the run time of every other task last seen on the server cores (per-task deltas between two scans), and hypervisor steal; a trial where other tasks took over 10% (the default limit) or steal over 5% of the server cores is flagged noisy and repeated.",
		"statistics: each figure is the median over a configuration's counted repeats: ok and not flagged noisy or client-bound (flagged repeats are listed below and marked in the tables, never in a median, ratio or test). Intervals are 95% and distribution-free, as benchstat's (x/perf/benchmath); they need at least 6 repeats, and a figure from fewer says \"n=K, no interval\". A ratio from a single repeat says \"n=1\". Repeats run in rounds, shuffled within each round, so drift during a run falls on every backend alike.",
		"comparisons: the Mann-Whitney U test, as benchstat's. The cost of an op is judged on cycles/op or CPU ns/op, whichever has the tighter spread for the pair compared (the larger of the two sides' coefficients of variation); each finding names the meter and the spreads.",
	})
	if srcs := r.meterSources(); len(srcs) > 0 {
		doc.add(paragraph("Sources of this run's meters (how many ok trials read each):"), bullets(srcs))
	}
	if coarse := r.countRecords(func(rec *results.Record) bool { return rec.BusySource == busyProcStat }); coarse > 0 {
		doc.add(paragraph(fmt.Sprintf("Core busy of %s came from /proc/stat, in 10 ms units: up to 10 ms per server CPU "+
			"over the window may be missing or extra in their busy time, and so in their outside ns/op and, where "+
			"cycles_source is tsc, their cycles.", plural(coarse, "ok trial"))))
	}
	if strings.Contains(r.cyclesSource(), "tsc") {
		s := "This run's cycles are TSC-equivalent cycles: busy time × the constant TSC rate"
		if r.env.TSCHz > 0 {
			s += fmt.Sprintf(" (%s GHz)", strconv.FormatFloat(r.env.TSCHz/1e9, 'f', 3, 64))
		}
		s += ". They count the time a core was busy, not cycles retired: steal the guest sees is taken out of busy " +
			"time, but a vCPU slowed by what shares its core (a busy neighbour, a cold cache) counts as many cycles as " +
			"a fast one, and a busy-polling server (DPDK) counts every polling cycle, so its cycles/op at a low " +
			"offered load are mostly idle polls."
		doc.add(paragraph(s))
	}
	var flagged []string
	for _, g := range r.sortedGroups() {
		for _, rec := range g.OK {
			var why []string
			if rec.ClientBound {
				why = append(why, fmt.Sprintf("client-bound (client cores %.0f%% busy)", rec.ClientBusy*100))
			}
			if rec.Noisy {
				why = append(why, fmt.Sprintf("noisy (other tasks %.0f%% of the server cores, steal %.1f%%, run delay %.1f%%)",
					rec.NoiseOtherCPU*100, rec.NoiseSteal*100, rec.NoiseRunDelay*100))
			}
			if len(why) > 0 {
				flagged = append(flagged, fmt.Sprintf("%s repeat %d: %s", g.Key, rec.Repeat, strings.Join(why, ", ")))
			}
		}
		for _, rec := range g.NotOK {
			if rec.Status == results.StatusFailed {
				flagged = append(flagged, fmt.Sprintf("%s repeat %d: failed: %s", g.Key, rec.Repeat, rec.Error))
			}
		}
	}
	if len(flagged) == 0 {
		doc.add(paragraph("No trial was flagged client-bound or noisy, and none failed."))
		return
	}
	doc.add(paragraph("Trials flagged or failed:"), bullets(flagged))
}

// notMeasured gathers every gap, one sentence each: from the lesson, from
// skipped configurations, from unread meters and from charts not drawn.
func (r *run) notMeasured(skippedCharts []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if r.validation == nil {
		add("Meter validation: this folder has no " + results.ValidationFile + ".")
	} else {
		for _, c := range r.validation.Checks {
			if c.Skipped {
				add(fmt.Sprintf("Meter check %q: skipped: %s", c.Name, orElse(c.Detail, "no reason given")))
			}
		}
	}
	if r.lesson == nil {
		add("The middle-ground experiments (kernel-feature checks, null-syscall calibration): this folder has no " + results.LessonFile + ".")
	} else {
		for _, s := range r.lesson.NotMeasured {
			add(s)
		}
		if r.lesson.SyscallCost == nil {
			add("Null-syscall calibration: not in " + results.LessonFile + ".")
		}
		for _, kf := range r.lesson.Features {
			for _, c := range []struct {
				name string
				fc   results.FeatureCheck
			}{{"nft counter", kf.NftCounts}, {"nft drop", kf.NftDropStops}, {"ss", kf.SSListsSocket}} {
				if c.fc.Verdict == results.Unmeasured || c.fc.Verdict == "" {
					add(fmt.Sprintf("%s check for %s: %s", c.name, kf.Backend, orElse(c.fc.Reason, "no reason given")))
				}
			}
		}
	}
	if len(r.recs) == 0 {
		add("Trials: this folder has no " + results.JSONLFile + ".")
	}
	for _, g := range r.sortedGroups() {
		if len(g.OK) == 0 {
			// A skip is a property of the backend here, said once; a
			// failure belongs to its configuration.
			if g.NotOK[0].Status == results.StatusSkipped {
				add(fmt.Sprintf("%s over %s: %s", g.Config.Label(), g.Config.Proto, g.Reason()))
			} else {
				add(fmt.Sprintf("%s: failed: %s", g.Key, g.Reason()))
			}
			continue
		}
		for _, m := range []string{results.MSyscallsPerOp, results.MCyclesPerPacket, results.MCyclesPerOp} {
			if _, ok := g.Stat(m); !ok {
				add(fmt.Sprintf("%s for %s: %s", m, g.Key, meterNote(g, m)))
			}
		}
	}
	for _, s := range skippedCharts {
		add("Chart " + s)
	}
	return out
}

func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// busyProcStat is the busy_source of core busy time read from /proc/stat.
const busyProcStat = "proc_stat"

// meterSources names, for each meter, the sources the ok records read it
// from and how many read each: "core busy: timer_list (54), proc_stat (3)".
func (r *run) meterSources() []string {
	var out []string
	for _, m := range []struct {
		name string
		src  func(*results.Record) string
	}{
		{"core busy", func(rec *results.Record) string { return rec.BusySource }},
		{"process CPU", func(rec *results.Record) string { return rec.CPUSource }},
		{"cycles", func(rec *results.Record) string { return rec.CyclesSource }},
		{"packets", func(rec *results.Record) string { return rec.PacketsSource }},
		{"link packets", func(rec *results.Record) string { return rec.LinkPacketsSource }},
		{"syscalls", func(rec *results.Record) string { return rec.SyscallsSource }},
	} {
		var srcs []string
		count := map[string]int{}
		for i := range r.recs {
			rec := &r.recs[i]
			s := m.src(rec)
			if rec.Status != results.StatusOK || s == "" {
				continue
			}
			if count[s] == 0 {
				srcs = append(srcs, s)
			}
			count[s]++
		}
		for i, s := range srcs {
			srcs[i] = fmt.Sprintf("%s (%d)", s, count[s])
		}
		if len(srcs) > 0 {
			out = append(out, m.name+": "+strings.Join(srcs, "; "))
		}
	}
	return out
}

// countRecords counts the ok records for which f holds.
func (r *run) countRecords(f func(*results.Record) bool) int {
	n := 0
	for i := range r.recs {
		if r.recs[i].Status == results.StatusOK && f(&r.recs[i]) {
			n++
		}
	}
	return n
}
