/* SPDX-License-Identifier: ISC */
/*
 * The configuration file: flat "key = value" lines, "#" comments (at the
 * start of a line or after white space), ${VAR} and ${VAR:-default} taken
 * from the environment.  Keys without a dot are global; "NAME.key" belongs
 * to the listener NAME.  One table, keys[], says for every key its kind,
 * where it may appear, where its value lands and its default; it drives
 * parsing, the listeners' inheritance of global values, the description
 * and diff lines, and the check that the README's tables are true.  The
 * parser works on memory and stops at the first error, reported as one
 * line:
 *
 *   edge.conf:12: smtp.idle_timeout: "30x" is not a duration (e.g. 30m, 1800s)
 *
 * A parsed config is one allocation, sized to what the file holds: the
 * struct, its listeners, routes, allow/deny entries and strings.  It does
 * no I/O (edge.c reads the file) and touches no global state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"

#define VAL_MAX_LEN	512
#define MAX_CONNS_LIMIT	1000000

/* The value kinds, each with one parser and one stored type. */
enum kind {
	K_DURATION,	/* int64_t milliseconds */
	K_COUNT,	/* int */
	K_ENUM,		/* int, one of the key's names */
	K_LISTEN,	/* the listener's addr and dual */
	K_UPSTREAM,	/* struct target */
	K_HOST,		/* const char *: a name or literal */
	K_LINE,		/* const char *: a line to send, CRLF added */
	K_RATE,		/* struct rate */
	K_SIZE,		/* int bytes, 0: auto */
	K_FILE,		/* a list file's path, appended */
	K_USER,		/* struct runas */
	K_SNI,		/* a route, appended */
	K_CIDRS		/* allow or deny entries, appended */
};

/* One name table per enum: parsing, messages and descriptions use it. */
struct name {
	const char *name;
	int value;
};

static const struct name proxy_names[] = {
	{ "v2", PROXY_V2 }, { "v1", PROXY_V1 }, { "off", PROXY_OFF },
	{ NULL, 0 }
};
static const struct name accept_names[] = {
	{ "v2", PP_ACCEPT_V2 }, { "v1", PP_ACCEPT_V1 },
	{ "any", PP_ACCEPT_V1 | PP_ACCEPT_V2 }, { "off", 0 }, { NULL, 0 }
};
static const struct name prefer_names[] = {
	{ "ipv4", PREFER_IPV4 }, { "ipv6", PREFER_IPV6 },
	{ "system", PREFER_SYSTEM }, { NULL, 0 }
};

static const struct name splice_names[] = {
	{ "auto", 1 }, { "off", 0 }, { NULL, 0 }
};

enum kid { K_LISTEN_ID, K_UPSTREAM_ID, K_SNI_ID, K_PROXY_ID, K_PREFER_ID,
	K_CONNECT_ID, K_DNS_ID, K_IDLE_ID, K_SNITO_ID, K_MAXCONNS_ID,
	K_UPHOST_ID, K_DRAIN_ID, K_USER_ID, K_ALLOW_ID, K_DENY_ID,
	K_PERIP_ID, K_ACCEPT_ID, K_TRUST_ID, K_ACCEPTTO_ID, K_STALE_ID,
	K_PREFIX_ID, K_REFUSE_ID, K_RATE_ID, K_DENYF_ID, K_ALLOWF_ID, K_UPGRADE_ID, K_SPLICE_ID,
	K_SOCKBUF_ID, NKEYS };

#define IN_L(f)	offsetof(struct listener, f)
#define IN_C(f)	offsetof(struct conf, f)

/*
 * scope: CONF_GLOBAL, CONF_LISTENER or both (a global value is the
 * default of every listener that does not set its own); CONF_STATUS for
 * status.listen.  A key that may
 * appear in a listener lands in struct listener at off; a global-only key
 * lands in struct conf at off.  def is the default as it would be written
 * in a file (NULL: none).  show: part of the listener's description line.
 */
