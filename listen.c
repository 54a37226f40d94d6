/* SPDX-License-Identifier: ISC */
/*
 * The listening sockets of the running config, and the status endpoint's.
 * listen_start() binds them; listen_reload() merges a new config into
 * them: a listener whose address stays keeps its socket (no client is
 * refused while reloading), the others close or open, and each change is
 * logged in one line.  Sockets handed to edge at start (by systemd, or
 * by the process an upgrade replaces) are taken first: each goes to the
 * listener whose address it has, and only the rest are bound.  This file also answers "is this address one of
 * edge's own sockets?" for the loop guard, and holds the accept pause that
 * follows running out of descriptors.
 */
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define ACCEPT_PAUSE_MS	250		/* after EMFILE and kin */
#define BACKLOG		1024

static struct conf *cf;			/* whose listeners these are (held) */
static int lfd[MAX_LISTENERS];		/* -1: not open (a failed bind) */
static int lsid[MAX_LISTENERS];		/* counters slot of each */
static union sa laddr[MAX_LISTENERS];	/* what each is bound to */
static int lsys[MAX_LISTENERS];		/* each: a socket systemd holds too */
static int sfd = -1;			/* status.listen, or -1 */
static int64_t resume_at;		/* accepting paused until then */
static int fd_short;			/* in an EMFILE episode, logged */

/* Sockets handed over at start, until listen_start() places them. */
static struct inherited {
	int fd, dual;
	int sys;			/* systemd holds it too */
	union sa a;
	char name[NAME_MAX_LEN];
} inh[MAX_LISTENERS + 1];
static int ninh;
static int inh_systemd;			/* from systemd, else an upgrade */

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

/* A route's protocols, "h2,http/1.1", from their wire form. */
static const char *
alpn_fmt(const char *w, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (; *w != '\0' && o < n; w += 1 + (unsigned char)*w)
		o += (size_t)snprintf(buf + o, n - o, "%s%.*s", o ? "," : "",
		    (unsigned char)*w, w + 1);
	return buf;
}

void
listen_describe(const char *what, const struct conf *c,
    const struct listener *l, const union sa *a)
{
	char buf[SA_FMT_LEN], t[HOST_MAX_LEN + 16], keys[256];
	char alpn[SNI_ALPN_MAX * 2];
	const struct route *r;
	int i;

	conf_describe(l, keys, sizeof(keys));
	log_msg("%s %s on %s%s -> %s%s", what, l->name,
	    sa_fmt(a, buf, sizeof(buf)), l->dual && a->sa.sa_family ==
	    AF_INET6 ? " (v4+v6)" : "", target_fmt(&l->up, t, sizeof(t)), keys);
	for (i = 0; i < l->nr; i++) {
		r = &c->r[l->r0 + i];
		log_msg("route %s sni=%s%s%s -> %s proxy=%s", l->name, r->text,
		    r->alpn[0] ? " alpn=" : "", alpn_fmt(r->alpn, alpn,
		    sizeof(alpn)), target_fmt(&r->t, t, sizeof(t)),
		    conf_proxy_name(r->proxy));
	}
	if (l->nr > 0)
		log_msg("route %s sni=(other) -> %s sni_timeout=%lldms proxy=%s",
		    l->name, target_fmt(&l->up, t, sizeof(t)),
		    (long long)l->sni_ms, conf_proxy_name(l->proxy));
}

/*
 * Open, bind and listen on a (":PORT" when dual).  Returns the fd, or -1
 * with the reason in err.  *bound gets the address actually bound.
 */
