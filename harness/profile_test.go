package harness

import (
	"strings"
	"testing"
)

func TestParseProfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty", "name: x\n", "no experiments"},
		{"unknown key", "name: x\nbogus: 1\nexperiments: [{workload: echo}]\n", "field bogus not found"},
		{"bad duration", "name: x\nduration: soon\nexperiments: [{workload: echo}]\n", "bad duration"},
		{"no backends", "name: x\nexperiments: [{workload: echo}]\n", "no backends"},
		{"unknown backend", "name: x\nbackends: [nosuch]\nexperiments: [{workload: echo}]\n", `unknown backend "nosuch"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProfile([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseProfile: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseProfile(f *testing.F) {
	for _, name := range Profiles() {
		b, err := builtin.ReadFile("profiles/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: x\nexperiments: [{workload: echo, conns: [-1]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any input gives a profile or an error, never a panic.
		ParseProfile(b)
	})
}
