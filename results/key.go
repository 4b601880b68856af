package results

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

func fmtKey(c Config) string {
	rate := "closed"
	if c.RateTarget > 0 {
		rate = fmt.Sprintf("%.0f", c.RateTarget)
	}
	k := fmt.Sprintf("%s/%s/%s/%s/%s/conns=%d/depth=%d/size=%d/rate=%s/cores=%d",
		c.Label(), c.Workload, c.Service, c.Proto, c.Topology, c.Conns, c.Depth, c.Size, rate, c.Cores)
	// Options change what is measured, so they are part of the key.
	for _, o := range slices.Sorted(maps.Keys(c.Options)) {
		k += "/" + o + "=" + strings.ReplaceAll(c.Options[o], "/", "_")
	}
	return k
}
