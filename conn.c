/* SPDX-License-Identifier: ISC */
/*
 * A connection's whole life, in the order it lives it: accepted (or
 * refused), the PROXY header read behind a trusted balancer (the client
 * is then the one it names), the ClientHello peeked at on a listener with
 * SNI routes, the
 * upstream resolved (resolve.c, off the loop) and dialled address by
 * address, the PROXY header put in front of the client's first bytes,
 * bytes relayed both ways with half-closes, and one exit, conn_close(),
 * which writes the close line.  conn_step() is the state machine; the
 * poll layer knows connections only by slot, through the entry points at
 * the end of this file.  The slots are allocated once for max_conns and
 * touched only as they are used.
 */
#ifdef __linux__
#define _GNU_SOURCE	/* POLLRDHUP */
#endif
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define PEEK_MAX	(16 * 1024)	/* bytes held looking for a hello */
#define ALPN_LOG	24		/* bytes of the first protocol logged */
#define SPLICE_MIN	16384		/* a read this big: splice what follows */
#if defined(POLLRDHUP) && !defined(NO_RDHUP)
#define POLL_FIN	POLLRDHUP	/* poll() sees the peer's FIN (Linux) */
#else
#define POLL_FIN	0		/* elsewhere the next read() does */
#endif
#ifndef PUMP_ROUNDS
#define PUMP_ROUNDS	8		/* buffers per side per turn, at most */
#endif

enum cstate {
	C_FREE = 0,	/* slot unused */
	C_PROXY,	/* reading a balancer's PROXY header into s[CLI].in */
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
	int pipe[2];		/* or in flight in this pipe (-1: none) */
	uint32_t inpipe;	/* how many */
	unsigned pfull:1;	/* the pipe took no more: wait for a write */
	unsigned bulk:1;	/* reads come big: splice them */
};

struct conn {
	enum cstate st;
	uint32_t gen;		/* bumped on free: stale lookups are dropped */
	int live;		/* index in live[] */
	int sid;		/* its listener's counters slot */
	struct conf *cf;	/* the config it was accepted under (held) */
	const struct listener *l;	/* in cf */
	const struct route *r;	/* the SNI route taken, or NULL */
	struct side s[2];
	union sa cli, loc;	/* from accept() and getsockname(), or the
				 * PROXY header read */
	union sa via;		/* the balancer that sent it, or AF_UNSPEC */
	int counted;		/* cli is counted in iptab */
	int nosplice;		/* relay through buffers only */
	union sa ups;		/* the upstream address tried or in use */
	const struct target *t;	/* where it goes (in cf) */
	int64_t stale;		/* age of the stale answer used, or -1 */
	struct addrs *addrs;	/* owned lookup result, or NULL */
	const union sa *av;	/* addresses to try, in order */
	int an, ai;
	int64_t t0, deadline;	/* monotonic ms */
	int err;		/* errno of the last failed connect */
	int ech;		/* the hello has encrypted_client_hello */
};

/*
 * What a connection's ClientHello named, on listeners with routes only:
 * beside the slots rather than in them, so that the connections of every
 * other listener never touch these pages (356 bytes of a 664-byte slot).
 */
static struct hello_names {
	char sni[HOST_MAX_LEN];	/* validated server_name, or "" */
	char alpn[ALPN_LOG * 4 + 4];	/* the first protocol offered, escaped
				 * for the log; "" for none */
} *names;
#define SNI(c)	(names[(c) - conns].sni)
#define ALPN(c)	(names[(c) - conns].alpn)

static struct conn *conns;	/* maxc slots */
static int maxc, nconn;
static int *live;		/* slots in use, dense: live[0 .. nconn) */
static int *freeslot, nfree;	/* stack of freed slots */
static int hw;			/* slots ever used: [0, hw); untouched beyond */
static char loopmsg[128];	/* why the last address dialled was refused */
static struct hello hello;	/* the ClientHello being looked at */

