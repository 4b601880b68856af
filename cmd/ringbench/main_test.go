package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/harness"
	"ringbench/internal/runlock"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) {
	// The harness re-executes its own binary as the server ("serve"); in
	// tests that binary is this one.
	if len(os.Args) > 1 && (internalCommands[os.Args[1]] || os.Args[1] == "version") {
		os.Exit(mainStatus(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	// The run lock of this test process alone: tests in other processes
	// (another package's, another worktree's) do not refuse each other.
	lockDir, err := os.MkdirTemp("", "ringbench-test-lock-")
	if err != nil {
		panic(err)
	}
	os.Setenv(runlock.EnvPath, filepath.Join(lockDir, "run.lock"))
	testenv.Main(m, func() { os.RemoveAll(lockDir) })
}

// The contract later work relies on: run writes DIR/results.jsonl with these
// keys.
var requiredKeys = []string{"backend", "variant", "workload", "proto", "topology", "conns", "depth",
	"size", "rate_target", "ops", "throughput_ops", "lat_p50_us", "lat_p99_us", "cpu_ns_per_op",
	"cycles_per_op", "cycles_per_packet", "cycles_source", "syscalls_per_op", "errors",
	"client_bound", "noisy"}

func runAndLoad(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	dir := t.TempDir()
	args = append([]string{"run", "--out", dir, "--warmup", "300ms", "--duration", "1s"}, args...)
	var out, errOut strings.Builder
	if err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("ringbench %v: %v\nstderr: %s", args, err, errOut.String())
	}
	recs, err := loadRecords(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	for _, name := range []string{"results.bench", "summary.md"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	return recs
}

// loadRecords reads dir's results.jsonl.
func loadRecords(t *testing.T, dir string) ([]map[string]any, error) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "results.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	return recs, sc.Err()
}

func checkRecord(t *testing.T, rec map[string]any) {
	t.Helper()
	for _, k := range requiredKeys {
		if _, ok := rec[k]; !ok {
			t.Errorf("record lacks key %q", k)
		}
	}
	if rec["status"] != "ok" {
		t.Fatalf("status %v: %v", rec["status"], rec["error"])
	}
	if ops, _ := rec["ops"].(float64); ops <= 0 {
		t.Errorf("ops = %v", rec["ops"])
	}
	if e, _ := rec["errors"].(float64); e != 0 {
		t.Errorf("errors = %v", e)
	}
	if c, _ := rec["cpu_ns_per_op"].(float64); c <= 0 {
		t.Errorf("cpu_ns_per_op = %v: the server's CPU was not measured", rec["cpu_ns_per_op"])
	}
}

func TestRunLoopbackEcho(t *testing.T) {
	if _, _, err := harness.CPUs(1); err != nil {
		t.Skipf("skipped: %v", err)
	}
	recs := runAndLoad(t, "--backend", "epoll", "--workload", "echo", "--proto", "tcp",
		"--conns", "8", "--depth", "2", "--size", "64", "--topology", "loopback")
	checkRecord(t, recs[0])
	if recs[0]["topology"] != "loopback" || recs[0]["backend"] != "epoll" {
		t.Errorf("record config: %v %v", recs[0]["topology"], recs[0]["backend"])
	}
	checkRawWaits(t, recs[0])
}

// checkRawWaits: the record says the window's waits were raw, as the
// harness runs a Go server (GOMAXPROCS = loops + 1 leaves a P to spare).
func checkRawWaits(t *testing.T, rec map[string]any) {
	t.Helper()
	bc, _ := rec["backend_counters"].(map[string]any)
	raw, rawOK := bc["raw_waits"].(float64)
	rt, rtOK := bc["runtime_waits"].(float64)
	if !rawOK || !rtOK || raw <= 0 || rt != 0 {
		t.Errorf("backend_counters raw_waits %v, runtime_waits %v: want the window's waits all raw", bc["raw_waits"], bc["runtime_waits"])
	}
}

func TestRunVethOpenLoop(t *testing.T) {
	testenv.SkipUnlessRoot(t, "the veth topology")
	if _, _, err := harness.CPUs(1); err != nil {
		t.Skipf("skipped: %v", err)
	}
	recs := runAndLoad(t, "--backend", "epoll", "--workload", "echo", "--proto", "udp",
		"--conns", "4", "--depth", "1", "--size", "100", "--rate", "2000", "--topology", "veth")
	rec := recs[0]
	checkRecord(t, rec)
	if p, ok := rec["packets"].(float64); !ok || p <= 0 {
		t.Errorf("packets = %v: the veth counters were not read", rec["packets"])
	}
	sc, ok := rec["syscalls_per_op"].(float64)
	if !ok || sc <= 0 {
		t.Errorf("syscalls_per_op = %v (%v)", rec["syscalls_per_op"], rec["syscalls_note"])
	}
	checkSyscallsByName(t, rec, sc, "recvmmsg", "sendmmsg")
	checkProfileWindow(t, rec)
}

// checkProfileWindow: the breakdown comes from a profile window of its own,
// not the cost window: its parts sum to that window's cycles per op,
// profile_effect relates it to the cost window's, and the cost window's
// noise came from the task scan (it had no samples to read it from).
func checkProfileWindow(t *testing.T, rec map[string]any) {
	t.Helper()
	bd, ok := rec["cycles_breakdown"].(map[string]any)
	if !ok {
		for _, n := range asStrings(rec["notes"]) {
			if strings.HasPrefix(n, "not profiled") {
				t.Logf("no profile to check: %s", n)
				return
			}
		}
		t.Fatalf("no cycles_breakdown and no note why: %v", rec["notes"])
	}
	own, _ := rec["profile_cycles_per_op"].(float64)
	cost, _ := rec["cycles_per_op"].(float64)
	eff, haveEff := rec["profile_effect"].(float64)
	if own <= 0 || cost <= 0 || !haveEff {
		t.Fatalf("profile_cycles_per_op %v, cycles_per_op %v, profile_effect %v", rec["profile_cycles_per_op"], rec["cycles_per_op"], rec["profile_effect"])
	}
	if math.Abs(own/cost-1-eff) > 1e-9 {
		t.Errorf("profile_effect %v, want %v / %v − 1", eff, own, cost)
	}
	sum := 0.0
	for _, v := range bd {
		part, _ := v.(map[string]any)
		c, _ := part["cycles_per_op"].(float64)
		sum += c
	}
	if math.Abs(sum/own-1) > 0.01 {
		t.Errorf("the breakdown sums to %.0f cycles/op, its window measured %.0f (the cost window %.0f)", sum, own, cost)
	}
	if rec["noise_source"] != "task scan" {
		t.Errorf("the cost window's noise source is %v, want the task scan", rec["noise_source"])
	}
}

func asStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// checkSyscallsByName: the counting window's names sum to its total, the
// backend's data-path batches are among them, and the explanation is there.
func checkSyscallsByName(t *testing.T, rec map[string]any, total float64, want ...string) {
	t.Helper()
	byName, ok := rec["syscalls_by_name"].(map[string]any)
	if !ok {
		t.Errorf("no syscalls_by_name; notes %v", rec["notes"])
		return
	}
	sum := 0.0
	for _, v := range byName {
		sum += v.(float64)
	}
	if math.Abs(sum-total) > 0.001*total {
		t.Errorf("syscalls_by_name sums to %v, syscalls_per_op is %v: %v", sum, total, byName)
	}
	for _, n := range want {
		if v, _ := byName[n].(float64); v <= 0 {
			t.Errorf("syscalls_by_name has no %s: %v", n, byName)
		}
	}
	if e, _ := rec["syscalls_explained"].(string); !strings.HasPrefix(e, "outside ") {
		t.Errorf("syscalls_explained = %q", e)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		// profile, when set, is written to a file whose path replaces
		// PROFILE in args.
		profile string
	}{
		{[]string{"nosuch"}, "unknown command", ""},
		{[]string{"run", "--backend", "nosuch"}, `unknown backend "nosuch"`, ""},
		{[]string{"run", "--proto", "sctp"}, "sctp", ""},
		{[]string{"run", "--proto", "udp", "--size", "2000"}, "1472", ""},
		{[]string{"run", "--size", "100000"}, "65536", ""},
		{[]string{"run", "--conns", "0"}, "conns", ""},
		{[]string{"run", "--rate", "-5"}, "rate", ""},
		{[]string{"run", "--workload", "chat"}, "chat", ""},
		{[]string{"run", "--topology", "mesh"}, `unknown topology "mesh"`, ""},
		{[]string{"run", "--backend", "external"}, "--server-cmd", ""},
		{[]string{"run", "--backend", "external", "--server-cmd", "srv {port}", "--server-port", "65536"}, "--server-port must be 1-65535", ""},
		{[]string{"run", "--backend", "external", "--server-cmd", "srv {port}", "--server-port", "-1"}, "--server-port must be 1-65535", ""},
		{[]string{"run", "--server-port", "8080"}, "--server-port is for --backend external only", ""},
		{[]string{"run", "--cores", "64"}, "CPUs", ""},
		{[]string{"bench", "--profile", "nosuch"}, `unknown profile "nosuch"`, ""},
		{[]string{"report"}, "want one results folder", ""},
		{[]string{"compare", "a"}, "want two results folders", ""},
		// Found by the hardening probes (issue 11): each was accepted, or
		// refused only once trials ran.
		{[]string{"bench", "-n", "extra"}, `unexpected argument "extra"`, ""},
		{[]string{"bench", "-n", "--topology", "nonsense"}, `unknown topology "nonsense"`, ""},
		{[]string{"run", "--workload", "echo", "--direction", "down"}, `direction "down" applies to stream`, ""},
		{[]string{"run", "--duration", "1ns"}, "at least 100ms", ""},
		{[]string{"run", "--backend", "uring-sqpoll", "--opt", "spin_us=100000000000000000"}, "spin_us", ""},
		{[]string{"run", "--backend", "uring-sqpoll", "--opt", "sq_cpu=99"}, "CPU 99", ""},
		{[]string{"run", "--backend", "epoll", "--opt", "batch=4"}, "epoll takes no options", ""},
		{[]string{"run", "--backend", "dpdk", "--proto", "udp", "--opt", "pmd=bogus"}, `pmd="bogus"`, ""},
		{[]string{"bench", "-n", "--profile", "PROFILE"}, "rate +Inf",
			"name: x\nbackends: [epoll]\nexperiments: [{workload: echo, rate: [.inf]}]\n"},
		{[]string{"bench", "-n", "--profile", "PROFILE"}, "repeats -1",
			"name: x\nbackends: [epoll]\nrepeats: -1\nexperiments: [{workload: echo}]\n"},
		{[]string{"bench", "-n", "--profile", "PROFILE"}, `unknown topology "nonsense"`,
			"name: x\nbackends: [epoll]\nexperiments: [{workload: echo, topology: nonsense}]\n"},
		{[]string{"bench", "-n", "--profile", "PROFILE"}, "sq_cpu",
			"name: x\nbackends: [uring-sqpoll]\nexperiments: [{workload: echo, options: {sq_cpu: \"99\"}}]\n"},
		{[]string{"bench", "-n", "--profile", "PROFILE"}, "at least 100ms",
			"name: x\nbackends: [epoll]\nduration: 1ms\nexperiments: [{workload: echo}]\n"},
		// 1.92M trials took 11.6 s and 1.8 GB only to list; this is 160000.
		{[]string{"bench", "-n", "--profile", "PROFILE"}, "more than 10000 trials",
			"name: x\nbackends: [epoll, uring]\nrepeats: 100\nexperiments: [{workload: echo, size: [1,2,3,4,5,6,7,8], " +
				"conns: [1,2,3,4,5,6,7,8,9,10], depth: [1,2,3,4,5,6,7,8,9,10]}]\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := tc.args
			if tc.profile != "" {
				path := filepath.Join(t.TempDir(), "p.yaml")
				if err := os.WriteFile(path, []byte(tc.profile), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append([]string(nil), args...)
				for i, a := range args {
					if a == "PROFILE" {
						args[i] = path
					}
				}
			}
			if args[0] == "run" {
				// Should the check be missing, the trial runs: keep it
				// short and out of the source tree.
				args = append([]string{"run", "--topology", "loopback", "--warmup", "0s", "--out", t.TempDir()}, args[1:]...)
			}
			var out, errOut strings.Builder
			err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tc.want) {
				t.Errorf("error %v (stderr %q), want one mentioning %q", err, errOut.String(), tc.want)
			}
			if strings.Contains(errOut.String(), "[1/") {
				t.Errorf("a trial ran before the input was refused: %q", errOut.String())
			}
		})
	}
}

// Two runs at once both pinned to the same CPUs with no warning (issue 11,
// item 13): a second run is refused at once, naming the first's pid; a
// dry run, which measures nothing, is not.
func TestSecondRunRefused(t *testing.T) {
	paths, _ := runlock.Paths()
	path := paths[0]
	l, err := runlock.Acquire(paths...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for _, args := range [][]string{
		{"run", "--topology", "loopback", "--warmup", "0s", "--duration", "100ms", "--out", t.TempDir()},
		{"bench", "--validate=false", "--lesson=false", "--topology", "loopback", "--out", t.TempDir()},
		{"lesson", "--out", t.TempDir()},
	} {
		var out, errOut strings.Builder
		err := ringbench(context.Background(), args, strings.NewReader(""), &out, &errOut)
		want := fmt.Sprintf("(pid %d) holds %s", os.Getpid(), path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want an error saying %q", args, err, want)
		}
		if strings.Contains(errOut.String(), "[1/") {
			t.Errorf("%v: a trial ran: %q", args, errOut.String())
		}
	}
	var out, errOut strings.Builder
	if err := ringbench(context.Background(), []string{"bench", "-n"}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Errorf("bench -n while a run holds the lock: %v", err)
	}
}

// Every built-in profile expands against the registered backends.
func TestBuiltinProfiles(t *testing.T) {
	for _, name := range harness.Profiles() {
		p, err := harness.LoadProfile(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		trials, err := p.Trials(harness.Loopback)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(trials) == 0 {
			t.Errorf("%s: no trials", name)
		}
	}
}
