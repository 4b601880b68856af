// Command ringbench measures what a packet costs over Linux's epoll,
// io_uring and DPDK paths. See README.md; `ringbench help` lists commands.
package main

import "os"

func main() {
	ctx, stop := signalContext()
	err := ringbench(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	status := exit(ctx, err, os.Stderr)
	stop()
	os.Exit(status)
}