static int conn_start(struct conf *cf, int li, int fd, const union sa *sa);
static void conn_unproxy(struct conn *c);
static void conn_begin(struct conn *c);
static void conn_peek(struct conn *c);
static void conn_go(struct conn *c, const struct target *t);
static void conn_dial(struct conn *c);
static int conn_connected(struct conn *c, short rev);
static int pump(struct conn *c, int from, short rin, short rout);
static int conn_done(const struct conn *c);
static void conn_close(struct conn *c, enum why why, int err,
    const char *detail);

int
conn_init(int max)
{
	maxc = max;
	conns = calloc((size_t)maxc, sizeof(*conns));
	live = calloc((size_t)maxc, sizeof(int));
	freeslot = calloc((size_t)maxc, sizeof(int));
	names = calloc((size_t)maxc, sizeof(*names));
	return conns && live && freeslot && names ? 0 : -1;
}

/* 1. Accept, or refuse before a slot is taken. */

int
conn_accept(struct conf *cf, int li, int *fresh, int max)
{
	union sa sa;
	socklen_t len;
	int i, fd, n = 0, slot;

	for (i = 0; i < max && nconn < maxc; i++) {
		len = sizeof(sa);
		fd = sys_accept_nb(listen_fd(li), &sa, &len);
		if (fd != -1) {
			if ((slot = conn_start(cf, li, fd, &sa)) != -1)
				fresh[n++] = slot;
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* The client stays in the backlog. */
			listen_pause(cf->l[li].name, errno, nconn);
			break;
		}
		log_msg("accept l=%s:", cf->l[li].name);
		break;
	}
	return n;
}

/*
 * The listener's refuse line, if it has one, for a client refused or whose
 * upstream cannot be reached: one non-blocking write, then a FIN; what the
 * client sent is read away first (a little of it), or closing would reset
 * the line away.  Returns 0 without a line.
 */
static int
say_refusal(const struct listener *l, int fd)
{
	char junk[4096];
	int i;

	if (l->refuse == NULL)
		return 0;
	if (write(fd, l->refuse, strlen(l->refuse)) == -1)
		(void)0;	/* a client that cannot take it gets the FIN */
	shutdown(fd, SHUT_WR);
	for (i = 0; i < 4 && read(fd, junk, sizeof(junk)) > 0; i++)
		;
	return 1;
}

/* Is this why one of admit()'s? */
static int
admission(enum why why)
{
	return why == W_DENIED || why == W_PER_IP || why == W_RATE_LIMIT;
}

/* Does a close for this reason get the refuse line? */
static int
refusal(enum why why)
{
	return admission(why) || why == W_DNS_FAILED || why == W_DNS_TIMEOUT ||
	    why == W_CONNECT_FAILED || why == W_LOOP;
}

/* Close a client refused before it got a slot: the refuse line and a FIN,
 * or else an RST (no TIME_WAIT). */
static void
refuse(const struct listener *l, int sid, int fd, const union sa *cli,
    enum why why)
{
	struct linger lg = { 1, 0 };
	char a[SA_FMT_LEN];

	if (!refusal(why) || !say_refusal(l, fd))
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	stats_refused(sid, why);
	if (!log_refusal(sys_now()))
		return;
	log_msg("close l=%s c=%s sni=- r=- u=- up=0 down=0 t=0.000s why=%s",
	    l->name, sa_fmt(cli, a, sizeof(a)), stats_why(why));
}

/* What the per-IP count counts cli as: an IPv6 client by its network. */
static union sa
ip_key(const struct listener *l, const union sa *cli)
{
	union sa k = *cli;

	sa_prefix(&k, l->ipv6_prefix);
	return k;
}

/* Count c's client in the per-IP table (add 1), or no longer (add 0). */
static void
ip_count(struct conn *c, int add)
{
	union sa k = ip_key(c->l, &c->cli);

	if (add)
		iptab_add(c->sid, &k);
	else if (c->counted)
		iptab_del(c->sid, &k);
	c->counted = add;
}

