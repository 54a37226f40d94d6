/* SPDX-License-Identifier: ISC */
/*
 * edge: a small layer-4 proxy for mail ports.  This file is the process:
 * the command line, start-up (limits, signals, every room sized once for
 * max_conns, the listeners bound, privileges dropped), the poll loop that
 * drives the rooms below it, and the operator's signals: SIGHUP reloads
 * the config as a merge of old and new, SIGTERM/SIGINT drain, SIGUSR1
 * logs the counters, SIGUSR2 upgrades (handover.c starts the new process;
 * here the old one steps back once it is ready).  Signal handlers only
 * write a record to a pipe; the loop does the rest.  Each change of state
 * is also told to systemd when it listens (notify.c).
 */
#include <sys/resource.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define CONF_MAX_SIZE	(1024 * 1024)
#define LIST_MAX_SIZE	(64 * 1024 * 1024)	/* a deny_file or allow_file */
#define RELOAD_WAIT_S	60		/* edge reload: for the answer */
#define STATUS_EVERY_MS	10000		/* systemd's STATUS= line, at most */

static const char *confpath = "/etc/edge/edge.conf";
static struct conf *running;	/* the config new connections get (held) */
static int sigp[2];		/* self-pipe for signals */
static int resfd;		/* resolver wakeup */
static int draining;		/* SIGTERM or handed over: no new clients */
static enum why drain_why;	/* what the connections left at the end are
				 * closed as: W_SHUTDOWN or W_UPGRADE */
static long handed;		/* the pid this process handed over to */
static int64_t drain_end;
static int stop;
static const char *last_reload = "none";

/* A record in the signal pipe: which signal, and for a SIGHUP sent with
 * sigqueue() by `edge reload`, the pid that waits for the answer. */
struct sigrec {
	int sig, from;
};

/* Read path whole; NULL with "path: why" in err. */
static char *
slurp(const char *path, size_t max, size_t *n, char *err, size_t errlen)
{
	char *text;

	if ((text = sys_read_file(path, max, n)) == NULL) {
		if (errno == EFBIG)
			snprintf(err, errlen, "%s: larger than %zu bytes", path,
			    max - 1);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
	}
	return text;
}

/*
 * The config file, read and parsed, with the list files it names (each
 * read whole, every time: a reload re-reads them); NULL with the message
 * in err.
 */
static struct conf *
load(char *err, size_t errlen)
{
	const struct listfile *f;
	struct conf *cf;
	char *text, why[512];
	size_t n;
	int i;

	if ((text = slurp(confpath, CONF_MAX_SIZE, &n, err, errlen)) == NULL)
		return NULL;
	cf = conf_parse(text, n, confpath, err, errlen);
	free(text);
	for (i = 0; cf != NULL && i < cf->nfiles; i++) {
		f = &cf->files[i];
		if ((text = slurp(f->path, LIST_MAX_SIZE, &n, why,
		    sizeof(why))) == NULL) {
			snprintf(err, errlen, "%s:%d: %s.%s: %s", confpath,
			    f->line, cf->l[f->li].name, f->deny ? "deny_file" :
			    "allow_file", why);
			conf_free(cf);
			return NULL;
		}
		if (conf_list_text(cf, i, text, n, err, errlen) == -1) {
			conf_free(cf);
			cf = NULL;
		}
		free(text);
	}
	if (cf != NULL)
		conf_lists_done(cf);
	return cf;
}

static void
on_signal(int sig, siginfo_t *si, void *uc)
{
	struct sigrec r;
	int e = errno;

	(void)uc;
	r.sig = sig;
	r.from = sig == SIGHUP && si != NULL && si->si_code == SI_QUEUE ?
	    si->si_value.sival_int : 0;
	/* Smaller than PIPE_BUF: written whole or not at all. */
	if (write(sigp[1], &r, sizeof(r)) == -1)
		(void)0;	/* a full pipe already holds a wakeup */
	errno = e;
}

