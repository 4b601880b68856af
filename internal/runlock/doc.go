// Package runlock keeps a second ringbench run from measuring while one
// runs: both would pin their servers and generators to the same CPUs and
// measure each other as noise.
//
// Data flow:
//  1. Path names the lock file: /run/ringbench.lock where /run is
//     writable or the file is already there (so runs of root and of other
//     users exclude each other), else ringbench.lock in the temporary
//     folder; $RINGBENCH_LOCK, meant for tests, overrides both.
//  2. Acquire takes an exclusive flock(2) on it without waiting and writes
//     its pid there; a held lock is a HeldError naming the holder's pid.
//     The lock is the open file's: it ends with the process, so a run
//     killed outright leaves nothing stale, and its children do not
//     inherit it (the file is close-on-exec).
//  3. Release drops it.
package runlock
