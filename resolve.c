/* SPDX-License-Identifier: ISC */
/*
 * Name resolution off the poll loop.  resolve_start() queues a job; one of
 * a few worker threads (started as needed, at most RESOLVE_THREADS) runs
 * getaddrinfo() for it, orders the addresses by preference, moves the job
 * to the done list and writes a byte to a pipe the loop polls.  The loop
 * then takes results with resolve_next().  Jobs name their connection by
 * slot and generation; a stale result is simply dropped by the caller.
 *
 * The loop side also keeps, for serve-stale, the last good answer for each
 * name the config names (resolve_names() sizes that table, one entry per
 * name): when a lookup fails or times out, resolve_stale() hands out that
 * answer while it is young enough.  Only the loop thread touches it.
 *
 * With a preference for one family the lookup is two calls, one per
 * family, rather than one AF_UNSPEC call: musl fails a whole AF_UNSPEC
 * lookup when only the AAAA query fails.  AI_ADDRCONFIG is not used: on a
 * host whose only interfaces are loopback or a tunnel it makes glibc skip
 * the query altogether.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define RESOLVE_THREADS	8
#define RESOLVE_STACK	(256 * 1024)	/* musl's getaddrinfo needs room */

struct job {
	struct job *next;
	int slot;
	uint32_t gen;
	enum prefer prefer;
	char host[HOST_MAX_LEN];
	char port[6];
	struct addrs *res;	/* result, or NULL */
	int gai;		/* getaddrinfo error when res is NULL */
	int sys;		/* errno for EAI_SYSTEM */
};

/* The mutex guards the two lists and the thread counts, nothing else. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *qhead, *qtail;	/* waiting, FIFO */
static struct job *done;		/* finished, any order */
static int nthreads, nidle;
static int wake[2] = { -1, -1 };

/* The last good answer per configured name: the loop thread's only. */
struct last {
	const char *host;	/* in the config that named it */
	char port[6];
	int prefer;
	int64_t when;		/* 0: no good answer yet */
	struct addrs a;
};
static struct last *lasts;
static int nlasts;

/* Append up to the space left; returns the new count. */
static int
take(struct addrs *r, const struct addrinfo *ai)
{
	for (; ai != NULL && r->n < MAX_ADDRS; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (ai->ai_addrlen > sizeof(r->a[0]))
			continue;
		memset(&r->a[r->n], 0, sizeof(r->a[0]));
		memcpy(&r->a[r->n], ai->ai_addr, ai->ai_addrlen);
		r->n++;
	}
	return r->n;
}

static void
lookup(struct job *j)
{
	static const int order[3][2] = {
		[PREFER_IPV4] = { AF_INET, AF_INET6 },
		[PREFER_IPV6] = { AF_INET6, AF_INET },
		[PREFER_SYSTEM] = { AF_UNSPEC, -1 },
	};
	struct addrinfo hints, *ai;
	struct addrs *r;
	int i, e, first = 0, firstsys = 0;

	if ((r = malloc(sizeof(*r))) == NULL) {
		j->gai = EAI_MEMORY;
		return;
	}
	r->n = 0;
	for (i = 0; i < 2 && order[j->prefer][i] != -1; i++) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = order[j->prefer][i];
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_protocol = IPPROTO_TCP;
		hints.ai_flags = AI_NUMERICSERV;
		e = getaddrinfo(j->host, j->port, &hints, &ai);
		if (e != 0) {
			/* Report the preferred family's failure. */
			if (first == 0) {
				first = e;
				firstsys = errno;
			}
			continue;
		}
		take(r, ai);
		freeaddrinfo(ai);
	}
	if (r->n == 0) {
		free(r);
		j->gai = first != 0 ? first : EAI_NONAME;
		j->sys = firstsys;
		return;
	}
	j->res = r;
}

static void *
worker(void *arg)
{
	struct job *j;
	ssize_t w;

	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (qhead == NULL) {
			nidle++;
			pthread_cond_wait(&cv, &mu);
			nidle--;
		}
		j = qhead;
		qhead = j->next;
		if (qhead == NULL)
			qtail = NULL;
		pthread_mutex_unlock(&mu);

		lookup(j);

		pthread_mutex_lock(&mu);
		j->next = done;
		done = j;
		/* A full pipe already holds a wakeup: EAGAIN is fine. */
		do
			w = write(wake[1], "", 1);
		while (w == -1 && errno == EINTR);
	}
	return NULL;
}

