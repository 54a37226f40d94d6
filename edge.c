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
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"

#define EDGE_VERSION	"0.1.0"
#define PEEK_MAX	(16 * 1024)	/* bytes held looking for a ClientHello */
/*
 * What poll() is handed.  With no connection busy: everything, and it may
 * sleep as long as it likes.  Otherwise the hot connections (those that
 * moved a byte in the last COLD_MS, hold a buffer, or are being set up)
 * every turn, plus a slice of the cold ones, sized so that each cold one
 * is looked at once every SCAN_MS.  5,000 idle connections then cost a
 * busy one a few descriptors per turn instead of 10,000, no turn pays for
 * all of them at once, and an idle one that wakes is seen within SCAN_MS.
 */
#define SCAN_MS		15
#define SLICE_MAX	32		/* cold connections per turn, at most */
#define COLD_MS		250
#ifndef PUMP_ROUNDS
#define PUMP_ROUNDS	8		/* buffers moved per side per turn, at most */
#endif
#define ACCEPT_BATCH	64		/* accepts per listener per turn */
#define ACCEPT_PAUSE_MS	250		/* after EMFILE and kin */

enum { CLI = 0, UPS = 1 };		/* side index; the peer is !side */

/* Why a connection ended: the log's why= and the metrics' label. */
enum why {
	W_EOF, W_IDLE, W_RESET, W_ERROR, W_CONNECT_FAILED, W_DNS_FAILED,
	W_DNS_TIMEOUT, W_SNI_TIMEOUT, W_SNI_TOO_BIG, W_SNI_INCOMPLETE,
	W_SNI_EOF, W_NOT_TLS, W_NO_ROUTE, W_NO_MEMORY, W_SHUTDOWN, W_LOOP,
	NCLOSE,				/* the rest are refusals, before a slot */
	W_DENIED = NCLOSE, W_PER_IP, NWHY
};

static const char *const why_name[NWHY] = {
	"eof", "idle", "reset", "error", "connect_failed", "dns_failed",
	"dns_timeout", "sni_timeout", "sni_too_big", "sni_incomplete",
	"sni_eof", "not_tls", "no_route", "no_memory", "shutdown", "loop",
	"denied", "per_ip_limit"
};

/*
 * Counters per listener name, kept across reloads (a name that stays
 * keeps its counts).  A slot is reused only when no config names it and
 * no connection holds it.
 */
#define MAX_STATS	(2 * MAX_LISTENERS)
struct stats {
	char name[NAME_MAX_LEN];	/* "" when unused */
	int named;			/* a listener of the running config */
	uint64_t active, total, up, down, connect_failed, why[NWHY];
};

/* Concurrent connections per (listener name, client address). */
struct ipent {
	uint32_t n;			/* 0: empty */
	uint16_t sid;
	unsigned char fam;
	unsigned char a[16];
};

enum cstate {
	C_FREE = 0,	/* slot unused */
	C_PEEK,		/* reading the ClientHello into s[CLI].in, unconsumed */
	C_RESOLVE,	/* lookup queued in resolve.c; client may send early */
	C_CONNECT,	/* non-blocking connect to av[ai] in progress */
	C_SPLICE	/* bytes both ways; half-closes tracked per side */
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
	int hot;		/* index in E.hot, or -1 */
	int64_t active;		/* when it last did anything */
	int sid;		/* its listener's counters: E.stats[sid] */
	struct conf *cf;	/* the config it was accepted under (held) */
	const struct listener *l;	/* in cf */
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
	struct conf *cf;	/* the running config */
	int lfd[MAX_LISTENERS];	/* -1: not open (a failed bind on reload) */
	int lsid[MAX_LISTENERS];	/* E.stats slot of each listener */
	union sa laddr[MAX_LISTENERS];	/* what each is bound to */
	int sfd;		/* status.listen, or -1 */
	struct stats stats[MAX_STATS];
	struct ipent *ipt;	/* open addressing, linear probing */
	uint32_t ipmask, ipseed;
	struct conn *conns;
	int maxc, nconn;
	int *live;		/* slots in use, dense */
	int *hot, nhot;		/* the hot ones among them, dense */
	int all;		/* this turn polls every connection */
	int *scan, nscan;	/* cold connections polled this turn */
	int slice0;		/* their pollset entries: [slice0, end) */
	int cursor;		/* where the next slice starts in E.live */
	int64_t scan_t;		/* when the last slice was taken */
	double credit;		/* cold connections owed a look */
	int *freeslot, nfree;	/* stack of freed slots */
	int hw;			/* slots ever used: [0, hw); untouched beyond */
	struct pollfd *pfd;
	int *pmap;		/* pfd index -> slot * 2 + side */
	int sigp[2];		/* self-pipe for signals */
	int resfd;		/* resolver wakeup */
	int64_t now;
	int64_t accept_resume;	/* listeners paused until then */
	int fd_short;		/* in an EMFILE episode, already logged */
	char loopmsg[128];	/* why the last address dialled was refused */
	int64_t start;		/* when edge started */
	uint64_t reload_ok, reload_failed;
	int pnl, pns;		/* listener and status entries in the pollset */
	int draining;		/* SIGTERM: no new connections */
	int64_t drain_end;
	int stop;
};

static struct edge E;

enum { PFD_SIGNAL, PFD_RESOLVER, PFD_STATUS, PFD_LISTENERS };

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
	return b == NULL || buf_can_fill(b);	/* NULL: buf_get() has one */
}

/* The table's hash: the address bytes, keyed by the listener's slot and a
 * per-process seed. */
static uint32_t
ip_hash(int sid, const unsigned char *b, size_t n)
{
	return sa_hash(b, n, E.ipseed ^ (uint32_t)sid * 0x9e3779b9u);
}

/*
 * The entry for (sid, a), or the empty one where it would go.  The table
 * holds at most one entry per connection and has twice as many slots, so
 * there is always an empty one.
 */
static struct ipent *
ip_find(int sid, const union sa *a)
{
	size_t n;
	const unsigned char *b = sa_bytes(a, &n);
	uint32_t i = ip_hash(sid, b, n) & E.ipmask;
	struct ipent *e;

	for (;; i = (i + 1) & E.ipmask) {
		e = &E.ipt[i];
		if (e->n == 0 || (e->sid == sid && e->fam ==
		    a->sa.sa_family && memcmp(e->a, b, n) == 0))
			return e;
	}
}

/* How many connections (sid, a) holds now. */
static uint32_t
ip_count(int sid, const union sa *a)
{
	return ip_find(sid, a)->n;
}

static void
ip_get(int sid, const union sa *a)
{
	struct ipent *e = ip_find(sid, a);
	const unsigned char *b;
	size_t n;

	if (e->n++ == 0) {
		b = sa_bytes(a, &n);
		e->sid = (uint16_t)sid;
		e->fam = (unsigned char)a->sa.sa_family;
		memset(e->a, 0, sizeof(e->a));
		memcpy(e->a, b, n);
	}
}

