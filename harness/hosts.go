package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ringbench/results"
	"ringbench/workloads"
)

// Hosts is the topology of two machines: the server on this host, listening
// on the address HostsConfig names, and the generator on the client host,
// run over ssh.
const Hosts = "hosts"

// hosts: no network namespaces; the server listens on an address of this
// host, whose interface is the one metered, and the generator runs on
// another host as `ringbench remotegen` in an ssh session (see
// remotegen.go for the protocol). The ssh command is the user's, so their
// ssh config, keys, agent and jump hosts apply.
type hosts struct {
	s     hostsSettings
	iface string
	log   io.Writer
	// binary is the client host's ringbench of this very build, once it is
	// found on its PATH or copied there.
	binary string
	// cpus are the generator's CPUs there, as its last hello said.
	cpus []int
	// last is what the last generator run measured besides its report.
	last *remoteRun
}

// remoteRun is what a generator on the client host measured besides its
// report: its CPUs' busy over the window and how late this host's meters
// read each window edge.
type remoteRun struct {
	rep        *workloads.Report
	busy       *float64
	busySource string
	busyErr    string
	// edgeLag is, per edge, half the round trip from the generator's event
	// to this host's ack less the time the meters took in between: about
	// how long after the generator's edge the meters read theirs.
	edgeLag [2]time.Duration
}

func newHosts(c HostsConfig, log io.Writer) (*hosts, error) {
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	iface, err := ifaceOf(s.addr.String())
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	return &hosts{s: s, iface: iface, log: log}, nil
}

// ifaceOf finds the interface of this host (this network namespace) that
// holds addr.
func ifaceOf(addr string) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	var seen []string
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ipn.IP.String() == addr {
				return ifc.Name, nil
			}
			seen = append(seen, ipn.IP.String())
		}
	}
	return "", fmt.Errorf("--server-addr %s: no interface of this host holds it (its addresses: %s)", addr, strings.Join(seen, ", "))
}

func (h *hosts) Name() string        { return Hosts }
func (h *hosts) ServerHost() string  { return h.s.addr.String() }
func (h *hosts) ServerNetns() string { return "" }
func (h *hosts) ClientNetns() string { return "" }
func (h *hosts) ServerIface() string { return h.iface }
func (h *hosts) Close() error        { return nil }
func (h *hosts) PacketsSource() string {
	return h.iface + " rx_packets + tx_packets (the interface holding the server address)"
}

func (h *hosts) Packets() (uint64, error) {
	var sum uint64
	for _, f := range []string{"rx_packets", "tx_packets"} {
		b, err := os.ReadFile("/sys/class/net/" + h.iface + "/statistics/" + f)
		if err != nil {
			return 0, fmt.Errorf("read %s packets: %w", h.iface, err)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %s: %w", h.iface, f, err)
		}
		sum += n
	}
	return sum, nil
}

// dpdkPortOptions are the DPDK options that name a port: on this topology
// the user names the NIC, the harness never picks one.
var dpdkPortOptions = []string{"pci", "vdev"}

// checkDPDK says what a DPDK trial on this topology lacks.
func (h *hosts) checkDPDK(opts map[string]string) error {
	for _, k := range dpdkPortOptions {
		if opts[k] != "" {
			return nil
		}
	}
	return fmt.Errorf("dpdk on --topology hosts needs its port named: --opt pci=0000:BB:DD.F (a NIC bound to vfio-pci) or --opt vdev=... (e.g. net_af_xdp0,iface=%s,start_queue=0,queue_count=1); the harness does not take over an interface of this host by itself", h.iface)
}

