//go:build dpdk

// The reflector's per-burst loop, one per queue pair. Go calls rb_run once
// (a worker lcore runs it through rb_launch); it returns only when
// rb_stop sets the flag, so the data path makes no cgo call at all.

#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "reflector.h"

#define ETH_LEN 14
#define ARP_LEN 28
#define IP_LEN 20
#define UDP_LEN 8

static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

static inline struct rb_verdict drop(uint8_t why)
{
	struct rb_verdict v = {RB_DROP, why, 0, 0, 0};
	return v;
}

// udp_csum is the full UDP checksum of the datagram at udp (its checksum
// field zero) under the pseudo-header of the addresses at ip+12.
static inline uint16_t udp_csum(const uint8_t *ip, const uint8_t *udp, uint16_t udp_len)
{
	uint32_t sum = __rte_raw_cksum(ip + 12, 8, 0);
	sum += rte_cpu_to_be_16(IPPROTO_UDP) + rte_cpu_to_be_16(udp_len);
	sum = __rte_raw_cksum(udp, udp_len, sum);
	uint16_t c = (uint16_t)~__rte_raw_cksum_reduce(sum);
	return c == 0 ? 0xffff : c; // 0 would mean "no checksum"
}

static struct rb_verdict arp(const struct rb_rules *r, uint8_t *f, uint32_t len)
{
	if (len < ETH_LEN + ARP_LEN)
		return drop(RB_TRUNCATED);
	uint8_t *a = f + ETH_LEN;
	if (!r->has_ip || be16(a) != 1 || be16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 ||
	    be16(a + 6) != 1 || memcmp(a + 24, r->ip, 4) != 0)
		return drop(RB_ARP);
	memcpy(f, f + 6, 6);
	memcpy(f + 6, r->mac, 6);
	put_be16(a + 6, 2);
	memmove(a + 18, a + 8, 10);
	memcpy(a + 8, r->mac, 6);
	memcpy(a + 14, r->ip, 4);
	struct rb_verdict v = {RB_REPLY, RB_NONE, 1, (uint16_t)len, 0};
	return v;
}

struct rb_verdict rb_reflect(const struct rb_rules *r, uint8_t *f, uint32_t len)
{
	if (len < ETH_LEN)
		return drop(RB_TRUNCATED);
	uint16_t type = be16(f + 12);
	if (type == 0x0806) {
		if (memcmp(f, r->mac, 6) != 0 && memcmp(f, broadcast, 6) != 0)
			return drop(RB_DST_MAC);
		return arp(r, f, len);
	}
	if (type != 0x0800)
		return drop(RB_ETHERTYPE);
	if (memcmp(f, r->mac, 6) != 0)
		return drop(RB_DST_MAC);
	if (len < ETH_LEN + IP_LEN)
		return drop(RB_TRUNCATED);
	uint8_t *ip = f + ETH_LEN;
	if (ip[0] >> 4 != 4)
		return drop(RB_VERSION);
	if ((ip[0] & 0x0f) < 5)
		return drop(RB_IHL);
	if ((ip[0] & 0x0f) > 5)
		return drop(RB_IP_OPTIONS);
	uint32_t total = be16(ip + 2);
	if (total < IP_LEN)
		return drop(RB_IP_LENGTH);
	if (total > len - ETH_LEN)
		return drop(RB_TRUNCATED);
	if (rte_raw_cksum(ip, IP_LEN) != 0xffff)
		return drop(RB_IP_CHECKSUM);
	if (be16(ip + 6) & 0x3fff)
		return drop(RB_FRAGMENT);
	if (ip[9] != IPPROTO_UDP)
		return drop(RB_NOT_UDP);
	if (r->has_ip && memcmp(ip + 16, r->ip, 4) != 0)
		return drop(RB_DST_IP);
	if (total < IP_LEN + UDP_LEN)
		return drop(RB_TRUNCATED);
	uint8_t *udp = ip + IP_LEN;
	uint16_t udp_len = (uint16_t)(total - IP_LEN);
	if (be16(udp + 4) != udp_len)
		return drop(RB_UDP_LENGTH);
	if (be16(udp + 2) != r->port)
		return drop(RB_DST_PORT);
	uint16_t payload = udp_len - UDP_LEN;
	if (payload > r->max_payload)
		return drop(RB_OVERSIZE);
	if (r->service != RB_ECHO) {
		struct rb_verdict v = {RB_CONSUME, RB_NONE, 0, 0, payload};
		return v;
	}