static int
open_socket(const char *name, const union sa *addr, int dual,
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
	sys_tune(fd);	/* accepted sockets inherit it where the system can */
	what = "listen";
	if (listen(fd, BACKLOG) == -1 || sys_nonblock(fd) == -1)
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

int
listen_inherit(int fd, const char *name, const char *from, int sys,
    char *err, size_t errlen)
{
	struct inherited *h = &inh[ninh];
	socklen_t len;
	int type = 0, acc = 0, v6only = 0;

	inh_systemd = strcmp(from, "systemd") == 0;
	if (ninh == MAX_LISTENERS + 1) {
		snprintf(err, errlen, "%s: more than %d sockets handed over",
		    from, MAX_LISTENERS + 1);
		return -1;
	}
	len = sizeof(h->a);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &(socklen_t){
	    sizeof(int) }) == -1 || getsockname(fd, &h->a.sa, &len) == -1) {
		snprintf(err, errlen, "%s: fd %d: %s", from, fd,
		    strerror(errno));
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &(socklen_t){
	    sizeof(int) });
	if (type != SOCK_STREAM || !acc || (h->a.sa.sa_family != AF_INET &&
	    h->a.sa.sa_family != AF_INET6)) {
		snprintf(err, errlen, "%s: fd %d%s%s is not a listening TCP "
		    "socket", from, fd, name[0] ? " name=" : "", name);
		return -1;
	}
	if (h->a.sa.sa_family == AF_INET6)
		getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    &(socklen_t){ sizeof(int) });
	if (sys_nonblock(fd) == -1) {
		snprintf(err, errlen, "%s: fd %d: %s", from, fd,
		    strerror(errno));
		return -1;
	}
	h->fd = fd;
	h->sys = sys;
	h->dual = h->a.sa.sa_family == AF_INET6 && !v6only;
	snprintf(h->name, sizeof(h->name), "%s", name);
	ninh++;
	return 0;
}

/*
 * The handed-over socket for the listener name at addr (dual: ":PORT"),
 * taken out of the list; -1 if none.  The address decides; a name decides
 * too where the address cannot (port 0, "any port") or where systemd gave
 * it (FileDescriptorName= is the operator's own word).
 */
static int
adopt(const char *name, const union sa *addr, int dual, union sa *bound,
    int *sys)
{
	struct inherited *h;
	int i, fd, named;

	for (i = 0; i < ninh; i++) {
		h = &inh[i];
		named = strcmp(h->name, name) == 0 && (sa_port(addr) == 0 ||
		    inh_systemd);
		if (!named && (!sa_equal(&h->a, addr) || (sa_is_any(addr) &&
		    addr->sa.sa_family == AF_INET6 && h->dual != dual)))
			continue;
		fd = h->fd;
		*bound = h->a;
		*sys = h->sys;
		log_msg("inherited fd=%d from=%s for %s", fd, inh_systemd ?
		    "systemd" : "upgrade", name);
		inh[i] = inh[--ninh];
		return fd;
	}
	return -1;
}

/* The index of c's listener named name, or -1. */
static int
by_name(const struct conf *c, const char *name)
{
	int i;

	for (i = 0; i < c->nl; i++)
		if (strcmp(c->l[i].name, name) == 0)
			return i;
	return -1;
}

/* Take over these sockets and counters slots for the listeners of nc. */
static void
commit(struct conf *nc, const int nfd[], const union sa naddr[],
    const int nsid[], const int nsys[])
{
	int i;

	for (i = 0; i < nc->nl; i++) {
		lsys[i] = nsys[i];
		lfd[i] = nfd[i];
		laddr[i] = naddr[i];
		lsid[i] = nsid[i];
		stats_up(nsid[i], nfd[i] != -1);
	}
	conf_hold(nc);
	conf_free(cf);
	cf = nc;
}

/*
 * What is left of the handed-over sockets once every listener has taken
 * its own: from systemd an error (-2: a socket unit and a config that
 * disagree), from an upgrade a listener the new config dropped (closed).
 */
