//go:build dpdk

// The memif load generator's engine: requests and their verification a burst
// at a time, in C, so Go calls it once per slice of time, never per packet.
#ifndef RINGBENCH_GEN_H
#define RINGBENCH_GEN_H

#include <stdint.h>

struct rte_mempool;

enum rb_gen_mode { RB_GEN_ECHO = 0, RB_GEN_STREAM_UP = 1 };

// A request slot: one request in flight. In closed loop slot s carries the
// sequence numbers s, s+n, s+2n, ...; in open loop seq & (n-1).
struct rb_slot {
	uint64_t seq;
	uint64_t stamp; // TSC the latency counts from (intended time, open loop)
	uint64_t sent;  // TSC the request left
	uint8_t busy;
};

struct rb_gen_counters {
	// lost: sent and never answered in time. tx_full: built and refused by
	// the TX ring after its retries, never sent, so never lost.
	uint64_t sent, ops, bytes, mismatch, lost, late, stale, nomem, tx_full;
	// polls of the loop, and those that neither received nor sent: the
	// slack of a generator whose core is always busy.
	uint64_t polls, idle_polls;
};

struct rb_gen {
	uint16_t port_id;
	// nq queue pairs, one per server lcore: memif has no RSS, so the
	// generator spreads flows itself, connection c on queue c mod nq, and
	// polls every queue for replies (the server answers on the queue pair
	// a request came in on).
	uint16_t nq;
	struct rte_mempool *pool;
	uint8_t hdr[42]; // Ethernet, IPv4 and UDP headers of every request
	uint16_t size;   // payload bytes
	uint16_t server_port, base_sport;
	uint32_t conns;
	uint8_t mode, open_loop, poisson;
	uint64_t timeout_tsc, interval_tsc, next_tsc, late_tsc;
	double ns_per_tsc;
	uint64_t rng;
	uint64_t next_seq;
	uint32_t nslots; // closed loop: conns*depth; open loop: a power of two
	struct rb_slot *slots;
	uint32_t *ready; // closed loop: slots ready to send, a ring of nslots
	uint32_t rhead, rtail, rcount;
	uint64_t last_scan;
	uint64_t expire_seq; // open loop: the oldest seq not yet answered or expired
	uint8_t started;
	// win_start is the window's first TSC: a reply counts only when its
	// request's stamp (intended or actual send time) is at or after it.
	uint64_t win_start;
	struct rb_gen_counters c;
	// hist counts latencies in ns in log-linear buckets (see rb_hist_*):
	// recorded in the loop itself, so the generator never stops polling to
	// hand latencies to Go (a drain of thousands of values held every
	// request in flight for a fraction of a millisecond).
	uint64_t *hist;
	const uint8_t *pattern; // 251 + 1472 bytes of the payload pattern
};

// rb_gen_run drives the port until the TSC reaches until or the latency
// buffer is full, and returns the number of latencies in it.
void rb_gen_run(struct rb_gen *g, uint64_t until);

// Latency histogram: values below RB_HIST_SUB ns are exact; above, each
// power of two is split in RB_HIST_SUB/2 buckets (relative error < 0.1%).
#define RB_HIST_SUB_BITS 11
#define RB_HIST_SUB (1u << RB_HIST_SUB_BITS)
#define RB_HIST_EXPS 40 // up to 2^50 ns
#define RB_HIST_LEN (RB_HIST_SUB + RB_HIST_EXPS * (RB_HIST_SUB / 2))
// rb_hist_value is a bucket's representative value (its middle).
uint64_t rb_hist_value(uint32_t i);
uint32_t rb_hist_index(uint64_t v);
uint64_t rb_tsc(void);
uint64_t rb_tsc_hz(void);

#endif
