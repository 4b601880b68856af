/*
 * c-uring: the io_uring path without Go, written with liburing. It is the C
 * counterpart of ringbench's default `uring` variant (uring/loop.go,
 * uring/tcp.go, uring/udp.go), with the same features:
 *
 *  - a SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL ring of 1024 SQEs (CQ 8x)
 *    per loop, created on the loop's pinned thread, its fd registered;
 *  - TCP: multishot accept into a sparse table of direct descriptors
 *    (TCP_NODELAY inherited from the listener), a multishot recv per
 *    connection into a provided buffer ring, and an echo that sends the
 *    received buffer itself (no copy), one send in flight per connection;
 *    a connection closes with a linked cancel + close that post nothing
 *    on success;
 *  - UDP: a multishot recvmsg into the buffer ring and a sendmsg per
 *    datagram from the buffer it arrived in; oversize datagrams are dropped
 *    and counted;
 *  - buffer sizes and counts as the Go plan's; recycled buffers are
 *    published once per batch;
 *  - per batch: reap every CQE, then one io_uring_enter that submits what
 *    the batch produced and waits. With IORING_FEAT_MIN_TIMEOUT (Linux
 *    6.12) the wait is the Go default's min-wait: up to BATCH completions
 *    (at most two per open TCP connection), holding out BATCH_US once one
 *    is there, 1 ms at most; and, as in the Go default, only while the
 *    last millisecond's requests promise BATCH_MIN of them within
 *    BATCH_US (below that a min-wait's timer costs a wake-up more than it
 *    saves).
 *
 * Debian 12's liburing (2.3) predates io_uring_submit_and_wait_min_timeout
 * (2.8) and IORING_SETUP_NO_SQARRAY: the wait is issued here with a raw
 * io_uring_enter (the kernel ABI's io_uring_getevents_arg, whose pad field
 * became min_wait_usec in 6.12), and the ring keeps its SQ array (the Go
 * backend drops it where the kernel allows, 6.6+). Every io_uring_enter the
 * loop makes is counted as a syscall, as the Go backend counts its enters.
 * Sink recycles what it receives; source is not served.
 */
#define _GNU_SOURCE
#include "serve.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RING_ENTRIES 1024
#define MAX_CONNS (1 << 14) /* direct-descriptor table */
#define BATCH 16
#define BATCH_US 50
#define BATCH_MIN 4
#define EPOCH_NS 1000000
#define WAIT_NS 1000000
#define FEAT_MIN_TIMEOUT (1U << 15) /* IORING_FEAT_MIN_TIMEOUT, Linux 6.12 */
#define RECVMSG_HEADROOM (sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in))

/* The kernel's struct io_uring_getevents_arg as of 6.12. */
struct getevents_arg {
	uint64_t sigmask;
	uint32_t sigmask_sz;
	uint32_t min_wait_usec;
	uint64_t ts;
};

enum op { OP_STOP = 1, OP_ACCEPT, OP_RECV, OP_SEND, OP_CLOSE, OP_RECVMSG, OP_SENDMSG };

/* user_data: op 8 | generation 16 | bid 16 | slot 24. The generation tells
 * a completion of a closed connection from one of the connection that
 * reused its slot. */
static inline uint64_t ud_make(enum op op, uint16_t gen, uint16_t bid, uint32_t slot)
{
	return (uint64_t)op << 56 | (uint64_t)gen << 40 | (uint64_t)bid << 24 | slot;
}
static inline enum op ud_op(uint64_t ud) { return (enum op)(ud >> 56); }
static inline uint16_t ud_gen(uint64_t ud) { return (uint16_t)(ud >> 40); }
static inline uint16_t ud_bid(uint64_t ud) { return (uint16_t)(ud >> 24); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)(ud & 0xffffff); }

struct conn {
	uint16_t gen;
	bool open, eof, sending, starved;
	int32_t qhead, qtail; /* buffers waiting to be sent, linked by loop.next */
};

struct loop {
	const struct config *cfg;
	int cpu, sock, efd;
	pthread_t thread;
	bool started;
	sem_t ready;
	char err[256];

