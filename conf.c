/* SPDX-License-Identifier: ISC */
/*
 * The configuration file: flat "key = value" lines, "#" comments (at the
 * start of a line or after white space), ${VAR} and ${VAR:-default} taken
 * from the environment.  Keys without a dot are global; "NAME.key" belongs
 * to the listener NAME.  The parser works on memory, fills a fresh struct
 * conf, and stops at the first error, which it reports as one line:
 *
 *   edge.conf:12: smtp.idle_timeout: "30x" is not a duration (e.g. 30m, 1800s)
 *
 * It touches no socket and no global state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define CONF_MAX_SIZE	(1024 * 1024)
#define VAL_MAX_LEN	512
#define MAX_CONNS_LIMIT	1000000
#define DURATION_MAX_MS	(7LL * 24 * 3600 * 1000)

enum ktype { K_DURATION, K_PREFER, K_PROXY, K_COUNT, K_LISTEN, K_UPSTREAM,
	K_HOST, K_SNI, K_CIDRS, K_USER };

enum {	/* where a key may appear */
	S_GLOBAL = 1,
	S_LISTENER = 2
};

enum kid { K_LISTEN_ID, K_UPSTREAM_ID, K_SNI_ID, K_PROXY_ID, K_PREFER_ID,
	K_CONNECT_ID, K_DNS_ID, K_IDLE_ID, K_SNITO_ID, K_MAXCONNS_ID,
	K_UPHOST_ID, K_DRAIN_ID, K_USER_ID, K_ALLOW_ID, K_DENY_ID,
	K_PERIP_ID, NKEYS };

static const struct keydef {
	const char *key;
	enum ktype type;
	int scope;
	int zero_ok;		/* a duration or count of 0 means "off" */
} keys[NKEYS] = {
	[K_LISTEN_ID] = { "listen", K_LISTEN, S_LISTENER, 0 },
	[K_UPSTREAM_ID] = { "upstream", K_UPSTREAM, S_LISTENER, 0 },
	[K_SNI_ID] = { "sni", K_SNI, S_LISTENER, 0 },
	[K_PROXY_ID] = { "proxy", K_PROXY, S_LISTENER, 0 },
	[K_PREFER_ID] = { "prefer", K_PREFER, S_GLOBAL | S_LISTENER, 0 },
	[K_CONNECT_ID] = { "connect_timeout", K_DURATION, S_GLOBAL | S_LISTENER, 0 },
	[K_DNS_ID] = { "dns_timeout", K_DURATION, S_GLOBAL | S_LISTENER, 0 },
	[K_IDLE_ID] = { "idle_timeout", K_DURATION, S_GLOBAL | S_LISTENER, 1 },
	[K_SNITO_ID] = { "sni_timeout", K_DURATION, S_GLOBAL | S_LISTENER, 0 },
	[K_MAXCONNS_ID] = { "max_conns", K_COUNT, S_GLOBAL, 0 },
	[K_UPHOST_ID] = { "upstream_host", K_HOST, S_GLOBAL, 0 },
	[K_DRAIN_ID] = { "drain_timeout", K_DURATION, S_GLOBAL, 1 },
	[K_USER_ID] = { "user", K_USER, S_GLOBAL, 0 },
	[K_ALLOW_ID] = { "allow", K_CIDRS, S_LISTENER, 0 },
	[K_DENY_ID] = { "deny", K_CIDRS, S_LISTENER, 0 },
	[K_PERIP_ID] = { "max_conns_per_ip", K_COUNT, S_LISTENER, 1 },
};

/* One key's value as read, and the line it came from (0: not set). */
struct val {
	int line;
	int64_t num;
	union sa addr;		/* listen */
	int flag;		/* listen: dual stack */
	char port[6];		/* listen */
	char host[HOST_MAX_LEN];	/* upstream_host */
	struct target t;	/* upstream (host "": use upstream_host) */
	struct runas user;	/* user */
	char text[VAL_MAX_LEN];	/* the expanded value, for messages */
};

