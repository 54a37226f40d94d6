/* SPDX-License-Identifier: ISC */
/*
 * PROXY protocol headers (HAProxy's doc/proxy-protocol.txt): written byte
 * by byte into a caller's buffer, and read from the bytes a trusted
 * balancer sent.  No I/O: the encoders take the client's address (from
 * accept, or a header read) and the address it connected to; the decoder
 * takes the bytes received so far.
 *
 * Version 2, as sent here (all integers big-endian):
 *
 *   0                   12   13   14        16
 *   +-------------------+----+----+---------+---------------------+
 *   | signature (12)    |0x21|fam | len (2) | addresses (len)     |
 *   +-------------------+----+----+---------+---------------------+
 *   signature = 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *   0x21      = version 2, command PROXY
 *   fam       = 0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 unspecified
 *
 *   TCP4 addresses (len 12): src addr (4) dst addr (4) src port dst port
 *   TCP6 addresses (len 36): src addr (16) dst addr (16) src port dst port
 *
 * Version 1 is one text line:
 *   "PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\r\n"
 *   "PROXY UNKNOWN\r\n" when the family cannot be expressed.
 *
 * Read, version 2 takes the whole header format: byte 12 is the version
 * (high nibble, 2) and the command (low: 0 LOCAL, 1 PROXY); byte 13 the
 * family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and the transport (low:
 * 0 UNSPEC, 1 STREAM, 2 DGRAM); len counts the addresses and the TLVs
 * after them, each TLV type (1) length (2) value (length), filling the
 * rest exactly.  Version 1 also takes "PROXY UNKNOWN ...\r\n".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"

static const unsigned char pp2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Bring both ends to one family: unmap v4-mapped, else map v4 into v6. */
static int
pp_family(union sa *src, union sa *dst)
{
	sa_unmap(src);
	sa_unmap(dst);
	if (src->sa.sa_family != AF_INET && src->sa.sa_family != AF_INET6)
		return AF_UNSPEC;
	if (dst->sa.sa_family != AF_INET && dst->sa.sa_family != AF_INET6)
		return AF_UNSPEC;
	if (src->sa.sa_family == dst->sa.sa_family)
		return src->sa.sa_family;
	/* One socket cannot have ends of two families; should it happen,
	 * say "unspecified" and let the receiver use its own view. */
	return AF_UNSPEC;
}

static unsigned char *
put16(unsigned char *p, unsigned v)
{
	p[0] = (v >> 8) & 0xff;
	p[1] = v & 0xff;
	return p + 2;
}

size_t
pp2_encode(unsigned char *out, size_t n, const union sa *src0,
    const union sa *dst0)
{
	union sa src = *src0, dst = *dst0;
	unsigned char *p = out;
	int fam;

	if (n < PP_MAX_LEN)
		return 0;
	fam = pp_family(&src, &dst);
	memcpy(p, pp2_sig, sizeof(pp2_sig));
	p += sizeof(pp2_sig);
	*p++ = 0x21;
	switch (fam) {
	case AF_INET:
		*p++ = 0x11;
		p = put16(p, 12);
		memcpy(p, &src.in.sin_addr, 4);
		memcpy(p + 4, &dst.in.sin_addr, 4);
		p += 8;
		p = put16(p, ntohs(src.in.sin_port));
		p = put16(p, ntohs(dst.in.sin_port));
		break;
	case AF_INET6:
		*p++ = 0x21;
		p = put16(p, 36);
		memcpy(p, &src.in6.sin6_addr, 16);
		memcpy(p + 16, &dst.in6.sin6_addr, 16);
		p += 32;
		p = put16(p, ntohs(src.in6.sin6_port));
		p = put16(p, ntohs(dst.in6.sin6_port));
		break;
	default:
		/* The receiver uses the connection's own addresses. */
		*p++ = 0x00;
		p = put16(p, 0);
		break;
	}
	return (size_t)(p - out);
}

