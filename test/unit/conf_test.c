/* SPDX-License-Identifier: ISC */
/*
 * Vectors for conf_parse(): the values a good file yields, and for each bad
 * file the exact message an operator reads.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../edge.h"

static int fails;

static void
check(int ok, const char *name, const char *detail)
{
	if (ok) {
		printf("ok   %s\n", name);
		return;
	}
	fails++;
	printf("FAIL %s: %s\n", name, detail);
}

/* Parse text; expect the error msg exactly, or success if msg is NULL. */
static void
bad(const char *text, const char *msg)
{
	char err[1024] = "";
	struct conf *cf = conf_parse(text, strlen(text), "edge.conf", err,
	    sizeof(err));
	int rc = cf != NULL ? 0 : -1;

	conf_free(cf);

	if (msg == NULL)
		check(rc == 0, "accepted as valid", err);
	else
		check(rc == -1 && strcmp(err, msg) == 0, msg, err);
}

/*
 * The README's key tables against the key table: under "Global keys:" and
 * "Listener keys", each key has a row (first cell naming it in backquotes)
 * whose default cell shows the table's default, and no row names a key
 * the table does not have in that scope.  "status.listen" is the one
 * global row that is not a key.
 */
static void
readme_tables(void)
{
	static char text[256 * 1024];
	const char *sect[2] = { "\nGlobal keys:", "\nListener keys" };
	const int scope[2] = { CONF_GLOBAL, CONF_LISTENER };
	const char *name, *def, *t, *end, *row, *cell2, *p, *q;
	char want[64], got[64], msg[160];
	size_t n;
	FILE *f;
	int s, i, sc, found;

	if ((f = fopen("README.md", "r")) == NULL) {
		check(0, "README.md is readable", "run from the top directory");
		return;
	}
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (s = 0; s < 2; s++) {
		if ((t = strstr(text, sect[s])) == NULL) {
			check(0, "README key table", sect[s] + 1);
			continue;
		}
		/* The table: the rows after the heading, to a blank line. */
		t = strstr(t, "\n|");
		end = t ? strstr(t + 1, "\n\n") : NULL;
		if (t == NULL || end == NULL) {
			check(0, "README key table rows", sect[s] + 1);
			continue;
		}
		for (i = 0; conf_key(i, &name, &def, &sc); i++) {
			if (!(sc & scope[s]))
				continue;
			snprintf(want, sizeof(want), "`%s`", name);
			found = 0;
			for (row = t; row != NULL && row < end;
			    row = strstr(row + 1, "\n|")) {
				cell2 = strchr(row + 2, '|');
				if (cell2 == NULL || cell2 > end)
					break;
				p = strstr(row, want);
				if (p == NULL || p > cell2)
					continue;
				found = 1;
				/* A listener row of a global key says "the
				 * global value"; else the default is shown. */
				if (def != NULL && !(s == 1 && (sc & CONF_GLOBAL))) {
					snprintf(got, sizeof(got), "`%s`", def);
					q = strchr(cell2 + 1, '|');
					p = strstr(cell2, got);
					snprintf(msg, sizeof(msg), "README: %s "
					    "shows its default %s", name, got);
					check(p != NULL && q != NULL && p < q, msg,
					    "not in its row");
				}
			}
			snprintf(msg, sizeof(msg), "README: %s has a row in "
			    "\"%s\"", name, sect[s] + 1);
			check(found, msg, "missing");
		}
		/* Every key a row names exists in this scope. */
		for (row = t; row != NULL && row < end;
		    row = strstr(row + 1, "\n|")) {
			cell2 = strchr(row + 2, '|');
			for (p = strchr(row + 2, '`'); p != NULL && cell2 &&
			    p < cell2; p = strchr(q + 1, '`')) {
				if ((q = strchr(p + 1, '`')) == NULL)
					break;
				n = (size_t)(q - p - 1);
				if (n >= sizeof(got))
					break;
				memcpy(got, p + 1, n);
				got[n] = '\0';
				found = s == 0 && strcmp(got, "status.listen") == 0;
				for (i = 0; !found && conf_key(i, &name, &def,
				    &sc); i++)
					found = (sc & scope[s]) &&
					    strcmp(name, got) == 0;
				snprintf(msg, sizeof(msg), "README: row %s is a "
				    "key in \"%s\"", got, sect[s] + 1);
				check(found, msg, "no such key");
			}
		}
	}
}

