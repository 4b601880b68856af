package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ringbench/backends"
	"ringbench/meters"
)

// ServerSpec says which server a trial starts and how.
type ServerSpec struct {
	// Backend is a registry name, or "external" with Command set.
	Backend string
	// Command is an external server's command line; {port} and {host} are
	// replaced with the port and address it must listen on.
	Command string
	Config  backends.Config
}

// server is a running server process: ringbench re-executed as `serve`, or
// an external command, pinned to the server CPUs and (veth) in the server's
// network namespace. The serve child speaks a line protocol on its stdin
// and stdout: it prints {"port":N} when ready, answers "counters" with a
// JSON backends.Counters, and exits when stdin closes.
type server struct {
	cmd      *exec.Cmd
	pid      int
	port     int
	external bool

	mu     sync.Mutex // serialises the stdin/stdout conversation
	stdin  io.WriteCloser
	stdout *bufio.Reader

	exited  chan struct{}
	waitErr error
	stderr  *tailBuffer

	// env are the environment settings the harness gave the server.
	env []string
	// stop runs once: a memif trial stops its server before the generator
	// closes its port, and the trial's deferred stop finds it done.
	stopOnce  sync.Once
	stopErr   error
	stopAsked atomic.Bool
	// cgroup is the server's own cgroup2 group (a folder of the cgroup2
	// hierarchy, with cpu.stat and cpu.pressure), holding the server and
	// everything it forks from its first instruction on; "" when it runs
	// without one, cgroupErr then saying why. stop removes the group.
	cgroup    string
	cgroupErr error
	// outputIno is the inode of the server's stdout pipe, by which
	// outputHolders finds a daemon it started when it has no cgroup.
	outputIno uint64
}

// Cgroup is the server's cgroup2 folder, "" when it has none (no cgroup2
// hierarchy, not root, or a kernel older than 5.14): read its cpu.stat
// (usage_usec) and cpu.pressure while the server runs.
func (s *server) Cgroup() string { return s.cgroup }

// ServeArgs is the command line of the internal serve subcommand.
func serveArgs(cfg backends.Config, name string) []string {
	args := []string{"serve", "--backend", name,
		"--proto", string(cfg.Proto), "--service", string(cfg.Service),
		"--host", cfg.Host, "--port", strconv.Itoa(cfg.Port),
		"--cpus", joinInts(cfg.CPUs),
		"--msg-size", strconv.Itoa(cfg.MsgSize), "--max-msg", strconv.Itoa(cfg.MaxMsg)}
	if cfg.Iface != "" {
		args = append(args, "--iface", cfg.Iface)
	}
	for k, v := range cfg.Options {
		args = append(args, "--opt", k+"="+v)
	}
	return args
}

// backendCommand is the command line that serves the registered backend
// name: ringbench itself re-executed as `serve` (goServe), or the
// backend's own program (a C baseline), which speaks the same protocol and
// runs under the same pinning, namespace and cgroup.
func backendCommand(self, name string, cfg backends.Config) (argv []string, goServe bool, err error) {
	b, err := backends.Lookup(name)
	if err == nil && b.Command != nil {
		argv, err := b.Command(cfg)
		if err != nil {
			return nil, false, fmt.Errorf("start server: %w", err)
		}
		return argv, false, nil
	}
	return append([]string{self}, serveArgs(cfg, name)...), true, nil
}