size_t
pp1_encode(unsigned char *out, size_t n, const union sa *src0,
    const union sa *dst0)
{
	union sa src = *src0, dst = *dst0;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	unsigned sp, dp;
	int fam, len;

	if (n < PP_MAX_LEN)
		return 0;
	fam = pp_family(&src, &dst);
	if (fam == AF_INET) {
		inet_ntop(AF_INET, &src.in.sin_addr, a, sizeof(a));
		inet_ntop(AF_INET, &dst.in.sin_addr, b, sizeof(b));
		sp = ntohs(src.in.sin_port);
		dp = ntohs(dst.in.sin_port);
	} else if (fam == AF_INET6) {
		inet_ntop(AF_INET6, &src.in6.sin6_addr, a, sizeof(a));
		inet_ntop(AF_INET6, &dst.in6.sin6_addr, b, sizeof(b));
		sp = ntohs(src.in6.sin6_port);
		dp = ntohs(dst.in6.sin6_port);
	} else {
		memcpy(out, "PROXY UNKNOWN\r\n", 15);
		return 15;
	}
	len = snprintf((char *)out, n, "PROXY TCP%c %s %s %u %u\r\n",
	    fam == AF_INET ? '4' : '6', a, b, sp, dp);
	return len > 0 && (size_t)len < n ? (size_t)len : 0;
}

static const char pp1_sig[6] = "PROXY ";

/* v4-mapped addresses read come out IPv4, but only as a pair: the two
 * ends of one connection have one family. */
static enum pp_res
unmap_pair(union sa *src, union sa *dst)
{
	union sa s = *src, d = *dst;

	sa_unmap(&s);
	sa_unmap(&d);
	if (s.sa.sa_family == d.sa.sa_family) {
		*src = s;
		*dst = d;
	}
	return PP_DONE;
}

/* The v1 line's fields after "PROXY ": TCP4|TCP6 src dst sport dport. */
static enum pp_res
pp1_fields(char *line, union sa *src, union sa *dst)
{
	char *f[6], *p = line;
	int i, fam, port;
	size_t k;
	union sa *a;

	for (i = 0; i < 6; i++) {
		f[i] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p++ = '\0';
	}
	if (strncmp(line, "UNKNOWN", 8) == 0)
		return PP_DONE;	/* "UNKNOWN", alone or before anything */
	if (i != 4 || p != NULL)
		return PP_BAD;
	if (strcmp(f[0], "TCP4") == 0)
		fam = AF_INET;
	else if (strcmp(f[0], "TCP6") == 0)
		fam = AF_INET6;
	else
		return PP_BAD;
	for (i = 1; i <= 2; i++) {
		a = i == 1 ? src : dst;
		memset(a, 0, sizeof(*a));
		a->sa.sa_family = (sa_family_t)fam;
		if (inet_pton(fam, f[i], fam == AF_INET ?
		    (void *)&a->in.sin_addr : (void *)&a->in6.sin6_addr) != 1)
			return PP_BAD;
	}
	for (i = 3; i <= 4; i++) {
		k = strlen(f[i]);
		if (k == 0 || k > 5 || strspn(f[i], "0123456789") != k ||
		    (port = atoi(f[i])) > 65535)
			return PP_BAD;
		a = i == 3 ? src : dst;
		if (fam == AF_INET)
			a->in.sin_port = htons((unsigned short)port);
		else
			a->in6.sin6_port = htons((unsigned short)port);
	}
	return unmap_pair(src, dst);
}

