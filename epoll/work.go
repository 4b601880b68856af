package epoll

import "ringbench/backends"

// echoWork is what an echo server does with each request after reading it
// and before echoing it: nothing (epoll's noWork) or a spin of a known
// number of TSC cycles (burn's burnWork). A server's work is chosen once,
// by its constructor, so the per-packet functions call it without asking
// which variant they serve. Its methods run on the loop's thread and count
// in the loop's counts.
type echoWork interface {
	// stream is told of n bytes just read from TCP connection c.
	stream(l *loop, c *conn, n int)
	// datagrams is told of n UDP datagrams about to be echoed.
	datagrams(l *loop, n int)
	// report adds what the work counted, summed over the loops, to c.
	report(c *backends.Counters, w workCounts)
}

// workCounts is what a loop's echoWork counted: the requests it worked on
// and the TSC cycles it spent on them.
type workCounts struct {
	requests, cycles uint64
}

// noWork is plain epoll's: an echo replies at once. It costs one indirect
// call to an empty method per TCP read or UDP batch.
type noWork struct{}

var _ echoWork = noWork{}

func (noWork) stream(*loop, *conn, int)              {}
func (noWork) datagrams(*loop, int)                  {}
func (noWork) report(*backends.Counters, workCounts) {}
