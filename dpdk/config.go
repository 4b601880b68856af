package dpdk

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// Option keys a dpdk server accepts in Config.Options.
const (
	OptPMD         = "pmd"          // af_xdp | af_packet | auto (default) for Config.Iface
	OptMemifSocket = "memif_socket" // path of the memif control socket; the server is role=server
	OptVdev        = "vdev"         // a full --vdev override, e.g. "net_null0"
	OptPCI         = "pci"          // a PCI address bound to vfio-pci (lab); drops --no-pci
	OptHugepages   = "hugepages"    // "0" forces --no-huge
	OptUDPChecksum = "udp_checksum" // full | zero | keep: what echoes carry (default: full on Iface, else keep)
	// OptBusyBudget is net_af_xdp's busy_budget devarg: with a budget the
	// PMD asks the kernel for preferred busy polling and calls recvfrom
	// (MSG_DONTWAIT) on its receive polls. Default here 0: on a veth end
	// the PMD's own default (64) made 130 recvfrom per echo at 20000 ops/s
	// for the same latency; with 0 the server makes about one syscall per
	// echo (its transmit wake-up).
	OptBusyBudget = "busy_budget"
)

var knownOptions = append([]string{OptPMD, OptMemifSocket, OptVdev, OptPCI, OptHugepages, OptUDPChecksum, OptBusyBudget}, netdevOptions...)

// defaultSourceSize is what a source sends per datagram when Config.MsgSize
// is 0, as the kernel backends do.
const defaultSourceSize = 1024

// DefaultPort is the UDP port a server answers on when Config.Port is 0:
// there is no kernel to pick a free one.
const DefaultPort = 9000

// PMD names for OptPMD.
const (
	PMDAuto     = "auto"
	PMDAFXDP    = "af_xdp"
	PMDAFPacket = "af_packet"
)

// serverSettings is a Config checked and resolved into what the EAL and the
// reflector need.
type serverSettings struct {
	rules Reflector
	// lcores: lcores[q] polls queue pair q; lcores[0] is the EAL's main
	// lcore. One per Config.CPUs, or the first CPU allowed.
	lcores    []int
	needRSS   bool   // the port must spread flows over the queues itself (a NIC, an override)
	vdev      string // empty with pci
	pci       string
	noHuge    bool
	cfgPMD    string // the pmd option as given, for error messages
	chosenPMD string // af_xdp, af_packet, memif, or "" for an override
	iface     string
	netdev    []netdevSetting // written to iface's sysfs for the server's life
}

