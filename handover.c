/* SPDX-License-Identifier: ISC */
/*
 * Listening sockets handed to edge, and handed on.
 *
 * At start: systemd's socket activation (LISTEN_PID, LISTEN_FDS from fd 3,
 * LISTEN_FDNAMES), or the process an upgrade replaces (EDGE_UPGRADE_FDS
 * "FD=NAME,...", EDGE_UPGRADE_READY the pipe to say "ready" on).  Either
 * way the variables leave the environment and the sockets go to listen.c,
 * which gives each to the listener whose address it has.
 *
 * SIGUSR2: the upgrade.  handover_start() forks and execs the binary at
 * the path edge was started from, with the same arguments, every
 * listening socket left open across the exec and named in the new
 * process's environment.  The new process reads its config, takes the
 * sockets, binds what is new and writes one byte on the ready pipe
 * (handover_ready()).  Until that byte the old process serves as before;
 * with it, the old one stops accepting (edge.c) and the new one, sharing
 * the very same sockets, accepts what waits in their backlogs: no socket
 * closes, no client is refused.  If the new process exits first, or is
 * not ready within READY_MS, the upgrade failed and the old process
 * carries on with everything.
 */
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define READY_MS	60000		/* for the new process to be ready */
#define FDS_VAR		"EDGE_UPGRADE_FDS"
#define SYSTEMD_MARK	"systemd"	/* after a name: systemd holds it too */
#define READY_VAR	"EDGE_UPGRADE_READY"

extern char **environ;

static char exe[PATH_MAX];		/* the binary edge was started from */
static char **args;			/* its arguments */
static int to_old = -1;			/* new process: the ready pipe */
static pid_t child;			/* an upgrade under way: the new one */
static int from_new = -1;		/* old process: the ready pipe */
static int64_t ready_by;

/* The path the shell found argv0 at, as execve() wants it. */
static void
find_exe(const char *argv0)
{
	const char *path = getenv("PATH"), *p, *e;
	char cand[PATH_MAX];

	snprintf(exe, sizeof(exe), "%s", argv0);
	if (strchr(argv0, '/') != NULL || path == NULL)
		return;
	for (p = path; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ':');
		if (e == NULL)
			e = p + strlen(p);
		snprintf(cand, sizeof(cand), "%.*s/%s", (int)(e - p),
		    e == p ? "." : p, argv0);
		if (access(cand, X_OK) == 0) {
			snprintf(exe, sizeof(exe), "%s", cand);
			return;
		}
	}
}

/* A decimal fd number of at least min; -1 if s is not one. */
static int
fd_num(const char *s, char **end, int min)
{
	long v;

	errno = 0;
	v = strtol(s, end, 10);
	if (errno != 0 || *end == s || v < min || v > INT_MAX - 1)
		return -1;
	return (int)v;
}

