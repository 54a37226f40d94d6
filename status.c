/* SPDX-License-Identifier: ISC */
/*
 * The status endpoint and its client.  status.listen serves one HTTP/1.0
 * answer per connection: the counters stats.c renders, in the Prometheus
 * text format, with the gauges of the rooms below (connections, buffers);
 * SIGUSR1 logs the same.  At most STATUS_MAX clients at a time, each
 * bounded by STATUS_MS, all non-blocking under the main poll() loop: a
 * stuck scraper costs a slot, never the loop.  `edge probe HOST:PORT` is
 * the client a scratch image's HEALTHCHECK runs: it exits 0 on a 200.
 */
#include <sys/socket.h>
#include <netdb.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define STATUS_MS	5000	/* whole exchange, per client */
#define REQ_MAX		2048	/* request head */

enum sstate { S_FREE, S_READ, S_WRITE, S_LINGER };

static struct sclient {
	enum sstate st;
	int fd;
	int64_t deadline;
	size_t rn;
	char req[REQ_MAX];
	char *out;		/* the whole answer, malloc'd */
	size_t olen, off;
} S[STATUS_MAX];

/* What the other rooms report, for the counters' pages. */
static void
gauges(struct gauges *g)
{
	g->now = sys_clock_ms();
	g->conns = conn_count();
	g->max_conns = conn_max();
	buf_usage(&g->big, &g->small, &g->buf_bytes);
	g->rate_evicted = rate_evictions();
	pipes_usage(&g->pipes_busy, &g->pipes_cap, &g->spliced);
}

void
status_log(void)
{
	struct gauges g;

	gauges(&g);
	stats_log(&g);
}

static void
sc_close(struct sclient *s)
{
	close(s->fd);
	free(s->out);
	s->out = NULL;
	s->fd = -1;
	s->st = S_FREE;
}

int
status_full(void)
{
	int i;

	for (i = 0; i < STATUS_MAX; i++)
		if (S[i].st == S_FREE)
			return 0;
	return 1;
}

int
status_accept(int lfd, int64_t now)
{
	struct sclient *s;
	union sa sa;
	socklen_t len;
	int i, fd;

	for (i = 0; i < STATUS_MAX; i++) {
		s = &S[i];
		if (s->st != S_FREE)
			continue;
		len = sizeof(sa);
		if ((fd = sys_accept_nb(lfd, &sa, &len)) == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ECONNABORTED ? 0 : -1;
		s->fd = fd;
		s->st = S_READ;
		s->rn = 0;
		s->deadline = now + STATUS_MS;
	}
	return 0;
}

/* Build the answer to the request head in s->req. */
static void
answer(struct sclient *s)
{
	static const char hdr[] = "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %lu\r\nConnection: close\r\n"
	    "Cache-Control: no-store\r\n\r\n";
	struct gauges g;
	const char *code = "200 OK", *msg = NULL, *ctype =
	    "text/plain; version=0.0.4; charset=utf-8";
	char *body = NULL, *sp, *path;
	size_t blen = 0, hlen;
	int head = 0;

	gauges(&g);
	s->req[s->rn < REQ_MAX ? s->rn : REQ_MAX - 1] = '\0';
	if ((sp = strchr(s->req, ' ')) == NULL) {
		code = "400 Bad Request";
		msg = "bad request\n";
	} else {
		*sp = '\0';
		path = sp + 1;
		path[strcspn(path, " \r\n")] = '\0';
		head = strcmp(s->req, "HEAD") == 0;
		if (!head && strcmp(s->req, "GET") != 0) {
			code = "405 Method Not Allowed";
			msg = "GET or HEAD only\n";
		} else if (strcmp(path, "/metrics") != 0 &&
		    strcmp(path, "/") != 0) {
			code = "404 Not Found";
			msg = "try /metrics\n";
		} else if ((body = stats_metrics(&g, &blen)) == NULL) {
			code = "503 Service Unavailable";
			msg = "out of memory\n";
		}
	}
	if (msg != NULL) {
		ctype = "text/plain; charset=utf-8";
		blen = strlen(msg);
	}
	hlen = (size_t)snprintf(NULL, 0, hdr, code, ctype,
	    (unsigned long)blen);
	if ((s->out = malloc(hlen + 1 + blen)) == NULL) {
		free(body);
		sc_close(s);
		return;
	}
	snprintf(s->out, hlen + 1, hdr, code, ctype, (unsigned long)blen);
	if (!head)
		memcpy(s->out + hlen, msg ? msg : body, blen);
	s->olen = hlen + (head ? 0 : blen);
	s->off = 0;
	s->st = S_WRITE;
	free(body);
}

/* The request head is complete: a blank line, or the buffer is full. */
static int
req_done(const struct sclient *s)
{
	size_t i;

	if (s->rn == REQ_MAX)
		return 1;
	for (i = 1; i < s->rn; i++)
		if (s->req[i] == '\n' && (s->req[i - 1] == '\n' ||
		    (i >= 2 && s->req[i - 1] == '\r' && s->req[i - 2] == '\n')))
			return 1;
	return 0;
}

static void
sc_step(struct sclient *s, short rev)
{
	char junk[512];
	ssize_t n;

	if (s->st == S_READ && rev) {
		n = read(s->fd, s->req + s->rn, REQ_MAX - s->rn);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
			sc_close(s);
			return;
		}
		if (n > 0)
			s->rn += (size_t)n;
		if (!req_done(s))
			return;
		answer(s);
		if (s->st != S_WRITE)
			return;
	}
	if (s->st == S_WRITE) {
		n = write(s->fd, s->out + s->off, s->olen - s->off);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			sc_close(s);
			return;
		}
		if (n > 0)
			s->off += (size_t)n;
		if (s->off < s->olen)
			return;
		/* Sent: FIN, then wait for the client's, so that closing
		 * with its unread bytes cannot reset the answer away. */
		shutdown(s->fd, SHUT_WR);
		s->st = S_LINGER;
		return;
	}
	if (s->st == S_LINGER && rev) {
		n = read(s->fd, junk, sizeof(junk));
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			sc_close(s);
	}
}

