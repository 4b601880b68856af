package backends_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newNothing(backends.Config) (backends.Server, error) {
	return nil, errors.New("test backend starts nothing")
}

// The registry is the process's, so the test backends are registered once
// however often the tests run (-count).
var registerTestBackends = sync.OnceFunc(func() {
	backends.Register(backends.Backend{
		Name: "regtest-a", Family: "regtest", Variant: "a", New: newNothing,
		Protos:    []backends.Proto{backends.UDP},
		Services:  []backends.Service{backends.Echo},
		NotServed: map[backends.Proto]string{backends.TCP: "no kernel TCP stack"},
	})
	backends.Register(backends.Backend{Name: "regtest", Family: "regtest", New: newNothing})
})

func TestRegisterLookup(t *testing.T) {
	registerTestBackends()

	b, err := backends.Lookup("regtest")
	if err != nil {
		t.Fatal(err)
	}
	if b.Variant != "default" {
		t.Errorf("Variant = %q, want default when left empty", b.Variant)
	}
	if b.Probe == nil || b.Probe() != nil {
		t.Errorf("a backend registered without Probe must probe as supported")
	}

	_, err = backends.Lookup("regtest-missing")
	if err == nil || !strings.Contains(err.Error(), "regtest-a") {
		t.Errorf("Lookup of an unknown name: %v, want an error listing the known ones", err)
	}

	var names []string
	for _, b := range backends.All() {
		names = append(names, b.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "regtest regtest-a") {
		t.Errorf("All() = %v, want the names sorted", names)
	}

	a, _ := backends.Lookup("regtest-a")
	for _, tc := range []struct {
		proto     backends.Proto
		service   backends.Service
		supported bool
		why       string
	}{
		{backends.UDP, backends.Echo, true, ""},
		{backends.UDP, backends.Sink, false, "does not serve sink"},
		{backends.TCP, backends.Echo, false, "no kernel TCP stack"},
	} {
		err := a.Supports(tc.proto, tc.service)
		if tc.supported {
			if err != nil {
				t.Errorf("Supports(%s, %s): %v", tc.proto, tc.service, err)
			}
			continue
		}
		if !errors.Is(err, backends.ErrNotSupported) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("Supports(%s, %s) = %v, want ErrNotSupported saying %q", tc.proto, tc.service, err, tc.why)
		}
	}
}

func TestRegisterRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    backends.Backend
	}{
		{"duplicate", backends.Backend{Name: "regtest", Family: "regtest", New: newNothing}},
		{"no name", backends.Backend{Family: "regtest", New: newNothing}},
		{"no family", backends.Backend{Name: "regtest-nofamily", New: newNothing}},
		{"no New", backends.Backend{Name: "regtest-nonew", Family: "regtest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "duplicate" {
				registerTestBackends() // "regtest" is taken from here on
			}
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", tc.b)
				}
			}()
			backends.Register(tc.b)
		})
	}
}