static int
leftovers(char *err, size_t errlen)
{
	char buf[SA_FMT_LEN];

	for (; ninh > 0; ninh--) {
		struct inherited *h = &inh[ninh - 1];

		sa_fmt(&h->a, buf, sizeof(buf));
		if (inh_systemd) {
			snprintf(err, errlen, "LISTEN_FDS: fd %d on %s%s%s "
			    "matches no listener and not status.listen", h->fd,
			    buf, h->name[0] ? " name=" : "", h->name);
			return -2;
		}
		log_msg("inherited fd=%d on %s: no listener of this config has "
		    "that address; closed%s", h->fd, buf, h->sys ? "; it came "
		    "from systemd, which still listens there with nobody to "
		    "accept: remove it from the socket unit too" : "");
		close(h->fd);
	}
	return 0;
}

int
listen_start(struct conf *nc, char *err, size_t errlen)
{
	int nfd[MAX_LISTENERS], nsid[MAX_LISTENERS], nsys[MAX_LISTENERS], i;
	int sys;
	union sa naddr[MAX_LISTENERS], a;
	char buf[SA_FMT_LEN];

	if (stats_claim(nc, nsid) < nc->nl) {
		snprintf(err, errlen, "no room for the counters of %d "
		    "listeners", nc->nl);
		return -1;
	}
	for (i = 0; i < nc->nl; i++) {
		nsys[i] = 0;
		nfd[i] = adopt(nc->l[i].name, &nc->l[i].addr, nc->l[i].dual,
		    &naddr[i], &nsys[i]);
	}
	if (nc->status)
		sfd = adopt("status", &nc->status_addr, nc->status_dual, &a,
		    &sys);
	if (leftovers(err, errlen) == -2)
		return -2;
	for (i = 0; i < nc->nl; i++) {
		if (nfd[i] == -1 && (nfd[i] = open_socket(nc->l[i].name,
		    &nc->l[i].addr, nc->l[i].dual, &naddr[i], err,
		    errlen)) == -1)
			return -1;
		listen_describe("listening", nc, &nc->l[i], &naddr[i]);
	}
	if (nc->status) {
		if (sfd == -1 && (sfd = open_socket("status",
		    &nc->status_addr, nc->status_dual, &a, err,
		    errlen)) == -1)
			return -1;
		log_msg("status on %s", sa_fmt(&a, buf, sizeof(buf)));
	}
	commit(nc, nfd, naddr, nsid, nsys);
	return 0;
}

/*
 * Can old listener j's socket serve new listener n as it is?  The same
 * address in the config, or the address an old ":0" was given; port 0 is
 * "any port", so only the same listener's.
 */
static int
same_socket(int j, const struct listener *n)
{
	const struct listener *o = &cf->l[j];

	if (lfd[j] == -1 || o->dual != n->dual)
		return 0;
	return sa_equal(&laddr[j], &n->addr) || (sa_equal(&o->addr,
	    &n->addr) && (sa_port(&n->addr) != 0 ||
	    strcmp(o->name, n->name) == 0));
}

