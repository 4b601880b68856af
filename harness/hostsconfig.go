package harness

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// HostsConfig says where the hosts topology's two sides are: the server on
// this host at ServerAddr, the generator on ClientHost, reached with SSH.
type HostsConfig struct {
	// ClientHost is an ssh destination, [user@]host: whatever the user's
	// ssh config names (aliases, jump hosts, keys) works.
	ClientHost string `yaml:"client_host"`
	// ServerAddr is this host's address the generator connects to; the
	// server listens on it and its interface is the one metered.
	ServerAddr string `yaml:"server_addr"`
	// ClientCPUs is the generator's CPUs on the client host, as a list
	// ("0-3", "0,2"); empty: every CPU the client host lets it run on.
	ClientCPUs string `yaml:"client_cpus"`
	// SSH is the ssh command line (SplitCommand's rules); default "ssh".
	SSH string `yaml:"ssh"`
	// RemoteDir is where the client host keeps ringbench's copy of itself
	// (default /tmp; a host whose /tmp is mounted noexec needs another).
	RemoteDir string `yaml:"remote_dir"`
}

// DefaultRemoteDir is where a copied ringbench lives on the client host.
const DefaultRemoteDir = "/tmp"

// hostsSettings is a HostsConfig checked and parsed.
type hostsSettings struct {
	dest       string
	addr       netip.Addr
	clientCPUs []int
	ssh        []string
	remoteDir  string
}

// Check parses c and says, in one line, what is wrong with it.
func (c HostsConfig) Check() error {
	_, err := c.settings()
	return err
}

func (c HostsConfig) settings() (s hostsSettings, err error) {
	switch {
	case c.ClientHost == "":
		return s, errors.New("topology hosts needs --client-host [user@]HOST (the ssh destination the generator runs on)")
	case strings.HasPrefix(c.ClientHost, "-"):
		return s, fmt.Errorf("--client-host %q: an ssh destination cannot start with '-'", c.ClientHost)
	case strings.ContainsAny(c.ClientHost, " \t\n'\"\\"):
		return s, fmt.Errorf("--client-host %q: no spaces or quotes in an ssh destination", c.ClientHost)
	case c.ServerAddr == "":
		return s, errors.New("topology hosts needs --server-addr ADDR (this host's address the generator connects to)")
	}
	s.dest = c.ClientHost
	if s.addr, err = netip.ParseAddr(c.ServerAddr); err != nil {
		return s, fmt.Errorf("--server-addr %q: not an IP address", c.ServerAddr)
	}
	if s.addr.IsUnspecified() || s.addr.IsLoopback() {
		return s, fmt.Errorf("--server-addr %s: the client host cannot reach it; give this host's address on the link to it", s.addr)
	}
	if c.ClientCPUs != "" {
		if s.clientCPUs, err = ParseCPUList(c.ClientCPUs); err != nil {
			return s, fmt.Errorf("--client-cpus: %w", err)
		}
	}
	line := c.SSH
	if strings.TrimSpace(line) == "" {
		line = "ssh"
	}
	if s.ssh, err = SplitCommand(line); err != nil {
		return s, fmt.Errorf("--ssh: %w", err)
	}
	s.remoteDir = c.RemoteDir
	if s.remoteDir == "" {
		s.remoteDir = DefaultRemoteDir
	}
	if !strings.HasPrefix(s.remoteDir, "/") || strings.ContainsAny(s.remoteDir, "'\n") {
		return s, fmt.Errorf("--remote-dir %q: want an absolute path without quotes", s.remoteDir)
	}
	return s, nil
}

// ParseCPUList reads a CPU list as the kernel writes them: comma-separated
// CPUs and inclusive ranges ("0-3,8"). The result is sorted, without
// duplicates.
func ParseCPUList(list string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("cpu list %q: empty item", list)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("cpu list %q: %q is not a CPU number", list, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", list, part)
			}
		}
		if b-a > 4096 {
			return nil, fmt.Errorf("cpu list %q: range %q too long", list, part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

// SplitCommand splits a command line into its words, as a POSIX shell
// would split a simple command without expansions: blanks separate words;
// 'single quotes' keep everything up to the next single quote; "double
// quotes" keep everything but a backslash before " or \, which escapes
// it; outside quotes a backslash keeps the next character as it is. No
// variables, globs or ~ are expanded. So --ssh 'ssh -o "ProxyCommand=ssh
// -W %h:%p jump" -i ~/k' gives ssh, -o, ProxyCommand=ssh -W %h:%p jump,
// -i, ~/k (write the key's path in full).
func SplitCommand(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unclosed \" in %q", line)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("trailing \\ in %q", line)
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}

// shellQuote quotes s for the remote shell that ssh hands its command to.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