/* Drop one; an entry that reaches 0 is deleted by shifting back the run
 * after it, so that lookups need no tombstones. */
static void
ip_put(int sid, const union sa *a)
{
	struct ipent *e = ip_find(sid, a);
	uint32_t i, j, k;

	if (e->n == 0 || --e->n > 0)
		return;
	i = (uint32_t)(e - E.ipt);
	for (j = (i + 1) & E.ipmask; E.ipt[j].n != 0; j = (j + 1) & E.ipmask) {
		k = ip_hash(E.ipt[j].sid, E.ipt[j].a, E.ipt[j].fam == AF_INET ?
		    4 : 16) & E.ipmask;
		/* Move j into the hole at i unless its home k lies in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		E.ipt[i] = E.ipt[j];
		i = j;
	}
	E.ipt[i].n = 0;
}

static void
hot_add(struct conn *c)
{
	if (c->hot >= 0)
		return;
	c->hot = E.nhot;
	E.hot[E.nhot++] = (int)(c - E.conns);
}

static void
hot_del(struct conn *c)
{
	int last;

	if (c->hot < 0)
		return;
	last = E.hot[--E.nhot];
	E.hot[c->hot] = last;
	E.conns[last].hot = c->hot;
	c->hot = -1;
}

/*
 * The one exit.  Logs the close line, closes both fds (with an RST after
 * a reset or error while relaying, so the other side learns of it too),
 * and returns the slot.  detail overrides strerror(err) in the log.
 */
static void
conn_close(struct conn *c, enum why why, int err, const char *detail)
{
	struct linger lg = { 1, 0 };
	char a[SA_FMT_LEN], u[SA_FMT_LEN];
	const char *es = detail ? detail : err ? strerror(err) : NULL;
	int64_t t = E.now - c->t0;
	struct logline ln;
	int i, last;

	ln.n = 0;
	/* The same line log_msg() would print; appended by hand, as it is
	 * written once per connection (printf was a tenth of the CPU spent
	 * per connection in bench/ workload 2). */
	log_add(&ln, "edge: close l=", c->l->name);
	log_add(&ln, " c=", sa_fmt(&c->cli, a, sizeof(a)));
	log_add(&ln, " sni=", c->sni[0] ? c->sni : "-");
	log_add(&ln, " r=", c->r ? c->r->text : c->l->nr > 0 &&
	    c->st != C_PEEK ? "default" : "-");
	log_add(&ln, " u=", c->st >= C_CONNECT ? sa_fmt(&c->ups, u,
	    sizeof(u)) : "-");
	log_num(&ln, " up=", c->s[CLI].nread, 0);
	log_num(&ln, " down=", c->s[UPS].nread, 0);
	log_num(&ln, " t=", (uint64_t)(t / 1000), 0);
	log_num(&ln, ".", (uint64_t)(t % 1000), 3);
	log_add(&ln, "s why=", why_name[why]);
	if (es != NULL) {
		log_add(&ln, " err=\"", es);
		log_add(&ln, "\"", "");
	}
	log_end(&ln);
	E.stats[c->sid].why[why]++;
	E.stats[c->sid].active--;
	ip_put(c->sid, &c->cli);
	for (i = CLI; i <= UPS; i++) {
		if (c->s[i].fd == -1)
			continue;
		if (err != 0 && c->st == C_SPLICE)
			setsockopt(c->s[i].fd, SOL_SOCKET, SO_LINGER, &lg,
			    sizeof(lg));
		close(c->s[i].fd);
		c->s[i].fd = -1;
		buf_put(c->s[i].in);
		c->s[i].in = NULL;
	}
	free(c->addrs);
	c->addrs = NULL;
	if (--c->cf->refs == 0 && c->cf != E.cf)
		free(c->cf);	/* the last connection of a replaced config */
	c->cf = NULL;
	c->st = C_FREE;
	c->gen++;
	hot_del(c);
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
	conn_close(c, err == ECONNRESET || err == EPIPE ? W_RESET : W_ERROR,
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
	unsigned char *p;
	size_t room;
	ssize_t n;
	int moved = 0, round, progress;
	int rd = (rin & (POLLIN | POLLHUP | POLLERR)) != 0, wr = rout != 0;

	/* Read and write in turn while either makes progress: a busy stream
	 * moves up to PUMP_ROUNDS buffers per poll() instead of one. */
	for (round = 0; round < PUMP_ROUNDS; round++) {
		progress = 0;
		if (rd && can_read(s)) {
			if (s->in == NULL && (s->in = buf_get()) == NULL) {
				conn_close(c, W_NO_MEMORY, ENOMEM, NULL);
				return -1;
			}
			b = s->in;
			p = buf_tail(b, &room);
			do
				n = read(s->fd, p, room);
			while (n == -1 && errno == EINTR);
			if (n > 0) {
				buf_fill(b, (size_t)n);
				s->nread += (uint64_t)n;
				if (from == CLI)
					E.stats[c->sid].up += (uint64_t)n;
				else
					E.stats[c->sid].down += (uint64_t)n;
				progress = wr = 1;
			} else if (n == 0) {
				s->eof = 1;
				rd = 0;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				rd = 0;
			} else {
				conn_fail(c, from, errno);
				return -1;
			}
		}
		b = s->in;
		if (c->st == C_SPLICE && b != NULL && buf_len(b) > 0 && wr) {
			do
				n = write(d->fd, buf_data(b), buf_len(b));
			while (n == -1 && errno == EINTR);
			if (n > 0) {
				buf_drain(b, (size_t)n);
				progress = 1;
				/* A short write: the peer's buffer is full. */
				wr = buf_len(b) == 0;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				wr = 0;
			} else {
				conn_fail(c, !from, errno);
				return -1;
			}
		}
		if (!progress)
			break;
		moved = 1;
	}
	if (s->in != NULL && buf_len(s->in) == 0) {
		buf_put(s->in);
		s->in = NULL;
	}
	if (moved && c->st == C_SPLICE)
		arm_idle(c);
	if (c->st == C_SPLICE && s->eof && s->in == NULL && !d->shut) {
		/* If the other way is done too, conn_step() closes now and
		 * close() sends the FIN: no shutdown() needed. */
		if (d->eof && d->in == NULL) {
			d->shut = 1;
			return 0;
		}
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

	E.stats[c->sid].connect_failed++;
	if (c->ai + 1 < c->an)
		log_msg("retry l=%s c=%s u=%s err=\"%s\"", c->l->name,
		    sa_fmt(&c->cli, a, sizeof(a)), sa_fmt(&c->ups, u, sizeof(u)),
		    c->err == ELOOP ? E.loopmsg : strerror(c->err));
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
		log_msg("accept l=%s paused=%dms conns=%d err=\"%s\"", lname,
		    ACCEPT_PAUSE_MS, E.nconn, strerror(err));
	E.fd_short = 1;
	E.accept_resume = E.now + ACCEPT_PAUSE_MS;
}

/*
 * Is a one of edge's own listening sockets?  Dialling it would bring the
 * connection back to edge, which would dial it again, until max_conns is
 * used up: a name that resolves to this box (the edge's public name, not
 * the mail server's) does that.  Sets E.loopmsg when it is.
 */
static int
self_dial(const union sa *a)
{
	const struct listener *l;
	char b[SA_FMT_LEN];
	int i, r;

	for (i = 0; i < E.cf->nl; i++) {
		l = &E.cf->l[i];
		if (E.lfd[i] == -1 ||
		    (r = sa_reaches(&E.laddr[i], l->dual, a)) == 0 ||
		    (r == -1 && !sys_is_local(a)))
			continue;
		snprintf(E.loopmsg, sizeof(E.loopmsg), "a loop: edge itself "
		    "listens there (%s on %s)", l->name,
		    sa_fmt(&E.laddr[i], b, sizeof(b)));
		return 1;
	}
	return 0;
}

/*
 * Start a non-blocking connect to av[ai], or the next that can start.
 * Each failure with an address left to try gets a "retry" line: a family
 * that fails (no IPv6 route, say) should not stay invisible.  An address
 * that is edge's own listener is never dialled.
 */
static void
conn_dial(struct conn *c)
{
	const union sa *a;
	int fd;

	for (; c->ai < c->an; c->ai++) {
		a = &c->av[c->ai];
		c->ups = *a;
		if (self_dial(a)) {
			c->err = ELOOP;
			conn_retry_log(c);
			continue;
		}
		if ((fd = sys_socket_nb(a->sa.sa_family)) != -1) {
			sys_tune(fd);
			if (E.fd_short)
				log_msg("accept l=%s resumed conns=%d",
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
	if (c->err == ELOOP)
		conn_close(c, W_LOOP, 0, E.loopmsg);
	else
		conn_close(c, W_CONNECT_FAILED, c->err, NULL);
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
			conn_close(c, W_NO_MEMORY, ENOMEM, NULL);
			return -1;
		}
		buf_prepend(s->in, hdr, n);
	}
	c->st = C_SPLICE;
	arm_idle(c);
	return 0;
}

/* The connect in progress has finished: on to SPLICE or the next address. */
static int
conn_connected(struct conn *c, short rev)
{
	socklen_t len = sizeof(int);
	int e = 0;

	/* Writable without an error or hangup: connected.  Otherwise ask
	 * the socket why. */
	if ((rev & (POLLERR | POLLHUP)) && getsockopt(c->s[UPS].fd,
	    SOL_SOCKET, SO_ERROR, &e, &len) == -1)
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
		conn_close(c, W_DNS_FAILED, errno, NULL);
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

	res = sni_parse(b ? buf_data(b) : (const unsigned char *)"",
	    b ? buf_len(b) : 0, c->sni, sizeof(c->sni));
	if (res == SNI_MORE) {
		if (b != NULL && buf_len(b) >= PEEK_MAX) {
			conn_close(c, W_SNI_TOO_BIG, 0, NULL);
			return;
		}
		if (c->s[CLI].eof) {
			conn_close(c, b ? W_SNI_INCOMPLETE : W_SNI_EOF, 0,
			    NULL);
			return;
		}
		return;
	}
	if (res == SNI_FOUND && (c->r = conf_route(c->cf, c->l, c->sni)))
		t = &c->r->t;
	if (res != SNI_FOUND)
		c->sni[0] = '\0';
	if (t->host[0] == '\0') {
		conn_close(c, res == SNI_NOT_TLS ? W_NOT_TLS : W_NO_ROUTE, 0,
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
	c->active = E.now;
	hot_add(c);
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
		if (conn_connected(c, rev[UPS]) == -1)
			return;
		/* FALLTHROUGH */
	case C_SPLICE:
		if (pump(c, CLI, rev[CLI], rev[UPS]) == -1 ||
		    pump(c, UPS, rev[UPS], rev[CLI]) == -1)
			return;
		if (conn_done(c))
			conn_close(c, W_EOF, 0, NULL);
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

/* Close a client refused before it got a slot: an RST, no TIME_WAIT. */
static void
refuse(const struct listener *l, struct stats *st, int fd,
    const union sa *cli, enum why why)
{
	struct linger lg = { 1, 0 };
	char a[SA_FMT_LEN];

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	st->why[why]++;
	if (!log_refusal(E.now))
		return;
	log_msg("close l=%s c=%s sni=- r=- u=- up=0 down=0 t=0.000s why=%s",
	    l->name, sa_fmt(cli, a, sizeof(a)), why_name[why]);
}

static void
conn_start(int li, int fd, const union sa *sa)
{
	const struct listener *l = &E.cf->l[li];
	socklen_t len = sizeof(union sa);
	struct stats *st = &E.stats[E.lsid[li]];
	struct conn *c;
	union sa cli = *sa;
	int slot;

	sa_unmap(&cli);
	st->total++;
	if (!conf_allowed(E.cf, l, &cli)) {
		refuse(l, st, fd, &cli, W_DENIED);
		return;
	}
	if (l->max_per_ip > 0 &&
	    ip_count(E.lsid[li], &cli) >= (uint32_t)l->max_per_ip) {
		refuse(l, st, fd, &cli, W_PER_IP);
		return;
	}
	if (!sys_inherits(fd))
		sys_tune(fd);
	slot = E.nfree > 0 ? E.freeslot[--E.nfree] : E.hw++;
	c = &E.conns[slot];
	c->st = C_RESOLVE;
	c->cf = E.cf;
	E.cf->refs++;
	c->l = l;
	c->sid = E.lsid[li];
	st->active++;
	ip_get(c->sid, &cli);
	c->live = E.nconn;
	E.live[E.nconn++] = slot;
	c->hot = -1;
	c->active = E.now;
	hot_add(c);
	c->s[CLI].fd = fd;
	c->s[UPS].fd = -1;
	c->s[CLI].eof = c->s[UPS].eof = 0;
	c->s[CLI].shut = c->s[UPS].shut = 0;
	c->s[CLI].nread = c->s[UPS].nread = 0;
	c->cli = cli;
	memset(&c->ups, 0, sizeof(c->ups));
	memset(&c->loc, 0, sizeof(c->loc));
	c->t0 = E.now;
	c->err = 0;
	c->ai = 0;
	c->r = NULL;
	c->sni[0] = '\0';
	if (l->proxy != PROXY_OFF && getsockname(fd, &c->loc.sa, &len) == -1) {
		conn_close(c, W_ERROR, errno, NULL);
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
		fd = sys_accept_nb(E.lfd[li], &sa, &len);
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
		log_msg("accept l=%s:", E.cf->l[li].name);
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
			conn_close(c, W_DNS_FAILED, 0, err);
			continue;
		}
		c->addrs = a;
		c->av = a->a;
		c->an = a->n;
		conn_dial(c);
	}
}

static void
expire_one(struct conn *c)
{
	if (c->st == C_FREE || c->deadline > E.now)
		return;
	switch (c->st) {
	case C_PEEK:
		conn_close(c, W_SNI_TIMEOUT, 0, NULL);
		break;
	case C_RESOLVE:
		conn_close(c, W_DNS_TIMEOUT, 0, NULL);
		break;
	case C_CONNECT:
		conn_next(c, ETIMEDOUT);
		break;
	case C_SPLICE:
		conn_close(c, W_IDLE, 0, NULL);
		break;
	case C_FREE:
		break;
	}
}

static void
expire(void)
{
	int i;

	for (i = 0; i < E.nscan; i++)
		expire_one(&E.conns[E.scan[i]]);

	/* Walk backwards: a close moves the last entry into slot i.  Cold
	 * connections are looked at when their slice comes. */
	for (i = (E.all ? E.nconn : E.nhot) - 1; i >= 0; i--)
		expire_one(&E.conns[E.all ? E.live[i] : E.hot[i]]);
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
describe(const char *what, const struct conf *cf, const struct listener *l,
    const union sa *a)
{
	char buf[SA_FMT_LEN], t[HOST_MAX_LEN + 16], lim[64] = "";
	const struct route *r;
	int i;

	if (l->nc > 0 || l->max_per_ip > 0)
		snprintf(lim, sizeof(lim), " allow=%d deny=%d max_conns_per_ip=%d",
		    l->nallow, l->nc - l->nallow, l->max_per_ip);
	log_msg("%s %s on %s%s -> %s proxy=%s prefer=%s connect_timeout=%lldms "
	    "idle_timeout=%lldms%s", what, l->name, sa_fmt(a, buf, sizeof(buf)),
	    l->dual && a->sa.sa_family == AF_INET6 ? " (v4+v6)" : "",
	    target_fmt(&l->up, t, sizeof(t)),
	    l->proxy == PROXY_V2 ? "v2" : l->proxy == PROXY_V1 ? "v1" : "off",
	    l->prefer == PREFER_IPV4 ? "ipv4" : l->prefer == PREFER_IPV6 ?
	    "ipv6" : "system", (long long)l->connect_ms,
	    (long long)l->idle_ms, lim);
	for (i = 0; i < l->nr; i++) {
		r = &cf->r[l->r0 + i];
		log_msg("route %s sni=%s -> %s", l->name, r->text,
		    target_fmt(&r->t, t, sizeof(t)));
	}
	if (l->nr > 0)
		log_msg("route %s sni=(other) -> %s sni_timeout=%lldms", l->name,
		    target_fmt(&l->up, t, sizeof(t)), (long long)l->sni_ms);
}

/*
 * Open, bind and listen on a (":PORT" when dual).  Returns the fd, or -1
 * with the reason in err.  *bound gets the address actually bound.
 */
static int
open_listener(const char *name, const union sa *addr, int dual,
    union sa *bound, char *err, size_t errlen)
{
	union sa a = *addr;
	socklen_t len;
	int fd, on = 1, off = 0, e;
	char buf[SA_FMT_LEN];
	const char *what = "socket";

	fd = socket(a.sa.sa_family, SOCK_STREAM, 0);
	if (fd == -1 && dual && errno == EAFNOSUPPORT) {
		/* No IPv6 in this kernel: ":PORT" means all IPv4. */
		memset(&a, 0, sizeof(a));
		a.in.sin_family = AF_INET;
		a.in.sin_port = addr->in6.sin6_port;
		fd = socket(AF_INET, SOCK_STREAM, 0);
	}
	if (fd == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	what = "IPV6_V6ONLY";
	if (a.sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, dual ? &off : &on, sizeof(on)) == -1)
		goto fail;
	what = "bind";
	if (bind(fd, &a.sa, sa_len(&a)) == -1)
		goto fail;
	sys_tune(fd);	/* inherited by accepted sockets where the system does */
	what = "listen";
	if (listen(fd, 1024) == -1 || sys_nonblock(fd) == -1)
		goto fail;
	len = sizeof(*bound);
	what = "getsockname";
	if (getsockname(fd, &bound->sa, &len) == -1)
		goto fail;
	return fd;
fail:
	e = errno;
	snprintf(err, errlen, "listen %s: %s %s: %s%s", name, what,
	    sa_fmt(&a, buf, sizeof(buf)), strerror(e), e == EACCES &&
	    geteuid() != 0 ? " (a port below 1024 needs root or "
	    "CAP_NET_BIND_SERVICE; edge has dropped root: restart it to bind "
	    "this port)" : "");
	if (fd != -1)
		close(fd);
	errno = e;
	return -1;
}

/* The stats slot for a listener name: its own if it has one. */
static int
stats_slot(const char *name)
{
	int i, free_at = -1;

	for (i = 0; i < MAX_STATS; i++) {
		if (strcmp(E.stats[i].name, name) == 0)
			return i;
		if (free_at == -1 && (E.stats[i].name[0] == '\0' ||
		    (!E.stats[i].named && E.stats[i].active == 0)))
			free_at = i;
	}
	if (free_at != -1) {
		memset(&E.stats[free_at], 0, sizeof(E.stats[free_at]));
		snprintf(E.stats[free_at].name, NAME_MAX_LEN, "%s", name);
	}
	return free_at;
}

/* The keys of a listener that differ between o and n, for the log. */
static void
listener_diff(const struct conf *oc, const struct listener *o,
    const struct conf *nc, const struct listener *n, int moved, char *out,
    size_t sz)
{
	size_t k = 0;
	int i, routes = o->nr != n->nr, acl = o->nc != n->nc ||
	    o->nallow != n->nallow;

	for (i = 0; !routes && i < n->nr; i++)
		routes = strcmp(oc->r[o->r0 + i].text, nc->r[n->r0 + i].text)
		    != 0 || memcmp(&oc->r[o->r0 + i].t, &nc->r[n->r0 + i].t,
		    sizeof(struct target)) != 0;
	for (i = 0; !acl && i < n->nc; i++)
		acl = memcmp(&oc->c[o->c0 + i], &nc->c[n->c0 + i],
		    sizeof(struct cidr)) != 0;
#define DIFF(cond, what) if (cond) k += (size_t)snprintf(out + k, \
    k < sz ? sz - k : 0, "%s%s", k ? "," : "", what)
	out[0] = '\0';
	DIFF(moved, "listen");
	DIFF(memcmp(&o->up, &n->up, sizeof(o->up)) != 0, "upstream");
	DIFF(routes, "sni");
	DIFF(o->proxy != n->proxy, "proxy");
	DIFF(o->prefer != n->prefer, "prefer");
	DIFF(o->connect_ms != n->connect_ms, "connect_timeout");
	DIFF(o->dns_ms != n->dns_ms, "dns_timeout");
	DIFF(o->idle_ms != n->idle_ms, "idle_timeout");
	DIFF(o->sni_ms != n->sni_ms, "sni_timeout");
	DIFF(acl, "allow/deny");
	DIFF(o->max_per_ip != n->max_per_ip, "max_conns_per_ip");
#undef DIFF
}

/*
 * SIGHUP: read the config again.  A bad one is refused with the message
 * edge -t would print.  Otherwise listeners whose address stays keep their
 * socket (no connection attempt is refused while reloading), the others
 * close or open, and each connection keeps the config it was accepted
 * under until it ends.  max_conns and user apply at the next start.
 */
static void
reload(void)
{
	struct conf *nc, *oc = E.cf;
	char err[1024], why[256];
	int nfd[MAX_LISTENERS], nsid[MAX_LISTENERS], kept[MAX_LISTENERS];
	int from[MAX_LISTENERS];	/* the old listener whose socket it took */
	union sa naddr[MAX_LISTENERS];
	int i, j, bad = 0;
	union sa a;

	if ((nc = malloc(sizeof(*nc))) == NULL ||
	    conf_load(E.confpath, nc, err, sizeof(err)) == -1) {
		log_msg("reload failed: %s; still running the old config",
		    nc ? err : "out of memory");
		free(nc);
		E.reload_failed++;
		return;
	}
	for (i = 0; i < nc->nl; i++) {
		if ((nsid[i] = stats_slot(nc->l[i].name)) == -1) {
			log_msg("reload failed: no room for the counters of "
			    "%s; still running the old config", nc->l[i].name);
			for (j = 0; j < MAX_STATS; j++)
				E.stats[j].named = 0;
			for (j = 0; j < oc->nl; j++)
				E.stats[E.lsid[j]].named = 1;
			free(nc);
			E.reload_failed++;
			return;
		}
		E.stats[nsid[i]].named = 2;	/* pinned while we decide */
	}
	for (i = 0; i < MAX_STATS; i++)
		E.stats[i].named = E.stats[i].named == 2;

	/*
	 * Sockets whose address is unchanged carry over as they are: the
	 * same text in the config, or the address an old ":0" was given.
	 */
	memset(kept, 0, sizeof(kept));
	for (i = 0; i < nc->nl; i++) {
		nfd[i] = from[i] = -1;
		for (j = 0; j < oc->nl; j++) {
			if (kept[j] || E.lfd[j] == -1 ||
			    oc->l[j].dual != nc->l[i].dual)
				continue;
			/* Port 0 is "any port": the same listener's only. */
			if (!sa_equal(&E.laddr[j], &nc->l[i].addr) &&
			    (!sa_equal(&oc->l[j].addr, &nc->l[i].addr) ||
			    (sa_port(&nc->l[i].addr) == 0 &&
			    strcmp(oc->l[j].name, nc->l[i].name) != 0)))
				continue;
			nfd[i] = E.lfd[j];
			naddr[i] = E.laddr[j];
			from[i] = j;
			kept[j] = 1;
			break;
		}
	}
	/* Close the rest first: a new address may overlap an old one. */
	for (j = 0; j < oc->nl; j++) {
		for (i = 0; i < nc->nl; i++)
			if (strcmp(nc->l[i].name, oc->l[j].name) == 0)
				break;
		if (i == nc->nl)
			log_msg("reload removed %s", oc->l[j].name);
		if (!kept[j] && E.lfd[j] != -1)
			close(E.lfd[j]);
	}
	if (E.sfd != -1 && (!nc->status || !sa_equal(&nc->status_addr,
	    &oc->status_addr) || nc->status_dual != oc->status_dual)) {
		close(E.sfd);
		E.sfd = -1;
	}
	if (nc->status && E.sfd == -1) {
		E.sfd = open_listener("status", &nc->status_addr,
		    nc->status_dual, &a, err, sizeof(err));
		if (E.sfd == -1) {
			log_msg("reload %s", err);
			bad++;
		} else {
			log_msg("status on %s", sa_fmt(&a, why, sizeof(why)));
		}
	}
	for (i = 0; i < nc->nl; i++) {
		for (j = 0; j < oc->nl; j++)
			if (strcmp(nc->l[i].name, oc->l[j].name) == 0)
				break;
		if (nfd[i] == -1) {
			naddr[i] = nc->l[i].addr;
			nfd[i] = open_listener(nc->l[i].name, &nc->l[i].addr,
			    nc->l[i].dual, &naddr[i], err, sizeof(err));
			if (nfd[i] == -1) {
				log_msg("reload %s", err);
				bad++;
			}
		}
		if (j == oc->nl) {
			describe("reload added", nc, &nc->l[i], &naddr[i]);
			continue;
		}
		listener_diff(oc, &oc->l[j], nc, &nc->l[i], from[i] != j, why,
		    sizeof(why));
		if (why[0] != '\0') {
			log_msg("reload changed %s: %s", nc->l[i].name, why);
			describe("reload now", nc, &nc->l[i], &naddr[i]);
		}
	}
	if (nc->max_conns != oc->max_conns)
		log_msg("reload: max_conns=%d applies at the next start; still "
		    "%d", nc->max_conns, E.maxc);
	if (nc->user.set != oc->user.set || nc->user.uid != oc->user.uid ||
	    nc->user.gid != oc->user.gid || strcmp(nc->user.name,
	    oc->user.name) != 0)
		log_msg("reload: user applies at the next start");
	memcpy(E.lfd, nfd, sizeof(nfd));
	memcpy(E.laddr, naddr, sizeof(naddr));
	memcpy(E.lsid, nsid, sizeof(nsid));
	E.cf = nc;
	nc->refs = 0;
	if (oc->refs == 0)
		free(oc);	/* else the last of its connections frees it */
	E.reload_ok++;
	log_msg("reload ok listeners=%d conns=%d%s", nc->nl, E.nconn,
	    bad ? " (with errors above: those listeners are closed)" : "");
}

/* SIGUSR1: the counters of the status endpoint, one line per listener. */
static void
log_stats(void)
{
	const struct stats *st;
	char closes[NCLOSE * 24];
	uint64_t bytes;
	size_t k;
	int i, w, big, small;

	buf_usage(&big, &small, &bytes);
	log_msg("stats uptime=%llds conns=%d max_conns=%d buffers=%d "
	    "small_buffers=%d buffer_kb=%llu reloads=%llu reload_failures=%llu",
	    (long long)(E.now - E.start) / 1000, E.nconn, E.maxc,
	    big + small, small, (unsigned long long)bytes / 1024,
	    (unsigned long long)E.reload_ok,
	    (unsigned long long)E.reload_failed);
	for (i = 0; i < MAX_STATS; i++) {
		st = &E.stats[i];
		if (!st->named && st->active == 0)
			continue;
		closes[0] = '\0';
		for (k = 0, w = 0; w < NCLOSE; w++)
			if (st->why[w] > 0)
				k += (size_t)snprintf(closes + k,
				    sizeof(closes) - k, " %s=%llu", why_name[w],
				    (unsigned long long)st->why[w]);
		log_msg("stats l=%s active=%llu total=%llu denied=%llu "
		    "per_ip_limit=%llu up=%llu down=%llu dns_failures=%llu "
		    "connect_failures=%llu%s", st->name,
		    (unsigned long long)st->active,
		    (unsigned long long)st->total,
		    (unsigned long long)st->why[W_DENIED],
		    (unsigned long long)st->why[W_PER_IP],
		    (unsigned long long)st->up, (unsigned long long)st->down,
		    (unsigned long long)(st->why[W_DNS_FAILED] +
		    st->why[W_DNS_TIMEOUT]),
		    (unsigned long long)st->connect_failed, closes);
	}
}

/* A growing text buffer for the metrics page; on ENOMEM p becomes NULL. */
struct text {
	char *p;
	size_t n, cap;
};

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *q;
	int r;

	if (t->p == NULL && t->cap != 0)
		return;
	for (;;) {
		va_start(ap, fmt);
		r = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n :
		    0, fmt, ap);
		va_end(ap);
		if (r < 0)
			return;
		need = t->n + (size_t)r + 1;
		if (t->p != NULL && need <= t->cap) {
			t->n += (size_t)r;
			return;
		}
		t->cap = need > 2 * t->cap ? need + 4096 : 2 * t->cap;
		if ((q = realloc(t->p, t->cap)) == NULL) {
			free(t->p);
			t->p = NULL;
			return;
		}
		t->p = q;
	}
}

char *
edge_metrics(size_t *len)
{
	struct text t = { NULL, 0, 0 };
	const struct stats *st;
	uint64_t bytes;
	int64_t ms;
	int i, w, up, big, small;

	buf_usage(&big, &small, &bytes);

#define FAMILY(name, type, help) text_add(&t, "# HELP " name " " help \
    "\n# TYPE " name " " type "\n")
#define EACH for (i = 0; i < MAX_STATS; i++) \
	if ((st = &E.stats[i])->named || st->active > 0)
	FAMILY("edge_connections_active", "gauge",
	    "Connections open now (client side accepted, not yet closed).");
	EACH text_add(&t, "edge_connections_active{listener=\"%s\"} %llu\n",
	    st->name, (unsigned long long)st->active);
	FAMILY("edge_connections_total", "counter",
	    "Connections accepted, refused ones included.");
	EACH text_add(&t, "edge_connections_total{listener=\"%s\"} %llu\n",
	    st->name, (unsigned long long)st->total);
	FAMILY("edge_connections_refused_total", "counter",
	    "Connections closed at accept by allow/deny or max_conns_per_ip.");
	EACH for (w = NCLOSE; w < NWHY; w++)
		text_add(&t, "edge_connections_refused_total{listener=\"%s\","
		    "reason=\"%s\"} %llu\n", st->name, why_name[w],
		    (unsigned long long)st->why[w]);
	FAMILY("edge_connections_closed_total", "counter",
	    "Connections ended after accept, by the why= of their log line.");
	EACH for (w = 0; w < NCLOSE; w++)
		text_add(&t, "edge_connections_closed_total{listener=\"%s\","
		    "why=\"%s\"} %llu\n", st->name, why_name[w],
		    (unsigned long long)st->why[w]);
	FAMILY("edge_bytes_total", "counter",
	    "Bytes relayed: up is client to upstream, down the reverse.");
	EACH text_add(&t, "edge_bytes_total{listener=\"%s\",direction=\"up\"} "
	    "%llu\nedge_bytes_total{listener=\"%s\",direction=\"down\"} %llu\n",
	    st->name, (unsigned long long)st->up, st->name,
	    (unsigned long long)st->down);
	FAMILY("edge_dns_failures_total", "counter",
	    "Upstream lookups that failed or timed out.");
	EACH text_add(&t, "edge_dns_failures_total{listener=\"%s\"} %llu\n",
	    st->name, (unsigned long long)(st->why[W_DNS_FAILED] +
	    st->why[W_DNS_TIMEOUT]));
	FAMILY("edge_connect_failures_total", "counter",
	    "Upstream connect attempts that failed, one per address tried.");
	EACH text_add(&t, "edge_connect_failures_total{listener=\"%s\"} %llu\n",
	    st->name, (unsigned long long)st->connect_failed);
	FAMILY("edge_listener_up", "gauge",
	    "1 if the listener's socket is open (0: its bind failed).");
	for (i = 0; i < E.cf->nl; i++) {
		up = E.lfd[i] != -1 && !E.draining;
		text_add(&t, "edge_listener_up{listener=\"%s\"} %d\n",
		    E.cf->l[i].name, up);
	}
#undef EACH
	FAMILY("edge_reloads_total", "counter", "Configuration reloads (SIGHUP).");
	text_add(&t, "edge_reloads_total{result=\"ok\"} %llu\n"
	    "edge_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)E.reload_ok,
	    (unsigned long long)E.reload_failed);
	FAMILY("edge_max_conns", "gauge", "Connections edge will hold.");
	text_add(&t, "edge_max_conns %d\n", E.maxc);
	FAMILY("edge_buffers", "gauge",
	    "Relay buffers allocated, by size in bytes.");
	text_add(&t, "edge_buffers{size=\"%d\"} %d\n"
	    "edge_buffers{size=\"%d\"} %d\n",
	    BUF_BIG, big, BUF_SMALL, small);
	FAMILY("edge_buffer_bytes", "gauge", "Memory held by relay buffers.");
	text_add(&t, "edge_buffer_bytes %llu\n",
	    (unsigned long long)bytes);
	FAMILY("edge_uptime_seconds", "gauge", "Seconds since edge started.");
	ms = sys_clock_ms() - E.start;
	text_add(&t, "edge_uptime_seconds %lld.%03lld\n", (long long)ms / 1000,
	    (long long)ms % 1000);
	FAMILY("edge_info", "gauge", "The running version.");
	text_add(&t, "edge_info{version=\"%s\"} 1\n", EDGE_VERSION);
#undef FAMILY
	*len = t.n;
	return t.p;
}

/* SIGTERM or SIGINT: stop accepting, let connections finish. */
static void
drain(int sig)
{
	const char *name = sig == SIGTERM ? "TERM" : "INT";
	int i;

	if (E.draining) {
		log_msg("stop signal=%s again: closing %d connections now",
		    name, E.nconn);
		E.stop = 1;
		return;
	}
	log_msg("drain signal=%s conns=%d timeout=%lldms", name, E.nconn,
	    (long long)E.cf->drain_ms);
	E.draining = 1;
	E.drain_end = E.now + E.cf->drain_ms;
	/* Closed, not just unpolled: new clients are refused by the
	 * kernel at once instead of waiting in a backlog nobody reads. */
	for (i = 0; i < E.cf->nl; i++) {
		if (E.lfd[i] != -1)
			close(E.lfd[i]);
		E.lfd[i] = -1;
	}
	if (E.sfd != -1)
		close(E.sfd);
	E.sfd = -1;
}

static void
handle_signals(void)
{
	unsigned char b[16];
	ssize_t i, n;

	while ((n = read(E.sigp[0], b, sizeof(b))) > 0) {
		for (i = 0; i < n && !E.stop; i++) {
			if (b[i] == SIGTERM || b[i] == SIGINT)
				drain(b[i]);
			else if (b[i] == SIGHUP && E.draining)
				log_msg("hup ignored: draining");
			else if (b[i] == SIGHUP)
				reload();
			else if (b[i] == SIGUSR1)
				log_stats();
		}
	}
}

/* Add c's descriptors to the pollset from entry n; returns the new n. */
static int
poll_conn(struct conn *c, int n, int64_t *next)
{
	int side;
	short ev;

	if (c->deadline < *next)
		*next = c->deadline;
	for (side = CLI; side <= UPS; side++) {
		if ((ev = interest(c, side)) == 0)
			continue;
		E.pfd[n].fd = c->s[side].fd;
		E.pfd[n].events = ev;
		E.pfd[n].revents = 0;
		E.pmap[n] = (int)(c - E.conns) * 2 + side;
		n++;
	}
	return n;
}

/*
 * The cold connections owed a look since the last slice, from where the
 * last slice ended: each one comes round once per SCAN_MS.  Those with a
 * deadline due are left to expire() by E.scan.
 */
static int
poll_slice(int n, int64_t *next)
{
	int ncold = E.nconn - E.nhot, k, seen;
	struct conn *c;

	E.slice0 = n;
	if (ncold == 0)
		return n;
	E.credit += (double)ncold * (double)(E.now - E.scan_t) / SCAN_MS;
	E.scan_t = E.now;
	if (E.credit > ncold)
		E.credit = ncold;
	k = E.credit < SLICE_MAX ? (int)E.credit : SLICE_MAX;
	for (seen = 0; k > 0 && seen < E.nconn; seen++) {
		if (E.cursor >= E.nconn)
			E.cursor = 0;
		c = &E.conns[E.live[E.cursor++]];
		if (c->hot >= 0)
			continue;
		E.scan[E.nscan++] = (int)(c - E.conns);
		n = poll_conn(c, n, next);
		k--;
		E.credit -= 1;
	}
	/*
	 * Small slices, one per turn: after a sleep, what is owed is worked
	 * off 32 connections at a time between looks at the hot ones (no
	 * sleeping while owed), instead of in one long scan a busy connection
	 * would wait behind.  Owed nothing: wake in time for the next slice
	 * even if the hot ones are silent.  The work per second is the same;
	 * only its grain changes (bench/RESULTS.md, workload 4).
	 */
	if (E.credit >= 1)
		*next = E.now;
	else if (E.now + SCAN_MS / 4 < *next)
		*next = E.now + SCAN_MS / 4;
	return n;
}

/* Build the pollset; returns its size and the poll timeout in *tmo. */
static int
build_pollset(int *tmo)
{
	int64_t next = INT64_MAX;
	struct conn *c;
	int i, n, on;

	on = E.nconn < E.maxc && E.now >= E.accept_resume;
	if (!on && E.accept_resume > E.now)
		next = E.accept_resume;
	if (E.draining && E.drain_end < next)
		next = E.drain_end;
	if (log_refusals_due() < next)
		next = log_refusals_due();
	E.pfd[PFD_STATUS].fd = E.now >= E.accept_resume && !status_full() ?
	    E.sfd : -1;
	E.pfd[PFD_STATUS].events = POLLIN;
	E.pfd[PFD_STATUS].revents = 0;
	n = PFD_LISTENERS;
	E.pnl = E.draining ? 0 : E.cf->nl;
	for (i = 0; i < E.pnl; i++, n++) {
		E.pfd[n].fd = on ? E.lfd[i] : -1;
		E.pfd[n].events = POLLIN;
		E.pfd[n].revents = 0;
	}
	E.pns = status_pollfds(E.pfd + n, &next);
	n += E.pns;
	E.all = E.nhot == 0;
	E.nscan = 0;
	E.slice0 = -1;
	if (E.all) {
		for (i = 0; i < E.nconn; i++)
			n = poll_conn(&E.conns[E.live[i]], n, &next);
		E.scan_t = E.now;
		E.credit = 0;
	} else {
		/* Backwards: a demotion moves the last hot entry into i. */
		for (i = E.nhot - 1; i >= 0; i--) {
			c = &E.conns[E.hot[i]];
			if (c->st == C_SPLICE && c->s[CLI].in == NULL &&
			    c->s[UPS].in == NULL && E.now - c->active >= COLD_MS)
				hot_del(c);
			else
				n = poll_conn(c, n, &next);
		}
		n = poll_slice(n, &next);
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

	for (i = PFD_LISTENERS + E.pnl + E.pns; i < n; ) {
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
	int i, k, n, tmo;

	while (!E.stop) {
		E.now = sys_tick();
		n = build_pollset(&tmo);
		/*
		 * The cold slice first, without waiting: a poll() that may
		 * sleep queues a wakeup on every descriptor it is given,
		 * which costs more than looking.  Then the rest, waiting only
		 * if the slice had nothing.
		 */
		k = 0;
		if (E.slice0 >= 0 && E.slice0 < n &&
		    (k = poll(E.pfd + E.slice0, (nfds_t)(n - E.slice0), 0)) > 0)
			tmo = 0;
		if (k == -1 || poll(E.pfd, (nfds_t)(E.slice0 >= 0 ? E.slice0 :
		    n), tmo) == -1) {
			if (errno == EINTR)
				continue;
			log_die(1, "poll:");
		}
		E.now = sys_tick();
		if (E.pfd[PFD_RESOLVER].revents)
			resolve_collect();
		status_service(E.pfd + PFD_LISTENERS + E.pnl, E.pns, E.now);
		service_conns(n);
		for (i = 0; i < E.pnl; i++)
			if (E.pfd[PFD_LISTENERS + i].revents & POLLIN)
				accept_ready(i);
		if ((E.pfd[PFD_STATUS].revents & POLLIN) &&
		    status_accept(E.sfd, E.now) == -1)
			fd_pause("status", errno);
		expire();
		log_refusals_flush(E.now);
		/* Last: a reload may replace the listeners polled above. */
		if (E.pfd[PFD_SIGNAL].revents)
			handle_signals();
		if (E.draining && (E.nconn == 0 || E.now >= E.drain_end))
			E.stop = 1;
	}
	n = E.nconn;
	while (E.nconn > 0)
		conn_close(&E.conns[E.live[E.nconn - 1]], W_SHUTDOWN, 0, NULL);
	status_close_all();
	log_msg("stopped closed=%d", n);
}

/*
 * user = NAME | UID[:GID]: after binding, drop supplementary groups, the
 * gid, then the uid, and check that root cannot be had back.  Any failure
 * ends the process: a proxy told to drop root never runs on as root.
 */
static void
drop_privileges(const struct runas *u)
{
	struct passwd *pw = NULL;
	uid_t uid;
	gid_t gid;

	if (!u->set)
		return;
	if (u->name[0] != '\0') {
		errno = 0;
		if ((pw = getpwnam(u->name)) == NULL)
			log_die(1, "user %s: no such user in /etc/passwd (a "
			    "scratch image has none: write user = UID:GID)",
			    u->name);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (uid == 0)
			log_die(1, "user %s: is root; leave user unset to keep "
			    "running as root", u->name);
	} else {
		uid = (uid_t)u->uid;
		if (u->gid >= 0)
			gid = (gid_t)u->gid;
		else if ((pw = getpwuid(uid)) != NULL)
			gid = pw->pw_gid;
		else
			gid = (gid_t)u->uid;
	}
	if (getuid() == uid && geteuid() == uid && getgid() == gid &&
	    getegid() == gid) {
		log_msg("user uid=%ld gid=%ld (already)", (long)uid, (long)gid);
		return;
	}
	if (setgroups(0, NULL) == -1)
		log_die(1, "user: cannot drop supplementary groups (not started as "
		    "root?); refusing to run as uid=%ld: setgroups:",
		    (long)getuid());
	if (setgid(gid) == -1)
		log_die(1, "user: setgid %ld:", (long)gid);
	if (setuid(uid) == -1)
		log_die(1, "user: setuid %ld:", (long)uid);
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 ||
	    getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid)
		log_die(1, "user: root could be regained after dropping to uid=%ld "
		    "gid=%ld; refusing to run", (long)uid, (long)gid);
	log_msg("user uid=%ld gid=%ld", (long)uid, (long)gid);
}

static void
setup(void)
{
	struct sigaction sa;
	struct rlimit rl;
	struct timespec ts;
	char err[1024];
	union sa a;
	size_t nip;
	int i, spare;

	E.start = sys_clock_ms();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/*
	 * Two fds per connection; the rest are stdio, two pipes, listeners,
	 * status clients and room for the resolver threads' own sockets and
	 * files.  Past this cap clients wait in the backlog instead of
	 * failing.
	 */
	E.maxc = E.cf->max_conns;
	spare = 3 + 4 + E.cf->nl + 32 + (E.cf->status ? 1 + STATUS_MAX : 0);
	/* Read the limit again: the raise above may have been refused. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	    && (rlim_t)(2 * E.maxc + spare) > rl.rlim_cur) {
		E.maxc = rl.rlim_cur > (rlim_t)spare + 2 ?
		    (int)((rl.rlim_cur - (rlim_t)spare) / 2) : 1;
		log_msg("warning: max_conns=%d lowered to %d by the open-file "
		    "limit of %llu (2 per connection, %d spare)",
		    E.cf->max_conns, E.maxc, (unsigned long long)rl.rlim_cur,
		    spare);
	}

	buf_init(E.maxc);
	if (pipe(E.sigp) == -1 || sys_nonblock(E.sigp[0]) == -1 ||
	    sys_nonblock(E.sigp[1]) == -1)
		log_die(1, "pipe:");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	if ((E.resfd = resolve_init()) == -1)
		log_die(1, "resolver:");

	/* Per-address counts: at most one entry per connection, half full. */
	for (nip = 16; nip < 2 * (size_t)E.maxc; nip *= 2)
		;
	E.ipmask = (uint32_t)nip - 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	E.ipseed = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^
	    (uint32_t)getpid() << 16;
	E.ipt = calloc(nip, sizeof(*E.ipt));
	E.conns = calloc((size_t)E.maxc, sizeof(*E.conns));
	E.live = calloc((size_t)E.maxc, sizeof(int));
	E.hot = calloc((size_t)E.maxc, sizeof(int));
	E.scan = calloc((size_t)E.maxc, sizeof(int));
	E.freeslot = calloc((size_t)E.maxc, sizeof(int));
	nip = PFD_LISTENERS + MAX_LISTENERS + STATUS_MAX + 2 * (size_t)E.maxc;
	E.pfd = calloc(nip, sizeof(*E.pfd));
	E.pmap = calloc(nip, sizeof(int));
	if (!E.ipt || !E.conns || !E.live || !E.hot || !E.scan ||
	    !E.freeslot || !E.pfd || !E.pmap)
		log_die(1, "max_conns=%d: out of memory", E.maxc);
	/* Slots are taken from [0, maxc) in order and reused from the free
	 * stack: memory for connections is touched only as they come. */
	E.pfd[PFD_SIGNAL].fd = E.sigp[0];
	E.pfd[PFD_SIGNAL].events = POLLIN;
	E.pfd[PFD_RESOLVER].fd = E.resfd;
	E.pfd[PFD_RESOLVER].events = POLLIN;

	for (i = 0; i < E.cf->nl; i++) {
		E.lsid[i] = stats_slot(E.cf->l[i].name);
		E.stats[E.lsid[i]].named = 1;
		E.lfd[i] = open_listener(E.cf->l[i].name, &E.cf->l[i].addr,
		    E.cf->l[i].dual, &E.laddr[i], err, sizeof(err));
		if (E.lfd[i] == -1)
			log_die(1, "%s", err);
		describe("listening", E.cf, &E.cf->l[i], &E.laddr[i]);
	}
	E.sfd = -1;
	if (E.cf->status) {
		E.sfd = open_listener("status", &E.cf->status_addr,
		    E.cf->status_dual, &a, err, sizeof(err));
		if (E.sfd == -1)
			log_die(1, "%s", err);
		log_msg("status on %s", sa_fmt(&a, err, sizeof(err)));
	}
	drop_privileges(&E.cf->user);
	log_msg("start version=%s conf=%s listeners=%d max_conns=%d",
	    EDGE_VERSION, E.confpath, E.cf->nl, E.maxc);
}

static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: edge [-t] [-c FILE]\n"
	    "       edge probe HOST:PORT\n"
	    "  -c FILE  configuration (default /etc/edge/edge.conf)\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version\n"
	    "  probe    ask the status endpoint at HOST:PORT; exit 0 if it "
	    "answers 200\n"
	    "exit: 0 ok, 1 runtime or system failure, 2 usage or config "
	    "error\n");
	exit(code);
}

int
main(int argc, char **argv)
{
	char err[1024];
	int ch, test = 0;

	if (argc >= 2 && strcmp(argv[1], "probe") == 0) {
		if (argc != 3)
			usage(2);
		return status_probe(argv[2]);
	}
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
		log_die(1, "out of memory");
	if (conf_load(E.confpath, E.cf, err, sizeof(err)) == -1)
		log_die(2, "%s", err);
	if (test) {
		for (ch = 0; ch < E.cf->nl; ch++)
			describe("listener", E.cf, &E.cf->l[ch],
			    &E.cf->l[ch].addr);
		log_msg("%s: ok, %d listener%s", E.confpath, E.cf->nl,
		    E.cf->nl == 1 ? "" : "s");
		return 0;
	}
	setup();
	run();
	return 0;
}
