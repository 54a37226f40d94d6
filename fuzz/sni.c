/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for sni_parse().  Built with clang -fsanitize=fuzzer it is a
 * libFuzzer target; linked with replay.c it replays a corpus in `make test`.
 * Besides memory safety it checks the contract: a found name is valid, an
 * ALPN list read is well formed (non-empty names inside it, none twice),
 * and every prefix of an input that parses was "need more" at worst.
 */
#include <stdlib.h>
#include <string.h>

#include "../edge.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct hello h, hp;
	const char *name = h.name;
	enum sni_res r, rp;
	size_t i, j, len;

	r = sni_parse(data, size, &h);
	if (r == SNI_FOUND) {
		len = strlen(name);
		if (len == 0 || len > 255 || name[len - 1] == '.')
			abort();
		for (i = 0; i < len; i++)
			if (strchr("abcdefghijklmnopqrstuvwxyz0123456789-_.",
			    name[i]) == NULL)
				abort();
	}
	if (r == SNI_FOUND || r == SNI_NONE) {
		if (h.alpn_len > sizeof(h.alpn) || (h.ech != 0 && h.ech != 1))
			abort();
		for (i = 0; i < h.alpn_len; i += 1 + h.alpn[i]) {
			if (h.alpn[i] == 0 || i + 1 + h.alpn[i] > h.alpn_len)
				abort();
			for (j = i + 1 + h.alpn[i]; j < h.alpn_len;
			    j += 1 + h.alpn[j])
				if (h.alpn[j] == h.alpn[i] && memcmp(h.alpn +
				    j + 1, h.alpn + i + 1, h.alpn[i]) == 0)
					abort();
		}
	}
	/* A prefix may never decide differently from the whole, except by
	 * asking for more.  Checking one prefix keeps the target fast. */
	if (size > 0) {
		rp = sni_parse(data, size / 2, &hp);
		if (rp != SNI_MORE && rp != r)
			abort();
	}
	return 0;
}
