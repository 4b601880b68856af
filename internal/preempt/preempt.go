// Package preempt is what a Go server's loop that waits in raw syscalls
// (no runtime bookkeeping, so the runtime makes no syscall on its behalf)
// needs from the scheduler.
//
// Such a loop keeps its P while it waits, and runs with async preemption
// off, so the runtime can stop it only where its code checks the
// goroutine's preempt flag: a function prologue's stack check. A loop
// woken by its tick with nothing to do may make no such call (what it
// calls is inlined, or is a leaf without the check), and then a
// stop-the-world waits for traffic: Point is that call. And every P a
// raw-waiting loop keeps is one the process's other goroutines lose: Hold
// and Release keep count, process-wide, so that one P is always left.
package preempt

import (
	"runtime"
	"sync"
)

// Point is a preemption point: a stop-the-world, a GC's stack scan or
// sysmon's preemption pending for the calling goroutine takes it here.
//
// It calls a function so that it is not a leaf (the compiler leaves the
// stack check out of small leaf functions) and is not inlined, so its
// prologue's check runs. The loops' own calls after a wake-up usually
// offer one too; Point makes it explicit.
//
//go:noinline
func Point() { callee() }

//go:noinline
func callee() {}

// TickNs is the period of a raw-waiting loop's tick, the wake-up that
// brings an idle loop to a Point: the runtime's own preemption interval
// (forcePreemptNS), so a stop-the-world waits for an idle loop no longer
// than for a busy goroutine.
const TickNs = 10_000_000

// held counts the Ps that raw-waiting loops keep, over every server of the
// process.
var held struct {
	sync.Mutex
	n int
}

// Hold reserves n Ps for n loops that wait raw, if the process keeps a P
// for everything else (GOMAXPROCS > every P held + n), or whatever it keeps
// when force is set (the user asked for raw waits). It reports whether it
// reserved them; a reservation is given back by Release(n).
func Hold(n int, force bool) bool {
	held.Lock()
	defer held.Unlock()
	if !force && runtime.GOMAXPROCS(0) <= held.n+n {
		return false
	}
	held.n += n
	return true
}

// Release gives back n Ps that Hold reserved.
func Release(n int) {
	held.Lock()
	defer held.Unlock()
	if n > held.n {
		panic("preempt: Release of more Ps than are held")
	}
	held.n -= n
}

// Held says how many Ps raw-waiting loops hold now.
func Held() int {
	held.Lock()
	defer held.Unlock()
	return held.n
}