// sshCommand is the ssh command that runs remote (a shell command line) on
// the client host: the user's ssh command, -T (a clean byte stream, no
// terminal), the destination. It gets a process group of its own, so that
// Ctrl-C reaches the harness only, and the harness can kill ssh with
// whatever it started (a ProxyCommand).
func (h *hosts) sshCommand(remote string) *exec.Cmd {
	argv := append(slices.Clone(h.s.ssh), "-T", h.s.dest, remote)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// sshOutput runs remote on the client host with stdin as its input and
// returns its output; it gives up after d.
func (h *hosts) sshOutput(ctx context.Context, remote string, stdin io.Reader, d time.Duration) (string, error) {
	cmd := h.sshCommand(remote)
	cmd.Stdin = stdin
	var out bytes.Buffer
	errs := &tailBuffer{max: 4000}
	cmd.Stdout, cmd.Stderr = &out, errs
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(d):
		err = fmt.Errorf("no answer within %s", d)
	}
	if err != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return out.String(), fmt.Errorf("ssh %s: %v%s", h.s.dest, err, tail("ssh", errs))
	}
	return out.String(), nil
}

// tail is a " (what: text)" suffix of a process's last words, "" if none.
func tail(what string, b *tailBuffer) string {
	if t := strings.TrimSpace(b.String()); t != "" {
		return " (" + what + ": " + t + ")"
	}
	return ""
}

// Time limits of the ssh steps.
const (
	sshCheckTimeout = 30 * time.Second
	sshCopyTimeout  = 5 * time.Minute
	// sessionSlack is added to a generator run's own length: connecting,
	// the drain, the ssh session's start and end.
	sessionSlack = 30 * time.Second
	// sessionEndGrace is how long a session may take to end once its
	// stdin is closed before ssh is killed.
	sessionEndGrace = 5 * time.Second
)

// remoteBinary is the path of this build of ringbench on the client host:
// `ringbench` when the one on its PATH prints this build's Version, else a
// copy in the remote folder named after the build, made now unless an
// earlier run left it. The copy stays there for the next run.
func (h *hosts) remoteBinary(ctx context.Context) (string, error) {
	if h.binary != "" {
		return h.binary, nil
	}
	want, err := Version()
	if err != nil {
		return "", err
	}
	name, err := remoteName()
	if err != nil {
		return "", err
	}
	copied := path.Join(h.s.remoteDir, name)
	check := fmt.Sprintf("printf 'path:'; ringbench version 2>/dev/null; echo; printf 'copy:'; %s version 2>/dev/null; echo", shellQuote(copied))
	out, err := h.sshOutput(ctx, check, nil, sshCheckTimeout)
	if err != nil {
		return "", fmt.Errorf("reach the client host: %w", err)
	}
	onPath, prior := versionLines(out)
	switch {
	case onPath == want:
		fmt.Fprintf(h.log, "hosts: using the ringbench on %s's PATH (same build: %s)\n", h.s.dest, want)
		h.binary = "ringbench"
	case prior == want:
		fmt.Fprintf(h.log, "hosts: using %s:%s (copied by an earlier run)\n", h.s.dest, copied)
		h.binary = copied
	default:
		if err := h.copySelf(ctx, name, copied, want); err != nil {
			return "", err
		}
		h.binary = copied
	}
	return h.binary, nil
}

// versionLines reads the check's "path:" and "copy:" lines.
func versionLines(out string) (onPath, copied string) {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "path:"); ok {
			onPath = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "copy:"); ok {
			copied = strings.TrimSpace(v)
		}
	}
	return onPath, copied
}

