package uring

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"ringbench/backends"
)

// startServer starts variant name with cfg, skipping when the kernel
// cannot run it; the server closes when t ends.
func startServer(t testing.TB, name string, cfg backends.Config) backends.Server {
	t.Helper()
	b, err := backends.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Probe(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	srv, err := b.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv
}

// echoLoad drives a TCP echo server: conns connections, depth messages of
// size bytes in flight on each, rounds round trips per message slot, each
// reply checked. It returns the number of messages echoed.
func echoLoad(t testing.TB, port, conns, depth, size, rounds int) uint64 {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- echoConn(port, i, depth, size, rounds)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return uint64(conns * depth * rounds)
}

func echoConn(port, id, depth, size, rounds int) error {
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	out := make([]byte, size*depth)
	in := make([]byte, size*depth)
	for r := 0; r < rounds; r++ {
		for i := range out {
			out[i] = byte(id + r + i)
		}
		if _, err := c.Write(out); err != nil {
			return fmt.Errorf("conn %d round %d: write: %w", id, r, err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return fmt.Errorf("conn %d round %d: read: %w", id, r, err)
		}
		if !bytes.Equal(in, out) {
			return fmt.Errorf("conn %d round %d: echo differs", id, r)
		}
	}
	return nil
}

// waitCounters polls the server until ok holds or 5 s pass.
func waitCounters(t testing.TB, srv backends.Server, ok func(backends.Counters) bool) backends.Counters {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := srv.Counters()
		if ok(c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(time.Millisecond)
	}
}
