/* SPDX-License-Identifier: ISC */
/*
 * The log: one line per event on stderr, each written with one write(2)
 * so that lines stay whole, "edge: " first.  log_msg() formats with printf;
 * the per-connection close line is appended by hand (struct logline), as
 * it is written once per connection.  Refusals of clients before they get
 * a slot pass a limiter, so that a scan cannot flood the log: at most
 * REFUSE_LINES a second, the rest counted and reported when the second
 * ends.  The limiter's window is the only state here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge.h"

#define REFUSE_LINES	10		/* refusal log lines per second */

static int64_t rl_t;			/* refusal window start */
static int rl_n;			/* refusal lines in this window */
static uint64_t rl_dropped;		/* refusal lines not written */

static void
vlog(int witherr, const char *fmt, va_list ap)
{
	char line[LOG_MAX];
	int e = errno, n;
	size_t len;

	n = snprintf(line, sizeof(line), "edge: ");
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 64)
		n = sizeof(line) - 64;
	if (witherr)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s",
		    strerror(e));
	line[n++] = '\n';
	len = (size_t)n;
	/* One write per line keeps lines whole; a failed log is dropped. */
	if (write(STDERR_FILENO, line, len) == -1)
		(void)0;
	errno = e;
}

void
log_msg(const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(fmt);

	va_start(ap, fmt);
	vlog(n > 0 && fmt[n - 1] == ':', fmt, ap);
	va_end(ap);
}

void
log_to(int fd, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, text, (size_t)n < sizeof(text) ? (size_t)n :
	    sizeof(text) - 1) == -1)
		(void)0;
}

void
log_die(int code, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(fmt);

	va_start(ap, fmt);
	vlog(n > 0 && fmt[n - 1] == ':', fmt, ap);
	va_end(ap);
	exit(code);
}

void
log_add(struct logline *l, const char *key, const char *val)
{
	size_t k;

	for (; *key != '\0' && l->n < sizeof(l->b) - 1; l->n++)
		l->b[l->n] = *key++;
	k = strlen(val);
	if (k > sizeof(l->b) - 1 - l->n)
		k = sizeof(l->b) - 1 - l->n;
	memcpy(l->b + l->n, val, k);
	l->n += k;
}

void
log_num(struct logline *l, const char *key, uint64_t v, int width)
{
	char d[24];
	int i = (int)sizeof(d) - 1;

	d[i] = '\0';
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 || (int)sizeof(d) - 1 - i < width);
	log_add(l, key, d + i);
}

void
log_end(struct logline *l)
{
	int e = errno;

	l->b[l->n++] = '\n';
	if (write(STDERR_FILENO, l->b, l->n) == -1)
		(void)0;
	errno = e;
}

void
log_refusals_flush(int64_t now)
{
	if (rl_dropped > 0 && now - rl_t >= 1000) {
		log_msg("refused suppressed=%llu lines in %lld.%03llds (at most "
		    "%d a second)", (unsigned long long)rl_dropped,
		    (long long)(now - rl_t) / 1000,
		    (long long)(now - rl_t) % 1000, REFUSE_LINES);
		rl_dropped = 0;
	}
}

int
log_refusal(int64_t now)
{
	log_refusals_flush(now);
	if (now - rl_t >= 1000) {
		rl_t = now;
		rl_n = 0;
	}
	if (rl_n >= REFUSE_LINES) {
		rl_dropped++;
		return 0;
	}
	rl_n++;
	return 1;
}

int64_t
log_refusals_due(void)
{
	return rl_dropped > 0 ? rl_t + 1000 : INT64_MAX;
}
