/* SPDX-License-Identifier: ISC */
/*
 * The pipes of the zero-copy relay (Linux splice(2)): a bounded pool of
 * pipe pairs, sized once at start from the descriptors left over after
 * two per connection.  A connection takes a pipe for one direction only
 * while bytes are in flight in it and gives it back empty, so an idle
 * connection holds none.  A pipe given back with bytes still in it (its
 * connection closed mid-stream) is closed instead: its contents must not
 * reach the next connection.  Pipes are made on demand up to the cap and
 * kept; with the pool exhausted (or pipe() failing) the caller relays
 * through its buffers, as everywhere without splice.
 */
#if defined(__linux__) && !defined(NO_SPLICE)
#define _GNU_SOURCE	/* splice(), pipe2(), F_SETPIPE_SZ */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "edge.h"

#ifdef EDGE_SPLICE

static int (*idle)[2];		/* pipes made and empty */
static int nidle;
static int made, cap;		/* open now; at most */
static uint64_t spliced;	/* bytes moved through pipes */

int
pipes_init(int n)
{
	cap = n > PIPES_MAX ? PIPES_MAX : n < 0 ? 0 : n;
	if (cap == 0)
		return 0;
	idle = calloc((size_t)cap, sizeof(*idle));
	return idle != NULL ? cap : -1;
}

int
pipes_get(int p[2])
{
	if (nidle > 0) {
		nidle--;
		p[0] = idle[nidle][0];
		p[1] = idle[nidle][1];
		return 0;
	}
	if (made >= cap || pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	/* Room for a big buffer's worth in flight (the default is 64 KB);
	 * the kernel refuses more than pipe-max-size, and then 64 KB it is. */
	fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
	made++;
	return 0;
}

void
pipes_put(int p[2], int empty)
{
	if (p[0] == -1)
		return;
	if (empty && nidle < cap) {
		idle[nidle][0] = p[0];
		idle[nidle][1] = p[1];
		nidle++;
	} else {
		close(p[0]);
		close(p[1]);
		made--;
	}
	p[0] = p[1] = -1;
}

ssize_t
pipes_splice(int in, int out, size_t n)
{
	ssize_t r;

	do
		r = splice(in, NULL, out, NULL, n, SPLICE_F_MOVE |
		    SPLICE_F_NONBLOCK);
	while (r == -1 && errno == EINTR);
	return r;
}

void
pipes_moved(uint64_t n)
{
	spliced += n;
}

void
pipes_usage(int *busy, int *n, uint64_t *bytes)
{
	*busy = made - nidle;
	*n = cap;
	*bytes = spliced;
}

#else	/* no splice(2): the pool is always empty */

int
pipes_init(int n)
{
	(void)n;
	return 0;	/* no pipes */
}

int
pipes_get(int p[2])
{
	(void)p;
	errno = ENOSYS;
	return -1;
}

void
pipes_put(int p[2], int empty)
{
	(void)empty;
	p[0] = p[1] = -1;
}

ssize_t
pipes_splice(int in, int out, size_t n)
{
	(void)in;
	(void)out;
	(void)n;
	errno = ENOSYS;
	return -1;
}

void
pipes_moved(uint64_t n)
{
	(void)n;
}

void
pipes_usage(int *busy, int *n, uint64_t *bytes)
{
	*busy = *n = 0;
	*bytes = 0;
}

#endif
