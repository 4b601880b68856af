package dpdk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options for the interface's own busy-poll settings (net_af_xdp only).
// With a busy_budget the PMD asks for preferred busy polling, and the
// kernel keeps the device's interrupts off only while
// napi_defer_hard_irqs and gro_flush_timeout say so: the kernel's AF_XDP
// guidance sets them with it. Each is written to the interface's sysfs for
// the server's life and the value found is put back at Close. Unset, the
// interface keeps its own (with busy_budget=0, the default, they do
// nothing for the PMD).
const (
	OptNapiDeferHardIRQs = "napi_defer_hard_irqs" // count of empty NAPI polls before interrupts come back
	OptGROFlushTimeout   = "gro_flush_timeout"    // ns; also the timer that re-arms a deferred NAPI
)

// netdevOptions are the options written to /sys/class/net/IFACE/<key>.
var netdevOptions = []string{OptNapiDeferHardIRQs, OptGROFlushTimeout}

// netdevSetting is one sysfs attribute of the server's interface and the
// value it is set to.
type netdevSetting struct{ attr, value string }

// sysClassNet is where interfaces' attributes live; tests point it at a
// folder of their own.
var sysClassNet = "/sys/class/net"

// applyNetdev writes settings to iface's attributes and returns what puts
// back the values it found. A failed write puts back those already made.
func applyNetdev(iface string, settings []netdevSetting) (restore func() error, err error) {
	var undo []netdevSetting
	restore = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			u := undo[i]
			if err := os.WriteFile(filepath.Join(sysClassNet, iface, u.attr), []byte(u.value), 0); err != nil {
				errs = append(errs, fmt.Errorf("restore %s of %s to %s: %w", u.attr, iface, u.value, err))
			}
		}
		undo = nil
		return errors.Join(errs...)
	}
	for _, s := range settings {
		path := filepath.Join(sysClassNet, iface, s.attr)
		old, err := os.ReadFile(path)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("read %s of %s: %w", s.attr, iface, err), restore())
		}
		if err := os.WriteFile(path, []byte(s.value), 0); err != nil {
			return nil, errors.Join(fmt.Errorf("set %s of %s to %s: %w", s.attr, iface, s.value, err), restore())
		}
		undo = append(undo, netdevSetting{s.attr, strings.TrimSpace(string(old))})
	}
	return restore, nil
}
