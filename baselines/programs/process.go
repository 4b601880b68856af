package programs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"ringbench/backends"
)

// Process is a server program running as a child process, spoken to over
// the serve line protocol.
type Process struct {
	cmd    *exec.Cmd
	port   int
	stderr strings.Builder

	mu    sync.Mutex // one conversation at a time
	stdin io.WriteCloser
	out   *bufio.Reader

	exited    chan struct{}
	waitErr   error
	closeOnce sync.Once
	closeErr  error
}

var _ backends.Server = (*Process)(nil)

// How long Start waits for the port line and Close for the exit.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
)

// Start starts argv and waits for its {"port":N} line.
func Start(argv []string) (_ *Process, err error) {
	p := &Process{cmd: exec.Command(argv[0], argv[1:]...), exited: make(chan struct{})}
	p.cmd.Stderr = &lockedWriter{w: &p.stderr}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		p.stdin.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		p.stdin.Close()
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	type hello struct {
		Port  int    `json:"port"`
		Error string `json:"error"`
	}
	ready := make(chan error, 1)
	go func() {
		var h hello
		line, err := p.out.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &h)
		}
		if err == nil && h.Error != "" {
			err = errors.New(h.Error)
		}
		p.port = h.Port
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, fmt.Errorf("start %s: %w%s", argv[0], err, p.stderrTail())
		}
		return p, nil
	case <-time.After(startTimeout):
		// Close ends the process, which ends the reader.
		p.Close()
		<-ready
		return nil, fmt.Errorf("start %s: no port after %v%s", argv[0], startTimeout, p.stderrTail())
	}
}

// Port is the port the program listens on.
func (p *Process) Port() int { return p.port }

// Counters asks the program for its counters; a program that does not
// answer yields zero counters (the Server contract has no error here).
func (p *Process) Counters() backends.Counters {
	c, _ := p.counters()
	return c
}

func (p *Process) counters() (backends.Counters, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c backends.Counters
	if _, err := io.WriteString(p.stdin, "counters\n"); err != nil {
		return c, fmt.Errorf("ask for counters: %w", err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return c, fmt.Errorf("read counters: %w", err)
	}
	if err := json.Unmarshal(line, &c); err != nil {
		return c, fmt.Errorf("decode counters: %w", err)
	}
	return c, nil
}

// Close closes the program's stdin, which asks it to stop, and waits for
// it; one that does not exit within stopTimeout is killed.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			p.cmd.Process.Kill()
			<-p.exited
			p.closeErr = fmt.Errorf("stop %s: killed after %v%s", p.cmd.Path, stopTimeout, p.stderrTail())
			return
		}
		if p.waitErr != nil {
			p.closeErr = fmt.Errorf("stop %s: %w%s", p.cmd.Path, p.waitErr, p.stderrTail())
		}
	})
	return p.closeErr
}

func (p *Process) stderrTail() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	return " (stderr: " + s + ")"
}

// lockedWriter lets stderr be read while exec's goroutine writes it.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 8<<10 {
		return len(b), nil // the head says what went wrong
	}
	return l.w.Write(b)
}
