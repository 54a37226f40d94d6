/* SPDX-License-Identifier: ISC */
/*
 * load: the benchmark's own client and upstream, Linux only (epoll).
 *
 *   load serve PORT MODE [pp]      upstream; MODE is sink, echo, rr (read
 *                                  64 bytes, answer 64, close) or source:N
 *                                  (send N bytes, close).  pp: skip a PROXY
 *                                  v2 header first.  Runs until killed.
 *   load up PORT BYTES             one connection: send BYTES, wait for EOF
 *   load down PORT                 one connection: read until EOF
 *   load rr PORT CONC SECS client|server
 *                                  CONC clients loop: connect, 64 B, 64 B
 *                                  back, close; sources 127.0.0.1-16
 *   load flood PORT CONC SECS FIRST N
 *                                  rr (client closes) from N source
 *                                  addresses counting from 127.64.0.0 +
 *                                  FIRST; a connection reset or closed
 *                                  before its answer counts as refused
 *   load ping PORT N               1-byte round trips on one connection
 *   load idle PORT N               open N connections, one echo each, hold
 *                                  them until stdin closes; "ready" on stdout
 *   load multi PORT CONC SECS      CONC connections sending at once
 *
 * Client results are one line of key=value on stdout.  Every address is
 * 127.0.0.1.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BIG	(256 * 1024)
#define MSG	64

static char buf[BIG];
static unsigned src_base, src_n = 16;	/* rr's sources: base + 1 .. n */

static void
die(const char *what)
{
	fprintf(stderr, "load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct sockaddr_in
addr(int port, int host)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(0x7f000000u | ((unsigned)host & 0xffffff));
	return a;
}

/* A blocking connection from 127.0.0.src (0: any) to port. */
static int
dial(int port, int src, int nonblock)
{
	struct sockaddr_in a = addr(port, 1), s;
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0),
	    0), on = 1;

	if (fd == -1)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (src > 0) {
		s = addr(0, src);
		/* Pick the port at connect(), by the whole 4-tuple, so that
		 * TIME_WAIT from earlier cells does not exhaust it. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
		    sizeof(on));
		if (bind(fd, (struct sockaddr *)&s, sizeof(s)) == -1)
			die("bind");
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1 &&
	    errno != EINPROGRESS)
		die("connect");
	return fd;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return n ? v[i < n ? i : n - 1] : 0;
}

/* ---- the upstream ---- */

enum smode { M_SINK, M_ECHO, M_RR, M_SOURCE };

struct sc {
	int fd;
	int pp;			/* PROXY header bytes still to skip; -1 unknown */
	long long left;		/* source: bytes still to send */
	int rn;			/* rr: bytes read */
	int want_out;
	size_t on, off;		/* echo: pending bytes in ob */
	char ob[BIG / 4];
};

static void
sc_close(int ep, struct sc *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Skip the PROXY v2 header: 16 bytes, then the length they give. */
static int
skip_pp(struct sc *c)
{
	unsigned char h[16];
	ssize_t n;

	if (c->pp == -1) {
		n = recv(c->fd, h, 16, MSG_PEEK);
		if (n < 16)
			return n == 0 ? -1 : 0;
		c->pp = 16 + (h[14] << 8 | h[15]);
	}
	while (c->pp > 0) {
		n = read(c->fd, buf, (size_t)c->pp);
		if (n <= 0)
			return n == 0 || errno != EAGAIN ? -1 : 0;
		c->pp -= (int)n;
	}
	return 1;
}

static void
sc_out(int ep, struct sc *c, int on)
{
	struct epoll_event ev;

	if (c->want_out == on)
		return;
	c->want_out = on;
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Returns -1 when the connection is done. */
static int
sc_step(int ep, struct sc *c, enum smode m)
{
	ssize_t n;
	int r;

	if (c->pp != 0 && (r = skip_pp(c)) != 1)
		return r;
	switch (m) {
	case M_SINK:
		for (;;) {
			n = read(c->fd, buf, sizeof(buf));
			if (n == 0 || (n == -1 && errno != EAGAIN))
				return -1;
			if (n == -1)
				return 0;
		}
	case M_SOURCE:
		while (c->left > 0) {
			n = write(c->fd, buf, c->left < BIG ? (size_t)c->left :
			    BIG);
			if (n == -1) {
				if (errno != EAGAIN)
					return -1;
				sc_out(ep, c, 1);
				return 0;
			}
			c->left -= n;
		}
		return -1;
	case M_RR:
		while (c->rn < MSG) {
			n = read(c->fd, buf, (size_t)(MSG - c->rn));
			if (n == 0 || (n == -1 && errno != EAGAIN))
				return -1;
			if (n == -1)
				return 0;
			c->rn += (int)n;
		}
		if (write(c->fd, buf, MSG) != MSG)
			return -1;
		return -1;	/* the server closes first */
	case M_ECHO:
		for (;;) {
			if (c->on > c->off) {
				n = write(c->fd, c->ob + c->off, c->on - c->off);
				if (n == -1 && errno == EAGAIN) {
					sc_out(ep, c, 1);
					return 0;
				}
				if (n <= 0)
					return -1;
				c->off += (size_t)n;
				continue;
			}
			sc_out(ep, c, 0);
			c->on = c->off = 0;
			n = read(c->fd, c->ob, sizeof(c->ob));
			if (n == 0 || (n == -1 && errno != EAGAIN))
				return -1;
			if (n == -1)
				return 0;
			c->on = (size_t)n;
		}
	}
	return -1;
}

static int
serve(int port, const char *mode, int pp)
{
	struct sockaddr_in a = addr(port, 1);
	struct epoll_event ev, evs[256];
	enum smode m;
	long long size = 0;
	struct sc *c;
	int lfd, ep, fd, i, n, on = 1;

	if (strcmp(mode, "sink") == 0)
		m = M_SINK;
	else if (strcmp(mode, "echo") == 0)
		m = M_ECHO;
	else if (strcmp(mode, "rr") == 0)
		m = M_RR;
	else if (strncmp(mode, "source:", 7) == 0) {
		m = M_SOURCE;
		size = atoll(mode + 7);
	} else {
		fprintf(stderr, "load: unknown mode %s\n", mode);
		return 2;
	}
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(lfd, 4096) == -1)
		die("listen");
	if ((ep = epoll_create1(0)) == -1)
		die("epoll");
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr != NULL) {
				c = evs[i].data.ptr;
				if (sc_step(ep, c, m) == -1)
					sc_close(ep, c);
				continue;
			}
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK))
			    != -1) {
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
				    sizeof(on));
				if ((c = calloc(1, sizeof(*c))) == NULL)
					die("calloc");
				c->fd = fd;
				c->pp = pp ? -1 : 0;
				c->left = size;
				ev.events = EPOLLIN | (m == M_SOURCE ? EPOLLOUT : 0);
				c->want_out = m == M_SOURCE;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				if (m == M_SOURCE && sc_step(ep, c, m) == -1)
					sc_close(ep, c);
			}
		}
	}
}

