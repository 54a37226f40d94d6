/* SPDX-License-Identifier: ISC */
/*
 * edge: accept TCP connections on the configured listeners, resolve the
 * upstream afresh for each, connect (IPv4 first by default), send a PROXY
 * protocol header if configured, then copy bytes both ways until both
 * sides have closed.  One thread owns every connection; a poll() loop
 * drives a small state machine per connection (conn_step).  Name lookups
 * run on resolver threads (resolve.c) so that a slow DNS server stalls
 * only the connections waiting on it.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"

#define EDGE_VERSION	"0.1.0"
#define BUFSZ		(16 * 1024)
#define HEADROOM	128		/* room for a PROXY header */
#define ACCEPT_BATCH	64		/* accepts per listener per turn */
#define ACCEPT_PAUSE_MS	250		/* after EMFILE and kin */
#define LOG_MAX		1024

enum { CLI = 0, UPS = 1 };		/* side index; the peer is !side */

enum cstate {
	C_FREE = 0,	/* slot unused */
	C_PEEK,		/* reading the ClientHello into s[CLI].in, unconsumed */
	C_RESOLVE,	/* lookup queued in resolve.c; client may send early */
	C_CONNECT,	/* non-blocking connect to av[ai] in progress */
	C_SPLICE	/* bytes both ways; half-closes tracked per side */
};

/*
 * A side's inbound bytes, waiting for the peer: b[off .. off+len).  A side
 * holds a buffer only while it has bytes the peer has not taken, so an
 * idle connection holds none.  The PROXY header is written into the
 * headroom in front of the client's first bytes.
 */
struct buf {
	struct buf *next;	/* free list */
	uint32_t off, len;
	unsigned char b[HEADROOM + BUFSZ];
};

struct side {
	int fd;			/* -1 when not open */
	unsigned eof:1;		/* read() returned 0 */
	unsigned shut:1;	/* we sent shutdown(SHUT_WR) to this fd */
	uint64_t nread;		/* bytes read from this fd */
	struct buf *in;		/* bytes read from this fd, or NULL */
};

struct conn {
	enum cstate st;
	uint32_t gen;		/* bumped on free: stale lookups are dropped */
	int live;		/* index in E.live */
	const struct listener *l;
	const struct route *r;	/* the SNI route taken, or NULL */
	struct side s[2];
	union sa cli, loc;	/* from accept() and getsockname() */
	union sa ups;		/* the upstream address tried or in use */
	struct addrs *addrs;	/* owned lookup result, or NULL */
	const union sa *av;	/* addresses to try, in order */
	int an, ai;
	int64_t t0, deadline;	/* monotonic ms */
	int err;		/* errno of the last failed connect */
	char sni[HOST_MAX_LEN];	/* validated server_name, or "" */
};

struct edge {
	const char *confpath;
	struct conf *cf;
	int lfd[MAX_LISTENERS];
	struct conn *conns;
	int maxc, nconn;
	int *live;		/* slots in use, dense */
	int *freeslot, nfree;	/* stack of unused slots */
	struct buf *bfree;	/* free buffers */
	int nbuf;		/* buffers allocated */
	struct pollfd *pfd;
	int *pmap;		/* pfd index -> slot * 2 + side */
	int sigp[2];		/* self-pipe for signals */
	int resfd;		/* resolver wakeup */
	int64_t now;
	int64_t accept_resume;	/* listeners paused until then */
	int fd_short;		/* in an EMFILE episode, already logged */
	int stop;
};

static struct edge E;

enum { PFD_SIGNAL, PFD_RESOLVER, PFD_LISTENERS };

static void
vlog(int witherr, const char *fmt, va_list ap)
{
	char line[LOG_MAX];
	int e = errno, n;
	size_t len;

	n = snprintf(line, sizeof(line), "edge: ");
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 64)
		n = sizeof(line) - 64;
	if (witherr)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s",
		    strerror(e));
	line[n++] = '\n';
	len = (size_t)n;
	/* One write per line keeps lines whole; a failed log is dropped. */
	if (write(STDERR_FILENO, line, len) == -1)
		(void)0;
	errno = e;
}

