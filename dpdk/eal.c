//go:build dpdk

#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "eal.h"

#define NB_MBUFS 8191 // 2^n-1 is the ring's best size
#define MBUF_CACHE 256

int rb_eal_init(int argc, char **argv, char *err, int errlen)
{
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(err, errlen, "rte_eal_init: %s", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

// rb_port_socket is the NUMA node a port's mbufs and queues go on: the
// port's own, so the NIC's DMA and the descriptors stay local; a virtual
// device has none (SOCKET_ID_ANY), and then the polling lcore's.
int rb_port_socket(uint16_t port_id)
{
	int socket = rte_eth_dev_socket_id(port_id);
	if (socket == SOCKET_ID_ANY)
		socket = (int)rte_socket_id();
	return socket;
}

// rb_port_open configures the one port the EAL found with nq rx and tx
// queues of nb_desc descriptors each and starts it (rb_port_setup).
int rb_port_open(uint16_t nb_desc, uint16_t nq, int need_rss, uint16_t *port_id, uint8_t mac[6], struct rte_mempool **pool,
		 char *err, int errlen)
{
	uint16_t n = rte_eth_dev_count_avail();
	if (n != 1) {
		snprintf(err, errlen, "want exactly one port, the EAL found %u", n);
		return -1;
	}
	uint16_t pid = 0;
	RTE_ETH_FOREACH_DEV(pid) break;
	int rc = rb_port_setup(pid, nb_desc, nq, need_rss, mac, pool, err, errlen);
	if (rc != 0)
		return rc;
	*port_id = pid;
	return 0;
}

// rss_conf spreads flows over nq queues by the port's RSS hash of IP
// addresses and UDP ports, where it has one. It returns RB_PORT_NO_RSS when
// nq > 1 and need_rss but the port cannot: a port that needs no RSS (memif,
// whose peer picks the queue; af_packet and af_xdp, where the kernel does)
// takes its queues as they are.
static int rss_conf(uint16_t pid, uint16_t nq, int need_rss, struct rte_eth_conf *conf, char *err, int errlen)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(pid, &info);
	if (rc < 0) {
		snprintf(err, errlen, "rte_eth_dev_info_get: %s", rte_strerror(-rc));
		return -1;
	}
	if (nq > info.max_rx_queues || nq > info.max_tx_queues) {
		snprintf(err, errlen, "port %s has %u rx and %u tx queues, %u cores need as many", info.driver_name,
			 info.max_rx_queues, info.max_tx_queues, nq);
		return RB_PORT_NO_RSS;
	}
	if (nq == 1)
		return 0;
	uint64_t hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
	if (hf == 0) {
		if (!need_rss)
			return 0;
		snprintf(err, errlen, "port %s has no RSS hash of IP or UDP (dev_info flow_type_rss_offloads 0x%llx), "
			 "so nothing would spread flows over its %u queues", info.driver_name,
			 (unsigned long long)info.flow_type_rss_offloads, nq);
		return RB_PORT_NO_RSS;
	}
	conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
	conf->rx_adv_conf.rss_conf.rss_key = NULL; // the driver's default key
	conf->rx_adv_conf.rss_conf.rss_hf = hf;
	return 0;
}

// nb_mbufs is a pool size (2^n-1) that fills nq rx and tx rings of nb_desc
// and each lcore's cache, with room left for frames in flight.
static unsigned nb_mbufs(uint16_t nb_desc, uint16_t nq)
{
	unsigned want = (unsigned)nq * (2u * nb_desc + MBUF_CACHE) + 1024, n = NB_MBUFS;
	while (n < want)
		n = 2 * n + 1;
	return n;
}

// rb_port_setup makes the mempool and nq rx and tx queues, all on
// rb_port_socket's node, and starts port pid; with nq > 1, rss_conf says how
// flows reach the queues. On failure the port is closed and the answer is
// -1, or RB_PORT_NO_RSS.
int rb_port_setup(uint16_t pid, uint16_t nb_desc, uint16_t nq, int need_rss, uint8_t mac[6], struct rte_mempool **pool,
		  char *err, int errlen)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int rc = rss_conf(pid, nq, need_rss, &conf, err, errlen);
	if (rc != 0) {
		rte_eth_dev_close(pid);
		return rc;
	}
	int socket = rb_port_socket(pid);
	struct rte_mempool *mp = rte_pktmbuf_pool_create("ringbench_mbufs", nb_mbufs(nb_desc, nq), MBUF_CACHE, 0,
							 RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (mp == NULL) {
		snprintf(err, errlen, "rte_pktmbuf_pool_create: %s", rte_strerror(rte_errno));
		rte_eth_dev_close(pid);
		return -1;
	}
	uint16_t nb_rxd = nb_desc, nb_txd = nb_desc;
	const char *step = "rte_eth_dev_configure";
	if ((rc = rte_eth_dev_configure(pid, nq, nq, &conf)) < 0)
		goto fail;
	step = "rte_eth_dev_adjust_nb_rx_tx_desc";
	if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd)) < 0)
		goto fail;
	for (uint16_t q = 0; q < nq; q++) {
		step = "rte_eth_rx_queue_setup";
		if ((rc = rte_eth_rx_queue_setup(pid, q, nb_rxd, socket, NULL, mp)) < 0)
			goto fail;
		step = "rte_eth_tx_queue_setup";
		if ((rc = rte_eth_tx_queue_setup(pid, q, nb_txd, socket, NULL)) < 0)
			goto fail;
	}
	step = "rte_eth_dev_start";
	if ((rc = rte_eth_dev_start(pid)) < 0)
		goto fail;
	struct rte_ether_addr addr;
	step = "rte_eth_macaddr_get";
	if ((rc = rte_eth_macaddr_get(pid, &addr)) < 0) {
		rte_eth_dev_stop(pid);
		goto fail;
	}
	memcpy(mac, addr.addr_bytes, 6);
	*pool = mp;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", step, rte_strerror(-rc));
	rte_eth_dev_close(pid);
	rte_mempool_free(mp);
	return -1;
}

int rb_port_close(uint16_t port_id, struct rte_mempool *pool, char *err, int errlen)
{
	int rc = rte_eth_dev_stop(port_id);
	const char *step = "rte_eth_dev_stop";
	if (rc == 0) {
		rc = rte_eth_dev_close(port_id);
		step = "rte_eth_dev_close";
	} else {
		rte_eth_dev_close(port_id);
	}
	// Every mbuf is back in the pool once the port is closed.
	rte_mempool_free(pool);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", step, rte_strerror(-rc));
		return -1;
	}
	return 0;
}


int rb_link_up(uint16_t port_id)
{
	struct rte_eth_link link;
	if (rte_eth_link_get_nowait(port_id, &link) < 0)
		return 0;
	return link.link_status == RTE_ETH_LINK_UP;
}
