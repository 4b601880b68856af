// Command ringbench measures what a packet costs over Linux's epoll,
// io_uring and DPDK paths. See README.md; `ringbench help` lists commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ringbench(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ringbench:", err)
		if err == errUsage {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