	uint8_t t[6];
	memcpy(t, f, 6);
	memcpy(f, f + 6, 6);
	memcpy(f + 6, t, 6);
	memcpy(t, ip + 12, 4);
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, t, 4);
	memcpy(t, udp, 2);
	memcpy(udp, udp + 2, 2);
	memcpy(udp + 2, t, 2);
	if (r->csum_mode != RB_CSUM_KEEP) {
		udp[6] = udp[7] = 0;
		if (r->csum_mode == RB_CSUM_FULL) {
			uint16_t c = udp_csum(ip, udp, udp_len);
			memcpy(udp + 6, &c, 2); // already in network order
		}
	}
	struct rb_verdict v = {RB_REPLY, RB_NONE, 0, (uint16_t)(ETH_LEN + total), payload};
	return v;
}

// rb_judge is rb_reflect for a frame the PMD handed over in nb_segs mbufs,
// of which f and len are the first. A chain is a frame larger than one
// mbuf's data room, which a 1500-byte MTU never makes: it is dropped as
// multi_seg before anything is read, not judged by its first segment (where
// the IP length would exceed len and call it truncated).
struct rb_verdict rb_judge(const struct rb_rules *r, uint8_t *f, uint32_t len, uint16_t nb_segs)
{
	if (nb_segs != 1)
		return drop(RB_MULTI_SEG);
	return rb_reflect(r, f, len);
}

// remember_peer records the sender of a datagram to a source server; the
// frame is still as received.
static void remember_peer(struct rb_loop *l, const uint8_t *f)
{
	const uint8_t *ip = f + ETH_LEN, *udp = ip + IP_LEN;
	for (int i = 0; i < l->npeers; i++) {
		struct rb_peer *p = &l->peers[i];
		if (memcmp(p->ip, ip + 12, 4) == 0 && p->port == be16(udp))
			return;
	}
	if (l->npeers == RB_MAX_PEERS)
		return;
	struct rb_peer *p = &l->peers[l->npeers];
	memcpy(p->mac, f + 6, 6);
	memcpy(p->ip, ip + 12, 4);
	p->port = be16(udp);
	p->seq = 0;
	__atomic_store_n(&l->npeers, l->npeers + 1, __ATOMIC_RELAXED);
}

// source_frame writes datagram seq for peer p into f: the 8-byte
// little-endian sequence, then bytes (seq+i) mod 251, as
// backends.FillSourceDatagram does.
static uint16_t source_frame(const struct rb_rules *r, const struct rb_peer *p, uint64_t seq, uint8_t *f)
{
	uint16_t size = r->source_size, udp_len = UDP_LEN + size;
	memcpy(f, p->mac, 6);
	memcpy(f + 6, r->mac, 6);
	put_be16(f + 12, 0x0800);
	uint8_t *ip = f + ETH_LEN, *udp = ip + IP_LEN, *pl = udp + UDP_LEN;
	ip[0] = 0x45;
	ip[1] = 0;
	put_be16(ip + 2, IP_LEN + udp_len);
	put_be16(ip + 4, (uint16_t)seq);
	put_be16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	ip[10] = ip[11] = 0;
	memcpy(ip + 12, r->ip, 4);
	memcpy(ip + 16, p->ip, 4);
	uint16_t ipc = (uint16_t)~rte_raw_cksum(ip, IP_LEN);
	memcpy(ip + 10, &ipc, 2);
	put_be16(udp, r->port);
	put_be16(udp + 2, p->port);
	put_be16(udp + 4, udp_len);
	udp[6] = udp[7] = 0;
	for (int i = 0; i < 8; i++)
		pl[i] = (uint8_t)(seq >> (8 * i));
	uint32_t k = (uint32_t)(seq % 251);
	for (uint16_t i = 8; i < size; i++) {
		pl[i] = (uint8_t)k;
		if (++k == 251)
			k = 0;
	}
	if (r->csum_mode != RB_CSUM_ZERO) { // a source's datagrams are new: keep means full
		uint16_t c = udp_csum(ip, udp, udp_len);
		memcpy(udp + 6, &c, 2);
	}
	return ETH_LEN + IP_LEN + udp_len;
}

static inline void add(uint64_t *dst, uint64_t v)
{
	if (v)
		__atomic_store_n(dst, *dst + v, __ATOMIC_RELAXED);
}

