/* SPDX-License-Identifier: ISC */
/*
 * Counters, per listener name, kept across reloads: a name that stays
 * keeps its counts.  A slot is reused only when no config names it and no
 * connection holds it.  This file also owns the names of the close
 * reasons (the log's why= and the metrics' labels) and renders the
 * counters two ways: as SIGUSR1 log lines and as the Prometheus text of
 * the status endpoint, family by family from one table.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge.h"

#define MAX_STATS	(2 * MAX_LISTENERS)

static const char *const why_name[NWHY] = {
	"eof", "idle", "reset", "error", "connect_failed", "dns_failed",
	"dns_timeout", "sni_timeout", "sni_too_big", "sni_incomplete",
	"sni_eof", "not_tls", "no_route", "no_memory", "shutdown", "loop",
	"proxy_timeout", "proxy_bad", "upgrade",
	"denied", "per_ip_limit", "proxy_untrusted", "rate_limit"
};

static struct stats {
	char name[NAME_MAX_LEN];	/* "" when unused */
	int named;			/* a listener of the running config */
	int up;				/* its socket is open */
	uint64_t active, total, up_bytes, down_bytes, connect_failed, stale;
	uint64_t why[NWHY];
} S[MAX_STATS];

static uint64_t reloads[2];		/* failed, ok */
static int64_t started;

const char *
stats_why(enum why w)
{
	return why_name[w];
}

void
stats_init(int64_t now)
{
	started = now;
}

int
stats_claim(const struct conf *cf, int sid[])
{
	int taken[MAX_STATS] = { 0 }, fresh[MAX_LISTENERS];
	int i, j;

	/* Choose every slot first, so that a refusal changes nothing. */
	for (i = 0; i < cf->nl; i++) {
		fresh[i] = 0;
		for (j = 0; j < MAX_STATS; j++)
			if (strcmp(S[j].name, cf->l[i].name) == 0)
				break;
		if (j == MAX_STATS) {
			fresh[i] = 1;
			for (j = 0; j < MAX_STATS; j++)
				if (!taken[j] && (S[j].name[0] == '\0' ||
				    (!S[j].named && S[j].active == 0)))
					break;
			if (j == MAX_STATS)
				return i;
		}
		taken[j] = 1;
		sid[i] = j;
	}
	for (i = 0; i < cf->nl; i++) {
		if (!fresh[i])
			continue;
		memset(&S[sid[i]], 0, sizeof(S[sid[i]]));
		snprintf(S[sid[i]].name, NAME_MAX_LEN, "%s", cf->l[i].name);
	}
	for (j = 0; j < MAX_STATS; j++)
		S[j].named = taken[j];
	return cf->nl;
}

void
stats_up(int sid, int up)
{
	S[sid].up = up;
}

void
stats_accepted(int sid)
{
	S[sid].total++;
}

void
stats_refused(int sid, enum why w)
{
	S[sid].why[w]++;
}

void
stats_opened(int sid)
{
	S[sid].active++;
}

void
stats_closed(int sid, enum why w)
{
	S[sid].why[w]++;
	S[sid].active--;
}

void
stats_bytes(int sid, int side, uint64_t n)
{
	if (side == CLI)
		S[sid].up_bytes += n;
	else
		S[sid].down_bytes += n;
}

void
stats_connect_failed(int sid)
{
	S[sid].connect_failed++;
}

void
stats_stale(int sid)
{
	S[sid].stale++;
}

void
stats_reloaded(int ok)
{
	reloads[ok != 0]++;
}

void
stats_log(const struct gauges *g)
{
	const struct stats *st;
	char closes[NWHY * 24];
	size_t k;
	int i, w;

	log_msg("stats uptime=%llds conns=%d max_conns=%d buffers=%d "
	    "small_buffers=%d buffer_kb=%llu reloads=%llu reload_failures=%llu",
	    (long long)(g->now - started) / 1000, g->conns, g->max_conns,
	    g->big + g->small, g->small,
	    (unsigned long long)g->buf_bytes / 1024,
	    (unsigned long long)reloads[1], (unsigned long long)reloads[0]);
	for (i = 0; i < MAX_STATS; i++) {
		st = &S[i];
		if (!st->named && st->active == 0)
			continue;
		closes[0] = '\0';
		/* Close reasons, then refusals beyond the two named above. */
		for (k = 0, w = 0; w < NWHY; w++)
			if (st->why[w] > 0 && w != W_DENIED && w != W_PER_IP)
				k += (size_t)snprintf(closes + k,
				    sizeof(closes) - k, " %s=%llu", why_name[w],
				    (unsigned long long)st->why[w]);
		log_msg("stats l=%s active=%llu total=%llu denied=%llu "
		    "per_ip_limit=%llu up=%llu down=%llu dns_failures=%llu "
		    "connect_failures=%llu%s", st->name,
		    (unsigned long long)st->active,
		    (unsigned long long)st->total,
		    (unsigned long long)st->why[W_DENIED],
		    (unsigned long long)st->why[W_PER_IP],
		    (unsigned long long)st->up_bytes,
		    (unsigned long long)st->down_bytes,
		    (unsigned long long)(st->why[W_DNS_FAILED] +
		    st->why[W_DNS_TIMEOUT]),
		    (unsigned long long)st->connect_failed, closes);
	}
}