static const struct key {
	const char *name;
	enum kind kind;
	int scope;
	size_t off;
	const char *def;
	int zero_ok;			/* a value of 0 means "off" */
	const struct name *names;	/* K_ENUM */
	int show;
	int lo, hi;			/* K_COUNT's range, if not 0/1..limit */
} keys[NKEYS] = {
	[K_LISTEN_ID] = { "listen", K_LISTEN, CONF_LISTENER | CONF_STATUS,
	    IN_L(addr), NULL, 0, NULL, 0, 0, 0 },
	[K_UPSTREAM_ID] = { "upstream", K_UPSTREAM, CONF_LISTENER, IN_L(up),
	    NULL, 0, NULL, 0, 0, 0 },
	[K_SNI_ID] = { "sni", K_SNI, CONF_LISTENER, 0, NULL, 0, NULL, 0, 0, 0 },
	[K_PROXY_ID] = { "proxy", K_ENUM, CONF_LISTENER, IN_L(proxy), "off",
	    0, proxy_names, 1, 0, 0 },
	[K_PREFER_ID] = { "prefer", K_ENUM, CONF_GLOBAL | CONF_LISTENER,
	    IN_L(prefer), "ipv4", 0, prefer_names, 1, 0, 0 },
	[K_CONNECT_ID] = { "connect_timeout", K_DURATION, CONF_GLOBAL |
	    CONF_LISTENER, IN_L(connect_ms), "5s", 0, NULL, 1, 0, 0 },
	[K_DNS_ID] = { "dns_timeout", K_DURATION, CONF_GLOBAL | CONF_LISTENER,
	    IN_L(dns_ms), "10s", 0, NULL, 0, 0, 0 },
	[K_IDLE_ID] = { "idle_timeout", K_DURATION, CONF_GLOBAL |
	    CONF_LISTENER, IN_L(idle_ms), "30m", 1, NULL, 1, 0, 0 },
	[K_SNITO_ID] = { "sni_timeout", K_DURATION, CONF_GLOBAL |
	    CONF_LISTENER, IN_L(sni_ms), "5s", 0, NULL, 0, 0, 0 },
	[K_MAXCONNS_ID] = { "max_conns", K_COUNT, CONF_GLOBAL, IN_C(max_conns),
	    "2048", 0, NULL, 0, 0, 0 },
	[K_UPHOST_ID] = { "upstream_host", K_HOST, CONF_GLOBAL,
	    IN_C(upstream_host), NULL, 0, NULL, 0, 0, 0 },
	[K_DRAIN_ID] = { "drain_timeout", K_DURATION, CONF_GLOBAL,
	    IN_C(drain_ms), "8s", 1, NULL, 0, 0, 0 },
	[K_USER_ID] = { "user", K_USER, CONF_GLOBAL, IN_C(user), NULL, 0,
	    NULL, 0, 0, 0 },
	[K_ALLOW_ID] = { "allow", K_CIDRS, CONF_LISTENER, 0, NULL, 0, NULL, 0,
	    0, 0 },
	[K_DENY_ID] = { "deny", K_CIDRS, CONF_LISTENER, 0, NULL, 0, NULL, 0, 0,
	    0 },
	[K_PERIP_ID] = { "max_conns_per_ip", K_COUNT, CONF_LISTENER,
	    IN_L(max_per_ip), "0", 1, NULL, 0, 0, 0 },
	[K_ACCEPT_ID] = { "accept_proxy", K_ENUM, CONF_LISTENER,
	    IN_L(accept_proxy), "off", 0, accept_names, 0, 0, 0 },
	[K_TRUST_ID] = { "accept_proxy_from", K_CIDRS, CONF_LISTENER, 0, NULL,
	    0, NULL, 0, 0, 0 },
	[K_ACCEPTTO_ID] = { "accept_proxy_timeout", K_DURATION, CONF_GLOBAL |
	    CONF_LISTENER, IN_L(accept_proxy_ms), "5s", 0, NULL, 0, 0, 0 },
	[K_STALE_ID] = { "dns_stale", K_DURATION, CONF_GLOBAL | CONF_LISTENER,
	    IN_L(stale_ms), "1h", 1, NULL, 0, 0, 0 },
	[K_PREFIX_ID] = { "ipv6_prefix", K_COUNT, CONF_GLOBAL | CONF_LISTENER,
	    IN_L(ipv6_prefix), "64", 0, NULL, 0, 48, 128 },
	[K_REFUSE_ID] = { "refuse", K_LINE, CONF_LISTENER, IN_L(refuse), NULL,
	    0, NULL, 0, 0, 0 },
	[K_RATE_ID] = { "max_rate_per_ip", K_RATE, CONF_LISTENER, IN_L(rate),
	    "0", 1, NULL, 0, 0, 0 },
	[K_DENYF_ID] = { "deny_file", K_FILE, CONF_LISTENER, 0, NULL, 0, NULL,
	    0, 0, 0 },
	[K_ALLOWF_ID] = { "allow_file", K_FILE, CONF_LISTENER, 0, NULL, 0,
	    NULL, 0, 0, 0 },
	[K_UPGRADE_ID] = { "upgrade_timeout", K_DURATION, CONF_GLOBAL,
	    IN_C(upgrade_ms), "30m", 1, NULL, 0, 0, 0 },
	[K_SPLICE_ID] = { "splice", K_ENUM, CONF_GLOBAL, IN_C(splice), "auto",
	    0, splice_names, 0, 0, 0 },
	[K_SOCKBUF_ID] = { "socket_buffer", K_SIZE, CONF_GLOBAL | CONF_LISTENER,
	    IN_L(sockbuf), "auto", 0, NULL, 0, 0, 0 },
};

/* A listener as read: its values at the keys' offsets, and where each key
 * was set.  The global group holds the defaults, then the global values. */
struct group {
	char name[NAME_MAX_LEN];
	int line;			/* first line naming it */
	int set[NKEYS];			/* line of each key, 0: not set */
	const char *listen_text;	/* as written, for messages */
	const char *up_text;		/* as written, for messages */
	int nroutes;
	struct listener l;
};

/* An sni line as read: its listener (group index) and line. */
struct rawroute {
	int group;
	int line;
	struct route r;
	const char *up;			/* HOST:PORT as written */
};

/* One allow, deny or accept_proxy_from entry as read, with its listener
 * (group index) and its key. */
struct rawcidr {
	int group;
	int key;			/* K_ALLOW_ID, K_DENY_ID, K_TRUST_ID */
	struct cidr c;
};

/* Strings as read, in chunks that never move until the parse ends. */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	char b[];
};

struct parser {
	const char *fname;
	int line;
	char key[VAL_MAX_LEN];		/* the key as written, for messages */
	char *err;
	size_t errlen;
	struct conf cf;			/* the global values */
	struct group global;
	struct group g[MAX_LISTENERS];	/* listeners, in file order */
	int ng;
	struct rawroute rr[MAX_ROUTES];	/* sni lines, in file order */
	int nrr;
	struct rawcidr rc[MAX_CIDRS];	/* allow and deny entries */
	int nrc;
	struct listfile lf[MAX_CIDRS];	/* deny_file and allow_file lines */
	int nlf;
	struct group status;		/* status.listen, not a listener */
	struct chunk *strs;
};

static int
fail(struct parser *P, int line, const char *key, const char *fmt, ...)
{
	char msg[VAL_MAX_LEN + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key != NULL)
		snprintf(P->err, P->errlen, "%s:%d: %s: %s", P->fname, line,
		    key, msg);
	else
		snprintf(P->err, P->errlen, "%s:%d: %s", P->fname, line, msg);
	return -1;
}