// startServer starts the server and waits until it listens.
func startServer(ctx context.Context, topo Topology, spec ServerSpec) (_ *server, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cfg := spec.Config
	var argv []string
	external := spec.Backend == "external"
	if external {
		if spec.Command == "" {
			return nil, errors.New("start server: --backend external needs --server-cmd")
		}
		if cfg.Port, err = serverPort(NetnsPath(topo.ServerNetns()), cfg.Proto, cfg.Host, cfg.Port); err != nil {
			return nil, fmt.Errorf("start external server: %w", err)
		}
		line := strings.NewReplacer("{port}", strconv.Itoa(cfg.Port), "{host}", cfg.Host).Replace(spec.Command)
		// The line as the user would type it (cd, lists, pipes): the shell
		// and all it starts share the process group and cgroup that stop
		// kills, and the meters count the whole tree.
		argv = []string{"sh", "-c", line}
	}
	goServe := false
	if !external {
		if argv, goServe, err = backendCommand(self, spec.Backend, cfg); err != nil {
			return nil, err
		}
	}
	// taskset pins the process before it runs a single instruction of its
	// own, so every thread it ever makes inherits the server CPUs.
	if len(cfg.CPUs) > 0 {
		argv = append([]string{"taskset", "-c", joinInts(cfg.CPUs)}, argv...)
	}
	if ns := topo.ServerNetns(); ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	var env, settings []string
	if goServe {
		// Go's asynchronous preemption signals a running loop every 10 ms
		// (a tgkill and an rt_sigreturn): syscalls the backend did not ask
		// for. A serve process runs one loop per core and nothing to
		// preempt it for, so every built-in backend runs without them.
		// With preemption off, a loop that spins (SQPOLL's CQ poll) holds
		// its P for good; one P more than there are loops keeps the
		// process's other goroutines (the protocol on stdin) running.
		settings = []string{"GODEBUG=asyncpreemptoff=1", fmt.Sprintf("GOMAXPROCS=%d", max(len(cfg.CPUs), 1)+1)}
		env = append(os.Environ(), settings...)
	}
	s, err := launch(argv, env, external)
	if err != nil {
		return nil, err
	}
	s.env = settings
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if external {
		s.port = cfg.Port
		return s, s.waitListening(ctx, topo, cfg)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := s.stdout.ReadBytes('\n')
		if err == nil {
			s.port, err = readHello(line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, s.failure(err)
		}
		return s, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("start server: not ready after 30s%s", s.stderrTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readHello reads a server's first line: its port, or why it could not
// start (a refusal for want of a feature stays errors.Is ErrNotSupported).
func readHello(line []byte) (int, error) {
	var hello struct {
		Port int `json:"port"`
		serveError
	}
	if err := json.Unmarshal(line, &hello); err != nil {
		return 0, fmt.Errorf("read server's first line %q: %w", bytes.TrimSpace(line), err)
	}
	switch {
	case hello.NotSupported:
		return 0, notSupported(hello.Error)
	case hello.Error != "":
		return 0, errors.New(hello.Error)
	}
	return hello.Port, nil
}

// launch starts argv in a fresh cgroup of its own when this machine allows
// one, else as before (a process group of its own), with the reason kept in
// cgroupErr.
func launch(argv, env []string, external bool) (*server, error) {
	dir, fd, cgErr := newServerCgroup()
	if cgErr == nil {
		s, err := launchIn(argv, env, external, fd)
		syscall.Close(fd)
		if err == nil {
			s.cgroup = dir
			return s, nil
		}
		syscall.Rmdir(dir)
		cgErr = fmt.Errorf("start server in its cgroup: %w", err)
	}
	s, err := launchIn(argv, env, external, -1)
	if err != nil {
		return nil, err
	}
	s.cgroupErr = cgErr
	return s, nil
}

// launchIn starts argv, in the cgroup open at cgroupFD when it is not -1.
func launchIn(argv, env []string, external bool, cgroupFD int) (_ *server, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	// Its own process group, so that Ctrl-C reaches the harness only: the
	// harness stops the server itself. No Pdeathsig: it fires when the
	// forking *thread* exits, and Go ends threads whose goroutine exits
	// locked, as the generator's loops do; a serve child exits instead
	// when its stdin, the harness's pipe, closes. A server that outlives a
	// killed harness (an external daemon) is killed with its cgroup by the
	// next run's SweepStale.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	s := &server{cmd: cmd, external: external, exited: make(chan struct{}), stderr: &tailBuffer{max: 6000}}
	cmd.Stderr = s.stderr
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server %s: %w", argv[0], err)
	}
	// Stat, not Fd: Fd would put the pipe in blocking mode, and a daemon
	// holding its write end would then keep the reader (and its thread)
	// past Wait's close.
	if fi, err := out.(*os.File).Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s.outputIno = st.Ino
		}
	}
	if external {
		go io.Copy(io.Discard, out)
	} else {
		s.stdout = bufio.NewReader(out)
	}
	s.pid = cmd.Process.Pid
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// waitListening waits until the external server's own processes hold a
// socket of the trial's protocol serving its port in the server's
// namespace, and fails at once when another process holds one.
func (s *server) waitListening(ctx context.Context, topo Topology, cfg backends.Config) error {
	host, err := netip.ParseAddr(cfg.Host)
	if err != nil {
		return fmt.Errorf("start external server: server address %q: %w", cfg.Host, err)
	}
	nsPath := NetnsPath(topo.ServerNetns())
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		socks, err := portSockets(nsPath, cfg.Proto, host, cfg.Port)
		if err != nil {
			return fmt.Errorf("start external server: %w", err)
		}
		if len(socks) > 0 {
			return s.ownsAll(socks, cfg)
		}
		select {
		case <-s.exited:
			return s.failure(errors.New("exited before listening"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("start external server: nothing listens on %s port %d after 20s%s", cfg.Proto, cfg.Port, s.stderrTail())
}

// ownsAll is nil when the server's processes hold every one of socks (a
// process joining a SO_REUSEPORT group would take part of the load).
func (s *server) ownsAll(socks []uint64, cfg backends.Config) error {
	// The server's processes: its cgroup's, daemons included; without a
	// cgroup, its process tree and the daemons that hold its output.
	var pids []int
	scope := "cgroup"
	if s.cgroup != "" {
		pids = cgroupPids(s.cgroup)
	} else {
		tree, err := meters.ProcessTree(s.pid)
		if err != nil {
			return fmt.Errorf("start external server: %w", err)
		}
		pids = append(tree, s.outputHolders()...)
		scope = "process tree or processes holding its output (no cgroup: a daemon that closed its output is not found)"
	}
	held := socketsOf(pids)
	for _, ino := range socks {
		if !held[ino] {
			return fmt.Errorf("start external server: %s port %d is held by %s, not by the server's %s%s",
				cfg.Proto, cfg.Port, socketHolder(ino), scope, s.stderrTail())
		}
	}
	return nil
}

// counters asks the serve child for its counters. External servers have
// none: that is not an error, the record just lacks the backend's own view.
func (s *server) counters() (backends.Counters, error) {
	if s.external {
		return backends.Counters{}, errNoCounters
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.alive(); err != nil {
		return backends.Counters{}, err
	}
	if _, err := io.WriteString(s.stdin, "counters\n"); err != nil {
		return backends.Counters{}, s.failure(err)
	}
	line, err := s.stdout.ReadBytes('\n')
	if err != nil {
		return backends.Counters{}, s.failure(err)
	}
	var c backends.Counters
	if err := json.Unmarshal(line, &c); err != nil {
		return backends.Counters{}, fmt.Errorf("decode server counters: %w", err)
	}
	return c, nil
}

var errNoCounters = errors.New("an external server reports no counters of its own")

// alive is nil while the process runs.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return s.failure(errors.New("server exited"))
	default:
		return nil
	}
}

func (s *server) failure(err error) error {
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("server died: %v: %w%s", s.waitErr, err, s.stderrTail())
		}
	default:
	}
	return fmt.Errorf("server: %w%s", err, s.stderrTail())
}

func (s *server) stderrTail() string {
	t := strings.TrimSpace(s.stderr.String())
	if t == "" {
		return ""
	}
	return " (stderr: " + t + ")"
}

// stop ends the server: closing stdin asks the serve child to Close and
// exit, an external server gets SIGTERM; what is left after a grace period
// gets SIGTERM again, then SIGKILL. Then whatever the server left behind is
// killed with its cgroup (a daemon that left the process group and the
// session included), and the group is removed. Without a cgroup, the
// signals reach such a daemon while it holds the server's output (see
// outputHolders). stop never waits on a process for longer than the grace
// periods and killGrace: one that survives SIGKILL is reported by pid and
// left running.
func (s *server) stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stopNow() })
	return s.stopErr
}