/* A growing text buffer for the metrics page; on ENOMEM p becomes NULL. */
struct text {
	char *p;
	size_t n, cap;
};

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *q;
	int r;

	if (t->p == NULL && t->cap != 0)
		return;
	for (;;) {
		va_start(ap, fmt);
		r = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n :
		    0, fmt, ap);
		va_end(ap);
		if (r < 0)
			return;
		need = t->n + (size_t)r + 1;
		if (t->p != NULL && need <= t->cap) {
			t->n += (size_t)r;
			return;
		}
		t->cap = need > 2 * t->cap ? need + 4096 : 2 * t->cap;
		if ((q = realloc(t->p, t->cap)) == NULL) {
			free(t->p);
			t->p = NULL;
			return;
		}
		t->p = q;
	}
}

/* What the samples of a family are. */
enum fkind {
	F_ACTIVE, F_TOTAL, F_REFUSED, F_CLOSED, F_BYTES, F_DNS, F_STALE,
	F_CONNECT, F_UP,		/* the rest are not per listener */
	F_RELOADS, F_MAX_CONNS, F_BUFFERS, F_BUFFER_BYTES, F_RATE_EVICTED,
	F_PIPES, F_SPLICED,
	F_UPTIME, F_INFO
};

static const struct family {
	const char *name, *type, *help;
	enum fkind kind;
} families[] = {
	{ "edge_connections_active", "gauge",
	  "Connections open now (client side accepted, not yet closed).",
	  F_ACTIVE },
	{ "edge_connections_total", "counter",
	  "Connections accepted, refused ones included.", F_TOTAL },
	{ "edge_connections_refused_total", "counter",
	  "Connections refused by allow/deny, max_conns_per_ip, "
	  "max_rate_per_ip or accept_proxy_from.",
	  F_REFUSED },
	{ "edge_connections_closed_total", "counter",
	  "Connections ended after accept, by the why= of their log line.",
	  F_CLOSED },
	{ "edge_bytes_total", "counter",
	  "Bytes relayed: up is client to upstream, down the reverse.",
	  F_BYTES },
	{ "edge_dns_failures_total", "counter",
	  "Upstream lookups that failed or timed out.", F_DNS },
	{ "edge_dns_stale_total", "counter",
	  "Connections that used the last good answer (dns_stale) after a "
	  "lookup failed or timed out.", F_STALE },
	{ "edge_connect_failures_total", "counter",
	  "Upstream connect attempts that failed, one per address tried.",
	  F_CONNECT },
	{ "edge_listener_up", "gauge",
	  "1 if the listener's socket is open (0: its bind failed).", F_UP },
	{ "edge_reloads_total", "counter", "Configuration reloads (SIGHUP).",
	  F_RELOADS },
	{ "edge_max_conns", "gauge", "Connections edge will hold.",
	  F_MAX_CONNS },
	{ "edge_buffers", "gauge", "Relay buffers allocated, by size in bytes.",
	  F_BUFFERS },
	{ "edge_buffer_bytes", "gauge", "Memory held by relay buffers.",
	  F_BUFFER_BYTES },
	{ "edge_rate_evictions_total", "counter",
	  "Connect-rate buckets given to a new client while the table was "
	  "full (max_rate_per_ip).", F_RATE_EVICTED },
	{ "edge_pipes", "gauge", "Pipes of the splice relay: in use now, and "
	  "the most there may be.", F_PIPES },
	{ "edge_spliced_bytes_total", "counter", "Bytes relayed through pipes "
	  "with splice(2) (also counted in edge_bytes_total).", F_SPLICED },
	{ "edge_uptime_seconds", "gauge", "Seconds since edge started.",
	  F_UPTIME },
	{ "edge_info", "gauge", "The running version.", F_INFO },
};

