package dpdk

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"ringbench/backends"
)

// Testpmd is Debian's dpdk-testpmd run as a child process in 5tswap
// forwarding mode: the reference a DPDK server's busy cycles per packet are
// compared with. It swaps MACs, IPs and ports of whatever arrives and sends
// it back; it answers no ARP and checks no address.
type Testpmd struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	port   int
	mac    net.HardwareAddr
	prefix string // EAL file prefix whose runtime directory Close removes
	// forgetXDP drops the record of the XDP program its port attached
	// (recordXDP), once it has quit and so taken the program off.
	forgetXDP func()

	mu       sync.Mutex
	sync     int
	closed   bool
	closeErr error
	last     backends.Counters
}

var _ backends.Server = (*Testpmd)(nil)

const testpmdBinary = "dpdk-testpmd"

// testpmdTimeout bounds every exchange with the child; testpmd answers in
// milliseconds unless it is stuck.
const testpmdTimeout = 30 * time.Second

func probeTestpmd() error {
	if _, err := exec.LookPath(testpmdBinary); err != nil {
		return &backends.NotSupportedError{Feature: "dpdk-testpmd", Reason: "dpdk-testpmd not in PATH: install Debian's dpdk package (make deps)"}
	}
	if _, err := exec.LookPath("stdbuf"); err != nil {
		return &backends.NotSupportedError{Feature: "dpdk-testpmd", Reason: "stdbuf (coreutils) not in PATH"}
	}
	if os.Geteuid() != 0 {
		return &backends.NotSupportedError{Feature: "dpdk-testpmd", Reason: "driving a port needs root"}
	}
	return nil
}

// testpmdArgs is testpmd's command line. testpmd wants a main lcore besides
// the forwarding one; both are mapped onto the server CPU, where the main
// lcore only sleeps in its command line. stdbuf makes its stdout line
// buffered, or the answers to our commands would sit in a pipe buffer.
func testpmdArgs(st serverSettings, prefix string) []string {
	lcore := st.lcores[0]
	eal := ealArgs([]int{lcore}, st.vdev, st.pci, st.noHuge, prefix)
	eal[1], eal[2] = "--lcores", fmt.Sprintf("0@%d,1@%d", lcore, lcore)
	args := append([]string{"stdbuf", "-oL", testpmdBinary}, eal[1:]...)
	return append(args, "--", "-i", "--forward-mode=5tswap", "--record-core-cycles",
		"--nb-cores=1", "--rxq=1", "--txq=1", "--burst=32", "--rxd=1024", "--txd=1024",
		"--total-num-mbufs=8191")
}

func newTestpmd(cfg backends.Config) (backends.Server, error) {
	if cfg.Service != "" && cfg.Service != backends.Echo {
		return nil, fmt.Errorf("start dpdk-testpmd: 5tswap forwarding serves echo only, not %s: %w", cfg.Service, backends.ErrNotSupported)
	}
	st, err := parseServerConfig(cfg, afxdpAvailable, hugepagesFree)
	if err != nil {
		return nil, err
	}
	if n := len(st.lcores); n > 1 {
		return nil, &backends.NotSupportedError{Feature: fmt.Sprintf("dpdk-testpmd on %d cores", n),
			Reason: "ringbench runs it with --nb-cores=1 --rxq=1 --txq=1, one forwarding lcore on one queue pair, its reference point"}
	}
	if len(st.netdev) > 0 {
		return nil, fmt.Errorf("start dpdk-testpmd: %s and %s are the dpdk server's options", OptNapiDeferHardIRQs, OptGROFlushTimeout)
	}
	if err := probeTestpmd(); err != nil {
		return nil, err
	}
	// testpmd's memif control sendmsg has no MSG_NOSIGNAL either, and it
	// handles only SIGINT and SIGTERM: an ignored SIGPIPE is inherited
	// through exec, so a peer gone first costs it an EPIPE, not its life.
	ignoreSIGPIPE()
	prefix := filePrefix("testpmd")
	args := testpmdArgs(st, prefix)
	t := &Testpmd{port: int(st.rules.Port), prefix: prefix, lines: make(chan string, 256)}
	xdpOthers, err := xdpBefore(st.vdev)
	if err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	t.cmd = exec.Command(args[0], args[1:]...)
	out, err := t.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	t.cmd.Stderr = t.cmd.Stdout // one stream, so errors show in order
	if t.stdin, err = t.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	go readLines(out, t.lines)
	startup, err := t.exchange("start")
	if err != nil {
		// A testpmd that did not answer may have opened its port: what it
		// attached stays recorded (never forgotten) for the next run's
		// sweep, since killing it leaves its program on the interface.
		_, recErr := recordXDP(st.vdev, t.cmd.Process.Pid, xdpOthers)
		t.kill()
		return nil, errors.Join(fmt.Errorf("start dpdk-testpmd: %w (output: %s)", err, strings.Join(tail(startup, 20), " | ")), recErr)
	}
	for _, l := range startup {
		if m := testpmdMAC.FindStringSubmatch(l); m != nil {
			t.mac, _ = net.ParseMAC(m[1])
		}
	}
	// Quit, not killed, on an error: a killed testpmd leaves its program.
	if t.forgetXDP, err = recordXDP(st.vdev, t.cmd.Process.Pid, xdpOthers); err != nil {
		return nil, errors.Join(fmt.Errorf("start dpdk-testpmd: %w", err), t.Close())
	}
	return t, nil
}

