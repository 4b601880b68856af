/*
 * serve.h: what the C baselines share. Each server (c-epoll.c, c-uring.c)
 * implements the three server_* functions; serve.c holds main(): the
 * command line of `ringbench serve` and its stdin/stdout line protocol
 * (print {"port":N} when ready, answer "counters" with a JSON
 * backends.Counters, exit when stdin closes or on SIGTERM).
 */
#ifndef RINGBENCH_SERVE_H
#define RINGBENCH_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_LOOPS 64
#define MAX_UDP_PAYLOAD 1472 /* backends.MaxUDPPayload */
#define DEFAULT_MSG_SIZE 1024 /* backends.DefaultMsgSize */

struct config {
	int udp;  /* 0: TCP */
	int sink; /* 0: echo */
	uint32_t addr; /* network order; INADDR_ANY when --host is empty */
	int port;
	int cpus[MAX_LOOPS]; /* one loop per CPU; ncpus 0: one unpinned loop */
	int ncpus;
	int msg_size;
	int max_msg; /* the largest UDP payload served */
};

/* counters mirrors backends.Counters. A loop counts in its own copy and
 * publishes it with relaxed stores once per turn, so the protocol thread
 * reads it without costing the data path an atomic add. */
struct counters {
	uint64_t syscalls, accepted, closed;
	uint64_t rx_bytes, tx_bytes, rx_msgs, tx_msgs;
	uint64_t dropped, errors;
};

void counters_publish(struct counters *pub, const struct counters *c);
void counters_add(struct counters *sum, const struct counters *pub);

/* listen_socket binds a socket to cfg's address and port (TCP: listening)
 * and returns it, or -1 with err filled in. */
int listen_socket(const struct config *cfg, int port, int reuseport, int nonblock, int rcvbuf,
		  int *bound, char *err, size_t errlen);

/* start_thread starts fn(arg) on a thread pinned to cpu (-1: unpinned); it
 * returns 0 or an errno value. */
int start_thread(pthread_t *t, int cpu, void *(*fn)(void *), void *arg);

/* Implemented by each server. server_start returns 0 with the bound port
 * once every loop is running, or -1 with err filled in. */
int server_start(const struct config *cfg, int *port, char *err, size_t errlen);
void server_counters(struct counters *sum);
/* server_stop stops and joins every loop and frees what they hold; it
 * returns 0, or -1 if a loop failed (its reason on stderr). */
int server_stop(void);

#endif
