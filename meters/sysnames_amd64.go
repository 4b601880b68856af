package meters

import "golang.org/x/sys/unix"

// archSyscalls are the amd64 syscalls that the asm-generic table lacks:
// glibc's epoll_wait and poll (the C baselines, DPDK) call them.
var archSyscalls = []sysName{
	{"epoll_wait", unix.SYS_EPOLL_WAIT},
	{"poll", unix.SYS_POLL},
}
