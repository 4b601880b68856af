# ringbench: `make bench` runs the quick profile and writes a report;
# `make test` runs every test. Both set up what they need first (as root on
# Debian: apt packages; everywhere: Go modules through the proxy).

GO      ?= go
BIN     := bin/ringbench
PROFILE ?= quick
# The DPDK backend is compiled in when pkg-config finds Debian's libdpdk-dev.
TAGS    := $(shell pkg-config --exists libdpdk 2>/dev/null && echo dpdk)
REV     := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X ringbench/harness.buildRev=$(REV)
# Debian packages: iproute2 (namespaces, veth), nftables (the lesson's
# firewall checks), util-linux (taskset), DPDK (the bypass backend),
# linux-perf (validate's independent task-clock reading).
DEB     := iproute2 nftables util-linux pkg-config gcc dpdk dpdk-dev libdpdk-dev linux-perf
# Only the tests need a browser (the report's rendering check).
DEBTEST := chromium

.PHONY: all deps deps-test build test bench report vet clean

all: build

deps:
	@./scripts/deps.sh $(DEB)
	$(GO) mod download

deps-test:
	@./scripts/deps.sh $(DEB) $(DEBTEST)
	$(GO) mod download

build: deps
	$(MAKE) --no-print-directory $(BIN)

# Re-evaluates TAGS after deps may have installed libdpdk-dev.
$(BIN): FORCE
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ringbench
FORCE:

vet:
	$(GO) vet -tags '$(TAGS)' ./...

test: deps-test
	$(MAKE) --no-print-directory test-only

test-only:
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) test -tags '$(TAGS)' -race -timeout 15m ./...
	@# The meters' ground truth (the burn slope) needs the cores to itself:
	@# it runs alone, after the parallel tests, without the race detector.
	RINGBENCH_GROUND_TRUTH=1 $(GO) test -tags '$(TAGS)' -count=1 -timeout 5m -run '^TestGroundTruth' -v ./cmd/ringbench/

bench: build
	./$(BIN) bench --profile $(PROFILE)

report: $(BIN)
	./$(BIN) report bench-results/latest

clean:
	rm -rf bin
