package dpdk

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ringbench/internal/netns"
	"ringbench/internal/testenv"
)

func TestAfxdpIface(t *testing.T) {
	for vdev, want := range map[string]string{
		"net_af_xdp0,iface=eth1,start_queue=0,queue_count=1": "eth1",
		"net_af_xdp,iface=ens5":                              "ens5",
		"net_af_packet0,iface=eth1,qpairs=1":                 "",
		"net_null0":                                          "",
		"":                                                   "",
	} {
		if got := afxdpIface(vdev); got != want {
			t.Errorf("afxdpIface(%q) = %q, want %q", vdev, got, want)
		}
	}
}

// xdpLab is a network namespace of the test's with veth pairs, and a
// trivial XDP program (XDP_PASS) to attach: built with llc from LLVM IR,
// since clang is not needed for it.
type xdpLab struct {
	ns, obj string
}

func newXDPLab(t *testing.T, pairs int) xdpLab {
	t.Helper()
	testenv.SkipUnlessRoot(t, "network namespaces and XDP")
	for _, tool := range []string{"ip", "llc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (the test's XDP program is built with llc and attached with ip)", tool)
		}
	}
	dir := t.TempDir()
	ir := filepath.Join(dir, "pass.ll")
	os.WriteFile(ir, []byte(`define i32 @pass(i8* %ctx) section "xdp" {
  ret i32 2
}
@_license = global [4 x i8] c"GPL\00", section "license"
`), 0o644)
	l := xdpLab{ns: fmt.Sprintf("rbtest-xdp-%d", os.Getpid()), obj: filepath.Join(dir, "pass.o")}
	l.run(t, "llc", "-march=bpf", "-filetype=obj", ir, "-o", l.obj)
	l.run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	for i := 0; i < pairs; i++ {
		l.run(t, "ip", "-n", l.ns, "link", "add", l.iface(2*i), "type", "veth", "peer", "name", l.iface(2*i+1))
	}
	return l
}

func (l xdpLab) iface(i int) string { return fmt.Sprintf("rbx%d", i) }

func (l xdpLab) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// attach loads the program on iface in driver mode and returns its id.
func (l xdpLab) attach(t *testing.T, iface string) int {
	t.Helper()
	l.run(t, "ip", "-n", l.ns, "link", "set", "dev", iface, "xdpdrv", "obj", l.obj, "sec", "xdp")
	_, progs, err := xdpPrograms(l.ns, iface)
	if err != nil || len(progs) != 1 {
		t.Fatalf("programs on %s: %v, %v", iface, progs, err)
	}
	return progs[0].Prog.ID
}

func (l xdpLab) attached(t *testing.T, iface string) []xdpAttached {
	t.Helper()
	_, progs, err := xdpPrograms(l.ns, iface)
	if err != nil {
		t.Fatal(err)
	}
	return progs
}

// A dead server's program, still the one recorded, is detached; one of a
// live server, or one attached since in place of the recorded one, is left
// alone, as is a program nobody recorded.
func TestSweepStaleXDP(t *testing.T) {
	fakeHugepages(t, 0, 0) // the state folder
	l := newXDPLab(t, 2)
	dead, replaced, live, unrecorded := l.iface(0), l.iface(1), l.iface(2), l.iface(3)
	ids := map[string]int{}
	for _, iface := range []string{dead, replaced, live, unrecorded} {
		ids[iface] = l.attach(t, iface)
	}
	record := func(pid int, iface string, id int) {
		ifindex, _, err := xdpPrograms(l.ns, iface)
		if err != nil {
			t.Fatal(err)
		}
		st := xdpState{Pid: pid, Netns: l.ns, Iface: iface, Ifindex: ifindex, Programs: []xdpAttached{{Mode: 1}}}
		st.Programs[0].Prog.ID = id
		if err := writeXDPState(filepath.Join(xdpStateDir(), fmt.Sprintf("%d-%s.json", pid, iface)), st); err != nil {
			t.Fatal(err)
		}
	}
	record(deadPid, dead, ids[dead])
	record(deadPid, replaced, ids[replaced]+1000)
	record(os.Getpid(), live, ids[live])

	notes, err := SweepStaleXDP()
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], fmt.Sprintf("XDP program %d on %s", ids[dead], dead)) {
		t.Errorf("sweep said %q, want one note of program %d on %s", notes, ids[dead], dead)
	}
	if p := l.attached(t, dead); len(p) != 0 {
		t.Errorf("the dead server's program is still on %s: %v", dead, p)
	}
	for _, iface := range []string{replaced, live, unrecorded} {
		if p := l.attached(t, iface); len(p) != 1 || p[0].Prog.ID != ids[iface] {
			t.Errorf("program %d on %s was touched: %v", ids[iface], iface, p)
		}
	}
	left, _ := filepath.Glob(filepath.Join(xdpStateDir(), "*"))
	if want := filepath.Join(xdpStateDir(), fmt.Sprintf("%d-%s.json", os.Getpid(), live)); len(left) != 1 || left[0] != want {
		t.Errorf("state files left %v, want the live server's alone", left)
	}
}

// recordXDP, in the interface's namespace, records the program attached to
// an af_xdp vdev's interface, and forget drops the record.
func TestRecordXDP(t *testing.T) {
	fakeHugepages(t, 0, 0)
	l := newXDPLab(t, 1)
	iface := l.iface(0)
	id := l.attach(t, iface)
	var forget func()
	if err := netns.InNetns("/run/netns/"+l.ns, func() (err error) {
		forget, err = recordXDP("net_af_xdp0,iface="+iface+",start_queue=0,queue_count=1", os.Getpid(), nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(xdpStateDir(), fmt.Sprintf("%d-*.json", os.Getpid())))
	if len(files) != 1 {
		t.Fatalf("state files %v, want one", files)
	}
	b, _ := os.ReadFile(files[0])
	if want := fmt.Sprintf(`"netns":%q,"iface":%q`, l.ns, iface); !strings.Contains(string(b), want) ||
		!strings.Contains(string(b), fmt.Sprintf(`"prog":{"id":%d}`, id)) {
		t.Errorf("state %s, want %s and program %d", b, want, id)
	}
	forget()
	if _, err := os.Stat(files[0]); err == nil {
		t.Errorf("%s left after forget", files[0])
	}
}
