package uring

// uring-zcrx: io_uring zero-copy receive (Linux 6.15, IORING_REGISTER_ZCRX_IFQ
// and IORING_OP_RECV_ZC; Documentation/networking/iou-zcrx.rst). A NIC rx
// queue's page pool takes its buffers from a memory area this process maps,
// the NIC splits each TCP segment's headers (kernel memory, the TCP stack
// as usual) from its payload (written straight into the area), and a
// multishot RECV_ZC completion says where in the area the payload lies.
//
// It needs, in this order, what the probe and New check one by one, each
// refusal naming the first missing piece: the kernel (the RECV_ZC opcode,
// zcrx compiled in, CAP_NET_ADMIN); an interface whose driver gives the
// queue to a memory provider (a physical NIC with the queue management API:
// veth and lo never can); header/data split on that NIC; and flow steering
// (ntuple) sending the stream to the registered queue. The kernel checks
// the first three in IORING_REGISTER_ZCRX_IFQ itself, so the probe makes
// that registration on the server's interface and queue and translates the
// kernel's errno; it cannot check the steering rule, only that ntuple
// filters are on.
//
// The data path (zcrx_sink.go) has never run on hardware that supports
// zcrx: this machine's interfaces (veth, lo, virtio) all refuse.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/netns"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

func init() {
	backends.Register(backends.Backend{
		Name:    "uring-zcrx",
		Family:  "uring",
		Variant: "zcrx",
		Summary: "io_uring zero-copy receive (6.15): the NIC writes TCP payloads into a registered area, " +
			"multishot RECV_ZC reports where, buffers return through the refill ring; needs a NIC with header split, " +
			"flow steering and the queue API (--opt rxq=N); untested on such hardware",
		Protos:    []backends.Proto{backends.TCP},
		Services:  []backends.Service{backends.Sink},
		NotServed: map[backends.Proto]string{backends.UDP: "zero-copy receive is for TCP streams (RECV_ZC)"},
		Probe:     probeZcrxKernel,
		New:       newZcrxServer,
		// Its loop counts the ring's enters, as every uring variant.
		DataPathSyscalls: []string{"io_uring_enter"},
	})
}

// zcrxRingFlags are what IORING_REGISTER_ZCRX_IFQ requires of the ring:
// DEFER_TASKRUN (hence SINGLE_ISSUER) and 32-byte CQEs, whose second half
// carries the buffer's offset.
const zcrxRingFlags = abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN | abi.IORING_SETUP_CQE32

const zcrxFeature = "uring-zcrx"

var (
	zcrxKernelOnce sync.Once
	zcrxKernelErr  error
)

// probeZcrxKernel says whether this kernel can do zero-copy receive at
// all; whether an interface can is asked of that interface (ProbeZcrx).
func probeZcrxKernel() error {
	zcrxKernelOnce.Do(func() { zcrxKernelErr = checkZcrxKernel() })
	return zcrxKernelErr
}