func readLines(r io.Reader, out chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out <- sc.Text()
	}
	close(out)
}

// exchange sends cmd, then a line testpmd cannot parse, and returns every
// line up to that line's echo: testpmd answers in order, so the echo marks
// the end of cmd's answer. Callers hold mu or own t alone.
func (t *Testpmd) exchange(cmd string) ([]string, error) {
	t.sync++
	marker := fmt.Sprintf("ringbench-sync-%d", t.sync)
	if _, err := fmt.Fprintf(t.stdin, "%s\n%s\n", cmd, marker); err != nil {
		return nil, fmt.Errorf("send %q: %w", cmd, err)
	}
	var got []string
	timeout := time.NewTimer(testpmdTimeout)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-t.lines:
			if !ok {
				return got, errors.New("dpdk-testpmd exited")
			}
			if strings.Contains(l, marker) {
				return got, nil
			}
			got = append(got, l)
		case <-timeout.C:
			return got, fmt.Errorf("no answer to %q in %v", cmd, testpmdTimeout)
		}
	}
}

// Port is Config.Port, or DefaultPort: 5tswap answers on every port.
func (t *Testpmd) Port() int { return t.port }

// MAC is the port's address as testpmd printed it.
func (t *Testpmd) MAC() net.HardwareAddr { return t.mac }

// Counters asks testpmd for its port and forwarding statistics.
func (t *Testpmd) Counters() backends.Counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.last
	}
	lines, err := t.exchange("show port stats all\nshow fwd stats all")
	if err != nil {
		return t.last
	}
	t.last = parseTestpmdStats(lines)
	return t.last
}

var (
	testpmdMAC    = regexp.MustCompile(`^Port 0: ([0-9A-Fa-f:]{17})`)
	testpmdNum    = regexp.MustCompile(`([A-Za-z-]+):\s*(\d+)`)
	testpmdCycles = regexp.MustCompile(`CPU cycles/packet=[\d.]+ \(total cycles=(\d+) / total \S+ packets=(\d+)\) at (\d+) MHz Clock`)
)

// parseTestpmdStats reads "show port stats all" and "show fwd stats all"
// output. Its busy cycles are testpmd's --record-core-cycles: TSC cycles of
// the forwarding bursts that received packets, the same meter as the dpdk
// server's busy_cycles.
func parseTestpmdStats(lines []string) backends.Counters {
	x := map[string]uint64{}
	inNIC := false
	for _, l := range lines {
		switch {
		case strings.Contains(l, "NIC statistics for port"):
			inNIC = true
			continue
		case inNIC && strings.Contains(l, "Throughput"):
			inNIC = false
		}
		if m := testpmdCycles.FindStringSubmatch(l); m != nil {
			x["busy_cycles"], _ = strconv.ParseUint(m[1], 10, 64)
			x["busy_packets"], _ = strconv.ParseUint(m[2], 10, 64)
			mhz, _ := strconv.ParseUint(m[3], 10, 64)
			x["tsc_hz"] = mhz * 1_000_000
			continue
		}
		if !inNIC {
			continue
		}
		for _, m := range testpmdNum.FindAllStringSubmatch(l, -1) {
			v, _ := strconv.ParseUint(m[2], 10, 64)
			switch m[1] {
			case "RX-packets":
				x["port_rx_packets"] = v
			case "TX-packets":
				x["port_tx_packets"] = v
			case "RX-missed":
				x["port_rx_missed"] = v
			case "RX-errors":
				x["port_rx_errors"] = v
			case "TX-errors":
				x["port_tx_errors"] = v
			case "RX-nombuf":
				x["port_rx_nombuf"] = v
			case "RX-bytes":
				x["port_rx_bytes"] = v
			case "TX-bytes":
				x["port_tx_bytes"] = v
			}
		}
	}
	// testpmd sees frames, not datagrams: its messages are the port's
	// packets and its bytes whole frames.
	return backends.Counters{
		RxMsgs:  x["port_rx_packets"],
		TxMsgs:  x["port_tx_packets"],
		RxBytes: x["port_rx_bytes"],
		TxBytes: x["port_tx_bytes"],
		Extra:   x,
	}
}

// Close stops forwarding, quits testpmd (which stops and closes its port)
// and waits for it.
func (t *Testpmd) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.closeErr
	}
	if lines, err := t.exchange("show port stats all\nshow fwd stats all"); err == nil {
		t.last = parseTestpmdStats(lines)
	}
	t.closed = true
	// Forwarding stops (and its lcore returns) before quit tears the port
	// down: quitting while the lcore still polls memif crashed testpmd.
	t.exchange("stop")
	fmt.Fprintf(t.stdin, "quit\n")
	t.stdin.Close()
	done := make(chan error, 1)
	go func() {
		for range t.lines {
		}
		done <- t.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.closeErr = fmt.Errorf("close dpdk-testpmd: %w", err)
		} else {
			t.forgetXDP() // it quit, closing its port
		}
	case <-time.After(testpmdTimeout):
		t.cmd.Process.Kill()
		<-done
		t.closeErr = errors.New("close dpdk-testpmd: did not quit; killed")
	}
	os.RemoveAll(runtimeDir(t.prefix))
	return t.closeErr
}

func (t *Testpmd) kill() {
	t.stdin.Close()
	t.cmd.Process.Kill()
	for range t.lines {
	}
	t.cmd.Wait()
	os.RemoveAll(runtimeDir(t.prefix))
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