/* Keep n bytes of s, with a NUL, until the parse ends; NULL on ENOMEM. */
static const char *
keep(struct parser *P, const char *s, size_t n)
{
	struct chunk *c = P->strs;
	size_t cap;
	char *p;

	if (c == NULL || c->cap - c->used < n + 1) {
		cap = n + 1 > 4096 ? n + 1 : 4096;
		if ((c = malloc(sizeof(*c) + cap)) == NULL) {
			fail(P, P->line, NULL, "out of memory");
			return NULL;
		}
		c->next = P->strs;
		c->used = 0;
		c->cap = cap;
		P->strs = c;
	}
	p = c->b + c->used;
	memcpy(p, s, n);
	p[n] = '\0';
	c->used += n + 1;
	return p;
}

/* A problem found by val.c: say where. */
static int
bad(struct parser *P, const char *why)
{
	return fail(P, P->line, P->key, "%s", why);
}

static int
parse_upstream(struct parser *P, const char *s, struct target *t)
{
	char host[HOST_MAX_LEN], why[VAL_MAX_LEN + 128];

	if (val_target(s, t, host, sizeof(host), why, sizeof(why)) == -1)
		return bad(P, why);
	return (t->host = keep(P, host, strlen(host))) == NULL ? -1 : 0;
}

/* Write "a, b, c" of an enum's names into out. */
static void
name_list(const struct name *nm, char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (; nm->name != NULL && o < n; nm++)
		o += (size_t)snprintf(out + o, n - o, "%s%s", o ? ", " : "",
		    nm->name);
}

/* A route's options after HOST:PORT: proxy=v2|v1|off, alpn=a,b. */
static int
route_options(struct parser *P, char *opts, struct route *r)
{
	char list[128], wire[SNI_ALPN_MAX + 2], why[VAL_MAX_LEN + 128], *o;
	const struct name *nm;

	r->proxy = -1;		/* the listener's, unless given */
	r->alpn = "";
	for (o = strtok(opts, " \t"); o != NULL; o = strtok(NULL, " \t")) {
		if (strncmp(o, "proxy=", 6) == 0 && r->proxy == -1) {
			for (nm = proxy_names; nm->name != NULL; nm++)
				if (strcmp(o + 6, nm->name) == 0)
					break;
			if (nm->name == NULL) {
				name_list(proxy_names, list, sizeof(list));
				return fail(P, P->line, P->key, "\"%s\": \"%s\" "
				    "is not one of %s", o, o + 6, list);
			}
			r->proxy = nm->value;
		} else if (strncmp(o, "alpn=", 5) == 0 && r->alpn[0] == '\0') {
			if (val_alpn(o + 5, wire, sizeof(wire), why,
			    sizeof(why)) == -1)
				return bad(P, why);
			if ((r->alpn = keep(P, wire, strlen(wire))) == NULL)
				return -1;
		} else {
			return fail(P, P->line, P->key, "\"%s\": unknown or "
			    "repeated option (known: proxy=v2|v1|off, "
			    "alpn=NAME[,NAME...])", o);
		}
	}
	return 0;
}

/* "PATTERN HOST:PORT [OPTION...]": an exact name, *.suffix or prefix.* */
static int
parse_sni(struct parser *P, char *s, struct rawroute *rr)
{
	struct route *r = &rr->r;
	size_t n = strcspn(s, " \t"), k;
	char *up = s + n + strspn(s + n, " \t"), *opts;
	char pat[HOST_MAX_LEN], why[VAL_MAX_LEN + 128];

	if (n >= sizeof(pat) || *up == '\0')
		return fail(P, P->line, P->key, "\"%s\" is not PATTERN "
		    "HOST:PORT (use name, *.suffix or prefix.*, then "
		    "HOST:PORT)", s);
	if ((r->text = keep(P, s, n)) == NULL)
		return -1;
	if (val_pattern(r->text, &r->kind, pat, sizeof(pat), why,
	    sizeof(why)) == -1)
		return bad(P, why);
	k = strcspn(up, " \t");
	opts = up + k;
	if ((r->pat = keep(P, pat, strlen(pat))) == NULL ||
	    (rr->up = keep(P, up, k)) == NULL ||
	    route_options(P, opts, r) == -1)
		return -1;
	return parse_upstream(P, rr->up, &r->t);
}

/* Parse s as the value of key k into dst, where that key's value lands. */
static int
parse_value(struct parser *P, const struct key *k, const char *s, void *dst)
{
	const struct name *nm;
	char list[128], host[HOST_MAX_LEN], why[VAL_MAX_LEN + 128];
	char line[VAL_MAX_LEN + 4];
	int r = -1;

	switch (k->kind) {
	case K_DURATION:
		r = val_duration(s, k->zero_ok, dst, why, sizeof(why));
		break;
	case K_COUNT:
		r = k->hi ? val_count(s, k->lo, k->hi, dst, why, sizeof(why)) :
		    val_count(s, !k->zero_ok, MAX_CONNS_LIMIT, dst, why,
		    sizeof(why));
		break;
	case K_ENUM:
		for (nm = k->names; nm->name != NULL; nm++)
			if (strcmp(s, nm->name) == 0) {
				memcpy(dst, &nm->value, sizeof(int));
				return 0;
			}
		name_list(k->names, list, sizeof(list));
		return fail(P, P->line, P->key, "\"%s\" is not one of %s", s,
		    list);
	case K_USER:
		r = val_user(s, dst, why, sizeof(why));
		break;
	case K_UPSTREAM:
		return parse_upstream(P, s, dst);
	case K_RATE:
		r = val_rate(s, dst, why, sizeof(why));
		break;
	case K_SIZE:
		r = val_size(s, dst, why, sizeof(why));
		break;
	case K_LINE:
		if (val_line(s, why, sizeof(why)) == -1)
			break;
		snprintf(line, sizeof(line), "%s\r\n", s);
		return (*(const char **)dst = keep(P, line, strlen(line))) ==
		    NULL ? -1 : 0;
	case K_HOST:
		if (val_host(s, host, sizeof(host), why, sizeof(why)) == -1)
			break;
		return (*(const char **)dst = keep(P, host, strlen(host))) ==
		    NULL ? -1 : 0;
	case K_LISTEN:
	case K_SNI:
	case K_CIDRS:
	case K_FILE:
		return -1;	/* parse_line() handles these itself */
	}
	return r == 0 ? 0 : bad(P, why);
}