/* systemd's one-line summary of the process. */
static void
tell_status(void)
{
	static char last[128];
	char now[128];

	if (handed)
		return;		/* the new process speaks for the service */
	snprintf(now, sizeof(now), "STATUS=%s listeners=%d conns=%d "
	    "last_reload=%s", draining ? "draining" : "serving",
	    listen_count(), conn_count(), last_reload);
	if (strcmp(now, last) != 0 && notify_send("%s", now) == 0)
		memcpy(last, now, sizeof(last));
}

/*
 * SIGHUP: read the config again.  A bad one is refused with the message
 * edge -t would print.  Otherwise the listeners merge the new config into
 * their sockets (listen.c), and each connection keeps the config it was
 * accepted under until it ends.  max_conns and user apply at the next
 * start.
 */
static void
reload(long from)
{
	struct conf *nc, *oc = running;
	char err[1024], answer[1100];
	int bad;

	notify_send("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading",
	    (long long)notify_usec());
	if ((nc = load(err, sizeof(err))) == NULL ||
	    (bad = listen_reload(nc, err, sizeof(err))) == -1) {
		log_msg("reload failed: %s; still running the old config", err);
		conf_free(nc);
		stats_reloaded(0);
		last_reload = "failed";
		snprintf(answer, sizeof(answer), "failed: %s; still running "
		    "the old config", err);
		goto done;
	}
	if (nc->max_conns != oc->max_conns)
		log_msg("reload: max_conns=%d applies at the next start; still "
		    "%d", nc->max_conns, conn_max());
	if (nc->user.set != oc->user.set || nc->user.uid != oc->user.uid ||
	    nc->user.gid != oc->user.gid || strcmp(nc->user.name,
	    oc->user.name) != 0)
		log_msg("reload: user applies at the next start");
	if (resolve_names(nc) == -1)
		log_msg("reload: out of memory for dns_stale's answers");
	running = nc;
	conf_free(oc);	/* its last connection frees it if any remain */
	stats_reloaded(1);
	log_msg("reload ok listeners=%d conns=%d%s", nc->nl, conn_count(),
	    bad ? " (with errors above: those listeners are closed)" : "");
	last_reload = bad ? "ok_with_errors" : "ok";
	snprintf(answer, sizeof(answer), "ok listeners=%d conns=%d%s", nc->nl,
	    conn_count(), bad ? " (some listeners failed to bind: see the "
	    "log)" : "");
done:
	notify_send("READY=1");
	tell_status();
	if (from > 0 && notify_answer(from, answer) == -1)
		log_msg("reload: cannot answer pid %ld:", from);
}

/* SIGTERM or SIGINT: stop accepting, let connections finish. */
static void
drain(int sig)
{
	const char *name = sig == SIGTERM ? "TERM" : "INT";
	int64_t end = sys_now() + running->drain_ms;

	if (draining && drain_why == W_UPGRADE) {
		/* Handed over already: now the drain's own deadline. */
		log_msg("drain signal=%s conns=%d timeout=%lldms (handed over "
		    "to pid=%ld)", name, conn_count(),
		    (long long)running->drain_ms, handed);
		drain_why = W_SHUTDOWN;
		if (end < drain_end)
			drain_end = end;
		return;
	}
	if (draining) {
		log_msg("stop signal=%s again: closing %d connections now",
		    name, conn_count());
		stop = 1;
		return;
	}
	log_msg("drain signal=%s conns=%d timeout=%lldms", name, conn_count(),
	    (long long)running->drain_ms);
	draining = 1;
	drain_why = W_SHUTDOWN;
	drain_end = end;
	notify_send("STOPPING=1");
	tell_status();
	/* Closed, not just unpolled: new clients are refused by the
	 * kernel at once instead of waiting in a backlog nobody reads (with
	 * socket activation systemd keeps them, for the next start). */
	listen_close_all();
}

/* SIGUSR2: start the new process; it answers through handover.c. */
static void
upgrade(void)
{
	char err[256];

	if (draining)
		log_msg("upgrade ignored: %s", handed ? "this process has "
		    "handed over already" : "draining");
	else if (handover_start(err, sizeof(err)) == -1)
		log_msg("upgrade ignored: %s", err);
}

