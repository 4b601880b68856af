/*
 * c-epoll: the epoll path without Go. The same design as the Go epoll
 * backend (epoll/), so that the difference between the two is what Go's
 * runtime and code generation cost, not a different server:
 *
 *  - edge-triggered epoll (EPOLLET) over non-blocking sockets, one loop per
 *    CPU on its own pinned thread, each with its own SO_REUSEPORT socket;
 *    edge-triggered because that is what the Go backend does, and it saves
 *    the re-arming epoll_wait a level-triggered loop pays when a socket
 *    stays readable (a short read marks the socket drained, as there);
 *  - TCP: one read and one write syscall per echo, into a buffer per
 *    connection of max(msg size, 32 KiB), TCP_NODELAY; a socket gets at
 *    most IO_BUDGET reads and writes per turn, then waits on the loop's
 *    again list so one busy peer cannot starve the others;
 *  - UDP: recvmmsg and sendmmsg batches of UDP_BATCH datagrams, echoed in
 *    place (no copy); an oversize datagram is dropped and counted.
 *
 * Every syscall on the data path is counted, as the Go backend counts its
 * own. Sink reads and discards; source is not served.
 */
#define _GNU_SOURCE
#include "serve.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define UDP_BATCH 32
#define IO_BUDGET 16

struct conn {
	int fd;
	char *buf; /* kept when the connection closes, for the next on its fd */
	int off, end; /* buf[off:end] is echo output not yet written */
	bool open, readable, writable, hungup, queued;
};

struct udp {
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec iov[UDP_BATCH], oiov[UDP_BATCH];
	struct sockaddr_in names[UDP_BATCH];
	char *bufs;
	bool readable;
};

struct loop {
	const struct config *cfg;
	int cpu, epfd, wakefd, sock;
	pthread_t thread;
	bool started;
	int conn_buffer;
	struct conn **conns; /* by fd */
	int nconns;
	int *again, *spare; /* fds whose turn ended with work left */
	int nagain, cap_again;
	bool udp_again;
	struct udp *udp;
	struct counters c, pub;
	int failed;
};

static struct loop loops[MAX_LOOPS];
static int nloops;

static void fail_conn(struct loop *l, struct conn *c);

static int watch(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void close_conn(struct loop *l, struct conn *c)
{
	close(c->fd);
	l->c.syscalls++;
	l->c.closed++;
	c->open = false;
}

static void fail_conn(struct loop *l, struct conn *c)
{
	l->c.errors++;
	close_conn(l, c);
}

static void accept_all(struct loop *l)
{
	for (;;) {
		int fd = accept4(l->sock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		l->c.syscalls++;
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				l->c.errors++; /* EMFILE...: the backlog waits for the next edge */
			return;
		}
		if (!l->cfg->sink) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			l->c.syscalls++;
		}
		if (fd >= l->nconns) {
			int n = l->nconns ? l->nconns : 64;
			while (n <= fd)
				n *= 2;
			struct conn **cs = realloc(l->conns, n * sizeof *cs);
			if (!cs) {
				close(fd);
				l->c.errors++;
				continue;
			}
			memset(cs + l->nconns, 0, (n - l->nconns) * sizeof *cs);
			l->conns = cs;
			l->nconns = n;
		}
		struct conn *c = l->conns[fd];
		if (!c && (c = l->conns[fd] = calloc(1, sizeof *c)) != NULL && (c->buf = malloc(l->conn_buffer)) == NULL) {
			free(c);
			c = l->conns[fd] = NULL;
		}
		if (!c) {
			close(fd);
			l->c.errors++;
			continue;
		}
		char *buf = c->buf;
		*c = (struct conn){.fd = fd, .buf = buf, .open = true};
		int err = watch(l, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
		l->c.syscalls++;
		if (err < 0) {
			fail_conn(l, c);
			l->c.accepted++; /* closed above counts it */
			continue;
		}
		l->c.accepted++;
	}
}

/* conn_read reads once: >0 bytes, or 0 when there is nothing (more) to
 * read or the connection is gone (closed at EOF, or failed). */
static int conn_read(struct loop *l, struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->buf, l->conn_buffer);
		l->c.syscalls++;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->readable = false;
			return 0;
		}
		if (n < 0) {
			fail_conn(l, c);
			return 0;
		}
		if (n == 0) {
			/* EOF: all earlier input is served by now, so a half-closed
			 * peer has had its echo. */
			close_conn(l, c);
			return 0;
		}
		l->c.rx_bytes += n;
		l->c.rx_msgs++;
		/* A short read drained the socket: new bytes raise a new edge.
		 * Not after a hang-up, whose EOF no edge will announce. */
		if (n < l->conn_buffer && !c->hungup)
			c->readable = false;
		return (int)n;
	}
}