// stopping says whether the harness itself is stopping the server: its
// exit is then no failure of the trial.
func (s *server) stopping() bool { return s.stopAsked.Load() }

func (s *server) stopNow() error {
	s.stopAsked.Store(true)
	s.stdin.Close()
	if s.external {
		s.signal(syscall.SIGTERM)
	}
	if !s.waitGone(stopGrace) {
		s.signal(syscall.SIGTERM)
		if !s.waitGone(stopGrace) {
			s.signal(syscall.SIGKILL)
		}
	}
	var errs []error
	if s.cgroup != "" {
		if err := removeCgroup(s.cgroup, killGrace); err != nil {
			errs = append(errs, err)
		}
	}
	select {
	case <-s.exited:
	case <-time.After(killGrace):
		err := fmt.Errorf("stop server: pid %d or a descendant still holds its output after SIGKILL; left running", s.pid)
		if s.cgroupErr != nil {
			err = fmt.Errorf("stop server: pids %v, the server or processes it started, still hold its output after SIGKILL; left running (no cgroup to kill them with: %v)",
				s.outputHolders(), s.cgroupErr)
		}
		return errors.Join(append(errs, err)...)
	}
	// Whatever the process group left behind (without a cgroup).
	syscall.Kill(-s.pid, syscall.SIGKILL)
	if !s.external && s.waitErr != nil {
		errs = append(errs, fmt.Errorf("server exit: %v%s", s.waitErr, s.stderrTail()))
	}
	// An external server is killed by us; its exit status says nothing.
	return errors.Join(errs...)
}

