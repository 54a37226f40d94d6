/* SPDX-License-Identifier: ISC */
/*
 * Sets of networks read from list files (deny_file, allow_file): one
 * address or CIDR a line, ';' or '#' starting a comment, blank lines
 * ignored, so that Spamhaus DROP/EDROP files load as they are.  Each
 * network becomes a range [lo, hi]; once a set is complete the ranges are
 * sorted and merged, and a lookup is a binary search: O(log n) for any
 * size.  Pure: the caller reads the files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"

struct r4 {
	uint32_t lo, hi;
};

struct r6 {
	unsigned char lo[16], hi[16];
};

struct nets {
	struct r4 *v4;
	struct r6 *v6;
	size_t n4, n6, cap4, cap6;
};

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Append c's range; -1 on ENOMEM. */
static int
add(struct nets *s, const struct cidr *c)
{
	void *p;
	int i;

	if (c->fam == AF_INET) {
		if (s->n4 == s->cap4) {
			s->cap4 = s->cap4 ? 2 * s->cap4 : 64;
			if ((p = realloc(s->v4, s->cap4 * sizeof(*s->v4))) ==
			    NULL)
				return -1;
			s->v4 = p;
		}
		s->v4[s->n4].lo = get32(c->a);
		s->v4[s->n4].hi = get32(c->a) | (c->bits == 0 ? 0xffffffffu :
		    (uint32_t)((1ull << (32 - c->bits)) - 1));
		s->n4++;
		return 0;
	}
	if (s->n6 == s->cap6) {
		s->cap6 = s->cap6 ? 2 * s->cap6 : 64;
		if ((p = realloc(s->v6, s->cap6 * sizeof(*s->v6))) == NULL)
			return -1;
		s->v6 = p;
	}
	memcpy(s->v6[s->n6].lo, c->a, 16);
	memcpy(s->v6[s->n6].hi, c->a, 16);
	for (i = c->bits; i < 128; i++)
		s->v6[s->n6].hi[i / 8] |= (unsigned char)(0x80 >> (i % 8));
	s->n6++;
	return 0;
}

int
nets_add(struct nets **sp, const char *text, size_t n, const char *fname,
    char *err, size_t errlen)
{
	struct nets *s = *sp;
	char line[256], why[512];
	const char *p = text, *end = text + n, *nl;
	size_t len, a, b;
	struct cidr c;
	int lineno = 0;

	if (s == NULL && (s = *sp = calloc(1, sizeof(*s))) == NULL)
		goto nomem;
	for (; p < end; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		/* The text before a comment, without blanks around it. */
		for (len = 0; p + len < nl && p[len] != ';' && p[len] != '#';
		    len++)
			;
		for (a = 0; a < len && (p[a] == ' ' || p[a] == '\t'); a++)
			;
		for (b = len; b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' ||
		    p[b - 1] == '\r'); b--)
			;
		if (a == b)
			continue;
		if (b - a >= sizeof(line)) {
			snprintf(err, errlen, "%s:%d: a line longer than %d "
			    "bytes", fname, lineno, (int)sizeof(line) - 1);
			return -1;
		}
		memcpy(line, p + a, b - a);
		line[b - a] = '\0';
		if (val_cidr(line, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%d: %s", fname, lineno, why);
			return -1;
		}
		if (add(s, &c) == -1)
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", fname);
	return -1;
}

static int
cmp4(const void *x, const void *y)
{
	const struct r4 *a = x, *b = y;

	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static int
cmp6(const void *x, const void *y)
{
	return memcmp(((const struct r6 *)x)->lo, ((const struct r6 *)y)->lo,
	    16);
}

/* Is y's start at most x + 1 (128-bit, big-endian)? */
static int
touches6(const unsigned char *x, const unsigned char *y)
{
	unsigned char n[16];
	int i, carry = 1;

	memcpy(n, x, 16);
	for (i = 15; i >= 0 && carry; i--)
		carry = ++n[i] == 0;
	return carry || memcmp(y, n, 16) <= 0;
}

void
nets_done(struct nets *s)
{
	size_t i, k;
	void *p;

	if (s == NULL)
		return;
	/* qsort() of no entries: v4 or v6 may be NULL, which it must not
	 * be given. */
	if (s->n4 > 0)
		qsort(s->v4, s->n4, sizeof(*s->v4), cmp4);
	for (i = 1, k = 0; i < s->n4; i++) {
		if (s->v4[k].hi == 0xffffffffu || s->v4[i].lo <=
		    s->v4[k].hi + 1) {
			if (s->v4[i].hi > s->v4[k].hi)
				s->v4[k].hi = s->v4[i].hi;
		} else {
			s->v4[++k] = s->v4[i];
		}
	}
	s->n4 = s->n4 ? k + 1 : 0;
	if (s->n6 > 0)
		qsort(s->v6, s->n6, sizeof(*s->v6), cmp6);
	for (i = 1, k = 0; i < s->n6; i++) {
		if (touches6(s->v6[k].hi, s->v6[i].lo)) {
			if (memcmp(s->v6[i].hi, s->v6[k].hi, 16) > 0)
				memcpy(s->v6[k].hi, s->v6[i].hi, 16);
		} else {
			s->v6[++k] = s->v6[i];
		}
	}
	s->n6 = s->n6 ? k + 1 : 0;
	/* Give back what growing and merging left over. */
	if (s->n4 > 0 && (p = realloc(s->v4, s->n4 * sizeof(*s->v4))) != NULL) {
		s->v4 = p;
		s->cap4 = s->n4;
	}
	if (s->n6 > 0 && (p = realloc(s->v6, s->n6 * sizeof(*s->v6))) != NULL) {
		s->v6 = p;
		s->cap6 = s->n6;
	}
}

int
nets_match(const struct nets *s, const union sa *a)
{
	size_t lo = 0, hi, mid, n;
	const unsigned char *b;
	uint32_t v;

	if (s == NULL)
		return 0;
	b = sa_bytes(a, &n);
	if (a->sa.sa_family == AF_INET) {
		/* The last range starting at or before v. */
		v = get32(b);
		for (hi = s->n4; lo < hi; ) {
			mid = lo + (hi - lo) / 2;
			if (s->v4[mid].lo <= v)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo > 0 && v <= s->v4[lo - 1].hi;
	}
	for (hi = s->n6; lo < hi; ) {
		mid = lo + (hi - lo) / 2;
		if (memcmp(s->v6[mid].lo, b, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && memcmp(b, s->v6[lo - 1].hi, 16) <= 0;
}

size_t
nets_count(const struct nets *s)
{
	return s == NULL ? 0 : s->n4 + s->n6;
}

int
nets_equal(const struct nets *a, const struct nets *b)
{
	if (nets_count(a) == 0 || nets_count(b) == 0)
		return nets_count(a) == nets_count(b);
	return a->n4 == b->n4 && a->n6 == b->n6 && (a->n4 == 0 ||
	    memcmp(a->v4, b->v4, a->n4 * sizeof(*a->v4)) == 0) &&
	    (a->n6 == 0 || memcmp(a->v6, b->v6, a->n6 * sizeof(*a->v6)) == 0);
}

void
nets_free(struct nets *s)
{
	if (s == NULL)
		return;
	free(s->v4);
	free(s->v6);
	free(s);
}