struct group {
	char name[NAME_MAX_LEN];
	int line;
	int nroutes;
	struct val v[NKEYS];
};

/* An sni line as read: its listener (group index) and line. */
struct rawroute {
	int group;
	int line;
	struct route r;
	char up[VAL_MAX_LEN];	/* HOST:PORT as written, for messages */
};

/* One allow or deny entry as read, with its listener (group index). */
struct rawcidr {
	int group;
	struct cidr c;
};

struct parser {
	const char *fname;
	int line;
	char key[VAL_MAX_LEN];	/* the key as written, for messages */
	char *err;
	size_t errlen;
	struct group global;
	struct group *g;	/* listeners, in file order */
	int ng;
	struct rawroute *rr;	/* sni lines, in file order */
	int nrr;
	struct rawcidr *rc;	/* allow and deny entries, in file order */
	int nrc;
	struct val status;	/* status.listen */
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

static int
isvarch(int ch, int first)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    ch == '_' || (!first && ch >= '0' && ch <= '9');
}

/* Expand ${VAR} and ${VAR:-default} from in into out. */
static int
expand(struct parser *P, const char *in, char *out, size_t outsz)
{
	const char *p = in, *name, *def, *val, *end;
	size_t o = 0, namelen, vlen;
	char var[128];

	while (*p != '\0') {
		if (p[0] != '$' || p[1] != '{') {
			if (o + 1 >= outsz)
				goto toolong;
			out[o++] = *p++;
			continue;
		}
		name = p + 2;
		for (end = name; isvarch((unsigned char)*end, end == name); end++)
			;
		namelen = (size_t)(end - name);
		if (namelen == 0 || namelen >= sizeof(var))
			return fail(P, P->line, P->key,
			    "bad variable name after \"${\" in \"%s\"", in);
		memcpy(var, name, namelen);
		var[namelen] = '\0';
		def = NULL;
		if (end[0] == ':' && end[1] == '-') {
			def = end + 2;
			if ((end = strchr(def, '}')) == NULL)
				return fail(P, P->line, P->key,
				    "unterminated \"${%s:-\"", var);
		} else if (*end != '}') {
			return fail(P, P->line, P->key,
			    "unterminated or malformed \"${%s\"", var);
		}
		val = getenv(var);
		if (val != NULL && (*val != '\0' || def == NULL)) {
			vlen = strlen(val);
		} else if (def != NULL) {
			val = def;
			vlen = (size_t)(end - def);
		} else {
			return fail(P, P->line, P->key,
			    "${%s} is not set (write ${%s:-default} to give "
			    "a default)", var, var);
		}
		if (o + vlen >= outsz)
			goto toolong;
		memcpy(out + o, val, vlen);
		o += vlen;
		p = end + 1;
	}
	out[o] = '\0';
	return 0;
toolong:
	return fail(P, P->line, P->key, "value is longer than %d bytes",
	    (int)outsz - 1);
}

/* Decimal digits only, at most max; returns -1 on anything else. */
static int64_t
number(const char *s, size_t n, int64_t max)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

static int
parse_duration(const char *s, int64_t *ms)
{
	static const struct { const char *u; int64_t mul; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "", 1000 },
	};
	size_t n = strspn(s, "0123456789"), i;
	int64_t v;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].u) != 0)
			continue;
		v = number(s, n, DURATION_MAX_MS);
		if (v == -1 || v > DURATION_MAX_MS / units[i].mul)
			return -1;
		*ms = v * units[i].mul;
		return 0;
	}
	return -1;
}

static int
parse_port(const char *s, int min, char out[6])
{
	int64_t v = number(s, strlen(s), 65535);

	if (v < min)
		return -1;
	snprintf(out, 6, "%d", (int)v);
	return 0;
}

/*
 * A DNS name: letters, digits, '-', '_' and '.', 1 to 253 bytes, no empty
 * label (a single trailing dot is allowed).
 */
static int
valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' ||
	    strstr(s, "..") != NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (!isvarch((unsigned char)s[i], 0) && s[i] != '-' &&
		    s[i] != '.')
			return 0;
	return 1;
}

