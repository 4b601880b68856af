package main

import (
	"context"
	"strings"
	"testing"
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