/* May client cli use listener l?  NWHY if so, else why not. */
static enum why
admit(const struct conf *cf, const struct listener *l, int sid,
    const union sa *cli)
{
	union sa k = ip_key(l, cli);

	if (!conf_allowed(cf, l, cli))
		return W_DENIED;
	if (l->max_per_ip > 0 &&
	    iptab_count(sid, &k) >= (uint32_t)l->max_per_ip)
		return W_PER_IP;
	if (l->rate.n > 0 && !rate_take(sid, &k, (int)l->rate.n,
	    l->rate.per_ms, sys_now()))
		return W_RATE_LIMIT;
	return NWHY;
}

/*
 * Admit a client, or refuse it.  Returns its slot while it is open.
 * Behind a balancer (accept_proxy) only the balancer is checked here; the
 * client it names is, once its header is read.
 */
static int
conn_start(struct conf *cf, int li, int fd, const union sa *sa)
{
	const struct listener *l = &cf->l[li];
	socklen_t len = sizeof(union sa);
	int sid = listen_sid(li), slot;
	struct conn *c;
	union sa cli = *sa;
	enum why w;

	sa_unmap(&cli);
	stats_accepted(sid);
	w = !l->accept_proxy ? admit(cf, l, sid, &cli) :
	    conf_trusted(cf, l, &cli) ? NWHY : W_PROXY_UNTRUSTED;
	if (w != NWHY) {
		refuse(l, sid, fd, &cli, w);
		return -1;
	}
	if (!sys_inherits(fd))
		sys_tune(fd);
	sys_buffers(fd, l->sockbuf);
	slot = nfree > 0 ? freeslot[--nfree] : hw++;
	c = &conns[slot];
	c->st = C_RESOLVE;
	c->cf = conf_hold(cf);
	c->l = l;
	c->sid = sid;
	stats_opened(sid);
	c->live = nconn;
	live[nconn++] = slot;
	c->s[CLI].fd = fd;
	c->s[UPS].fd = -1;
	c->s[CLI].eof = c->s[UPS].eof = 0;
	c->s[CLI].shut = c->s[UPS].shut = 0;
	c->s[CLI].nread = c->s[UPS].nread = 0;
	c->s[CLI].pipe[0] = c->s[CLI].pipe[1] = -1;
	c->s[UPS].pipe[0] = c->s[UPS].pipe[1] = -1;
	c->s[CLI].inpipe = c->s[UPS].inpipe = 0;
	c->s[CLI].pfull = c->s[UPS].pfull = 0;
	c->s[CLI].bulk = c->s[UPS].bulk = 0;
	c->nosplice = !cf->splice;
	c->cli = cli;
	c->counted = 0;
	ip_count(c, !l->accept_proxy);	/* behind a balancer: once it names
					 * the client */
	memset(&c->ups, 0, sizeof(c->ups));
	memset(&c->loc, 0, sizeof(c->loc));
	memset(&c->via, 0, sizeof(c->via));
	c->t0 = sys_now();
	c->err = 0;
	c->ai = 0;
	c->r = NULL;
	if (l->nr > 0)
		SNI(c)[0] = ALPN(c)[0] = '\0';
	c->ech = 0;
	c->t = NULL;
	c->stale = -1;
	if (l->any_proxy && getsockname(fd, &c->loc.sa, &len) == -1) {
		conn_close(c, W_ERROR, errno, NULL);
		return -1;
	}
	if (l->accept_proxy) {
		c->st = C_PROXY;
		c->deadline = sys_now() + l->accept_proxy_ms;
		return slot;
	}
	conn_begin(c);
	return c->st != C_FREE ? slot : -1;
}

/*
 * 2. The state machine: advance a connection on the poll events of its
 * two fds.  Each state either returns to wait or falls through to the
 * next.
 */
