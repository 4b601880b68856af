package results

import "fmt"

func fmtKey(c Config) string {
	rate := "closed"
	if c.RateTarget > 0 {
		rate = fmt.Sprintf("%.0f", c.RateTarget)
	}
	return fmt.Sprintf("%s/%s/%s/%s/%s/conns=%d/depth=%d/size=%d/rate=%s/cores=%d",
		c.Label(), c.Workload, c.Service, c.Proto, c.Topology, c.Conns, c.Depth, c.Size, rate, c.Cores)
}
