/* SPDX-License-Identifier: ISC */
/*
 * Vectors for pp2_encode() and pp1_encode(): the exact bytes HAProxy's
 * doc/proxy-protocol.txt prescribes for TCP4 and TCP6, written out here by
 * hand, and the v4-mapped case a dual-stack listener produces.
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
	printf("%s: %d failed\n", __FILE__, fails);
	return fails != 0;
}
