/*
 * serve.c: main() of a C baseline. It speaks the line protocol of
 * `ringbench serve` (harness/serve.go), so the harness starts, meters and
 * stops a baseline as it does a Go backend and reads the baseline's own
 * syscall count:
 *
 *  1. parse the command line of `ringbench serve` (the flags the harness
 *     passes; --backend and --iface are accepted and ignored, --opt is an
 *     error: a baseline takes no options);
 *  2. block SIGTERM/SIGINT (every loop thread inherits the mask) and start
 *     the server's loops;
 *  3. print {"port":N}, or {"error":"..."} and exit 1;
 *  4. answer each "counters" line with one JSON line; at EOF on stdin or a
 *     signal, stop the loops and exit.
 */
#define _GNU_SOURCE
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

void counters_publish(struct counters *pub, const struct counters *c)
{
	const uint64_t *src = (const uint64_t *)c;
	uint64_t *dst = (uint64_t *)pub;
	for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

void counters_add(struct counters *sum, const struct counters *pub)
{
	const uint64_t *src = (const uint64_t *)pub;
	uint64_t *dst = (uint64_t *)sum;
	for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void errorf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

int listen_socket(const struct config *cfg, int port, int reuseport, int nonblock, int rcvbuf,
		  int *bound, char *err, size_t errlen)
{
	int type = (cfg->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
	int fd = socket(AF_INET, type, 0), one = 1;
	if (fd < 0) {
		errorf(err, errlen, "create socket: %s", strerror(errno));
		return -1;
	}
	/* As internal/sockets: SO_REUSEADDR for TCP only (on UDP it would let
	 * two servers share a port silently). */
	if (!cfg->udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
		errorf(err, errlen, "set SO_REUSEADDR: %s", strerror(errno));
		goto fail;
	}
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
		errorf(err, errlen, "set SO_REUSEPORT: %s", strerror(errno));
		goto fail;
	}
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* best effort */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = cfg->addr};
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		errorf(err, errlen, "bind port %d: %s", port, strerror(errno));
		goto fail;
	}
	if (!cfg->udp && listen(fd, SOMAXCONN) < 0) {
		errorf(err, errlen, "listen: %s", strerror(errno));
		goto fail;
	}
	socklen_t n = sizeof sa;
	if (getsockname(fd, (struct sockaddr *)&sa, &n) < 0) {
		errorf(err, errlen, "get socket name: %s", strerror(errno));
		goto fail;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
fail:
	close(fd);
	return -1;
}

int start_thread(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int err = pthread_attr_init(&attr);
	if (err)
		return err;
	if (cpu >= 0) {
		/* Pinned from its first instruction, as taskset pins the process. */
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		err = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	}
	if (!err)
		err = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return err;
}

/* fail prints the protocol's error line and exits. */
static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("{\"error\":\"");
	for (char *p = msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		putchar((unsigned char)*p < 0x20 ? ' ' : *p);
	}
	printf("\"}\n");
	fflush(stdout);
	exit(1);
}

