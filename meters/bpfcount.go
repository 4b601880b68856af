package meters

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// syscallSlots is how many syscall ids the map counts one by one (every
// number of amd64 and arm64 today is below it); ids at or above it, and
// the negative ids of a bad entry, share the last slot.
const syscallSlots = 512

// syscallMap is a BPF program on raw_syscalls:sys_enter that counts the
// syscalls of a cgroup or a set of processes by id, in an array map this
// process reads through mmap.
//
// The program is attached through an anchor: a raw_syscalls:sys_enter
// perf event of this process's main thread, not inherited. A BPF program
// on a tracepoint belongs to the tracepoint, not to the event it was set
// on: it runs on every task's sys_enter while the anchor is open and is
// detached when the anchor closes. (It is not set on the server's
// inherited counters: an inherited event that goes away with its thread
// could take the program with it.)
type syscallMap struct {
	mapFD, progFD, anchorFD int
	mem                     []byte // the map's values, syscallSlots+1 uint64s
}

// BPF helper numbers (include/uapi/linux/bpf.h, a stable ABI; x/sys/unix
// does not carry them).
const (
	bpfFuncMapLookupElem      = 1
	bpfFuncGetCurrentPidTgid  = 14
	bpfFuncGetCurrentCgroupID = 80
)

// bpfInsn is one BPF instruction as the kernel reads it (struct bpf_insn).
type bpfInsn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

// syscallSet says whose syscalls the program counts: the tasks of one
// cgroup v2 (by its id, the inode of its folder), when the server has one,
// else the threads of a set of processes (tgids). A cgroup holds the same
// threads as the total counter (which attaches to cgroup.threads and
// follows the threads they make), child processes included.
type syscallSet struct {
	cgroupID uint64
	tgids    []int
}

// syscallProgram counts the syscall id of a task in set in the array map
// mapFD, and returns 1 (the tracepoint's perf events, the total counters
// among them, count on as before):
//
//	r6 = ctx
//	cgroup: r0 = bpf_get_current_cgroup_id(); r1 = id; if r0 == r1 goto count
//	tgids:  r0 = bpf_get_current_pid_tgid() >> 32; if r0 == tgid goto count (each)
//	goto out
//	count: r1 = ctx->id; if r1 > slots-1 (unsigned: negatives too) r1 = slots
//	*(u32 *)(r10 - 4) = r1
//	r0 = bpf_map_lookup_elem(map, r10 - 4); if r0 == 0 goto out
//	lock *(u64 *)r0 += 1
//	out: return 1
func syscallProgram(mapFD int, set syscallSet) []bpfInsn {
	const (
		alu64 = unix.BPF_ALU64
		jmp   = unix.BPF_JMP
	)
	p := []bpfInsn{insn(alu64|unix.BPF_MOV|unix.BPF_X, 6, 1, 0, 0)}
	// Each test's "goto count" jumps over the tests left and the "goto
	// out" after them.
	if set.cgroupID != 0 {
		p = append(p,
			insn(jmp|unix.BPF_CALL, 0, 0, 0, bpfFuncGetCurrentCgroupID),
			insn(unix.BPF_LD|unix.BPF_IMM|unix.BPF_DW, 1, 0, 0, int32(uint32(set.cgroupID))),
			insn(0, 0, 0, 0, int32(uint32(set.cgroupID>>32))),
			insn(jmp|unix.BPF_JEQ|unix.BPF_X, 0, 1, 1, 0),
		)
	} else {
		p = append(p,
			insn(jmp|unix.BPF_CALL, 0, 0, 0, bpfFuncGetCurrentPidTgid),
			insn(alu64|unix.BPF_RSH|unix.BPF_K, 0, 0, 0, 32),
		)
		for i, g := range set.tgids {
			p = append(p, insn(jmp|unix.BPF_JEQ|unix.BPF_K, 0, 0, int16(len(set.tgids)-i), int32(g)))
		}
	}
	count := []bpfInsn{
		insn(unix.BPF_LDX|unix.BPF_MEM|unix.BPF_DW, 1, 6, 8, 0), // ctx->id: the record's first field after the 8-byte common header
		insn(jmp|unix.BPF_JGT|unix.BPF_K, 1, 0, 1, syscallSlots-1),
		insn(jmp|unix.BPF_JA, 0, 0, 1, 0),
		insn(alu64|unix.BPF_MOV|unix.BPF_K, 1, 0, 0, syscallSlots),
		insn(unix.BPF_STX|unix.BPF_MEM|unix.BPF_W, 10, 1, -4, 0),
		insn(alu64|unix.BPF_MOV|unix.BPF_X, 2, 10, 0, 0),
		insn(alu64|unix.BPF_ADD|unix.BPF_K, 2, 0, 0, -4),
		insn(unix.BPF_LD|unix.BPF_IMM|unix.BPF_DW, 1, unix.BPF_PSEUDO_MAP_FD, 0, int32(mapFD)),
		insn(0, 0, 0, 0, 0), // the second half of the 64-bit load
		insn(jmp|unix.BPF_CALL, 0, 0, 0, bpfFuncMapLookupElem),
		insn(jmp|unix.BPF_JEQ|unix.BPF_K, 0, 0, 2, 0),
		insn(alu64|unix.BPF_MOV|unix.BPF_K, 1, 0, 0, 1),
		insn(unix.BPF_STX|unix.BPF_ATOMIC|unix.BPF_DW, 0, 1, 0, unix.BPF_ADD),
	}
	p = append(p, insn(jmp|unix.BPF_JA, 0, 0, int16(len(count)), 0))
	p = append(p, count...)
	return append(p,
		insn(alu64|unix.BPF_MOV|unix.BPF_K, 0, 0, 0, 1),
		insn(jmp|unix.BPF_EXIT, 0, 0, 0, 0),
	)
}

