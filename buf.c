/* SPDX-License-Identifier: ISC */
/*
 * The relay buffers and their pool.  A side of a connection holds a buffer
 * only while it has bytes its peer has not taken, so an idle connection
 * holds none.  Big buffers (BUF_BIG bytes) move a bulk stream with few
 * system calls; they are capped by BUF_MEMORY, and past the cap a side
 * gets a small one (BUF_SMALL) instead of waiting.  A side holds at most
 * one buffer, so small ones need no cap: clients that stop reading can
 * hold every big buffer and still never make another connection wait.
 * BUF_SPARE free buffers of each size are kept for reuse.  The operations
 * on one buffer are inline in edge.h; the pool is the state here.
 */
#include <stdlib.h>

#include "edge.h"

#define BUF_MEMORY	(64 * 1024 * 1024)
#define BUF_SPARE	16

enum { BIG = 0, SMALL = 1 };

/* Bytes malloc'd for a buffer of each size, header included. */
static const size_t alloc_size[2] = {
	sizeof(struct buf) + BUF_HEADROOM + BUF_BIG,
	sizeof(struct buf) + BUF_HEADROOM + BUF_SMALL
};

static struct buf *spare[2];	/* free buffers, big and small */
static int nbuf[2];		/* buffers allocated */
static int nspare[2];		/* of which free */
static int bigmax;		/* the cap on nbuf[BIG] */

void
buf_init(int maxc)
{
	bigmax = (int)(BUF_MEMORY / alloc_size[BIG]);
	if (bigmax > 2 * maxc)
		bigmax = 2 * maxc;
}

struct buf *
buf_get(void)
{
	int k = spare[BIG] != NULL || nbuf[BIG] < bigmax ? BIG : SMALL;
	struct buf *b = spare[k];

	if (b != NULL) {
		spare[k] = b->next;
		nspare[k]--;
	} else {
		if ((b = malloc(alloc_size[k])) == NULL)
			return NULL;
		b->size = (uint32_t)(alloc_size[k] - sizeof(*b));
		nbuf[k]++;
	}
	b->off = BUF_HEADROOM;
	b->len = 0;
	return b;
}

void
buf_put(struct buf *b)
{
	int k;

	if (b == NULL)
		return;
	k = b->size + sizeof(*b) == alloc_size[BIG] ? BIG : SMALL;
	if (nspare[k] >= BUF_SPARE) {
		free(b);
		nbuf[k]--;
	} else {
		b->next = spare[k];
		spare[k] = b;
		nspare[k]++;
	}
}

void
buf_usage(int *big, int *small, uint64_t *bytes)
{
	*big = nbuf[BIG];
	*small = nbuf[SMALL];
	*bytes = (uint64_t)nbuf[BIG] * alloc_size[BIG] +
	    (uint64_t)nbuf[SMALL] * alloc_size[SMALL];
}