/* A list file's networks: DROP-format lines, merged ranges, their edges. */
static void
nets_vectors(void)
{
	static const char drop[] =
	    "; Spamhaus DROP List 2026/12/01\n"
	    "1.10.16.0/20 ; SBL256894\n"
	    "  10.0.0.0/9\t# two halves that merge\n"
	    "10.128.0.0/9\n"
	    "\n"
	    "192.0.2.7\r\n"
	    "192.0.2.8\n"
	    "2001:db8::/32 ; v6\n"
	    "2001:db8:ffff::/48\n"
	    "fd00::1\n";
	static const struct { const char *a; int in; } v[] = {
		{ "1.10.16.0", 1 }, { "1.10.31.255", 1 }, { "1.10.32.0", 0 },
		{ "1.10.15.255", 0 }, { "10.0.0.0", 1 }, { "10.255.255.255", 1 },
		{ "11.0.0.0", 0 }, { "192.0.2.6", 0 }, { "192.0.2.7", 1 },
		{ "192.0.2.8", 1 }, { "192.0.2.9", 0 }, { "0.0.0.0", 0 },
		{ "255.255.255.255", 0 }, { "2001:db8::", 1 },
		{ "2001:db8:ffff:ffff::1", 1 }, { "2001:db9::", 0 },
		{ "fd00::1", 1 }, { "fd00::2", 0 }, { "::", 0 },
	};
	struct nets *n = NULL;
	union sa a;
	char err[256];
	size_t i;

	check(nets_add(&n, drop, sizeof(drop) - 1, "drop.txt", err,
	    sizeof(err)) == 0, "nets: a DROP file loads", err);
	nets_done(n);
	check(nets_count(n) == 5, "nets: adjacent and overlapping networks "
	    "merge (5 ranges)", "");
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(&a, 0, sizeof(a));
		if (inet_pton(AF_INET, v[i].a, &a.in.sin_addr) == 1)
			a.sa.sa_family = AF_INET;
		else if (inet_pton(AF_INET6, v[i].a, &a.in6.sin6_addr) == 1)
			a.sa.sa_family = AF_INET6;
		check(nets_match(n, &a) == v[i].in, v[i].a,
		    v[i].in ? "should be in" : "should be out");
	}
	nets_free(n);
	n = NULL;
	check(nets_add(&n, "1.2.3.0/24\n\n5.6.7.8/33 ; x\n", 26, "drop.txt",
	    err, sizeof(err)) == -1 && strcmp(err, "drop.txt:3: \"5.6.7.8/33\" "
	    "is not an address or CIDR (e.g. 100.64.0.0/10, "
	    "fd7a:115c:a1e0::/48)") == 0, "nets: a bad line names file:line",
	    err);
	nets_free(n);
	check(nets_match(NULL, &a) == 0, "nets: none holds nothing", "");
}

#define L "smtp.listen = :2525\nsmtp.upstream = mx.example:25\n"