/*
 * The new process is ready: it accepts on the same sockets from now on.
 * This one stops accepting (closing its copies closes no socket), and
 * relays what it has until upgrade_timeout.
 */
static void
step_back(long pid)
{
	if (draining) {		/* a SIGTERM came first: it decides */
		log_msg("upgrade: pid=%ld is ready; this process drains as "
		    "told", pid);
		handed = pid;
		notify_send("MAINPID=%ld", pid);
		return;
	}
	log_msg("upgrade ok: pid=%ld serves now; conns=%d finish here within "
	    "%lldms", pid, conn_count(), (long long)running->upgrade_ms);
	notify_send("MAINPID=%ld", pid);
	handed = pid;
	draining = 1;
	drain_why = W_UPGRADE;
	drain_end = sys_now() + running->upgrade_ms;
	listen_close_all();
}

/* Tell an `edge reload` waiting on a SIGHUP that is not acted on. */
static void
hup_ignored(long from)
{
	char answer[128];

	snprintf(answer, sizeof(answer), "failed: %s", handed ? "this process "
	    "has handed over to a new one: ask that one" : "draining");
	log_msg("hup ignored: %s", handed ? "handed over" : "draining");
	if (from > 0)
		notify_answer(from, answer);
}

static void
handle_signals(void)
{
	struct sigrec r[16];
	ssize_t n;
	size_t i;

	while ((n = read(sigp[0], r, sizeof(r))) > 0) {
		for (i = 0; i < (size_t)n / sizeof(r[0]) && !stop; i++) {
			if (r[i].sig == SIGTERM || r[i].sig == SIGINT)
				drain(r[i].sig);
			else if (r[i].sig == SIGHUP && draining)
				hup_ignored(r[i].from);
			else if (r[i].sig == SIGHUP)
				reload(r[i].from);
			else if (r[i].sig == SIGUSR1)
				status_log();
			else if (r[i].sig == SIGUSR2)
				upgrade();
			else if (r[i].sig == SIGCHLD)
				handover_reap();
		}
	}
}

/*
 * One turn: the pollset (signals, resolver, the status listener, the
 * listeners, the status clients, then the connections), one wait, then
 * each kind of event in turn.  Listeners are polled only while a slot is
 * free and no descriptor shortage pause runs.
 */
static void
run(void)
{
	struct pollfd *sp;
	int fresh[ACCEPT_BATCH];
	int64_t now, status_next, status_at = sys_tick() + STATUS_EVERY_MS;
	int i, k, nl, psig, pres, pst, pl0, nst, on, pho;
	long pid;

	while (!stop) {
		now = sys_tick();
		poll_begin();
		psig = poll_add(sigp[0], POLLIN);
		pres = poll_add(resfd, POLLIN);
		pho = poll_add(handover_fd(), POLLIN);
		poll_wake(handover_due());
		if (notify_on())
			poll_wake(status_at);
		on = conn_count() < conn_max() && now >= listen_resume_at();
		if (!on && listen_resume_at() > now)
			poll_wake(listen_resume_at());
		if (draining)
			poll_wake(drain_end);
		poll_wake(log_refusals_due());
		pst = poll_add(now >= listen_resume_at() && !status_full() ?
		    listen_status_fd() : -1, POLLIN);
		nl = draining ? 0 : listen_count();
		pl0 = pst + 1;
		for (i = 0; i < nl; i++)
			poll_add(on ? listen_fd(i) : -1, POLLIN);
		sp = poll_room();
		status_next = INT64_MAX;
		nst = status_pollfds(sp, &status_next);
		poll_used(nst);
		poll_wake(status_next);
		poll_conns();
		if (poll_wait() == -1) {
			if (errno == EINTR)
				continue;
			log_die(1, "poll:");
		}
		now = sys_tick();
		if (poll_revents(pres))
			conn_resolved();
		if ((poll_revents(pho) || now >= handover_due()) &&
		    (pid = handover_check(now)) > 0)
			step_back(pid);
		if (notify_on() && now >= status_at) {
			tell_status();
			status_at = now + STATUS_EVERY_MS;
		}
		status_service(sp, nst, now);
		poll_service();
		for (i = 0; i < nl; i++) {
			if (!(poll_revents(pl0 + i) & POLLIN))
				continue;
			k = conn_accept(running, i, fresh, ACCEPT_BATCH);
			poll_hot(fresh, k);
		}
		if ((poll_revents(pst) & POLLIN) &&
		    status_accept(listen_status_fd(), now) == -1)
			listen_pause("status", errno, conn_count());
		poll_expire();
		log_refusals_flush(now);
		/* Last: a reload may replace the listeners polled above. */
		if (poll_revents(psig))
			handle_signals();
		if (draining && (conn_count() == 0 || now >= drain_end))
			stop = 1;
	}
	k = conn_count();
	conn_close_all(drain_why);
	status_close_all();
	log_msg("stopped closed=%d%s", k, handed ? " (handed over)" : "");
}