static struct group *
group(struct parser *P, const char *name, size_t n)
{
	struct group *g;
	int i;

	for (i = 0; i < P->ng; i++)
		if (strlen(P->g[i].name) == n &&
		    memcmp(P->g[i].name, name, n) == 0)
			return &P->g[i];
	if (P->ng == MAX_LISTENERS) {
		fail(P, P->line, P->key, "more than %d listeners",
		    MAX_LISTENERS);
		return NULL;
	}
	g = &P->g[P->ng++];
	memcpy(g->name, name, n);
	g->name[n] = '\0';
	g->line = P->line;
	return g;
}

static void
key_list(int scope, char *out, size_t n)
{
	size_t o = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < NKEYS && o < n; i++)
		if (keys[i].scope & scope)
			o += (size_t)snprintf(out + o, n - o, "%s%s",
			    o ? ", " : "", keys[i].name);
}

/* The entries of an allow, deny or accept_proxy_from line, appended. */
static int
parse_cidrs(struct parser *P, struct group *g, int key, char *value)
{
	char *p, why[VAL_MAX_LEN + 128];

	for (p = strtok(value, " \t"); p; p = strtok(NULL, " \t")) {
		if (P->nrc == MAX_CIDRS)
			return fail(P, P->line, P->key, "more than %d allow "
			    "and deny entries", MAX_CIDRS);
		if (val_cidr(p, &P->rc[P->nrc].c, why, sizeof(why)) == -1)
			return bad(P, why);
		P->rc[P->nrc].c.deny = key == K_DENY_ID;
		P->rc[P->nrc].key = key;
		P->rc[P->nrc++].group = (int)(g - P->g);
	}
	return 0;
}

/*
 * Strip the comment and split "key = value" in place.  Returns 1 with the
 * key in P->key and the value in *v, 0 for a blank line, -1 on an error.
 */
static int
split_line(struct parser *P, char *line, char **v)
{
	char *eq, *k, *p, *val;
	size_t n;

	/* A '#' starts a comment at the line's start or after a blank. */
	for (p = line; *p != '\0'; p++)
		if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t'))
			break;
	*p = '\0';
	while (p > line && (p[-1] == ' ' || p[-1] == '\t'))
		*--p = '\0';
	for (k = line; *k == ' ' || *k == '\t'; k++)
		;
	if (*k == '\0')
		return 0;
	if ((eq = strchr(k, '=')) == NULL)
		return fail(P, P->line, NULL,
		    "\"%s\": expected key = value", k);
	for (val = eq + 1; *val == ' ' || *val == '\t'; val++)
		;
	for (p = eq; p > k && (p[-1] == ' ' || p[-1] == '\t'); p--)
		;
	*p = '\0';
	n = strlen(k);
	if (n == 0)
		return fail(P, P->line, NULL, "\"= %s\": missing key", val);
	if (n >= sizeof(P->key))
		return fail(P, P->line, NULL, "key is too long");
	memcpy(P->key, k, n + 1);
	*v = val;
	return 1;
}

/* Put the expanded value of key kd where it lands, for group g. */
static int
store(struct parser *P, struct group *g, const struct key *kd, char *value)
{
	char why[VAL_MAX_LEN + 128];
	int i = (int)(kd - keys);
	void *dst;

	switch (kd->kind) {
	case K_CIDRS:
		if (parse_cidrs(P, g, i, value) == -1)
			return -1;
		break;
	case K_FILE:
		if (P->nlf == MAX_CIDRS)
			return fail(P, P->line, P->key, "more than %d list "
			    "files", MAX_CIDRS);
		P->lf[P->nlf].li = (int)(g - P->g);
		P->lf[P->nlf].deny = i == K_DENYF_ID;
		P->lf[P->nlf].line = P->line;
		if ((P->lf[P->nlf++].path = keep(P, value, strlen(value))) ==
		    NULL)
			return -1;
		break;
	case K_SNI:
		if (parse_sni(P, value, &P->rr[P->nrr]) == -1)
			return -1;
		P->rr[P->nrr].group = (int)(g - P->g);
		P->rr[P->nrr++].line = P->line;
		g->nroutes++;
		break;
	case K_LISTEN:
		if (val_listen(value, &g->l.addr, &g->l.dual, why,
		    sizeof(why)) == -1)
			return bad(P, why);
		if ((g->listen_text = keep(P, value, strlen(value))) == NULL)
			return -1;
		break;
	default:
		dst = kd->scope & CONF_LISTENER ? (char *)&g->l + kd->off :
		    (char *)&P->cf + kd->off;
		if (parse_value(P, kd, value, dst) == -1)
			return -1;
		if (i == K_UPSTREAM_ID &&
		    (g->up_text = keep(P, value, strlen(value))) == NULL)
			return -1;
		break;
	}
	return 0;
}