/* conn_write writes once: the bytes written, or 0 when the socket is full
 * (wait for EPOLLOUT) or the connection failed. */
static int conn_write(struct loop *l, struct conn *c, const char *p, int len)
{
	for (;;) {
		ssize_t n = write(c->fd, p, len);
		l->c.syscalls++;
		if (n >= 0) {
			l->c.tx_bytes += n;
			l->c.tx_msgs++;
			if (n < len)
				c->writable = false;
			return (int)n;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			c->writable = false;
		else
			fail_conn(l, c);
		return 0;
	}
}

/* conn_step serves the connection until it would block or its budget is
 * spent; it returns true when work is left. Per echo: a read and a write. */
static bool conn_step(struct loop *l, struct conn *c)
{
	for (int i = 0; i < IO_BUDGET; i++) {
		if (!c->open)
			return false;
		if (c->off < c->end) {
			if (!c->writable)
				return false; /* EPOLLOUT resumes it */
			int n = conn_write(l, c, c->buf + c->off, c->end - c->off);
			if (n == 0)
				return false;
			c->off += n;
			continue;
		}
		if (!c->readable)
			return false;
		int n = conn_read(l, c);
		if (n == 0)
			return false;
		if (!l->cfg->sink) {
			c->off = 0;
			c->end = n;
		}
	}
	return c->open;
}

static void conn_serve(struct loop *l, struct conn *c)
{
	if (conn_step(l, c) && !c->queued) {
		if (l->nagain == l->cap_again) {
			int n = l->cap_again ? 2 * l->cap_again : 64;
			int *a = realloc(l->again, n * sizeof *a), *s = realloc(l->spare, n * sizeof *s);
			if (a)
				l->again = a;
			if (s)
				l->spare = s;
			if (!a || !s)
				return; /* the next edge serves it */
			l->cap_again = n;
		}
		c->queued = true;
		l->again[l->nagain++] = c->fd;
	}
}

static void conn_ready(struct loop *l, struct conn *c, uint32_t ev)
{
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hungup = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	conn_serve(l, c);
}

/* serve_again gives every connection that ran out of budget another turn. */
static void serve_again(struct loop *l)
{
	int n = l->nagain, *list = l->again;
	l->again = l->spare;
	l->spare = list;
	l->nagain = 0;
	for (int i = 0; i < n; i++) {
		struct conn *c = l->conns[list[i]];
		if (c && c->queued) {
			c->queued = false;
			if (c->open)
				conn_serve(l, c);
		}
	}
}

/* udp_receive takes one batch, drops oversize datagrams and echoes the
 * rest with sendmmsg from the buffers they arrived in. */
static void udp_receive(struct loop *l)
{
	struct udp *u = l->udp;
	for (int i = 0; i < UDP_BATCH; i++) {
		u->in[i].msg_hdr.msg_namelen = sizeof u->names[i];
		u->in[i].msg_hdr.msg_flags = 0;
	}
	int n = recvmmsg(l->sock, u->in, UDP_BATCH, 0, NULL);
	l->c.syscalls++;
	if (n < 0) {
		if (errno == EAGAIN)
			u->readable = false;
		else if (errno != EINTR)
			l->c.errors++;
		return;
	}
	if (n < UDP_BATCH)
		u->readable = false; /* drained: later datagrams raise an edge */
	int kept = 0;
	for (int i = 0; i < n; i++) {
		unsigned size = u->in[i].msg_len;
		if ((u->in[i].msg_hdr.msg_flags & MSG_TRUNC) || size > (unsigned)l->cfg->max_msg) {
			l->c.dropped++;
			continue;
		}
		l->c.rx_bytes += size;
		l->c.rx_msgs++;
		if (l->cfg->sink)
			continue;
		struct msghdr *h = &u->out[kept].msg_hdr;
		h->msg_name = &u->names[i];
		h->msg_namelen = u->in[i].msg_hdr.msg_namelen;
		u->oiov[kept].iov_base = u->iov[i].iov_base;
		u->oiov[kept].iov_len = size;
		kept++;
	}
	int sent = 0;
	while (sent < kept) {
		int m = sendmmsg(l->sock, u->out + sent, kept - sent, 0);
		l->c.syscalls++;
		if (m > 0) {
			for (int i = sent; i < sent + m; i++)
				l->c.tx_bytes += u->oiov[i].iov_len;
			l->c.tx_msgs += m;
			sent += m;
		} else if (m < 0 && errno == EINTR) {
			continue;
		} else if (m < 0 && errno == EAGAIN) {
			/* No room: dropped, as the network would drop them. */
			l->c.errors += kept - sent;
			break;
		} else {
			l->c.errors++; /* a refused datagram (a firewall's EPERM) */
			sent++;
		}
	}
}

static void udp_step(struct loop *l)
{
	for (int i = 0; i < IO_BUDGET; i++) {
		if (!l->udp->readable)
			return;
		udp_receive(l);
	}
	l->udp_again = true;
}

static void *loop_run(void *arg)
{
	struct loop *l = arg;
	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int timeout = (l->nagain > 0 || l->udp_again) ? 0 : -1;
		l->c.syscalls++;
		counters_publish(&l->pub, &l->c);
		int n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "c-epoll: wait for events: %s\n", strerror(errno));
			l->failed = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == l->wakefd) {
				counters_publish(&l->pub, &l->c);
				return NULL;
			}
			if (fd == l->sock && l->udp) {
				if (events[i].events & (EPOLLIN | EPOLLERR))
					l->udp->readable = true;
				udp_step(l);
			} else if (fd == l->sock) {
				accept_all(l);
			} else if (fd < l->nconns && l->conns[fd] && l->conns[fd]->open) {
				conn_ready(l, l->conns[fd], events[i].events);
			}
		}
		if (l->udp_again) {
			l->udp_again = false;
			udp_step(l);
		}
		if (l->nagain > 0)
			serve_again(l);
	}
	counters_publish(&l->pub, &l->c);
	return NULL;
}

