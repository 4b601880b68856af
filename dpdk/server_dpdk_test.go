//go:build dpdk

package dpdk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

// FuzzReflect compares the C path too in this build.
func init() { reflectTwin = reflectC }

// The C fast path must judge and rewrite every frame exactly as the Go
// rules do: the table cases, the fuzz corpus, and random mutations of both.
func TestReflectCMatchesGo(t *testing.T) {
	var frames [][]byte
	frames = append(frames, udpFrame{payload: []byte("x")}.build(), udpFrame{payload: bytes.Repeat([]byte{7}, 1001), partialCsum: true}.build(),
		arpRequest(serverIP), arpRequest(clientIP), udpFrame{payload: make([]byte, backends.MaxUDPPayload+1)}.build())
	corpus, err := filepath.Glob("testdata/fuzz/FuzzReflect/*")
	if err != nil || len(corpus) == 0 {
		t.Fatalf("no fuzz corpus: %v", err)
	}
	for _, path := range corpus {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[1], "[]byte(%q)", &s); err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		frames = append(frames, []byte(s))
	}
	rng := rand.New(rand.NewSource(1))
	for _, f := range frames[:len(frames):len(frames)] {
		for i := 0; i < 300; i++ {
			m := bytes.Clone(f)
			if len(m) > 0 {
				m[rng.Intn(len(m))] = byte(rng.Intn(256))
			}
			if rng.Intn(4) == 0 {
				m = m[:rng.Intn(len(m)+1)]
			}
			frames = append(frames, m)
		}
	}
	for _, r := range fuzzReflectors() {
		for i, f := range frames {
			goFrame, cFrame := bytes.Clone(f), bytes.Clone(f)
			gv, cv := r.Reflect(goFrame), reflectC(r, cFrame, 1)
			if gv != cv || !bytes.Equal(goFrame, cFrame) {
				t.Fatalf("%s checksum mode %d ip %v frame %d (%x):\n Go %+v %x\n C  %+v %x", r.Service, r.UDPChecksum, r.IP, i, f, gv, goFrame, cv, cFrame)
			}
		}
	}
}

type childReady struct {
	Port int    `json:"port"`
	MAC  string `json:"mac"`
	PMD  string `json:"pmd"`
}

// TestServerChild is the child's body; it only runs when a test starts it.
func TestServerChild(t *testing.T) {
	spec := os.Getenv("RINGBENCH_DPDK_SERVER")
	if spec == "" {
		t.Skip("helper process for the DPDK server tests")
	}
	fail := func(err error) { fmt.Printf("error %v\n", err); os.Exit(0) }
	var cfg backends.Config
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fail(err)
	}
	b, err := backends.Lookup("dpdk")
	if err != nil {
		fail(err)
	}
	srv, err := b.New(cfg)
	if err != nil {
		fail(err)
	}
	s := srv.(*Server)
	mac := s.MAC()
	r, _ := json.Marshal(childReady{Port: s.Port(), MAC: net.HardwareAddr(mac[:]).String(), PMD: s.PMD()})
	fmt.Printf("ready %s\n", r)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "counters":
			c, _ := json.Marshal(s.Counters())
			fmt.Printf("counters %s\n", c)
		case "close":
			fmt.Printf("closed %v\n", s.Close())
			os.Exit(0)
		}
	}
	s.Close()
	os.Exit(0)
}

// serverChild is a DPDK server in a child process: the EAL lives once per
// process, and a test process must not keep its fds.
type serverChild struct{ *serverProcess }

// startServer runs a DPDK server in a child process, inside netns when it
// is not empty, and closes it when t ends.
func startServer(t *testing.T, cfg backends.Config, netns string) *serverChild {
	t.Helper()
	p, err := spawnServer(cfg, netns, &testLog{t: t})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return &serverChild{p}
}

func (c *serverChild) counters(t *testing.T) backends.Counters {
	t.Helper()
	return c.Counters()
}

func (c *serverChild) close(t *testing.T) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Logf("server stderr: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func skipUnlessDPDK(t *testing.T) {
	t.Helper()
	testenv.SkipUnlessRoot(t, "a DPDK port")
	testenv.SkipIfUnsupported(t, probeServer())
}