// copySelf streams this executable to the client host under a temporary
// name, and renames it into place once whole (a copy cut short is never
// taken for a build). Temporary files of copies cut short over an hour
// ago are removed on the way.
func (h *hosts) copySelf(ctx context.Context, name, dst, want string) error {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("open own executable: %w", err)
	}
	defer exe.Close()
	fi, err := exe.Stat()
	if err != nil {
		return fmt.Errorf("stat own executable: %w", err)
	}
	size := fi.Size()
	dir := shellQuote(h.s.remoteDir)
	// The copy is renamed into place only when all of it arrived: a session
	// cut short ends cat's input as an end of file, not an error.
	script := fmt.Sprintf(`d=%s; t="$d/.%s.tmp.$$"; mkdir -p "$d" && { find "$d" -maxdepth 1 -name '.ringbench-*.tmp.*' -mmin +60 -delete 2>/dev/null; cat > "$t" && [ "$(wc -c < "$t")" -eq %d ] && chmod 755 "$t" && mv -f "$t" "$d/%s"; } || { rm -f "$t"; exit 1; }`, dir, name, size, name)
	t0 := time.Now()
	if _, err := h.sshOutput(ctx, script, exe, sshCopyTimeout); err != nil {
		return fmt.Errorf("copy ringbench to %s:%s: %w", h.s.dest, dst, err)
	}
	out, err := h.sshOutput(ctx, shellQuote(dst)+" version", nil, sshCheckTimeout)
	if got := strings.TrimSpace(out); err != nil || got != want {
		return fmt.Errorf("copied ringbench to %s:%s, but it does not run there as this build (it printed %q, want %q; another CPU architecture, or a noexec folder: try --remote-dir): %v", h.s.dest, dst, got, want, err)
	}
	fmt.Fprintf(h.log, "hosts: copied ringbench (%.1f MB) to %s:%s in %.1f s\n", float64(size)/1e6, h.s.dest, dst, time.Since(t0).Seconds())
	return nil
}

// generate is the hosts topology's Generator: it runs spec on the client
// host and calls hooks as the window's edges arrive. A session that ends
// before the report (ssh died, the connection dropped, the generator
// failed) fails the run with ssh's and the generator's last words; when
// generate returns, the session is over and the remote generator gone.
func (h *hosts) generate(ctx context.Context, spec workloads.Spec, target workloads.Target, hooks workloads.Hooks) (*workloads.Report, error) {
	h.last = nil
	bin, err := h.remoteBinary(ctx)
	if err != nil {
		return nil, err
	}
	spec.CPUs = nil
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = time.Second
	}
	budget := spec.Warmup + spec.Duration + timeout + sessionSlack
	req, err := json.Marshal(remoteRequest{Spec: spec, Target: target.Addr.String(), CPUs: h.s.clientCPUs, Budget: budget})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	s, err := h.startSession(bin)
	if err != nil {
		return nil, err
	}
	defer s.end()
	if _, err := s.stdin.Write(append(req, '\n')); err != nil {
		return nil, s.lost(fmt.Errorf("send the request: %w", err))
	}
	deadline := time.NewTimer(budget + sessionEndGrace)
	defer deadline.Stop()
	var hookTook [2]time.Duration
	edge := func(i int, hook func()) error {
		t0 := time.Now()
		if hook != nil {
			hook()
		}
		hookTook[i] = time.Since(t0)
		_, err := io.WriteString(s.stdin, "ack\n")
		return err
	}
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return nil, s.lost(errors.New("the session ended before the generator's report"))
			}
			switch ev.Event {
			case evHello:
				h.cpus = ev.CPUs
			case evWindowStart:
				err = edge(0, hooks.WindowStart)
			case evWindowEnd:
				err = edge(1, hooks.WindowEnd)
			case evError:
				return nil, fmt.Errorf("generator on %s: %s", h.s.dest, ev.Error)
			case evReport:
				if ev.Report == nil {
					return nil, fmt.Errorf("generator on %s: a report event without its report", h.s.dest)
				}
				rep := ev.Report.report()
				h.last = &remoteRun{rep: rep, busy: ev.Busy, busySource: ev.BusySource, busyErr: ev.BusyError}
				for i, rtt := range ev.EdgeRTT {
					if rtt > 0 {
						h.last.edgeLag[i] = max(rtt-hookTook[i], 0) / 2
					}
				}
				return rep, nil
			}
			if err != nil {
				return nil, s.lost(fmt.Errorf("ack the window edge: %w", err))
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, s.lost(fmt.Errorf("no report from the generator within %s", budget+sessionEndGrace))
		}
	}
}

