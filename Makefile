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
# firewall checks), util-linux (taskset), DPDK (the bypass backend), gcc and
# liburing-dev (the C baselines), linux-perf (validate's independent
# task-clock reading).
DEB     := iproute2 nftables util-linux pkg-config gcc liburing-dev dpdk dpdk-dev libdpdk-dev linux-perf
# The C baselines (baselines/): c-uring is built when liburing's headers are
# there (re-evaluated after deps, as TAGS is).
BASE_CFLAGS := -O2 -Wall -Wextra -Werror -pthread
LIBURING    := $(shell test -f /usr/include/liburing.h && echo yes)
# Only the tests need a browser (the report's rendering check) with the
# charts' font (Liberation Serif: their text is laid out with its metrics),
# an sshd (the hosts topology's stand-in client host, in a network
# namespace) and llc (a trivial XDP program for the XDP sweep's test).
DEBTEST := chromium fonts-liberation openssh-server openssh-client llvm

.PHONY: all deps deps-test build baselines test bench report vet clean

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
$(BIN): baselines FORCE
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ringbench
FORCE:

# The C servers live beside bin/ringbench, where the baselines backends look
# for them.
baselines: bin/c-epoll $(if $(LIBURING),bin/c-uring)
ifeq ($(LIBURING),)
	@echo "baselines: no liburing headers (liburing-dev): built c-epoll only; c-uring reports not supported"
endif

bin/c-epoll: baselines/c-epoll.c baselines/serve.c baselines/serve.h
	@mkdir -p bin
	gcc $(BASE_CFLAGS) -o $@ baselines/c-epoll.c baselines/serve.c

bin/c-uring: baselines/c-uring.c baselines/serve.c baselines/serve.h
	@mkdir -p bin
	gcc $(BASE_CFLAGS) -o $@ baselines/c-uring.c baselines/serve.c -luring

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