func checkZcrxKernel() error {
	if err := available(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := ring.Setup(ring.Params{Entries: 4, Flags: zcrxRingFlags})
	if err != nil {
		return &backends.NotSupportedError{Feature: zcrxFeature + ": IORING_SETUP_CQE32|DEFER_TASKRUN", MinKernel: "6.1", Reason: err.Error()}
	}
	defer r.Close()
	probe, err := r.RegisterProbe()
	if err != nil {
		return &backends.NotSupportedError{Feature: "IORING_REGISTER_PROBE", MinKernel: "5.6", Reason: err.Error()}
	}
	if !probe.Supports(abi.IORING_OP_RECV_ZC) {
		return &backends.NotSupportedError{Feature: zcrxFeature + ": IORING_OP_RECV_ZC", MinKernel: "6.15", Reason: "opcode probe: unsupported"}
	}
	// Interface index 0 names no interface: a kernel with zcrx gets past
	// its checks of the ring and the arguments and fails the lookup.
	q, err := registerZcrx(r, 0, 0, unix.Getpagesize())
	if err == nil {
		q.release()
		return errors.New("probe zcrx: registration on interface index 0 succeeded")
	}
	switch {
	case errors.Is(err, unix.ENODEV):
		return nil
	case errors.Is(err, unix.EPERM):
		return &backends.NotSupportedError{Feature: zcrxFeature, Reason: "binding a NIC queue needs CAP_NET_ADMIN (IORING_REGISTER_ZCRX_IFQ: EPERM)"}
	case errors.Is(err, unix.EOPNOTSUPP):
		return &backends.NotSupportedError{Feature: zcrxFeature, Reason: "this kernel is built without CONFIG_IO_URING_ZCRX (IORING_REGISTER_ZCRX_IFQ: EOPNOTSUPP)"}
	case errors.Is(err, unix.EINVAL):
		return &backends.NotSupportedError{Feature: zcrxFeature + ": IORING_REGISTER_ZCRX_IFQ", MinKernel: "6.15", Reason: "the kernel refused the registration: EINVAL"}
	}
	return fmt.Errorf("probe zcrx: %w", err)
}

// ProbeZcrx says whether uring-zcrx can receive on ifname's rx queue rxq in
// the calling thread's network namespace: the kernel first, then the
// registration on that queue, then flow steering. It binds the queue for
// an instant where everything is there; it never changes the NIC's setup.
func ProbeZcrx(ifname string, rxq int) error {
	if err := probeZcrxKernel(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := ring.Setup(ring.Params{Entries: 4, Flags: zcrxRingFlags})
	if err != nil {
		return fmt.Errorf("set up zcrx ring: %w", err)
	}
	defer r.Close()
	q, err := bindZcrx(r, ifname, rxq, unix.Getpagesize())
	if err != nil {
		return err
	}
	q.release()
	return nil
}

// bindZcrx registers ifname's queue rxq with an area of areaBytes on r and
// checks flow steering, each refusal saying what is missing.
func bindZcrx(r *ring.Ring, ifname string, rxq, areaBytes int) (*zcrxQueue, error) {
	nic := describeIface(ifname)
	if nic.index == 0 {
		return nil, &backends.NotSupportedError{Feature: zcrxFeature, Reason: fmt.Sprintf("no interface %q in the server's network namespace: %v", ifname, nic.err)}
	}
	q, err := registerZcrx(r, nic.index, rxq, areaBytes)
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			return nil, &backends.NotSupportedError{Feature: zcrxFeature + " on " + ifname, Reason: zcrxRefusal(errno, nic, rxq)}
		}
		return nil, err
	}
	if !nic.ntuple {
		q.release()
		return nil, &backends.NotSupportedError{Feature: zcrxFeature + " on " + ifname, Reason: fmt.Sprintf(
			"flow steering is off: ntuple filters are disabled on %s (%v); turn them on (ethtool -K %s ntuple on) and steer the stream to queue %d (ethtool -N %s flow-type tcp4 dst-port PORT action %d)",
			ifname, nic.ntupleErr, ifname, rxq, ifname, rxq)}
	}
	return q, nil
}

// iface is what the refusals say about an interface.
type iface struct {
	name, driver, busInfo string
	index                 int
	err                   error // why index is 0
	ntuple                bool  // ntuple filters (flow steering) on
	ntupleErr             error
}

// describeIface reads what the kernel says about ifname through ethtool
// ioctls on a socket of the calling thread's network namespace (sysfs
// would show the namespace it was mounted in).
func describeIface(ifname string) iface {
	nic := iface{name: ifname}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		nic.err = fmt.Errorf("create socket: %w", err)
		return nic
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		nic.err = err
		return nic
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		nic.err = err
		return nic
	}
	nic.index = int(ifr.Uint32())
	if info, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname); err == nil {
		nic.driver = unix.ByteSliceToString(info.Driver[:])
		nic.busInfo = unix.ByteSliceToString(info.Bus_info[:])
	}
	flags, err := ethtoolValue(fd, ifname, ethtoolGFlags)
	nic.ntuple, nic.ntupleErr = err == nil && flags&ethFlagNtuple != 0, err
	if err == nil && !nic.ntuple {
		nic.ntupleErr = errors.New("ETHTOOL_GFLAGS lacks ETH_FLAG_NTUPLE")
	}
	return nic
}

// ethtool commands and flags (include/uapi/linux/ethtool.h).
const (
	ethtoolGFlags = 0x25
	ethFlagNtuple = 1 << 27
)

// ethtoolValue runs an ethtool command whose argument is struct
// ethtool_value {cmd, data}.
func ethtoolValue(fd int, ifname string, cmd uint32) (uint32, error) {
	val := struct{ cmd, data uint32 }{cmd: cmd}
	var req struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(req.name[:], ifname)
	req.data = uintptr(unsafe.Pointer(&val))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	runtime.KeepAlive(&val)
	if errno != 0 {
		return 0, fmt.Errorf("ethtool command %#x on %s: %w", cmd, ifname, errno)
	}
	return val.data, nil
}

