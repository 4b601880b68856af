// Command ringbench measures what a packet costs over Linux's epoll,
// io_uring and DPDK paths. See README.md; `ringbench help` lists commands.
package main

import (
	"context"
	"io"
	"os"
)

func main() {
	os.Exit(mainStatus(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// internalCommands are the ones the harness runs as its children. Each
// ends on its own terms (its stdin closed, or a SIGTERM that serve handles
// and closes its server on), so a signal is not an interrupt of a run for
// them: a server that closed cleanly on the harness's SIGTERM exits 0, not
// 143, which the harness would read as a failed trial.
var internalCommands = map[string]bool{"serve": true, "dpdkgen": true, "remotegen": true}

// mainStatus runs the command args names and returns its exit status.
func mainStatus(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := context.Background(), func() {}
	if len(args) == 0 || !internalCommands[args[0]] {
		ctx, stop = signalContext()
	}
	defer stop()
	return exit(ctx, ringbench(ctx, args, stdin, stdout, stderr), stderr)
}