static int loop_init(struct loop *l, const struct config *cfg, int cpu, int *port, char *err, size_t errlen)
{
	*l = (struct loop){.cfg = cfg, .cpu = cpu, .epfd = -1, .wakefd = -1, .sock = -1};
	l->conn_buffer = cfg->msg_size > (32 << 10) ? cfg->msg_size : 32 << 10;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    watch(l, l->wakefd, EPOLLIN) < 0) {
		snprintf(err, errlen, "create epoll: %s", strerror(errno));
		return -1;
	}
	int bound;
	l->sock = listen_socket(cfg, *port, cfg->ncpus > 1, 1, 0, &bound, err, errlen);
	if (l->sock < 0)
		return -1;
	*port = bound;
	if (cfg->udp) {
		struct udp *u = l->udp = calloc(1, sizeof *u);
		int size = cfg->max_msg + 1; /* one over: an oversize datagram shows */
		if (!u || !(u->bufs = malloc((size_t)UDP_BATCH * size))) {
			snprintf(err, errlen, "allocate UDP batch: out of memory");
			return -1;
		}
		for (int i = 0; i < UDP_BATCH; i++) {
			u->iov[i] = (struct iovec){.iov_base = u->bufs + (size_t)i * size, .iov_len = size};
			u->in[i].msg_hdr = (struct msghdr){.msg_name = &u->names[i], .msg_iov = &u->iov[i], .msg_iovlen = 1};
			u->out[i].msg_hdr = (struct msghdr){.msg_iov = &u->oiov[i], .msg_iovlen = 1};
		}
	}
	if (watch(l, l->sock, EPOLLIN | EPOLLET) < 0) {
		snprintf(err, errlen, "add fd to epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void loop_release(struct loop *l)
{
	for (int fd = 0; fd < l->nconns; fd++) {
		struct conn *c = l->conns[fd];
		if (!c)
			continue;
		if (c->open)
			close(c->fd);
		free(c->buf);
		free(c);
	}
	free(l->conns);
	free(l->again);
	free(l->spare);
	if (l->udp)
		free(l->udp->bufs);
	free(l->udp);
	for (int *fd = &l->epfd; fd; fd = fd == &l->epfd ? &l->wakefd : fd == &l->wakefd ? &l->sock : NULL)
		if (*fd >= 0)
			close(*fd);
}

int server_start(const struct config *cfg, int *port, char *err, size_t errlen)
{
	int n = cfg->ncpus ? cfg->ncpus : 1;
	*port = cfg->port;
	for (int i = 0; i < n; i++) {
		nloops = i + 1;
		if (loop_init(&loops[i], cfg, cfg->ncpus ? cfg->cpus[i] : -1, port, err, errlen) < 0)
			return -1;
	}
	for (int i = 0; i < n; i++) {
		int e = start_thread(&loops[i].thread, loops[i].cpu, loop_run, &loops[i]);
		if (e != 0) {
			snprintf(err, errlen, "start loop on CPU %d: %s", loops[i].cpu, strerror(e));
			return -1;
		}
		loops[i].started = true;
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
		if (loops[i].wakefd >= 0 && write(loops[i].wakefd, &one, sizeof one) < 0)
			failed = 1;
	for (int i = 0; i < nloops; i++) {
		if (loops[i].started)
			pthread_join(loops[i].thread, NULL);
		failed |= loops[i].failed;
		loop_release(&loops[i]);
	}
	return failed ? -1 : 0;
}