// zcrxRefusal turns the errno of IORING_REGISTER_ZCRX_IFQ on a real
// interface into the missing piece, in the order the kernel checks them
// (io_uring/zcrx.c io_register_zcrx_ifq, net/core/netdev_rx_queue.c
// __net_mp_open_rxq). The kernel probe has already shown that the ring
// and the arguments pass, so what is left is the interface and its queue.
func zcrxRefusal(errno unix.Errno, nic iface, rxq int) string {
	drv := "driver unknown"
	if nic.driver != "" {
		drv = "driver " + nic.driver
	}
	switch errno {
	case unix.EOPNOTSUPP:
		if nic.busInfo == "" {
			return fmt.Sprintf("%s (%s) is a virtual interface: no DMA device, so no page pool or queue management API to bind a memory provider to (EOPNOTSUPP); zcrx needs a physical NIC whose driver supports it", nic.name, drv)
		}
		return fmt.Sprintf("%s (%s, %s) has no queue management API for memory providers (netdev_queue_mgmt_ops): its driver cannot give an rx queue to zcrx (EOPNOTSUPP)", nic.name, drv, nic.busInfo)
	case unix.ENODEV:
		return fmt.Sprintf("interface %s (index %d) vanished during the registration (ENODEV)", nic.name, nic.index)
	case unix.ERANGE:
		return fmt.Sprintf("rx queue %d is out of range on %s (ERANGE): see its channels with ethtool -l %s", rxq, nic.name, nic.name)
	case unix.EINVAL:
		return fmt.Sprintf("header/data split is off on %s (EINVAL: tcp-data-split not enabled, or hds-thresh not 0): ethtool -G %s tcp-data-split on", nic.name, nic.name)
	case unix.EEXIST:
		return fmt.Sprintf("rx queue %d of %s is taken (EEXIST): an XDP program is attached to %s, or the queue already has a memory provider", rxq, nic.name, nic.name)
	case unix.EBUSY:
		return fmt.Sprintf("rx queue %d of %s is busy (EBUSY): an AF_XDP socket uses it, or it belongs to a virtual device", rxq, nic.name)
	case unix.ENOMEM:
		return "the kernel could not pin the area or allocate the ifq (ENOMEM): raise RLIMIT_MEMLOCK or use a smaller area_mb"
	case unix.EPERM:
		return "binding a NIC queue needs CAP_NET_ADMIN (EPERM)"
	}
	return fmt.Sprintf("IORING_REGISTER_ZCRX_IFQ on %s queue %d: %v", nic.name, rxq, errno)
}

// zcrxQueue is one registered interface queue: the area the NIC writes
// payloads into and the refill ring through which buffers go back.
type zcrxQueue struct {
	area   []byte
	rqMem  []byte
	id     uint32 // zcrx_id: RECV_ZC's sqe.zcrx_ifq_idx
	token  uint64 // the area's rq_area_token
	head   *uint32
	tail   *uint32
	rqes   []abi.IoUringZcrxRqe
	mask   uint32
	local  uint32 // tail not yet published
	closed bool
}

// zcrxRefillEntries is the refill ring's size: as many entries as the CQ
// has CQEs, so that returning one batch's buffers can never overflow it.
const zcrxRefillEntries = 4096

// registerZcrx maps an area of areaBytes and a refill ring and registers
// them with interface index ifindex, rx queue rxq. On error nothing is left
// mapped, and the error is the kernel's errno, wrapped.
func registerZcrx(r *ring.Ring, ifindex, rxq, areaBytes int) (_ *zcrxQueue, err error) {
	page := unix.Getpagesize()
	q := &zcrxQueue{}
	defer func() {
		if err != nil {
			q.release()
		}
	}()
	if q.area, err = ring.MapAnon(roundUp(areaBytes, page)); err != nil {
		return nil, fmt.Errorf("map zcrx area: %w", err)
	}
	// The refill ring: a header (head and tail, a cache line each) and the
	// entries, with a page to spare for the header (iou-zcrx.rst).
	rqBytes := roundUp(zcrxRefillEntries*int(unsafe.Sizeof(abi.IoUringZcrxRqe{}))+page, page)
	if q.rqMem, err = ring.MapAnon(rqBytes); err != nil {
		return nil, fmt.Errorf("map zcrx refill ring: %w", err)
	}
	area := abi.IoUringZcrxAreaReg{Addr: uint64(uintptr(unsafe.Pointer(&q.area[0]))), Len: uint64(len(q.area))}
	region := abi.IoUringRegionDesc{UserAddr: uint64(uintptr(unsafe.Pointer(&q.rqMem[0]))), Size: uint64(len(q.rqMem)),
		Flags: abi.IORING_MEM_REGION_TYPE_USER}
	reg := abi.IoUringZcrxIfqReg{IfIdx: uint32(ifindex), IfRxq: uint32(rxq), RqEntries: zcrxRefillEntries,
		AreaPtr: uint64(uintptr(unsafe.Pointer(&area))), RegionPtr: uint64(uintptr(unsafe.Pointer(&region)))}
	_, err = r.Register(abi.IORING_REGISTER_ZCRX_IFQ, unsafe.Pointer(&reg), 1)
	runtime.KeepAlive(&area)
	runtime.KeepAlive(&region)
	if err != nil {
		return nil, fmt.Errorf("register zcrx ifq %d queue %d: %w", ifindex, rxq, err)
	}
	off := reg.Offsets
	if int(off.Rqes)+zcrxRefillEntries*int(unsafe.Sizeof(abi.IoUringZcrxRqe{})) > len(q.rqMem) {
		return nil, fmt.Errorf("register zcrx ifq: refill entries at %d overrun the %d-byte region", off.Rqes, len(q.rqMem))
	}
	q.id, q.token = reg.ZcrxID, area.RqAreaToken
	q.head = (*uint32)(unsafe.Pointer(&q.rqMem[off.Head]))
	q.tail = (*uint32)(unsafe.Pointer(&q.rqMem[off.Tail]))
	q.rqes = unsafe.Slice((*abi.IoUringZcrxRqe)(unsafe.Pointer(&q.rqMem[off.Rqes])), zcrxRefillEntries)
	q.mask = zcrxRefillEntries - 1
	return q, nil
}