// rb_run polls the port until rb_stop. Per packet it costs the rx and tx
// descriptors, one parse over the headers, a swap, and in csum_mode full one pass over
// the payload for the UDP checksum; counters are summed per
// burst and published once.
int rb_run(struct rb_loop *l)
{
	struct rte_mbuf *rx[RB_BURST], *tx[RB_BURST], *garbage[RB_BURST];
	uint16_t txpay[RB_BURST];
	uint8_t txarp[RB_BURST];
	const struct rb_rules *r = &l->rules;

	while (!__atomic_load_n(&l->stop, __ATOMIC_RELAXED)) {
		uint64_t start = rte_rdtsc();
		uint16_t n = rte_eth_rx_burst(l->port_id, l->queue, rx, RB_BURST);
		uint16_t ntx = 0, ngarbage = 0, nsrc = 0, ndrops = 0;
		uint64_t rx_msgs = 0, rx_bytes = 0;
		uint16_t drops[RB_NUM_REASONS];
		if (n)
			memset(drops, 0, sizeof(drops));
		for (uint16_t i = 0; i < n; i++) {
			struct rte_mbuf *m = rx[i];
			if (i + 1 < n)
				rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void *));
			struct rb_verdict v = rb_judge(r, rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_data_len(m), m->nb_segs);
			switch (v.action) {
			case RB_REPLY:
				m->data_len = m->pkt_len = v.len;
				m->ol_flags = 0;
				txpay[ntx] = v.payload;
				txarp[ntx] = v.arp;
				tx[ntx++] = m;
				if (!v.arp) {
					rx_msgs++;
					rx_bytes += v.payload;
				}
				break;
			case RB_CONSUME:
				rx_msgs++;
				rx_bytes += v.payload;
				if (r->service == RB_SOURCE)
					remember_peer(l, rte_pktmbuf_mtod(m, uint8_t *));
				garbage[ngarbage++] = m;
				break;
			default:
				drops[v.reason]++;
				ndrops++;
				garbage[ngarbage++] = m;
			}
		}
		if (ngarbage)
			rte_pktmbuf_free_bulk(garbage, ngarbage);

		// A source sends first what the TX ring refused last pass, and
		// builds new frames (alloc, fill, checksum: a pass over each
		// payload) only when nothing is held back, so a full ring costs a
		// retried tx burst, not frames built and thrown away.
		uint16_t held = l->npending;
		if (held) {
			uint16_t k = held < RB_BURST - ntx ? held : RB_BURST - ntx;
			for (uint16_t i = 0; i < k; i++) {
				txpay[ntx] = r->source_size;
				txarp[ntx] = 0;
				tx[ntx++] = l->pending[i];
			}
			l->npending = held - k;
			memmove(l->pending, l->pending + k, l->npending * sizeof(l->pending[0]));
		} else if (r->service == RB_SOURCE && l->npeers > 0 && ntx < RB_BURST) {
			uint16_t want = RB_BURST - ntx;
			if (rte_pktmbuf_alloc_bulk(l->pool, tx + ntx, want) != 0) {
				add(&l->c.nomem, 1);
			} else {
				for (uint16_t i = 0; i < want; i++) {
					struct rb_peer *p = &l->peers[l->next_peer];
					if (++l->next_peer >= l->npeers)
						l->next_peer = 0;
					struct rte_mbuf *m = tx[ntx];
					uint16_t flen = source_frame(r, p, p->seq++, rte_pktmbuf_mtod(m, uint8_t *));
					m->data_len = m->pkt_len = flen;
					txpay[ntx] = r->source_size;
					txarp[ntx] = 0;
					ntx++;
					nsrc++;
				}
			}
		}

		uint64_t tx_msgs = 0, tx_bytes = 0, arps = 0;
		uint16_t sent = 0;
		if (ntx) {
			sent = rte_eth_tx_burst(l->port_id, l->queue, tx, ntx);
			for (uint16_t i = 0; i < sent; i++) {
				if (txarp[i]) {
					arps++;
				} else {
					tx_msgs++;
					tx_bytes += txpay[i];
				}
			}
			// Refused source frames go back in front of those still held
			// (they are older), so each peer's sequence stays in order.
			struct rte_mbuf *back[RB_BURST];
			uint16_t nback = 0;
			for (uint16_t i = sent; i < ntx; i++) {
				if (r->service == RB_SOURCE && !txarp[i]) {
					back[nback++] = tx[i];
				} else {
					add(&l->c.tx_full, 1);
					rte_pktmbuf_free(tx[i]);
				}
			}
			if (nback) {
				add(&l->c.tx_held, nback);
				memmove(l->pending + nback, l->pending, l->npending * sizeof(l->pending[0]));
				memcpy(l->pending, back, nback * sizeof(back[0]));
				l->npending += nback;
			}
		}
		// A source's frames count as busy packets when they are sent, once.
		// A pass that only retried held frames on a full ring and sent
		// none handled no frame: like an empty receive poll it is idle,
		// not busy, or back-pressure would show as cost per packet.
		uint16_t src_sent = r->service == RB_SOURCE ? (uint16_t)(tx_msgs) : 0;
		if (n || nsrc || sent) {
			// busy_* first, then a release fence, then the frames' counters:
			// rb_read_queues loads in the opposite order (see rb_counters).
			add(&l->c.busy_cycles, rte_rdtsc() - start);
			add(&l->c.busy_packets, n + src_sent);
			__atomic_thread_fence(__ATOMIC_RELEASE);
			add(&l->c.rx_msgs, rx_msgs);
			add(&l->c.rx_bytes, rx_bytes);
			add(&l->c.tx_msgs, tx_msgs);
			add(&l->c.tx_bytes, tx_bytes);
			add(&l->c.arp_replies, arps);
			for (int i = 0; ndrops && i < RB_NUM_REASONS; i++)
				add(&l->c.drops[i], drops[i]);
		}
	}
	if (l->npending)
		rte_pktmbuf_free_bulk(l->pending, l->npending);
	l->npending = 0;
	return 0;
}

