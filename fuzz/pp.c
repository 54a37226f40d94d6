/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for pp_decode().  Built with clang -fsanitize=fuzzer it is a
 * libFuzzer target; linked with replay.c it replays a corpus in `make
 * test`.  Besides memory safety (the input is an exact-size copy, so a
 * read past n is seen), it checks the contract: a header is never longer
 * than the bytes or the caps; every prefix of a decided input asks for
 * more or decides the same; a header with addresses encodes back (v1 or
 * v2, by the first byte) to a header that decodes to the same addresses.
 */
#include <stdlib.h>
#include <string.h>

#include "../edge.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	unsigned char *p, h[PP_MAX_LEN];
	union sa src, dst, s2, d2;
	size_t len, len2, n;
	enum pp_res r, rp;
	int versions;

	if (size == 0)
		return 0;
	/* The first byte picks the versions accepted, the rest is input. */
	versions = 1 + data[0] % 3;
	n = size - 1;
	if ((p = malloc(n ? n : 1)) == NULL)
		return 0;
	memcpy(p, data + 1, n);
	r = pp_decode(p, n, versions, &src, &dst, &len);
	if (r == PP_DONE) {
		if (len == 0 || len > n || len > (p[0] == 'P' ? PP1_MAX_LEN :
		    PP2_MAX_LEN))
			abort();
		if (src.sa.sa_family != dst.sa.sa_family)
			abort();
		s2 = src;
		d2 = dst;
		sa_unmap(&s2);
		sa_unmap(&d2);
		/* The encoders can write it back unless one end alone is
		 * v4-mapped (they would say "unspecified"). */
		if (src.sa.sa_family != AF_UNSPEC &&
		    s2.sa.sa_family == d2.sa.sa_family) {
			len2 = p[0] == 'P' ? pp1_encode(h, sizeof(h), &src,
			    &dst) : pp2_encode(h, sizeof(h), &src, &dst);
			if (pp_decode(h, len2, versions, &s2, &d2, &len) !=
			    PP_DONE || len != len2 || !sa_equal(&src, &s2) ||
			    !sa_equal(&dst, &d2))
				abort();
		}
	}
	if (r != PP_MORE && n > 0) {
		rp = pp_decode(p, n / 2, versions, &s2, &d2, &len2);
		if (rp != PP_MORE && rp != r)
			abort();
	}
	free(p);
	return 0;
}
