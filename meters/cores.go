package meters

import "fmt"

// CoresReader reads this host's per-CPU times: /proc/stat and, where it
// can be read (root), /proc/timer_list's nanosecond idle clock. The
// server's Reader reads its cores through one; a generator on another host
// than the harness (the hosts topology) reads its own cores with another.
type CoresReader struct {
	stat      *procFile
	timers    *procFile // nil without root
	timersErr error
}

// NewCoresReader opens the files; /proc/stat must open, timer_list may not.
func NewCoresReader() (*CoresReader, error) {
	stat, err := openProcFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	r := &CoresReader{stat: stat}
	r.timers, r.timersErr = openProcFile("/proc/timer_list")
	return r, nil
}

// Read is a snapshot of the cores alone: At, ReadTook, CPU and Idle.
func (r *CoresReader) Read() Snapshot {
	var s Snapshot
	t0 := Now()
	r.readInto(&s)
	t1 := Now()
	s.At, s.ReadTook = t0+(t1-t0)/2, t1-t0
	return s
}

func (r *CoresReader) readInto(s *Snapshot) {
	var b []byte
	if b, s.CPUErr = r.stat.read(); s.CPUErr == nil {
		s.CPU, s.CPUErr = ParseProcStat(b)
	}
	s.IdleErr = r.timersErr
	if r.timers != nil {
		if b, s.IdleErr = r.timers.read(); s.IdleErr == nil {
			s.Idle, s.IdleErr = ParseTimerList(b)
		}
	}
}

// Close closes the files.
func (r *CoresReader) Close() {
	if r != nil {
		r.stat.close()
		r.timers.close()
	}
}

// CoresBusy is the share of cpus busy between two snapshots (wall − idle −
// iowait − steal, as the server cores are measured) and its source
// (BusyTimerList or BusyProcStat).
func CoresBusy(a, b Snapshot, cpus []int) (share float64, source string, err error) {
	win := (b.At - a.At).Seconds()
	if len(cpus) == 0 || win <= 0 {
		return 0, "", fmt.Errorf("no cores or no window (%d cores, %.3f s)", len(cpus), win)
	}
	busy, _, source, err := coreBusy(a, b, cpus, win)
	if err != nil {
		return 0, "", err
	}
	return busy / (win * 1e9 * float64(len(cpus))), source, nil
}
