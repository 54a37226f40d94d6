/* SPDX-License-Identifier: ISC */
/*
 * Concurrent connections per (listener counters slot, client address), for
 * max_conns_per_ip.  An open-addressing table with linear probing, sized
 * once at start for max_conns: it holds at most one entry per connection
 * and has at least twice as many slots, so there is always an empty one
 * and nothing is allocated per connection.  The hash is keyed by a
 * per-process seed, so that clients cannot aim at one chain.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"

struct ipent {
	uint32_t n;			/* 0: empty */
	uint16_t sid;
	unsigned char fam;
	unsigned char a[16];
};

static struct ipent *T;
static uint32_t mask, seed;

int
iptab_init(int maxc)
{
	struct timespec ts;
	size_t n;

	for (n = 16; n < 2 * (size_t)maxc; n *= 2)
		;
	mask = (uint32_t)n - 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^
	    (uint32_t)getpid() << 16;
	T = calloc(n, sizeof(*T));
	return T == NULL ? -1 : 0;
}

static uint32_t
hash(int sid, const unsigned char *b, size_t n)
{
	return sa_hash(b, n, seed ^ (uint32_t)sid * 0x9e3779b9u) & mask;
}

/* The entry for (sid, a), or the empty one where it would go. */
static struct ipent *
find(int sid, const union sa *a)
{
	size_t n;
	const unsigned char *b = sa_bytes(a, &n);
	uint32_t i = hash(sid, b, n);
	struct ipent *e;

	for (;; i = (i + 1) & mask) {
		e = &T[i];
		if (e->n == 0 || (e->sid == sid && e->fam ==
		    a->sa.sa_family && memcmp(e->a, b, n) == 0))
			return e;
	}
}

uint32_t
iptab_count(int sid, const union sa *a)
{
	return find(sid, a)->n;
}

void
iptab_add(int sid, const union sa *a)
{
	struct ipent *e = find(sid, a);
	const unsigned char *b;
	size_t n;

	if (e->n++ == 0) {
		b = sa_bytes(a, &n);
		e->sid = (uint16_t)sid;
		e->fam = (unsigned char)a->sa.sa_family;
		memset(e->a, 0, sizeof(e->a));
		memcpy(e->a, b, n);
	}
}

/* An entry that reaches 0 is deleted by shifting back the run after it,
 * so that lookups need no tombstones. */
void
iptab_del(int sid, const union sa *a)
{
	struct ipent *e = find(sid, a);
	uint32_t i, j, k;

	if (e->n == 0 || --e->n > 0)
		return;
	i = (uint32_t)(e - T);
	for (j = (i + 1) & mask; T[j].n != 0; j = (j + 1) & mask) {
		k = hash(T[j].sid, T[j].a, T[j].fam == AF_INET ? 4 : 16);
		/* Move j into the hole at i unless its home k is in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		T[i] = T[j];
		i = j;
	}
	T[i].n = 0;
}
