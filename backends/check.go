package backends

import (
	"fmt"
	"net/netip"
)

// DefaultMsgSize is the message size a source sends when Config.MsgSize
// is 0.
const DefaultMsgSize = 1024

// maxMessage bounds Config.MsgSize: a source's write is at most this big.
const maxMessage = MaxTCPMessage << 4

// Checked is a config that passed Check, with its derived values.
type Checked struct {
	Config
	// Addr is the IPv4 address to bind (zero for all addresses).
	Addr [4]byte
	// MsgSize is Config.MsgSize, or DefaultMsgSize when that is 0.
	MsgSize int
}

// Check validates what every kernel-socket backend needs of a config: a
// known protocol and service, an IPv4 host, and a message size within the
// protocol's limits. Backend options are each backend's own to check.
func (c Config) Check() (Checked, error) {
	k := Checked{Config: c, MsgSize: c.MsgSize}
	switch c.Proto {
	case TCP, UDP:
	default:
		return k, fmt.Errorf("check config: unknown protocol %q", c.Proto)
	}
	switch c.Service {
	case Echo, Sink, Source:
	default:
		return k, fmt.Errorf("check config: unknown service %q", c.Service)
	}
	if c.Host != "" {
		a, err := netip.ParseAddr(c.Host)
		if err != nil {
			return k, fmt.Errorf("parse host: %w", err)
		}
		if !a.Is4() {
			return k, fmt.Errorf("check config: host %s is not IPv4", c.Host)
		}
		k.Addr = a.As4()
	}
	if k.MsgSize <= 0 {
		k.MsgSize = DefaultMsgSize
	}
	if k.MsgSize > maxMessage {
		return k, fmt.Errorf("check config: message size %d over %d", k.MsgSize, maxMessage)
	}
	if c.Proto == UDP && c.Service == Source && (k.MsgSize < SourceHeader || k.MsgSize > c.MaxDatagram()) {
		return k, fmt.Errorf("check config: UDP source message size %d outside %d..%d", k.MsgSize, SourceHeader, c.MaxDatagram())
	}
	return k, nil
}
