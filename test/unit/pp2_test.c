/* SPDX-License-Identifier: ISC */
/*
 * Vectors for pp2_encode() and pp1_encode(): the exact bytes HAProxy's
 * doc/proxy-protocol.txt prescribes for TCP4 and TCP6, written out here by
 * hand, and the v4-mapped case a dual-stack listener produces.  Then
 * pp_decode(): round trips through the encoders, every prefix "more", and
 * each way a header can be malformed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../../edge.h"

static int fails;

static void
mk(union sa *a, const char *ip, unsigned port)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, ip, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(port);
	} else {
		inet_pton(AF_INET6, ip, &a->in6.sin6_addr);
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(port);
	}
}

static void
expect(const char *name, const unsigned char *got, size_t n,
    const unsigned char *want, size_t wn)
{
	size_t i;

	if (n == wn && memcmp(got, want, n) == 0) {
		printf("ok   %s\n", name);
		return;
	}
	fails++;
	printf("FAIL %s: got %zu bytes:", name, n);
	for (i = 0; i < n; i++)
		printf(" %02x", got[i]);
	printf("\n");
}

#define SIG 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, \
	0x54, 0x0a

static void
ok(int cond, const char *name)
{
	printf("%s %s\n", cond ? "ok  " : "FAIL", name);
	fails += !cond;
}

/* Decode p[0..n) with every prefix first: each must ask for more. */
static enum pp_res
decode(const unsigned char *p, size_t n, int versions, union sa *src,
    union sa *dst, size_t *len, int *prefixes_more)
{
	static unsigned char copy[4096];
	size_t i;

	*prefixes_more = 1;
	for (i = 0; i < n; i++) {
		/* An exact-size copy, so that a read past n would be seen by
		 * a sanitizer build. */
		memcpy(copy + sizeof(copy) - i, p, i);
		if (pp_decode(copy + sizeof(copy) - i, i, versions, src, dst,
		    len) != PP_MORE)
			*prefixes_more = 0;
	}
	memcpy(copy + sizeof(copy) - n, p, n);
	return pp_decode(copy + sizeof(copy) - n, n, versions, src, dst, len);
}

/* Encode src -> dst both ways, decode, and compare. */
static void
round_trip(const char *a, unsigned ap, const char *b, unsigned bp)
{
	unsigned char h[PP_MAX_LEN + 8];
	union sa s0, d0, s1, d1;
	size_t n, len;
	int more, v;
	char name[160];

	mk(&s0, a, ap);
	mk(&d0, b, bp);
	for (v = 1; v <= 2; v++) {
		n = v == 2 ? pp2_encode(h, sizeof(h), &s0, &d0) :
		    pp1_encode(h, sizeof(h), &s0, &d0);
		memcpy(h + n, "EHLO", 4);	/* early bytes stay */
		snprintf(name, sizeof(name), "decode v%d %s:%u -> %s:%u", v, a,
		    ap, b, bp);
		sa_unmap(&s0);
		sa_unmap(&d0);
		ok(decode(h, n, v == 2 ? PP_ACCEPT_V2 : PP_ACCEPT_V1 |
		    PP_ACCEPT_V2, &s1, &d1, &len, &more) == PP_DONE &&
		    len == n && more && sa_equal(&s0, &s1) &&
		    sa_equal(&d0, &d1) && pp_decode(h, n + 4, PP_ACCEPT_V1 |
		    PP_ACCEPT_V2, &s1, &d1, &len) == PP_DONE && len == n,
		    name);
	}
}