static int
parse_line(struct parser *P, char *line)
{
	char *k, *v = NULL, *dot, value[VAL_MAX_LEN], known[512];
	char why[VAL_MAX_LEN + 128];
	const struct key *kd = NULL;
	struct group *g = &P->global;
	int i, r, scope = CONF_GLOBAL;
	size_t namelen = 0;

	if ((r = split_line(P, line, &v)) <= 0)
		return r;
	k = P->key;
	if ((dot = strchr(k, '.')) != NULL) {
		if (!val_listener_name(k, (size_t)(dot - k)))
			return fail(P, P->line, P->key, "bad listener name "
			    "(letters, digits, '_' and '-', at most %d)",
			    NAME_MAX_LEN - 1);
		scope = CONF_LISTENER;
		namelen = (size_t)(dot - k);
		k = dot + 1;
		if (namelen == 6 && memcmp(P->key, "status", 6) == 0) {
			if (strcmp(k, "listen") != 0)
				return fail(P, P->line, P->key, "unknown key "
				    "(\"status\" is reserved for the status "
				    "endpoint; its one key is status.listen)");
			scope = CONF_STATUS;
			g = &P->status;
		}
	}
	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, k) == 0 && (keys[i].scope & scope))
			kd = &keys[i];
	if (kd == NULL) {
		key_list(scope, known, sizeof(known));
		return fail(P, P->line, P->key, "unknown %skey (known: %s)",
		    scope == CONF_LISTENER ? "listener " : "", known);
	}
	if (scope == CONF_LISTENER &&
	    (g = group(P, P->key, namelen)) == NULL)
		return -1;
	i = (int)(kd - keys);
	if (kd->kind != K_SNI && kd->kind != K_CIDRS && kd->kind != K_FILE &&
	    g->set[i] != 0)
		return fail(P, P->line, P->key, "already set on line %d",
		    g->set[i]);
	if (kd->kind == K_SNI && P->nrr == MAX_ROUTES)
		return fail(P, P->line, P->key, "more than %d sni routes",
		    MAX_ROUTES);
	if (val_expand(v, value, sizeof(value), why, sizeof(why)) == -1)
		return bad(P, why);
	if (value[0] == '\0' && kd->kind != K_SNI)
		return fail(P, P->line, P->key, "empty value");
	if (store(P, g, kd, value) == -1)
		return -1;
	if (g->set[i] == 0)	/* lists: the first line */
		g->set[i] = P->line;
	return 0;
}

/* Do the two listen addresses take some of the same sockets? */
static int
overlaps(const union sa *x, int xdual, const union sa *y, int ydual)
{
	const unsigned char *xb, *yb;
	size_t n;

	if (sa_port(x) != sa_port(y) || sa_port(x) == 0)
		return 0;
	if (xdual || ydual)
		return 1;
	if (x->sa.sa_family != y->sa.sa_family)
		return 0;
	xb = sa_bytes(x, &n);
	yb = sa_bytes(y, &n);
	return sa_is_any(x) || sa_is_any(y) || memcmp(xb, yb, n) == 0;
}

/* Complete a target: a bare :PORT takes upstream_host. */
static int
complete(struct parser *P, struct target *t, int line, const char *key,
    const char *text)
{
	if (t->host[0] != '\0')
		return 0;
	if (P->cf.upstream_host == NULL)
		return fail(P, line, key, "\"%s\" names no host and "
		    "upstream_host is not set", text);
	t->host = P->cf.upstream_host;
	t->literal = sa_literal(t->host, t->port, &t->addr) == 0;
	return 0;
}

/* Fail if the literal target t is one of the listen addresses. */
static int
loops(struct parser *P, const struct target *t, int line, const char *key,
    const char *text)
{
	const struct group *g;
	char a[SA_FMT_LEN];
	int i;

	if (line == 0 || !t->literal)
		return 0;
	for (i = 0; i < P->ng; i++) {
		g = &P->g[i];
		if (sa_reaches(&g->l.addr, g->l.dual, &t->addr) == 1)
			return fail(P, line, key, "\"%s\" (%s) is where %s "
			    "listens (line %d): every connection would come "
			    "back into edge", text, sa_fmt(&t->addr, a,
			    sizeof(a)), g->name, g->set[K_LISTEN_ID]);
	}
	return 0;
}

/* The bytes a plain value of this kind takes where it lands. */
static size_t
plain_size(enum kind k)
{
	if (k == K_RATE)
		return sizeof(struct rate);
	return k == K_DURATION ? sizeof(int64_t) : k == K_COUNT ||
	    k == K_ENUM || k == K_SIZE ? sizeof(int) : 0;
}

/* The defaults of every key, into the global group and struct conf. */
static int
defaults(struct parser *P)
{
	const struct key *k;

	for (k = keys; k < keys + NKEYS; k++) {
		if (k->def == NULL)
			continue;
		snprintf(P->key, sizeof(P->key), "%s", k->name);
		if (parse_value(P, k, k->def, k->scope & CONF_LISTENER ?
		    (char *)&P->global.l + k->off : (char *)&P->cf + k->off)
		    == -1)
			return -1;
	}
	return 0;
}

/* What a listener does not set itself it takes from the global group. */
static void
inherit(struct parser *P, struct group *g)
{
	const struct key *k;
	size_t n;

	for (k = keys; k < keys + NKEYS; k++)
		if ((k->scope & CONF_LISTENER) && !g->set[k - keys] &&
		    (n = plain_size(k->kind)) > 0)
			memcpy((char *)&g->l + k->off,
			    (char *)&P->global.l + k->off, n);
}

/* accept_proxy and accept_proxy_from come together: edge never trusts a
 * PROXY header from anyone. */
static int
check_accept(struct parser *P, const struct group *g)
{
	const struct rawcidr *rc;
	char key[NAME_MAX_LEN + 32];
	int n = 0;

	for (rc = P->rc; rc < P->rc + P->nrc; rc++)
		n += rc->group == (int)(g - P->g) && rc->key == K_TRUST_ID;
	if (g->l.accept_proxy != 0 && n == 0) {
		snprintf(key, sizeof(key), "%s.accept_proxy", g->name);
		return fail(P, g->set[K_ACCEPT_ID], key, "on, but %s."
		    "accept_proxy_from is not set (edge reads a PROXY header "
		    "only from the balancers it names)", g->name);
	}
	if (g->l.accept_proxy == 0 && n > 0) {
		snprintf(key, sizeof(key), "%s.accept_proxy_from", g->name);
		return fail(P, g->set[K_TRUST_ID], key, "set, but %s."
		    "accept_proxy is off", g->name);
	}
	return 0;
}