static int
from_systemd(const char *pids, const char *nfds, char *err, size_t errlen)
{
	char *names = getenv("LISTEN_FDNAMES"), *end, *name, *next;
	int i, n, pid;

	names = names != NULL ? strdup(names) : NULL;
	pid = fd_num(pids, &end, 1);
	if (pid == -1 || *end != '\0' || (n = fd_num(nfds, &end, 0)) == -1 ||
	    *end != '\0' || n > MAX_LISTENERS + 1) {
		snprintf(err, errlen, "LISTEN_PID=%s LISTEN_FDS=%s: not a "
		    "process id and a count up to %d", pids, nfds,
		    MAX_LISTENERS + 1);
		free(names);
		return -1;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (pid != (int)getpid()) {	/* meant for another process */
		free(names);
		return 0;
	}
	for (i = 0, name = names; i < n; i++, name = next) {
		next = name != NULL ? strchr(name, ':') : NULL;
		if (next != NULL)
			*next++ = '\0';
		if (listen_inherit(3 + i, name != NULL ? name : "", "systemd",
		    1, err, errlen) == -1) {
			free(names);
			return -1;
		}
	}
	free(names);
	return n;
}

static int
from_upgrade(const char *fds, const char *ready, char *err, size_t errlen)
{
	char *list = strdup(fds), *p, *end, *name, *mark;
	int fd, n = 0;

	if (list == NULL || (to_old = fd_num(ready, &end, 3)) == -1 ||
	    *end != '\0') {
		snprintf(err, errlen, "%s=%s: not a descriptor", READY_VAR,
		    ready);
		free(list);
		return -1;
	}
	for (p = list; *p != '\0'; p = end) {
		if ((fd = fd_num(p, &end, 3)) == -1 || *end != '=') {
			snprintf(err, errlen, "%s=%s: not FD=NAME,...",
			    FDS_VAR, fds);
			free(list);
			return -1;
		}
		name = end + 1;
		end = name + strcspn(name, ",");
		if (*end != '\0')
			*end++ = '\0';
		if ((mark = strchr(name, '/')) != NULL)
			*mark++ = '\0';
		if (listen_inherit(fd, name, "upgrade", mark != NULL &&
		    strcmp(mark, SYSTEMD_MARK) == 0, err, errlen) == -1) {
			free(list);
			return -1;
		}
		n++;
	}
	fcntl(to_old, F_SETFD, FD_CLOEXEC);
	free(list);
	unsetenv(FDS_VAR);
	unsetenv(READY_VAR);
	return n;
}

int
handover_init(char **argv, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	const char *fds = getenv(FDS_VAR), *ready = getenv(READY_VAR);

	find_exe(argv[0]);
	args = argv;
	if (fds != NULL && ready != NULL)
		return from_upgrade(fds, ready, err, errlen);
	if (pid != NULL && nfds != NULL)
		return from_systemd(pid, nfds, err, errlen);
	return 0;
}

int
handover_upgraded(void)
{
	return to_old != -1;
}

void
handover_ready(void)
{
	char b = '1';

	if (to_old == -1)
		return;
	if (write(to_old, &b, 1) == -1)
		log_msg("upgrade: cannot tell the old process:");
	close(to_old);
}

/*
 * "EDGE_UPGRADE_FDS=3=smtp,4=web/systemd,5=status": the sockets the new
 * process gets; "/systemd": a socket unit's, which systemd holds too.
 */
static char *
fds_var(void)
{
	size_t n = sizeof(FDS_VAR) + 2, o;
	char *s;
	int i, fd;

	for (i = 0; i < listen_count(); i++)
		n += 16 + NAME_MAX_LEN + sizeof(SYSTEMD_MARK);
	n += 16 + sizeof("status");
	if ((s = malloc(n)) == NULL)
		return NULL;
	o = (size_t)snprintf(s, n, "%s=", FDS_VAR);
	for (i = 0; i < listen_count(); i++)
		if ((fd = listen_fd(i)) != -1)
			o += (size_t)snprintf(s + o, n - o, "%s%d=%s%s",
			    o > sizeof(FDS_VAR) ? "," : "", fd,
			    listen_name(i), listen_systemd(i) ? "/"
			    SYSTEMD_MARK : "");
	if ((fd = listen_status_fd()) != -1)
		snprintf(s + o, n - o, "%s%d=status", o > sizeof(FDS_VAR) ?
		    "," : "", fd);
	return s;
}

/* The environment of the new process: ours, and where its sockets are. */
static char **
new_env(int ready)
{
	char **env, *fv = fds_var(), rv[64];
	size_t n = 0, k = 0, i;

	while (environ[n] != NULL)
		n++;
	if (fv == NULL || (env = calloc(n + 3, sizeof(*env))) == NULL) {
		free(fv);
		return NULL;
	}
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "EDGE_UPGRADE_", 13) != 0)
			env[k++] = environ[i];
	snprintf(rv, sizeof(rv), "%s=%d", READY_VAR, ready);
	env[k++] = fv;
	if ((env[k++] = strdup(rv)) == NULL) {
		free(fv);
		free(env);
		return NULL;
	}
	return env;
}