// parseServerConfig checks cfg and resolves its options. afxdp reports
// whether AF_XDP sockets can be made here (for pmd=auto); hugepages whether
// 2 MiB pages are reserved.
func parseServerConfig(cfg backends.Config, afxdp func() bool, hugepages func() bool) (serverSettings, error) {
	var s serverSettings
	if cfg.Proto != "" && cfg.Proto != backends.UDP {
		return s, &backends.NotSupportedError{Feature: "dpdk over " + string(cfg.Proto), Reason: "no kernel TCP stack"}
	}
	switch cfg.Service {
	case backends.Echo, backends.Sink, backends.Source:
	case "":
		cfg.Service = backends.Echo
	default:
		return s, fmt.Errorf("check config: unknown service %q", cfg.Service)
	}
	for k := range cfg.Options {
		if !contains(knownOptions, k) {
			return s, fmt.Errorf("check config: unknown option %q (known: %s)", k, strings.Join(sortedCopy(knownOptions), ", "))
		}
	}
	opt := cfg.Options

	s.rules = Reflector{Service: cfg.Service, MaxPayload: cfg.MaxDatagram(), Port: DefaultPort, SourceSize: cfg.MsgSize}
	if s.rules.MaxPayload > backends.MaxUDPPayload {
		return s, fmt.Errorf("check config: MaxMsg %d over the %d a 1500-byte MTU carries", s.rules.MaxPayload, backends.MaxUDPPayload)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return s, fmt.Errorf("check config: port %d out of range", cfg.Port)
	}
	if cfg.Port != 0 {
		s.rules.Port = uint16(cfg.Port)
	}
	if cfg.Host != "" && cfg.Host != "0.0.0.0" {
		ip, err := netip.ParseAddr(cfg.Host)
		if err != nil || !ip.Is4() {
			return s, fmt.Errorf("check config: host %q is not an IPv4 address", cfg.Host)
		}
		s.rules.IP = ip
	}
	if cfg.Service == backends.Source && cfg.MsgSize == 0 {
		s.rules.SourceSize = defaultSourceSize
		cfg.MsgSize = defaultSourceSize
	}
	if cfg.Service == backends.Source && (cfg.MsgSize < backends.SourceHeader || cfg.MsgSize > backends.MaxUDPPayload) {
		return s, fmt.Errorf("check config: source MsgSize %d outside [%d, %d]", cfg.MsgSize, backends.SourceHeader, backends.MaxUDPPayload)
	}
	s.lcores = cfg.CPUs
	if len(s.lcores) == 0 {
		cpu, err := firstAllowedCPU()
		if err != nil {
			return s, err
		}
		s.lcores = []int{cpu}
	}
	for i, c := range s.lcores {
		if c < 0 {
			return s, fmt.Errorf("check config: cpu %d outside the CPU numbers", c)
		}
		if slices.Contains(s.lcores[:i], c) {
			return s, fmt.Errorf("check config: cpu %d named twice (one lcore per core)", c)
		}
	}

	switch h := opt[OptHugepages]; h {
	case "0":
		s.noHuge = true
	case "", "1", "auto":
		s.noHuge = !hugepages()
	default:
		return s, fmt.Errorf("check config: %s=%q, want 0 or auto", OptHugepages, h)
	}

	set := 0
	for _, k := range []string{OptVdev, OptPCI, OptMemifSocket} {
		if opt[k] != "" {
			set++
		}
	}
	if cfg.Iface != "" && set == 0 {
		set++
	}
	if set != 1 {
		return s, fmt.Errorf("check config: name exactly one port: Iface, or option %s, %s or %s", OptMemifSocket, OptVdev, OptPCI)
	}
	s.cfgPMD = opt[OptPMD]
	switch {
	case opt[OptVdev] != "":
		s.vdev = opt[OptVdev]
	case opt[OptPCI] != "":
		s.pci = opt[OptPCI]
	case opt[OptMemifSocket] != "":
		s.vdev = memifVdev(opt[OptMemifSocket], "server")
		s.chosenPMD = "memif"
	default:
		pmd := s.cfgPMD
		switch pmd {
		case "", PMDAuto:
			pmd = PMDAFPacket
			if afxdp() {
				pmd = PMDAFXDP
			}
		case PMDAFXDP, PMDAFPacket:
		default:
			return s, fmt.Errorf("check config: %s=%q, want af_xdp, af_packet or auto", OptPMD, pmd)
		}
		if strings.ContainsAny(cfg.Iface, ",= ") {
			return s, fmt.Errorf("check config: interface name %q", cfg.Iface)
		}
		s.chosenPMD = pmd
		s.vdev = ifaceVdev(pmd, cfg.Iface)
	}
	if b, ok := opt[OptBusyBudget]; ok || s.chosenPMD == PMDAFXDP {
		if !ok {
			b = "0"
		}
		if s.chosenPMD != PMDAFXDP {
			return s, fmt.Errorf("check config: %s applies to the af_xdp port only (this one is %q)", OptBusyBudget, s.chosenPMD)
		}
		n, err := strconv.ParseUint(b, 10, 16)
		if err != nil {
			return s, fmt.Errorf("check config: %s=%q, want 0 to 65535: %w", OptBusyBudget, b, err)
		}
		s.vdev += ",busy_budget=" + strconv.FormatUint(n, 10)
	}
	s.iface = cfg.Iface
	for _, k := range netdevOptions {
		v, ok := opt[k]
		if !ok {
			continue
		}
		if s.chosenPMD != PMDAFXDP {
			return s, fmt.Errorf("check config: %s applies to the af_xdp port only (this one is %q)", k, s.chosenPMD)
		}
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return s, fmt.Errorf("check config: %s=%q, want a whole number: %w", k, v, err)
		}
		s.netdev = append(s.netdev, netdevSetting{k, v})
	}
	if n := len(s.lcores); n > 1 {
		if reason := s.multiCoreRefusal(n); reason != "" {
			return s, &backends.NotSupportedError{Feature: fmt.Sprintf("dpdk on %d cores", n), Reason: reason}
		}
		s.vdev = multiQueueVdev(s.chosenPMD, s.vdev, n)
		s.needRSS = s.chosenPMD == ""
	}
	if cfg.Options[OptPMD] != "" && s.chosenPMD != PMDAFXDP && s.chosenPMD != PMDAFPacket {
		return s, fmt.Errorf("check config: %s applies to Iface only", OptPMD)
	}
	switch v := opt[OptUDPChecksum]; v {
	case "":
		// Only a peer on this host leaves checksums partial (veth); memif
		// peers and real wires carry complete ones, which a swap keeps valid.
		s.rules.UDPChecksum = ChecksumKeep
		if s.chosenPMD == PMDAFXDP || s.chosenPMD == PMDAFPacket {
			s.rules.UDPChecksum = ChecksumFull
		}
	case "full":
		s.rules.UDPChecksum = ChecksumFull
	case "zero":
		s.rules.UDPChecksum = ChecksumZero
	case "keep":
		s.rules.UDPChecksum = ChecksumKeep
	default:
		return s, fmt.Errorf("check config: %s=%q, want full, zero or keep", OptUDPChecksum, v)
	}
	return s, nil
}

