package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/meters"
)

// Serve is the server side of the harness's process protocol (the internal
// `ringbench serve` command): it starts the named backend, prints
// {"port":N}, answers each "counters" line on in with a JSON Counters line,
// and closes the server when in ends or a SIGTERM arrives.
func Serve(name string, cfg backends.Config, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	fail := func(err error) error {
		enc.Encode(serveError{Error: err.Error(), NotSupported: errors.Is(err, backends.ErrNotSupported)})
		return err
	}
	if len(cfg.CPUs) > 0 {
		if err := pinProcess(cfg.CPUs); err != nil {
			return fail(err)
		}
	}
	b, err := backends.Lookup(name)
	if err != nil {
		return fail(err)
	}
	if err := b.Supports(cfg.Proto, cfg.Service); err != nil {
		return fail(err)
	}
	if err := b.Probe(); err != nil {
		return fail(err)
	}
	srv, err := b.New(cfg)
	if err != nil {
		return fail(fmt.Errorf("start %s: %w", name, err))
	}
	if err := enc.Encode(map[string]int{"port": srv.Port()}); err != nil {
		srv.Close()
		return err
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return srv.Close()
			}
			switch line {
			case "counters":
				if err := enc.Encode(srv.Counters()); err != nil {
					srv.Close()
					return err
				}
			case "":
			default:
				enc.Encode(map[string]string{"error": "unknown command " + line})
			}
		case <-sig:
			return srv.Close()
		}
	}
}

// serveError is the line a server that could not start prints instead of
// its port. NotSupported carries errors.Is(err, backends.ErrNotSupported)
// across the process boundary, so that the harness records a trial this
// machine cannot run (dpdk on two cores, say) as skipped, not failed.
type serveError struct {
	Error        string `json:"error"`
	NotSupported bool   `json:"not_supported,omitempty"`
}

// notSupported is a server's refusal, read from its serveError line.
type notSupported string

func (e notSupported) Error() string        { return string(e) }
func (e notSupported) Is(target error) bool { return target == backends.ErrNotSupported }

// pinProcess sets the CPU affinity of every thread of this process. The
// harness also starts servers under taskset; this covers a serve command
// started by hand.
func pinProcess(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for _, tid := range meters.TasksOf([]int{os.Getpid()}) {
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("pin thread %d to cpus %v: %w", tid, cpus, err)
		}
	}
	return nil
}