	struct io_uring ring;
	bool ring_ok, reg_ring, batched;
	/* the request rate min-wait is gated on: rx_msgs at the start of the
	 * current epoch, and the last whole epoch's count */
	uint64_t epoch_ns, epoch_rx, last_rx;

	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;
	int buf_size, buf_count, recycled;
	int32_t *next, *off, *end; /* by bid */
	int free;

	struct conn *conns; /* by slot */
	uint32_t *starved;  /* slots whose multishot recv ended with ENOBUFS */
	int nstarved;
	uint64_t open_conns;

	bool udp_armed;
	struct msghdr rx; /* the multishot recvmsg's template */
	struct msghdr *tx; /* by bid: each echo's header and vector */
	struct iovec *txiov;

	bool done;
	int failed;
	struct counters c, pub;
};

static struct loop loops[MAX_LOOPS];
static int nloops;

static int next_pow2(int n)
{
	int p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* busy_enough reports whether the last epoch's requests (or this one's,
 * if more) promise BATCH_MIN within BATCH_US; a vDSO clock read. */
static bool busy_enough(struct loop *l)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	if (ns - l->epoch_ns >= EPOCH_NS) {
		l->last_rx = l->c.rx_msgs - l->epoch_rx;
		l->epoch_rx = l->c.rx_msgs;
		l->epoch_ns = ns;
	}
	uint64_t reqs = l->c.rx_msgs - l->epoch_rx;
	if (l->last_rx > reqs)
		reqs = l->last_rx;
	return reqs * BATCH_US * 1000 >= (uint64_t)BATCH_MIN * EPOCH_NS;
}

/* enter flushes the SQ and makes one io_uring_enter: submit only, or
 * submit and wait (min-wait batching when the kernel has it). */
static int enter(struct loop *l, bool wait)
{
	struct io_uring_sq *sq = &l->ring.sq;
	unsigned tail = sq->sqe_tail, submit = tail - sq->sqe_head;
	sq->sqe_head = tail;
	__atomic_store_n(sq->ktail, tail, __ATOMIC_RELEASE);
	int fd = l->reg_ring ? l->ring.enter_ring_fd : l->ring.ring_fd;
	unsigned flags = l->reg_ring ? IORING_ENTER_REGISTERED_RING : 0;
	unsigned want = 0;
	void *arg = NULL;
	size_t argsz = 0;
	struct __kernel_timespec ts = {.tv_nsec = WAIT_NS};
	struct getevents_arg ga = {.min_wait_usec = BATCH_US, .ts = (uint64_t)(uintptr_t)&ts};
	if (wait) {
		flags |= IORING_ENTER_GETEVENTS;
		want = 1;
		if (l->batched && busy_enough(l)) {
			want = BATCH;
			/* An echo connection brings at most two completions a round
			 * (its send and its next request): waiting for more than can
			 * come only waits out BATCH_US. */
			if (!l->cfg->udp && l->open_conns > 0 && 2 * l->open_conns < want)
				want = 2 * l->open_conns;
			flags |= IORING_ENTER_EXT_ARG;
			arg = &ga;
			argsz = sizeof ga;
		}
	}
	l->c.syscalls++;
	long r = syscall(__NR_io_uring_enter, fd, submit, want, flags, arg, argsz);
	return r < 0 ? -errno : (int)r;
}

static bool retryable(int r)
{
	return r >= 0 || r == -ETIME || r == -EINTR || r == -EBUSY || r == -EAGAIN;
}

/* sqe returns a free SQE; a full SQ is submitted first (one enter more). */
static struct io_uring_sqe *sqe(struct loop *l)
{
	struct io_uring_sqe *s;
	while ((s = io_uring_get_sqe(&l->ring)) == NULL)
		if (!retryable(enter(l, false)))
			l->c.errors++;
	return s;
}

/* recycle gives bid back to the kernel; after_batch publishes it. */
static void recycle(struct loop *l, uint16_t bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * l->buf_size, l->buf_size, bid,
			      io_uring_buf_ring_mask(l->buf_count), l->recycled++);
	l->free++;
}

static void arm_stop(struct loop *l)
{
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_poll_add(s, l->efd, POLLIN);
	io_uring_sqe_set_data64(s, ud_make(OP_STOP, 0, 0, 0));
}

