package main

import (
	"fmt"
	"io"

	"ringbench/harness"
	"ringbench/uring"
)

func doctorCmd(stdout io.Writer) error {
	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no "
	}
	for _, c := range harness.Doctor() {
		fmt.Fprintf(stdout, "%s  %-22s %s\n", mark(c.OK), c.Name, c.Detail)
	}
	fmt.Fprintln(stdout, "\nio_uring on this kernel:")
	for _, f := range uring.Features() {
		fmt.Fprintf(stdout, "%s  %-40s %s\n", mark(f.Supported), f.Name, f.Detail)
	}
	return nil
}
