package workloads

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
	"ringbench/internal/netns"
	"ringbench/internal/testenv"
)

// TestTargetNetns runs echo against a server that exists only inside a
// scratch network namespace: it works with Target.Netns and is refused
// without it, so the sockets were made in the namespace.
func TestTargetNetns(t *testing.T) {
	testenv.SkipUnlessRoot(t, "creating a network namespace")
	path, release, err := netns.Scratch()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var ln net.Listener
	if err := netns.InNetns(path, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := serveTCPOn(t, ln, echoConn(nil))
	spec := Spec{Workload: Echo, Proto: backends.TCP, Conns: 2, Depth: 2, Size: 100,
		Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond}
	rep, err := Run(context.Background(), spec, Target{Addr: srv.addr, Netns: path}, Hooks{})
	if err != nil {
		t.Fatalf("Run in netns: %v", err)
	}
	noErrors(t, rep)
	_, err = Run(context.Background(), spec, Target{Addr: srv.addr}, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Run outside the netns: %v, want connection refused", err)
	}
}