int
resolve_init(void)
{
	int i;

	if (pipe(wake) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		if (fcntl(wake[i], F_SETFL, O_NONBLOCK) == -1 ||
		    fcntl(wake[i], F_SETFD, FD_CLOEXEC) == -1)
			return -1;
	}
	return wake[0];
}

/* Called with mu held.  A failure is fatal only with no thread at all. */
static int
spawn(void)
{
	pthread_attr_t attr;
	pthread_t t;
	int e;

	if ((e = pthread_attr_init(&attr)) != 0)
		return e;
	pthread_attr_setstacksize(&attr, RESOLVE_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&t, &attr, worker, NULL);
	pthread_attr_destroy(&attr);
	if (e == 0)
		nthreads++;
	return e;
}

int
resolve_start(int slot, uint32_t gen, const char *host, const char *port,
    enum prefer prefer)
{
	struct job *j;
	int e;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->slot = slot;
	j->gen = gen;
	j->prefer = prefer;
	memcpy(j->host, host, strlen(host) + 1);
	memcpy(j->port, port, strlen(port) + 1);

	pthread_mutex_lock(&mu);
	if (nidle == 0 && nthreads < RESOLVE_THREADS) {
		e = spawn();
		if (e != 0 && nthreads == 0) {
			pthread_mutex_unlock(&mu);
			free(j);
			errno = e;
			return -1;
		}
	}
	if (qtail != NULL)
		qtail->next = j;
	else
		qhead = j;
	qtail = j;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

static struct last *
last_of(struct last *t, int n, const char *host, const char *port,
    int prefer)
{
	int i;

	for (i = 0; i < n; i++)
		if (t[i].prefer == prefer && strcmp(t[i].port, port) == 0 &&
		    strcmp(t[i].host, host) == 0)
			return &t[i];
	return NULL;
}

/* Add host:port (prefer) to t unless it is there or a literal. */
static void
name_add(struct last *t, int *n, const struct target *tg, int prefer)
{
	struct last *o;

	if (tg->host[0] == '\0' || tg->literal ||
	    last_of(t, *n, tg->host, tg->port, prefer) != NULL)
		return;
	memset(&t[*n], 0, sizeof(t[*n]));
	t[*n].host = tg->host;
	memcpy(t[*n].port, tg->port, sizeof(t[*n].port));
	t[*n].prefer = prefer;
	/* A name that stays keeps its answer. */
	if ((o = last_of(lasts, nlasts, tg->host, tg->port, prefer)) != NULL) {
		t[*n].when = o->when;
		t[*n].a = o->a;
	}
	(*n)++;
}

int
resolve_names(const struct conf *cf)
{
	const struct listener *l;
	struct last *t;
	int i, j, n = 0;

	if ((t = calloc((size_t)(cf->nl + cf->nr), sizeof(*t))) == NULL) {
		/* Its names may be about to be freed: forget them all. */
		free(lasts);
		lasts = NULL;
		nlasts = 0;
		return -1;
	}
	for (i = 0; i < cf->nl; i++) {
		l = &cf->l[i];
		name_add(t, &n, &l->up, l->prefer);
		for (j = 0; j < l->nr; j++)
			name_add(t, &n, &cf->r[l->r0 + j].t, l->prefer);
	}
	free(lasts);
	lasts = t;
	nlasts = n;
	return 0;
}

struct addrs *
resolve_stale(const char *host, const char *port, int prefer, int64_t max,
    int64_t now, int64_t *age)
{
	struct last *e = last_of(lasts, nlasts, host, port, prefer);
	struct addrs *a;

	if (e == NULL || e->when == 0 || now - e->when > max ||
	    (a = malloc(sizeof(*a))) == NULL)
		return NULL;
	*a = e->a;
	*age = now - e->when;
	return a;
}

int
resolve_next(int *slot, uint32_t *gen, struct addrs **a, const char **err,
    int64_t now)
{
	char drain[64];
	struct job *j;
	struct last *e;

	while (read(wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&mu);
	if ((j = done) != NULL)
		done = j->next;
	pthread_mutex_unlock(&mu);
	if (j == NULL)
		return 0;
	*slot = j->slot;
	*gen = j->gen;
	*a = j->res;
	*err = NULL;
	if (j->res == NULL)
		*err = j->gai == EAI_SYSTEM ? strerror(j->sys) :
		    gai_strerror(j->gai);
	else if ((e = last_of(lasts, nlasts, j->host, j->port,
	    j->prefer)) != NULL) {
		/* A fresh answer replaces the old one at once, even when
		 * the connection that asked has gone. */
		e->a = *j->res;
		e->when = now;
	}
	free(j);
	return 1;
}