/* Log one line.  A format ending in ':' gets strerror(errno) appended. */
static void
logmsg(const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(fmt);

	va_start(ap, fmt);
	vlog(n > 0 && fmt[n - 1] == ':', fmt, ap);
	va_end(ap);
}

static void
die(int code, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(fmt);

	va_start(ap, fmt);
	vlog(n > 0 && fmt[n - 1] == ':', fmt, ap);
	va_end(ap);
	exit(code);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/*
 * Keepalive finds dead peers of long idle sessions (IMAP IDLE); the Linux
 * default of two hours before the first probe is too late to help.
 */
static void
set_keepalive(int fd)
{
	int on = 1;
#ifdef TCP_KEEPIDLE
	int idle = 120, intvl = 30, cnt = 4;

	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
}

/* Options for both sides of a relayed connection. */
static void
tune(int fd)
{
	int on = 1;

	/* Relayed writes are already whole messages: Nagle only adds delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	set_keepalive(fd);
}

static struct buf *
buf_get(void)
{
	struct buf *b = E.bfree;

	if (b != NULL) {
		E.bfree = b->next;
	} else {
		/* Grows to the high-water mark, at most two per slot. */
		if (E.nbuf >= 2 * E.maxc || (b = malloc(sizeof(*b))) == NULL)
			return NULL;
		E.nbuf++;
	}
	b->off = HEADROOM;
	b->len = 0;
	return b;
}

static void
buf_put(struct side *s)
{
	if (s->in == NULL)
		return;
	s->in->next = E.bfree;
	E.bfree = s->in;
	s->in = NULL;
}

/* Relaying: the deadline is idle_timeout from the last byte moved. */
static void
arm_idle(struct conn *c)
{
	c->deadline = c->l->idle_ms ? E.now + c->l->idle_ms : INT64_MAX;
}

static int
can_read(const struct side *s)
{
	const struct buf *b = s->in;

	if (s->eof || s->fd == -1)
		return 0;
	return b == NULL || b->off + b->len < sizeof(b->b) || b->off > HEADROOM;
}

/*
 * The one exit.  Logs the close line, closes both fds (with an RST after
 * a reset or error while relaying, so the other side learns of it too),
 * and returns the slot.  detail overrides strerror(err) in the log.
 */
static void
conn_close(struct conn *c, const char *why, int err, const char *detail)
{
	struct linger lg = { 1, 0 };
	char a[SA_FMT_LEN], u[SA_FMT_LEN];
	const char *es = detail ? detail : err ? strerror(err) : NULL;
	int64_t t = E.now - c->t0;
	int i, last;

	logmsg("close l=%s c=%s sni=%s r=%s u=%s up=%llu down=%llu "
	    "t=%lld.%03llds why=%s%s%s%s", c->l->name,
	    sa_fmt(&c->cli, a, sizeof(a)), c->sni[0] ? c->sni : "-",
	    c->r ? c->r->text : c->l->nr > 0 && c->st != C_PEEK ? "default" :
	    "-", c->st >= C_CONNECT ? sa_fmt(&c->ups, u, sizeof(u)) : "-",
	    (unsigned long long)c->s[CLI].nread,
	    (unsigned long long)c->s[UPS].nread, (long long)(t / 1000),
	    (long long)(t % 1000), why, es ? " err=\"" : "", es ? es : "",
	    es ? "\"" : "");
	for (i = CLI; i <= UPS; i++) {
		if (c->s[i].fd == -1)
			continue;
		if (err != 0 && c->st == C_SPLICE)
			setsockopt(c->s[i].fd, SOL_SOCKET, SO_LINGER, &lg,
			    sizeof(lg));
		close(c->s[i].fd);
		c->s[i].fd = -1;
		buf_put(&c->s[i]);
	}
	free(c->addrs);
	c->addrs = NULL;
	c->st = C_FREE;
	c->gen++;
	last = E.live[--E.nconn];
	E.live[c->live] = last;
	E.conns[last].live = c->live;
	E.freeslot[E.nfree++] = (int)(c - E.conns);
}

