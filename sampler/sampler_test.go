package sampler_test

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
	"ringbench/sampler"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testCPU is the CPU the real-world tests pin their load to: the last one,
// away from CPU 0 where most of the machine's housekeeping runs.
func testCPU() int { return runtime.NumCPU() - 1 }

// pinned runs work on a locked OS thread pinned to cpu until stop is
// closed, and returns the thread's id once it runs there.
func pinned(t *testing.T, cpu int, stop <-chan struct{}, wg *sync.WaitGroup, work func(stop <-chan struct{})) int {
	t.Helper()
	tid := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			tid <- -1
			return
		}
		tid <- unix.Gettid()
		work(stop)
	}()
	id := <-tid
	if id < 0 {
		t.Fatalf("pin a thread to cpu %d failed", cpu)
	}
	return id
}

// sampleWhile samples cpu for d while work runs pinned there, and returns
// the result and the worker's thread id.
func sampleWhile(t *testing.T, cpu int, d time.Duration, work func(stop <-chan struct{})) (*sampler.Result, int) {
	t.Helper()
	testenv.SkipUnlessRoot(t, "sampling a whole CPU with perf_event_open")
	s, err := sampler.Open(sampler.Config{CPUs: []int{cpu}, PIDs: []int{os.Getpid()}})
	testenv.SkipIfUnsupported(t, err)
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tid := pinned(t, cpu, stop, &wg, work)
	time.Sleep(20 * time.Millisecond) // let it settle on its CPU
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	stopErr := s.Stop()
	close(stop)
	wg.Wait()
	if stopErr != nil {
		t.Fatal(stopErr)
	}
	res, err := s.Profile()
	if err != nil {
		t.Fatal(err)
	}
	return res, tid
}

// threadShares counts the categories of tid's samples outside interrupt
// work (on a shared machine other processes' traffic is received in
// softirqs on whatever thread the core runs: not the thread's own doing),
// and how many were in interrupts.
func threadShares(res *sampler.Result, tid int) (counts map[sampler.Category]int, n, irq int) {
	counts = map[sampler.Category]int{}
	for _, c := range res.Samples {
		switch {
		case int(c.TID) != tid:
		case c.InInterrupt:
			irq++
		default:
			counts[c.Category]++
			n++
		}
	}
	return counts, n, irq
}

var sink atomic.Uint64

//go:noinline
func spinUser(stop <-chan struct{}) {
	x := uint64(1)
	for {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		select {
		case <-stop:
			sink.Add(x)
			return
		default:
		}
	}
}

func nullSyscalls(stop <-chan struct{}) {
	for {
		for range 1024 {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

func TestSpinIsApp(t *testing.T) {
	res, tid := sampleWhile(t, testCPU(), 300*time.Millisecond, spinUser)
	counts, n, irq := threadShares(res, tid)
	t.Logf("thread %d: %d samples %v, %d more in interrupts; core: %+v", tid, n, counts, irq, res.Breakdown)
	if n < 50 {
		t.Fatalf("only %d samples of the spinning thread in 300 ms at %d Hz", n, res.Breakdown.Hz)
	}
	if got := float64(counts[sampler.App]) / float64(n); got < 0.9 {
		t.Errorf("app share of a user spin = %.3f, want >= 0.9", got)
	}
}

func TestNullSyscallsAreSyscall(t *testing.T) {
	res, tid := sampleWhile(t, testCPU(), 300*time.Millisecond, nullSyscalls)
	counts, n, irq := threadShares(res, tid)
	t.Logf("thread %d: %d samples %v, %d more in interrupts; core: %+v", tid, n, counts, irq, res.Breakdown)
	if n < 50 {
		t.Fatalf("only %d samples of the syscall loop in 300 ms at %d Hz", n, res.Breakdown.Hz)
	}
	if got := float64(counts[sampler.Syscall]) / float64(n); got <= 0.5 {
		t.Errorf("syscall share of a getppid loop = %.3f, want most (> 0.5)", got)
	}
}
