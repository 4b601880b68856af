package results

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/perf/benchfmt"
)

// BenchName is a configuration as a Go benchmark name: the workload as the
// benchmark and every other part of Config.Key as a /key=value sub-name,
// backend options included in sorted order, so that benchstat's rows are
// exactly the configurations and its -col and -row flags can slice by any
// key. cores stays last: a name ending in "-N" would be read as GOMAXPROCS.
func BenchName(c Config) string {
	rate := "closed"
	if c.RateTarget > 0 {
		rate = strconv.FormatFloat(c.RateTarget, 'f', -1, 64)
	}
	parts := []string{
		title(c.Workload),
		"backend=" + c.Label(),
		"service=" + c.Service,
		"proto=" + c.Proto,
		"topology=" + c.Topology,
		"conns=" + strconv.Itoa(c.Conns),
		"depth=" + strconv.Itoa(c.Depth),
		"size=" + strconv.Itoa(c.Size),
		"rate=" + rate,
	}
	for _, o := range slices.Sorted(maps.Keys(c.Options)) {
		parts = append(parts, o+"="+c.Options[o])
	}
	parts = append(parts, "cores="+strconv.Itoa(c.Cores))
	// A space or a slash inside a value would split the name.
	for i, p := range parts {
		parts[i] = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) || r == '/' && i > 0 {
				return '_'
			}
			return r
		}, p)
	}
	return strings.Join(parts, "/")
}

func title(s string) string {
	if s == "" {
		return "Unknown"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// WriteBenchfmt writes the records that Summarize counts (ok, not flagged
// noisy or client-bound) in Go's benchmark format, one line per repeat, so
// that `benchstat a/results.bench b/results.bench` puts the two runs side
// by side per configuration and unit. Meters that were not read are left
// out of their line rather than written as zero.
//
// Every unit says which way is better and that benchstat is to assume
// nothing of its distribution (a rank test, as Summarize uses). Nothing
// that differs between two runs of one machine (the run id, the time) is a
// file-level key: benchstat's default -table is every such key, and one
// that differs puts each run in a table of its own.
func WriteBenchfmt(w io.Writer, recs []Record) error {
	bw := benchfmt.NewWriter(w)
	for _, m := range Metrics {
		better := "lower"
		if m.Better > 0 {
			better = "higher"
		}
		for _, kv := range [][2]string{{"better", better}, {"assume", "nothing"}} {
			meta := &benchfmt.UnitMetadata{
				UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: m.BenchUnit, Key: kv[0]},
				OrigUnit:        m.BenchUnit,
				Value:           kv[1],
			}
			if err := bw.Write(meta); err != nil {
				return fmt.Errorf("write unit metadata: %w", err)
			}
		}
	}
	for i := range recs {
		r := &recs[i]
		if !Counted(r) {
			continue
		}
		res := &benchfmt.Result{
			Config: fileConfig(r),
			Name:   benchfmt.Name(BenchName(r.Config)),
			Iters:  1,
		}
		for _, m := range Metrics {
			if v, ok := m.Of(r); ok {
				res.Values = append(res.Values, benchfmt.Value{Value: v * m.BenchScale, Unit: m.BenchUnit})
			}
		}
		if err := bw.Write(res); err != nil {
			return fmt.Errorf("write benchmark line: %w", err)
		}
	}
	return nil
}

func fileConfig(r *Record) []benchfmt.Config {
	kv := [][2]string{
		{"goos", "linux"},
		{"pkg", "ringbench"},
		{"cpu", r.Env.CPUModel},
		{"kernel", r.Env.Kernel},
		{"cycles_source", r.CyclesSource},
	}
	var out []benchfmt.Config
	for _, p := range kv {
		if p[1] == "" {
			continue
		}
		out = append(out, benchfmt.Config{Key: p[0], Value: []byte(p[1]), File: true})
	}
	return out
}