static int
parse_listen(struct parser *P, const char *s, struct val *v)
{
	char host[HOST_MAX_LEN];
	const char *port;

	if (sa_split(s, host, sizeof(host), &port) == -1)
		return fail(P, P->line, P->key, "\"%s\" is not an address "
		    "(use :PORT, IPv4:PORT or [IPv6]:PORT)", s);
	if (parse_port(port, 0, v->port) == -1)
		return fail(P, P->line, P->key,
		    "\"%s\" is not a port (0-65535)", port);
	if (host[0] == '\0' || strcmp(host, "*") == 0) {
		/* Bound as [::] with IPV6_V6ONLY off, or 0.0.0.0 without v6. */
		sa_literal("::", v->port, &v->addr);
		v->flag = 1;
		return 0;
	}
	if (sa_literal(host, v->port, &v->addr) == -1 || (s[0] == '[') !=
	    (v->addr.sa.sa_family == AF_INET6))
		return fail(P, P->line, P->key, "\"%s\" is not an address "
		    "(use :PORT, IPv4:PORT or [IPv6]:PORT)", s);
	return 0;
}

static int
parse_upstream(struct parser *P, const char *s, struct target *t)
{
	const char *port;

	if (sa_split(s, t->host, sizeof(t->host), &port) == -1)
		return fail(P, P->line, P->key, "\"%s\" is not HOST:PORT "
		    "(or :PORT with upstream_host)", s);
	if (parse_port(port, 1, t->port) == -1)
		return fail(P, P->line, P->key,
		    "\"%s\" is not a port (1-65535)", port);
	if (t->host[0] == '\0')
		return 0;
	if (sa_literal(t->host, t->port, &t->addr) == 0) {
		t->literal = 1;
		return 0;
	}
	if (s[0] == '[' || !valid_name(t->host))
		return fail(P, P->line, P->key, "\"%s\" is not a host name "
		    "or IP address", t->host);
	return 0;
}

/* Lower-case a name and drop one trailing dot, in place. */
static void
fold(char *s)
{
	size_t n = strlen(s);

	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	if (n > 1 && s[-1] == '.')
		s[-1] = '\0';
}

/* "PATTERN HOST:PORT": an exact name, *.suffix or prefix.* */
static int
parse_sni(struct parser *P, const char *s, struct rawroute *rr)
{
	struct route *r = &rr->r;
	static const char how[] = "(use name, *.suffix or prefix.*, then "
	    "HOST:PORT)";
	size_t n = strcspn(s, " \t");
	const char *up = s + n + strspn(s + n, " \t");
	char *pat = r->pat;

	if (n >= sizeof(r->pat) || *up == '\0')
		return fail(P, P->line, P->key, "\"%s\" is not PATTERN "
		    "HOST:PORT %s", s, how);
	memcpy(r->text, s, n);
	r->text[n] = '\0';
	if (n > 2 && memcmp(s, "*.", 2) == 0) {
		r->kind = R_SUFFIX;
		memcpy(pat, s + 2, n - 2);
		pat[n - 2] = '\0';
	} else if (n > 2 && memcmp(s + n - 2, ".*", 2) == 0) {
		r->kind = R_PREFIX;
		memcpy(pat, s, n - 2);
		pat[n - 2] = '\0';
		if (strchr(pat, '.') != NULL)
			return fail(P, P->line, P->key, "\"%s\": a prefix "
			    "pattern is one label, then .*", r->text);
	} else {
		r->kind = R_EXACT;
		memcpy(pat, s, n);
		pat[n] = '\0';
	}
	fold(pat);
	if (!valid_name(pat) || strchr(pat, '*') != NULL)
		return fail(P, P->line, P->key, "\"%s\" is not a pattern %s",
		    r->text, how);
	memcpy(rr->up, up, strlen(up) + 1);
	return parse_upstream(P, up, &r->t);
}

