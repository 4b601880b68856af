package harness

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"ringbench/internal/testenv"
)

func TestMain(m *testing.M) {
	// The hosts tests run this binary as the client host's ringbench.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "remotegen":
			if err := RemoteGenerate(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case "version":
			v, err := Version()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Println(v)
			os.Exit(0)
		}
	}
	testenv.Main(m)
}

func TestCPUs(t *testing.T) {
	n := runtime.NumCPU()
	if n < 2 {
		t.Skip("skipped: needs 2 CPUs")
	}
	srv, cli, err := CPUs(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv) != 1 || srv[0] != n-1 || len(cli) != n-1 {
		t.Errorf("CPUs(1) = %v, %v", srv, cli)
	}
	if _, _, err := CPUs(n); err == nil {
		t.Errorf("CPUs(%d) on %d CPUs: want an error (no CPU left for the generator)", n, n)
	}
	if _, _, err := CPUs(0); err == nil {
		t.Error("CPUs(0): want an error")
	}
}

func TestTailBufferKeepsHeadAndTail(t *testing.T) {
	b := &tailBuffer{max: 20}
	for _, s := range []string{"panic: boom\n", "0123456789", "abcdefghij", "end"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	got := b.String()
	if want := "panic: boom\n0123456789"[:10] + " [...] " + "abcdefghij"[3:] + "end"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
