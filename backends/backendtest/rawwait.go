package backendtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/preempt"
	"ringbench/internal/testenv"
	"ringbench/meters"
)

// rawWaitChildEnv names, in a child process, the test RawWait re-ran.
const rawWaitChildEnv = "BACKENDTEST_RAWWAIT_CHILD"

// RawWait checks the promises of a raw wait, the wait a Go backend's loop
// makes without the runtime's syscall bookkeeping (so that the runtime
// makes no syscall on its behalf):
//
//   - it arms no kernel timer: a loop that sleeps between requests starts
//     fewer than one hrtimer per four requests (a wait with a timeout
//     starts one per sleep; on a VM each costs two TSC-deadline writes,
//     which made the Go servers 1.17x the C ones);
//   - a stop-the-world gets through a loop idling in it: three
//     runtime.GC() calls complete while the loop has nothing to do.
//
// Both matter only where the runtime cannot interrupt a raw wait itself,
// as ringbench serve runs Go servers (GODEBUG=asyncpreemptoff=1,
// GOMAXPROCS = loops + 1). So RawWait re-runs the calling test in a child
// process with those settings; the calling test must be a top-level test
// that does nothing else. A child that hangs (a GC waiting for the loop
// forever) fails the test when the parent's timeout ends it.
func RawWait(t *testing.T, name string, options map[string]string) {
	t.Helper()
	if os.Getenv(rawWaitChildEnv) == t.Name() {
		rawWaitChild(t, name, options)
		return
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("RawWait re-runs %s in a child process: call it from a top-level test", t.Name())
	}
	testenv.SkipUnlessRoot(t, "counting a thread's hrtimer_start tracepoint")
	if len(allowedCPUs()) < 2 {
		t.Skip("skipped: the loop's thread is told from the runtime's by its pinned CPU, which needs two CPUs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), rawWaitChildEnv+"="+t.Name(), "GODEBUG=asyncpreemptoff=1", "GOMAXPROCS=2")
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the child did not finish within 30 s (a stop-the-world waiting for a loop in a raw wait?):\n%s", out)
	case err != nil:
		t.Fatalf("child: %v\n%s", err, out)
	case bytes.Contains(out, []byte("--- SKIP")):
		t.Skipf("the child skipped:\n%s", out)
	}
	t.Logf("child:\n%s", out)
}

// rawWaitChild is RawWait's check, in the child process.
func rawWaitChild(t *testing.T, name string, options map[string]string) {
	b, err := backends.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedCPUs()
	cpu := allowed[len(allowed)-1]
	srv, err := b.New(backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "127.0.0.1", CPUs: []int{cpu}, Options: options})
	testenv.SkipIfUnsupported(t, err)
	defer func() {
		if err := closeWithin(srv, 10*time.Second); err != nil {
			t.Errorf("close server: %v", err)
		}
	}()
	// The checks below would pass as well for a loop that waits through
	// the runtime: make sure this one waits raw.
	if held := preempt.Held(); held != 1 {
		t.Fatalf("%d Ps held for raw waits, want the one loop's: the loop does not wait raw", held)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := payload(1, 64)
	if err := exchange(c, msg); err != nil { // the loop has accepted
		t.Fatal(err)
	}
	tid, err := pinnedThread(cpu)
	if err != nil {
		t.Fatal(err)
	}
	timers, err := openTracepoint("timer/hrtimer_start", tid)
	testenv.SkipIfUnsupported(t, err)
	defer unix.Close(timers)

	// Each request finds the loop asleep: the client pauses first.
	const rounds = 400
	start := time.Now()
	for range rounds {
		time.Sleep(200 * time.Microsecond)
		if err := exchange(c, msg); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	started, err := readCount(timers)
	if err != nil {
		t.Fatal(err)
	}
	// The loop's tick re-arms its timer once a period: twice that many are
	// allowed on top, so a slow machine does not fail the check, while a
	// timer per sleep (at least one per request) still does.
	limit := uint64(rounds/4) + 2*uint64(elapsed/(preempt.TickNs*time.Nanosecond)) + 2
	t.Logf("%d requests in %v, each to a sleeping loop: the loop's thread started %d hrtimers (limit %d)", rounds, elapsed.Round(time.Millisecond), started, limit)
	if limit >= rounds {
		t.Skipf("skipped: %d requests took %v, too slow to tell a timer per wait from the tick", rounds, elapsed)
	}
	if started >= limit {
		t.Errorf("the loop's thread started %d hrtimers over %d requests; a raw wait must arm no timer (want < %d)", started, rounds, limit)
	}

	// The loop now idles in its raw wait; a GC must stop the world anyway.
	time.Sleep(50 * time.Millisecond)
	for i := range 3 {
		start := time.Now()
		runtime.GC()
		t.Logf("GC %d with the loop idle: %v", i+1, time.Since(start).Round(time.Microsecond))
	}
	if err := exchange(c, msg); err != nil {
		t.Fatalf("echo after the GCs: %v", err)
	}
}

// pinnedThread finds this process's one thread whose CPU affinity is cpu
// alone: the loop's (the runtime's threads keep the process's mask).
func pinnedThread(cpu int) (int, error) {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		return 0, err
	}
	want := strconv.Itoa(cpu)
	var found []int
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) == want {
				tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				found = append(found, tid)
			}
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("want one thread pinned to CPU %d (the loop's), found %v", cpu, found)
	}
	return found[0], nil
}

// openTracepoint counts a tracepoint's hits while thread tid runs.
func openTracepoint(name string, tid int) (int, error) {
	id, err := meters.TracepointID(name)
	if err != nil {
		return -1, err
	}
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_TRACEPOINT,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config: id,
	}
	fd, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1, &backends.NotSupportedError{Feature: "tracepoint " + name, Reason: fmt.Sprintf("perf_event_open: %v", err)}
	}
	return fd, nil
}

// readCount reads a perf counter opened without a read format.
func readCount(fd int) (uint64, error) {
	var buf [8]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return 0, fmt.Errorf("read perf counter: %w", err)
	}
	if n != len(buf) {
		return 0, fmt.Errorf("read perf counter: %w after %d bytes", io.ErrUnexpectedEOF, n)
	}
	return binary.NativeEndian.Uint64(buf[:]), nil
}