/* An allow or deny entry.  Bits set past the prefix are an error:
 * "10.0.0.1/8" is likely a typo. */
static int
parse_cidr(struct parser *P, const char *s, struct cidr *c)
{
	switch (cidr_parse(s, c)) {
	case CIDR_OK:
		return 0;
	case CIDR_HOST_BITS:
		return fail(P, P->line, P->key, "\"%s\" has bits set past /%d "
		    "(the network is written with them zero)", s, c->bits);
	case CIDR_BAD:
		break;
	}
	return fail(P, P->line, P->key, "\"%s\" is not an address or CIDR "
	    "(e.g. 100.64.0.0/10, fd7a:115c:a1e0::/48)", s);
}

/* "NAME" or "UID" or "UID:GID"; a name is looked up when dropping. */
static int
parse_user(struct parser *P, const char *s, struct runas *u)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s), i;

	memset(u, 0, sizeof(*u));
	u->set = 1;
	u->gid = -1;
	if (n > 0 && strspn(s, "0123456789") == n) {
		u->uid = (long)number(s, n, 2147483646);
		if (colon != NULL)
			u->gid = (long)number(colon + 1, strlen(colon + 1),
			    2147483646);
		if (u->uid < 0 || (colon != NULL && u->gid < 0))
			return fail(P, P->line, P->key, "\"%s\" is not a "
			    "user name, UID or UID:GID", s);
		if (u->uid == 0)
			return fail(P, P->line, P->key, "\"%s\" is root; "
			    "leave user unset to keep running as root", s);
		return 0;
	}
	for (i = 0; s[i] != '\0'; i++)
		if (!isvarch((unsigned char)s[i], 0) && s[i] != '-' &&
		    s[i] != '.')
			break;
	if (s[i] != '\0' || i >= sizeof(u->name) || s[0] == '-')
		return fail(P, P->line, P->key, "\"%s\" is not a user "
		    "name, UID or UID:GID", s);
	memcpy(u->name, s, i + 1);
	return 0;
}

static int
parse_value(struct parser *P, const struct keydef *k, const char *s,
    struct val *v)
{
	union sa a;

	switch (k->type) {
	case K_DURATION:
		if (parse_duration(s, &v->num) == -1)
			return fail(P, P->line, P->key, "\"%s\" is not a "
			    "duration (e.g. 30m, 1800s, 500ms; at most 7 days)",
			    s);
		if (v->num == 0 && !k->zero_ok)
			return fail(P, P->line, P->key,
			    "\"%s\" must be more than 0", s);
		return 0;
	case K_PREFER:
		if (strcmp(s, "ipv4") == 0)
			v->num = PREFER_IPV4;
		else if (strcmp(s, "ipv6") == 0)
			v->num = PREFER_IPV6;
		else if (strcmp(s, "system") == 0)
			v->num = PREFER_SYSTEM;
		else
			return fail(P, P->line, P->key,
			    "\"%s\" is not one of ipv4, ipv6, system", s);
		return 0;
	case K_PROXY:
		if (strcmp(s, "v2") == 0)
			v->num = PROXY_V2;
		else if (strcmp(s, "v1") == 0)
			v->num = PROXY_V1;
		else if (strcmp(s, "off") == 0)
			v->num = PROXY_OFF;
		else
			return fail(P, P->line, P->key,
			    "\"%s\" is not one of v2, v1, off", s);
		return 0;
	case K_COUNT:
		v->num = number(s, strlen(s), MAX_CONNS_LIMIT);
		if (v->num < !k->zero_ok)
			return fail(P, P->line, P->key, "\"%s\" is not a "
			    "number from %d to %d", s, !k->zero_ok,
			    MAX_CONNS_LIMIT);
		return 0;
	case K_USER:
		return parse_user(P, s, &v->user);
	case K_LISTEN:
		return parse_listen(P, s, v);
	case K_UPSTREAM:
		return parse_upstream(P, s, &v->t);
	case K_SNI:
	case K_CIDRS:
		return -1;	/* a list: parse_line() handles it */
	case K_HOST:
		if (strlen(s) >= sizeof(v->host))
			return fail(P, P->line, P->key, "\"%s\" is too long", s);
		if (s[0] == '[' && s[strlen(s) - 1] == ']') {
			memcpy(v->host, s + 1, strlen(s) - 2);
			v->host[strlen(s) - 2] = '\0';
		} else {
			memcpy(v->host, s, strlen(s) + 1);
		}
		if (sa_literal(v->host, "0", &a) == -1 && !valid_name(v->host))
			return fail(P, P->line, P->key, "\"%s\" is not a host "
			    "name or IP address", s);
		return 0;
	}
	return -1;
}