// release unmaps the area and the refill ring. The registration itself
// ends with the ring (closing it unbinds the queue), which must therefore
// be closed first when the registration succeeded: the kernel keeps the
// area's pages pinned until then.
func (q *zcrxQueue) release() {
	if q.closed {
		return
	}
	q.closed = true
	for _, m := range [][]byte{q.area, q.rqMem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	q.area, q.rqMem, q.rqes = nil, nil, nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// zcrxOptions are uring-zcrx's Config.Options.
type zcrxOptions struct {
	rxq    int // the NIC rx queue flow steering sends the stream to; -1: not given
	areaMB int
}

const (
	optRxq    = "rxq"     // the rx queue ntuple steers the stream to (required on a NIC)
	optAreaMB = "area_mb" // the receive area, MiB (default 32)
)

func parseZcrxOptions(opts map[string]string) (zcrxOptions, error) {
	o := zcrxOptions{rxq: -1, areaMB: 32}
	for k, v := range opts {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, fmt.Errorf("check option %s=%q: want a non-negative integer", k, v)
		}
		switch k {
		case optRxq:
			o.rxq = n
		case optAreaMB:
			if n == 0 {
				return o, fmt.Errorf("check option %s=0: the area needs at least 1 MiB", k)
			}
			o.areaMB = n
		default:
			return o, fmt.Errorf("check config: unknown option %q (known: %s, %s)", k, optRxq, optAreaMB)
		}
	}
	return o, nil
}

// zcrxIface is the interface the server receives on: Config.Iface, else
// the interface that holds the server's address (lo for a loopback one).
func zcrxIface(cfg backends.Config) (string, error) {
	if cfg.Iface != "" {
		return cfg.Iface, nil
	}
	if addr, err := netip.ParseAddr(cfg.Host); err == nil && !addr.IsUnspecified() {
		ifs, _ := net.Interfaces()
		for _, ifc := range ifs {
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == addr {
					return ifc.Name, nil
				}
			}
		}
	}
	return "", &backends.NotSupportedError{Feature: zcrxFeature, Reason: fmt.Sprintf(
		"zcrx binds one NIC rx queue: no interface of this namespace holds the server's address %q (give it one, or --iface)", cfg.Host)}
}

// zcrxFeatures are doctor's zcrx lines: the kernel, then the probe on the
// interfaces every machine has (lo, and a veth pair made for the purpose in
// a namespace of its own). A lab NIC is probed by a run with --iface and
// --opt rxq=N, never by doctor: a registration that succeeds restarts the
// NIC's queue.
func zcrxFeatures() []Feature {
	kernel := probeZcrxKernel()
	out := []Feature{feature("uring-zcrx: IORING_REGISTER_ZCRX_IFQ", kernel == nil, "6.15", reason(kernel, "registration probe"))}
	if kernel != nil {
		return out
	}
	lo := ProbeZcrx("lo", 0)
	out = append(out, feature("uring-zcrx on lo", lo == nil, "", reason(lo, "registered")))
	veth := probeZcrxOnVeth()
	return append(out, feature("uring-zcrx on veth", veth == nil, "", reason(veth, "registered")))
}

// probeZcrxOnVeth makes a veth pair in an unnamed network namespace (gone
// with this process, crash or not) and probes zcrx on one end.
func probeZcrxOnVeth() error {
	path, release, err := netns.Scratch()
	if err != nil {
		return fmt.Errorf("make namespace for the veth probe: %w", err)
	}
	defer release()
	// nsenter needs the namespace's path as another process sees it.
	nsPath := strings.Replace(path, "/self/", "/"+strconv.Itoa(os.Getpid())+"/", 1)
	for _, args := range [][]string{
		{"ip", "link", "add", "zc0", "type", "veth", "peer", "name", "zc1"},
		{"ip", "link", "set", "zc0", "up"},
		{"ip", "link", "set", "zc1", "up"},
	} {
		if out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("make veth for the probe: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return netns.InNetns(path, func() error { return ProbeZcrx("zc0", 1) })
}