/* ---- clients ---- */

static int
up(int port, long long bytes)
{
	int fd = dial(port, 0, 0);
	long long left = bytes;
	double t0 = now(), t;
	ssize_t n;

	while (left > 0) {
		n = write(fd, buf, left < BIG ? (size_t)left : BIG);
		if (n <= 0)
			die("write");
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	t = now() - t0;
	printf("bytes=%lld secs=%.4f gbps=%.4f\n", bytes, t, bytes / t / 1e9);
	return 0;
}

static int
down(int port)
{
	int fd = dial(port, 0, 0);
	long long got = 0;
	double t0 = now(), t;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += n;
	t = now() - t0;
	printf("bytes=%lld secs=%.4f gbps=%.4f\n", got, t, got / t / 1e9);
	return 0;
}

static int
ping(int port, int count)
{
	int fd = dial(port, 0, 0), i;
	double *v = malloc(sizeof(double) * (size_t)count), t0;
	char b = 'x';

	for (i = 0; i < count + 100; i++) {
		t0 = now();
		if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
			die("ping");
		if (i >= 100)		/* warm-up rounds are not counted */
			v[i - 100] = now() - t0;
	}
	qsort(v, (size_t)count, sizeof(double), cmp_d);
	printf("count=%d p50_us=%.1f p99_us=%.1f\n", count,
	    pct(v, (size_t)count, 0.5) * 1e6, pct(v, (size_t)count, 0.99) * 1e6);
	return 0;
}

/* One rr client connection. */
struct rc {
	int fd, st, n;		/* st 0: connecting, 1: reading, 2: wait EOF */
	double t0;
};

static void
rc_start(int ep, struct rc *c, int port, int *src)
{
	struct epoll_event ev;

	*src = *src % (int)src_n + 1;
	c->fd = dial(port, (int)src_base + *src, 1);
	c->st = 0;
	c->n = 0;
	c->t0 = now();
	ev.events = EPOLLOUT | EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int
rr(int port, int conc, double secs, int server_closes)
{
	struct epoll_event evs[256], ev;
	struct rc *cs = calloc((size_t)conc, sizeof(*cs)), *c;
	size_t nv = 0, cap = 1 << 20;
	double *v = malloc(sizeof(double) * cap), t0 = now(), end = t0 + secs;
	int ep = epoll_create1(0), i, n, src = 0, errs = 0;
	ssize_t r;

	for (i = 0; i < conc; i++)
		rc_start(ep, &cs[i], port, &src);
	while (now() < end) {
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (c->st == 0) {
				if (evs[i].events & (EPOLLERR | EPOLLHUP))
					goto failed;
				if (write(c->fd, buf, MSG) != MSG)
					goto failed;
				c->st = 1;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			r = read(c->fd, buf, MSG);
			if (r == -1 && errno == EAGAIN)
				continue;
			if (c->st == 1 && r > 0) {
				if ((c->n += (int)r) < MSG)
					continue;
				if (server_closes) {
					c->st = 2;
					continue;
				}
			} else if (!(c->st == 2 && r == 0)) {
				goto failed;
			}
			if (nv == cap)
				v = realloc(v, sizeof(double) * (cap *= 2));
			v[nv++] = now() - c->t0;
			close(c->fd);
			rc_start(ep, c, port, &src);
			continue;
failed:
			errs++;
			close(c->fd);
			rc_start(ep, c, port, &src);
		}
	}
	t0 = now() - t0;
	qsort(v, nv, sizeof(double), cmp_d);
	printf("conns=%zu secs=%.3f rate=%.0f p50_us=%.1f p99_us=%.1f "
	    "errors=%d refused_rate=%.0f\n", nv, t0, nv / t0,
	    pct(v, nv, 0.5) * 1e6, pct(v, nv, 0.99) * 1e6, errs, errs / t0);
	return 0;
}

static int
idle(int port, int count)
{
	int *fds = malloc(sizeof(int) * (size_t)count), i, done = 0;
	struct pollfd p;
	char b;

	/* In batches of 200 so that no backlog overflows. */
	for (i = 0; i < count; i++) {
		fds[i] = dial(port, i % 16 + 1, 0);
		if (write(fds[i], "i", 1) != 1)
			die("idle write");
		if (i % 200 == 199 || i == count - 1)
			for (; done <= i; done++)
				if (read(fds[done], &b, 1) != 1)
					die("idle read");
	}
	printf("ready\n");
	fflush(stdout);
	/* Each line on stdin: wake 20 idle connections, one after another,
	 * and report how long each took to echo a byte.  EOF: exit. */
	for (;;) {
		double v[20], t0;
		int k;

		p.fd = 0;
		p.events = POLLIN;
		poll(&p, 1, -1);
		if (read(0, &b, 1) != 1)
			return 0;
		if (b != '\n')
			continue;
		for (k = 0; k < 20; k++) {
			i = (int)((unsigned)rand() % (unsigned)count);
			t0 = now();
			if (write(fds[i], "w", 1) != 1 || read(fds[i], &b, 1) != 1)
				die("wake");
			v[k] = now() - t0;
		}
		qsort(v, 20, sizeof(double), cmp_d);
		printf("wake_p50_us=%.1f wake_max_us=%.1f\n", v[10] * 1e6,
		    v[19] * 1e6);
		fflush(stdout);
	}
}

static int
multi(int port, int conc, double secs)
{
	struct epoll_event evs[256], ev;
	long long *got = calloc((size_t)conc, sizeof(long long)), sum = 0, min;
	int *fds = malloc(sizeof(int) * (size_t)conc), ep = epoll_create1(0);
	double t0, end;
	ssize_t r;
	int i, n;

	for (i = 0; i < conc; i++) {
		fds[i] = dial(port, i % 16 + 1, 0);
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		ev.events = EPOLLOUT;
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	t0 = now();
	end = t0 + secs;
	while (now() < end) {
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			r = write(fds[evs[i].data.u32], buf, BIG / 4);
			if (r > 0)
				got[evs[i].data.u32] += r;
		}
	}
	t0 = now() - t0;
	min = got[0];
	for (i = 0; i < conc; i++) {
		sum += got[i];
		if (got[i] < min)
			min = got[i];
	}
	printf("conns=%d secs=%.3f gbps=%.4f fairness=%.3f\n", conc, t0,
	    sum / t0 / 1e9, (double)min / ((double)sum / conc));
	return 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	memset(buf, 'x', sizeof(buf));
	if (argc >= 4 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]), argv[3], argc > 4 &&
		    strcmp(argv[4], "pp") == 0);
	if (argc == 4 && strcmp(argv[1], "up") == 0)
		return up(atoi(argv[2]), atoll(argv[3]));
	if (argc == 3 && strcmp(argv[1], "down") == 0)
		return down(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "ping") == 0)
		return ping(atoi(argv[2]), atoi(argv[3]));
	if (argc == 6 && strcmp(argv[1], "rr") == 0)
		return rr(atoi(argv[2]), atoi(argv[3]), atof(argv[4]),
		    strcmp(argv[5], "server") == 0);
	if (argc == 7 && strcmp(argv[1], "flood") == 0) {
		src_base = (64u << 16) + (unsigned)atoi(argv[5]) - 1;
		src_n = (unsigned)atoi(argv[6]);
		return rr(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), 0);
	}
	if (argc == 4 && strcmp(argv[1], "idle") == 0)
		return idle(atoi(argv[2]), atoi(argv[3]));
	if (argc == 5 && strcmp(argv[1], "multi") == 0)
		return multi(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of bench/load.c\n");
	return 2;
}