static int
valid_group_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!isvarch((unsigned char)s[i], 0) && s[i] != '-')
			return 0;
	return 1;
}

static struct group *
group(struct parser *P, const char *name, size_t n)
{
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
	memcpy(P->g[P->ng].name, name, n);
	P->g[P->ng].name[n] = '\0';
	P->g[P->ng].line = P->line;
	return &P->g[P->ng++];
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
			    o ? ", " : "", keys[i].key);
}

/* "status" is not a listener: status.listen places the status endpoint. */
static int
parse_status(struct parser *P, const char *k, const char *v)
{
	char value[VAL_MAX_LEN];

	if (strcmp(k, "listen") != 0)
		return fail(P, P->line, P->key, "unknown key (\"status\" is "
		    "reserved for the status endpoint; its one key is "
		    "status.listen)");
	if (P->status.line != 0)
		return fail(P, P->line, P->key, "already set on line %d",
		    P->status.line);
	if (expand(P, v, value, sizeof(value)) == -1)
		return -1;
	if (value[0] == '\0')
		return fail(P, P->line, P->key, "empty value");
	if (parse_listen(P, value, &P->status) == -1)
		return -1;
	P->status.line = P->line;
	memcpy(P->status.text, value, strlen(value) + 1);
	return 0;
}

static int
parse_line(struct parser *P, char *line)
{
	char *eq, *k, *v, *dot, *p, value[VAL_MAX_LEN], known[256];
	const struct keydef *kd = NULL;
	struct group *g = &P->global;
	int i, scope = S_GLOBAL;
	size_t n, namelen = 0;

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
	for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (p = eq; p > k && (p[-1] == ' ' || p[-1] == '\t'); p--)
		;
	*p = '\0';
	n = strlen(k);
	if (n == 0)
		return fail(P, P->line, NULL, "\"= %s\": missing key", v);
	if (n >= sizeof(P->key))
		return fail(P, P->line, NULL, "key is too long");
	memcpy(P->key, k, n + 1);

	if ((dot = strchr(k, '.')) != NULL) {
		if (!valid_group_name(k, (size_t)(dot - k)))
			return fail(P, P->line, P->key, "bad listener name "
			    "(letters, digits, '_' and '-', at most %d)",
			    NAME_MAX_LEN - 1);
		scope = S_LISTENER;
		namelen = (size_t)(dot - k);
		k = dot + 1;
		if (namelen == 6 && memcmp(P->key, "status", 6) == 0)
			return parse_status(P, k, v);
	}
	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].key, k) == 0 && (keys[i].scope & scope))
			kd = &keys[i];
	if (kd == NULL) {
		key_list(scope, known, sizeof(known));
		return fail(P, P->line, P->key, "unknown %skey (known: %s)",
		    scope == S_LISTENER ? "listener " : "", known);
	}
	if (scope == S_LISTENER &&
	    (g = group(P, P->key, namelen)) == NULL)
		return -1;
	i = (int)(kd - keys);
	if (kd->type == K_CIDRS) {
		if (expand(P, v, value, sizeof(value)) == -1)
			return -1;
		if (value[0] == '\0')
			return fail(P, P->line, P->key, "empty value");
		for (p = strtok(value, " \t"); p; p = strtok(NULL, " \t")) {
			if (P->nrc == MAX_CIDRS)
				return fail(P, P->line, P->key, "more than %d "
				    "allow and deny entries", MAX_CIDRS);
			if (parse_cidr(P, p, &P->rc[P->nrc].c) == -1)
				return -1;
			P->rc[P->nrc].c.deny = i == K_DENY_ID;
			P->rc[P->nrc++].group = (int)(g - P->g);
		}
		return 0;
	}
	if (kd->type == K_SNI) {
		if (P->nrr == MAX_ROUTES)
			return fail(P, P->line, P->key, "more than %d sni "
			    "routes", MAX_ROUTES);
		if (expand(P, v, value, sizeof(value)) == -1 ||
		    parse_sni(P, value, &P->rr[P->nrr]) == -1)
			return -1;
		P->rr[P->nrr].group = (int)(g - P->g);
		P->rr[P->nrr++].line = P->line;
		g->nroutes++;
		return 0;
	}
	if (g->v[i].line != 0)
		return fail(P, P->line, P->key, "already set on line %d",
		    g->v[i].line);
	if (expand(P, v, value, sizeof(value)) == -1)
		return -1;
	if (value[0] == '\0')
		return fail(P, P->line, P->key, "empty value");
	if (parse_value(P, kd, value, &g->v[i]) == -1)
		return -1;
	g->v[i].line = P->line;
	memcpy(g->v[i].text, value, strlen(value) + 1);
	return 0;
}

