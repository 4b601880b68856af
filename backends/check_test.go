package backends

import (
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	ok := Config{Proto: TCP, Service: Echo, Host: "127.0.0.1"}
	k, err := ok.Check()
	if err != nil {
		t.Fatal(err)
	}
	if k.Addr != [4]byte{127, 0, 0, 1} || k.MsgSize != DefaultMsgSize {
		t.Errorf("Check() = %+v", k)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Proto: "sctp", Service: Echo}, "unknown protocol"},
		{Config{Proto: TCP, Service: "chat"}, "unknown service"},
		{Config{Proto: TCP, Service: Echo, Host: "::1"}, "not IPv4"},
		{Config{Proto: TCP, Service: Echo, Host: "nohost"}, "parse host"},
		{Config{Proto: TCP, Service: Source, MsgSize: maxMessage + 1}, "over"},
		{Config{Proto: UDP, Service: Source, MsgSize: 4}, "outside"},
		{Config{Proto: UDP, Service: Source, MsgSize: MaxUDPPayload + 1}, "outside"},
	} {
		if _, err := tc.cfg.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
}
