package sampler

import (
	"bytes"
	"debug/elf"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"ringbench/sampler/internal/perf"
)

const kallsyms = `ffffffff81000000 T _stext
ffffffff81000100 t do_syscall_64
ffffffff81000200 T __x64_sys_getppid
ffffffff81000300 D some_data
ffffffff81000400 T tcp_sendmsg
ffffffff81000500 T pv_native_safe_halt
ffffffff81000600 T do_idle
ffffffffc0000000 t veth_xmit	[veth]
`

func TestParseKallsyms(t *testing.T) {
	s, err := parseKallsyms(strings.NewReader(kallsyms))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{
		{0xffffffff81000100, "do_syscall_64"},
		{0xffffffff810001ff, "do_syscall_64"},
		{0xffffffff81000350, "__x64_sys_getppid"}, // data symbols are not functions
		{0xffffffffc0000010, "veth_xmit"},
	} {
		if got, ok := s.lookup(tc.addr); !ok || got != tc.want {
			t.Errorf("lookup(%#x) = %q, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
	if _, ok := s.lookup(0x1000); ok {
		t.Error("an address below every symbol resolved")
	}
	if _, err := parseKallsyms(strings.NewReader("0000000000000000 T _stext\n0000000000000000 T do_idle\n")); err == nil {
		t.Error("hidden addresses (kptr_restrict) parsed without an error")
	}
}

func TestParseMaps(t *testing.T) {
	const maps = `00400000-0057f000 r-xp 00000000 fe:01 1234   /tmp/go-build/b001/server test
0057f000-00700000 r--p 0017f000 fe:01 1234   /tmp/go-build/b001/server test
7f0000001000-7f0000002000 r-xp 00002000 fe:01 99 /usr/lib/libc.so.6 (deleted)
7f0000003000-7f0000004000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
`
	ms, err := parseMaps(strings.NewReader(maps))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{0x400000, 0x57f000, 0, true, "/tmp/go-build/b001/server test"},
		{0x7f0000001000, 0x7f0000002000, 0x2000, true, "/usr/lib/libc.so.6 (deleted)"},
		{0x7ffd00000000, 0x7ffd00002000, 0, true, "[vdso]"},
	}
	if len(ms) != len(want) {
		t.Fatalf("parsed %+v, want %+v", ms, want)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
	if _, err := parseMaps(strings.NewReader("garbage\n")); err == nil {
		t.Error("garbage parsed")
	}
}

func FuzzParseMaps(f *testing.F) {
	f.Add("00400000-0057f000 r-xp 00000000 fe:01 1234 /bin/x\n")
	f.Fuzz(func(t *testing.T, s string) { parseMaps(strings.NewReader(s)) })
}

func FuzzParseKallsyms(f *testing.F) {
	f.Add(kallsyms)
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := parseKallsyms(strings.NewReader(s)); err == nil {
			st.lookup(0xffffffff81000000)
		}
	})
}

// synthetic builds a stopped sampler over made-up samples: the profile
// and breakdown path without perf_event_open.
func synthetic(t *testing.T) *Sampler {
	t.Helper()
	ks, err := parseKallsyms(strings.NewReader(kallsyms))
	if err != nil {
		t.Fatal(err)
	}
	server := &process{comm: "ringbench", maps: []mapping{{0x400000, 0x500000, 0, true, "/bin/ringbench"}},
		files: []*elfSymbols{{
			syms:  &symtab{addrs: []uint64{0x401000, 0x402000}, sizes: []uint64{0x1000, 0x1000}, names: []string{"main.spin", "main.main"}},
			loads: nil,
		}}}
	server.files[0].loads = append(server.files[0].loads, progLoad(0, 0x400000, 0x100000))
	period := uint64(1_000_000_000 / DefaultHz)
	var smp []perf.Sample
	add := func(n int, pid uint32, kernel, user []uint64) {
		for range n {
			smp = append(smp, perf.Sample{PID: pid, TID: pid, CPU: 1, Period: period, Kernel: kernel, User: user})
		}
	}
	add(6, 100, nil, []uint64{0x401010, 0x402010})                                    // app
	add(2, 100, []uint64{0xffffffff81000210, 0xffffffff81000110}, []uint64{0x402010}) // syscall
	add(1, 100, []uint64{0xffffffff81000410, 0xffffffff81000110}, []uint64{0x402010}) // net
	add(1, 200, []uint64{0xffffffffc0000010}, nil)                                    // dev, a kernel thread
	add(5, 0, []uint64{0xffffffff81000510, 0xffffffff81000610}, nil)                  // idle
	start := time.Unix(1700000000, 0)
	return &Sampler{
		cfg:     Config{CPUs: []int{1}, PIDs: []int{100}, Hz: DefaultHz},
		kind:    perf.CPUClock,
		kernel:  ks,
		started: start, stopped: start.Add(10 * time.Millisecond),
		records: perf.Records{Samples: smp, Lost: 3},
		procs:   map[uint32]*process{0: {comm: "swapper"}, 100: server, 200: {comm: "ksoftirqd/1"}},
	}
}

func TestBreakdown(t *testing.T) {
	res, err := synthetic(t).Profile()
	if err != nil {
		t.Fatal(err)
	}
	b := res.Breakdown
	want := map[string]float64{"app": 0.6, "syscall": 0.2, "net": 0.1, "dev": 0.1}
	sum := 0.0
	for c, sh := range b.Shares {
		sum += sh
		if math.Abs(sh-want[c]) > 1e-12 {
			t.Errorf("share of %s = %v, want %v", c, sh, want[c])
		}
	}
	if len(b.Shares) != len(want) || math.Abs(sum-1) > 1e-12 {
		t.Errorf("shares %v sum to %v, want %v summing to 1", b.Shares, sum, want)
	}
	if b.Samples != 10 || b.Idle != 5 || b.Counts["idle"] != 5 || b.Lost != 3 {
		t.Errorf("breakdown %+v: want 10 samples, 5 idle, 3 lost", b)
	}
	if got := b.Split(1000, 1); math.Abs(got["app"].CyclesPerOp-600) > 1e-9 || math.Abs(got["dev"].CyclesPerOp-100) > 1e-9 {
		t.Errorf("Split(1000, 1) = %v", got)
	}

	var buf bytes.Buffer
	if err := res.Write(&buf); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != 15 {
		t.Fatalf("parsed %d samples, want 15", len(p.Sample))
	}
	// Every sample's root frame is its process's comm; the app samples'
	// leaf is the server's function.
	for _, s := range p.Sample {
		root := s.Location[len(s.Location)-1].Line[0].Function.Name
		if root != s.Label["comm"][0] {
			t.Errorf("root frame %q, comm %q", root, s.Label["comm"][0])
		}
		leaf := s.Location[0].Line[0].Function.Name
		if s.Label["category"][0] == "app" && leaf != "main.spin" {
			t.Errorf("app sample's leaf is %q, want main.spin", leaf)
		}
		if s.Label["category"][0] == "syscall" && leaf != "__x64_sys_getppid" {
			t.Errorf("syscall sample's leaf is %q", leaf)
		}
	}
}

func progLoad(off, vaddr, size uint64) elf.ProgHeader {
	return elf.ProgHeader{Type: elf.PT_LOAD, Off: off, Vaddr: vaddr, Filesz: size, Memsz: size}
}
