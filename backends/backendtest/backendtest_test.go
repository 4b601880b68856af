package backendtest_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/backends/backendtest"
	_ "ringbench/epoll"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The suite must fail a backend that breaks the contract. Each mutant
// below breaks one rule; the suite runs against it in a child process
// (a failing subtest cannot be undone in this one) and must say what broke.
func TestSuiteCatchesMutants(t *testing.T) {
	if os.Getenv("BACKENDTEST_MUTANT") != "" {
		t.Skip("skipped: this is the child process")
	}
	for _, tc := range []struct{ mutant, want string }{
		{"mutant-leaks-fd", "file descriptors leaked"},
		{"mutant-no-syscalls", "Syscalls > 0"},
		{"mutant-corrupts", "byte 999 of"},
		{"mutant-never-closes", "read echo until EOF"},
	} {
		if _, ok := mutantCheck[tc.mutant]; !ok {
			t.Fatalf("no check named for %s", tc.mutant)
		}
		t.Run(tc.mutant, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutantChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BACKENDTEST_MUTANT="+tc.mutant)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed %s; output:\n%s", tc.mutant, out)
			}
			if !bytes.Contains(out, []byte(tc.want)) {
				t.Errorf("the suite failed %s without saying %q; output:\n%s", tc.mutant, tc.want, out)
			}
		})
	}
}

// mutantCheck is the one check each mutant must fail; the child skips the
// others, so that it fails fast and for that reason only.
var mutantCheck = map[string]backendtest.Check{
	"mutant-leaks-fd":     backendtest.CheckEcho,
	"mutant-no-syscalls":  backendtest.CheckCounters,
	"mutant-corrupts":     backendtest.CheckEcho,
	"mutant-never-closes": backendtest.CheckHalfClose,
}

var allChecks = []backendtest.Check{
	backendtest.CheckEcho, backendtest.CheckPipelined, backendtest.CheckManyConns,
	backendtest.CheckHalfClose, backendtest.CheckReset, backendtest.CheckOversize,
	backendtest.CheckSink, backendtest.CheckSource, backendtest.CheckCounters,
	backendtest.CheckTwoLoops, backendtest.CheckClose,
}

// TestMutantChild runs the suite against the mutant its parent names.
func TestMutantChild(t *testing.T) {
	name := os.Getenv("BACKENDTEST_MUTANT")
	if name == "" {
		t.Skip("skipped: runs only as TestSuiteCatchesMutants' child")
	}
	o := backendtest.RunOptions{Timeout: 2 * time.Second, Skip: map[backendtest.Check]string{}}
	for _, c := range allChecks {
		if c != mutantCheck[name] {
			o.Skip[c] = "not what " + name + " breaks"
		}
	}
	backendtest.Run(t, name, o)
}

func init() {
	epoll, err := backends.Lookup("epoll")
	if err != nil {
		panic(err)
	}
	tcpEcho := func(b backends.Backend) backends.Backend {
		b.Protos, b.Services = []backends.Proto{backends.TCP}, []backends.Service{backends.Echo}
		return b
	}
	leaky := tcpEcho(epoll)
	leaky.Name, leaky.Family = "mutant-leaks-fd", "mutant"
	leaky.New = func(cfg backends.Config) (backends.Server, error) {
		// A raw fd: an *os.File's finalizer could close it.
		unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return epoll.New(cfg)
	}
	backends.Register(leaky)

	quiet := tcpEcho(epoll)
	quiet.Name, quiet.Family = "mutant-no-syscalls", "mutant"
	quiet.New = func(cfg backends.Config) (backends.Server, error) {
		srv, err := epoll.New(cfg)
		return noSyscalls{srv}, err
	}
	backends.Register(quiet)

	backends.Register(backends.Backend{
		Name: "mutant-corrupts", Family: "mutant",
		Protos: []backends.Proto{backends.TCP}, Services: []backends.Service{backends.Echo},
		New: func(cfg backends.Config) (backends.Server, error) { return startNetEcho(cfg, false) },
	})
	backends.Register(backends.Backend{
		Name: "mutant-never-closes", Family: "mutant",
		Protos: []backends.Proto{backends.TCP}, Services: []backends.Service{backends.Echo},
		New: func(cfg backends.Config) (backends.Server, error) { return startNetEcho(cfg, true) },
	})
}

type noSyscalls struct{ backends.Server }

func (s noSyscalls) Counters() backends.Counters {
	c := s.Server.Counters()
	c.Syscalls = 0
	return c
}

// netEcho is a TCP echo on the net package with a fault: it flips byte 999
// of each connection's stream, or (holdOpen) never closes a connection its
// peer half-closed.
type netEcho struct {
	ln       net.Listener
	holdOpen bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func startNetEcho(cfg backends.Config, holdOpen bool) (*netEcho, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, "0"))
	if err != nil {
		return nil, err
	}
	e := &netEcho{ln: ln, holdOpen: holdOpen, conns: map[net.Conn]bool{}}
	e.wg.Add(1)
	go e.accept()
	return e, nil
}

func (e *netEcho) accept() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		e.conns[c] = true
		e.mu.Unlock()
		e.wg.Add(1)
		go e.serve(c)
	}
}

func (e *netEcho) serve(c net.Conn) {
	defer e.wg.Done()
	buf := make([]byte, 32<<10)
	var off int
	for {
		n, err := c.Read(buf)
		if !e.holdOpen && off <= 999 && 999 < off+n {
			buf[999-off] ^= 0xff
		}
		off += n
		if _, werr := c.Write(buf[:n]); werr != nil {
			break
		}
		if err == io.EOF && e.holdOpen {
			return // the connection stays open until Close
		}
		if err != nil {
			break
		}
	}
	e.drop(c)
}

func (e *netEcho) drop(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	c.Close()
}

func (e *netEcho) Port() int { return e.ln.Addr().(*net.TCPAddr).Port }

func (e *netEcho) Counters() backends.Counters {
	// Enough to pass the counter checks: the mutants break other rules.
	return backends.Counters{Syscalls: 1}
}

func (e *netEcho) Close() error {
	e.ln.Close()
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

var _ backends.Server = (*netEcho)(nil)
