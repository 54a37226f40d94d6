/* SPDX-License-Identifier: ISC */
/*
 * Talking to the service manager, and answering whoever asked for a
 * reload.  Two small datagram protocols, both without libsystemd:
 *
 * - systemd's notify protocol: when $NOTIFY_SOCKET names a socket (a
 *   path, or "@name" in the abstract namespace), each state change is one
 *   datagram of "KEY=value" lines (READY=1, RELOADING=1, STOPPING=1,
 *   STATUS=..., MAINPID=...).  Without it every call here does nothing.
 *
 * - `edge reload PID`: the command waits for the result of the reload it
 *   asks for.  It binds a datagram socket in the abstract namespace named
 *   after its own pid, sends SIGHUP to PID with sigqueue() carrying that
 *   pid, and waits.  edge, once the reload is done or refused, sends one
 *   datagram there: "ok ..." or "failed: ...".  The kernel tells the
 *   command which process sent it (SCM_CREDENTIALS), so another local
 *   user cannot answer for edge.  This is what makes `systemctl reload`
 *   exit non-zero on a refused config, on every systemd version.
 *
 * This file keeps no state but the two descriptors.  Above log.c: its
 * command's output goes through log_to().
 */
#define _GNU_SOURCE	/* struct ucred, SCM_CREDENTIALS (Linux) */
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge.h"

static int nfd = -1;			/* to the service manager */
static struct sockaddr_un naddr;
static socklen_t nlen;
static int afd = -1;			/* to reload requesters */

/* sun for name ("@x": abstract); its length, or 0 if it does not fit. */
static socklen_t
unix_addr(struct sockaddr_un *sun, const char *name, size_t n)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sun->sun_path))
		return 0;
	memcpy(sun->sun_path, name, n);
	if (name[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (name[0] == '@' ? 0 : 1));
}

static int
dgram_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (fd != -1 && (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) == -1)) {
		close(fd);
		return -1;
	}
	return fd;
}

int
notify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");

	if (s == NULL || s[0] == '\0')
		return 0;
	if ((nlen = unix_addr(&naddr, s, strlen(s))) == 0 ||
	    (s[0] != '/' && s[0] != '@')) {
		errno = EINVAL;
		return -1;
	}
	return (nfd = dgram_socket()) == -1 ? -1 : 1;
}

int
notify_on(void)
{
	return nfd != -1;
}

int
notify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (nfd == -1)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	return sendto(nfd, msg, (size_t)n, 0, (struct sockaddr *)&naddr,
	    nlen) == -1 ? -1 : 0;
}

int64_t
notify_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The abstract name a requester with this pid waits on. */
static socklen_t
answer_addr(struct sockaddr_un *sun, long pid)
{
	char name[64];
	int n = snprintf(name, sizeof(name), "@edge-reload-%ld", pid);

	return unix_addr(sun, name, (size_t)n);
}

int
notify_answer(long pid, const char *text)
{
	struct sockaddr_un sun;
	socklen_t len = answer_addr(&sun, pid);

	if (afd == -1 && (afd = dgram_socket()) == -1)
		return -1;
	return sendto(afd, text, strlen(text), 0, (struct sockaddr *)&sun,
	    len) == -1 ? -1 : 0;
}

/* Is the datagram in m from process pid?  Where the kernel cannot say,
 * take it. */
static int
from_pid(struct msghdr *m, long pid)
{
#ifdef SCM_CREDENTIALS
	struct cmsghdr *c;
	struct ucred u;

	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    c->cmsg_type != SCM_CREDENTIALS)
			continue;
		memcpy(&u, CMSG_DATA(c), sizeof(u));
		return (long)u.pid == pid;
	}
	return 0;
#else
	(void)m;
	(void)pid;
	return 1;
#endif
}

int
notify_reload(const char *pidtext, int secs)
{
	struct sockaddr_un sun;
	struct pollfd p;
	union sigval v;
	char *end, text[1100];
	union {
		struct cmsghdr h;
		char b[256];
	} ctl;
	struct iovec io;
	struct msghdr m;
	long pid;
	ssize_t n;
	int fd, on = 1, waited = 0;

	errno = 0;
	pid = strtol(pidtext, &end, 10);
	if (errno != 0 || end == pidtext || *end != '\0' || pid <= 0) {
		log_to(STDERR_FILENO, "edge reload: %s: not a process id\n",
		    pidtext);
		return 2;
	}
	if ((fd = dgram_socket()) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, answer_addr(&sun,
	    (long)getpid())) == -1) {
		log_to(STDERR_FILENO, "edge reload: cannot make the socket to hear "
		    "the answer on: %s\n", strerror(errno));
		return 1;
	}
#ifdef SO_PASSCRED
	setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
#endif
	(void)on;
	v.sival_int = (int)getpid();
	if (sigqueue((pid_t)pid, SIGHUP, v) == -1) {
		log_to(STDERR_FILENO, "edge reload: pid %ld: %s\n", pid,
		    strerror(errno));
		return 1;
	}
	for (;;) {
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 1000) == 0) {
			/* Gone, or taking too long: say which. */
			if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) {
				log_to(STDERR_FILENO, "edge reload: pid %ld exited "
				    "before it answered\n", pid);
				return 1;
			}
			if (++waited >= secs) {
				log_to(STDERR_FILENO, "edge reload: no answer from "
				    "pid %ld in %d s\n", pid, secs);
				return 1;
			}
			continue;
		}
		io.iov_base = text;
		io.iov_len = sizeof(text) - 1;
		memset(&m, 0, sizeof(m));
		m.msg_iov = &io;
		m.msg_iovlen = 1;
		m.msg_control = ctl.b;
		m.msg_controllen = sizeof(ctl.b);
		if ((n = recvmsg(fd, &m, 0)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_to(STDERR_FILENO, "edge reload: recvmsg: %s\n",
			    strerror(errno));
			return 1;
		}
		if (!from_pid(&m, pid))
			continue;	/* not from edge: not its answer */
		text[n] = '\0';
		log_to(STDOUT_FILENO, "edge reload: %s\n", text);
		return strncmp(text, "ok", 2) == 0 ? 0 : 1;
	}
}
