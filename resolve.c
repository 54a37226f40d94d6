/* SPDX-License-Identifier: ISC */
/*
 * Name resolution off the poll loop.  resolve_start() queues a job; one of
 * a few worker threads (started as needed, at most RESOLVE_THREADS) runs
 * getaddrinfo() for it, orders the addresses by preference, moves the job
 * to the done list and writes a byte to a pipe the loop polls.  The loop
 * then takes results with resolve_next().  Jobs name their connection by
 * slot and generation; a stale result is simply dropped by the caller.
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

int
resolve_next(int *slot, uint32_t *gen, struct addrs **a, const char **err)
{
	char drain[64];
	struct job *j;

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
	free(j);
	return 1;
}