/* A read or write failed on side: close, naming the side and the cause. */
static void
conn_fail(struct conn *c, int side, int err)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s: %s", side == CLI ? "client" :
	    "upstream", strerror(err));
	conn_close(c, err == ECONNRESET || err == EPIPE ? "reset" : "error",
	    err, msg);
}

/*
 * Move bytes from side `from` to its peer.  rin and rout are the poll
 * events seen on the two fds.  Reads only while the buffer has room: this
 * is the backpressure.  An EOF becomes shutdown(SHUT_WR) on the peer once
 * everything read before it has been written.  Returns -1 if the
 * connection was closed.
 */
static int
pump(struct conn *c, int from, short rin, short rout)
{
	struct side *s = &c->s[from], *d = &c->s[!from];
	struct buf *b;
	ssize_t n;
	int moved = 0;

	if ((rin & (POLLIN | POLLHUP | POLLERR)) && can_read(s)) {
		if (s->in == NULL && (s->in = buf_get()) == NULL) {
			conn_close(c, "no_memory", ENOMEM, NULL);
			return -1;
		}
		b = s->in;
		if (b->off + b->len == sizeof(b->b)) {
			memmove(b->b + HEADROOM, b->b + b->off, b->len);
			b->off = HEADROOM;
		}
		do
			n = read(s->fd, b->b + b->off + b->len,
			    sizeof(b->b) - b->off - b->len);
		while (n == -1 && errno == EINTR);
		if (n > 0) {
			b->len += (uint32_t)n;
			s->nread += (uint64_t)n;
			moved = 1;
		} else if (n == 0) {
			s->eof = 1;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_fail(c, from, errno);
			return -1;
		}
	}
	b = s->in;
	if (c->st == C_SPLICE && b != NULL && b->len > 0 && (moved || rout)) {
		do
			n = write(d->fd, b->b + b->off, b->len);
		while (n == -1 && errno == EINTR);
		if (n > 0) {
			b->off += (uint32_t)n;
			b->len -= (uint32_t)n;
			moved = 1;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_fail(c, !from, errno);
			return -1;
		}
	}
	if (b != NULL && b->len == 0)
		buf_put(s);
	if (moved && c->st == C_SPLICE)
		arm_idle(c);
	if (c->st == C_SPLICE && s->eof && s->in == NULL && !d->shut) {
		/* ENOTCONN: the peer is already gone; the read side tells. */
		if (shutdown(d->fd, SHUT_WR) == -1 && errno != ENOTCONN) {
			conn_fail(c, !from, errno);
			return -1;
		}
		d->shut = 1;
	}
	return 0;
}

/* Both sides have sent EOF and everything has been delivered. */
static int
conn_done(const struct conn *c)
{
	return c->s[CLI].eof && c->s[UPS].eof && c->s[CLI].in == NULL &&
	    c->s[UPS].in == NULL;
}

static void
conn_retry_log(const struct conn *c)
{
	char a[SA_FMT_LEN], u[SA_FMT_LEN];

	if (c->ai + 1 < c->an)
		logmsg("retry l=%s c=%s u=%s err=\"%s\"", c->l->name,
		    sa_fmt(&c->cli, a, sizeof(a)), sa_fmt(&c->ups, u, sizeof(u)),
		    strerror(c->err));
}

/*
 * Out of descriptors (EMFILE and kin, at accept() or at the upstream
 * socket()): poll no listener for a while instead of spinning, and say so
 * once per episode.  The episode ends when a new connection gets both of
 * its descriptors again, at the next upstream socket() that succeeds.
 */
static void
fd_pause(const char *lname, int err)
{
	if (!E.fd_short)
		logmsg("accept l=%s paused=%dms conns=%d err=\"%s\"", lname,
		    ACCEPT_PAUSE_MS, E.nconn, strerror(err));
	E.fd_short = 1;
	E.accept_resume = E.now + ACCEPT_PAUSE_MS;
}

/*
 * Start a non-blocking connect to av[ai], or the next that can start.
 * Each failure with an address left to try gets a "retry" line: a family
 * that fails (no IPv6 route, say) should not stay invisible.
 */