/* Do the two listen addresses a and b take some of the same sockets? */
static int
overlaps(const struct val *a, const struct val *b)
{
	const union sa *x = &a->addr, *y = &b->addr;
	const unsigned char *xb, *yb;
	size_t n;

	if (strcmp(a->port, b->port) != 0 || strcmp(a->port, "0") == 0)
		return 0;
	if (a->flag || b->flag)
		return 1;
	if (x->sa.sa_family != y->sa.sa_family)
		return 0;
	xb = sa_bytes(x, &n);
	yb = sa_bytes(y, &n);
	return sa_is_any(x) || sa_is_any(y) || memcmp(xb, yb, n) == 0;
}

static int64_t
pick(const struct group *g, const struct group *global, int id, int64_t def)
{
	if (g->v[id].line != 0)
		return g->v[id].num;
	if (global->v[id].line != 0)
		return global->v[id].num;
	return def;
}

/* Complete a target: a bare :PORT takes upstream_host. */
static int
complete(struct parser *P, struct target *t, int line, const char *key,
    const char *text)
{
	const struct val *uh = &P->global.v[K_UPHOST_ID];

	if (t->host[0] != '\0')
		return 0;
	if (uh->line == 0)
		return fail(P, line, key, "\"%s\" names no host and "
		    "upstream_host is not set", text);
	memcpy(t->host, uh->host, sizeof(t->host));
	t->literal = sa_literal(t->host, t->port, &t->addr) == 0;
	return 0;
}

/* Fail if the literal target t is one of the listen addresses of out. */
static int
loops(struct parser *P, const struct conf *out, const struct target *t,
    int line, const char *key, const char *text)
{
	char a[SA_FMT_LEN];
	int i;

	if (line == 0 || !t->literal)
		return 0;
	for (i = 0; i < out->nl; i++)
		if (sa_reaches(&out->l[i].addr, out->l[i].dual,
		    &t->addr) == 1)
			return fail(P, line, key, "\"%s\" (%s) is where %s "
			    "listens (line %d): every connection would come "
			    "back into edge", text, sa_fmt(&t->addr, a,
			    sizeof(a)), out->l[i].name,
			    P->g[i].v[K_LISTEN_ID].line);
	return 0;
}