// multiCoreRefusal says why the port cannot take n queue pairs, one per
// core, or "" when it can: memif carries n queue pairs (the peer picks the
// queue: ringbench's generator sends each flow on queue flow mod n),
// net_af_packet's n sockets share a fanout group that spreads flows by
// their hash, and a NIC or an override spreads them by RSS, which the port
// setup asks for and refuses without (openPort).
func (s serverSettings) multiCoreRefusal(n int) string {
	if s.chosenPMD == PMDAFXDP {
		// The PMD's init_internals checks queue_count against the
		// combined count; a veth's N queues are rx and tx channels.
		return fmt.Sprintf("net_af_xdp (DPDK 22.11) allows queue_count up to the interface's combined channels "+
			"(ETHTOOL_GCHANNELS), and veth reports none, so it binds one queue whatever numrxqueues the veth has "+
			"(queue_count=%d refused); use pmd=af_packet (fanout), or a NIC through pci= (RSS)", n)
	}
	return ""
}

// multiQueueVdev is the --vdev of a port driven by n lcores.
func multiQueueVdev(pmd, vdev string, n int) string {
	switch pmd {
	case PMDAFPacket:
		return strings.Replace(vdev, ",qpairs=1", ",qpairs="+strconv.Itoa(n), 1)
	}
	return vdev
}

// ifaceVdev is the --vdev for a kernel interface driven by pmd.
func ifaceVdev(pmd, iface string) string {
	if pmd == PMDAFXDP {
		return "net_af_xdp0,iface=" + iface + ",start_queue=0,queue_count=1"
	}
	return "net_af_packet0,iface=" + iface + ",qpairs=1"
}