static void
conn_dial(struct conn *c)
{
	const union sa *a;
	int fd;

	for (; c->ai < c->an; c->ai++) {
		a = &c->av[c->ai];
		c->ups = *a;
		if ((fd = socket(a->sa.sa_family, SOCK_STREAM, 0)) != -1 &&
		    set_nonblock(fd) != -1) {
			tune(fd);
			if (E.fd_short)
				logmsg("accept l=%s resumed conns=%d",
				    c->l->name, E.nconn);
			E.fd_short = 0;
			if (connect(fd, &a->sa, sa_len(a)) == 0 ||
			    errno == EINPROGRESS || errno == EINTR) {
				/* Success shows as POLLOUT, as does a late
				 * failure. */
				c->s[UPS].fd = fd;
				c->st = C_CONNECT;
				c->deadline = E.now + c->l->connect_ms;
				return;
			}
		}
		c->err = errno;
		if (fd != -1)
			close(fd);
		if (c->err == EMFILE || c->err == ENFILE)
			fd_pause(c->l->name, c->err);
		conn_retry_log(c);
	}
	c->st = C_CONNECT;	/* so that the log names the last address */
	conn_close(c, "connect_failed", c->err, NULL);
}

/* The connect to av[ai] failed with err: try the next address. */
static void
conn_next(struct conn *c, int err)
{
	close(c->s[UPS].fd);
	c->s[UPS].fd = -1;
	c->err = err;
	conn_retry_log(c);
	c->ai++;
	conn_dial(c);
}

/*
 * The upstream accepted.  Put the PROXY header in front of whatever the
 * client has sent so far, so that header and data leave in one write.
 */
static int
conn_established(struct conn *c)
{
	struct side *s = &c->s[CLI];
	unsigned char hdr[PP_MAX_LEN];
	size_t n = 0;

	free(c->addrs);
	c->addrs = NULL;
	c->av = NULL;
	if (c->l->proxy == PROXY_V2)
		n = pp2_encode(hdr, sizeof(hdr), &c->cli, &c->loc);
	else if (c->l->proxy == PROXY_V1)
		n = pp1_encode(hdr, sizeof(hdr), &c->cli, &c->loc);
	if (n > 0) {
		if (s->in == NULL && (s->in = buf_get()) == NULL) {
			conn_close(c, "no_memory", ENOMEM, NULL);
			return -1;
		}
		s->in->off -= (uint32_t)n;
		s->in->len += (uint32_t)n;
		memcpy(s->in->b + s->in->off, hdr, n);
	}
	c->st = C_SPLICE;
	arm_idle(c);
	return 0;
}