int
listen_reload(struct conf *nc, char *err, size_t errlen)
{
	int nfd[MAX_LISTENERS], nsid[MAX_LISTENERS], kept[MAX_LISTENERS];
	int nsys[MAX_LISTENERS];
	int from[MAX_LISTENERS];	/* the old listener whose socket */
	union sa naddr[MAX_LISTENERS], a;
	char why[256], buf[SA_FMT_LEN];
	int i, j, bad = 0;

	if ((i = stats_claim(nc, nsid)) < nc->nl) {
		snprintf(err, errlen, "no room for the counters of %s",
		    nc->l[i].name);
		return -1;
	}
	memset(kept, 0, sizeof(kept));
	for (i = 0; i < nc->nl; i++) {
		nfd[i] = from[i] = -1;
		nsys[i] = 0;
		for (j = 0; j < cf->nl; j++) {
			if (kept[j] || !same_socket(j, &nc->l[i]))
				continue;
			nfd[i] = lfd[j];
			naddr[i] = laddr[j];
			nsys[i] = lsys[j];
			from[i] = j;
			kept[j] = 1;
			break;
		}
	}
	/* Close the rest first: a new address may overlap an old one. */
	for (j = 0; j < cf->nl; j++) {
		if (by_name(nc, cf->l[j].name) == -1)
			log_msg("reload removed %s", cf->l[j].name);
		if (!kept[j] && lfd[j] != -1)
			close(lfd[j]);
		if (!kept[j] && lfd[j] != -1 && lsys[j])
			log_msg("reload: %s's socket on %s came from systemd, "
			    "which still listens there with nobody to accept: "
			    "remove it from the socket unit too", cf->l[j].name,
			    sa_fmt(&laddr[j], buf, sizeof(buf)));
	}
	if (sfd != -1 && (!nc->status || !sa_equal(&nc->status_addr,
	    &cf->status_addr) || nc->status_dual != cf->status_dual)) {
		close(sfd);
		sfd = -1;
	}
	if (nc->status && sfd == -1) {
		sfd = open_socket("status", &nc->status_addr, nc->status_dual,
		    &a, err, errlen);
		if (sfd == -1) {
			log_msg("reload %s", err);
			bad++;
		} else {
			log_msg("status on %s", sa_fmt(&a, buf, sizeof(buf)));
		}
	}
	for (i = 0; i < nc->nl; i++) {
		if (nfd[i] == -1) {
			naddr[i] = nc->l[i].addr;
			nfd[i] = open_socket(nc->l[i].name, &nc->l[i].addr,
			    nc->l[i].dual, &naddr[i], err, errlen);
			if (nfd[i] == -1) {
				log_msg("reload %s", err);
				bad++;
			}
		}
		if ((j = by_name(cf, nc->l[i].name)) == -1) {
			listen_describe("reload added", nc, &nc->l[i],
			    &naddr[i]);
			continue;
		}
		conf_diff(cf, &cf->l[j], nc, &nc->l[i], from[i] != j, why,
		    sizeof(why));
		if (why[0] != '\0') {
			log_msg("reload changed %s: %s", nc->l[i].name, why);
			listen_describe("reload now", nc, &nc->l[i], &naddr[i]);
		}
	}
	commit(nc, nfd, naddr, nsid, nsys);
	return bad;
}

void
listen_close_all(void)
{
	int i;

	for (i = 0; cf != NULL && i < cf->nl; i++) {
		if (lfd[i] != -1)
			close(lfd[i]);
		lfd[i] = -1;
		stats_up(lsid[i], 0);
	}
	if (sfd != -1)
		close(sfd);
	sfd = -1;
}

int
listen_count(void)
{
	return cf != NULL ? cf->nl : 0;
}

int
listen_fd(int i)
{
	return lfd[i];
}

int
listen_sid(int i)
{
	return lsid[i];
}

const char *
listen_name(int i)
{
	return cf->l[i].name;
}

int
listen_systemd(int i)
{
	return lsys[i];
}

int
listen_status_fd(void)
{
	return sfd;
}

int
listen_self(const union sa *a, char *msg, size_t n)
{
	const struct listener *l;
	char b[SA_FMT_LEN];
	int i, r;

	for (i = 0; i < listen_count(); i++) {
		l = &cf->l[i];
		if (lfd[i] == -1 ||
		    (r = sa_reaches(&laddr[i], l->dual, a)) == 0 ||
		    (r == -1 && !sys_is_local(a)))
			continue;
		snprintf(msg, n, "a loop: edge itself listens there (%s on %s)",
		    l->name, sa_fmt(&laddr[i], b, sizeof(b)));
		return 1;
	}
	return 0;
}

void
listen_pause(const char *name, int err, int nconn)
{
	if (!fd_short)
		log_msg("accept l=%s paused=%dms conns=%d err=\"%s\"", name,
		    ACCEPT_PAUSE_MS, nconn, strerror(err));
	fd_short = 1;
	resume_at = sys_now() + ACCEPT_PAUSE_MS;
}

void
listen_fds_back(const char *name, int nconn)
{
	if (fd_short)
		log_msg("accept l=%s resumed conns=%d", name, nconn);
	fd_short = 0;
}

int64_t
listen_resume_at(void)
{
	return resume_at;
}