static void arm_accept(struct loop *l)
{
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_multishot_accept_direct(s, l->sock, NULL, NULL, 0);
	io_uring_sqe_set_data64(s, ud_make(OP_ACCEPT, 0, 0, 0));
}

static void arm_recv(struct loop *l, uint32_t slot)
{
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_recv_multishot(s, slot, NULL, 0, 0);
	s->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	s->buf_group = 0;
	io_uring_sqe_set_data64(s, ud_make(OP_RECV, l->conns[slot].gen, 0, slot));
}

static void arm_recvmsg(struct loop *l)
{
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_recvmsg_multishot(s, l->sock, &l->rx, 0);
	s->flags |= IOSQE_BUFFER_SELECT;
	s->buf_group = 0;
	io_uring_sqe_set_data64(s, ud_make(OP_RECVMSG, 0, 0, 0));
	l->udp_armed = true;
}

static struct conn *conn_of(struct loop *l, uint64_t ud)
{
	uint32_t slot = ud_slot(ud);
	if (slot >= MAX_CONNS)
		return NULL;
	struct conn *c = &l->conns[slot];
	return c->open && c->gen == ud_gen(ud) ? c : NULL;
}

/* send sends the head of the connection's queue from the buffer it was
 * received into. */
static void send_head(struct loop *l, uint32_t slot)
{
	struct conn *c = &l->conns[slot];
	uint16_t bid = (uint16_t)c->qhead;
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_send(s, slot, l->bufs + (size_t)bid * l->buf_size + l->off[bid], l->end[bid] - l->off[bid],
			   MSG_NOSIGNAL);
	s->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(s, ud_make(OP_SEND, c->gen, bid, slot));
	c->sending = true;
}

/* close_conn cancels what is armed on the connection and closes it, in one
 * linked pair of SQEs; the queued buffers go back now, the one in flight
 * when its send completes. */
static void close_conn(struct loop *l, uint32_t slot)
{
	struct conn *c = &l->conns[slot];
	c->open = false;
	l->c.closed++;
	l->open_conns--;
	int32_t b = c->qhead;
	if (c->sending && b >= 0)
		b = l->next[b];
	while (b >= 0) {
		int32_t nb = l->next[b];
		recycle(l, (uint16_t)b);
		b = nb;
	}
	c->qhead = c->qtail = -1;
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_cancel_fd(s, slot, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
	s->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(s, ud_make(OP_CLOSE, 0, 0, slot));
	s = sqe(l);
	io_uring_prep_close_direct(s, slot);
	s->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(s, ud_make(OP_CLOSE, 0, 0, slot));
}

static void on_accept(struct loop *l, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE))
		arm_accept(l);
	if (res < 0) {
		if (res != -ECANCELED)
			l->c.errors++;
		return;
	}
	uint32_t slot = (uint32_t)res;
	struct conn *c = &l->conns[slot];
	*c = (struct conn){.gen = c->gen + 1, .open = true, .qhead = -1, .qtail = -1};
	l->c.accepted++;
	l->open_conns++;
	arm_recv(l, slot);
}

/* on_recv: per packet no copy and no syscall; echo queues the buffer. */
static void on_recv(struct loop *l, uint64_t ud, int res, unsigned flags)
{
	uint32_t slot = ud_slot(ud);
	struct conn *c = conn_of(l, ud);
	if (res > 0) {
		if (!(flags & IORING_CQE_F_BUFFER))
			return;
		uint16_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
		l->free--;
		l->c.rx_bytes += res;
		l->c.rx_msgs++;
		if (!c || l->cfg->sink) {
			recycle(l, bid);
		} else {
			l->off[bid] = 0;
			l->end[bid] = res;
			l->next[bid] = -1;
			if (c->qtail < 0)
				c->qhead = bid;
			else
				l->next[c->qtail] = bid;
			c->qtail = bid;
			if (!c->sending)
				send_head(l, slot);
		}
		if (c && !(flags & IORING_CQE_F_MORE))
			arm_recv(l, slot); /* multishot ended without an error */
		return;
	}
	if (!c)
		return;
	if (res == 0) {
		c->eof = true;
		if (!c->sending)
			close_conn(l, slot);
	} else if (res == -ENOBUFS) {
		/* Every buffer is queued for sending: re-arm once some come
		 * back (after_batch), or the loop would spin on ENOBUFS. */
		if (!c->starved) {
			c->starved = true;
			l->starved[l->nstarved++] = slot;
		}
	} else if (res != -ECANCELED) {
		l->c.errors++;
		close_conn(l, slot);
	}
}

