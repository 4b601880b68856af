package results

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestNDRRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if got, err := LoadNDR(dir); got != nil || err != nil {
		t.Fatalf("LoadNDR(empty folder) = %v, %v; want nil, nil", got, err)
	}
	want := []NDR{
		{Run: "r1", Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Backend: "epoll", Rate: 40000,
			LossLimit: 0.001, P99LimitUS: 2000, Precision: 0.05, Trials: 9, MinRate: 1000, MaxRate: 90000,
			Stop: "bisected to 4.8%", CyclesPerOp: 51234, CyclesSource: "tsc", ThroughputOps: 39990,
			LossRatio: 0.0002, P99US: 310, Config: Config{Backend: "epoll", Variant: "default", Proto: "udp", RateTarget: 40000},
			Steps: []NDRStep{{Phase: "coarse", Rate: 1000, Pass: true, Why: "loss 0, p99 80 µs"}}},
		{Run: "r1", Backend: "uring", GeneratorBound: true, GeneratorBoundRate: 64000, Error: "", Stop: "generator-bound at 64000 ops/s"},
	}
	for _, n := range want {
		if err := AppendNDR(dir, n); err != nil {
			t.Fatal(err)
		}
	}
	got, err := LoadNDR(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestNDRMalformed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, NDRFile), []byte("{\"backend\":\"epoll\"}\n{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNDR(dir); err == nil {
		t.Error("LoadNDR of a malformed line: want an error")
	}
}
