/* SPDX-License-Identifier: ISC */
/*
 * System helpers: the clock of the current loop turn, non-blocking
 * close-on-exec sockets, the options every relayed socket gets, the
 * question "is this address one of this host's own?", and reading a whole
 * file.  Each helper
 * classifies its own errors and returns 0/-1 (or an fd) with errno set,
 * like the system calls it wraps.  The state here is the turn's time and
 * a small cache of is-local answers.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"

static int64_t turn_now;		/* sys_tick()'s last reading */

int64_t
sys_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sys_tick(void)
{
	return turn_now = sys_clock_ms();
}

int64_t
sys_now(void)
{
	return turn_now;
}

int
sys_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/*
 * Keepalive finds dead peers of long idle sessions (IMAP IDLE); the Linux
 * default of two hours before the first probe is too late to help.
 */
static void
set_keepalive(int fd)
{
	int on = 1;
#ifdef TCP_KEEPIDLE
	int idle = 120, intvl = 30, cnt = 4;

	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
}

void
sys_tune(int fd)
{
	int on = 1;

	/* Relayed writes are already whole messages: Nagle only adds delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	set_keepalive(fd);
}

void
sys_buffers(int fd, int bytes)
{
	if (bytes <= 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

int
sys_inherits(int fd)
{
	static int known, yes;
	int v = 0;
	socklen_t len = sizeof(v);

	if (!known) {
		known = 1;
		yes = getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 &&
		    v != 0;
		len = sizeof(v);
		v = 0;
		yes = yes && getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v,
		    &len) == 0 && v != 0;
#ifdef TCP_KEEPIDLE
		len = sizeof(v);
		v = 0;
		yes = yes && getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v,
		    &len) == 0 && v == 120;
#endif
	}
	return yes;
}

/*
 * Non-blocking, close-on-exec sockets in one call where the system has
 * SOCK_NONBLOCK (POSIX.1-2024, Linux, the BSDs), else with fcntl().
 */
#ifdef SOCK_NONBLOCK
int accept4(int, struct sockaddr *, socklen_t *, int);
#endif

int
sys_socket_nb(int family)
{
#ifdef SOCK_NONBLOCK
	return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd != -1 && sys_nonblock(fd) == -1) {
		close(fd);
		return -1;
	}
	return fd;
#endif
}

int
sys_accept_nb(int lfd, union sa *sa, socklen_t *len)
{
#ifdef SOCK_NONBLOCK
	return accept4(lfd, &sa->sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
	int fd = accept(lfd, &sa->sa, len), e;

	if (fd != -1 && sys_nonblock(fd) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
#endif
}

/*
 * A UDP connect() sends nothing; it only picks a route and a source.  That
 * is four system calls, a tenth of what a connection costs, so answers
 * are kept for LOCAL_TTL_MS (a few addresses; mail goes to one or two).
 */
#define LOCAL_TTL_MS	1000
#define LOCAL_CACHE	8

int
sys_is_local(const union sa *a)
{
	static struct {
		int64_t until;
		unsigned char n, local, b[16];
	} cache[LOCAL_CACHE];
	union sa src;
	socklen_t len = sizeof(src);
	size_t n, sn;
	const unsigned char *b = sa_bytes(a, &n);
	uint32_t h = sa_hash(b, n, 0) % LOCAL_CACHE;
	int fd, r = 0;

	if (cache[h].until > turn_now && cache[h].n == n &&
	    memcmp(cache[h].b, b, n) == 0)
		return cache[h].local;
	if ((fd = socket(a->sa.sa_family, SOCK_DGRAM, 0)) == -1)
		return 0;
	if (connect(fd, &a->sa, sa_len(a)) == 0 &&
	    getsockname(fd, &src.sa, &len) == 0 &&
	    src.sa.sa_family == a->sa.sa_family)
		r = memcmp(sa_bytes(&src, &sn), b, n) == 0;
	close(fd);
	cache[h].until = turn_now + LOCAL_TTL_MS;
	cache[h].n = (unsigned char)n;
	cache[h].local = (unsigned char)r;
	memcpy(cache[h].b, b, n);
	return r;
}

char *
sys_read_file(const char *path, size_t max, size_t *n)
{
	char *buf;
	ssize_t r = 0;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (*n = 0; *n < max; *n += (size_t)r) {
		do
			r = read(fd, buf + *n, max - *n);
		while (r == -1 && errno == EINTR);
		if (r <= 0)
			break;
	}
	e = r == -1 ? errno : *n == max ? EFBIG : 0;
	close(fd);
	if (e != 0) {
		free(buf);
		errno = e;
		return NULL;
	}
	buf[*n] = '\0';
	return buf;
}
