//go:build dpdk

#include <math.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "gen.h"

#define BURST 32
#define HDR 42
#define STAMP 16 // payload bytes before the pattern: seq, stamp

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

uint64_t rb_tsc(void) { return rte_rdtsc(); }
uint64_t rb_tsc_hz(void) { return rte_get_tsc_hz(); }

static inline uint32_t slot_of(const struct rb_gen *g, uint64_t seq)
{
	return g->open_loop ? (uint32_t)(seq & (g->nslots - 1)) : (uint32_t)(seq % g->nslots);
}

static inline void build(const struct rb_gen *g, struct rte_mbuf *m, uint64_t seq, uint64_t stamp)
{
	uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(f, g->hdr, HDR);
	put_be16(f + 34, (uint16_t)(g->base_sport + seq % g->conns));
	uint8_t *p = f + HDR;
	put_le64(p, seq);
	put_le64(p + 8, stamp);
	memcpy(p + STAMP, g->pattern + seq % 251 + STAMP, g->size - STAMP);
	m->data_len = m->pkt_len = HDR + g->size;
}

// xorshift: Poisson gaps need a uniform variate per request, cheaply.
static inline double uniform(struct rb_gen *g)
{
	uint64_t x = g->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	g->rng = x;
	return ((x >> 11) + 1) * (1.0 / 9007199254740993.0);
}

static inline void advance(struct rb_gen *g)
{
	if (g->poisson)
		g->next_tsc += (uint64_t)(-log(uniform(g)) * (double)g->interval_tsc);
	else
		g->next_tsc += g->interval_tsc;
}

static inline uint16_t queue_of(const struct rb_gen *g, uint64_t seq) { return (uint16_t)(seq % g->conns % g->nq); }

// send_burst sends what was built on queue q with retries (the server's ring
// being full is backpressure), and returns how many left.
static uint16_t send_burst(struct rb_gen *g, uint16_t q, struct rte_mbuf **tx, uint16_t n)
{
	uint16_t sent = 0;
	for (int tries = 0; sent < n && tries < 1000; tries++)
		sent += rte_eth_tx_burst(g->port_id, q, tx + sent, n - sent);
	if (sent < n) {
		g->c.tx_full += n - sent;
		rte_pktmbuf_free_bulk(tx + sent, n - sent);
	}
	g->c.sent += sent;
	return sent;
}

// send_queues sends n built frames, frame i on queue qs[i], one burst per
// queue (a pass over the burst per queue: nq is small), and returns how
// many left; the slots of those refused go to unsent.
static uint16_t send_queues(struct rb_gen *g, struct rte_mbuf **tx, const uint32_t *slots, const uint16_t *qs, uint16_t n,
			    uint32_t *unsent, uint16_t *nunsent)
{
	*nunsent = 0;
	if (g->nq == 1) {
		uint16_t sent = send_burst(g, 0, tx, n);
		for (uint16_t i = sent; i < n; i++)
			unsent[(*nunsent)++] = slots[i];
		return sent;
	}
	struct rte_mbuf *b[BURST];
	uint32_t bs[BURST];
	uint16_t sent = 0;
	for (uint16_t q = 0; q < g->nq; q++) {
		uint16_t k = 0;
		for (uint16_t i = 0; i < n; i++) {
			if (qs[i] == q) {
				b[k] = tx[i];
				bs[k++] = slots[i];
			}
		}
		uint16_t s = k ? send_burst(g, q, b, k) : 0;
		sent += s;
		for (uint16_t i = s; i < k; i++)
			unsent[(*nunsent)++] = bs[i];
	}
	return sent;
}

// Each slot is in the ready ring at most once, so nslots entries hold it.
static void push_ready(struct rb_gen *g, uint32_t s)
{
	g->ready[g->rtail] = s;
	if (++g->rtail == g->nslots)
		g->rtail = 0;
	g->rcount++;
}

static uint32_t pop_ready(struct rb_gen *g)
{
	uint32_t s = g->ready[g->rhead];
	if (++g->rhead == g->nslots)
		g->rhead = 0;
	g->rcount--;
	return s;
}

