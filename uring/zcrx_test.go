package uring

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

// skipWithoutZcrxKernel skips t where the kernel itself lacks zero-copy
// receive (or this process may not bind a queue): the interface checks
// come after.
func skipWithoutZcrxKernel(t *testing.T) {
	t.Helper()
	testenv.SkipUnlessRoot(t, "binding a NIC queue (CAP_NET_ADMIN)")
	testenv.SkipIfUnsupported(t, probeZcrxKernel())
}

// On a veth the registration always fails: veth has no DMA device, page
// pool or queue API. The refusal names the interface, its driver and the
// missing piece, and is ErrNotSupported.
func TestZcrxRefusesVeth(t *testing.T) {
	skipWithoutZcrxKernel(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skipf("skipped: nsenter (util-linux) missing: %v", err)
	}
	checkRefusal(t, probeZcrxOnVeth(), "zc0 (driver veth) is a virtual interface", "EOPNOTSUPP")
	checkRefusal(t, ProbeZcrx("zc9", 1), `no interface "zc9"`)
}

// Loopback refuses the same way, through the backend's own New as a run
// on the loopback topology starts it.
func TestZcrxRefusesLoopback(t *testing.T) {
	skipWithoutZcrxKernel(t)
	checkRefusal(t, ProbeZcrx("lo", 0), "lo (driver unknown) is a virtual interface")
	b, err := backends.Lookup("uring-zcrx")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := b.New(backends.Config{Proto: backends.TCP, Service: backends.Sink, Host: "127.0.0.1", Options: map[string]string{"rxq": "0"}})
	if err == nil {
		srv.Close()
		t.Fatal("uring-zcrx started on loopback")
	}
	checkRefusal(t, err, "lo (driver unknown) is a virtual interface")
}

func checkRefusal(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, backends.ErrNotSupported) {
		t.Fatalf("refusal %v is not ErrNotSupported", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
	t.Logf("refused: %v", err)
}

// Each errno of IORING_REGISTER_ZCRX_IFQ on an interface names its piece.
func TestZcrxRefusal(t *testing.T) {
	nic := iface{name: "eth1", driver: "bnxt_en", busInfo: "0000:3b:00.0", index: 4}
	virt := iface{name: "veth0", driver: "veth", index: 7}
	for _, tc := range []struct {
		errno unix.Errno
		nic   iface
		want  string
	}{
		{unix.EOPNOTSUPP, virt, "veth0 (driver veth) is a virtual interface"},
		{unix.EOPNOTSUPP, nic, "no queue management API"},
		{unix.ERANGE, nic, "rx queue 3 is out of range on eth1"},
		{unix.EINVAL, nic, "header/data split is off on eth1"},
		{unix.EEXIST, nic, "an XDP program is attached to eth1"},
		{unix.EBUSY, nic, "AF_XDP"},
		{unix.ENOMEM, nic, "RLIMIT_MEMLOCK"},
		{unix.EPERM, nic, "CAP_NET_ADMIN"},
		{unix.ENODEV, nic, "vanished"},
		{unix.EIO, nic, "IORING_REGISTER_ZCRX_IFQ on eth1 queue 3: input/output error"},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			if got := zcrxRefusal(tc.errno, tc.nic, 3); !strings.Contains(got, tc.want) {
				t.Errorf("zcrxRefusal(%v) = %q, want it to say %q", tc.errno, got, tc.want)
			}
		})
	}
}

func TestZcrxConfig(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"rxq": "2", "area_mb": "64"}, true},
		{map[string]string{"area_mb": "0"}, false},
		{map[string]string{"rxq": "-1"}, false},
		{map[string]string{"batch": "8"}, false},
	} {
		if _, err := parseZcrxOptions(tc.opts); (err == nil) != tc.ok {
			t.Errorf("options %v: %v, want ok %v", tc.opts, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		cfg  backends.Config
		want string
	}{
		{backends.Config{Iface: "eth1", Host: "10.0.0.1"}, "eth1"},
		{backends.Config{Host: "127.0.0.1"}, "lo"},
		{backends.Config{Host: "192.0.2.77"}, ""}, // TEST-NET-1: on no interface here
		{backends.Config{}, ""},
	} {
		got, err := zcrxIface(tc.cfg)
		if got != tc.want || (tc.want == "") != errors.Is(err, backends.ErrNotSupported) {
			t.Errorf("zcrxIface(%+v) = %q, %v; want %q", tc.cfg, got, err, tc.want)
		}
	}
	b, err := backends.Lookup("uring-zcrx")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Supports(backends.UDP, backends.Sink); !errors.Is(err, backends.ErrNotSupported) || !strings.Contains(err.Error(), "TCP streams") {
		t.Errorf("UDP: %v", err)
	}
	if err := b.Supports(backends.TCP, backends.Echo); !errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("TCP echo: %v", err)
	}
	if b.Family != "uring" || b.Variant != "zcrx" {
		t.Errorf("registered as family %q variant %q", b.Family, b.Variant)
	}
}