static int
finish(struct parser *P)
{
	char key[NAME_MAX_LEN + 32];
	struct rawroute *rr;
	struct group *g, *h;
	int i, j;

	if (P->ng == 0)
		return fail(P, P->line, NULL, "no listener is defined "
		    "(e.g. smtp.listen = :25 and smtp.upstream = HOST:25)");
	if ((P->cf.status = P->status.set[K_LISTEN_ID] != 0)) {
		P->cf.status_addr = P->status.l.addr;
		P->cf.status_dual = P->status.l.dual;
	}
	for (i = 0; i < P->ng; i++) {
		g = &P->g[i];
		snprintf(key, sizeof(key), "%s.listen", g->name);
		if (g->set[K_LISTEN_ID] == 0)
			return fail(P, g->line, key, "not set (a listener "
			    "needs listen and upstream)");
		for (j = 0; j < i; j++) {
			h = &P->g[j];
			if (overlaps(&g->l.addr, g->l.dual, &h->l.addr,
			    h->l.dual))
				return fail(P, g->set[K_LISTEN_ID], key,
				    "\"%s\" is already used by %s (line %d)",
				    g->listen_text, h->name,
				    h->set[K_LISTEN_ID]);
		}
		h = &P->status;
		if (h->set[K_LISTEN_ID] != 0 && overlaps(&g->l.addr,
		    g->l.dual, &h->l.addr, h->l.dual))
			return fail(P, h->set[K_LISTEN_ID], "status.listen",
			    "\"%s\" is already used by %s (line %d)",
			    h->listen_text, g->name, g->set[K_LISTEN_ID]);
		snprintf(key, sizeof(key), "%s.upstream", g->name);
		if (g->set[K_UPSTREAM_ID] == 0 && g->nroutes == 0)
			return fail(P, g->line, key, "not set (a listener "
			    "needs listen and upstream, or sni routes)");
		memcpy(g->l.name, g->name, sizeof(g->l.name));
		g->l.line = g->line;
		if (g->set[K_UPSTREAM_ID] == 0)
			g->l.up.host = "";
		else if (complete(P, &g->l.up, g->set[K_UPSTREAM_ID], key,
		    g->up_text))
			return -1;
		inherit(P, g);
		if (check_accept(P, g) == -1)
			return -1;
		if (g->l.refuse != NULL && g->nroutes > 0) {
			snprintf(key, sizeof(key), "%s.refuse", g->name);
			return fail(P, g->set[K_REFUSE_ID], key, "not on a "
			    "listener with sni routes: a TLS client cannot read "
			    "it");
		}
		snprintf(key, sizeof(key), "%s.sni", g->name);
		g->l.any_proxy = g->l.proxy != PROXY_OFF;
		for (rr = P->rr; rr < P->rr + P->nrr; rr++) {
			if (rr->group != i)
				continue;
			if (complete(P, &rr->r.t, rr->line, key, rr->up))
				return -1;
			if (rr->r.proxy == -1)
				rr->r.proxy = g->l.proxy;
			g->l.any_proxy |= rr->r.proxy != PROXY_OFF;
		}
	}

	/* An upstream that is one of edge's own listen addresses would
	 * connect every client to edge again, until max_conns is used up. */
	for (i = 0; i < P->ng; i++) {
		snprintf(key, sizeof(key), "%s.upstream", P->g[i].name);
		if (loops(P, &P->g[i].l.up, P->g[i].set[K_UPSTREAM_ID], key,
		    P->g[i].up_text))
			return -1;
	}
	for (rr = P->rr; rr < P->rr + P->nrr; rr++) {
		snprintf(key, sizeof(key), "%s.sni", P->g[rr->group].name);
		if (loops(P, &rr->r.t, rr->line, key, rr->up))
			return -1;
	}
	return 0;
}

/* Copy s to *arena; returns the copy. */
static const char *
put(char **arena, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = *arena;

	memcpy(p, s, n);
	*arena += n;
	return p;
}

/*
 * The config as one allocation: the struct, then its listeners, routes
 * (each listener's side by side, in file order) and allow/deny entries
 * (each listener's allow entries, its deny entries, then its
 * accept_proxy_from entries), then the
 * strings they point to.
 */
static struct conf *
build(struct parser *P)
{
	const struct rawroute *rr;
	const struct rawcidr *rc;
	struct listener *l;
	struct route *r;
	struct conf *cf;
	static const int lists[3] = { K_ALLOW_ID, K_DENY_ID, K_TRUST_ID };
	size_t strs = 0;
	char *arena;
	int i, k;

	for (i = 0; i < P->ng; i++)
		strs += strlen(P->g[i].l.up.host) + 1 + (P->g[i].l.refuse ?
		    strlen(P->g[i].l.refuse) + 1 : 0);
	for (rr = P->rr; rr < P->rr + P->nrr; rr++)
		strs += strlen(rr->r.pat) + strlen(rr->r.text) +
		    strlen(rr->r.t.host) + strlen(rr->r.alpn) + 4;
	if (P->cf.upstream_host != NULL)
		strs += strlen(P->cf.upstream_host) + 1;
	for (i = 0; i < P->nlf; i++)
		strs += strlen(P->lf[i].path) + 1;
	if ((cf = malloc(sizeof(*cf) + (size_t)P->ng * sizeof(*cf->l) +
	    (size_t)P->nrr * sizeof(*cf->r) + (size_t)P->nrc * sizeof(*cf->c) +
	    (size_t)P->nlf * sizeof(*cf->files) + strs)) == NULL) {
		fail(P, P->line, NULL, "out of memory");
		return NULL;
	}
	*cf = P->cf;
	cf->refs = 1;
	cf->l = (struct listener *)(cf + 1);
	cf->r = (struct route *)(cf->l + P->ng);
	cf->files = (struct listfile *)(cf->r + P->nrr);
	cf->c = (struct cidr *)(cf->files + P->nlf);
	arena = (char *)(cf->c + P->nrc);
	for (i = 0; i < P->nlf; i++) {
		cf->files[i] = P->lf[i];
		cf->files[i].path = put(&arena, P->lf[i].path);
	}
	cf->nfiles = P->nlf;
	if (P->cf.upstream_host != NULL)
		cf->upstream_host = put(&arena, P->cf.upstream_host);
	for (i = 0; i < P->ng; i++) {
		l = &cf->l[cf->nl++];
		*l = P->g[i].l;
		l->up.host = put(&arena, l->up.host);
		if (l->refuse != NULL)
			l->refuse = put(&arena, l->refuse);
		l->r0 = cf->nr;
		for (rr = P->rr; rr < P->rr + P->nrr; rr++) {
			if (rr->group != i)
				continue;
			r = &cf->r[cf->nr++];
			*r = rr->r;
			r->pat = put(&arena, r->pat);
			r->text = put(&arena, r->text);
			r->t.host = put(&arena, r->t.host);
			r->alpn = put(&arena, r->alpn);
		}
		l->nr = cf->nr - l->r0;
		l->c0 = cf->nc;
		for (k = 0; k < 3; k++) {
			for (rc = P->rc; rc < P->rc + P->nrc; rc++)
				if (rc->group == i && rc->key == lists[k])
					cf->c[cf->nc++] = rc->c;
			if (k == 0)
				l->nallow = cf->nc - l->c0;
			else if (k == 1)
				l->nc = cf->nc - l->c0;
		}
		l->t0 = l->c0 + l->nc;
		l->nt = cf->nc - l->t0;
	}
	return cf;
}

