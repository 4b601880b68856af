package uring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/uring/internal/abi"
	"ringbench/uring/internal/ring"
)

// Feature is one io_uring capability of this kernel, for `ringbench doctor`.
type Feature struct {
	Name      string // "IORING_SETUP_DEFER_TASKRUN", "IORING_OP_SEND_ZC", ...
	Supported bool
	MinKernel string // the release that brought it
	// Detail says how it was found and, when missing, why and which
	// kernel brings it: "since Linux 6.1 (opcode probe)".
	Detail string
}

func feature(name string, ok bool, minKernel, how string) Feature {
	f := Feature{Name: name, Supported: ok, MinKernel: minKernel}
	switch {
	case ok && minKernel != "":
		f.Detail = "since Linux " + minKernel + " (" + how + ")"
	case ok:
		f.Detail = how
	case minKernel != "":
		f.Detail = "needs Linux " + minKernel + ": " + how
	default:
		f.Detail = how
	}
	return f
}

type setupFlag struct {
	name      string
	flags     uint32 // with the flags it needs
	minKernel string
}

var setupFlags = []setupFlag{
	{"IORING_SETUP_SQPOLL", abi.IORING_SETUP_SQPOLL, "5.1"},
	{"IORING_SETUP_SUBMIT_ALL", abi.IORING_SETUP_SUBMIT_ALL, "5.18"},
	{"IORING_SETUP_COOP_TASKRUN", abi.IORING_SETUP_COOP_TASKRUN, "5.19"},
	{"IORING_SETUP_TASKRUN_FLAG", abi.IORING_SETUP_COOP_TASKRUN | abi.IORING_SETUP_TASKRUN_FLAG, "5.19"},
	{"IORING_SETUP_SINGLE_ISSUER", abi.IORING_SETUP_SINGLE_ISSUER, "6.0"},
	{"IORING_SETUP_DEFER_TASKRUN", abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN, "6.1"},
	{"IORING_SETUP_NO_SQARRAY", abi.IORING_SETUP_NO_SQARRAY, "6.6"},
}

type opcode struct {
	name      string
	op        uint8
	minKernel string
}

var opcodes = []opcode{
	{"IORING_OP_ACCEPT", abi.IORING_OP_ACCEPT, "5.5"},
	{"IORING_OP_ASYNC_CANCEL", abi.IORING_OP_ASYNC_CANCEL, "5.5"},
	{"IORING_OP_CLOSE", abi.IORING_OP_CLOSE, "5.6"},
	{"IORING_OP_SEND", abi.IORING_OP_SEND, "5.6"},
	{"IORING_OP_RECV", abi.IORING_OP_RECV, "5.6"},
	{"IORING_OP_SENDMSG", abi.IORING_OP_SENDMSG, "5.3"},
	{"IORING_OP_RECVMSG", abi.IORING_OP_RECVMSG, "5.3"},
	{"IORING_OP_POLL_ADD", abi.IORING_OP_POLL_ADD, "5.1"},
	{"IORING_OP_SEND_ZC", abi.IORING_OP_SEND_ZC, "6.0"},
	{"IORING_OP_SENDMSG_ZC", abi.IORING_OP_SENDMSG_ZC, "6.1"},
	{"IORING_OP_READ_MULTISHOT", abi.IORING_OP_READ_MULTISHOT, "6.7"},
	{"IORING_OP_BIND", abi.IORING_OP_BIND, "6.11"},
	{"IORING_OP_LISTEN", abi.IORING_OP_LISTEN, "6.11"},
	{"IORING_OP_RECV_ZC", abi.IORING_OP_RECV_ZC, "6.15"},
}

type featBit struct {
	name      string
	bit       uint32
	minKernel string
	needed    feat // the variant features that rely on it
}

var featBits = []featBit{
	{"IORING_FEAT_SINGLE_MMAP", abi.IORING_FEAT_SINGLE_MMAP, "5.4", 0},
	{"IORING_FEAT_NODROP", abi.IORING_FEAT_NODROP, "5.5", 0},
	{"IORING_FEAT_SUBMIT_STABLE", abi.IORING_FEAT_SUBMIT_STABLE, "5.5", 0},
	{"IORING_FEAT_FAST_POLL", abi.IORING_FEAT_FAST_POLL, "5.7", 0},
	{"IORING_FEAT_SQPOLL_NONFIXED", abi.IORING_FEAT_SQPOLL_NONFIXED, "5.11", 0},
	{"IORING_FEAT_EXT_ARG", abi.IORING_FEAT_EXT_ARG, "5.11", 0},
	{"IORING_FEAT_NATIVE_WORKERS", abi.IORING_FEAT_NATIVE_WORKERS, "5.12", 0},
	{"IORING_FEAT_CQE_SKIP", abi.IORING_FEAT_CQE_SKIP, "5.17", 0},
	{"IORING_FEAT_LINKED_FILE", abi.IORING_FEAT_LINKED_FILE, "5.17", 0},
	{"IORING_FEAT_REG_REG_RING", abi.IORING_FEAT_REG_REG_RING, "6.3", 0},
	{"IORING_FEAT_RECVSEND_BUNDLE", abi.IORING_FEAT_RECVSEND_BUNDLE, "6.10", featBundle},
	{"IORING_FEAT_MIN_TIMEOUT", abi.IORING_FEAT_MIN_TIMEOUT, "6.12", 0},
	{"IORING_FEAT_NO_IOWAIT", abi.IORING_FEAT_NO_IOWAIT, "6.15", 0},
}

