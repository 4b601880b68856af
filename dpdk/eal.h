//go:build dpdk

// EAL and port setup shared by the server and the generator.
#ifndef RINGBENCH_EAL_H
#define RINGBENCH_EAL_H

#include <stdint.h>

struct rte_mempool;

int rb_eal_init(int argc, char **argv, char *err, int errlen);
int rb_port_open(uint16_t nb_desc, uint16_t *port_id, uint8_t mac[6], struct rte_mempool **pool, char *err, int errlen);
int rb_port_setup(uint16_t pid, uint16_t nb_desc, uint8_t mac[6], struct rte_mempool **pool, char *err, int errlen);
int rb_port_socket(uint16_t port_id);
int rb_port_close(uint16_t port_id, struct rte_mempool *pool, char *err, int errlen);
int rb_link_up(uint16_t port_id);

#endif