/*
 * user = NAME | UID[:GID]: after binding, drop supplementary groups, the
 * gid, then the uid, and check that root cannot be had back.  Any failure
 * ends the process: a proxy told to drop root never runs on as root.
 */
static void
drop_privileges(const struct runas *u)
{
	struct passwd *pw = NULL;
	uid_t uid;
	gid_t gid;

	if (!u->set)
		return;
	if (u->name[0] != '\0') {
		errno = 0;
		if ((pw = getpwnam(u->name)) == NULL)
			log_die(1, "user %s: no such user in /etc/passwd (a "
			    "scratch image has none: write user = UID:GID)",
			    u->name);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (uid == 0)
			log_die(1, "user %s: is root; leave user unset to keep "
			    "running as root", u->name);
	} else {
		uid = (uid_t)u->uid;
		if (u->gid >= 0)
			gid = (gid_t)u->gid;
		else if ((pw = getpwuid(uid)) != NULL)
			gid = pw->pw_gid;
		else
			gid = (gid_t)u->uid;
	}
	if (getuid() == uid && geteuid() == uid && getgid() == gid &&
	    getegid() == gid) {
		log_msg("user uid=%ld gid=%ld (already)", (long)uid, (long)gid);
		return;
	}
	if (setgroups(0, NULL) == -1)
		log_die(1, "user: cannot drop supplementary groups (not started as "
		    "root?); refusing to run as uid=%ld: setgroups:",
		    (long)getuid());
	if (setgid(gid) == -1)
		log_die(1, "user: setgid %ld:", (long)gid);
	if (setuid(uid) == -1)
		log_die(1, "user: setuid %ld:", (long)uid);
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 ||
	    getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid)
		log_die(1, "user: root could be regained after dropping to uid=%ld "
		    "gid=%ld; refusing to run", (long)uid, (long)gid);
	log_msg("user uid=%ld gid=%ld", (long)uid, (long)gid);
}

/*
 * Two fds per connection; the rest are stdio, two pipes, listeners,
 * status clients and room for the resolver threads' own sockets and
 * files.  Past this cap clients wait in the backlog instead of failing.
 */
static int
fd_budget(const struct conf *cf, int *pipes)
{
	struct rlimit rl;
	int maxc = cf->max_conns, spare;
	rlim_t left;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	spare = 3 + 4 + cf->nl + 32 + (cf->status ? 1 + STATUS_MAX : 0);
	/* Read the limit again: the raise above may have been refused. */
	*pipes = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return maxc;
	if (rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)(2 * maxc + spare) > rl.rlim_cur) {
		maxc = rl.rlim_cur > (rlim_t)spare + 2 ?
		    (int)((rl.rlim_cur - (rlim_t)spare) / 2) : 1;
		log_msg("warning: max_conns=%d lowered to %d by the open-file "
		    "limit of %llu (2 per connection, %d spare)",
		    cf->max_conns, maxc, (unsigned long long)rl.rlim_cur,
		    spare);
	}
	/* The splice relay's pipes get what is left: two fds each. */
	left = rl.rlim_cur == RLIM_INFINITY ? 2 * PIPES_MAX :
	    rl.rlim_cur > (rlim_t)spare + 2 * (rlim_t)maxc ? rl.rlim_cur -
	    (rlim_t)spare - 2 * (rlim_t)maxc : 0;
	*pipes = left / 2 > PIPES_MAX ? PIPES_MAX : (int)(left / 2);
	return maxc;
}