int
main(void)
{
	struct conf *cf;
	const struct listener *l;
	char err[1024] = "";
	const char *good =
	    "# the mail edge\n"
	    "prefer          = ipv4          # ipv4 | ipv6 | system\n"
	    "connect_timeout = 5s\n"
	    "idle_timeout    = 30m\n"
	    "max_conns       = 2048\n"
	    "upstream_host   = ${EDGE_TEST_UNSET:-stalwart.tail7b1641.ts.net}\n"
	    "\n"
	    "smtp.listen     = :25\r\n"
	    "smtp.upstream   = ${EDGE_TEST_UNSET:-stalwart.tail7b1641.ts.net}:25\n"
	    "smtp.proxy      = v2\n"
	    "smtp.idle_timeout = 10m\n"
	    "imaps.listen    = 127.0.0.1:993\n"
	    "imaps.upstream  = :993\n"
	    "imaps.proxy     = v1\n"
	    "imaps.prefer    = system\n"
	    "web.listen      = [::1]:443\n"
	    "web.upstream    = [2001:db8::1]:8443\n"
	    "web.connect_timeout = 250ms\n"
	    "x.listen = 0.0.0.0:26\nx.upstream = 10.0.0.1:1 # a comment\n";

	unsetenv("EDGE_TEST_UNSET");
	setenv("EDGE_TEST_EMPTY", "", 1);
	setenv("EDGE_TEST_HOST", "mail.example", 1);
	if ((cf = conf_parse(good, strlen(good), "edge.conf", err,
	    sizeof(err))) == NULL) {
		printf("FAIL good config: %s\n", err);
		return 1;
	}
	check(cf->nl == 4 && cf->max_conns == 2048, "four listeners, max_conns", "");
	check(cf->l[0].stale_ms == 3600000 && cf->l[0].accept_proxy_ms == 5000 &&
	    cf->l[0].ipv6_prefix == 64,
	    "dns_stale 1h, accept_proxy_timeout 5s, ipv6_prefix 64 by default",
	    "");
	l = &cf->l[0];
	check(strcmp(l->name, "smtp") == 0 && l->dual &&
	    strcmp(l->up.host, "stalwart.tail7b1641.ts.net") == 0 &&
	    strcmp(l->up.port, "25") == 0 && l->proxy == PROXY_V2 &&
	    l->idle_ms == 600000 && l->connect_ms == 5000 &&
	    l->prefer == PREFER_IPV4 && !l->up.literal,
	    "smtp: default expanded, idle overridden", l->up.host);
	l = &cf->l[1];
	check(strcmp(l->up.host, "stalwart.tail7b1641.ts.net") == 0 &&
	    strcmp(l->up.port, "993") == 0 && l->proxy == PROXY_V1 &&
	    l->prefer == PREFER_SYSTEM && l->idle_ms == 1800000 && !l->dual,
	    "imaps: upstream_host used for :993", l->up.host);
	l = &cf->l[2];
	check(strcmp(l->up.host, "2001:db8::1") == 0 && l->up.literal &&
	    l->up.addr.sa.sa_family == AF_INET6 && l->connect_ms == 250 &&
	    l->proxy == PROXY_OFF && l->addr.sa.sa_family == AF_INET6,
	    "web: IPv6 literal upstream, proxy off by default", l->up.host);
	l = &cf->l[3];
	check(strcmp(l->up.port, "1") == 0 && l->up.literal,
	    "'#' after a blank starts a comment", l->up.port);
	bad(L "x.listen = :1\nx.upstream = 10.0.0.1:1#x\n", "edge.conf:4: "
	    "x.upstream: \"1#x\" is not a port (1-65535)");

	/* Each error names file:line, the key and the problem. */
	bad(L "smtp.idle_timeout = 30x\n", "edge.conf:3: smtp.idle_timeout: "
	    "\"30x\" is not a duration (e.g. 30m, 1800s, 500ms; at most 7 days)");
	bad(L "connect_timeout = 0\n", "edge.conf:3: connect_timeout: \"0\" "
	    "must be more than 0");
	bad(L "idle_timeout = 0\n", NULL);
	bad(L "idle_timeout = 8d\n", "edge.conf:3: idle_timeout: \"8d\" is "
	    "not a duration (e.g. 30m, 1800s, 500ms; at most 7 days)");
	bad(L "smtp.lisen = :25\n", "edge.conf:3: smtp.lisen: unknown listener "
	    "key (known: listen, upstream, sni, proxy, prefer, "
	    "connect_timeout, dns_timeout, idle_timeout, sni_timeout, allow, deny, "
	    "max_conns_per_ip, accept_proxy, accept_proxy_from, "
	    "accept_proxy_timeout, dns_stale, ipv6_prefix, refuse, "
	    "max_rate_per_ip, deny_file, allow_file, socket_buffer)");
	bad(L "smtp.max_conns = 5\n", "edge.conf:3: smtp.max_conns: unknown "
	    "listener key (known: listen, upstream, sni, proxy, prefer, "
	    "connect_timeout, dns_timeout, idle_timeout, sni_timeout, allow, deny, "
	    "max_conns_per_ip, accept_proxy, accept_proxy_from, "
	    "accept_proxy_timeout, dns_stale, ipv6_prefix, refuse, "
	    "max_rate_per_ip, deny_file, allow_file, socket_buffer)");
	bad(L "colour = blue\n", "edge.conf:3: colour: unknown key (known: "
	    "prefer, connect_timeout, dns_timeout, idle_timeout, sni_timeout, "
	    "max_conns, upstream_host, drain_timeout, user, "
	    "accept_proxy_timeout, dns_stale, ipv6_prefix, upgrade_timeout, splice, "
	    "socket_buffer)");
	bad(L "smtp.proxy = v2\nsmtp.proxy = v1\n", "edge.conf:4: smtp.proxy: "
	    "already set on line 3");
	bad(L "max_conns = 1\nmax_conns = 1\n", "edge.conf:4: max_conns: "
	    "already set on line 3");
	bad(L "max_conns = 0\n", "edge.conf:3: max_conns: \"0\" is not a "
	    "number from 1 to 1000000");
	bad("smtp.listen = :99999\n", "edge.conf:1: smtp.listen: \"99999\" is "
	    "not a port (0-65535)");
	bad("smtp.listen = :25x\n", "edge.conf:1: smtp.listen: \"25x\" is "
	    "not a port (0-65535)");
	bad("smtp.listen = 25\n", "edge.conf:1: smtp.listen: \"25\" is not an "
	    "address (use :PORT, IPv4:PORT or [IPv6]:PORT)");
	bad("smtp.listen = ::1:25\n", "edge.conf:1: smtp.listen: \"::1:25\" is "
	    "not an address (use :PORT, IPv4:PORT or [IPv6]:PORT)");
	bad("smtp.listen = mail.example:25\n", "edge.conf:1: smtp.listen: "
	    "\"mail.example:25\" is not an address (use :PORT, IPv4:PORT or "
	    "[IPv6]:PORT)");
	bad("smtp.listen = :25\nsmtp.upstream = mx:0\n", "edge.conf:2: "
	    "smtp.upstream: \"0\" is not a port (1-65535)");
	bad("smtp.listen = :25\nsmtp.upstream = mx\n", "edge.conf:2: "
	    "smtp.upstream: \"mx\" is not HOST:PORT (or :PORT with "
	    "upstream_host)");
	bad("smtp.listen = :25\nsmtp.upstream = m x:25\n", "edge.conf:2: "
	    "smtp.upstream: \"m x\" is not a host name or IP address");
	bad("smtp.listen = :25\nsmtp.upstream = :25\n", "edge.conf:2: "
	    "smtp.upstream: \":25\" names no host and upstream_host is not set");
	bad("smtp.listen = :25\n\nsmtp.proxy = v2\n", "edge.conf:1: "
	    "smtp.upstream: not set (a listener needs listen and upstream, "
	    "or sni routes)");
	bad("smtp.upstream = mx:25\n", "edge.conf:1: smtp.listen: not set "
	    "(a listener needs listen and upstream)");
	bad(L "smtp.proxy = v3\n", "edge.conf:3: smtp.proxy: \"v3\" is not one "
	    "of v2, v1, off");
	bad(L "prefer = ipv5\n", "edge.conf:3: prefer: \"ipv5\" is not one of "
	    "ipv4, ipv6, system");
	bad(L "sub.listen = 0.0.0.0:2525\nsub.upstream = mx:587\n",
	    "edge.conf:3: sub.listen: \"0.0.0.0:2525\" is already used by "
	    "smtp (line 1)");
	bad("a.listen = 127.0.0.1:25\na.upstream = mx:25\n"
	    "b.listen = 127.0.0.1:25\nb.upstream = mx:25\n",
	    "edge.conf:3: b.listen: \"127.0.0.1:25\" is already used by a "
	    "(line 1)");
	bad("a.listen = 127.0.0.1:25\na.upstream = mx:25\n"
	    "b.listen = 127.0.0.2:25\nb.upstream = mx:25\n"
	    "c.listen = [::1]:25\nc.upstream = mx:25\n"
	    "d.listen = 127.0.0.1:0\nd.upstream = mx:25\n"
	    "e.listen = 127.0.0.1:0\ne.upstream = mx:25\n", NULL);
	bad(L "smtp.upstream2 = x\n", "edge.conf:3: smtp.upstream2: unknown "
	    "listener key (known: listen, upstream, sni, proxy, prefer, "
	    "connect_timeout, dns_timeout, idle_timeout, sni_timeout, allow, deny, "
	    "max_conns_per_ip, accept_proxy, accept_proxy_from, "
	    "accept_proxy_timeout, dns_stale, ipv6_prefix, refuse, "
	    "max_rate_per_ip, deny_file, allow_file, socket_buffer)");
	bad(L "sm tp.listen = :1\n", "edge.conf:3: sm tp.listen: bad listener "
	    "name (letters, digits, '_' and '-', at most 31)");
	bad(L "just words\n", "edge.conf:3: \"just words\": expected key = "
	    "value");
	bad(L "= 5\n", "edge.conf:3: \"= 5\": missing key");
	bad(L "upstream_host = ${EDGE_TEST_UNSET}\n", "edge.conf:3: "
	    "upstream_host: ${EDGE_TEST_UNSET} is not set (write "
	    "${EDGE_TEST_UNSET:-default} to give a default)");
	bad(L "upstream_host = ${EDGE_TEST_HOST\n", "edge.conf:3: "
	    "upstream_host: unterminated or malformed \"${EDGE_TEST_HOST\"");
	bad(L "upstream_host = ${EDGE_TEST_HOST:-x\n", "edge.conf:3: "
	    "upstream_host: unterminated \"${EDGE_TEST_HOST:-\"");
	bad(L "upstream_host = ${1X}\n", "edge.conf:3: upstream_host: bad "
	    "variable name after \"${\" in \"${1X}\"");
	bad(L "upstream_host = ${EDGE_TEST_EMPTY}\n", "edge.conf:3: "
	    "upstream_host: empty value");
	bad(L "upstream_host = ${EDGE_TEST_EMPTY:-fallback.example}\n", NULL);
	bad(L "upstream_host = ${EDGE_TEST_HOST:-fallback.example}\n", NULL);
	bad(L "upstream_host = $HOME\n", "edge.conf:3: upstream_host: \"$HOME\" "
	    "is not a host name or IP address");
	bad("# nothing here\n", "edge.conf:1: no listener is defined (e.g. "
	    "smtp.listen = :25 and smtp.upstream = HOST:25)");
	check(conf_parse(L "x\0 = 1\n", sizeof(L) + 6, "edge.conf", err,
	    sizeof(err)) == NULL && strcmp(err, "edge.conf:3: line holds a NUL "
	    "byte") == 0, "a NUL byte is refused", err);

	/* SNI routes: the issue's syntax, file order, matching rules. */
	setenv("STALWART", "stalwart.tail7b1641.ts.net", 1);
	{
		const char *web =
		    "web.listen   = :443\n"
		    "web.sni      = mta-sts.*       ${STALWART}:443    # c\n"
		    "web.sni      = autoconfig.*    ${STALWART}:443\n"
		    "web.sni      = autodiscover.*  ${STALWART}:443\n"
		    "web.sni      = *.example.net   10.0.0.7:443\n"
		    "web.sni      = Exact.Example.ORG. 127.0.0.1:9443\n"
		    "web.upstream = 127.0.0.1:8443\n"
		    "web.proxy    = off\n"
		    "web.sni_timeout = 5s\n"
		    "strict.listen = 127.0.0.1:4443\n"
		    "strict.sni = *.example.net 10.0.0.8:443\n"
		    "upstream_host = mx.example\n"
		    "strict.sni = a.example.com :8443\n";
		static const struct { const char *name, *want; } m[] = {
			{ "mta-sts.example.com", "mta-sts.*" },
			{ "mta-sts.a.b.example", "mta-sts.*" },
			{ "mta-sts", NULL },
			{ "xmta-sts.example.com", NULL },
			{ "autodiscover.example.org", "autodiscover.*" },
			{ "www.example.net", "*.example.net" },
			{ "a.b.example.net", "*.example.net" },
			{ "example.net", NULL },
			{ "xexample.net", NULL },
			{ "exact.example.org", "Exact.Example.ORG." },
			{ "www.exact.example.org", NULL },
			{ "mta-sts.example.net", "mta-sts.*" },	/* first wins */
		};
		const struct route *r;
		size_t i;

		conf_free(cf);
		if ((cf = conf_parse(web, strlen(web), "edge.conf", err,
	    sizeof(err))) == NULL) {
			printf("FAIL sni config: %s\n", err);
			return 1;
		}
		check(cf->nl == 2 && cf->l[0].nr == 5 && cf->l[1].nr == 2 &&
		    cf->l[0].sni_ms == 5000 && cf->l[1].up.host[0] == '\0',
		    "sni: five routes, a strict listener without upstream", "");
		check(strcmp(cf->r[0].t.host, "stalwart.tail7b1641.ts.net") == 0 &&
		    strcmp(cf->r[0].t.port, "443") == 0 && cf->r[3].t.literal,
		    "sni: ${STALWART}:443 expanded, literal route", "");
		check(strcmp(cf->r[cf->l[1].r0 + 1].t.host, "mx.example") == 0,
		    "sni: a :PORT route takes upstream_host", "");
		for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			r = conf_route(cf, &cf->l[0], m[i].name, NULL, 0);
			check(m[i].want == NULL ? r == NULL : r != NULL &&
			    strcmp(r->text, m[i].want) == 0, m[i].name,
			    r ? r->text : "(none)");
		}
	}
	bad("web.listen = :443\nweb.sni = mta*.x 1.2.3.4:443\n", "edge.conf:2: "
	    "web.sni: \"mta*.x\" is not a pattern (use name, *.suffix or "
	    "prefix.*, then HOST:PORT)");
	bad("web.listen = :443\nweb.sni = a..example 1.2.3.4:443\n",
	    "edge.conf:2: web.sni: \"a..example\" is not a pattern (use name, "
	    "*.suffix or prefix.*, then HOST:PORT)");
	bad("smtp.listen = :25\nsmtp.upstream = mx..example:25\n", "edge.conf:2: "
	    "smtp.upstream: \"mx..example\" is not a host name or IP address");
	bad("web.listen = :443\nweb.sni = a.b.* 1.2.3.4:443\n", "edge.conf:2: "
	    "web.sni: \"a.b.*\": a prefix pattern is one label, then .*");
	bad("web.listen = :443\nweb.sni = *.* 1.2.3.4:443\n", "edge.conf:2: "
	    "web.sni: \"*.*\" is not a pattern (use name, *.suffix or "
	    "prefix.*, then HOST:PORT)");
	bad("web.listen = :443\nweb.sni = mail.example\n", "edge.conf:2: "
	    "web.sni: \"mail.example\" is not PATTERN HOST:PORT (use name, "
	    "*.suffix or prefix.*, then HOST:PORT)");
	bad("web.listen = :443\nweb.sni = mail.example mx\n", "edge.conf:2: "
	    "web.sni: \"mx\" is not HOST:PORT (or :PORT with upstream_host)");
	bad("web.listen = :443\nweb.sni = mail.example :443\n", "edge.conf:2: "
	    "web.sni: \":443\" names no host and upstream_host is not set");
	bad("web.listen = :443\nweb.sni_timeout = soon\nweb.upstream = a:1\n",
	    "edge.conf:2: web.sni_timeout: \"soon\" is not a duration (e.g. "
	    "30m, 1800s, 500ms; at most 7 days)");

	/* Day-to-day keys: drain, user, status, allow/deny, per-IP cap. */
	{
		const char *ops =
		    "drain_timeout = 3s\n"
		    "user = 65534:65533\n"
		    "status.listen = 127.0.0.1:9901\n"
		    "sub.listen = :587\n"
		    "sub.upstream = mx:587\n"
		    "sub.allow = 100.64.0.0/10 fd7a:115c:a1e0::/48\n"
		    "sub.deny = 100.64.0.9\n"
		    "sub.allow = 127.0.0.0/8\n"
		    "sub.max_conns_per_ip = 3\n"
		    "smtp.listen = :25\n"
		    "smtp.upstream = mx:25\n"
		    "smtp.deny = 192.0.2.0/24 2001:db8::/32\n";
		static const struct { const char *a; int l, ok; } acl[] = {
			{ "100.64.0.1", 0, 1 }, { "100.127.255.255", 0, 1 },
			{ "100.128.0.0", 0, 0 }, { "100.64.0.9", 0, 0 },
			{ "127.0.0.2", 0, 1 }, { "10.0.0.1", 0, 0 },
			{ "fd7a:115c:a1e0::5", 0, 1 }, { "fd7a:115c:a1e1::", 0, 0 },
			{ "::1", 0, 0 },
			{ "192.0.2.77", 1, 0 }, { "192.0.3.1", 1, 1 },
			{ "2001:db8:1::1", 1, 0 }, { "2001:db9::1", 1, 1 },
		};
		union sa a;
		size_t i;

		conf_free(cf);
		if ((cf = conf_parse(ops, strlen(ops), "edge.conf", err,
	    sizeof(err))) == NULL) {
			printf("FAIL ops config: %s\n", err);
			return 1;
		}
		check(cf->drain_ms == 3000 && cf->user.set && cf->user.uid ==
		    65534 && cf->user.gid == 65533 && cf->user.name[0] == '\0',
		    "drain_timeout, numeric user:group", "");
		check(cf->status && cf->nl == 2 &&
		    cf->status_addr.in.sin_port == htons(9901),
		    "status.listen is not a listener", "");
		check(cf->l[0].nc == 4 && cf->l[0].nallow == 3 &&
		    cf->l[0].max_per_ip == 3 && cf->l[1].nc == 2 &&
		    cf->l[1].nallow == 0 && cf->l[1].max_per_ip == 0,
		    "allow and deny lists, max_conns_per_ip", "");
		for (i = 0; i < sizeof(acl) / sizeof(acl[0]); i++) {
			memset(&a, 0, sizeof(a));
			if (inet_pton(AF_INET, acl[i].a, &a.in.sin_addr) == 1)
				a.sa.sa_family = AF_INET;
			else if (inet_pton(AF_INET6, acl[i].a,
			    &a.in6.sin6_addr) == 1)
				a.sa.sa_family = AF_INET6;
			check(conf_allowed(cf, &cf->l[acl[i].l], &a) ==
			    acl[i].ok, acl[i].a, acl[i].ok ? "should pass" :
			    "should be refused");
		}
	}
	conf_free(cf);
	bad(L "drain_timeout = 0\n", NULL);
	bad(L "dns_stale = 0\nsmtp.dns_stale = 10m\n", NULL);
	bad(L "ipv6_prefix = 48\nsmtp.ipv6_prefix = 128\n", NULL);
	bad(L "smtp.max_rate_per_ip = 20/m\n", NULL);
	bad(L "smtp.max_rate_per_ip = 0\n", NULL);
	bad(L "smtp.max_rate_per_ip = 20/h\n", "edge.conf:3: smtp.max_rate_per_ip: "
	    "\"20/h\" is not a rate (N/s or N/m, e.g. 20/m; 0 for none)");
	bad(L "socket_buffer = 256k\nsmtp.socket_buffer = auto\n", NULL);
	bad(L "socket_buffer = 1m\n", NULL);
	bad(L "smtp.socket_buffer = 65536\n", NULL);
	bad(L "socket_buffer = 2k\n", "edge.conf:3: socket_buffer: \"2k\" is "
	    "not auto or a size from 4k to 64m (e.g. 256k)");
	bad(L "smtp.socket_buffer = 65m\n", "edge.conf:3: smtp.socket_buffer: "
	    "\"65m\" is not auto or a size from 4k to 64m (e.g. 256k)");
	bad(L "socket_buffer = 256kb\n", "edge.conf:3: socket_buffer: "
	    "\"256kb\" is not auto or a size from 4k to 64m (e.g. 256k)");
	bad(L "smtp.max_rate_per_ip = 0/s\n", "edge.conf:3: smtp.max_rate_per_ip: "
	    "\"0/s\" is not a rate (N/s or N/m, e.g. 20/m; 0 for none)");
	bad(L "smtp.refuse = 421 4.7.0 Too many connections, try again later\n",
	    NULL);
	bad(L "refuse = 421 x\n", "edge.conf:3: refuse: unknown key (known: "
	    "prefer, connect_timeout, dns_timeout, idle_timeout, sni_timeout, "
	    "max_conns, upstream_host, drain_timeout, user, "
	    "accept_proxy_timeout, dns_stale, ipv6_prefix, upgrade_timeout, splice, "
	    "socket_buffer)");
	bad("web.listen = :443\nweb.sni = a.example 10.0.0.1:443\n"
	    "web.refuse = 421 x\n", "edge.conf:3: web.refuse: not on a listener "
	    "with sni routes: a TLS client cannot read it");
	bad(L "ipv6_prefix = 47\n", "edge.conf:3: ipv6_prefix: \"47\" is not a "
	    "number from 48 to 128");
	bad(L "smtp.ipv6_prefix = 129\n", "edge.conf:3: smtp.ipv6_prefix: \"129\" "
	    "is not a number from 48 to 128");
	bad(L "smtp.dns_stale = soon\n", "edge.conf:3: smtp.dns_stale: \"soon\" "
	    "is not a duration (e.g. 30m, 1800s, 500ms; at most 7 days)");
	bad(L "user = nobody\n", NULL);
	bad(L "user = 0\n", "edge.conf:3: user: \"0\" is root; leave user "
	    "unset to keep running as root");
	bad(L "user = 1000:x\n", "edge.conf:3: user: \"1000:x\" is not a user "
	    "name, UID or UID:GID");
	bad(L "user = no body\n", "edge.conf:3: user: \"no body\" is not a "
	    "user name, UID or UID:GID");
	bad(L "smtp.allow = 10.0.0.1/8\n", "edge.conf:3: smtp.allow: "
	    "\"10.0.0.1/8\" has bits set past /8 (the network is written "
	    "with them zero)");
	bad(L "smtp.deny = 10.0.0.0/33\n", "edge.conf:3: smtp.deny: "
	    "\"10.0.0.0/33\" is not an address or CIDR (e.g. 100.64.0.0/10, "
	    "fd7a:115c:a1e0::/48)");
	bad(L "smtp.deny = 10.0.0.0/8 mail.example\n", "edge.conf:3: "
	    "smtp.deny: \"mail.example\" is not an address or CIDR (e.g. "
	    "100.64.0.0/10, fd7a:115c:a1e0::/48)");
	bad(L "smtp.allow = ::/0\nsmtp.allow = 0.0.0.0/0\n", NULL);
	bad(L "smtp.max_conns_per_ip = -1\n", "edge.conf:3: "
	    "smtp.max_conns_per_ip: \"-1\" is not a number from 0 to 1000000");
	bad(L "smtp.max_conns_per_ip = 0\n", NULL);
	bad(L "status.upstream = x:1\n", "edge.conf:3: status.upstream: "
	    "unknown key (\"status\" is reserved for the status endpoint; "
	    "its one key is status.listen)");
	bad(L "status.listen = 127.0.0.1:2525\n", "edge.conf:3: status.listen: "
	    "\"127.0.0.1:2525\" is already used by smtp (line 1)");
	bad(L "status.listen = 127.0.0.1:1\nstatus.listen = 127.0.0.1:2\n",
	    "edge.conf:4: status.listen: already set on line 3");
	bad("status.listen = 127.0.0.1:9901\n", "edge.conf:1: no listener is "
	    "defined (e.g. smtp.listen = :25 and smtp.upstream = HOST:25)");

	/* Routes with a PROXY header and protocols of their own. */
	{
		const char *web =
		    "web.proxy = off\n"
		    "web.listen = :443\n"
		    "web.sni   = mta-sts.*  ${STALWART}:443 proxy=v2\n"
		    "web.sni   = *.example.net 10.0.0.7:443 proxy=v1\n"
		    "web.upstream = 127.0.0.1:8443\n"
		    "web.sni = mail.example.com ${STALWART}:443 alpn=acme-tls/1 "
		    "proxy=off\n"
		    "web.sni = *.example.com    127.0.0.1:8443 alpn=h2,http/1.1\n"
		    "pp.listen = :8444\npp.proxy = v2\n"
		    "pp.sni = a.example 10.0.0.9:443\npp.upstream = 10.0.0.9:1\n";
		static const unsigned char h2[] = "\x02h2",
		    acme[] = "\x0a" "acme-tls/1", other[] = "\x03" "foo\x02h3";
		const struct route *r;

		if ((cf = conf_parse(web, strlen(web), "edge.conf", err,
		    sizeof(err))) == NULL) {
			printf("FAIL route options: %s\n", err);
			return 1;
		}
		check(cf->r[0].proxy == PROXY_V2 && cf->r[1].proxy == PROXY_V1 &&
		    cf->r[2].proxy == PROXY_OFF && cf->r[3].proxy == PROXY_OFF &&
		    cf->l[0].proxy == PROXY_OFF && cf->l[0].any_proxy &&
		    cf->r[cf->l[1].r0].proxy == PROXY_V2,
		    "proxy= per route; a route without it takes the listener's",
		    "");
		check(strcmp(cf->r[2].alpn, "\x0a" "acme-tls/1") == 0 &&
		    strcmp(cf->r[3].alpn, "\x02h2\x08http/1.1") == 0 &&
		    cf->r[0].alpn[0] == '\0', "alpn= in wire form", "");
		r = conf_route(cf, &cf->l[0], "mail.example.com", acme,
		    sizeof(acme) - 1);
		check(r == &cf->r[2], "name and acme-tls/1: the ACME route", "");
		r = conf_route(cf, &cf->l[0], "mail.example.com", h2,
		    sizeof(h2) - 1);
		check(r == &cf->r[3], "name and h2: the next route that takes it",
		    "");
		r = conf_route(cf, &cf->l[0], "mail.example.com", other,
		    sizeof(other) - 1);
		check(r == NULL, "name, no listed protocol: no route", "");
		r = conf_route(cf, &cf->l[0], "mta-sts.example.org", other,
		    sizeof(other) - 1);
		check(r == &cf->r[0], "a route without alpn= takes any", "");
		conf_free(cf);
	}
	bad("web.listen = :443\nweb.sni = a.example x:443 proxy=v3\n",
	    "edge.conf:2: web.sni: \"proxy=v3\": \"v3\" is not one of v2, v1, "
	    "off");
	bad("web.listen = :443\nweb.sni = a.example x:443 colour=red\n",
	    "edge.conf:2: web.sni: \"colour=red\": unknown or repeated option "
	    "(known: proxy=v2|v1|off, alpn=NAME[,NAME...])");
	bad("web.listen = :443\nweb.sni = a.example x:443 proxy=v1 proxy=v2\n",
	    "edge.conf:2: web.sni: \"proxy=v2\": unknown or repeated option "
	    "(known: proxy=v2|v1|off, alpn=NAME[,NAME...])");
	bad("web.listen = :443\nweb.sni = a.example x:443 alpn=\n",
	    "edge.conf:2: web.sni: \"\": a protocol name is 1 to 255 bytes "
	    "(e.g. alpn=h2,http/1.1)");
	bad("web.listen = :443\nweb.sni = a.example x:443 alpn=h2,,x\n",
	    "edge.conf:2: web.sni: \"h2,,x\": a protocol name is 1 to 255 "
	    "bytes (e.g. alpn=h2,http/1.1)");
	bad("web.listen = :443\nweb.sni = a.example x:443 alpn=h2,h2\n",
	    "edge.conf:2: web.sni: \"h2,h2\": h2 is listed twice");

	/* Accepting PROXY: the issue's syntax, and never from anyone. */
	{
		const char *lb =
		    "lb.listen             = :25\n"
		    "lb.accept_proxy       = v2            # v2, v1, any, off\n"
		    "lb.accept_proxy_from  = 10.0.0.0/8 192.0.2.10\n"
		    "accept_proxy_timeout  = 5s\n"
		    "lb.upstream           = mx.example:25\n"
		    "lb.proxy              = v2\n"
		    "any.listen = 127.0.0.1:26\nany.upstream = mx.example:25\n"
		    "any.accept_proxy = any\nany.accept_proxy_from = ::1\n"
		    "any.accept_proxy_from = 127.0.0.1\n"
		    "any.accept_proxy_timeout = 250ms\n"
		    "any.allow = 127.0.0.2\n";
		union sa a;

		if ((cf = conf_parse(lb, strlen(lb), "edge.conf", err,
		    sizeof(err))) == NULL) {
			printf("FAIL accept_proxy config: %s\n", err);
			return 1;
		}
		check(cf->l[0].accept_proxy == PP_ACCEPT_V2 &&
		    cf->l[0].nt == 2 && cf->l[0].accept_proxy_ms == 5000 &&
		    cf->l[1].accept_proxy == (PP_ACCEPT_V1 | PP_ACCEPT_V2) &&
		    cf->l[1].nt == 2 && cf->l[1].accept_proxy_ms == 250 &&
		    cf->l[1].nc == 1 && cf->l[1].nallow == 1,
		    "accept_proxy, accept_proxy_from, accept_proxy_timeout", "");
		memset(&a, 0, sizeof(a));
		a.sa.sa_family = AF_INET;
		inet_pton(AF_INET, "10.9.8.7", &a.in.sin_addr);
		check(conf_trusted(cf, &cf->l[0], &a) &&
		    !conf_trusted(cf, &cf->l[1], &a) &&
		    !conf_allowed(cf, &cf->l[1], &a),
		    "accept_proxy_from is not allow", "");
		conf_free(cf);
	}
	bad("lb.listen = :25\nlb.upstream = mx:25\nlb.accept_proxy = v2\n",
	    "edge.conf:3: lb.accept_proxy: on, but lb.accept_proxy_from is not "
	    "set (edge reads a PROXY header only from the balancers it names)");
	bad("lb.listen = :25\nlb.upstream = mx:25\n"
	    "lb.accept_proxy_from = 10.0.0.0/8\n", "edge.conf:3: "
	    "lb.accept_proxy_from: set, but lb.accept_proxy is off");
	bad("lb.listen = :25\nlb.upstream = mx:25\nlb.accept_proxy = v3\n",
	    "edge.conf:3: lb.accept_proxy: \"v3\" is not one of v2, v1, any, off");
	bad("lb.listen = :25\nlb.upstream = mx:25\nlb.accept_proxy = v1\n"
	    "lb.accept_proxy_from = 10.0.0.1/8\n", "edge.conf:4: "
	    "lb.accept_proxy_from: \"10.0.0.1/8\" has bits set past /8 (the "
	    "network is written with them zero)");
	bad("accept_proxy = v2\n", "edge.conf:1: accept_proxy: unknown key "
	    "(known: prefer, connect_timeout, dns_timeout, idle_timeout, "
	    "sni_timeout, max_conns, upstream_host, drain_timeout, user, "
	    "accept_proxy_timeout, dns_stale, ipv6_prefix, upgrade_timeout, splice, "
	    "socket_buffer)");

	nets_vectors();
	readme_tables();

	printf("%s: %d failed\n", __FILE__, fails);
	return fails != 0;
}