// Features lists what this kernel's io_uring supports: the sysctl, setup
// flags (each tried), opcodes (IORING_REGISTER_PROBE), feature bits and
// the capabilities the variants rely on (each exercised).
func Features() []Feature {
	var out []Feature
	if err := available(); err != nil {
		return append(out, feature("io_uring", false, "5.1", err.Error()))
	}
	out = append(out, feature("io_uring", true, "5.1", disabledSysctl()))
	for _, f := range setupFlags {
		err := trySetup(f.flags)
		out = append(out, feature(f.name, err == nil, f.minKernel, reason(err, "io_uring_setup")))
	}
	r, err := ring.Setup(ring.Params{Entries: 4})
	if err != nil {
		return append(out, feature("io_uring_setup", false, "", err.Error()))
	}
	defer r.Close()
	probe, perr := r.RegisterProbe()
	for _, o := range opcodes {
		ok := perr == nil && probe.Supports(o.op)
		why := "opcode probe"
		if perr != nil {
			why = perr.Error()
		}
		out = append(out, feature(o.name, ok, o.minKernel, why))
	}
	for _, b := range featBits {
		out = append(out, feature(b.name, r.Features()&b.bit != 0, b.minKernel, "io_uring_params.features"))
	}
	for _, c := range capabilities {
		err := c.try()
		out = append(out, feature(c.name, err == nil, c.minKernel, reason(err, "exercised")))
	}
	return append(out, zcrxFeatures()...)
}

func reason(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

// capability is something a variant needs that no probe answers, so it is
// tried on a small ring.
type capability struct {
	name      string
	minKernel string
	// needed: the variant features that rely on it (their probe tries it).
	needed feat
	try    func() error
}

var capabilities = []capability{
	{"IORING_REGISTER_RING_FDS", "5.18", featFixed, func() error { return onRing(0, (*ring.Ring).RegisterRingFd) }},
	{"sparse direct descriptors (IORING_RSRC_REGISTER_SPARSE)", "5.19", featFixed, func() error {
		return onRing(0, func(r *ring.Ring) error { return r.RegisterFilesSparse(16) })
	}},
	{"provided buffer rings (IORING_REGISTER_PBUF_RING)", "5.19", featPbuf, func() error {
		return onRing(0, func(r *ring.Ring) error {
			b, err := ring.NewBufRing(r, 0, 2, 64)
			if err != nil {
				return err
			}
			return b.Close()
		})
	}},
	{"multishot recv with buffer select (IORING_RECV_MULTISHOT)", "6.0", featMultishot, func() error { return tryMultishotRecv(0) }},
	{"recv bundles (IORING_RECVSEND_BUNDLE)", "6.10", featBundle, func() error { return tryMultishotRecv(abi.IORING_RECVSEND_BUNDLE) }},
	{"registered buffers (IORING_REGISTER_BUFFERS)", "5.1", featZC, func() error {
		return onRingWithPage(func(r *ring.Ring, mem []byte) error { return r.RegisterBuffers(mem) })
	}},
	{"incrementally consumed buffer rings (IOU_PBUF_RING_INC)", "6.12", featBundle, func() error {
		return onRingWithPage(func(r *ring.Ring, mem []byte) error {
			d, err := ring.RegisterDescRing(r, 0, mem, 16, abi.IOU_PBUF_RING_INC)
			if err != nil {
				return err
			}
			return d.Unregister()
		})
	}},
}

// disabledSysctl reports kernel.io_uring_disabled.
func disabledSysctl() string {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if err != nil {
		return "kernel.io_uring_disabled absent"
	}
	return "kernel.io_uring_disabled = " + strings.TrimSpace(string(b))
}

// available says whether this process may use io_uring at all.
func available() error {
	b, _ := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	v := strings.TrimSpace(string(b))
	if v == "2" {
		return &backends.NotSupportedError{Feature: "io_uring", Reason: "kernel.io_uring_disabled = 2"}
	}
	err := trySetup(0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSYS):
		return &backends.NotSupportedError{Feature: "io_uring", MinKernel: "5.1", Reason: "io_uring_setup: ENOSYS"}
	case errors.Is(err, unix.EPERM):
		return &backends.NotSupportedError{Feature: "io_uring", Reason: "io_uring_setup: EPERM (kernel.io_uring_disabled = " + v + ")"}
	default:
		return fmt.Errorf("probe io_uring: %w", err)
	}
}