/* The connect in progress has finished: on to SPLICE or the next address. */
static int
conn_connected(struct conn *c)
{
	socklen_t len = sizeof(int);
	int e = 0;

	if (getsockopt(c->s[UPS].fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e == 0)
		return conn_established(c);
	conn_next(c, e);
	return -1;
}

/* Connect to t: at once for a literal, else after a lookup. */
static void
conn_go(struct conn *c, const struct target *t)
{
	const struct listener *l = c->l;

	if (t->literal) {
		c->av = &t->addr;
		c->an = 1;
		conn_dial(c);
		return;
	}
	c->st = C_RESOLVE;
	c->deadline = E.now + l->dns_ms;
	if (resolve_start((int)(c - E.conns), c->gen, t->host, t->port,
	    l->prefer) == -1)
		conn_close(c, "dns_failed", errno, NULL);
}

/*
 * Look at what the client has sent so far for a server_name and choose a
 * route; the bytes stay in the buffer, to be forwarded as they came.
 */
static void
conn_peek(struct conn *c)
{
	const struct buf *b = c->s[CLI].in;
	const struct target *t = &c->l->up;
	enum sni_res res;

	res = sni_parse(b ? b->b + b->off : (const unsigned char *)"",
	    b ? b->len : 0, c->sni, sizeof(c->sni));
	if (res == SNI_MORE) {
		if (b != NULL && b->off + b->len == sizeof(b->b)) {
			conn_close(c, "sni_too_big", 0, NULL);
			return;
		}
		if (c->s[CLI].eof) {
			conn_close(c, b ? "sni_incomplete" : "sni_eof", 0,
			    NULL);
			return;
		}
		return;
	}
	if (res == SNI_FOUND && (c->r = conf_route(E.cf, c->l, c->sni)))
		t = &c->r->t;
	if (res != SNI_FOUND)
		c->sni[0] = '\0';
	if (t->host[0] == '\0') {
		conn_close(c, res == SNI_NOT_TLS ? "not_tls" : "no_route", 0,
		    NULL);
		return;
	}
	conn_go(c, t);
}

/*
 * Advance a connection on the poll events of its two fds.  Each state
 * either returns to wait or falls through to the next.
 */
static void
conn_step(struct conn *c, short rev[2])
{
	switch (c->st) {
	case C_FREE:
		return;
	case C_PEEK:
		if (pump(c, CLI, rev[CLI], 0) == 0)
			conn_peek(c);
		return;
	case C_RESOLVE:
		/* Hold what the client sends early (a TLS hello on 465). */
		if (rev[CLI])
			pump(c, CLI, rev[CLI], 0);
		return;
	case C_CONNECT:
		if (rev[UPS] == 0) {
			if (rev[CLI])
				pump(c, CLI, rev[CLI], 0);
			return;
		}
		if (conn_connected(c) == -1)
			return;
		/* FALLTHROUGH */
	case C_SPLICE:
		if (pump(c, CLI, rev[CLI], rev[UPS]) == -1 ||
		    pump(c, UPS, rev[UPS], rev[CLI]) == -1)
			return;
		if (conn_done(c))
			conn_close(c, "eof", 0, NULL);
		return;
	}
}

/* Poll interest, derived from state every turn, never toggled. */
static short
interest(const struct conn *c, int side)
{
	short ev = 0;

	switch (c->st) {
	case C_FREE:
		break;
	case C_PEEK:
	case C_RESOLVE:
		if (side == CLI && can_read(&c->s[CLI]))
			ev = POLLIN;
		break;
	case C_CONNECT:
		if (side == UPS)
			ev = POLLOUT;
		else if (can_read(&c->s[CLI]))
			ev = POLLIN;
		break;
	case C_SPLICE:
		if (can_read(&c->s[side]))
			ev |= POLLIN;
		if (c->s[!side].in != NULL)
			ev |= POLLOUT;
		break;
	}
	return ev;
}

static void
conn_start(int li, int fd, const union sa *cli)
{
	const struct listener *l = &E.cf->l[li];
	socklen_t len = sizeof(union sa);
	struct conn *c;
	int slot;

	if (set_nonblock(fd) == -1) {
		logmsg("accept l=%s: fcntl:", l->name);
		close(fd);
		return;
	}
	tune(fd);
	slot = E.freeslot[--E.nfree];
	c = &E.conns[slot];
	c->st = C_RESOLVE;
	c->l = l;
	c->live = E.nconn;
	E.live[E.nconn++] = slot;
	c->s[CLI].fd = fd;
	c->s[UPS].fd = -1;
	c->s[CLI].eof = c->s[UPS].eof = 0;
	c->s[CLI].shut = c->s[UPS].shut = 0;
	c->s[CLI].nread = c->s[UPS].nread = 0;
	c->cli = *cli;
	sa_unmap(&c->cli);
	memset(&c->ups, 0, sizeof(c->ups));
	memset(&c->loc, 0, sizeof(c->loc));
	c->t0 = E.now;
	c->err = 0;
	c->ai = 0;
	c->r = NULL;
	c->sni[0] = '\0';
	if (l->proxy != PROXY_OFF && getsockname(fd, &c->loc.sa, &len) == -1) {
		conn_close(c, "error", errno, NULL);
		return;
	}
	if (l->nr > 0) {
		c->st = C_PEEK;
		c->deadline = E.now + l->sni_ms;
		return;
	}
	conn_go(c, &l->up);
}

static void
accept_ready(int li)
{
	union sa sa;
	socklen_t len;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH && E.nconn < E.maxc; i++) {
		len = sizeof(sa);
		fd = accept(E.lfd[li], &sa.sa, &len);
		if (fd != -1) {
			conn_start(li, fd, &sa);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* The client stays in the backlog. */
			fd_pause(E.cf->l[li].name, errno);
			return;
		}
		logmsg("accept l=%s:", E.cf->l[li].name);
		return;
	}
}