// runOf is what the generator run that returned rep measured besides it,
// nil when rep is not the last run's.
func (h *hosts) runOf(rep *workloads.Report) *remoteRun {
	if h.last == nil || h.last.rep != rep {
		return nil
	}
	return h.last
}

// session is one ssh session running the remote generator.
type session struct {
	h      *hosts
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	events chan remoteEvent
	// noise keeps stdout lines that are not events (a login script's
	// chatter, a shell's error) for the error message.
	noise  *tailBuffer
	waited chan struct{} // closed once ssh has exited and stdout is read
	werr   error
}

func (h *hosts) startSession(bin string) (*session, error) {
	cmd := h.sshCommand("exec " + shellQuote(bin) + " remotegen")
	s := &session{h: h, cmd: cmd, stderr: &tailBuffer{max: 4000}, noise: &tailBuffer{max: 2000},
		events: make(chan remoteEvent, 8), waited: make(chan struct{})}
	cmd.Stderr = s.stderr
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start ssh: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start ssh: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go s.read(out)
	return s, nil
}

// read passes every event on, then waits for ssh to exit.
func (s *session) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 16<<20) // a report's histogram is one long line
	for sc.Scan() {
		var ev remoteEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Event == "" {
			s.noise.Write(append(sc.Bytes(), '\n'))
			continue
		}
		s.events <- ev
	}
	close(s.events)
	s.werr = s.cmd.Wait()
	close(s.waited)
}

// discardEvents reads what is left, so that read reaches ssh's exit.
func (s *session) discardEvents() {
	for range s.events {
	}
}

// lost says why the session failed: the error, ssh's exit and the last
// words of ssh and the generator.
func (s *session) lost(err error) error {
	go s.discardEvents()
	select {
	case <-s.waited:
	case <-time.After(sessionEndGrace):
	}
	status := "ssh still running"
	select {
	case <-s.waited:
		status = "ssh exited"
		if s.werr != nil {
			status = "ssh: " + s.werr.Error()
		}
	default:
	}
	return fmt.Errorf("ssh session to %s lost: %w (%s)%s%s", s.h.s.dest, err, status, tail("stderr", s.stderr), tail("stdout", s.noise))
}

// end closes the session: its stdin first, which the remote generator
// takes as its signal to stop, then, if ssh has not exited after a grace
// period, SIGKILL to ssh's process group. A killed ssh drops the
// connection, and the remote generator sees its stdin end.
func (s *session) end() {
	s.stdin.Close()
	go s.discardEvents()
	select {
	case <-s.waited:
		return
	case <-time.After(sessionEndGrace):
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.waited
}

// noteRemote puts what the client host measured besides its report into
// the record: the edges' lag, and why its cores' busy is missing.
func noteRemote(rec *results.Record, run *remoteRun) {
	if rec.Packets != nil && rec.LinkPackets != nil {
		rec.Notes = append(rec.Notes, "hosts: packets are this host's whole /proc/net/snmp (every socket of the host, the ssh session's too); link_packets count the server's interface alone")
	}
	if run == nil {
		rec.Notes = append(rec.Notes, "hosts: the generator's run is not at hand: client busy and edge lag not recorded")
		return
	}
	if run.busy == nil {
		rec.Notes = append(rec.Notes, "client busy not read on the client host: "+run.busyErr)
	}
	if run.edgeLag[0] > 0 && run.edgeLag[1] > 0 {
		lag := float64(max(run.edgeLag[0], run.edgeLag[1])) / 1e3
		rec.EdgeLagUS = &lag
		rec.Notes = append(rec.Notes, fmt.Sprintf("hosts: this host's meters read the window's edges about %.0f µs (start) and %.0f µs (end) after the generator's: half each edge's ssh round trip", float64(run.edgeLag[0])/1e3, float64(run.edgeLag[1])/1e3))
	} else {
		rec.Notes = append(rec.Notes, "hosts: an edge's ssh round trip was not measured (no ack reached the generator in time)")
	}
}