static void
decode_vectors(void)
{
	static const unsigned char local[] = { SIG, 0x20, 0x00, 0x00, 0x00 };
	static const unsigned char tlv[] = { SIG, 0x21, 0x11, 0x00, 0x12,
		10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00, 0x19,
		0x04, 0x00, 0x03, 'a', 'b', 'c' };
	static const unsigned char tlv_over[] = { SIG, 0x21, 0x11, 0x00, 0x12,
		10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00, 0x19,
		0x04, 0x00, 0x04, 'a', 'b', 'c' };
	static const unsigned char tlv_short[] = { SIG, 0x21, 0x11, 0x00, 0x0e,
		10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00, 0x19, 0x04, 0x00 };
	static const unsigned char huge[] = { SIG, 0x21, 0x11, 0xff, 0xff };
	static const unsigned char v1ver[] = { SIG, 0x11, 0x11, 0x00, 0x0c };
	static const unsigned char cmd2[] = { SIG, 0x22, 0x11, 0x00, 0x0c };
	static const unsigned char short4[] = { SIG, 0x21, 0x11, 0x00, 0x0b,
		10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00 };
	static const unsigned char badfam[] = { SIG, 0x21, 0x41, 0x00, 0x00 };
	static const unsigned char unix_[216 + 16] = { SIG, 0x21, 0x31, 0x00,
		0xd8 };
	static const unsigned char mapped[] = { SIG, 0x21, 0x21, 0x00, 0x24,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 9,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1,
		0x30, 0x39, 0x00, 0x19 };
	static const struct { const char *line; enum pp_res want; } v1[] = {
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 12345 25\r\n", PP_DONE },
		{ "PROXY UNKNOWN\r\n", PP_DONE },
		{ "PROXY UNKNOWN ffff::1 ::1 1 2\r\n", PP_DONE },
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 12345 25\n", PP_BAD },
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 12345 25\r\r\n", PP_BAD },
		{ "PROXY TCP4 192.0.2 192.0.2.1 12345 25\r\n", PP_BAD },
		{ "PROXY TCP4 ::1 ::1 12345 25\r\n", PP_BAD },
		{ "PROXY TCP6 192.0.2.9 ::1 12345 25\r\n", PP_BAD },
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 65536 25\r\n", PP_BAD },
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 12345\r\n", PP_BAD },
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 12345 25 6\r\n", PP_BAD },
		{ "PROXY TCP4 192.0.2.9  192.0.2.1 12345 25\r\n", PP_BAD },
		{ "PROXY UDP4 192.0.2.9 192.0.2.1 12345 25\r\n", PP_BAD },
		{ "PROXY \r\n", PP_BAD },
		{ "PROXYTCP4\r\n", PP_BAD },
		{ "proxy TCP4 192.0.2.9 192.0.2.1 12345 25\r\n", PP_BAD },
		{ "PROXY TCP4 192.0.2.9 192.0.2.1 1\x01 25\r\n", PP_BAD },
		{ "GET / HTTP/1.0\r\n", PP_BAD },
		{ "EHLO x\r\n", PP_BAD },
	};
	unsigned char line[200];
	union sa src, dst;
	size_t len, i;
	int more;
	char name[200];

	round_trip("192.0.2.1", 51234, "198.51.100.2", 25);
	round_trip("2001:db8::7", 51234, "2001:db8::1", 993);
	round_trip("::ffff:203.0.113.7", 1, "::ffff:192.0.2.1", 587);
	round_trip("0.0.0.0", 0, "255.255.255.255", 65535);

	ok(decode(local, sizeof(local), PP_ACCEPT_V2, &src, &dst, &len,
	    &more) == PP_DONE && len == 16 && more &&
	    src.sa.sa_family == AF_UNSPEC, "v2 LOCAL: the connection's own "
	    "addresses");
	ok(decode(tlv, sizeof(tlv), PP_ACCEPT_V2, &src, &dst, &len,
	    &more) == PP_DONE && len == sizeof(tlv) && more &&
	    src.sa.sa_family == AF_INET && ntohs(src.in.sin_port) == 12345,
	    "v2 TCP4 with a TLV after the addresses");
	ok(pp_decode(tlv_over, sizeof(tlv_over), PP_ACCEPT_V2, &src, &dst,
	    &len) == PP_BAD, "v2: a TLV longer than the header is bad");
	ok(pp_decode(tlv_short, sizeof(tlv_short), PP_ACCEPT_V2, &src, &dst,
	    &len) == PP_BAD, "v2: a cut TLV header is bad");
	ok(pp_decode(huge, sizeof(huge), PP_ACCEPT_V2, &src, &dst, &len) ==
	    PP_BAD, "v2: a length past the cap is bad at once");
	ok(pp_decode(v1ver, 13, PP_ACCEPT_V2, &src, &dst, &len) == PP_BAD,
	    "v2: version 1 in the version nibble is bad at byte 13");
	ok(pp_decode(cmd2, sizeof(cmd2), PP_ACCEPT_V2, &src, &dst, &len) ==
	    PP_BAD, "v2: a command other than LOCAL or PROXY is bad");
	ok(pp_decode(short4, sizeof(short4), PP_ACCEPT_V2, &src, &dst,
	    &len) == PP_BAD, "v2: TCP4 with fewer than 12 address bytes");
	ok(pp_decode(badfam, sizeof(badfam), PP_ACCEPT_V2, &src, &dst,
	    &len) == PP_BAD, "v2: an unknown family is bad");
	ok(pp_decode(unix_, sizeof(unix_), PP_ACCEPT_V2, &src, &dst,
	    &len) == PP_DONE && len == sizeof(unix_) &&
	    src.sa.sa_family == AF_UNSPEC, "v2: UNIX addresses are skipped");
	ok(pp_decode(mapped, sizeof(mapped), PP_ACCEPT_V2, &src, &dst,
	    &len) == PP_DONE && src.sa.sa_family == AF_INET &&
	    dst.sa.sa_family == AF_INET, "v2: v4-mapped TCP6 comes out IPv4");
	ok(pp_decode(local, sizeof(local), PP_ACCEPT_V1, &src, &dst, &len) ==
	    PP_BAD, "v2 where only v1 is accepted is bad");
	for (i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		len = strlen(v1[i].line);
		memcpy(line, v1[i].line, len);
		snprintf(name, sizeof(name), "v1 %.*s: %s", (int)len - 2,
		    v1[i].line, v1[i].want == PP_DONE ? "done" : "bad");
		ok(pp_decode(line, len, PP_ACCEPT_V1 | PP_ACCEPT_V2, &src,
		    &dst, &len) == v1[i].want, name);
	}
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY ", 6);
	ok(pp_decode(line, 106, PP_ACCEPT_V1, &src, &dst, &len) == PP_MORE &&
	    pp_decode(line, 107, PP_ACCEPT_V1, &src, &dst, &len) == PP_BAD,
	    "v1: 107 bytes without CRLF are bad, 106 ask for more");
	ok(pp_decode((const unsigned char *)"PROXY TCP4 1.2.3.4 5.6.7.8 1 2"
	    "\r\n", 32, PP_ACCEPT_V2, &src, &dst, &len) == PP_BAD,
	    "v1 where only v2 is accepted is bad");
}