static void on_send(struct loop *l, uint64_t ud, int res)
{
	uint16_t bid = ud_bid(ud);
	uint32_t slot = ud_slot(ud);
	struct conn *c = conn_of(l, ud);
	if (!c) {
		recycle(l, bid); /* close_conn left the buffer in flight to us */
		return;
	}
	c->sending = false;
	if (res < 0) {
		if (res != -ECANCELED)
			l->c.errors++;
		close_conn(l, slot);
		return;
	}
	l->c.tx_bytes += res;
	l->c.tx_msgs++;
	/* A short send leaves the rest of the buffer at the head, to go next. */
	if (res < l->end[bid] - l->off[bid]) {
		l->off[bid] += res;
	} else {
		c->qhead = l->next[bid];
		if (c->qhead < 0)
			c->qtail = -1;
		recycle(l, bid);
	}
	if (c->qhead >= 0)
		send_head(l, slot);
	else if (c->eof)
		close_conn(l, slot);
}

/* on_recvmsg: one datagram; the echo's sendmsg points into its buffer. */
static void on_recvmsg(struct loop *l, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE)) {
		l->udp_armed = false;
		if (res != -ENOBUFS && l->free > 0)
			arm_recvmsg(l); /* else after_batch re-arms */
	}
	if (res < 0) {
		if (res != -ENOBUFS && res != -ECANCELED)
			l->c.errors++;
		return;
	}
	if (!(flags & IORING_CQE_F_BUFFER))
		return;
	uint16_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
	l->free--;
	char *buf = l->bufs + (size_t)bid * l->buf_size;
	struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, res, &l->rx);
	unsigned len = o ? io_uring_recvmsg_payload_length(o, res, &l->rx) : 0;
	if (!o || (o->flags & MSG_TRUNC) || len > (unsigned)l->cfg->max_msg) {
		l->c.dropped++;
		recycle(l, bid);
		return;
	}
	l->c.rx_bytes += len;
	l->c.rx_msgs++;
	if (l->cfg->sink) {
		recycle(l, bid);
		return;
	}
	struct msghdr *h = &l->tx[bid];
	l->txiov[bid] = (struct iovec){.iov_base = io_uring_recvmsg_payload(o, &l->rx), .iov_len = len};
	*h = (struct msghdr){.msg_name = io_uring_recvmsg_name(o),
			     .msg_namelen = o->namelen < sizeof(struct sockaddr_in) ? o->namelen : sizeof(struct sockaddr_in),
			     .msg_iov = &l->txiov[bid],
			     .msg_iovlen = 1};
	struct io_uring_sqe *s = sqe(l);
	io_uring_prep_sendmsg(s, l->sock, h, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(s, ud_make(OP_SENDMSG, 0, bid, 0));
}

static void on_sendmsg(struct loop *l, uint64_t ud, int res)
{
	if (res >= 0) {
		l->c.tx_bytes += res;
		l->c.tx_msgs++;
	} else if (res != -ECANCELED) {
		l->c.errors++;
	}
	recycle(l, ud_bid(ud));
}

static void reap(struct loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		uint64_t ud = cqe->user_data;
		n++;
		switch (ud_op(ud)) {
		case OP_STOP:
			l->done = true;
			break;
		case OP_ACCEPT:
			on_accept(l, cqe->res, cqe->flags);
			break;
		case OP_RECV:
			on_recv(l, ud, cqe->res, cqe->flags);
			break;
		case OP_SEND:
			on_send(l, ud, cqe->res);
			break;
		case OP_CLOSE: /* only failures post; the connection is gone anyway */
			break;
		case OP_RECVMSG:
			on_recvmsg(l, cqe->res, cqe->flags);
			break;
		case OP_SENDMSG:
			on_sendmsg(l, ud, cqe->res);
			break;
		}
	}
	io_uring_cq_advance(&l->ring, n);
}

