//go:build dpdk

// A port over two rte_rings for tests (ringport.c).
#ifndef RINGBENCH_RINGPORT_H
#define RINGBENCH_RINGPORT_H

#include <stdint.h>

struct rte_ring;
struct rte_mempool;

struct rb_ring_port {
	uint16_t port_id;
	uint8_t mac[6];
	struct rte_ring *rx, *tx;
	struct rte_mempool *pool;
	// The node rb_port_setup chose, the polling lcore's, and the one the
	// mempool was made on.
	int socket, lcore_socket, pool_socket;
};

int rb_ring_port_open(unsigned rx_cap, unsigned tx_cap, int numa, struct rb_ring_port *p, char *err, int errlen);
void rb_ring_port_free(struct rb_ring_port *p);
int rb_ring_inject(struct rb_ring_port *p, const uint8_t *f, uint16_t len, uint16_t nsegs);
unsigned rb_ring_tx_count(struct rb_ring_port *p);
unsigned rb_ring_drain(struct rb_ring_port *p, unsigned max, uint8_t *buf, unsigned stride, uint16_t *lens);
unsigned rb_ring_pool_in_use(struct rb_ring_port *p);

#endif