int
main(void)
{
	static const unsigned char v4[] = { SIG, 0x21, 0x11, 0x00, 0x0c,
		192, 0, 2, 1, 198, 51, 100, 2, 0xc8, 0x22, 0x00, 0x19 };
	static const unsigned char v6[] = { SIG, 0x21, 0x21, 0x00, 0x24,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0xc8, 0x22, 0x03, 0xe1 };
	static const unsigned char unspec[] = { SIG, 0x21, 0x00, 0x00, 0x00 };
	unsigned char out[PP_MAX_LEN];
	union sa src, dst;
	size_t n;

	mk(&src, "192.0.2.1", 51234);
	mk(&dst, "198.51.100.2", 25);
	n = pp2_encode(out, sizeof(out), &src, &dst);
	expect("v2 tcp4 is 28 bytes as in the spec", out, n, v4, sizeof(v4));

	mk(&src, "::ffff:192.0.2.1", 51234);
	mk(&dst, "::ffff:198.51.100.2", 25);
	n = pp2_encode(out, sizeof(out), &src, &dst);
	expect("v2 v4-mapped client goes out as tcp4", out, n, v4, sizeof(v4));

	mk(&src, "2001:db8::7", 51234);
	mk(&dst, "::1", 993);
	n = pp2_encode(out, sizeof(out), &src, &dst);
	expect("v2 tcp6 is 52 bytes", out, n, v6, sizeof(v6));

	mk(&src, "2001:db8::7", 51234);
	mk(&dst, "198.51.100.2", 25);
	n = pp2_encode(out, sizeof(out), &src, &dst);
	expect("v2 mixed families say unspecified", out, n, unspec,
	    sizeof(unspec));

	n = pp2_encode(out, 20, &src, &dst);
	expect("v2 refuses a short buffer", out, n, out, 0);

	mk(&src, "::ffff:192.0.2.1", 51234);
	mk(&dst, "198.51.100.2", 25);
	n = pp1_encode(out, sizeof(out), &src, &dst);
	expect("v1 tcp4", out, n,
	    (const unsigned char *)"PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\r\n",
	    44);

	mk(&src, "2001:db8::7", 51234);
	mk(&dst, "::1", 993);
	n = pp1_encode(out, sizeof(out), &src, &dst);
	expect("v1 tcp6", out, n,
	    (const unsigned char *)"PROXY TCP6 2001:db8::7 ::1 51234 993\r\n",
	    38);

	mk(&src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	mk(&dst, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	n = pp1_encode(out, sizeof(out), &src, &dst);
	expect("v1 longest line is 104 bytes", out, n, (const unsigned char *)
	    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", 104);

	/* sa_fmt: what every log line shows; IPv4 is formatted by hand. */
	{
		static const struct { const char *ip; unsigned port;
		    const char *want; } f[] = {
			{ "203.0.113.7", 25, "203.0.113.7:25" },
			{ "0.0.0.0", 0, "0.0.0.0:0" },
			{ "255.255.255.255", 65535, "255.255.255.255:65535" },
			{ "10.0.100.9", 8443, "10.0.100.9:8443" },
			{ "2001:db8::1", 993, "[2001:db8::1]:993" },
			{ "::ffff:192.0.2.1", 587, "[::ffff:192.0.2.1]:587" },
		};
		char txt[SA_FMT_LEN], small[8];
		union sa a;
		size_t i;

		for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			mk(&a, f[i].ip, f[i].port);
			sa_fmt(&a, txt, sizeof(txt));
			if (strcmp(txt, f[i].want) != 0) {
				printf("FAIL sa_fmt %s: got %s\n", f[i].want, txt);
				fails++;
			} else {
				printf("ok   sa_fmt %s\n", txt);
			}
		}
		mk(&a, "203.0.113.7", 25);
		sa_fmt(&a, small, sizeof(small));
		if (strcmp(small, "203.0.1") != 0) {
			printf("FAIL sa_fmt truncates: got %s\n", small);
			fails++;
		}
	}
	decode_vectors();
	printf("%s: %d failed\n", __FILE__, fails);
	return fails != 0;
}