void
conn_step(int slot, const short rev[2])
{
	struct conn *c = &conns[slot];

	switch (c->st) {
	case C_FREE:
		return;
	case C_PROXY:
		if (pump(c, CLI, rev[CLI], 0) == 0)
			conn_unproxy(c);
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

/*
 * 3. Behind a balancer: the PROXY header, read before anything else, names
 * the client and where it connected; from here on the client is that one,
 * for allow/deny, the per-IP count, the log and the header sent upstream.
 * Bytes after the header stay in the buffer, to be forwarded.  A LOCAL
 * header (a health check) keeps the connection's own addresses.
 */
static void
conn_unproxy(struct conn *c)
{
	struct buf *b = c->s[CLI].in;
	union sa src, dst;
	size_t n;
	enum why w;

	switch (pp_decode(b ? buf_data(b) : (const unsigned char *)"",
	    b ? buf_len(b) : 0, c->l->accept_proxy, &src, &dst, &n)) {
	case PP_MORE:
		if (c->s[CLI].eof)
			conn_close(c, W_PROXY_BAD, 0, "closed before the end "
			    "of the PROXY header");
		return;
	case PP_BAD:
		conn_close(c, W_PROXY_BAD, 0, NULL);
		return;
	case PP_DONE:
		break;
	}
	buf_drain(b, n);
	c->s[CLI].nread = buf_len(b);
	stats_bytes(c->sid, CLI, buf_len(b));
	if (buf_len(b) == 0) {
		buf_put(b);
		c->s[CLI].in = NULL;
	}
	c->via = c->cli;
	if (src.sa.sa_family != AF_UNSPEC) {
		c->cli = src;
		c->loc = dst;
	}
	if ((w = admit(c->cf, c->l, c->sid, &c->cli)) != NWHY) {
		conn_close(c, w, 0, NULL);
		return;
	}
	ip_count(c, 1);
	conn_begin(c);
}

/* Admitted: peek at the ClientHello on a listener with routes, else on to
 * the upstream. */
static void
conn_begin(struct conn *c)
{
	if (c->l->nr == 0) {
		conn_go(c, &c->l->up);
		return;
	}
	c->st = C_PEEK;
	c->deadline = sys_now() + c->l->sni_ms;
	conn_peek(c);	/* bytes that came with the header may be enough */
}

/*
 * The first protocol the hello offers, for the log: printable ASCII but
 * space, '=', '"' and '\\' as it is, anything else as \xHH, so that no
 * client can write a field of its own; cut at ALPN_LOG bytes ("...").
 */
static void
alpn_text(const struct hello *h, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = h->alpn_len > 0 ? h->alpn[0] : 0, o = 0;
	unsigned char ch;

	for (i = 0; i < n && i < ALPN_LOG; i++) {
		ch = h->alpn[1 + i];
		if (ch > 0x20 && ch < 0x7f && ch != '=' && ch != '"' &&
		    ch != '\\') {
			out[o++] = (char)ch;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[ch >> 4];
		out[o++] = hex[ch & 15];
	}
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/*
 * 4. Peek: look at what the client has sent so far for a server_name and
 * ALPN, and choose a route; the bytes stay in the buffer, to be forwarded
 * as they came.
 */
static void
conn_peek(struct conn *c)
{
	const struct buf *b = c->s[CLI].in;
	const struct target *t = &c->l->up;
	enum sni_res res;

	res = sni_parse(b ? buf_data(b) : (const unsigned char *)"",
	    b ? buf_len(b) : 0, &hello);
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
	if (res == SNI_FOUND || res == SNI_NONE) {
		alpn_text(&hello, ALPN(c));
		c->ech = hello.ech;
	}
	if (res == SNI_FOUND) {
		memcpy(SNI(c), hello.name, strlen(hello.name) + 1);
		if ((c->r = conf_route(c->cf, c->l, SNI(c), hello.alpn,
		    hello.alpn_len)) != NULL)
			t = &c->r->t;
	}
	if (t->host[0] == '\0') {
		conn_close(c, res == SNI_NOT_TLS ? W_NOT_TLS : W_NO_ROUTE, 0,
		    NULL);
		return;
	}
	conn_go(c, t);
}

/* 5. Resolve: connect to t at once for a literal, else after a lookup. */
static void
conn_go(struct conn *c, const struct target *t)
{
	const struct listener *l = c->l;

	c->t = t;
	if (t->literal) {
		c->av = &t->addr;
		c->an = 1;
		conn_dial(c);
		return;
	}
	c->st = C_RESOLVE;
	c->deadline = sys_now() + l->dns_ms;
	if (resolve_start((int)(c - conns), c->gen, t->host, t->port,
	    l->prefer) == -1)
		conn_close(c, W_DNS_FAILED, errno, NULL);
}

/*
 * The lookup failed or timed out: go on with the last good answer for the
 * name if it is young enough (dns_stale), and say so in the close line.
 * Returns 0 if there is none.
 */
static int
conn_stale(struct conn *c)
{
	struct addrs *a;
	int64_t age;

	if (c->l->stale_ms == 0 || (a = resolve_stale(c->t->host, c->t->port,
	    c->l->prefer, c->l->stale_ms, sys_now(), &age)) == NULL)
		return 0;
	stats_stale(c->sid);
	c->stale = age;
	c->addrs = a;
	c->av = a->a;
	c->an = a->n;
	conn_dial(c);
	return 1;
}

void
conn_resolved(void)
{
	struct addrs *a;
	struct conn *c;
	const char *err;
	uint32_t gen;
	int slot;

	/* Stale results (the connection ended, or its slot was reused) are
	 * dropped. */
	while (resolve_next(&slot, &gen, &a, &err, sys_now()) == 1) {
		c = &conns[slot];
		if (c->gen != gen || c->st != C_RESOLVE) {
			free(a);
			continue;
		}
		if (a == NULL) {
			if (!conn_stale(c))
				conn_close(c, W_DNS_FAILED, 0, err);
			continue;
		}
		c->addrs = a;
		c->av = a->a;
		c->an = a->n;
		conn_dial(c);
	}
}

/* 6. Dial. */

static void
conn_retry_log(const struct conn *c)
{
	char a[SA_FMT_LEN], u[SA_FMT_LEN];

	stats_connect_failed(c->sid);
	if (c->ai + 1 < c->an)
		log_msg("retry l=%s c=%s u=%s err=\"%s\"", c->l->name,
		    sa_fmt(&c->cli, a, sizeof(a)),
		    sa_fmt(&c->ups, u, sizeof(u)),
		    c->err == ELOOP ? loopmsg : strerror(c->err));
}

/*
 * Start a non-blocking connect to av[ai], or the next that can start.
 * Each failure with an address left to try gets a "retry" line: a family
 * that fails (no IPv6 route, say) should not stay invisible.  An address
 * that is edge's own listener is never dialled: it would bring the
 * connection back to edge, which would dial it again, until max_conns is
 * used up (a name that resolves to this box does that).
 */
static void
conn_dial(struct conn *c)
{
	const union sa *a;
	int fd;

	for (; c->ai < c->an; c->ai++) {
		a = &c->av[c->ai];
		c->ups = *a;
		if (listen_self(a, loopmsg, sizeof(loopmsg))) {
			c->err = ELOOP;
			conn_retry_log(c);
			continue;
		}
		if ((fd = sys_socket_nb(a->sa.sa_family)) != -1) {
			sys_tune(fd);
			sys_buffers(fd, c->l->sockbuf);	/* before the SYN */
			listen_fds_back(c->l->name, nconn);
			if (connect(fd, &a->sa, sa_len(a)) == 0 ||
			    errno == EINPROGRESS || errno == EINTR) {
				/* Success shows as POLLOUT, as does a late
				 * failure. */
				c->s[UPS].fd = fd;
				c->st = C_CONNECT;
				c->deadline = sys_now() + c->l->connect_ms;
				return;
			}
		}
		c->err = errno;
		if (fd != -1)
			close(fd);
		if (c->err == EMFILE || c->err == ENFILE)
			listen_pause(c->l->name, c->err, nconn);
		conn_retry_log(c);
	}
	c->st = C_CONNECT;	/* so that the log names the last address */
	if (c->err == ELOOP)
		conn_close(c, W_LOOP, 0, loopmsg);
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

/* Relaying: the deadline is idle_timeout from the last byte moved. */
static void
arm_idle(struct conn *c)
{
	c->deadline = c->l->idle_ms ? sys_now() + c->l->idle_ms : INT64_MAX;
}

/*
 * 7. The PROXY header, the route's or the listener's.  The upstream
 * accepted: put the header in front of whatever the client has sent so
 * far, so that header and data leave in one write.
 */
static int
conn_established(struct conn *c)
{
	struct side *s = &c->s[CLI];
	unsigned char hdr[PP_MAX_LEN];
	int proxy = c->r ? c->r->proxy : c->l->proxy;
	size_t n = 0;

	free(c->addrs);
	c->addrs = NULL;
	c->av = NULL;
	if (proxy == PROXY_V2)
		n = pp2_encode(hdr, sizeof(hdr), &c->cli, &c->loc);
	else if (proxy == PROXY_V1)
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

/* 8. Relay. */

static int
can_read(const struct side *s)
{
	if (s->eof || s->fd == -1)
		return 0;
	if (s->pipe[0] != -1)
		return !s->pfull && s->inpipe < PIPE_BYTES;
	return s->in == NULL || buf_can_fill(s->in);	/* NULL: buf_get() */
}

/* Bytes read from this side and not yet written to the other. */
static int
pending(const struct side *s)
{
	return s->in != NULL || s->inpipe > 0;
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
 * Move bytes from side `from` to its peer through a buffer: read while it
 * has room (the backpressure), write what it holds.  rd, wr: the poll
 * events allow a read of s, a write to its peer; fin: poll() saw the
 * peer's FIN behind what s holds.  Returns 1 if bytes moved, 0 if not, -1
 * if the connection was closed.
 */
static int
pump_buf(struct conn *c, int from, int rd, int wr, int fin)
{
	struct side *s = &c->s[from], *d = &c->s[!from];
	struct buf *b;
	unsigned char *p;
	size_t room;
	ssize_t n;
	int moved = 0, round, progress;

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
				s->bulk = n >= SPLICE_MIN;
				/* A balancer's header is not the client's:
				 * conn_unproxy() counts what follows it. */
				if (c->st != C_PROXY) {
					s->nread += (uint64_t)n;
					stats_bytes(c->sid, from, (uint64_t)n);
				}
				progress = wr = 1;
				/* A small short read: the socket is drained
				 * for now (poll() says when there is more), so
				 * no read that could only fail with EAGAIN: a
				 * third of the system calls of a small round
				 * trip.  A bulk stream refills while we write:
				 * it keeps reading; so does a side whose FIN
				 * is there (its EOF this turn, not the next:
				 * 1.1x the conn/s of a server that answers
				 * and closes, bench/RESULTS.md). */
				rd = (size_t)n == room || n >= SPLICE_MIN || fin;
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
	return moved;
}

/*
 * The same through a pipe with splice(2): the bytes never enter edge.
 * Taken while the side has nothing buffered (a replayed ClientHello, the
 * PROXY header, early bytes go first, through the buffer), so the order
 * holds; given back once empty.  A read the pipe cannot take shows as
 * EAGAIN like an empty socket: with bytes in the pipe, reading waits for
 * a write (pfull), or poll() would wake again at once.
 */
static int
pump_pipe(struct conn *c, int from, int rd, int wr, int fin)
{
	struct side *s = &c->s[from], *d = &c->s[!from];
	int moved = 0, round, progress;
	size_t want;
	ssize_t n;

	for (round = 0; round < PUMP_ROUNDS; round++) {
		progress = 0;
		if (rd && can_read(s)) {
			want = PIPE_BYTES - s->inpipe;
			n = pipes_splice(s->fd, s->pipe[1], want);
			if (n > 0) {
				rd = (size_t)n == want || n >= SPLICE_MIN ||
				    fin;
				s->bulk = n >= SPLICE_MIN || s->inpipe > 0;
				s->inpipe += (uint32_t)n;
				s->nread += (uint64_t)n;
				stats_bytes(c->sid, from, (uint64_t)n);
				pipes_moved((uint64_t)n);
				progress = wr = 1;
			} else if (n == 0) {
				s->eof = 1;
				rd = 0;
			} else if (errno == EAGAIN) {
				s->pfull = s->inpipe > 0;
				rd = 0;
			} else if ((errno == EINVAL || errno == ENOSYS) &&
			    s->inpipe == 0) {
				/* Not for this socket: buffers from now on. */
				pipes_put(s->pipe, 1);
				c->nosplice = 1;
				n = pump_buf(c, from, rd, wr, fin);
				return n == -1 ? -1 : n || moved;
			} else {
				conn_fail(c, from, errno);
				return -1;
			}
		}
		if (s->inpipe > 0 && wr) {
			n = pipes_splice(s->pipe[0], d->fd, s->inpipe);
			if (n > 0) {
				s->inpipe -= (uint32_t)n;
				s->pfull = 0;
				progress = 1;
				wr = s->inpipe == 0;
			} else if (errno == EAGAIN) {
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
	if (s->inpipe == 0)
		pipes_put(s->pipe, 1);
	return moved;
}

/*
 * Does side s relay through a pipe now?  Takes one if it may.  Only a bulk
 * stream is worth it: for a few bytes (a mail command, a 1-byte ping)
 * read() and write() cost less than two splice() calls, so a side splices
 * after a read of at least SPLICE_MIN bytes, and goes back to its buffer
 * after a smaller one leaves the pipe empty.
 */
static int
via_pipe(struct conn *c, struct side *s)
{
	if (s->pipe[0] != -1)
		return 1;
	return c->st == C_SPLICE && !c->nosplice && s->bulk && s->in == NULL &&
	    !s->eof && pipes_get(s->pipe) == 0;
}

/*
 * Move bytes from side `from` to its peer.  rin and rout are the poll
 * events seen on the two fds.  An EOF becomes shutdown(SHUT_WR) on the
 * peer once everything read before it has been written.  Returns -1 if
 * the connection was closed.
 */
static int
pump(struct conn *c, int from, short rin, short rout)
{
	struct side *s = &c->s[from], *d = &c->s[!from];
	int rd = (rin & (POLLIN | POLLHUP | POLLERR)) != 0, wr = rout != 0;
	int fin = (rin & (POLL_FIN | POLLHUP)) != 0, moved;

	moved = via_pipe(c, s) ? pump_pipe(c, from, rd, wr, fin) :
	    pump_buf(c, from, rd, wr, fin);
	if (moved == -1)
		return -1;
	if (moved && c->st == C_SPLICE)
		arm_idle(c);
	if (c->st == C_SPLICE && s->eof && !pending(s) && !d->shut) {
		/* If the other way is done too, conn_step() closes now and
		 * close() sends the FIN: no shutdown() needed. */
		if (d->eof && !pending(d)) {
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
	return c->s[CLI].eof && c->s[UPS].eof && !pending(&c->s[CLI]) &&
	    !pending(&c->s[UPS]);
}

/*
 * The close line.  The same line log_msg() would print; appended by hand,
 * as it is written once per connection (printf was a tenth of the CPU
 * spent per connection in bench/ workload 2).
 */
static void
close_line(const struct conn *c, enum why why, const char *es)
{
	char a[SA_FMT_LEN], u[SA_FMT_LEN];
	int64_t t = sys_now() - c->t0;
	struct logline ln;

	ln.n = 0;
	log_add(&ln, "edge: close l=", c->l->name);
	log_add(&ln, " c=", sa_fmt(&c->cli, a, sizeof(a)));
	if (c->via.sa.sa_family != AF_UNSPEC)
		log_add(&ln, " via=", sa_fmt(&c->via, u, sizeof(u)));
	log_add(&ln, " sni=", c->l->nr > 0 && SNI(c)[0] ? SNI(c) : "-");
	if (c->l->nr > 0) {
		log_add(&ln, " alpn=", ALPN(c)[0] ? ALPN(c) : "-");
		if (c->ech)
			log_add(&ln, " ech=1", "");
	}
	log_add(&ln, " r=", c->r ? c->r->text : c->l->nr > 0 &&
	    c->st > C_PEEK ? "default" : "-");
	log_add(&ln, " u=", c->st >= C_CONNECT ? sa_fmt(&c->ups, u,
	    sizeof(u)) : "-");
	if (c->stale >= 0) {
		log_num(&ln, " stale=", (uint64_t)c->stale / 1000, 0);
		log_add(&ln, "s", "");
	}
	log_num(&ln, " up=", c->s[CLI].nread, 0);
	log_num(&ln, " down=", c->s[UPS].nread, 0);
	log_num(&ln, " t=", (uint64_t)(t / 1000), 0);
	log_num(&ln, ".", (uint64_t)(t % 1000), 3);
	log_add(&ln, "s why=", stats_why(why));
	if (es != NULL) {
		log_add(&ln, " err=\"", es);
		log_add(&ln, "\"", "");
	}
	log_end(&ln);
}

/*
 * 9. The one exit.  Logs the close line, closes both fds (with an RST
 * after a reset or error while relaying, so the other side learns of it
 * too), and returns the slot.  detail overrides strerror(err) in the log.
 * A client refused once its PROXY header named it is a refusal like one
 * refused at accept: its line shares their limit of lines a second.
 */
static void
conn_close(struct conn *c, enum why why, int err, const char *detail)
{
	struct linger lg = { 1, 0 };
	const char *es = detail ? detail : err ? strerror(err) : NULL;
	int i, last;

	if (!admission(why) || log_refusal(sys_now()))
		close_line(c, why, es);
	stats_closed(c->sid, why);
	ip_count(c, 0);
	if (refusal(why) && c->s[CLI].fd != -1)
		say_refusal(c->l, c->s[CLI].fd);
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
		pipes_put(c->s[i].pipe, c->s[i].inpipe == 0);
		c->s[i].inpipe = 0;
		c->s[i].pfull = 0;
	}
	free(c->addrs);
	c->addrs = NULL;
	conf_free(c->cf);	/* the last of a replaced config frees it */
	c->cf = NULL;
	c->st = C_FREE;
	c->gen++;
	last = live[--nconn];
	live[c->live] = last;
	conns[last].live = c->live;
	freeslot[nfree++] = (int)(c - conns);
}

/* A deadline has passed: what it means depends on the state. */
void
conn_expire(int slot)
{
	struct conn *c = &conns[slot];

	if (c->st == C_FREE || c->deadline > sys_now())
		return;
	switch (c->st) {
	case C_PROXY:
		conn_close(c, W_PROXY_TIMEOUT, 0, NULL);
		break;
	case C_PEEK:
		conn_close(c, W_SNI_TIMEOUT, 0, NULL);
		break;
	case C_RESOLVE:
		if (!conn_stale(c))
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

void
conn_close_all(enum why why)
{
	while (nconn > 0)
		conn_close(&conns[live[nconn - 1]], why, 0, NULL);
}

/* 10. What the poll layer asks of a slot. */

short
conn_interest(int slot, int side, int *fd)
{
	const struct conn *c = &conns[slot];
	short ev = 0;

	*fd = c->s[side].fd;
	switch (c->st) {
	case C_FREE:
		break;
	case C_PROXY:
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
		/* POLL_FIN: a FIN behind a short answer (a server that
		 * answers and closes) is read in the same turn. */
		if (can_read(&c->s[side]))
			ev |= POLLIN | POLL_FIN;
		if (pending(&c->s[!side]))
			ev |= POLLOUT;
		break;
	}
	return ev;
}

int64_t
conn_deadline(int slot)
{
	return conns[slot].deadline;
}

int
conn_open(int slot)
{
	return conns[slot].st != C_FREE;
}

int
conn_quiet(int slot)
{
	const struct conn *c = &conns[slot];

	return c->st == C_SPLICE && !pending(&c->s[CLI]) &&
	    !pending(&c->s[UPS]);
}

int
conn_count(void)
{
	return nconn;
}

int
conn_max(void)
{
	return maxc;
}

int
conn_live(int i)
{
	return live[i];
}