// How long stop waits after each signal, and for a killed group to empty.
const (
	stopGrace = 5 * time.Second
	killGrace = 2 * time.Second
)

// signal sends sig to the server's process group and to the daemons that
// left it: every process in its cgroup or, without one, every process that
// holds its output.
func (s *server) signal(sig syscall.Signal) {
	syscall.Kill(-s.pid, sig)
	var pids []int
	if s.cgroup != "" {
		pids = cgroupPids(s.cgroup)
	} else {
		pids = s.outputHolders()
	}
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
}

// outputHolders lists the processes, other than this one, that hold the
// server's stdout pipe: only the server and what it started inherited it,
// so without a cgroup they are how a daemon that left the server's
// session is found (one that closed its output is not).
func (s *server) outputHolders() []int {
	if s.outputIno == 0 {
		return nil
	}
	want := fmt.Sprintf("pipe:[%d]", s.outputIno)
	procs, _ := os.ReadDir("/proc")
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); link == want {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// waitGone waits up to d for the server process to exit (and its output to
// close) and, with a cgroup, for the group to empty.
func (s *server) waitGone(d time.Duration) bool {
	deadline := time.After(d)
	select {
	case <-s.exited:
	case <-deadline:
		return false
	}
	if s.cgroup == "" {
		return true
	}
	for {
		if populated, err := cgroupPopulated(s.cgroup); err != nil || !populated {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tailBuffer keeps the first and the last max/2 bytes written to it: a Go
// panic says what went wrong at its head and where at its tail.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	head, b []byte
	cut     bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if room := t.max/2 - len(t.head); room > 0 {
		k := min(room, len(p))
		t.head = append(t.head, p[:k]...)
		p = p[k:]
	}
	t.b = append(t.b, p...)
	if len(t.b) > t.max/2 {
		t.b = t.b[len(t.b)-t.max/2:]
		t.cut = true
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return string(t.head) + " [...] " + string(t.b)
	}
	return string(t.head) + string(t.b)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