/* after_batch does once per batch what would be waste per packet: publish
 * the recycled buffers, re-arm starved receives, publish the counters. */
static void after_batch(struct loop *l)
{
	if (l->recycled) {
		io_uring_buf_ring_advance(l->br, l->recycled);
		l->recycled = 0;
	}
	while (l->free > 0 && l->nstarved > 0) {
		uint32_t slot = l->starved[--l->nstarved];
		struct conn *c = &l->conns[slot];
		if (!c->starved)
			continue; /* closed, maybe reused, meanwhile */
		c->starved = false;
		if (c->open && !c->eof)
			arm_recv(l, slot);
	}
	if (l->cfg->udp && !l->udp_armed && l->free > 0)
		arm_recvmsg(l);
	counters_publish(&l->pub, &l->c);
}

static int setup(struct loop *l)
{
	const struct config *cfg = l->cfg;
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
			 IORING_SETUP_CQSIZE,
		.cq_entries = RING_ENTRIES * 8,
	};
	int r = io_uring_queue_init_params(RING_ENTRIES, &l->ring, &p);
	if (r < 0) {
		snprintf(l->err, sizeof l->err, "set up io_uring (SINGLE_ISSUER|DEFER_TASKRUN needs Linux 6.1): %s",
			 strerror(-r));
		return -1;
	}
	l->ring_ok = true;
	/* enter() publishes the SQ tail itself: the SQ array must map slot i
	 * to SQE i, as liburing's own flush assumes. */
	for (unsigned i = 0; i < l->ring.sq.ring_entries; i++)
		l->ring.sq.array[i] = i;
	l->batched = p.features & FEAT_MIN_TIMEOUT;
	l->reg_ring = io_uring_register_ring_fd(&l->ring) == 1;
	if (!cfg->udp) {
		int one = 1;
		if ((r = io_uring_register_files_sparse(&l->ring, MAX_CONNS)) < 0) {
			snprintf(l->err, sizeof l->err, "register %d direct descriptors: %s", MAX_CONNS, strerror(-r));
			return -1;
		}
		if (setsockopt(l->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
			snprintf(l->err, sizeof l->err, "set TCP_NODELAY: %s", strerror(errno));
			return -1;
		}
		l->conns = calloc(MAX_CONNS, sizeof *l->conns);
		l->starved = calloc(MAX_CONNS, sizeof *l->starved);
		if (!l->conns || !l->starved) {
			snprintf(l->err, sizeof l->err, "allocate connections: out of memory");
			return -1;
		}
	}
	/* As the Go plan: TCP buffers fit a message (4 KiB..64 KiB); UDP ones
	 * the recvmsg header, the peer's address and one byte over the limit. */
	if (cfg->udp) {
		l->buf_size = next_pow2(RECVMSG_HEADROOM + cfg->max_msg + 1);
	} else {
		l->buf_size = next_pow2(cfg->msg_size);
		l->buf_size = l->buf_size < 4096 ? 4096 : l->buf_size > 65536 ? 65536 : l->buf_size;
	}
	l->buf_count = next_pow2((8 << 20) / l->buf_size);
	l->buf_count = l->buf_count < 256 ? 256 : l->buf_count > 4096 ? 4096 : l->buf_count;
	l->br_bytes = (size_t)l->buf_count * sizeof(struct io_uring_buf);
	l->br = mmap(NULL, l->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->br == MAP_FAILED) {
		l->br = NULL;
		snprintf(l->err, sizeof l->err, "map buffer ring: %s", strerror(errno));
		return -1;
	}
	l->bufs = malloc((size_t)l->buf_count * l->buf_size);
	l->next = calloc(l->buf_count, sizeof *l->next);
	l->off = calloc(l->buf_count, sizeof *l->off);
	l->end = calloc(l->buf_count, sizeof *l->end);
	l->tx = calloc(l->buf_count, sizeof *l->tx);
	l->txiov = calloc(l->buf_count, sizeof *l->txiov);
	if (!l->bufs || !l->next || !l->off || !l->end || !l->tx || !l->txiov) {
		snprintf(l->err, sizeof l->err, "allocate buffers: out of memory");
		return -1;
	}
	io_uring_buf_ring_init(l->br);
	struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)l->br, .ring_entries = l->buf_count, .bgid = 0};
	if ((r = io_uring_register_buf_ring(&l->ring, &reg, 0)) < 0) {
		snprintf(l->err, sizeof l->err, "register buffer ring (needs Linux 5.19): %s", strerror(-r));
		return -1;
	}
	for (int i = 0; i < l->buf_count; i++)
		recycle(l, i);
	l->free = l->buf_count;
	l->rx.msg_namelen = sizeof(struct sockaddr_in);
	arm_stop(l);
	if (cfg->udp)
		arm_recvmsg(l);
	else
		arm_accept(l);
	after_batch(l);
	if ((r = enter(l, false)) < 0) {
		snprintf(l->err, sizeof l->err, "submit: %s", strerror(-r));
		return -1;
	}
	return 0;
}

