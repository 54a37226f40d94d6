/* SPDX-License-Identifier: ISC */
/*
 * PROXY protocol headers (HAProxy's doc/proxy-protocol.txt), written byte
 * by byte into a caller's buffer.  No I/O: the caller passes the client's
 * address (from accept) and the address it connected to (getsockname).
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
 */
#include <arpa/inet.h>
#include <stdio.h>
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
