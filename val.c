/* SPDX-License-Identifier: ISC */
/*
 * The typed values of the config file, as pure functions over text: a
 * duration, a count, an address to listen on, an upstream HOST:PORT, a
 * host, an SNI pattern, a user, an allow/deny entry, and ${VAR} expansion.
 * Each returns 0, or -1 with the problem in why (the part of a config
 * error after "file:line: key: "), so that conf.c only says where.
 * strtonum-like: every value is checked whole, trailing junk included.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"

#define DURATION_MAX_MS	(7LL * 24 * 3600 * 1000)
#define SIZE_MIN_BYTES	4096LL
#define SIZE_MAX_BYTES	(64LL * 1024 * 1024)

static int
bad(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
isvarch(int ch, int first)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    ch == '_' || (!first && ch >= '0' && ch <= '9');
}

int
val_expand(const char *in, char *out, size_t outsz, char *why, size_t n)
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
		for (end = name; isvarch((unsigned char)*end, end == name);
		    end++)
			;
		namelen = (size_t)(end - name);
		if (namelen == 0 || namelen >= sizeof(var))
			return bad(why, n, "bad variable name after \"${\" in "
			    "\"%s\"", in);
		memcpy(var, name, namelen);
		var[namelen] = '\0';
		def = NULL;
		if (end[0] == ':' && end[1] == '-') {
			def = end + 2;
			if ((end = strchr(def, '}')) == NULL)
				return bad(why, n, "unterminated \"${%s:-\"",
				    var);
		} else if (*end != '}') {
			return bad(why, n, "unterminated or malformed \"${%s\"",
			    var);
		}
		val = getenv(var);
		if (val != NULL && (*val != '\0' || def == NULL)) {
			vlen = strlen(val);
		} else if (def != NULL) {
			val = def;
			vlen = (size_t)(end - def);
		} else {
			return bad(why, n, "${%s} is not set (write "
			    "${%s:-default} to give a default)", var, var);
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
	return bad(why, n, "value is longer than %d bytes", (int)outsz - 1);
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

int
val_duration(const char *s, int zero_ok, int64_t *ms, char *why, size_t n)
{
	static const struct { const char *u; int64_t mul; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "", 1000 },
	};
	size_t d = strspn(s, "0123456789"), i;
	int64_t v;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + d, units[i].u) != 0)
			continue;
		v = number(s, d, DURATION_MAX_MS);
		if (v == -1 || v > DURATION_MAX_MS / units[i].mul)
			break;
		*ms = v * units[i].mul;
		if (*ms == 0 && !zero_ok)
			return bad(why, n, "\"%s\" must be more than 0", s);
		return 0;
	}
	return bad(why, n, "\"%s\" is not a duration (e.g. 30m, 1800s, 500ms; "
	    "at most 7 days)", s);
}

int
val_size(const char *s, int *bytes, char *why, size_t n)
{
	size_t d = strspn(s, "0123456789");
	int64_t v = number(s, d, SIZE_MAX_BYTES), mul;

	if (strcmp(s, "auto") == 0) {
		*bytes = 0;
		return 0;
	}
	mul = strcmp(s + d, "") == 0 ? 1 : strcmp(s + d, "k") == 0 ? 1024 :
	    strcmp(s + d, "m") == 0 ? 1024 * 1024 : 0;
	if (v < 0 || mul == 0 || v > SIZE_MAX_BYTES / mul ||
	    v * mul < SIZE_MIN_BYTES)
		return bad(why, n, "\"%s\" is not auto or a size from 4k to 64m "
		    "(e.g. 256k)", s);
	*bytes = (int)(v * mul);
	return 0;
}

int
val_count(const char *s, int min, int max, int *v, char *why, size_t n)
{
	int64_t x = number(s, strlen(s), max);

	if (x < min)
		return bad(why, n, "\"%s\" is not a number from %d to %d", s,
		    min, max);
	*v = (int)x;
	return 0;
}

static int
port(const char *s, int min, char out[6])
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

int
val_listener_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!isvarch((unsigned char)s[i], 0) && s[i] != '-')
			return 0;
	return 1;
}

int
val_listen(const char *s, union sa *addr, int *dual, char *why, size_t n)
{
	char host[HOST_MAX_LEN], pt[6];
	const char *p;

	if (sa_split(s, host, sizeof(host), &p) == -1)
		goto bad;
	if (port(p, 0, pt) == -1)
		return bad(why, n, "\"%s\" is not a port (0-65535)", p);
	*dual = host[0] == '\0' || strcmp(host, "*") == 0;
	if (*dual) {
		/* Bound as [::] with IPV6_V6ONLY off, or 0.0.0.0 without v6. */
		sa_literal("::", pt, addr);
		return 0;
	}
	if (sa_literal(host, pt, addr) == 0 && (s[0] == '[') ==
	    (addr->sa.sa_family == AF_INET6))
		return 0;
bad:
	return bad(why, n, "\"%s\" is not an address (use :PORT, IPv4:PORT or "
	    "[IPv6]:PORT)", s);
}

int
val_target(const char *s, struct target *t, char *host, size_t hostsz,
    char *why, size_t n)
{
	const char *p;

	memset(t, 0, sizeof(*t));
	if (sa_split(s, host, hostsz, &p) == -1)
		return bad(why, n, "\"%s\" is not HOST:PORT (or :PORT with "
		    "upstream_host)", s);
	if (port(p, 1, t->port) == -1)
		return bad(why, n, "\"%s\" is not a port (1-65535)", p);
	if (host[0] == '\0')
		return 0;
	if (sa_literal(host, t->port, &t->addr) == 0) {
		t->literal = 1;
		return 0;
	}
	if (s[0] == '[' || !valid_name(host))
		return bad(why, n, "\"%s\" is not a host name or IP address",
		    host);
	return 0;
}