/* Finished lookups: dial, or close on failure; stale results are dropped. */
static void
resolve_collect(void)
{
	struct addrs *a;
	struct conn *c;
	const char *err;
	uint32_t gen;
	int slot;

	while (resolve_next(&slot, &gen, &a, &err) == 1) {
		c = &E.conns[slot];
		if (c->gen != gen || c->st != C_RESOLVE) {
			free(a);
			continue;
		}
		if (a == NULL) {
			conn_close(c, "dns_failed", 0, err);
			continue;
		}
		c->addrs = a;
		c->av = a->a;
		c->an = a->n;
		conn_dial(c);
	}
}

static void
expire(void)
{
	struct conn *c;
	int i;

	/* Walk backwards: a close moves the last live entry into slot i. */
	for (i = E.nconn - 1; i >= 0; i--) {
		c = &E.conns[E.live[i]];
		if (c->deadline > E.now)
			continue;
		switch (c->st) {
		case C_PEEK:
			conn_close(c, "sni_timeout", 0, NULL);
			break;
		case C_RESOLVE:
			conn_close(c, "dns_timeout", 0, NULL);
			break;
		case C_CONNECT:
			conn_next(c, ETIMEDOUT);
			break;
		case C_SPLICE:
			conn_close(c, "idle", 0, NULL);
			break;
		case C_FREE:
			break;
		}
	}
}

static void
on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int e = errno;

	if (write(E.sigp[1], &b, 1) == -1)
		(void)0;	/* a full pipe already holds a wakeup */
	errno = e;
}

static void
handle_signals(void)
{
	unsigned char b[16];
	ssize_t i, n;

	while ((n = read(E.sigp[0], b, sizeof(b))) > 0) {
		for (i = 0; i < n; i++) {
			if (b[i] == SIGTERM || b[i] == SIGINT) {
				logmsg("stop signal=%s conns=%d",
				    b[i] == SIGTERM ? "TERM" : "INT", E.nconn);
				E.stop = 1;
			} else if (b[i] == SIGHUP) {
				logmsg("hup ignored: reload is not implemented "
				    "yet; restart to apply a new config");
			}
		}
	}
}

/* Build the pollset; returns its size and the poll timeout in *tmo. */
static int
build_pollset(int *tmo)
{
	int64_t next = INT64_MAX;
	struct conn *c;
	int i, n, side, on;
	short ev;

	on = E.nconn < E.maxc && E.now >= E.accept_resume && !E.stop;
	if (!on && E.accept_resume > E.now)
		next = E.accept_resume;
	n = PFD_LISTENERS;
	for (i = 0; i < E.cf->nl; i++, n++) {
		E.pfd[n].fd = on ? E.lfd[i] : -1;
		E.pfd[n].events = POLLIN;
		E.pfd[n].revents = 0;
	}
	for (i = 0; i < E.nconn; i++) {
		c = &E.conns[E.live[i]];
		if (c->deadline < next)
			next = c->deadline;
		for (side = CLI; side <= UPS; side++) {
			if ((ev = interest(c, side)) == 0)
				continue;
			E.pfd[n].fd = c->s[side].fd;
			E.pfd[n].events = ev;
			E.pfd[n].revents = 0;
			E.pmap[n] = E.live[i] * 2 + side;
			n++;
		}
	}
	if (next == INT64_MAX)
		*tmo = -1;
	else if (next <= E.now)
		*tmo = 0;
	else
		*tmo = next - E.now > 60000 ? 60000 : (int)(next - E.now);
	return n;
}

static void
service_conns(int n)
{
	struct conn *c;
	short rev[2];
	int i, slot;

	for (i = PFD_LISTENERS + E.cf->nl; i < n; ) {
		slot = E.pmap[i] / 2;
		rev[CLI] = rev[UPS] = 0;
		for (; i < n && E.pmap[i] / 2 == slot; i++)
			rev[E.pmap[i] % 2] = E.pfd[i].revents;
		c = &E.conns[slot];
		if ((rev[CLI] | rev[UPS]) != 0)
			conn_step(c, rev);
	}
}

