package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal syscall.Signal // 0: not interrupted
		err    error
		want   int
		print  string // the one line printed, "" for none
	}{
		{"success", 0, nil, 0, ""},
		{"error", 0, errors.New("boom"), exitFailed, "ringbench: boom"},
		{"usage", 0, errUsage, exitUsage, "ringbench: usage:"},
		{"skipped", 0, fmt.Errorf("run: %w", &statusError{exitSkipped, errors.New("1 of 1 trials skipped")}), exitSkipped, "ringbench: run: 1 of 1 trials skipped"},
		{"SIGINT with the command's message", syscall.SIGINT, errors.New("interrupted: 2 finished trials kept"), 130, "ringbench: interrupted: 2 finished trials kept"},
		{"SIGTERM after the command ended well", syscall.SIGTERM, nil, 143, "ringbench: interrupted (terminated)"},
		{"SIGINT outranks a failure", syscall.SIGINT, errors.New("1 of 1 trials failed"), 130, "ringbench: 1 of 1 trials failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.signal != 0 {
				cancel(interrupted{tc.signal})
			}
			var out strings.Builder
			got := exit(ctx, tc.err, &out)
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if got != tc.want || tc.print == "" && out.Len() > 0 || tc.print != "" && (len(lines) != 1 || !strings.HasPrefix(lines[0], tc.print)) {
				t.Errorf("exit = %d printing %q, want %d printing one line %q", got, out.String(), tc.want, tc.print)
			}
		})
	}
}

// TestServeClosesOnSIGTERM: the harness stops a server that outlives its
// closed stdin with SIGTERM; serve closes its server then and exits 0. An
// exit status of 143 there (the interrupt status the user-facing commands
// give) failed a trial that had measured well.
func TestServeClosesOnSIGTERM(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "serve", "--backend", "epoll", "--proto", "tcp", "--host", "127.0.0.1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.Contains(line, "port") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("serve's ready line %q, %v (stderr %q)", line, err, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v (stderr %q), want a clean exit", err, stderr.String())
	}
}