// net_null hands the loop an endless stream of zeroed frames: all dropped
// as non-IP, all counted, and the server shuts down cleanly.
func TestNullPortSmoke(t *testing.T) {
	skipUnlessDPDK(t)
	for _, huge := range []string{"0", "auto"} {
		t.Run("hugepages="+huge, func(t *testing.T) {
			if huge == "auto" {
				release, err := ReserveHugepages(128)
				if err != nil {
					t.Skipf("skipped: no hugepages: %v", err)
				}
				defer func() {
					if err := release(); err != nil {
						t.Error(err)
					}
				}()
			}
			s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0},
				Options: map[string]string{OptVdev: "net_null0", OptHugepages: huge}}, "")
			if s.ready.Port != DefaultPort {
				t.Errorf("port %d, want the default %d", s.ready.Port, DefaultPort)
			}
			var c backends.Counters
			deadline := time.Now().Add(10 * time.Second)
			for c.Extra["drop_ethertype"] < 1000 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				c = s.counters(t)
			}
			x := c.Extra
			if x["drop_ethertype"] < 1000 || x["port_rx_packets"] < x["drop_ethertype"] {
				t.Errorf("counters %+v: want many frames dropped as non-IP, all seen by the port", c)
			}
			// rb_read_queues loads busy_packets after the drop counts, the loop
			// publishes it before them: every frame counted as dropped is
			// in busy_packets.
			if x["busy_packets"] < x["drop_ethertype"] || x["busy_cycles"] == 0 || x["tsc_hz"] == 0 {
				t.Errorf("busy meters %+v", x)
			}
			if c.Syscalls != 0 || c.Dropped != 0 || c.TxMsgs != 0 {
				t.Errorf("counters %+v: non-IP frames are not malformed and get no reply", c)
			}
			// memif's control sendmsg raises SIGPIPE on an EAL thread
			// when its peer has gone; the server must live through it.
			sigpipeEALThread(t, s.cmd.Process.Pid)
			if c2 := s.counters(t); c2.Extra["drop_ethertype"] <= x["drop_ethertype"] {
				t.Errorf("server stopped counting after SIGPIPE on an EAL thread: %v", c2.Extra)
			}
			s.close(t)
		})
	}
	if n, err := readHugepages(); err == nil && n != 0 {
		t.Logf("hugepages left at %d (the machine had them before)", n)
	}
}

// sigpipeEALThread sends SIGPIPE to the EAL interrupt thread of process pid,
// as the kernel does when that thread's sendmsg finds its peer gone.
func sigpipeEALThread(t *testing.T, pid int) {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		comm, err := os.ReadFile(task + "/comm")
		if err != nil || !strings.HasPrefix(string(comm), "eal-intr") {
			continue
		}
		var tid int
		fmt.Sscanf(filepath.Base(task), "%d", &tid)
		if err := unix.Tgkill(pid, tid, unix.SIGPIPE); err != nil {
			t.Fatalf("tgkill SIGPIPE: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		return
	}
	t.Fatalf("no EAL interrupt thread among %d threads of %d", len(tasks), pid)
}

func TestUnknownOption(t *testing.T) {
	_, err := newServer(backends.Config{Proto: backends.UDP, Service: backends.Echo, Options: map[string]string{"bogus": "1", OptVdev: "net_null0"}})
	if err == nil || !strings.Contains(err.Error(), "unknown option") {
		t.Fatalf("err = %v, want unknown option", err)
	}
}

// vethPair makes two network namespaces joined by a veth pair and removes
// them when the test ends. The server end has no kernel address: the DPDK
// server answers ARP for it.
type vethPair struct {
	serverNS, clientNS     string
	serverIface, clientIfc string
}

func newVethPair(t *testing.T) vethPair {
	t.Helper()
	testenv.SkipUnlessRoot(t, "network namespaces")
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2's ip is not installed")
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	v := vethPair{
		serverNS: "rbdpdk-s" + id, clientNS: "rbdpdk-c" + id,
		serverIface: "rbs" + id, clientIfc: "rbc" + id,
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", v.serverNS).Run()
		exec.Command("ip", "netns", "del", v.clientNS).Run()
	})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", v.serverNS)
	run("ip", "netns", "add", v.clientNS)
	run("ip", "link", "add", v.serverIface, "netns", v.serverNS, "type", "veth", "peer", "name", v.clientIfc, "netns", v.clientNS)
	for _, ns := range []string{v.serverNS, v.clientNS} {
		run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	run("ip", "-n", v.serverNS, "link", "set", v.serverIface, "up")
	run("ip", "-n", v.clientNS, "addr", "add", clientIP.String()+"/24", "dev", v.clientIfc)
	run("ip", "-n", v.clientNS, "link", "set", v.clientIfc, "up")
	return v
}

// inNetns runs f on a thread moved into the namespace at /run/netns/name;
// sockets f makes stay there.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// The thread is not unlocked: it leaves the caller's namespace, so
		// it must die with this goroutine rather than run others.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("enter netns %s: %v", name, err)
	}
}