static void *loop_run(void *arg)
{
	struct loop *l = arg;
	int r = setup(l);
	sem_post(&l->ready);
	if (r < 0)
		return NULL;
	for (;;) {
		reap(l);
		if (l->done)
			break;
		after_batch(l);
		if (!retryable(r = enter(l, true))) {
			fprintf(stderr, "c-uring: enter io_uring: %s\n", strerror(-r));
			l->failed = 1;
			break;
		}
	}
	counters_publish(&l->pub, &l->c);
	return NULL;
}

static void loop_release(struct loop *l)
{
	/* Closing the ring cancels every request and drops the direct
	 * descriptors; only then may the buffers it wrote into go. */
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring);
	if (l->br)
		munmap(l->br, l->br_bytes);
	free(l->bufs);
	free(l->next);
	free(l->off);
	free(l->end);
	free(l->tx);
	free(l->txiov);
	free(l->conns);
	free(l->starved);
	if (l->sock >= 0)
		close(l->sock);
	if (l->efd >= 0)
		close(l->efd);
	sem_destroy(&l->ready);
}

int server_start(const struct config *cfg, int *port, char *err, size_t errlen)
{
	int n = cfg->ncpus ? cfg->ncpus : 1;
	*port = cfg->port;
	for (int i = 0; i < n; i++) {
		struct loop *l = &loops[i];
		*l = (struct loop){.cfg = cfg, .cpu = cfg->ncpus ? cfg->cpus[i] : -1, .sock = -1, .efd = -1};
		sem_init(&l->ready, 0, 0);
		nloops = i + 1;
		/* Blocking sockets: io_uring polls them itself. */
		l->sock = listen_socket(cfg, *port, n > 1, 0, cfg->udp ? 4 << 20 : 0, port, err, errlen);
		if (l->sock < 0)
			return -1;
		if ((l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
			snprintf(err, errlen, "create eventfd: %s", strerror(errno));
			return -1;
		}
		int e = start_thread(&l->thread, l->cpu, loop_run, l);
		if (e != 0) {
			snprintf(err, errlen, "start loop on CPU %d: %s", l->cpu, strerror(e));
			return -1;
		}
		l->started = true;
		sem_wait(&l->ready);
		if (l->err[0]) {
			snprintf(err, errlen, "%s", l->err);
			return -1;
		}
	}
	return 0;
}

void server_counters(struct counters *sum)
{
	for (int i = 0; i < nloops; i++)
		counters_add(sum, &loops[i].pub);
}

int server_stop(void)
{
	int failed = 0;
	uint64_t one = 1;
	for (int i = 0; i < nloops; i++)
		if (loops[i].efd >= 0 && write(loops[i].efd, &one, sizeof one) < 0)
			failed = 1;
	for (int i = 0; i < nloops; i++) {
		if (loops[i].started)
			pthread_join(loops[i].thread, NULL);
		failed |= loops[i].failed;
		loop_release(&loops[i]);
	}
	return failed ? -1 : 0;
}
