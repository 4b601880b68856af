package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/harness"
)

func TestNDRFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"rate is the search's", []string{"--rate", "1000"}, "--rate does not apply"},
		{"repeats", []string{"--repeats", "3"}, "--repeats does not apply"},
		{"backend and backends", []string{"--backend", "epoll", "--backends", "uring"}, "not both"},
		{"empty backends", []string{"--backends", ","}, "names no backend"},
		{"unknown backend", []string{"--backends", "epoll,nosuch"}, "nosuch"},
		{"negative loss", []string{"--loss", "-0.1"}, "--loss"},
		{"loss of one", []string{"--loss", "1"}, "--loss"},
		{"zero p99", []string{"--p99", "0"}, "--p99"},
		{"zero min rate", []string{"--min-rate", "0"}, "--min-rate"},
		{"max below min", []string{"--min-rate", "5000", "--max-rate", "100"}, "--max-rate"},
		{"precision", []string{"--precision", "1"}, "--precision"},
		{"factor", []string{"--factor", "1"}, "--factor"},
		{"stray argument", []string{"epoll"}, "unexpected argument"},
		{"bad topology", []string{"--topology", "moon"}, "topology"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			args := append([]string{"ndr", "--out", t.TempDir()}, tc.args...)
			err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ringbench %v: err %v, want one saying %q", args, err, tc.want)
			}
		})
	}
}

// A dry run lists a profile's searches after its trials, filtered as the
// trials are; a profile of searches alone is a profile.
func TestBenchDryRunListsSearches(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "p.yaml")
	yaml := `name: p
backends: [epoll, uring]
experiments:
  - name: scaling
    workload: echo
    proto: [udp]
    cores: [1, 2]
  - name: rate
    workload: echo
    proto: [udp]
    conns: [16]
    depth: [4]
    ndr: {loss: 0.005, p99_us: 1500, max_rate: 90000}
`
	if err := os.WriteFile(prof, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		want     []string
		unwanted []string
	}{
		{nil, []string{"profile p: 4 trials", "epoll echo/udp", "2 cores closed", "then 2 ndr searches",
			"1 epoll echo/udp " + harness.AutoTopology() + " c=16 d=4 64B: loss ≤ 0.005, p99 ≤ 1500 µs, precision 0.05, from 1000 ops/s up to 90000 ops/s",
			"2 uring echo/udp"}, nil},
		{[]string{"--backends", "uring"}, []string{"profile p: 2 trials", "then 1 ndr searches", "1 uring echo/udp"}, []string{"epoll"}},
	} {
		var out, errOut strings.Builder
		args := append([]string{"bench", "-n", "--profile", prof}, tc.args...)
		if err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("%v: %v (%s)", args, err, errOut.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, out.String())
			}
		}
		for _, w := range tc.unwanted {
			if strings.Contains(out.String(), w) {
				t.Errorf("%v: output has %q:\n%s", args, w, out.String())
			}
		}
	}
	// Searches alone.
	only := strings.Replace(yaml, "  - name: scaling\n    workload: echo\n    proto: [udp]\n    cores: [1, 2]\n", "", 1)
	if err := os.WriteFile(prof, []byte(only), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if err := ringbench(context.Background(), []string{"bench", "-n", "--profile", prof}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("searches alone: %v", err)
	}
	if !strings.Contains(out.String(), "profile p: 0 trials") || !strings.Contains(out.String(), "then 2 ndr searches") {
		t.Errorf("searches alone:\n%s", out.String())
	}
}