void rb_stop(struct rb_loop *l) { __atomic_store_n(&l->stop, 1, __ATOMIC_RELAXED); }

static inline uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

// read_counters copies the counters one loop publishes.
static void read_counters(const struct rb_counters *c, struct rb_counters *out)
{
	// Frames' counters first, busy_* after the acquire fence: every pass
	// whose frames this snapshot shows is in busy_packets.
	out->rx_msgs = load(&c->rx_msgs);
	out->rx_bytes = load(&c->rx_bytes);
	out->tx_msgs = load(&c->tx_msgs);
	out->tx_bytes = load(&c->tx_bytes);
	out->arp_replies = load(&c->arp_replies);
	out->tx_full = load(&c->tx_full);
	out->nomem = load(&c->nomem);
	out->tx_held = load(&c->tx_held);
	for (int i = 0; i < RB_NUM_REASONS; i++)
		out->drops[i] = load(&c->drops[i]);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	out->busy_cycles = load(&c->busy_cycles);
	out->busy_packets = load(&c->busy_packets);
}

static void read_port(uint16_t port_id, struct rb_snapshot *s)
{
	struct rte_eth_stats st;
	s->stats_err = rte_eth_stats_get(port_id, &st);
	if (s->stats_err == 0) {
		s->port_rx_packets = st.ipackets;
		s->port_tx_packets = st.opackets;
		s->port_rx_missed = st.imissed;
		s->port_rx_errors = st.ierrors;
		s->port_tx_errors = st.oerrors;
		s->port_rx_nombuf = st.rx_nombuf;
	}
	s->tsc_hz = rte_get_tsc_hz();
}

void rb_read_queues(struct rb_loop *loops, int n, struct rb_snapshot *s, struct rb_counters *each)
{
	memset(&s->c, 0, sizeof(s->c));
	for (int q = 0; q < n; q++) {
		struct rb_counters *c = &each[q];
		read_counters(&loops[q].c, c);
		s->c.rx_msgs += c->rx_msgs;
		s->c.rx_bytes += c->rx_bytes;
		s->c.tx_msgs += c->tx_msgs;
		s->c.tx_bytes += c->tx_bytes;
		s->c.arp_replies += c->arp_replies;
		s->c.tx_full += c->tx_full;
		s->c.nomem += c->nomem;
		s->c.tx_held += c->tx_held;
		s->c.busy_cycles += c->busy_cycles;
		s->c.busy_packets += c->busy_packets;
		for (int i = 0; i < RB_NUM_REASONS; i++)
			s->c.drops[i] += c->drops[i];
	}
	read_port(loops[0].port_id, s);
}

static int lcore_main(void *arg) { return rb_run(arg); }

int rb_launch(struct rb_loop *l, unsigned lcore) { return rte_eal_remote_launch(lcore_main, l, lcore); }

int rb_wait(unsigned lcore) { return rte_eal_wait_lcore(lcore); }
