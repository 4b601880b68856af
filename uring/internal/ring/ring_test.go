package ring

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/internal/testenv"
	"ringbench/uring/internal/abi"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The runtime opens its netpoll fds at the first timer; start one before
// testenv.Main's fd snapshot so they are not taken for leaks.
func init() { time.Sleep(time.Microsecond) }

func setup(t *testing.T, flags uint32) *Ring {
	t.Helper()
	// A SINGLE_ISSUER ring accepts enters only from the thread that made it.
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	r, err := Setup(Params{Entries: 8, Flags: flags})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("skipped: io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestNopRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
	}{
		{"plain", 0},
		{"no_sqarray", abi.IORING_SETUP_NO_SQARRAY},
		{"defer_taskrun", abi.IORING_SETUP_SINGLE_ISSUER | abi.IORING_SETUP_DEFER_TASKRUN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := setup(t, tc.flags)
			if err := r.RegisterRingFd(); err != nil {
				t.Fatal(err)
			}
			// Twice the SQ size in two rounds: the ring wraps.
			for round := 0; round < 3; round++ {
				want := map[uint64]bool{}
				for i := 0; i < int(r.SQEntries()); i++ {
					sqe := r.GetSQE()
					if sqe == nil {
						t.Fatalf("round %d: SQ full after %d SQEs", round, i)
					}
					sqe.Opcode = abi.IORING_OP_NOP
					sqe.UserData = uint64(round*100 + i)
					want[sqe.UserData] = true
				}
				if r.GetSQE() != nil {
					t.Fatal("GetSQE handed out more SQEs than the ring holds")
				}
				n, err := r.SubmitAndWait(r.SQEntries())
				if err != nil {
					t.Fatal(err)
				}
				if n != int(r.SQEntries()) {
					t.Fatalf("submitted %d, want %d", n, r.SQEntries())
				}
				head, tail := r.CQHead(), r.CQTail()
				for ; head != tail; head++ {
					cqe := r.CQE(head)
					if cqe.Res != 0 || !want[cqe.UserData] {
						t.Errorf("unexpected cqe %+v", *cqe)
					}
					delete(want, cqe.UserData)
				}
				r.CQAdvance(head)
				if len(want) != 0 {
					t.Errorf("round %d: no completion for %v", round, want)
				}
			}
			if r.Enters != 3 {
				t.Errorf("Enters = %d, want 3 (one per batch)", r.Enters)
			}
		})
	}
}

func TestRegisterProbe(t *testing.T) {
	r := setup(t, 0)
	p, err := r.RegisterProbe()
	if err != nil {
		t.Fatal(err)
	}
	if !p.Supports(abi.IORING_OP_NOP) || !p.Supports(abi.IORING_OP_READ) {
		t.Errorf("probe says NOP or READ unsupported (last op %d)", p.LastOp())
	}
	if p.Supports(255) {
		t.Error("probe says opcode 255 is supported")
	}
}

func TestBufRingRoundTrip(t *testing.T) {
	r := setup(t, 0)
	b, err := NewBufRing(r, 7, 4, 64)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("skipped: provided buffer rings need Linux 5.19: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])

	// Six receives through a 4-buffer ring: the ring must wrap and the
	// recycled buffers come back.
	for i := 0; i < 6; i++ {
		msg := []byte{byte('a' + i), 'x', byte('0' + i)}
		if _, err := unix.Write(fds[1], msg); err != nil {
			t.Fatal(err)
		}
		sqe := r.GetSQE()
		sqe.Opcode = abi.IORING_OP_RECV
		sqe.Fd = int32(fds[0])
		sqe.Flags = abi.IOSQE_BUFFER_SELECT
		sqe.BufIndex = b.Group()
		sqe.UserData = uint64(i)
		if _, err := r.SubmitAndWait(1); err != nil {
			t.Fatal(err)
		}
		head := r.CQHead()
		if r.CQTail() == head {
			t.Fatal("no completion")
		}
		cqe := *r.CQE(head)
		r.CQAdvance(head + 1)
		if cqe.Res != int32(len(msg)) || cqe.Flags&abi.IORING_CQE_F_BUFFER == 0 {
			t.Fatalf("recv %d: cqe %+v", i, cqe)
		}
		bid := uint16(cqe.Flags >> abi.IORING_CQE_BUFFER_SHIFT)
		if bid != uint16(i%4) {
			t.Errorf("recv %d: bid %d, want %d (FIFO)", i, bid, i%4)
		}
		if got := b.Buf(bid)[:cqe.Res]; !bytes.Equal(got, msg) {
			t.Errorf("recv %d: buffer holds %q, want %q", i, got, msg)
		}
		b.Recycle(bid)
		b.Publish()
	}
}

func TestCloseFreesEverything(t *testing.T) {
	before := ringMappings(t)
	r, err := Setup(Params{Entries: 4})
	if err != nil {
		t.Skipf("skipped: io_uring unavailable: %v", err)
	}
	fd := r.Fd()
	b, err := NewBufRing(r, 1, 2, 4096)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	if got := ringMappings(t); got <= before {
		t.Fatalf("no io_uring mapping seen while open (%d before, %d now)", before, got)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := ringMappings(t); got != before {
		t.Errorf("%d io_uring mappings after Close, %d before", got, before)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("ring fd %d still open after Close (fcntl: %v)", fd, err)
	}
}

func ringMappings(t *testing.T) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("skipped: /proc/self/maps: %v", err)
	}
	return strings.Count(string(maps), "io_uring")
}