static void
run(void)
{
	int i, n, tmo;

	while (!E.stop) {
		E.now = now_ms();
		n = build_pollset(&tmo);
		if (poll(E.pfd, (nfds_t)n, tmo) == -1) {
			if (errno == EINTR)
				continue;
			die(1, "poll:");
		}
		E.now = now_ms();
		if (E.pfd[PFD_SIGNAL].revents)
			handle_signals();
		if (E.pfd[PFD_RESOLVER].revents)
			resolve_collect();
		service_conns(n);
		for (i = 0; i < E.cf->nl && !E.stop; i++)
			if (E.pfd[PFD_LISTENERS + i].revents & POLLIN)
				accept_ready(i);
		expire();
	}
	while (E.nconn > 0)
		conn_close(&E.conns[E.live[E.nconn - 1]], "shutdown", 0, NULL);
	logmsg("stopped");
}

static const char *
target_fmt(const struct target *t, char *buf, size_t n)
{
	int v6 = strchr(t->host, ':') != NULL;

	if (t->host[0] == '\0')
		snprintf(buf, n, "(close)");
	else
		snprintf(buf, n, "%s%s%s:%s", v6 ? "[" : "", t->host,
		    v6 ? "]" : "", t->port);
	return buf;
}

/*
 * One line per listener, "listening smtp on [::]:25 (v4+v6) -> mx:25 ...",
 * then one per SNI route, in the order they are tried.
 */
static void
describe(const char *what, const struct listener *l, const union sa *a)
{
	char buf[SA_FMT_LEN], t[HOST_MAX_LEN + 16];
	const struct route *r;
	int i;

	logmsg("%s %s on %s%s -> %s proxy=%s prefer=%s connect_timeout=%lldms "
	    "idle_timeout=%lldms", what, l->name, sa_fmt(a, buf, sizeof(buf)),
	    l->dual && a->sa.sa_family == AF_INET6 ? " (v4+v6)" : "",
	    target_fmt(&l->up, t, sizeof(t)),
	    l->proxy == PROXY_V2 ? "v2" : l->proxy == PROXY_V1 ? "v1" : "off",
	    l->prefer == PREFER_IPV4 ? "ipv4" : l->prefer == PREFER_IPV6 ?
	    "ipv6" : "system", (long long)l->connect_ms,
	    (long long)l->idle_ms);
	for (i = 0; i < l->nr; i++) {
		r = &E.cf->r[l->r0 + i];
		logmsg("route %s sni=%s -> %s", l->name, r->text,
		    target_fmt(&r->t, t, sizeof(t)));
	}
	if (l->nr > 0)
		logmsg("route %s sni=(other) -> %s sni_timeout=%lldms", l->name,
		    target_fmt(&l->up, t, sizeof(t)), (long long)l->sni_ms);
}

/* Open, bind and listen; on failure die naming the listener. */
static int
listen_on(const struct listener *l)
{
	union sa a = l->addr;
	socklen_t len;
	int fd, on = 1, off = 0;
	char buf[SA_FMT_LEN];

	fd = socket(a.sa.sa_family, SOCK_STREAM, 0);
	if (fd == -1 && l->dual && errno == EAFNOSUPPORT) {
		/* No IPv6 in this kernel: ":PORT" means all IPv4. */
		memset(&a, 0, sizeof(a));
		a.in.sin_family = AF_INET;
		a.in.sin_port = l->addr.in6.sin6_port;
		fd = socket(AF_INET, SOCK_STREAM, 0);
	}
	if (fd == -1)
		die(1, "listen %s: socket:", l->name);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (a.sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, l->dual ? &off : &on, sizeof(on)) == -1)
		die(1, "listen %s: IPV6_V6ONLY:", l->name);
	if (bind(fd, &a.sa, sa_len(&a)) == -1)
		die(1, "listen %s: bind %s:", l->name,
		    sa_fmt(&a, buf, sizeof(buf)));
	if (listen(fd, 1024) == -1 || set_nonblock(fd) == -1)
		die(1, "listen %s:", l->name);
	len = sizeof(a);
	if (getsockname(fd, &a.sa, &len) == -1)
		die(1, "listen %s: getsockname:", l->name);
	describe("listening", l, &a);
	return fd;
}

