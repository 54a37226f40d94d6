/* SPDX-License-Identifier: ISC */
/*
 * Connect-rate limits per client (max_rate_per_ip): a token bucket per
 * (counters slot, client address or IPv6 network), holding at most N
 * tokens and refilled at N per period, so that a client may open N
 * connections at once and then N per period.  The buckets live in a table
 * sized once at start; a key hashes to a set of RATE_WAYS slots and, when
 * the set is full, the bucket seen longest ago is evicted (counted), so a
 * flood from more clients than the table holds never grows it and never
 * allocates.  The hash is keyed by a per-process seed.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"

#define RATE_WAYS	4
#define RATE_MIN	1024		/* buckets, at least */

struct bucket {
	int64_t seen;			/* 0: empty */
	int64_t milli;			/* tokens, in thousandths */
	uint16_t sid;
	unsigned char fam;
	unsigned char a[16];
};

static struct bucket *T;
static uint32_t nsets, seed;
static uint64_t evicted;

int
rate_init(int maxc)
{
	struct timespec ts;
	size_t n;

	for (n = RATE_MIN; n < 4 * (size_t)maxc; n *= 2)
		;
	nsets = (uint32_t)(n / RATE_WAYS);
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = (uint32_t)ts.tv_nsec * 2246822519u ^ (uint32_t)getpid();
	T = calloc(n, sizeof(*T));
	return T == NULL ? -1 : 0;
}

int
rate_take(int sid, const union sa *a, int n, int64_t per_ms, int64_t now)
{
	size_t len;
	const unsigned char *b = sa_bytes(a, &len);
	struct bucket *set, *e = NULL, *old;
	int64_t full = (int64_t)n * 1000;
	int i;

	set = T + (sa_hash(b, len, seed ^ (uint32_t)sid * 0x85ebca6bu) %
	    nsets) * RATE_WAYS;
	old = set;
	for (i = 0; i < RATE_WAYS && e == NULL; i++) {
		if (set[i].seen != 0 && set[i].sid == sid &&
		    set[i].fam == a->sa.sa_family && memcmp(set[i].a, b,
		    len) == 0)
			e = &set[i];
		else if (set[i].seen < old->seen)
			old = &set[i];
	}
	if (e == NULL) {
		/* A new client: the empty slot, or the one seen longest ago. */
		e = old;
		if (e->seen != 0)
			evicted++;
		memset(e, 0, sizeof(*e));
		e->sid = (uint16_t)sid;
		e->fam = (unsigned char)a->sa.sa_family;
		memcpy(e->a, b, len);
		e->milli = full;
	} else {
		/* Refill for the time since it was last seen. */
		if (now - e->seen >= per_ms)
			e->milli = full;
		else if ((e->milli += (now - e->seen) * full / per_ms) > full)
			e->milli = full;
	}
	e->seen = now > 0 ? now : 1;
	if (e->milli < 1000)
		return 0;
	e->milli -= 1000;
	return 1;
}

uint64_t
rate_evictions(void)
{
	return evicted;
}