// memifVdev is the --vdev for one end of a memif pair; socket-abstract=no
// keeps the socket a file both processes name by path. The server end's
// address is set, the same for dpdk and dpdk-testpmd, so the generator
// addresses its requests to it without asking: testpmd answers no ARP.
func memifVdev(socket, role string) string {
	v := "net_memif0,role=" + role + ",id=0,socket=" + socket + ",socket-abstract=no"
	if role == "server" {
		v += ",mac=" + memifServerMAC.String()
	}
	return v
}

// memifServerMAC is the server end's port address on every memif link: a
// locally administered address ("rb"), never seen outside the link.
var memifServerMAC = net.HardwareAddr{0x02, 0x72, 0x62, 0x00, 0x00, 0x01}

// maxLcore bounds the CPU numbers an lcore may take (DPDK 22.11's
// RTE_MAX_LCORE in Debian's build).
const maxLcore = 128

// checkLcoreIDs refuses CPUs that cannot be lcore ids: the server's EAL
// takes its CPUs as the ids themselves (ealArgs, -l). testpmd maps its
// lcores onto any CPU (--lcores 0@CPU) and needs no such bound.
func checkLcoreIDs(cpus []int) error {
	for _, c := range cpus {
		if c >= maxLcore {
			return fmt.Errorf("check config: cpu %d: DPDK's lcore ids stop at %d", c, maxLcore-1)
		}
	}
	return nil
}

// ealArgs is the EAL command line for one port on lcores, the first the
// main lcore. --in-memory
// (or, with --no-huge, which cannot go with it, --no-shconf) and a unique
// file prefix keep two DPDK processes on one machine (server and generator)
// from sharing runtime files; the EAL still makes runtimeDir(prefix), which
// its owner removes after.
func ealArgs(lcores []int, vdev, pci string, noHuge bool, prefix string) []string {
	list := make([]string, len(lcores))
	for i, l := range lcores {
		list[i] = strconv.Itoa(l)
	}
	args := []string{"ringbench", "-l", strings.Join(list, ","), "--log-level=*:warning", "--no-telemetry", "--file-prefix", prefix}
	if len(lcores) > 1 {
		// Else the EAL's main lcore is the lowest numbered.
		args = append(args, "--main-lcore", list[0])
	}
	if noHuge {
		args = append(args, "--no-huge", "-m", "128", "--no-shconf")
	} else {
		args = append(args, "--in-memory")
	}
	if pci != "" {
		args = append(args, "-a", pci)
	} else {
		args = append(args, "--no-pci")
	}
	if vdev != "" {
		args = append(args, "--vdev", vdev)
	}
	return args
}

// filePrefix is a per-process EAL file prefix. It first removes the runtime
// directories of ringbench processes that died without cleaning up (killed
// by a timeout), which the prefix's pid identifies.
func filePrefix(role string) string {
	dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(runtimeDir("x")), "ringbench-*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(d[strings.LastIndexByte(d, '-')+1:])
		if err == nil && pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
			os.RemoveAll(d)
		}
	}
	return fmt.Sprintf("ringbench-%s-%d", role, os.Getpid())
}

// runtimeDir is where the EAL keeps a prefix's runtime files (as
// eal_get_runtime_dir decides: /var/run for root, else XDG_RUNTIME_DIR).
func runtimeDir(prefix string) string {
	base := "/var/run"
	if os.Geteuid() != 0 {
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			base = x
		} else {
			base = "/tmp"
		}
	}
	return filepath.Join(base, "dpdk", prefix)
}

// afxdpAvailable reports whether this kernel and process can open an AF_XDP
// socket (net_af_xdp needs one per queue).
func afxdpAvailable() bool {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func firstAllowedCPU() (int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("read cpu affinity: %w", err)
	}
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			return i, nil
		}
	}
	return 0, errors.New("read cpu affinity: empty set")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func removeRuntimeDir(prefix string) error {
	if err := os.RemoveAll(runtimeDir(prefix)); err != nil {
		return fmt.Errorf("remove EAL runtime dir: %w", err)
	}
	return nil
}
