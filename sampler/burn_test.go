package sampler_test

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"ringbench/backends"
	"ringbench/epoll"
	"ringbench/internal/testenv"
	"ringbench/sampler"
)

// burnCycles is large next to a datagram's kernel cost (tens of
// microseconds): 2M TSC cycles is most of a millisecond at 2-3 GHz.
const burnCycles = 2_000_000

// TestBurnIsApp samples the burn backend's core while a client on another
// core keeps one datagram in flight: the spin is the server's own code,
// so app must hold at least 90% of the server's samples there. It also
// checks what any window's breakdown must satisfy: shares sum to 1, and
// the profile written round-trips through pprof's parser.
func TestBurnIsApp(t *testing.T) {
	testenv.SkipUnlessRoot(t, "sampling a whole CPU with perf_event_open")
	srvCPU, cliCPU := testCPU(), 0
	if srvCPU == cliCPU {
		t.Skip("skipped: needs two CPUs, one for the server and one for the client")
	}
	s, err := sampler.Open(sampler.Config{CPUs: []int{srvCPU}, PIDs: []int{os.Getpid()}})
	testenv.SkipIfUnsupported(t, err)
	defer s.Close()
	srv, err := epoll.NewBurn(backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: "127.0.0.1",
		CPUs: []int{srvCPU}, Options: map[string]string{"cycles": strconv.Itoa(burnCycles)}})
	testenv.SkipIfUnsupported(t, err)
	defer srv.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var clientErr error
	cliTID := pinned(t, cliCPU, stop, &wg, func(stop <-chan struct{}) {
		clientErr = echoDatagrams(srv.Port(), stop)
	})
	time.Sleep(50 * time.Millisecond)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	stopErr := s.Stop()
	close(stop)
	wg.Wait()
	if stopErr != nil {
		t.Fatal(stopErr)
	}
	if clientErr != nil {
		t.Fatal(clientErr)
	}
	res, err := s.Profile()
	if err != nil {
		t.Fatal(err)
	}

	counts := map[sampler.Category]int{}
	n, irq := 0, 0
	for _, c := range res.Samples {
		switch {
		case int(c.PID) != os.Getpid() || int(c.TID) == cliTID || c.Category == sampler.Idle:
		case c.InInterrupt:
			irq++ // other processes' traffic received on this core
		default:
			counts[c.Category]++
			n++
		}
	}
	t.Logf("server: %d samples %v, %d more in interrupts; core: %+v; burn requests %d", n, counts, irq, res.Breakdown, srv.Counters().Extra["burn_requests"])
	if n < 50 {
		t.Fatalf("only %d samples of the burn server in 300 ms", n)
	}
	if got := float64(counts[sampler.App]) / float64(n); got < 0.9 {
		t.Errorf("app share of the burn server = %.3f, want >= 0.9", got)
	}

	t.Run("shares sum to 1", func(t *testing.T) {
		checkShares(t, res.Breakdown)
	})
	t.Run("profile round-trips", func(t *testing.T) {
		checkRoundTrip(t, res)
	})
}

// echoDatagrams keeps one datagram in flight to port until stop closes.
func echoDatagrams(port int, stop <-chan struct{}) error {
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer c.Close()
	msg, buf := bytes.Repeat([]byte{'b'}, 64), make([]byte, 2048)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue // lost: send another
			}
			return err
		}
	}
}

func checkShares(t *testing.T, b sampler.Breakdown) {
	t.Helper()
	if b.Samples == 0 {
		t.Fatal("no non-idle samples")
	}
	sum, n := 0.0, 0
	for c, sh := range b.Shares {
		if sh <= 0 || sh > 1 {
			t.Errorf("share of %s = %v, want in (0, 1]", c, sh)
		}
		if c == string(sampler.Idle) {
			t.Errorf("idle has a share")
		}
		sum += sh
		n += b.Counts[c]
	}
	if sum < 1-1e-9 || sum > 1+1e-9 {
		t.Errorf("shares sum to %v, want 1: %v", sum, b.Shares)
	}
	if n != b.Samples {
		t.Errorf("the shared categories count %d samples, Samples = %d", n, b.Samples)
	}
	if total := b.Samples + b.Idle; total != sumCounts(b.Counts) {
		t.Errorf("counts sum to %d, Samples+Idle = %d", sumCounts(b.Counts), total)
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func checkRoundTrip(t *testing.T, res *sampler.Result) {
	t.Helper()
	path := t.TempDir() + "/trial.pb.gz"
	if err := res.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("profile.Parse: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != len(res.Samples) {
		t.Fatalf("parsed %d samples, wrote %d", len(p.Sample), len(res.Samples))
	}
	byCat := map[string]int{}
	for _, smp := range p.Sample {
		if len(smp.Location) == 0 {
			t.Fatal("a sample without locations")
		}
		byCat[smp.Label["category"][0]]++
	}
	for c, n := range res.Breakdown.Counts {
		if byCat[c] != n {
			t.Errorf("parsed %d samples labelled %s, breakdown counts %d", byCat[c], c, n)
		}
	}
	if p.SampleType[1].Type != "cpu" && p.SampleType[1].Type != "cycles" {
		t.Errorf("sample types %v", p.SampleType)
	}
}