struct conf *
conf_parse(const char *text, size_t n, const char *fname, char *err,
    size_t errlen)
{
	struct parser *P;
	struct conf *cf = NULL;
	struct chunk *c;
	char line[VAL_MAX_LEN * 2];
	const char *p = text, *end = text + n, *nl;
	size_t len;

	if ((P = calloc(1, sizeof(*P))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", fname);
		return NULL;
	}
	P->fname = fname;
	P->err = err;
	P->errlen = errlen;
	if (defaults(P) == -1)
		goto out;
	while (p < end) {
		P->line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len >= sizeof(line)) {
			fail(P, P->line, NULL, "line is longer than %d bytes",
			    (int)sizeof(line) - 1);
			goto out;
		}
		if (memchr(p, '\0', len) != NULL) {
			fail(P, P->line, NULL, "line holds a NUL byte");
			goto out;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		if (parse_line(P, line) == -1)
			goto out;
		p = nl + 1;
	}
	if (finish(P) == 0)
		cf = build(P);
out:
	while ((c = P->strs) != NULL) {
		P->strs = c->next;
		free(c);
	}
	free(P);
	return cf;
}

struct conf *
conf_hold(struct conf *cf)
{
	cf->refs++;
	return cf;
}

void
conf_free(struct conf *cf)
{
	int i;

	if (cf == NULL || --cf->refs > 0)
		return;
	for (i = 0; i < cf->nl; i++) {
		nets_free(cf->l[i].deny_net);
		nets_free(cf->l[i].allow_net);
	}
	free(cf);
}

int
conf_list_text(struct conf *cf, int i, const char *text, size_t n,
    char *err, size_t errlen)
{
	struct listener *l = &cf->l[cf->files[i].li];

	return nets_add(cf->files[i].deny ? &l->deny_net : &l->allow_net,
	    text, n, cf->files[i].path, err, errlen);
}

void
conf_lists_done(struct conf *cf)
{
	int i;

	for (i = 0; i < cf->nl; i++) {
		nets_done(cf->l[i].deny_net);
		nets_done(cf->l[i].allow_net);
	}
}

/* Does the route's pattern match name? */
static int
name_matches(const struct route *r, const char *name)
{
	size_t n = strlen(name), k = strlen(r->pat);

	switch (r->kind) {
	case R_EXACT:
		return strcmp(name, r->pat) == 0;
	case R_SUFFIX:	/* "*.example.net": x.example.net, a.b.example.net */
		return n > k + 1 && name[n - k - 1] == '.' &&
		    strcmp(name + n - k, r->pat) == 0;
	case R_PREFIX:	/* "mta-sts.*": mta-sts.example.net */
		return n > k + 1 && name[k] == '.' &&
		    memcmp(name, r->pat, k) == 0;
	}
	return 0;
}

/* Does the hello offer one of the route's protocols (exact bytes)? */
static int
alpn_matches(const struct route *r, const unsigned char *a, size_t alen)
{
	const unsigned char *w;
	size_t i;

	if (r->alpn[0] == '\0')
		return 1;	/* the route takes any */
	for (i = 0; i < alen && i + 1 + a[i] <= alen; i += 1 + a[i])
		for (w = (const unsigned char *)r->alpn; *w != 0; w += 1 + *w)
			if (*w == a[i] && memcmp(w + 1, a + i + 1, *w) == 0)
				return 1;
	return 0;
}

const struct route *
conf_route(const struct conf *cf, const struct listener *l, const char *name,
    const unsigned char *alpn, size_t alpnlen)
{
	const struct route *r;
	int i;

	for (i = 0; i < l->nr; i++) {
		r = &cf->r[l->r0 + i];
		if (name_matches(r, name) && alpn_matches(r, alpn, alpnlen))
			return r;
	}
	return NULL;
}

int
conf_trusted(const struct conf *cf, const struct listener *l,
    const union sa *a)
{
	int i;

	for (i = 0; i < l->nt; i++)
		if (cidr_match(&cf->c[l->t0 + i], a))
			return 1;
	return 0;
}

int
conf_allowed(const struct conf *cf, const struct listener *l,
    const union sa *a)
{
	int i;

	/* Deny wins; with any allow entry or file, only those are let in. */
	for (i = l->nallow; i < l->nc; i++)
		if (cidr_match(&cf->c[l->c0 + i], a))
			return 0;
	if (nets_match(l->deny_net, a))
		return 0;
	if (l->nallow == 0 && l->allow_net == NULL)
		return 1;
	for (i = 0; i < l->nallow; i++)
		if (cidr_match(&cf->c[l->c0 + i], a))
			return 1;
	return nets_match(l->allow_net, a);
}

const char *
conf_proxy_name(int proxy)
{
	const struct name *nm;

	for (nm = proxy_names; nm->name != NULL; nm++)
		if (nm->value == proxy)
			return nm->name;
	return "?";
}

/* The text of key k's value in l, for the description line. */
static void
value_text(const struct key *k, const struct listener *l, char *out,
    size_t n)
{
	const struct name *nm;
	int64_t v;
	int iv;

	if (k->kind == K_DURATION) {
		memcpy(&v, (const char *)l + k->off, sizeof(v));
		snprintf(out, n, "%lldms", (long long)v);
		return;
	}
	memcpy(&iv, (const char *)l + k->off, sizeof(iv));
	for (nm = k->names; nm != NULL && nm->name != NULL; nm++)
		if (nm->value == iv) {
			snprintf(out, n, "%s", nm->name);
			return;
		}
	snprintf(out, n, "%d", iv);
}

void
conf_describe(const struct listener *l, char *out, size_t n)
{
	const struct key *k;
	char v[32];
	size_t o = 0;

	out[0] = '\0';
	for (k = keys; k < keys + NKEYS && o < n; k++) {
		if (!k->show)
			continue;
		value_text(k, l, v, sizeof(v));
		o += (size_t)snprintf(out + o, n - o, " %s=%s", k->name, v);
	}
	if ((l->nc > 0 || l->max_per_ip > 0) && o < n)
		o += (size_t)snprintf(out + o, n - o, " allow=%d deny=%d "
		    "max_conns_per_ip=%d", l->nallow, l->nc - l->nallow,
		    l->max_per_ip);
	if ((l->deny_net != NULL || l->allow_net != NULL) && o < n)
		o += (size_t)snprintf(out + o, n - o, " deny_file=%zu "
		    "allow_file=%zu", nets_count(l->deny_net),
		    nets_count(l->allow_net));
	if (l->sockbuf > 0 && o < n)
		o += (size_t)snprintf(out + o, n - o, " socket_buffer=%d",
		    l->sockbuf);
	if (l->accept_proxy != 0 && o < n) {
		value_text(&keys[K_ACCEPT_ID], l, v, sizeof(v));
		snprintf(out + o, n - o, " accept_proxy=%s accept_proxy_from=%d "
		    "accept_proxy_timeout=%lldms", v, l->nt,
		    (long long)l->accept_proxy_ms);
	}
}

static int
target_equal(const struct target *a, const struct target *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0
	    && a->literal == b->literal && (!a->literal ||
	    sa_equal(&a->addr, &b->addr));
}

/* Do listeners o and n name the same list files of a kind, in order? */
static int
same_files(const struct conf *oc, const struct listener *o,
    const struct conf *nc, const struct listener *n, int deny)
{
	int i = 0, j = 0;

	for (;;) {
		while (i < oc->nfiles && (oc->files[i].li != o - oc->l ||
		    oc->files[i].deny != deny))
			i++;
		while (j < nc->nfiles && (nc->files[j].li != n - nc->l ||
		    nc->files[j].deny != deny))
			j++;
		if (i == oc->nfiles || j == nc->nfiles)
			return i == oc->nfiles && j == nc->nfiles;
		if (strcmp(oc->files[i++].path, nc->files[j++].path) != 0)
			return 0;
	}
}

static int
route_equal(const struct route *a, const struct route *b)
{
	return strcmp(a->text, b->text) == 0 && target_equal(&a->t, &b->t) &&
	    a->proxy == b->proxy && strcmp(a->alpn, b->alpn) == 0;
}

void
conf_diff(const struct conf *oc, const struct listener *o,
    const struct conf *nc, const struct listener *n, int moved, char *out,
    size_t sz)
{
	const struct key *k;
	const char *name;
	size_t w = 0;
	int i, d;

	out[0] = '\0';
	for (k = keys; k < keys + NKEYS; k++) {
		if (!(k->scope & CONF_LISTENER))
			continue;
		name = k->name;
		switch (k->kind) {
		case K_LISTEN:
			d = moved;
			break;
		case K_UPSTREAM:
			d = !target_equal(&o->up, &n->up);
			break;
		case K_LINE:
			d = (o->refuse == NULL) != (n->refuse == NULL) ||
			    (o->refuse && strcmp(o->refuse, n->refuse) != 0);
			break;
		case K_FILE:
			d = !same_files(oc, o, nc, n, k - keys == K_DENYF_ID) ||
			    !nets_equal(k - keys == K_DENYF_ID ? o->deny_net :
			    o->allow_net, k - keys == K_DENYF_ID ? n->deny_net :
			    n->allow_net);
			break;
		case K_SNI:
			d = o->nr != n->nr;
			for (i = 0; !d && i < n->nr; i++)
				d = !route_equal(&oc->r[o->r0 + i],
				    &nc->r[n->r0 + i]);
			break;
		case K_CIDRS:
			if (k - keys == K_TRUST_ID) {
				d = o->nt != n->nt;
				for (i = 0; !d && i < n->nt; i++)
					d = memcmp(&oc->c[o->t0 + i],
					    &nc->c[n->t0 + i],
					    sizeof(struct cidr)) != 0;
				break;
			}
			if (k - keys == K_DENY_ID)
				continue;	/* one "allow/deny" for both */
			name = "allow/deny";
			d = o->nc != n->nc || o->nallow != n->nallow;
			for (i = 0; !d && i < n->nc; i++)
				d = memcmp(&oc->c[o->c0 + i], &nc->c[n->c0 + i],
				    sizeof(struct cidr)) != 0;
			break;
		default:
			d = memcmp((const char *)o + k->off,
			    (const char *)n + k->off, plain_size(k->kind)) != 0;
			break;
		}
		if (d)
			w += (size_t)snprintf(out + w, w < sz ? sz - w : 0,
			    "%s%s", w ? "," : "", name);
	}
}

int
conf_key(int i, const char **name, const char **def, int *scope)
{
	if (i < 0 || i >= NKEYS)
		return 0;
	*name = keys[i].name;
	*def = keys[i].def;
	*scope = keys[i].scope;
	return 1;
}
