/* SPDX-License-Identifier: ISC */
/*
 * The pollset, rebuilt every turn, and which connections it holds.  The
 * caller adds its own descriptors first (signals, resolver, listeners,
 * status clients), then poll_conns() adds the connections: with none busy,
 * all of them, and poll() may sleep as long as it likes.  Otherwise the hot
 * ones (those that moved a byte in the last COLD_MS, hold a buffer, or are
 * being set up) every turn, plus a slice of the cold ones, sized so that
 * each cold one is looked at once every SCAN_MS.  5,000 idle connections
 * then cost a busy one a few descriptors per turn instead of 10,000, no
 * turn pays for all of them at once, and an idle one that wakes is seen
 * within SCAN_MS.  Connections are known only by slot, through conn.c's
 * entry points.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "edge.h"

#define SCAN_MS		15
#define SLICE_MAX	32		/* cold connections per turn, at most */
#define COLD_MS		250

static struct pollfd *pfd;
static int *pmap;		/* pfd index -> slot * 2 + side, from conn0 */
static int n, conn0;		/* entries; where the connections start */
static int64_t next;		/* when poll() must return at the latest */

static int *hot, nhot;		/* the hot slots, dense */
static int *hotpos;		/* slot -> its index in hot[] + 1, or 0 */
static int64_t *active;		/* slot -> when it last did anything */
static int all;			/* this turn polls every connection */
static int *scan, nscan;	/* cold connections polled this turn */
static int slice0;		/* their pollset entries: [slice0, n), or -1 */
static int cursor;		/* where the next slice starts among the live */
static int64_t scan_t;		/* when the last slice was taken */
static double credit;		/* cold connections owed a look */

int
poll_init(int maxc, int nfixed)
{
	size_t np = (size_t)nfixed + 2 * (size_t)maxc;

	pfd = calloc(np, sizeof(*pfd));
	pmap = calloc(np, sizeof(int));
	hot = calloc((size_t)maxc, sizeof(int));
	hotpos = calloc((size_t)maxc, sizeof(int));
	active = calloc((size_t)maxc, sizeof(int64_t));
	scan = calloc((size_t)maxc, sizeof(int));
	return pfd && pmap && hot && hotpos && active && scan ? 0 : -1;
}

static void
hot_add(int slot)
{
	active[slot] = sys_now();
	if (hotpos[slot] != 0)
		return;
	hot[nhot++] = slot;
	hotpos[slot] = nhot;
}

static void
hot_del(int slot)
{
	int i = hotpos[slot] - 1, last;

	if (i < 0)
		return;
	last = hot[--nhot];
	hot[i] = last;
	hotpos[last] = i + 1;
	hotpos[slot] = 0;
}

void
poll_hot(const int *slots, int k)
{
	int i;

	for (i = 0; i < k; i++)
		hot_add(slots[i]);
}

void
poll_begin(void)
{
	n = 0;
	conn0 = -1;
	slice0 = -1;
	nscan = 0;
	next = INT64_MAX;
}

int
poll_add(int fd, short events)
{
	pfd[n].fd = fd;
	pfd[n].events = events;
	pfd[n].revents = 0;
	return n++;
}

struct pollfd *
poll_room(void)
{
	return pfd + n;
}

void
poll_used(int k)
{
	n += k;
}

void
poll_wake(int64_t t)
{
	if (t < next)
		next = t;
}

short
poll_revents(int i)
{
	return pfd[i].revents;
}

/* Add slot's descriptors to the pollset. */
static void
add_conn(int slot)
{
	int side, fd;
	short ev;

	poll_wake(conn_deadline(slot));
	for (side = CLI; side <= UPS; side++) {
		if ((ev = conn_interest(slot, side, &fd)) == 0)
			continue;
		pmap[n] = slot * 2 + side;
		poll_add(fd, ev);
	}
}