static void
setup(void)
{
	struct sigaction sa;
	struct rlimit rl;
	int i, spare;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/*
	 * Two fds per connection; the rest are stdio, two pipes, listeners
	 * and room for the resolver threads' own sockets and files.  Past
	 * this cap clients wait in the backlog instead of failing.
	 */
	E.maxc = E.cf->max_conns;
	spare = 3 + 4 + E.cf->nl + 32;
	/* Read the limit again: the raise above may have been refused. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	    && (rlim_t)(2 * E.maxc + spare) > rl.rlim_cur) {
		E.maxc = rl.rlim_cur > (rlim_t)spare + 2 ?
		    (int)((rl.rlim_cur - (rlim_t)spare) / 2) : 1;
		logmsg("warning: max_conns=%d lowered to %d by the open-file "
		    "limit of %llu (2 per connection, %d spare)",
		    E.cf->max_conns, E.maxc, (unsigned long long)rl.rlim_cur,
		    spare);
	}

	if (pipe(E.sigp) == -1 || set_nonblock(E.sigp[0]) == -1 ||
	    set_nonblock(E.sigp[1]) == -1)
		die(1, "pipe:");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if ((E.resfd = resolve_init()) == -1)
		die(1, "resolver:");

	E.conns = calloc((size_t)E.maxc, sizeof(*E.conns));
	E.live = calloc((size_t)E.maxc, sizeof(int));
	E.freeslot = calloc((size_t)E.maxc, sizeof(int));
	E.pfd = calloc((size_t)(PFD_LISTENERS + E.cf->nl + 2 * E.maxc),
	    sizeof(*E.pfd));
	E.pmap = calloc((size_t)(PFD_LISTENERS + E.cf->nl + 2 * E.maxc),
	    sizeof(int));
	if (!E.conns || !E.live || !E.freeslot || !E.pfd || !E.pmap)
		die(1, "max_conns=%d: out of memory", E.maxc);
	for (i = 0; i < E.maxc; i++) {
		E.conns[i].s[CLI].fd = E.conns[i].s[UPS].fd = -1;
		E.freeslot[E.maxc - 1 - i] = i;
	}
	E.nfree = E.maxc;
	E.pfd[PFD_SIGNAL].fd = E.sigp[0];
	E.pfd[PFD_SIGNAL].events = POLLIN;
	E.pfd[PFD_RESOLVER].fd = E.resfd;
	E.pfd[PFD_RESOLVER].events = POLLIN;

	for (i = 0; i < E.cf->nl; i++)
		E.lfd[i] = listen_on(&E.cf->l[i]);
	logmsg("start version=%s conf=%s listeners=%d max_conns=%d",
	    EDGE_VERSION, E.confpath, E.cf->nl, E.maxc);
}

static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: edge [-t] [-c FILE]\n"
	    "  -c FILE  configuration (default /etc/edge/edge.conf)\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version\n"
	    "exit: 0 ok, 1 runtime or system failure, 2 usage or config "
	    "error\n");
	exit(code);
}

int
main(int argc, char **argv)
{
	char err[1024];
	int ch, test = 0;

	E.confpath = "/etc/edge/edge.conf";
	while ((ch = getopt(argc, argv, "c:thV")) != -1) {
		switch (ch) {
		case 'c':
			E.confpath = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(0);
			break;
		case 'V':
			printf("edge %s\n", EDGE_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if ((E.cf = malloc(sizeof(*E.cf))) == NULL)
		die(1, "out of memory");
	if (conf_load(E.confpath, E.cf, err, sizeof(err)) == -1)
		die(2, "%s", err);
	if (test) {
		for (ch = 0; ch < E.cf->nl; ch++)
			describe("listener", &E.cf->l[ch], &E.cf->l[ch].addr);
		logmsg("%s: ok, %d listener%s", E.confpath, E.cf->nl,
		    E.cf->nl == 1 ? "" : "s");
		return 0;
	}
	setup();
	run();
	return 0;
}
