//go:build dpdk

package dpdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/backends/backendtest"
)

var _ backends.Server = (*serverProcess)(nil)

// serverProcess is a backends.Server whose server runs in a child process
// (TestServerChild), for tests that start more than one EAL's worth.
type serverProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	ready childReady

	mu       sync.Mutex
	closed   bool
	closeErr error
	last     backends.Counters
}

func spawnServer(cfg backends.Config, netns string, stderr io.Writer) (*serverProcess, error) {
	spec, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	argv := []string{os.Args[0], "-test.run=^TestServerChild$", "-test.count=1"}
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	p := &serverProcess{cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 16)}
	p.cmd.Env = append(os.Environ(), "RINGBENCH_DPDK_SERVER="+string(spec))
	p.cmd.Stderr = stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go readLines(out, p.lines)
	line, err := p.expect("ready")
	if err == nil {
		err = json.Unmarshal([]byte(line), &p.ready)
	}
	if err != nil {
		p.stdin.Close()
		p.cmd.Process.Kill()
		for range p.lines {
		}
		p.cmd.Wait()
		return nil, err
	}
	return p, nil
}

func (p *serverProcess) expect(word string) (string, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return "", fmt.Errorf("server process ended before %q", word)
			}
			if rest, ok := strings.CutPrefix(l, word+" "); ok {
				return rest, nil
			}
			if rest, ok := strings.CutPrefix(l, "error "); ok {
				return "", errors.New(rest)
			}
		case <-timeout:
			return "", fmt.Errorf("server process: no %q in 30s", word)
		}
	}
}

func (p *serverProcess) Port() int { return p.ready.Port }

func (p *serverProcess) Counters() backends.Counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.last
	}
	fmt.Fprintln(p.stdin, "counters")
	if line, err := p.expect("counters"); err == nil {
		var c backends.Counters
		if json.Unmarshal([]byte(line), &c) == nil {
			p.last = c
		}
	}
	return p.last
}

func (p *serverProcess) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.closeErr
	}
	p.closed = true
	fmt.Fprintln(p.stdin, "counters")
	if line, err := p.expect("counters"); err == nil {
		// A fresh value: decoding into p.last would write into the Extra
		// map that an earlier Counters handed out.
		var c backends.Counters
		if json.Unmarshal([]byte(line), &c) == nil {
			p.last = c
		}
	}
	fmt.Fprintln(p.stdin, "close")
	got, err := p.expect("closed")
	if err == nil && got != "<nil>" {
		err = errors.New(got)
	}
	p.stdin.Close()
	for range p.lines {
	}
	p.closeErr = errors.Join(err, p.cmd.Wait())
	return p.closeErr
}

// The conformance suite's UDP cases, against a DPDK server on a veth end
// (af_xdp where it opens, else af_packet), each case's server in its own
// process, clients dialed from the client namespace.
func TestConformance(t *testing.T) {
	skipUnlessDPDK(t)
	v := newVethPair(t)
	startElsewhere = func(cfg backends.Config) (backends.Server, error) {
		return spawnServer(cfg, v.serverNS, io.Discard)
	}
	t.Cleanup(func() { startElsewhere = nil })
	backendtest.Run(t, "dpdk", backendtest.RunOptions{
		Host:       serverIP.String(),
		Iface:      v.serverIface,
		Options:    map[string]string{OptHugepages: "0"},
		NoSyscalls: true,
		OneLoop:    []int{0},
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			var c net.Conn
			var err error
			inNetns(t, v.clientNS, func() {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, address)
			})
			return c, err
		},
		Skip: map[backendtest.Check]string{
			backendtest.CheckTwoLoops: "net_af_xdp takes one queue on a veth (multiCoreRefusal); two lcores are tested on memif and af_packet (cores_dpdk_test.go)",
		},
	})
}
