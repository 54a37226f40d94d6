/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for sni_parse().  Built with clang -fsanitize=fuzzer it is a
 * libFuzzer target; linked with replay.c it replays a corpus in `make test`.
 * Besides memory safety it checks the contract: a found name is valid,
 * and every prefix of an input that parses was "need more" at worst.
 */
#include <stdlib.h>
#include <string.h>

#include "../edge.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char name[256];
	enum sni_res r, rp;
	size_t i, len;

	r = sni_parse(data, size, name, sizeof(name));
	if (r == SNI_FOUND) {
		len = strlen(name);
		if (len == 0 || len > 255 || name[len - 1] == '.')
			abort();
		for (i = 0; i < len; i++)
			if (strchr("abcdefghijklmnopqrstuvwxyz0123456789-_.",
			    name[i]) == NULL)
				abort();
	}
	/* A prefix may never decide differently from the whole, except by
	 * asking for more.  Checking one prefix keeps the target fast. */
	if (size > 0) {
		rp = sni_parse(data, size / 2, name, sizeof(name));
		if (rp != SNI_MORE && rp != r)
			abort();
	}
	return 0;
}