/* The samples of family f for one listener's counters. */
static void
listener_samples(struct text *t, const struct family *f,
    const struct stats *st)
{
	const char *n = f->name, *l = st->name;
	int w;

	switch (f->kind) {
	case F_ACTIVE:
		text_add(t, "%s{listener=\"%s\"} %llu\n", n, l,
		    (unsigned long long)st->active);
		break;
	case F_TOTAL:
		text_add(t, "%s{listener=\"%s\"} %llu\n", n, l,
		    (unsigned long long)st->total);
		break;
	case F_REFUSED:
	case F_CLOSED:
		for (w = f->kind == F_REFUSED ? NCLOSE : 0;
		    w < (f->kind == F_REFUSED ? NWHY : NCLOSE); w++)
			text_add(t, "%s{listener=\"%s\",%s=\"%s\"} %llu\n",
			    n, l, f->kind == F_REFUSED ? "reason" : "why",
			    why_name[w], (unsigned long long)st->why[w]);
		break;
	case F_BYTES:
		text_add(t, "%s{listener=\"%s\",direction=\"up\"} %llu\n"
		    "%s{listener=\"%s\",direction=\"down\"} %llu\n", n, l,
		    (unsigned long long)st->up_bytes, n, l,
		    (unsigned long long)st->down_bytes);
		break;
	case F_DNS:
		text_add(t, "%s{listener=\"%s\"} %llu\n", n, l,
		    (unsigned long long)(st->why[W_DNS_FAILED] +
		    st->why[W_DNS_TIMEOUT]));
		break;
	case F_STALE:
		text_add(t, "%s{listener=\"%s\"} %llu\n", n, l,
		    (unsigned long long)st->stale);
		break;
	case F_CONNECT:
		text_add(t, "%s{listener=\"%s\"} %llu\n", n, l,
		    (unsigned long long)st->connect_failed);
		break;
	case F_UP:
		if (st->named)	/* a listener of the running config only */
			text_add(t, "%s{listener=\"%s\"} %d\n", n, l, st->up);
		break;
	default:
		break;
	}
}

char *
stats_metrics(const struct gauges *g, size_t *len)
{
	struct text t = { NULL, 0, 0 };
	const struct family *f;
	int64_t ms = g->now - started;
	size_t k;
	int i;

	for (k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		f = &families[k];
		text_add(&t, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
		    f->name, f->type);
		if (f->kind <= F_UP) {
			for (i = 0; i < MAX_STATS; i++)
				if (S[i].named || S[i].active > 0)
					listener_samples(&t, f, &S[i]);
			continue;
		}
		switch (f->kind) {
		case F_RELOADS:
			text_add(&t, "%s{result=\"ok\"} %llu\n"
			    "%s{result=\"failed\"} %llu\n", f->name,
			    (unsigned long long)reloads[1], f->name,
			    (unsigned long long)reloads[0]);
			break;
		case F_MAX_CONNS:
			text_add(&t, "%s %d\n", f->name, g->max_conns);
			break;
		case F_BUFFERS:
			text_add(&t, "%s{size=\"%d\"} %d\n%s{size=\"%d\"} %d\n",
			    f->name, BUF_BIG, g->big, f->name, BUF_SMALL,
			    g->small);
			break;
		case F_BUFFER_BYTES:
			text_add(&t, "%s %llu\n", f->name,
			    (unsigned long long)g->buf_bytes);
			break;
		case F_RATE_EVICTED:
			text_add(&t, "%s %llu\n", f->name,
			    (unsigned long long)g->rate_evicted);
			break;
		case F_PIPES:
			text_add(&t, "%s{state=\"busy\"} %d\n"
			    "%s{state=\"max\"} %d\n", f->name, g->pipes_busy,
			    f->name, g->pipes_cap);
			break;
		case F_SPLICED:
			text_add(&t, "%s %llu\n", f->name,
			    (unsigned long long)g->spliced);
			break;
		case F_UPTIME:
			text_add(&t, "%s %lld.%03lld\n", f->name,
			    (long long)ms / 1000, (long long)ms % 1000);
			break;
		case F_INFO:
			text_add(&t, "%s{version=\"%s\"} 1\n", f->name,
			    EDGE_VERSION);
			break;
		default:
			break;
		}
	}
	*len = t.n;
	return t.p;
}
