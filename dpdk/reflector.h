//go:build dpdk

// The reflector's fast path: the rules of reflector.go, in C, applied a burst
// at a time. Every number here is shared with the Go side.
#ifndef RINGBENCH_REFLECTOR_H
#define RINGBENCH_REFLECTOR_H

#include <stdint.h>

#define RB_BURST 32
#define RB_MAX_PEERS 16

enum rb_action { RB_DROP = 0, RB_REPLY = 1, RB_CONSUME = 2 };

enum rb_service { RB_ECHO = 0, RB_SINK = 1, RB_SOURCE = 2 };
enum rb_csum_mode { RB_CSUM_FULL = 0, RB_CSUM_ZERO = 1, RB_CSUM_KEEP = 2 };

enum rb_reason {
	RB_NONE = 0, RB_TRUNCATED, RB_ETHERTYPE, RB_DST_MAC, RB_ARP, RB_VERSION,
	RB_IHL, RB_IP_OPTIONS, RB_IP_LENGTH, RB_IP_CHECKSUM, RB_FRAGMENT,
	RB_NOT_UDP, RB_DST_IP, RB_UDP_LENGTH, RB_DST_PORT, RB_OVERSIZE,
	RB_MULTI_SEG, RB_NUM_REASONS
};

struct rb_rules {
	uint8_t mac[6];
	uint8_t has_ip;
	uint8_t ip[4];
	uint16_t port;        // host order
	uint16_t max_payload;
	uint8_t service;      // enum rb_service
	uint8_t csum_mode;    // enum rb_csum_mode
	uint16_t source_size; // payload bytes of each source datagram
};

struct rb_verdict {
	uint8_t action, reason, arp;
	uint16_t len, payload;
};

// Counters written only by the loop's thread and read field by field by
// rb_read_queues; each is cumulative.
//
// busy_cycles and busy_packets are the work meter (testpmd's
// --record-core-cycles counts the same way): the TSC cycles of the loop
// passes that handled frames (received, built or sent one; a pass that only
// retried a full TX ring is idle), and the frames those passes handled, each
// once: every frame received (echo: its reply is the same frame, not counted
// again) plus every source frame the TX burst accepted. So for echo and sink
// busy_cycles/busy_packets is cycles per received frame (per request); for a
// source, per frame received or sent. It is not the harness's
// cycles_per_packet, which divides the whole core by port rx + tx.
// The loop publishes busy_* before the per-frame counters of the same pass
// and rb_read_queues loads busy_* after them, so a snapshot never shows a frame
// judged whose pass is missing from busy_packets.
struct rb_counters {
	uint64_t rx_msgs, rx_bytes, tx_msgs, tx_bytes;
	uint64_t arp_replies, tx_full, busy_cycles, busy_packets, nomem;
	// tx_held: source frames the TX ring refused and the loop kept for
	// the next pass, each time it refused them (back-pressure).
	uint64_t tx_held;
	uint64_t drops[RB_NUM_REASONS];
};

// A source peer: the reply headers of a datagram that asked for data.
struct rb_peer {
	uint8_t mac[6];
	uint8_t ip[4];
	uint16_t port; // host order
	uint64_t seq;
};

struct rb_loop {
	uint16_t port_id, queue;
	struct rb_rules rules;
	struct rte_mempool *pool;
	int stop;
	struct rb_counters c;
	int npeers, next_peer;
	struct rb_peer peers[RB_MAX_PEERS];
	// Source frames built and refused by the TX ring, oldest first: sent
	// before any new one is built, so back-pressure costs no frames.
	uint16_t npending;
	struct rte_mbuf *pending[RB_BURST];
};

struct rb_snapshot {
	struct rb_counters c;
	uint64_t port_rx_packets, port_tx_packets, port_rx_missed, port_rx_errors,
		port_tx_errors, port_rx_nombuf, tsc_hz;
	int stats_err;
};

struct rb_verdict rb_reflect(const struct rb_rules *r, uint8_t *f, uint32_t len);
struct rb_verdict rb_judge(const struct rb_rules *r, uint8_t *f, uint32_t len, uint16_t nb_segs);
int rb_run(struct rb_loop *l);
void rb_stop(struct rb_loop *l);
// rb_read_queues reads n loops (one per queue pair, each on its own lcore)
// into each[q] and their sum into s, and the port's statistics once.
void rb_read_queues(struct rb_loop *loops, int n, struct rb_snapshot *s, struct rb_counters *each);
// rb_launch runs rb_run(l) on worker lcore (rte_eal_remote_launch); rb_wait
// waits until it has returned, after rb_stop(l).
int rb_launch(struct rb_loop *l, unsigned lcore);
int rb_wait(unsigned lcore);

#endif
