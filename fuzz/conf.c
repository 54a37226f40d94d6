/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for conf_parse().  Built with clang -fsanitize=fuzzer it is
 * a libFuzzer target; linked with replay.c it replays a corpus in `make test`.  A parse must end in 0 or -1 with a message,
 * and a success must leave a configuration edge could run.
 */
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "../edge.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Is the literal target t one of cf's listen addresses? */
static int
loops_back(const struct conf *cf, const struct target *t)
{
	int j;

	for (j = 0; j < cf->nl; j++)
		if (t->literal && sa_reaches(&cf->l[j].addr, cf->l[j].dual,
		    &t->addr) == 1)
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct conf *cf;
	const struct cidr *c;
	const char *p, *q;
	union sa a;
	char err[1024];
	int i, j, rc;

	err[0] = '\0';
	cf = conf_parse((const char *)data, size, "fuzz.conf", err,
	    sizeof(err));
	rc = cf != NULL ? 0 : -1;
	if (rc == -1 && strncmp(err, "fuzz.conf:", 10) != 0)
		abort();
	if (rc == 0) {
		if (cf->nl < 1 || cf->nl > MAX_LISTENERS || cf->max_conns < 1)
			abort();
		for (i = 0; i < cf->nl; i++) {
			/* Every listener has somewhere to send a client. */
			if ((cf->l[i].up.host[0] == '\0' && cf->l[i].nr == 0) ||
			    cf->l[i].connect_ms <= 0 || cf->l[i].dns_ms <= 0 ||
			    cf->l[i].sni_ms <= 0 || cf->l[i].idle_ms < 0)
				abort();
			if (cf->l[i].r0 + cf->l[i].nr > cf->nr)
				abort();
			/* Allow and deny stay inside the table, allow first;
			 * every entry matches its own network address. */
			if (cf->l[i].c0 + cf->l[i].nc > cf->nc ||
			    cf->l[i].nallow > cf->l[i].nc || cf->l[i].max_per_ip < 0)
				abort();
			for (j = 0; j < cf->l[i].nc; j++) {
				c = &cf->c[cf->l[i].c0 + j];
				if ((c->fam != AF_INET && c->fam != AF_INET6) ||
				    c->bits > (c->fam == AF_INET ? 32 : 128) ||
				    c->deny != (j >= cf->l[i].nallow))
					abort();
				memset(&a, 0, sizeof(a));
				a.sa.sa_family = c->fam;
				if (c->fam == AF_INET)
					memcpy(&a.in.sin_addr, c->a, 4);
				else
					memcpy(&a.in6.sin6_addr, c->a, 16);
				if (conf_allowed(cf, &cf->l[i], &a) == c->deny &&
				    c->deny)
					abort();	/* a deny that lets it in */
			}
		}
		for (i = 0; i < cf->nl; i++) {
			/* A refuse line ends in its one CRLF; a rate is off
			 * or a count per second or minute. */
			p = cf->l[i].refuse;
			if (p != NULL && (strlen(p) < 2 ||
			    strcmp(p + strlen(p) - 2, "\r\n") != 0 ||
			    strchr(p, '\n') != p + strlen(p) - 1 ||
			    cf->l[i].nr > 0))
				abort();
			if (cf->l[i].rate.n < 0 || (cf->l[i].rate.per_ms != 1000 &&
			    cf->l[i].rate.per_ms != 60000) ||
			    cf->l[i].ipv6_prefix < 48 || cf->l[i].ipv6_prefix > 128)
				abort();
		}
		for (i = 0; i < cf->nfiles; i++)
			if (cf->files[i].li < 0 || cf->files[i].li >= cf->nl ||
			    cf->files[i].path[0] == '\0')
				abort();
		if (cf->drain_ms < 0 || (cf->user.set && cf->user.name[0] == '\0' &&
		    cf->user.uid <= 0))
			abort();
		for (i = 0; i < cf->nr; i++) {
			if (cf->r[i].t.host[0] == '\0' ||
			    cf->r[i].pat[0] == '\0' || cf->r[i].proxy < 0 ||
			    cf->r[i].proxy > PROXY_V2)
				abort();
			/* Protocols in wire form: non-empty, none twice. */
			for (p = cf->r[i].alpn; *p != '\0'; p += 1 +
			    (unsigned char)*p) {
				if (strlen(p + 1) + 1 < (unsigned char)*p + 1u)
					abort();
				for (q = p + 1 + (unsigned char)*p; *q != '\0';
				    q += 1 + (unsigned char)*q)
					if (*q == *p && memcmp(q + 1, p + 1,
					    (unsigned char)*p) == 0)
						abort();
			}
		}
		/* No literal target is one of the listen addresses. */
		for (i = 0; i < cf->nl; i++)
			if (loops_back(cf, &cf->l[i].up))
				abort();
		for (i = 0; i < cf->nr; i++)
			if (loops_back(cf, &cf->r[i].t))
				abort();
	}
	conf_free(cf);
	return 0;
}