static void
free_env(char **env)
{
	size_t n = 0;

	while (env[n] != NULL)
		n++;
	free(env[n - 1]);
	free(env[n - 2]);
	free(env);
}

int
handover_start(char *err, size_t errlen)
{
	static const char fail[] = "edge: upgrade: exec failed\n";
	char **env;
	int p[2], i, e;
	pid_t pid;

	if (child != 0) {
		snprintf(err, errlen, "an upgrade is under way (pid=%ld)",
		    (long)child);
		return -1;
	}
	if (getpid() == 1) {
		snprintf(err, errlen, "edge is PID 1 (a container's init): "
		    "there the upgrade is a new image");
		return -1;
	}
	if (pipe(p) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	sys_nonblock(p[0]);
	sys_nonblock(p[1]);
	if ((env = new_env(p[1])) == NULL) {
		close(p[0]);
		close(p[1]);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((pid = fork()) == 0) {
		/* Only async-signal-safe calls here: other threads exist. */
		for (i = 0; i < listen_count(); i++)
			if (listen_fd(i) != -1)
				fcntl(listen_fd(i), F_SETFD, 0);
		if (listen_status_fd() != -1)
			fcntl(listen_status_fd(), F_SETFD, 0);
		fcntl(p[1], F_SETFD, 0);
		fcntl(p[1], F_SETFL, 0);
		execve(exe, args, env);
		if (write(STDERR_FILENO, fail, sizeof(fail) - 1) == -1)
			(void)0;
		_exit(127);
	}
	e = errno;
	free_env(env);
	close(p[1]);
	if (pid == -1) {
		close(p[0]);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -1;
	}
	child = pid;
	from_new = p[0];
	ready_by = sys_now() + READY_MS;
	log_msg("upgrade started pid=%ld exe=%s", (long)pid, exe);
	return 0;
}

int
handover_fd(void)
{
	return from_new;
}

int64_t
handover_due(void)
{
	return child != 0 ? ready_by : INT64_MAX;
}

/* Why pid ended, from its wait status. */
static void
ended(pid_t pid, int st, char *msg, size_t n)
{
	if (WIFEXITED(st))
		snprintf(msg, n, "pid=%ld exited status=%d", (long)pid,
		    WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(msg, n, "pid=%ld killed by signal %d", (long)pid,
		    WTERMSIG(st));
	else
		snprintf(msg, n, "pid=%ld ended", (long)pid);
}

static void
give_up(const char *why)
{
	log_msg("upgrade failed: %s; still serving everything here", why);
	if (from_new != -1)
		close(from_new);
	from_new = -1;
	child = 0;
}

long
handover_check(int64_t now)
{
	char b, msg[128];
	pid_t pid;
	ssize_t n = -1;

	if (child == 0)
		return 0;
	if (from_new != -1 && (n = read(from_new, &b, 1)) == 1) {
		close(from_new);
		from_new = -1;
		pid = child;
		child = 0;	/* still ours to reap; the upgrade is done */
		return (long)pid;
	}
	if (from_new != -1 && n == 0) {	/* closed: it is ending */
		close(from_new);
		from_new = -1;
	}
	if (now < ready_by)
		return 0;
	kill(child, SIGKILL);
	snprintf(msg, sizeof(msg), "pid=%ld not ready in %d s: killed",
	    (long)child, READY_MS / 1000);
	give_up(msg);
	return -1;
}

void
handover_reap(void)
{
	char msg[128];
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		ended(pid, st, msg, sizeof(msg));
		if (pid == child) {
			strncat(msg, " before it was ready", sizeof(msg) -
			    strlen(msg) - 1);
			give_up(msg);
		} else {
			log_msg("upgrade: the new process %s", msg);
		}
	}
}
