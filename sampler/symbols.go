package sampler

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// symtab is a sorted list of function start addresses and their names: a
// lookup is a binary search for the last start at or below the address.
type symtab struct {
	addrs []uint64
	sizes []uint64 // 0 when unknown: the symbol then runs to the next start
	names []string
}

func (s *symtab) sort() {
	idx := make([]int, len(s.addrs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.addrs[idx[a]] < s.addrs[idx[b]] })
	addrs, sizes, names := make([]uint64, len(idx)), make([]uint64, len(idx)), make([]string, len(idx))
	for i, j := range idx {
		addrs[i], sizes[i], names[i] = s.addrs[j], s.sizes[j], s.names[j]
	}
	s.addrs, s.sizes, s.names = addrs, sizes, names
}

func (s *symtab) lookup(addr uint64) (string, bool) {
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
	if i < 0 {
		return "", false
	}
	if s.sizes[i] != 0 && addr >= s.addrs[i]+s.sizes[i] {
		return "", false
	}
	return s.names[i], true
}

// parseKallsyms reads /proc/kallsyms's text symbols ("ffffffff81000000 T
// _stext", a module's with " [veth]" after). All-zero addresses mean the
// reader may not see them (kptr_restrict, not root): an error, not a table
// that would name every address after its first symbol.
func parseKallsyms(r io.Reader) (*symtab, error) {
	s := &symtab{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	nonzero := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || len(f[1]) != 1 || !strings.ContainsAny(f[1], "tTwW") {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parse kallsyms: %q: %w", sc.Text(), err)
		}
		nonzero = nonzero || addr != 0
		s.addrs = append(s.addrs, addr)
		s.sizes = append(s.sizes, 0)
		s.names = append(s.names, f[2])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	if !nonzero {
		return nil, fmt.Errorf("parse kallsyms: no visible addresses (kptr_restrict, or not root)")
	}
	s.sort()
	return s, nil
}

func loadKallsyms() (*symtab, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("open kallsyms: %w", err)
	}
	defer f.Close()
	return parseKallsyms(f)
}

// mapping is one line of /proc/PID/maps.
type mapping struct {
	start, end, offset uint64
	exec               bool
	path               string // "" for anonymous memory, "[vdso]", a file
}

// parseMaps reads /proc/PID/maps, keeping executable mappings.
func parseMaps(r io.Reader) ([]mapping, error) {
	var ms []mapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		// start-end perms offset dev inode path (path may hold spaces)
		f := strings.SplitN(line, " ", 6)
		if len(f) < 5 {
			return nil, fmt.Errorf("parse maps: %q", line)
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("parse maps: range %q", f[0])
		}
		var m mapping
		var err1, err2, err3 error
		m.start, err1 = strconv.ParseUint(lo, 16, 64)
		m.end, err2 = strconv.ParseUint(hi, 16, 64)
		m.offset, err3 = strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("parse maps: %q", line)
		}
		m.exec = strings.Contains(f[1], "x")
		if len(f) == 6 {
			m.path = strings.TrimSpace(f[5])
		}
		if m.exec {
			ms = append(ms, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read maps: %w", err)
	}
	return ms, nil
}

// elfSymbols is one ELF file's function symbols and the program headers
// that turn a file offset into the address its symbols are at.
type elfSymbols struct {
	syms  *symtab
	loads []elf.ProgHeader
}

// loadELF reads the function symbols of the ELF file at path (.symtab, and
// .dynsym for stripped shared libraries).
func loadELF(path string) (*elfSymbols, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open elf %s: %w", path, err)
	}
	defer f.Close()
	e := &elfSymbols{syms: &symtab{}}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			e.loads = append(e.loads, p.ProgHeader)
		}
	}
	seen := map[uint64]bool{}
	for _, read := range []func() ([]elf.Symbol, error){f.Symbols, f.DynamicSymbols} {
		syms, err := read()
		if err != nil {
			continue // ErrNoSymbols: try the other table
		}
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 || seen[s.Value] {
				continue
			}
			seen[s.Value] = true
			e.syms.addrs = append(e.syms.addrs, s.Value)
			e.syms.sizes = append(e.syms.sizes, s.Size)
			e.syms.names = append(e.syms.names, s.Name)
		}
	}
	if len(e.syms.addrs) == 0 {
		e.addGoFuncs(f) // a stripped Go binary (go test's) keeps its pclntab
	}
	e.syms.sort()
	return e, nil
}

// addGoFuncs reads the functions of a Go binary's .gopclntab, the table the
// Go runtime itself symbolizes with, which stripping does not remove.
func (e *elfSymbols) addGoFuncs(f *elf.File) {
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return
	}
	data, err := pcln.Data()
	if err != nil {
		return
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return
	}
	for _, fn := range tab.Funcs {
		e.syms.addrs = append(e.syms.addrs, fn.Entry)
		e.syms.sizes = append(e.syms.sizes, fn.End-fn.Entry)
		e.syms.names = append(e.syms.names, fn.Name)
	}
}

// lookup names the function at file offset off.
func (e *elfSymbols) lookup(off uint64) (string, bool) {
	for _, p := range e.loads {
		if off >= p.Off && off < p.Off+p.Filesz {
			return e.syms.lookup(off - p.Off + p.Vaddr)
		}
	}
	return "", false
}

// process is what Stop read of one process while it still lived.
type process struct {
	comm  string
	maps  []mapping
	files []*elfSymbols // per mapping; nil when unreadable
}

// readProcess reads pid's comm and executable mappings, and loads each
// mapping's ELF symbols through cache (keyed by path: the server's binary
// is read once however many processes run it).
func readProcess(pid int, cache map[string]*elfSymbols) *process {
	p := &process{comm: fmt.Sprintf("pid %d", pid)}
	dir := fmt.Sprintf("/proc/%d", pid)
	if b, err := os.ReadFile(dir + "/comm"); err == nil {
		p.comm = strings.TrimSpace(string(b))
	}
	f, err := os.Open(dir + "/maps")
	if err != nil {
		return p // exited, or a kernel thread's empty maps
	}
	defer f.Close()
	if p.maps, err = parseMaps(f); err != nil {
		return p
	}
	p.files = make([]*elfSymbols, len(p.maps))
	for i, m := range p.maps {
		if m.path == "" || strings.HasPrefix(m.path, "[") {
			continue
		}
		key := m.path
		e, ok := cache[key]
		if !ok {
			// map_files opens the very file mapped, even one deleted or
			// replaced since (a server built into a temp dir).
			mf := fmt.Sprintf("%s/map_files/%x-%x", dir, m.start, m.end)
			e, err = loadELF(mf)
			if err != nil {
				e, _ = loadELF(strings.TrimSuffix(m.path, " (deleted)"))
			}
			cache[key] = e
		}
		p.files[i] = e
	}
	return p
}

// symbolize names the user address addr in p: the function, and the file
// it is in ("" when no mapping holds it).
func (p *process) symbolize(addr uint64) (name, file string, m int) {
	for i, mp := range p.maps {
		if addr < mp.start || addr >= mp.end {
			continue
		}
		file = mp.path
		if p.files[i] != nil {
			if n, ok := p.files[i].lookup(addr - mp.start + mp.offset); ok {
				return n, file, i
			}
		}
		if strings.HasPrefix(file, "[") {
			return file, file, i // [vdso], [heap]: no file to read symbols from
		}
		return "[" + filepath.Base(strings.TrimSuffix(file, " (deleted)")) + "]", file, i
	}
	return "[unknown]", "", -1
}