/*
 * The cold connections owed a look since the last slice, from where the
 * last slice ended: each one comes round once per SCAN_MS.  Those with a
 * deadline due are left to poll_expire() by scan[].
 */
static void
add_slice(void)
{
	int ncold = conn_count() - nhot, k, seen, slot;
	int64_t now = sys_now();

	slice0 = n;
	if (ncold == 0)
		return;
	credit += (double)ncold * (double)(now - scan_t) / SCAN_MS;
	scan_t = now;
	if (credit > ncold)
		credit = ncold;
	k = credit < SLICE_MAX ? (int)credit : SLICE_MAX;
	for (seen = 0; k > 0 && seen < conn_count(); seen++) {
		if (cursor >= conn_count())
			cursor = 0;
		slot = conn_live(cursor++);
		if (hotpos[slot] != 0)
			continue;
		scan[nscan++] = slot;
		add_conn(slot);
		k--;
		credit -= 1;
	}
	/*
	 * Small slices, one per turn: after a sleep, what is owed is worked
	 * off 32 connections at a time between looks at the hot ones (no
	 * sleeping while owed), instead of in one long scan a busy connection
	 * would wait behind.  Owed nothing: wake in time for the next slice
	 * even if the hot ones are silent.  The work per second is the same;
	 * only its grain changes (bench/RESULTS.md, workload 4).
	 */
	if (credit >= 1)
		poll_wake(now);
	else
		poll_wake(now + SCAN_MS / 4);
}

void
poll_conns(void)
{
	int64_t now = sys_now();
	int i, slot;

	conn0 = n;
	/* Slots closed since the last turn leave the hot list here; walk
	 * backwards, as a removal moves the last entry into i. */
	for (i = nhot - 1; i >= 0; i--)
		if (!conn_open(hot[i]))
			hot_del(hot[i]);
	all = nhot == 0;
	if (all) {
		for (i = 0; i < conn_count(); i++)
			add_conn(conn_live(i));
		scan_t = now;
		credit = 0;
		return;
	}
	for (i = nhot - 1; i >= 0; i--) {
		slot = hot[i];
		if (conn_quiet(slot) && now - active[slot] >= COLD_MS)
			hot_del(slot);
		else
			add_conn(slot);
	}
	add_slice();
}

int
poll_wait(void)
{
	int64_t now = sys_now();
	int tmo, k = 0;

	if (next == INT64_MAX)
		tmo = -1;
	else if (next <= now)
		tmo = 0;
	else
		tmo = next - now > 60000 ? 60000 : (int)(next - now);
	/*
	 * The cold slice first, without waiting: a poll() that may sleep
	 * queues a wakeup on every descriptor it is given, which costs more
	 * than looking.  Then the rest, waiting only if the slice had nothing.
	 */
	if (slice0 >= 0 && slice0 < n &&
	    (k = poll(pfd + slice0, (nfds_t)(n - slice0), 0)) > 0)
		tmo = 0;
	if (k == -1 || poll(pfd, (nfds_t)(slice0 >= 0 ? slice0 : n), tmo) ==
	    -1)
		return -1;
	return 0;
}

void
poll_service(void)
{
	short rev[2];
	int i, slot;

	for (i = conn0; i >= 0 && i < n; ) {
		slot = pmap[i] / 2;
		rev[CLI] = rev[UPS] = 0;
		for (; i < n && pmap[i] / 2 == slot; i++)
			rev[pmap[i] % 2] = pfd[i].revents;
		if ((rev[CLI] | rev[UPS]) == 0)
			continue;
		hot_add(slot);
		conn_step(slot, rev);
	}
}

void
poll_expire(void)
{
	int i;

	for (i = 0; i < nscan; i++)
		conn_expire(scan[i]);
	/* Walk backwards: a close moves the last live entry into slot i.
	 * Cold connections are looked at when their slice comes. */
	for (i = (all ? conn_count() : nhot) - 1; i >= 0; i--)
		conn_expire(all ? conn_live(i) : hot[i]);
}
