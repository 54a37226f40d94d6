/* SPDX-License-Identifier: ISC */
/*
 * Socket addresses and networks, as pure functions: parse, format,
 * compare, hash, match against a CIDR, and decide whether a connection to
 * an address would land on a listening socket.  No I/O, no state; the
 * config parser, the PROXY encoders and the daemon all build on these.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"

socklen_t
sa_len(const union sa *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

const unsigned char *
sa_bytes(const union sa *a, size_t *n)
{
	if (a->sa.sa_family == AF_INET) {
		*n = 4;
		return (const unsigned char *)&a->in.sin_addr;
	}
	*n = 16;
	return (const unsigned char *)&a->in6.sin6_addr;
}

int
sa_port(const union sa *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port :
	    a->in6.sin6_port);
}

int
sa_equal(const union sa *a, const union sa *b)
{
	return a->sa.sa_family == b->sa.sa_family && memcmp(a, b,
	    sa_len(a)) == 0;
}

int
sa_is_any(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == htonl(INADDR_ANY);
	return memcmp(&a->in6.sin6_addr, &in6addr_any, 16) == 0;
}

int
sa_is_loopback(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return (ntohl(a->in.sin_addr.s_addr) >> 24) == 127;
	return memcmp(&a->in6.sin6_addr, &in6addr_loopback, 16) == 0;
}

void
sa_unmap(union sa *a)
{
	struct sockaddr_in in;

	if (a->sa.sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
		return;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = a->in6.sin6_port;
	memcpy(&in.sin_addr, &a->in6.sin6_addr.s6_addr[12], 4);
	memset(a, 0, sizeof(*a));
	a->in = in;
}

void
sa_prefix(union sa *a, int bits)
{
	unsigned char *b = (unsigned char *)&a->in6.sin6_addr;
	int i;

	if (a->sa.sa_family != AF_INET6)
		return;
	for (i = bits; i < 128; i++)
		b[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
}

uint32_t
sa_hash(const unsigned char *b, size_t n, uint32_t seed)
{
	uint32_t h = seed ^ 2166136261u;
	size_t i;

	/* FNV-1a, then a final mix so that low bits depend on every byte. */
	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h ^ (h >> 15);
}

int
sa_literal(const char *s, const char *port, union sa *a)
{
	unsigned p = (unsigned)atoi(port);

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(p);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(p);
		return 0;
	}
	return -1;
}

int
sa_split(const char *s, char *host, size_t hostsz, const char **port)
{
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		if ((colon = strchr(s, ']')) == NULL || colon[1] != ':')
			return -1;
		n = (size_t)(colon - s - 1);
		s++;
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		n = (size_t)(colon - s);
		if (memchr(s, ':', n) != NULL)	/* unbracketed IPv6 */
			return -1;
	}
	if (n >= hostsz)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

/* Write v in decimal at p; returns the end. */
static char *
put_u(char *p, unsigned v)
{
	char d[8];
	int i = 0;

	do
		d[i++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (i > 0)
		*p++ = d[--i];
	return p;
}

char *
sa_fmt(const union sa *a, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN];
	const unsigned char *b = (const unsigned char *)&a->in.sin_addr;
	char *p = ip;
	size_t k;
	int i;

	if (a->sa.sa_family == AF_INET) {
		/* By hand: each connection's log line formats two of these. */
		for (i = 0; i < 4; i++) {
			p = put_u(p, b[i]);
			*p++ = i < 3 ? '.' : ':';
		}
		p = put_u(p, ntohs(a->in.sin_port));
		k = (size_t)(p - ip) < n ? (size_t)(p - ip) : n - 1;
		memcpy(buf, ip, k);
		buf[k] = '\0';
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, n, "[%s]:%u", ip,
		    (unsigned)ntohs(a->in6.sin6_port));
	} else {
		snprintf(buf, n, "-");
	}
	return buf;
}

int
sa_reaches(const union sa *l, int dual, const union sa *to)
{
	union sa a = *to;
	int any;

	/* A connection to the unspecified address goes to loopback. */
	sa_unmap(&a);
	if (sa_is_any(&a) && a.sa.sa_family == AF_INET)
		a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (sa_is_any(&a))
		a.in6.sin6_addr = in6addr_loopback;
	if (sa_port(l) == 0 || sa_port(l) != sa_port(&a))
		return 0;
	any = sa_is_any(l);
	if (l->sa.sa_family == AF_INET) {
		if (a.sa.sa_family != AF_INET)
			return 0;
		if (l->in.sin_addr.s_addr == a.in.sin_addr.s_addr)
			return 1;
	} else if (a.sa.sa_family == AF_INET) {
		if (!any || !dual)
			return 0;
	} else if (memcmp(&l->in6.sin6_addr, &a.in6.sin6_addr, 16) == 0) {
		return 1;
	}
	if (!any)
		return 0;
	/* Loopback can only be this host; anything else may be. */
	return sa_is_loopback(&a) ? 1 : -1;
}

enum cidr_res
cidr_parse(const char *s, struct cidr *c)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s), k;
	long long bits;
	int i, max;

	memset(c, 0, sizeof(*c));
	if (n >= sizeof(addr))
		return CIDR_BAD;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, c->a) == 1)
		c->fam = AF_INET;
	else if (inet_pton(AF_INET6, addr, c->a) == 1)
		c->fam = AF_INET6;
	else
		return CIDR_BAD;
	max = c->fam == AF_INET ? 32 : 128;
	bits = max;
	if (slash != NULL) {
		k = strlen(slash + 1);
		if (k == 0 || k > 18 || strspn(slash + 1, "0123456789") != k)
			return CIDR_BAD;
		bits = strtoll(slash + 1, NULL, 10);
		if (bits > max)
			return CIDR_BAD;
	}
	c->bits = (unsigned char)bits;
	for (i = (int)bits; i < max; i++)
		if (c->a[i / 8] & (0x80 >> (i % 8)))
			return CIDR_HOST_BITS;
	return CIDR_OK;
}

int
cidr_match(const struct cidr *c, const union sa *a)
{
	size_t n;
	const unsigned char *b = sa_bytes(a, &n);
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->fam != a->sa.sa_family || memcmp(c->a, b, (size_t)full) != 0)
		return 0;
	return rest == 0 ||
	    ((b[full] ^ c->a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}
