//go:build dpdk

// A port over two rte_rings (net_ring's rte_eth_from_rings) whose far ends
// a test holds: it puts frames on the receive ring and takes them off the
// transmit ring at its own pace, so it can make back-pressure and chained
// mbufs that no virtual device makes on demand.

#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "eal.h"
#include "ringport.h"

int rb_ring_port_open(unsigned rx_cap, unsigned tx_cap, int numa, struct rb_ring_port *p, char *err, int errlen)
{
	unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ;
	p->rx = rte_ring_create("rb_test_rx", rx_cap, SOCKET_ID_ANY, flags);
	p->tx = rte_ring_create("rb_test_tx", tx_cap, SOCKET_ID_ANY, flags);
	if (p->rx == NULL || p->tx == NULL) {
		snprintf(err, errlen, "rte_ring_create: %s", rte_strerror(rte_errno));
		goto fail;
	}
	int id = rte_eth_from_rings("net_ring_rbtest", &p->rx, 1, &p->tx, 1, (unsigned)numa);
	if (id < 0) {
		snprintf(err, errlen, "rte_eth_from_rings: %s", rte_strerror(rte_errno));
		goto fail;
	}
	p->port_id = (uint16_t)id;
	p->socket = rb_port_socket(p->port_id);
	p->lcore_socket = (int)rte_socket_id();
	if (rb_port_setup(p->port_id, 1024, 1, 0, p->mac, &p->pool, err, errlen) != 0)
		goto fail;
	p->pool_socket = p->pool->socket_id;
	return 0;
fail:
	rte_ring_free(p->rx);
	rte_ring_free(p->tx);
	return -1;
}

void rb_ring_port_free(struct rb_ring_port *p)
{
	rte_ring_free(p->rx);
	rte_ring_free(p->tx);
}

int rb_ring_inject(struct rb_ring_port *p, const uint8_t *f, uint16_t len, uint16_t nsegs)
{
	if (nsegs == 0 || len < nsegs)
		return -EINVAL;
	struct rte_mbuf *head = NULL;
	uint16_t per = (uint16_t)((len + nsegs - 1) / nsegs);
	for (uint16_t off = 0; off < len; off += per) {
		uint16_t n = len - off < per ? len - off : per;
		struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);
		char *d = m == NULL ? NULL : rte_pktmbuf_append(m, n);
		if (d == NULL) {
			rte_pktmbuf_free(m);
			rte_pktmbuf_free(head);
			return -ENOMEM;
		}
		memcpy(d, f + off, n);
		if (head == NULL) {
			head = m;
		} else if (rte_pktmbuf_chain(head, m) != 0) {
			rte_pktmbuf_free(m);
			rte_pktmbuf_free(head);
			return -EOVERFLOW;
		}
	}
	if (rte_ring_enqueue(p->rx, head) != 0) {
		rte_pktmbuf_free(head);
		return -ENOBUFS;
	}
	return 0;
}

unsigned rb_ring_tx_count(struct rb_ring_port *p) { return rte_ring_count(p->tx); }

unsigned rb_ring_drain(struct rb_ring_port *p, unsigned max, uint8_t *buf, unsigned stride, uint16_t *lens)
{
	unsigned got = 0;
	void *m;
	while (got < max && rte_ring_dequeue(p->tx, &m) == 0) {
		struct rte_mbuf *mb = m;
		uint16_t n = rte_pktmbuf_data_len(mb);
		lens[got] = n;
		memcpy(buf + (size_t)got * stride, rte_pktmbuf_mtod(mb, void *), n < stride ? n : stride);
		rte_pktmbuf_free(mb);
		got++;
	}
	return got;
}

unsigned rb_ring_pool_in_use(struct rb_ring_port *p) { return rte_mempool_in_use_count(p->pool); }