static void start(struct rb_gen *g, uint64_t now)
{
	g->started = 1;
	g->next_tsc = now;
	g->last_scan = now;
	if (!g->open_loop && g->mode == RB_GEN_ECHO) {
		for (uint32_t s = 0; s < g->nslots; s++) {
			g->slots[s].seq = s;
			push_ready(g, s);
		}
	}
}

static void send_requests(struct rb_gen *g, uint64_t now)
{
	struct rte_mbuf *tx[BURST];
	uint32_t slots[BURST], unsent[BURST];
	uint16_t qs[BURST], want;
	if (g->open_loop) {
		want = 0;
		for (uint64_t t = g->next_tsc; want < BURST && t <= now; want++)
			t += g->interval_tsc; // an estimate; advance() decides
	} else if (g->mode == RB_GEN_ECHO) {
		want = g->rcount < BURST ? g->rcount : BURST;
	} else {
		want = BURST;
	}
	if (want == 0)
		return;
	if (rte_pktmbuf_alloc_bulk(g->pool, tx, want) != 0) {
		g->c.nomem++;
		return;
	}
	uint16_t n = 0;
	for (; n < want; n++) {
		uint64_t seq, stamp = now;
		if (g->open_loop) {
			if (g->next_tsc > now)
				break;
			stamp = g->next_tsc;
			if (now - stamp > g->late_tsc)
				g->c.late++;
			advance(g);
			seq = g->next_seq++;
		} else if (g->mode == RB_GEN_ECHO) {
			uint32_t s = pop_ready(g);
			seq = g->slots[s].seq;
		} else {
			seq = g->next_seq++;
		}
		qs[n] = queue_of(g, seq);
		slots[n] = 0;
		if (g->mode == RB_GEN_ECHO) {
			uint32_t s = slot_of(g, seq);
			struct rb_slot *sl = &g->slots[s];
			if (g->open_loop && sl->busy)
				g->c.lost++; // nslots requests later and still unanswered
			sl->seq = seq;
			sl->stamp = stamp;
			sl->sent = now;
			sl->busy = 1;
			slots[n] = s;
		}
		build(g, tx[n], seq, stamp);
	}
	if (n < want)
		rte_pktmbuf_free_bulk(tx + n, want - n);
	uint16_t nunsent;
	uint16_t sent = send_queues(g, tx, slots, qs, n, unsent, &nunsent);
	if (g->mode == RB_GEN_STREAM_UP) {
		g->c.ops += sent;
		g->c.bytes += (uint64_t)sent * g->size;
	}
	for (uint16_t i = 0; i < nunsent && g->mode == RB_GEN_ECHO; i++) {
		// Not sent (counted in tx_full, not lost: it never reached the
		// server): the slot is free again.
		struct rb_slot *sl = &g->slots[unsent[i]];
		sl->busy = 0;
		if (!g->open_loop) {
			sl->seq += g->nslots;
			push_ready(g, unsent[i]);
		}
	}
}

// hist_index is v's bucket: exact below RB_HIST_SUB; above, the top
// RB_HIST_SUB_BITS bits of v select a bucket within its power of two.
static inline uint32_t hist_index(uint64_t v)
{
	if (v < RB_HIST_SUB)
		return (uint32_t)v;
	uint32_t shift = 63 - (uint32_t)__builtin_clzll(v) - (RB_HIST_SUB_BITS - 1);
	if (shift > RB_HIST_EXPS)
		return RB_HIST_LEN - 1;
	// v >> shift is in [RB_HIST_SUB/2, RB_HIST_SUB).
	return RB_HIST_SUB + (shift - 1) * (RB_HIST_SUB / 2) + (uint32_t)((v >> shift) - RB_HIST_SUB / 2);
}

uint64_t rb_hist_value(uint32_t i)
{
	if (i < RB_HIST_SUB)
		return i;
	uint32_t shift = (i - RB_HIST_SUB) / (RB_HIST_SUB / 2) + 1;
	uint64_t sub = (i - RB_HIST_SUB) % (RB_HIST_SUB / 2) + RB_HIST_SUB / 2;
	return (sub << shift) + ((1ull << shift) >> 1);
}

uint32_t rb_hist_index(uint64_t v) { return hist_index(v); }