static void
setup(void)
{
	struct sigaction sa;
	char err[1024];
	int maxc, i, pipes = 0;

	stats_init(sys_tick());
	maxc = fd_budget(running, &pipes);
	if (pipe(sigp) == -1 || sys_nonblock(sigp[0]) == -1 ||
	    sys_nonblock(sigp[1]) == -1)
		log_die(1, "pipe:");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_flags |= SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	if ((resfd = resolve_init()) == -1)
		log_die(1, "resolver:");
	/* Every container is sized once here; connection memory is touched
	 * only as connections come. */
	buf_init(maxc);
	if (iptab_init(maxc) == -1 || rate_init(maxc) == -1 ||
	    (pipes = pipes_init(pipes)) == -1 ||
	    conn_init(maxc) == -1 ||
	    poll_init(maxc, 4 + MAX_LISTENERS + STATUS_MAX) == -1)
		log_die(1, "max_conns=%d: out of memory", maxc);
	if ((i = listen_start(running, err, sizeof(err))) < 0)
		log_die(i == -2 ? 2 : 1, "%s", err);
	if (resolve_names(running) == -1)
		log_die(1, "dns_stale: out of memory");
	drop_privileges(&running->user);
	log_msg("start version=%s conf=%s listeners=%d max_conns=%d "
	    "pipes=%d pid=%ld%s", EDGE_VERSION, confpath, running->nl, maxc,
	    pipes, (long)getpid(),
	    handover_upgraded() ? " (upgrade)" : "");
	/* Serving: tell whoever waits (the old process, then systemd). */
	handover_ready();
	if (handover_upgraded())
		notify_send("MAINPID=%ld\nREADY=1", (long)getpid());
	else
		notify_send("READY=1");
	tell_status();
}

static void
usage(int code)
{
	log_to(code ? STDERR_FILENO : STDOUT_FILENO,
	    "usage: edge [-t] [-c FILE]\n"
	    "       edge probe HOST:PORT\n"
	    "       edge reload PID\n"
	    "  -c FILE  configuration (default /etc/edge/edge.conf)\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version\n"
	    "  probe    ask the status endpoint at HOST:PORT; exit 0 if it "
	    "answers 200\n"
	    "  reload   make edge PID reload and wait for it; exit 0 if the "
	    "new config is live\n"
	    "exit: 0 ok, 1 runtime or system failure, 2 usage or config "
	    "error\n");
	exit(code);
}

int
main(int argc, char **argv)
{
	char err[1024];
	int ch, test = 0, i;

	if (argc >= 2 && strcmp(argv[1], "probe") == 0) {
		if (argc != 3)
			usage(2);
		return status_probe(argv[2]);
	}
	if (argc >= 2 && strcmp(argv[1], "reload") == 0) {
		if (argc != 3)
			usage(2);
		return notify_reload(argv[2], RELOAD_WAIT_S);
	}
	while ((ch = getopt(argc, argv, "c:thV")) != -1) {
		switch (ch) {
		case 'c':
			confpath = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(0);
			break;
		case 'V':
			log_to(STDOUT_FILENO, "edge %s\n", EDGE_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (!test && handover_init(argv, err, sizeof(err)) == -1)
		log_die(2, "%s", err);
	if (!test && notify_init() == -1)
		log_msg("NOTIFY_SOCKET=%s: cannot use it:",
		    getenv("NOTIFY_SOCKET"));
	if ((running = load(err, sizeof(err))) == NULL)
		log_die(2, "%s", err);
	if (test) {
		for (i = 0; i < running->nl; i++)
			listen_describe("listener", running, &running->l[i],
			    &running->l[i].addr);
		log_msg("%s: ok, %d listener%s", confpath, running->nl,
		    running->nl == 1 ? "" : "s");
		return 0;
	}
	setup();
	run();
	return 0;
}