static enum pp_res
pp1_decode(const unsigned char *p, size_t n, union sa *src, union sa *dst,
    size_t *len)
{
	char line[PP1_MAX_LEN];
	size_t i;

	for (i = 0; i < n && i < PP1_MAX_LEN; i++) {
		if (i < sizeof(pp1_sig) && p[i] != (unsigned char)pp1_sig[i])
			return PP_BAD;
		if (p[i] == '\n')
			break;
		/* Printable text only: no NUL, nothing to confuse a log. */
		if (p[i] != '\r' && (p[i] < 0x20 || p[i] > 0x7e))
			return PP_BAD;
	}
	if (i == n)
		return n < PP1_MAX_LEN ? PP_MORE : PP_BAD;
	if (i == PP1_MAX_LEN || i < sizeof(pp1_sig) + 1 || p[i - 1] != '\r' ||
	    memchr(p, '\r', i - 1) != NULL)
		return PP_BAD;	/* too long, or not ending in one CRLF */
	memcpy(line, p + sizeof(pp1_sig), i - 1 - sizeof(pp1_sig));
	line[i - 1 - sizeof(pp1_sig)] = '\0';
	*len = i + 1;
	return pp1_fields(line, src, dst);
}

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static enum pp_res
pp2_decode(const unsigned char *p, size_t n, union sa *src, union sa *dst,
    size_t *len)
{
	size_t body, end, k, need;
	int fam;

	k = n < sizeof(pp2_sig) ? n : sizeof(pp2_sig);
	if (memcmp(p, pp2_sig, k) != 0)
		return PP_BAD;
	if (n >= 13 && ((p[12] >> 4) != 2 || (p[12] & 0x0f) > 1))
		return PP_BAD;	/* not version 2, or not LOCAL or PROXY */
	if (n < 16)
		return PP_MORE;
	body = get16(p + 14);
	/* A length past the cap is bad now, not after its bytes arrive. */
	if (16 + body > PP2_MAX_LEN)
		return PP_BAD;
	fam = p[13] >> 4;
	need = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
	if (body < need || fam > 3 || (p[13] & 0x0f) > 2)
		return PP_BAD;
	if (n < 16 + body)
		return PP_MORE;
	/* The TLVs after the addresses, each length checked. */
	end = 16 + body;
	for (k = 16 + need; k < end; k += 3 + get16(p + k + 1))
		if (end - k < 3 || end - k - 3 < get16(p + k + 1))
			return PP_BAD;
	*len = end;
	/* LOCAL (a health check), UNSPEC, UNIX or datagrams: the
	 * connection's own addresses stand. */
	if ((p[12] & 0x0f) != 1 || (p[13] & 0x0f) != 1 || (fam != 1 &&
	    fam != 2))
		return PP_DONE;
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	if (fam == 1) {
		src->in.sin_family = dst->in.sin_family = AF_INET;
		memcpy(&src->in.sin_addr, p + 16, 4);
		memcpy(&dst->in.sin_addr, p + 20, 4);
		src->in.sin_port = htons((unsigned short)get16(p + 24));
		dst->in.sin_port = htons((unsigned short)get16(p + 26));
	} else {
		src->in6.sin6_family = dst->in6.sin6_family = AF_INET6;
		memcpy(&src->in6.sin6_addr, p + 16, 16);
		memcpy(&dst->in6.sin6_addr, p + 32, 16);
		src->in6.sin6_port = htons((unsigned short)get16(p + 48));
		dst->in6.sin6_port = htons((unsigned short)get16(p + 50));
	}
	return unmap_pair(src, dst);
}

enum pp_res
pp_decode(const unsigned char *p, size_t n, int versions, union sa *src,
    union sa *dst, size_t *len)
{
	src->sa.sa_family = dst->sa.sa_family = AF_UNSPEC;
	*len = 0;
	if (n == 0)
		return PP_MORE;
	/* The first byte tells the versions apart: '\r' or 'P'. */
	if (p[0] == pp2_sig[0] && (versions & PP_ACCEPT_V2))
		return pp2_decode(p, n, src, dst, len);
	if (p[0] == (unsigned char)pp1_sig[0] && (versions & PP_ACCEPT_V1))
		return pp1_decode(p, n, src, dst, len);
	return PP_BAD;
}
