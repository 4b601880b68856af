package dpdk

import (
	"os/signal"
	"syscall"
)

// ignoreSIGPIPE makes the process ignore SIGPIPE before the EAL starts its
// threads. net_memif's control channel calls sendmsg without MSG_NOSIGNAL
// from the EAL interrupt thread, a C thread: a peer that went away raises
// SIGPIPE there, and Go's handler does not recover a signal on a non-Go
// thread, so the process dies. Ignored, the send fails with EPIPE and the
// PMD handles the disconnect. (Go's own writes to a closed pipe then get
// EPIPE too, which they handle.)
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