// udpClient is a connected kernel UDP socket in the client namespace.
func udpClient(t *testing.T, v vethPair, port int) int {
	t.Helper()
	var fd int
	var err error
	inNetns(t, v.clientNS, func() {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		sa := &unix.SockaddrInet4{Port: port, Addr: serverIP.As4()}
		err = unix.Connect(fd, sa)
	})
	if err != nil {
		t.Fatalf("make client socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// rawSender is an AF_PACKET socket on the client's veth end, for frames a
// kernel socket would never send.
func rawSender(t *testing.T, v vethPair) (fd int, ifindex int) {
	t.Helper()
	var err error
	inNetns(t, v.clientNS, func() {
		var ifc *net.Interface
		if ifc, err = net.InterfaceByName(v.clientIfc); err != nil {
			return
		}
		ifindex = ifc.Index
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	})
	if err != nil {
		t.Fatalf("make raw socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, ifindex
}

func TestVethEcho(t *testing.T) {
	skipUnlessDPDK(t)
	for _, pmd := range []string{PMDAFPacket, PMDAFXDP} {
		t.Run(pmd, func(t *testing.T) {
			if pmd == PMDAFXDP && !afxdpAvailable() {
				t.Skip("skipped: this kernel or process cannot open AF_XDP sockets")
			}
			v := newVethPair(t)
			s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: serverIP.String(), CPUs: []int{0},
				Iface: v.serverIface, Options: map[string]string{OptPMD: pmd, OptHugepages: "0"}}, v.serverNS)
			if s.ready.PMD != pmd {
				t.Fatalf("server runs %q, want %q", s.ready.PMD, pmd)
			}
			fd := udpClient(t, v, s.ready.Port)
			rng := rand.New(rand.NewSource(2))
			sizes := []int{1, 18, 64, 333, 1000, backends.MaxUDPPayload}
			var sent, bytesSent uint64
			buf := make([]byte, 2048)
			for round := 0; round < 20; round++ {
				for _, size := range sizes {
					msg := make([]byte, size)
					rng.Read(msg)
					if _, err := unix.Write(fd, msg); err != nil {
						t.Fatalf("send %d bytes: %v", size, err)
					}
					n, err := unix.Read(fd, buf)
					if err != nil {
						t.Fatalf("echo of %d bytes (round %d): %v", size, round, err)
					}
					if !bytes.Equal(buf[:n], msg) {
						t.Fatalf("echo of %d bytes differs: got %d bytes", size, n)
					}
					sent++
					bytesSent += uint64(size)
				}
			}
			// The kernel learnt the server's MAC from its ARP reply.
			out, _ := exec.Command("ip", "-n", v.clientNS, "neigh", "show", serverIP.String()).CombinedOutput()
			if !strings.Contains(string(out), s.ready.MAC) {
				t.Errorf("client's neighbour entry %q lacks the server MAC %s", out, s.ready.MAC)
			}

			// Malformed frames are dropped and counted, and the server goes on.
			raw, ifindex := rawSender(t, v)
			hw, _ := net.ParseMAC(s.ready.MAC)
			mac := [6]byte(hw)
			frame := func() []byte {
				return udpFrame{payload: []byte("malformed"), dstMAC: mac, dstPort: uint16(s.ready.Port)}.build()
			}
			bad := map[string][]byte{}
			f := frame()
			f[ethHeaderLen] = 0x46
			bad["ip_options"] = f
			f = frame()
			f[ethHeaderLen+10] ^= 0xff
			bad["ip_checksum"] = f
			f = frame()
			f[ethHeaderLen+9] = 6
			fixIPChecksum(f[ethHeaderLen:])
			bad["not_udp"] = f
			if pmd != PMDAFPacket {
				// net_af_packet joins a fanout group with
				// PACKET_FANOUT_FLAG_DEFRAG: the kernel holds a fragment
				// for reassembly and the server never sees it.
				f = frame()
				binary.BigEndian.PutUint16(f[ethHeaderLen+6:], 0x2000)
				fixIPChecksum(f[ethHeaderLen:])
				bad["fragment"] = f
			}
			before := s.counters(t)
			for _, f := range bad {
				sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex, Halen: 6, Addr: [8]byte(append(mac[:], 0, 0))}
				if err := unix.Sendto(raw, f, 0, sa); err != nil {
					t.Fatalf("send raw frame: %v", err)
				}
			}
			var after backends.Counters
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				after = s.counters(t)
				if after.Dropped-before.Dropped >= uint64(len(bad)) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			for reason := range bad {
				if after.Extra["drop_"+reason] == before.Extra["drop_"+reason] {
					t.Errorf("drop_%s did not count its frame", reason)
				}
			}
			if got := after.Dropped - before.Dropped; got != uint64(len(bad)) {
				t.Errorf("Dropped rose by %d, want %d", got, len(bad))
			}
			if after.RxMsgs != sent || after.TxMsgs != sent || after.RxBytes != bytesSent || after.TxBytes != bytesSent {
				t.Errorf("counters %+v, want %d datagrams and %d bytes each way", after, sent, bytesSent)
			}
			if after.Extra["arp_replies"] == 0 || after.Extra["port_rx_packets"] < sent || after.Extra["port_tx_packets"] < sent {
				t.Errorf("port counters %v", after.Extra)
			}

			// The memif goodbye frame of earlier versions (EtherType
			// 0x88b5, opcode 1) parked the loop on any driver. Now it is
			// one more foreign EtherType: counted, dropped, and the next
			// request is answered.
			bye := make([]byte, 60)
			copy(bye[0:6], mac[:])
			copy(bye[6:12], clientMAC[:])
			binary.BigEndian.PutUint16(bye[12:14], 0x88b5)
			bye[ethHeaderLen] = 1
			sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex, Halen: 6, Addr: [8]byte(append(mac[:], 0, 0))}
			if err := unix.Sendto(raw, bye, 0, sa); err != nil {
				t.Fatalf("send goodbye frame: %v", err)
			}
			msg := []byte("after the goodbye")
			if _, err := unix.Write(fd, msg); err != nil {
				t.Fatal(err)
			}
			if n, err := unix.Read(fd, buf); err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("echo after a stray goodbye frame: %q, %v", buf[:max(n, 0)], err)
			}
			// The loop publishes its counters between bursts: give the
			// snapshot a moment to catch up with the frame it dropped.
			got := s.counters(t).Extra["drop_ethertype"]
			for deadline := time.Now().Add(time.Second); got <= after.Extra["drop_ethertype"] && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
				got = s.counters(t).Extra["drop_ethertype"]
			}
			if got <= after.Extra["drop_ethertype"] {
				t.Errorf("drop_ethertype %d, was %d: the goodbye frame was not counted", got, after.Extra["drop_ethertype"])
			}
			s.close(t)
			// net_af_xdp must take its XDP program off the interface.
			link, _ := exec.Command("ip", "-n", v.serverNS, "link", "show", v.serverIface).CombinedOutput()
			if strings.Contains(string(link), "xdp") {
				t.Errorf("XDP program left on %s: %s", v.serverIface, link)
			}
		})
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// A port that cannot be opened is an error from New, and the child still
// exits cleanly; a second server in one process is refused.
func TestNewFailures(t *testing.T) {
	skipUnlessDPDK(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerChild$", "-test.count=1")
	spec, _ := json.Marshal(backends.Config{Proto: backends.UDP, Service: backends.Echo, CPUs: []int{0},
		Iface: "rbnosuchif0", Options: map[string]string{OptPMD: PMDAFPacket, OptHugepages: "0"}})
	cmd.Env = append(os.Environ(), "RINGBENCH_DPDK_SERVER="+string(spec))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.HasPrefix(string(out), "error ") || !strings.Contains(string(out), "EAL") {
		t.Errorf("child said %q, want an EAL error", out)
	}
}

// The interface's busy-poll settings are options of an af_xdp server: set
// on its veth end while it runs (with a busy_budget, preferred busy
// polling), echoes still come back, and the values found are back after
// Close.
func TestVethBusyPollOptions(t *testing.T) {
	skipUnlessDPDK(t)
	if !afxdpAvailable() {
		t.Skip("skipped: this kernel or process cannot open AF_XDP sockets")
	}
	v := newVethPair(t)
	attr := func(name string) string {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", v.serverNS, "cat", filepath.Join("/sys/class/net", v.serverIface, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("read %s: %v: %s", name, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	found := map[string]string{OptNapiDeferHardIRQs: attr(OptNapiDeferHardIRQs), OptGROFlushTimeout: attr(OptGROFlushTimeout)}
	set := map[string]string{OptNapiDeferHardIRQs: "2", OptGROFlushTimeout: "200000"}
	for k, v := range set {
		if found[k] == v {
			t.Fatalf("%s is already %s: the test could not tell it set", k, v)
		}
	}
	s := startServer(t, backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: serverIP.String(), CPUs: []int{0},
		Iface: v.serverIface, Options: map[string]string{OptPMD: PMDAFXDP, OptHugepages: "0", OptBusyBudget: "64",
			OptNapiDeferHardIRQs: set[OptNapiDeferHardIRQs], OptGROFlushTimeout: set[OptGROFlushTimeout]}}, v.serverNS)
	for k, want := range set {
		if got := attr(k); got != want {
			t.Errorf("while serving: %s = %s, want %s", k, got, want)
		}
	}
	fd := udpClient(t, v, s.ready.Port)
	msg, buf := []byte("busy polled"), make([]byte, 64)
	if _, err := unix.Write(fd, msg); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(fd, buf); err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("echo with preferred busy polling: %q, %v", buf[:max(n, 0)], err)
	}
	s.close(t)
	for k, want := range found {
		if got := attr(k); got != want {
			t.Errorf("after Close: %s = %s, want the value found, %s", k, got, want)
		}
	}
}