static int
finish(struct parser *P, struct conf *out)
{
	char key[NAME_MAX_LEN + 32];
	struct listener *l;
	struct rawroute *rr;
	struct group *g;
	int i, j;

	if (P->ng == 0)
		return fail(P, P->line, NULL, "no listener is defined "
		    "(e.g. smtp.listen = :25 and smtp.upstream = HOST:25)");
	out->max_conns = (int)pick(&P->global, &P->global, K_MAXCONNS_ID,
	    2048);
	out->drain_ms = pick(&P->global, &P->global, K_DRAIN_ID, 8000);
	if (P->global.v[K_USER_ID].line != 0)
		out->user = P->global.v[K_USER_ID].user;
	if (P->status.line != 0) {
		out->status = 1;
		out->status_addr = P->status.addr;
		out->status_dual = P->status.flag;
	}
	for (i = 0; i < P->ng; i++) {
		g = &P->g[i];
		l = &out->l[i];
		snprintf(key, sizeof(key), "%s.listen", g->name);
		if (g->v[K_LISTEN_ID].line == 0)
			return fail(P, g->line, key, "not set (a listener "
			    "needs listen and upstream)");
		for (j = 0; j < i; j++)
			if (overlaps(&g->v[K_LISTEN_ID], &P->g[j].v[K_LISTEN_ID]))
				return fail(P, g->v[K_LISTEN_ID].line, key,
				    "\"%s\" is already used by %s (line %d)",
				    g->v[K_LISTEN_ID].text, P->g[j].name,
				    P->g[j].v[K_LISTEN_ID].line);
		if (P->status.line != 0 &&
		    overlaps(&g->v[K_LISTEN_ID], &P->status))
			return fail(P, P->status.line, "status.listen",
			    "\"%s\" is already used by %s (line %d)",
			    P->status.text, g->name,
			    g->v[K_LISTEN_ID].line);
		snprintf(key, sizeof(key), "%s.upstream", g->name);
		if (g->v[K_UPSTREAM_ID].line == 0 && g->nroutes == 0)
			return fail(P, g->line, key, "not set (a listener "
			    "needs listen and upstream, or sni routes)");

		memcpy(l->name, g->name, sizeof(l->name));
		l->line = g->line;
		l->addr = g->v[K_LISTEN_ID].addr;
		l->dual = g->v[K_LISTEN_ID].flag;
		l->up = g->v[K_UPSTREAM_ID].t;
		if (g->v[K_UPSTREAM_ID].line != 0 && complete(P, &l->up,
		    g->v[K_UPSTREAM_ID].line, key, g->v[K_UPSTREAM_ID].text))
			return -1;
		l->proxy = (enum proxy_mode)pick(g, g, K_PROXY_ID, PROXY_OFF);
		l->prefer = (enum prefer)pick(g, &P->global, K_PREFER_ID,
		    PREFER_IPV4);
		l->connect_ms = pick(g, &P->global, K_CONNECT_ID, 5000);
		l->dns_ms = pick(g, &P->global, K_DNS_ID, 10000);
		l->idle_ms = pick(g, &P->global, K_IDLE_ID, 30 * 60000);
		l->sni_ms = pick(g, &P->global, K_SNITO_ID, 5000);
		l->max_per_ip = (int)pick(g, g, K_PERIP_ID, 0);

		/* Its allow entries, then its deny entries. */
		l->c0 = out->nc;
		for (j = 0; j < P->nrc; j++)
			if (P->rc[j].group == i && !P->rc[j].c.deny)
				out->c[out->nc++] = P->rc[j].c;
		l->nallow = out->nc - l->c0;
		for (j = 0; j < P->nrc; j++)
			if (P->rc[j].group == i && P->rc[j].c.deny)
				out->c[out->nc++] = P->rc[j].c;
		l->nc = out->nc - l->c0;

		/* This listener's routes, in file order, side by side. */
		snprintf(key, sizeof(key), "%s.sni", g->name);
		l->r0 = out->nr;
		for (j = 0; j < P->nrr; j++) {
			rr = &P->rr[j];
			if (rr->group != i)
				continue;
			if (complete(P, &rr->r.t, rr->line, key, rr->up))
				return -1;
			out->r[out->nr++] = rr->r;
		}
		l->nr = out->nr - l->r0;
	}
	out->nl = P->ng;

	/* An upstream that is one of edge's own listen addresses would
	 * connect every client to edge again, until max_conns is used up. */
	for (i = 0; i < P->ng; i++) {
		snprintf(key, sizeof(key), "%s.upstream", P->g[i].name);
		if (loops(P, out, &out->l[i].up, P->g[i].v[K_UPSTREAM_ID].line,
		    key, P->g[i].v[K_UPSTREAM_ID].text))
			return -1;
	}
	for (j = 0; j < P->nrr; j++) {
		rr = &P->rr[j];
		snprintf(key, sizeof(key), "%s.sni", P->g[rr->group].name);
		if (loops(P, out, &rr->r.t, rr->line, key, rr->up))
			return -1;
	}
	return 0;
}