int
val_host(const char *s, char *host, size_t hostsz, char *why, size_t n)
{
	size_t k = strlen(s);
	union sa a;

	if (k >= hostsz)
		return bad(why, n, "\"%s\" is too long", s);
	if (s[0] == '[' && s[k - 1] == ']') {
		memcpy(host, s + 1, k - 2);
		host[k - 2] = '\0';
	} else {
		memcpy(host, s, k + 1);
	}
	if (sa_literal(host, "0", &a) == -1 && !valid_name(host))
		return bad(why, n, "\"%s\" is not a host name or IP address",
		    s);
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

int
val_pattern(const char *s, enum route_kind *kind, char *pat, size_t patsz,
    char *why, size_t n)
{
	size_t k = strlen(s);

	if (k >= patsz)
		goto bad;
	if (k > 2 && memcmp(s, "*.", 2) == 0) {
		*kind = R_SUFFIX;
		memcpy(pat, s + 2, k - 2);
		pat[k - 2] = '\0';
	} else if (k > 2 && memcmp(s + k - 2, ".*", 2) == 0) {
		*kind = R_PREFIX;
		memcpy(pat, s, k - 2);
		pat[k - 2] = '\0';
		if (strchr(pat, '.') != NULL)
			return bad(why, n, "\"%s\": a prefix pattern is one "
			    "label, then .*", s);
	} else {
		*kind = R_EXACT;
		memcpy(pat, s, k + 1);
	}
	fold(pat);
	if (valid_name(pat) && strchr(pat, '*') == NULL)
		return 0;
bad:
	return bad(why, n, "\"%s\" is not a pattern (use name, *.suffix or "
	    "prefix.*, then HOST:PORT)", s);
}

int
val_user(const char *s, struct runas *u, char *why, size_t n)
{
	const char *colon = strchr(s, ':');
	size_t k = colon ? (size_t)(colon - s) : strlen(s), i;

	memset(u, 0, sizeof(*u));
	u->set = 1;
	u->gid = -1;
	if (k > 0 && strspn(s, "0123456789") == k) {
		u->uid = (long)number(s, k, 2147483646);
		if (colon != NULL)
			u->gid = (long)number(colon + 1, strlen(colon + 1),
			    2147483646);
		if (u->uid < 0 || (colon != NULL && u->gid < 0))
			goto bad;
		if (u->uid == 0)
			return bad(why, n, "\"%s\" is root; leave user unset "
			    "to keep running as root", s);
		return 0;
	}
	for (i = 0; s[i] != '\0'; i++)
		if (!isvarch((unsigned char)s[i], 0) && s[i] != '-' &&
		    s[i] != '.')
			break;
	if (s[i] == '\0' && i < sizeof(u->name) && s[0] != '-') {
		memcpy(u->name, s, i + 1);
		return 0;
	}
bad:
	return bad(why, n, "\"%s\" is not a user name, UID or UID:GID", s);
}

int
val_alpn(const char *s, char *out, size_t outsz, char *why, size_t n)
{
	const char *p, *q, *e;
	size_t k, o = 0;

	for (p = s; ; p = e + 1) {
		e = p + strcspn(p, ",");
		k = (size_t)(e - p);
		if (k == 0 || k > 255)
			return bad(why, n, "\"%s\": a protocol name is 1 to 255 "
			    "bytes (e.g. alpn=h2,http/1.1)", s);
		/* Listed once: a second would never be reached. */
		for (q = out; (size_t)(q - out) < o; q += 1 + (unsigned char)*q)
			if ((unsigned char)*q == k && memcmp(q + 1, p, k) == 0)
				return bad(why, n, "\"%s\": %.*s is listed "
				    "twice", s, (int)k, p);
		if (o + 1 + k + 1 > outsz)
			return bad(why, n, "\"%s\" is longer than %d bytes", s,
			    (int)outsz - 2);
		out[o++] = (char)k;
		memcpy(out + o, p, k);
		o += k;
		if (*e == '\0')
			break;
	}
	out[o] = '\0';
	return 0;
}

int
val_rate(const char *s, struct rate *r, char *why, size_t n)
{
	const char *slash = strchr(s, '/');
	size_t k = slash ? (size_t)(slash - s) : strlen(s);
	int64_t v = number(s, k, 1000000);

	r->n = 0;
	r->per_ms = 1000;
	if (v == 0 && slash == NULL)
		return 0;	/* off */
	if (v < 1 || slash == NULL || (strcmp(slash + 1, "s") != 0 &&
	    strcmp(slash + 1, "m") != 0))
		return bad(why, n, "\"%s\" is not a rate (N/s or N/m, e.g. "
		    "20/m; 0 for none)", s);
	r->n = v;
	r->per_ms = slash[1] == 's' ? 1000 : 60000;
	return 0;
}

int
val_line(const char *s, char *why, size_t n)
{
	size_t i, k = strlen(s);

	if (k > 510)
		return bad(why, n, "longer than 510 bytes (a reply line and its "
		    "CRLF fit in 512)");
	for (i = 0; i < k; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return bad(why, n, "\"%s\": printable ASCII only", s);
	return 0;
}

int
val_cidr(const char *s, struct cidr *c, char *why, size_t n)
{
	switch (cidr_parse(s, c)) {
	case CIDR_OK:
		return 0;
	case CIDR_HOST_BITS:
		/* "10.0.0.1/8" is likely a typo. */
		return bad(why, n, "\"%s\" has bits set past /%d (the network "
		    "is written with them zero)", s, c->bits);
	case CIDR_BAD:
		break;
	}
	return bad(why, n, "\"%s\" is not an address or CIDR (e.g. "
	    "100.64.0.0/10, fd7a:115c:a1e0::/48)", s);
}