// bpfMapCreateAttr is the head of union bpf_attr for BPF_MAP_CREATE.
type bpfMapCreateAttr struct {
	mapType, keySize, valueSize, maxEntries, mapFlags uint32
}

// bpfProgLoadAttr is the head of union bpf_attr for BPF_PROG_LOAD.
type bpfProgLoadAttr struct {
	progType, insnCnt uint32
	insns, license    uint64
	logLevel, logSize uint32
	logBuf            uint64
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// openSyscallMap creates the map, maps it, loads the program for set and
// attaches it to the tracepoint through the anchor event.
func openSyscallMap(tracepoint uint64, set syscallSet) (m *syscallMap, err error) {
	if set.cgroupID == 0 && len(set.tgids) == 0 {
		return nil, errors.New("no process to count")
	}
	m = &syscallMap{mapFD: -1, progFD: -1, anchorFD: -1}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	ma := bpfMapCreateAttr{mapType: unix.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8,
		maxEntries: syscallSlots + 1, mapFlags: unix.BPF_F_MMAPABLE}
	if m.mapFD, err = bpf(unix.BPF_MAP_CREATE, unsafe.Pointer(&ma), unsafe.Sizeof(ma)); err != nil {
		return nil, fmt.Errorf("create BPF array map: %w", err)
	}
	size := (8*(syscallSlots+1) + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	if m.mem, err = unix.Mmap(m.mapFD, 0, size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("map BPF array: %w", err)
	}
	if m.progFD, err = loadProgram(syscallProgram(m.mapFD, set)); err != nil {
		return nil, err
	}
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_TRACEPOINT,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config: tracepoint,
	}
	if m.anchorFD, err = unix.PerfEventOpen(&attr, os.Getpid(), -1, -1, unix.PERF_FLAG_FD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("open the BPF program's anchor event: %w", err)
	}
	if err := unix.IoctlSetInt(m.anchorFD, unix.PERF_EVENT_IOC_SET_BPF, m.progFD); err != nil {
		return nil, fmt.Errorf("attach BPF program to raw_syscalls:sys_enter: %w", err)
	}
	return m, nil
}

// loadProgram loads a tracepoint program; a refusal is retried with the
// verifier's log, which the error then carries.
func loadProgram(prog []bpfInsn) (int, error) {
	// The kernel asks every program for a licence; this one calls no
	// GPL-only helper and declares GPL, as kernel tracing programs do.
	license := []byte("GPL\x00")
	load := func(log []byte) (int, error) {
		a := bpfProgLoadAttr{
			progType: unix.BPF_PROG_TYPE_TRACEPOINT,
			insnCnt:  uint32(len(prog)),
			insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
			license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		}
		if log != nil {
			a.logLevel, a.logSize, a.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
		}
		fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&a), unsafe.Sizeof(a))
		runtime.KeepAlive(prog)
		runtime.KeepAlive(license)
		runtime.KeepAlive(log)
		return fd, err
	}
	fd, err := load(nil)
	if err == nil {
		return fd, nil
	}
	log := make([]byte, 64<<10)
	if _, lerr := load(log); lerr != nil {
		if n := indexNUL(log); n > 0 {
			return -1, fmt.Errorf("load BPF program: %w: %s", err, log[:n])
		}
	}
	return -1, fmt.Errorf("load BPF program: %w", err)
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// read returns the count of each id (the last slot: every id beyond the
// others), each read atomically: the program adds to them meanwhile.
func (m *syscallMap) read() []uint64 {
	out := make([]uint64, syscallSlots+1)
	for i := range out {
		out[i] = atomic.LoadUint64((*uint64)(unsafe.Pointer(&m.mem[8*i])))
	}
	return out
}

func (m *syscallMap) Close() error {
	// The anchor first: closing it detaches the program.
	for _, fd := range []int{m.anchorFD, m.progFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	if m.mem != nil {
		unix.Munmap(m.mem)
		m.mem = nil
	}
	if m.mapFD >= 0 {
		unix.Close(m.mapFD)
	}
	m.anchorFD, m.progFD, m.mapFD = -1, -1, -1
	return nil
}