func trySetup(flags uint32) error {
	r, err := ring.Setup(ring.Params{Entries: 4, Flags: flags})
	if err != nil {
		return err
	}
	return r.Close()
}

// onRingWithPage runs f on a small plain ring and a page of mapped memory.
func onRingWithPage(f func(*ring.Ring, []byte) error) error {
	return onRing(0, func(r *ring.Ring) error {
		mem, err := ring.MapAnon(4096)
		if err != nil {
			return err
		}
		defer unix.Munmap(mem)
		return f(r, mem)
	})
}

func onRing(flags uint32, f func(*ring.Ring) error) error {
	r, err := ring.Setup(ring.Params{Entries: 4, Flags: flags})
	if err != nil {
		return err
	}
	defer r.Close()
	return f(r)
}

// tryMultishotRecv arms a multishot recv (with extra ioprio flags) over a
// socketpair and checks that a CQE arrives with data and F_MORE.
func tryMultishotRecv(extra uint16) error {
	return onRing(0, func(r *ring.Ring) error {
		b, err := ring.NewBufRing(r, 0, 4, 64)
		if err != nil {
			return err
		}
		defer b.Close()
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("create socketpair: %w", err)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if _, err := unix.Write(fds[1], []byte("probe")); err != nil {
			return fmt.Errorf("write probe: %w", err)
		}
		s := r.GetSQE()
		s.Opcode = abi.IORING_OP_RECV
		s.Fd = int32(fds[0])
		s.Flags = abi.IOSQE_BUFFER_SELECT
		s.BufIndex = b.Group()
		s.Ioprio = abi.IORING_RECV_MULTISHOT | extra
		if _, err := r.SubmitAndWait(1); err != nil {
			return err
		}
		head := r.CQHead()
		if r.CQTail() == head {
			return errors.New("no completion")
		}
		cqe := *r.CQE(head)
		r.CQAdvance(head + 1)
		if cqe.Res < 0 {
			return fmt.Errorf("recv: %w", unix.Errno(-cqe.Res))
		}
		if cqe.Flags&abi.IORING_CQE_F_MORE == 0 {
			return errors.New("recv completed without IORING_CQE_F_MORE: not multishot")
		}
		return nil
	})
}

var probes sync.Map // *variant -> error (nil stored as errNone)

var errNone = errors.New("supported")

// probe reports whether this machine can run v, cached after the first call.
func (v *variant) probe() error {
	if e, ok := probes.Load(v); ok {
		if e == errNone {
			return nil
		}
		return e.(error)
	}
	err := v.check()
	if err == nil {
		probes.Store(v, errNone)
	} else {
		probes.Store(v, err)
	}
	return err
}

func (v *variant) check() error {
	if err := available(); err != nil {
		return err
	}
	// The ring is made on a locked thread, as a loop makes it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// SQ_AFF is left out: the CPU it would name is the server's, known
	// only at New.
	if err := trySetup(v.flags &^ abi.IORING_SETUP_SQ_AFF); err != nil {
		for _, f := range setupFlags {
			if f.flags&v.flags != 0 && f.flags&^v.flags == 0 && trySetup(f.flags) != nil {
				return &backends.NotSupportedError{Feature: v.name + ": " + f.name, MinKernel: f.minKernel, Reason: "io_uring_setup: " + err.Error()}
			}
		}
		return &backends.NotSupportedError{Feature: v.name + " setup flags", Reason: err.Error()}
	}
	need := []opcode{opcodes[0], opcodes[1], opcodes[2], opcodes[3], opcodes[4], opcodes[5], opcodes[6], opcodes[7]}
	if v.has(featZC) {
		need = append(need, opcodes[8])
	}
	var probe *ring.Probe
	err := onRing(0, func(r *ring.Ring) (err error) {
		probe, err = r.RegisterProbe()
		return err
	})
	if err != nil {
		return &backends.NotSupportedError{Feature: "IORING_REGISTER_PROBE", MinKernel: "5.6", Reason: err.Error()}
	}
	for _, o := range need {
		if !probe.Supports(o.op) {
			return &backends.NotSupportedError{Feature: v.name + ": " + o.name, MinKernel: o.minKernel, Reason: "opcode probe: unsupported"}
		}
	}
	for _, c := range capabilities {
		if v.feats&c.needed == 0 {
			continue
		}
		if err := c.try(); err != nil {
			return &backends.NotSupportedError{Feature: v.name + ": " + c.name, MinKernel: c.minKernel, Reason: err.Error()}
		}
	}
	var feats uint32
	_ = onRing(0, func(r *ring.Ring) error { feats = r.Features(); return nil })
	for _, b := range featBits {
		if v.feats&b.needed != 0 && feats&b.bit == 0 {
			return &backends.NotSupportedError{Feature: v.name + ": " + b.name, MinKernel: b.minKernel, Reason: "io_uring_params.features lacks it"}
		}
	}
	return nil
}
