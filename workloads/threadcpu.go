package workloads

import (
	"bytes"
	"os"
	"strconv"
)

// threadsCPU returns the CPU time, in ns, the threads tids have run: the
// first field of /proc/self/task/TID/schedstat, which counts exactly the
// time on a CPU, unlike the tick-sampled utime and stime. A thread that
// cannot be read counts as zero.
func threadsCPU(tids []int) int64 {
	var sum int64
	for _, tid := range tids {
		b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/schedstat")
		if err != nil {
			continue
		}
		field, _, _ := bytes.Cut(b, []byte(" "))
		ns, err := strconv.ParseInt(string(field), 10, 64)
		if err == nil {
			sum += ns
		}
	}
	return sum
}