static int parse_int(const char *name, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 0 || n > 1 << 30)
		fail("parse --%s %s: not a non-negative integer", name, v);
	return (int)n;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->addr = htonl(INADDR_ANY);
	for (int i = 1; i < argc; i++) {
		char *name = argv[i], *val;
		if (strncmp(name, "--", 2) == 0)
			name += 2;
		else if (name[0] == '-')
			name += 1;
		else
			fail("parse arguments: unexpected %s", argv[i]);
		char *eq = strchr(name, '=');
		if (eq) {
			*eq = '\0';
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fail("parse arguments: --%s needs a value", name);
		}
		if (strcmp(name, "proto") == 0) {
			if (strcmp(val, "tcp") == 0)
				cfg->udp = 0;
			else if (strcmp(val, "udp") == 0)
				cfg->udp = 1;
			else
				fail("check config: unknown protocol \"%s\"", val);
		} else if (strcmp(name, "service") == 0) {
			if (strcmp(val, "echo") == 0)
				cfg->sink = 0;
			else if (strcmp(val, "sink") == 0)
				cfg->sink = 1;
			else
				fail("check config: a C baseline serves echo and sink, not \"%s\"", val);
		} else if (strcmp(name, "host") == 0) {
			if (*val && inet_pton(AF_INET, val, &cfg->addr) != 1)
				fail("parse host: %s is not an IPv4 address", val);
		} else if (strcmp(name, "port") == 0) {
			cfg->port = parse_int(name, val);
		} else if (strcmp(name, "cpus") == 0) {
			for (char *tok = strtok(val, ","); tok; tok = strtok(NULL, ",")) {
				if (cfg->ncpus == MAX_LOOPS)
					fail("parse --cpus: more than %d CPUs", MAX_LOOPS);
				cfg->cpus[cfg->ncpus++] = parse_int(name, tok);
			}
		} else if (strcmp(name, "msg-size") == 0) {
			cfg->msg_size = parse_int(name, val);
		} else if (strcmp(name, "max-msg") == 0) {
			cfg->max_msg = parse_int(name, val);
		} else if (strcmp(name, "backend") == 0 || strcmp(name, "iface") == 0) {
			/* The serve command line's; a kernel path has no interface. */
		} else if (strcmp(name, "opt") == 0) {
			fail("check config: a C baseline takes no options, got %s", val);
		} else {
			fail("parse arguments: unknown flag --%s", name);
		}
	}
	if (cfg->msg_size == 0)
		cfg->msg_size = DEFAULT_MSG_SIZE;
	if (cfg->max_msg == 0)
		cfg->max_msg = MAX_UDP_PAYLOAD;
}

static void print_counters(void)
{
	struct counters c = {0};
	server_counters(&c);
	printf("{\"syscalls\":%lu,\"accepted\":%lu,\"closed\":%lu,\"rx_bytes\":%lu,\"tx_bytes\":%lu,"
	       "\"rx_msgs\":%lu,\"tx_msgs\":%lu,\"dropped\":%lu,\"errors\":%lu}\n",
	       c.syscalls, c.accepted, c.closed, c.rx_bytes, c.tx_bytes, c.rx_msgs, c.tx_msgs, c.dropped, c.errors);
	fflush(stdout);
}

/* handle answers the complete lines in buf[0:*len] and keeps the rest. */
static void handle(char *buf, size_t *len)
{
	char *start = buf, *nl;
	while ((nl = memchr(start, '\n', buf + *len - start)) != NULL) {
		*nl = '\0';
		char *line = start;
		start = nl + 1;
		while (*line == ' ' || *line == '\t' || *line == '\r')
			line++;
		size_t n = strlen(line);
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strcmp(line, "counters") == 0)
			print_counters();
		else if (n > 0) {
			printf("{\"error\":\"unknown command\"}\n");
			fflush(stdout);
		}
	}
	*len = buf + *len - start;
	memmove(buf, start, *len);
}

int main(int argc, char **argv)
{
	struct config cfg;
	parse_args(argc, argv, &cfg);

	/* A write to a reset connection must fail with EPIPE, not kill us (Go
	 * ignores SIGPIPE on sockets too). */
	signal(SIGPIPE, SIG_IGN);
	/* Many connections, and c-uring's table of direct descriptors, need
	 * more than the default 1024 files; Go's runtime raises the soft
	 * limit to the hard one at start-up, so the Go backends have it. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0)
		fail("create signalfd: %s", strerror(errno));

	char err[256] = "";
	int port = 0;
	if (server_start(&cfg, &port, err, sizeof err) < 0) {
		server_stop();
		fail("%s", err);
	}
	printf("{\"port\":%d}\n", port);
	fflush(stdout);

	char buf[4096];
	size_t len = 0;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents) {
			if (len == sizeof buf)
				len = 0; /* a line longer than any command: drop it */
			ssize_t n = read(0, buf + len, sizeof buf - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			handle(buf, &len);
		}
	}
	return server_stop() < 0 ? 1 : 0;
}
