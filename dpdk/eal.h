//go:build dpdk

// EAL and port setup shared by the server and the generator.
#ifndef RINGBENCH_EAL_H
#define RINGBENCH_EAL_H

#include <stdint.h>

struct rte_mempool;

int rb_eal_init(int argc, char **argv, char *err, int errlen);
// RB_PORT_NO_RSS is rb_port_setup's answer when the port cannot take the
// queues asked for: too few, or no RSS hash where it must spread flows
// itself. The caller reports a missing feature, not a failure.
#define RB_PORT_NO_RSS -2

int rb_port_open(uint16_t nb_desc, uint16_t nq, int need_rss, uint16_t *port_id, uint8_t mac[6], struct rte_mempool **pool,
		 char *err, int errlen);
int rb_port_setup(uint16_t pid, uint16_t nb_desc, uint16_t nq, int need_rss, uint8_t mac[6], struct rte_mempool **pool,
		  char *err, int errlen);
int rb_port_socket(uint16_t port_id);
int rb_port_close(uint16_t port_id, struct rte_mempool *pool, char *err, int errlen);
int rb_link_up(uint16_t port_id);

#endif