int
status_pollfds(struct pollfd *p, int64_t *next)
{
	int i, n = 0;

	for (i = 0; i < STATUS_MAX; i++) {
		if (S[i].st == S_FREE)
			continue;
		p[n].fd = S[i].fd;
		p[n].events = S[i].st == S_WRITE ? POLLOUT : POLLIN;
		p[n].revents = 0;
		n++;
		if (S[i].deadline < *next)
			*next = S[i].deadline;
	}
	return n;
}

void
status_service(const struct pollfd *p, int n, int64_t now)
{
	int i, k = 0;

	/* The same order status_pollfds() gave; nothing opens in between. */
	for (i = 0; i < STATUS_MAX && k < n; i++) {
		if (S[i].st == S_FREE)
			continue;
		if (p[k].revents)
			sc_step(&S[i], p[k].revents);
		k++;
	}
	for (i = 0; i < STATUS_MAX; i++)
		if (S[i].st != S_FREE && S[i].deadline <= now)
			sc_close(&S[i]);
}

void
status_close_all(void)
{
	int i;

	for (i = 0; i < STATUS_MAX; i++)
		if (S[i].st != S_FREE)
			sc_close(&S[i]);
}

/* Wait for ev on fd until the deadline; 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p;
	int64_t left;
	int r;

	for (;;) {
		if ((left = deadline - sys_clock_ms()) <= 0)
			return 0;
		p.fd = fd;
		p.events = ev;
		p.revents = 0;
		r = poll(&p, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		return r;
	}
}

static int
probe_fail(const char *target, const char *what, const char *why)
{
	log_to(STDERR_FILENO, "edge: probe %s: %s%s%s\n", target, what,
	    why ? ": " : "", why ? why : "");
	return 1;
}

int
status_probe(const char *arg)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n"
	    "User-Agent: edge-probe\r\n\r\n";
	struct addrinfo hints, *res = NULL, *ai;
	char host[HOST_MAX_LEN], buf[64];
	const char *port;
	int64_t deadline = sys_clock_ms() + STATUS_MS;
	size_t n = 0;
	ssize_t r;
	int fd = -1, e = 0, rc;
	socklen_t len;

	if (sa_split(arg, host, sizeof(host), &port) == -1 || *port == '\0')
		return probe_fail(arg, "not HOST:PORT", NULL) + 1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res))
	    != 0)
		return probe_fail(arg, "resolve", gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = sys_socket_nb(ai->ai_family)) == -1) {
			e = errno;
			goto next;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		if (e == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1) {
			len = sizeof(e);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
				e = errno;
			if (e == 0)
				break;
		} else if (e == EINPROGRESS) {
			e = ETIMEDOUT;
		}
next:
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return probe_fail(arg, "connect", strerror(e));
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		return probe_fail(arg, "write", strerror(errno));
	}
	/* The status line is all we need: "HTTP/1.0 200 OK". */
	while (n < sizeof(buf) - 1 && memchr(buf, '\n', n) == NULL) {
		if (wait_fd(fd, POLLIN, deadline) != 1) {
			close(fd);
			return probe_fail(arg, "no answer within 5s", NULL);
		}
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0)
		return 0;
	return probe_fail(arg, "answered",
	    n ? buf : "nothing (not the status endpoint?)");
}