const struct route *
conf_route(const struct conf *cf, const struct listener *l, const char *name)
{
	const struct route *r;
	size_t n = strlen(name), k;
	int i;

	for (i = 0; i < l->nr; i++) {
		r = &cf->r[l->r0 + i];
		k = strlen(r->pat);
		switch (r->kind) {
		case R_EXACT:
			if (strcmp(name, r->pat) == 0)
				return r;
			break;
		case R_SUFFIX:	/* "*.example.net": x.example.net, a.b.example.net */
			if (n > k + 1 && name[n - k - 1] == '.' &&
			    strcmp(name + n - k, r->pat) == 0)
				return r;
			break;
		case R_PREFIX:	/* "mta-sts.*": mta-sts.example.net */
			if (n > k + 1 && name[k] == '.' &&
			    memcmp(name, r->pat, k) == 0)
				return r;
			break;
		}
	}
	return NULL;
}

int
conf_allowed(const struct conf *cf, const struct listener *l,
    const union sa *a)
{
	int i;

	for (i = l->nallow; i < l->nc; i++)
		if (cidr_match(&cf->c[l->c0 + i], a))
			return 0;
	if (l->nallow == 0)
		return 1;
	for (i = 0; i < l->nallow; i++)
		if (cidr_match(&cf->c[l->c0 + i], a))
			return 1;
	return 0;
}

int
conf_parse(const char *text, size_t n, const char *fname, struct conf *out,
    char *err, size_t errlen)
{
	struct parser *P;
	char line[VAL_MAX_LEN * 2];
	const char *p = text, *end = text + n, *nl;
	size_t len;
	int rc = -1;

	if ((P = calloc(1, sizeof(*P))) == NULL ||
	    (P->g = calloc(MAX_LISTENERS, sizeof(*P->g))) == NULL ||
	    (P->rr = calloc(MAX_ROUTES, sizeof(*P->rr))) == NULL ||
	    (P->rc = calloc(MAX_CIDRS, sizeof(*P->rc))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", fname);
		goto out;
	}
	P->fname = fname;
	P->err = err;
	P->errlen = errlen;
	memset(out, 0, sizeof(*out));
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
	rc = finish(P, out);
out:
	if (P != NULL) {
		free(P->g);
		free(P->rr);
		free(P->rc);
	}
	free(P);
	return rc;
}

int
conf_load(const char *path, struct conf *out, char *err, size_t errlen)
{
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd, rc;

	if ((fd = open(path, O_RDONLY)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(CONF_MAX_SIZE)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	while (n < CONF_MAX_SIZE) {
		r = read(fd, buf + n, CONF_MAX_SIZE - n);
		if (r == 0)
			break;
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		n += (size_t)r;
	}
	if (n == CONF_MAX_SIZE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    CONF_MAX_SIZE - 1);
		goto fail;
	}
	close(fd);
	rc = conf_parse(buf, n, path, out, err, errlen);
	free(buf);
	return rc;
fail:
	close(fd);
	free(buf);
	return -1;
}

struct conf *
conf_new(const char *path, char *err, size_t errlen)
{
	struct conf *cf;

	if ((cf = malloc(sizeof(*cf))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (conf_load(path, cf, err, errlen) == -1) {
		free(cf);
		return NULL;
	}
	cf->refs = 1;
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
	if (cf != NULL && --cf->refs == 0)
		free(cf);
}