static inline void hist_record(struct rb_gen *g, uint64_t ns)
{
	g->hist[hist_index(ns)]++;
}

static uint16_t receive_queue(struct rb_gen *g, uint16_t q)
{
	struct rte_mbuf *rx[BURST];
	uint16_t n = rte_eth_rx_burst(g->port_id, q, rx, BURST);
	if (n == 0)
		return 0;
	uint64_t now = rte_rdtsc();
	for (uint16_t i = 0; i < n && g->mode == RB_GEN_ECHO; i++) {
		struct rte_mbuf *m = rx[i];
		const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
		uint32_t len = rte_pktmbuf_data_len(m);
		if (len < HDR + STAMP || be16(f + 12) != 0x0800 || f[23] != 17 || be16(f + 34) != g->server_port)
			continue; // not an echo: ARP, or another's traffic
		const uint8_t *p = f + HDR;
		uint64_t seq = le64(p);
		uint32_t s = slot_of(g, seq);
		struct rb_slot *sl = &g->slots[s];
		if (!sl->busy || sl->seq != seq) {
			g->c.stale++; // answered after its timeout, or a mangled seq
			continue;
		}
		sl->busy = 0;
		if (sl->stamp < g->win_start) {
			// A request of the warm-up: its reply may have waited out
			// the parent's window-edge hook; it is not the window's.
		} else if (len < (uint32_t)HDR + g->size || be16(f + 38) != 8 + g->size ||
		    be16(f + 36) != (uint16_t)(g->base_sport + seq % g->conns) || le64(p + 8) != sl->stamp ||
		    memcmp(p + STAMP, g->pattern + seq % 251 + STAMP, g->size - STAMP) != 0) {
			g->c.mismatch++;
		} else {
			g->c.ops++;
			g->c.bytes += g->size;
			hist_record(g, (uint64_t)((double)(now - sl->stamp) * g->ns_per_tsc));
		}
		if (!g->open_loop) {
			sl->seq += g->nslots;
			push_ready(g, s);
		}
	}
	rte_pktmbuf_free_bulk(rx, n);
	return n;
}

static uint16_t receive(struct rb_gen *g)
{
	uint16_t n = 0;
	for (uint16_t q = 0; q < g->nq; q++)
		n += receive_queue(g, q);
	return n;
}

// lose frees a slot whose request timed out. A request sent before the
// window began (one a session kept in flight across the pause between
// windows) is not the window's: it is freed but not counted lost, as its
// reply would not have been counted either.
static void lose(struct rb_gen *g, struct rb_slot *sl)
{
	sl->busy = 0;
	if (sl->stamp >= g->win_start)
		g->c.lost++;
}

static void expire(struct rb_gen *g, uint64_t now)
{
	if (g->open_loop) {
		// Requests leave in seq order, so the oldest are the ones to time
		// out: walk from the oldest and stop at the first still in time.
		for (; g->expire_seq < g->next_seq; g->expire_seq++) {
			struct rb_slot *sl = &g->slots[slot_of(g, g->expire_seq)];
			if (!sl->busy || sl->seq != g->expire_seq)
				continue;
			if (now - sl->sent < g->timeout_tsc)
				break;
			lose(g, sl);
		}
		return;
	}
	for (uint32_t s = 0; s < g->nslots; s++) {
		struct rb_slot *sl = &g->slots[s];
		if (!sl->busy || now - sl->sent < g->timeout_tsc)
			continue;
		lose(g, sl);
		if (!g->open_loop) {
			sl->seq += g->nslots;
			push_ready(g, s);
		}
	}
}

void rb_gen_run(struct rb_gen *g, uint64_t until)
{
	uint64_t now = rte_rdtsc();
	if (!g->started)
		start(g, now);
	uint64_t scan_every = rte_get_tsc_hz() / 1000;
	while (now < until) {
		uint16_t got = receive(g);
		uint64_t sent = g->c.sent;
		now = rte_rdtsc();
		send_requests(g, now);
		g->c.polls++;
		if (got == 0 && g->c.sent == sent)
			g->c.idle_polls++;
		if (g->mode == RB_GEN_ECHO && now - g->last_scan > scan_every) {
			expire(g, now);
			g->last_scan = now;
		}
	}
}
