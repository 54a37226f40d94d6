/* SPDX-License-Identifier: ISC */
/*
 * edge: a small layer-4 proxy for mail ports.  This header holds the types
 * the files share and what each file exports, one section per file, from
 * the bottom layer up.  The layers, top first (a file calls only files on
 * lower lines; `make check-layers` proves it from the objects' symbols):
 *
 *   edge.c                       the process: main, start-up, signals,
 *                                reload, drain
 *   status.c  poll.c             the status endpoint; the pollset
 *   conn.c                       connection slots and their whole life
 *   listen.c                     listening sockets across reloads
 *   stats.c iptab.c buf.c resolve.c
 *                                counters; per-IP counts; relay buffers;
 *                                name lookups on threads
 *   sys.c  log.c                 socket helpers and the clock; the log
 *   conf.c proxyv2.c sni.c       parsers of the config, PROXY headers and
 *                                the ClientHello: pure
 *   nets.c                       sets of networks from list files: pure
 *   val.c                        the config's typed values: pure
 *   addr.c                       addresses and networks: pure
 *
 * Each file keeps its state in its own statics; the only way in is its
 * functions.  Every exported name carries its file's prefix: the file's
 * name and "_" (conn_step, buf_get), except proxyv2.c (pp_, pp1_, pp2_) and
 * addr.c (sa_ for socket addresses, cidr_ for networks).
 */
#ifndef EDGE_H
#define EDGE_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EDGE_VERSION	"0.1.0"
#define MAX_LISTENERS	64
#define MAX_ROUTES	256
#define MAX_CIDRS	1024
#define NAME_MAX_LEN	32	/* listener name, with its NUL */
#define HOST_MAX_LEN	256	/* DNS name or literal, with its NUL */
#define MAX_ADDRS	16	/* addresses kept from one lookup */

/* An IPv4 or IPv6 socket address, without sockaddr_storage's 128 bytes. */
union sa {
	struct sockaddr		sa;
	struct sockaddr_in	in;
	struct sockaddr_in6	in6;
};

/*
 * An allow or deny entry: the first `bits` bits of a[] (4 bytes used for
 * AF_INET, 16 for AF_INET6).  Host bits past the prefix are zero.
 */
struct cidr {
	unsigned char fam;		/* AF_INET or AF_INET6 */
	unsigned char bits;
	unsigned char deny;		/* 1: deny, 0: allow */
	unsigned char a[16];
};

/*
 * addr.c: socket addresses and networks, pure.
 * sa_len(a): the length to pass to bind/connect for a.
 * sa_bytes(a, &n): the address bytes (n = 4 for IPv4, 16 for IPv6).
 * sa_port(a): the port, host order.  sa_equal(a, b): same family and bytes.
 * sa_is_any(a): 0.0.0.0 or ::.  sa_is_loopback(a): 127/8 or ::1.
 * sa_unmap(a): rewrite a v4-mapped IPv6 address (::ffff:a.b.c.d) in place
 * as the IPv4 address it carries.
 * sa_prefix(a, bits): an IPv6 address cut to its /bits network (bits past
 * it zeroed); IPv4 stays as it is.
 * sa_hash(b, n, seed): a hash of n bytes, keyed by seed.
 * sa_literal(s, port, a): fill a from the IP literal s (no brackets) and
 * the decimal port; -1 if s is not a literal.
 * sa_split(s, host, hostsz, &port): split "host:port", "[v6]:port" or
 * ":port" into host (brackets removed) and the port text; -1 if the shape
 * is wrong or host does not fit.
 * sa_fmt(a, buf, n): "1.2.3.4:25" or "[2001:db8::1]:25" in buf; returns
 * buf.  SA_FMT_LEN bytes always suffice.
 * sa_reaches(l, dual, a): would a connection to a land on the socket
 * listening on l (dual: a ":PORT" socket, taking IPv4 too)?  1: yes, it is
 * that address, or l is a wildcard on a's port and a is loopback or
 * unspecified.  -1: only if a is an address of this host (l is a wildcard
 * on a's port); the caller decides.  0: no.
 * cidr_parse(s, c): "100.64.0.0/10", "fd7a::/48", or an address alone.
 * CIDR_HOST_BITS: bits set past the prefix (c->bits says where).
 * cidr_match(c, a): is a (unmapped) inside c?
 */
#define SA_FMT_LEN	56
enum cidr_res { CIDR_OK, CIDR_BAD, CIDR_HOST_BITS };
socklen_t sa_len(const union sa *a);
const unsigned char *sa_bytes(const union sa *a, size_t *n);
int sa_port(const union sa *a);
int sa_equal(const union sa *a, const union sa *b);
int sa_is_any(const union sa *a);
int sa_is_loopback(const union sa *a);
void sa_unmap(union sa *a);
void sa_prefix(union sa *a, int bits);
uint32_t sa_hash(const unsigned char *b, size_t n, uint32_t seed);
int sa_literal(const char *s, const char *port, union sa *a);
int sa_split(const char *s, char *host, size_t hostsz, const char **port);
char *sa_fmt(const union sa *a, char *buf, size_t n);
int sa_reaches(const union sa *l, int dual, const union sa *a);
enum cidr_res cidr_parse(const char *s, struct cidr *c);
int cidr_match(const struct cidr *c, const union sa *a);

enum prefer { PREFER_IPV4, PREFER_IPV6, PREFER_SYSTEM };
enum proxy_mode { PROXY_OFF, PROXY_V1, PROXY_V2 };

/* Where to connect: a name resolved per connection, or an IP literal. */
struct target {
	const char *host;		/* name or literal; "" for none */
	char port[6];			/* decimal */
	int literal;			/* host is an IP literal: addr is it */
	union sa addr;
};

enum route_kind { R_EXACT, R_SUFFIX, R_PREFIX };

/*
 * An SNI route: "mail.example.org" (exact), "*.example.net" (one or more
 * labels, then the suffix) or "mta-sts.*" (that first label, then at least
 * one more).  pat is lower case, without the '*' part and its dot.
 */
struct route {
	enum route_kind kind;
	const char *pat;
	const char *text;		/* as written, for logs */
	struct target t;
	int proxy;			/* enum proxy_mode: the header it sends */
	const char *alpn;		/* protocols: ALPN wire form, "" any */
};

/* max_rate_per_ip = N/s | N/m: at most n new connections per per_ms. */
struct rate {
	int64_t n;			/* 0: no limit */
	int64_t per_ms;
};

/*
 * One listener as configured.  Timeouts are in milliseconds; every value
 * here is final (per-listener overrides already merged with the globals).
 */
struct listener {
	char name[NAME_MAX_LEN];
	int line;			/* first line naming this listener */
	union sa addr;			/* where to listen */
	int dual;			/* ":PORT": one socket for v4 and v6 */
	struct target up;		/* default upstream; host "" if none */
	int r0, nr;			/* its routes: conf.r[r0 .. r0+nr) */
	int proxy;			/* enum proxy_mode */
	int prefer;			/* enum prefer */
	int64_t connect_ms;		/* per address tried */
	int64_t dns_ms;			/* whole lookup */
	int64_t idle_ms;		/* 0: no idle timeout */
	int64_t sni_ms;			/* to receive the ClientHello */
	int c0, nc;			/* allow/deny: conf.c[c0 .. c0+nc) */
	int nallow;			/* how many of those are allow */
	int max_per_ip;			/* at once per client address; 0 off */
	int ipv6_prefix;		/* IPv6 clients count by this network */
	int sockbuf;			/* socket_buffer: bytes, 0: auto */
	const char *refuse;		/* the line refused clients get, with
					 * CRLF; NULL: a reset */
	struct rate rate;		/* max_rate_per_ip */
	struct nets *deny_net;		/* deny_file's networks, or NULL */
	struct nets *allow_net;		/* allow_file's networks, or NULL */
	int any_proxy;			/* it or one of its routes sends PROXY */
	int accept_proxy;		/* PP_ACCEPT_V1 | PP_ACCEPT_V2, or 0 */
	int t0, nt;			/* accept_proxy_from: conf.c[t0 ..) */
	int64_t accept_proxy_ms;	/* to receive the PROXY header */
	int64_t stale_ms;		/* dns_stale: 0 off */
};

/* user = NAME | UID[:GID]: who to run as after binding. */
struct runas {
	int set;			/* 0: stay who we are */
	char name[64];			/* "" when given as numbers */
	long uid, gid;			/* gid -1: the user's own, or uid */
};

/* A deny_file or allow_file line of the config: read after parsing. */
struct listfile {
	int li;				/* the listener */
	int deny;			/* 1: deny_file, 0: allow_file */
	int line;
	const char *path;
};

/* A parsed config: one allocation holding the arrays and strings too (the
 * list files' networks are allocated apart: conf_free frees them). */
struct conf {
	int refs;			/* references: conf_hold, conf_free */
	int max_conns;
	int64_t drain_ms;		/* after SIGTERM; 0: close at once */
	int64_t upgrade_ms;		/* after an upgrade; 0: close at once */
	int splice;			/* splice = auto (1) | off (0) */
	struct runas user;
	const char *upstream_host;	/* NULL: not set */
	int status;			/* status.listen is set */
	union sa status_addr;
	int status_dual;
	int nl, nr, nc;
	struct listener *l;
	struct route *r;
	struct cidr *c;
	int nfiles;
	struct listfile *files;
};

/*
 * nets.c: sets of networks from list files, pure.  nets_add(&s, text, n,
 * fname, err, errlen): add the networks of a file's n bytes (one address
 * or CIDR a line, ';' or '#' comments, blank lines), allocating *s when
 * NULL; -1 with "fname:line: problem" in err.  nets_done(s): sort and
 * merge, before any lookup.  nets_match(s, a): is a (unmapped) in s?
 * O(log n); NULL holds nothing.  nets_count(s): its merged ranges.
 * nets_equal(a, b): the same ranges (both done)?
 * nets_free(s): NULL is a no-op.
 */
struct nets;
int nets_add(struct nets **s, const char *text, size_t n, const char *fname,
    char *err, size_t errlen);
void nets_done(struct nets *s);
int nets_match(const struct nets *s, const union sa *a);
size_t nets_count(const struct nets *s);
int nets_equal(const struct nets *a, const struct nets *b);
void nets_free(struct nets *s);

/*
 * conf.c: the config file, parsed from memory.
 * conf_parse(text, n, fname, err, errlen): the config in the n bytes of
 * text (named fname in messages), with one reference (the caller's); NULL
 * with one line "fname:line: key: problem" in err.  Reads the environment
 * for ${VAR}.
 * conf_hold(cf): one more reference; returns cf.  conf_free(cf): drop one;
 * the last frees it.  NULL is a no-op.
 * conf_route(cf, l, name, alpn, alpnlen): the first of l's routes, in file
 * order, whose pattern matches name (lower case, no trailing dot) and, if
 * it lists protocols, whose protocols include one of the hello's (alpn:
 * the ALPN list in wire form, alpnlen bytes); or NULL.
 * conf_allowed(cf, l, a): may a client from a (already unmapped) connect
 * to l?  Refused if it matches a deny entry, or if l has allow entries and
 * it matches none.  conf_trusted(cf, l, a): is a in l's accept_proxy_from?
 * conf_describe(l, out, n): " proxy=v2 prefer=ipv4 ..." for l's line.
 * conf_proxy_name(proxy): "v2", "v1" or "off".
 * conf_diff(oc, o, nc, n, moved, out, sz): the keys in which listener n
 * of nc differs from o of oc, "upstream,idle_timeout"; moved: the listen
 * socket is not the same.
 * conf_list_text(cf, i, text, n, err, errlen): add the networks of the
 * list file cf->files[i], read by the caller (n bytes of text); -1 with
 * "path:line: problem" in err.  conf_lists_done(cf): sort and merge them,
 * once all are in.
 * conf_key(i, &name, &def, &scope): the i-th key of the key table (def
 * NULL: no default; scope: CONF_GLOBAL, CONF_LISTENER, CONF_STATUS, or
 * more than one); 0 past the end.
 */
#define CONF_GLOBAL	1
#define CONF_LISTENER	2
#define CONF_STATUS	4		/* status.listen */
struct conf *conf_parse(const char *text, size_t n, const char *fname,
    char *err, size_t errlen);
struct conf *conf_hold(struct conf *cf);
void conf_free(struct conf *cf);
const struct route *conf_route(const struct conf *cf,
    const struct listener *l, const char *name, const unsigned char *alpn,
    size_t alpnlen);
int conf_allowed(const struct conf *cf, const struct listener *l,
    const union sa *a);
int conf_trusted(const struct conf *cf, const struct listener *l,
    const union sa *a);
void conf_describe(const struct listener *l, char *out, size_t n);
const char *conf_proxy_name(int proxy);
void conf_diff(const struct conf *oc, const struct listener *o,
    const struct conf *nc, const struct listener *n, int moved, char *out,
    size_t sz);
int conf_key(int i, const char **name, const char **def, int *scope);
int conf_list_text(struct conf *cf, int i, const char *text, size_t n,
    char *err, size_t errlen);
void conf_lists_done(struct conf *cf);

/*
 * val.c: the typed values of the config file, pure.  Each returns 0, or -1
 * with the problem in why[n] ("\"30x\" is not a duration (e.g. ...)").
 * val_expand(in, out, outsz, ...): ${VAR} and ${VAR:-default} from the
 * environment.  val_duration(s, zero_ok, &ms, ...): "30m", "1800s",
 * "500ms", at most 7 days.  val_count(s, min, max, &v, ...).
 * val_size(s, &bytes, ...): "auto" (0), or bytes, "256k", "1m": 4k to 64m.
 * val_listen(s, &addr, &dual, ...): ":PORT", "IPv4:PORT", "[IPv6]:PORT".
 * val_target(s, t, host, hostsz, ...): "HOST:PORT" or ":PORT" into t, the
 * host into host (t->host is left to the caller).  val_host(s, host,
 * hostsz, ...): a name or literal, brackets removed.  val_pattern(s,
 * &kind, pat, patsz, ...): an SNI pattern, folded.  val_user(s, u, ...).
 * val_cidr(s, c, ...).  val_listener_name(s, n): may the n bytes of s
 * name a listener?  val_alpn(s, out, outsz, ...): "h2,http/1.1" in ALPN
 * wire form (each name after its length byte), NUL-terminated.
 * val_rate(s, &r, ...): "20/m", "5/s", or "0" (off).
 * val_line(s, ...): a line to send a client: printable ASCII, at most 510
 * bytes (an SMTP reply line and its CRLF fit in 512).
 */
int val_expand(const char *in, char *out, size_t outsz, char *why,
    size_t n);
int val_duration(const char *s, int zero_ok, int64_t *ms, char *why,
    size_t n);
int val_size(const char *s, int *bytes, char *why, size_t n);
int val_count(const char *s, int min, int max, int *v, char *why,
    size_t n);
int val_listen(const char *s, union sa *addr, int *dual, char *why,
    size_t n);
int val_target(const char *s, struct target *t, char *host, size_t hostsz,
    char *why, size_t n);
int val_host(const char *s, char *host, size_t hostsz, char *why,
    size_t n);
int val_pattern(const char *s, enum route_kind *kind, char *pat,
    size_t patsz, char *why, size_t n);
int val_user(const char *s, struct runas *u, char *why, size_t n);
int val_cidr(const char *s, struct cidr *c, char *why, size_t n);
int val_listener_name(const char *s, size_t n);
int val_alpn(const char *s, char *out, size_t outsz, char *why, size_t n);
int val_line(const char *s, char *why, size_t n);
int val_rate(const char *s, struct rate *r, char *why, size_t n);

/*
 * proxyv2.c: PROXY protocol headers.
 * pp2_encode(out, n, src, dst): write a PROXY protocol v2 header for a TCP
 * connection from src to dst into out (n >= PP_MAX_LEN).  v4-mapped
 * addresses go out as TCP4.  Returns the header length (28 for TCP4, 52
 * for TCP6, 16 for an address family it cannot express).
 * pp1_encode(): the same as a v1 text line, at most 107 bytes.
 * pp_decode(p, n, versions, &src, &dst, &len): the PROXY header at the
 * start of the n bytes received so far, of a version in versions
 * (PP_ACCEPT_V1 and/or PP_ACCEPT_V2).  PP_MORE: a prefix of one, call
 * again with more.  PP_BAD: not one, malformed, or longer than
 * PP1_MAX_LEN or PP2_MAX_LEN (a v2 length past the cap is bad at once).
 * PP_DONE: the header is the first *len bytes; src and dst are the client
 * and the address it connected to (v4-mapped unmapped), or AF_UNSPEC
 * (LOCAL, UNKNOWN, a family TCP does not carry): the connection's own
 * addresses stand.  Reads no byte past n.
 */
#define PP1_MAX_LEN	107		/* the v1 line, CRLF included */
#define PP2_MAX_LEN	1024		/* a v2 header with its TLVs */
#define PP_ACCEPT_V1	1
#define PP_ACCEPT_V2	2
enum pp_res { PP_MORE, PP_DONE, PP_BAD };
#define PP_MAX_LEN	108
size_t pp2_encode(unsigned char *out, size_t n, const union sa *src,
    const union sa *dst);
size_t pp1_encode(unsigned char *out, size_t n, const union sa *src,
    const union sa *dst);
enum pp_res pp_decode(const unsigned char *p, size_t n, int versions,
    union sa *src, union sa *dst, size_t *len);

/*
 * sni.c: the ClientHello parser.
 * sni_parse(p, n, h): look at the TLS ClientHello whose first n bytes are
 * p.  SNI_FOUND: h->name holds the server_name, lower case, without a
 * trailing dot, validated (letters, digits, '-', '_', '.', at most 255).
 * SNI_NONE: a valid ClientHello without one.  With either, h->alpn holds
 * the ALPN protocol_name_list as sent (h->alpn_len bytes, 0 without the
 * extension: entries of a length byte and the name) and h->ech says an
 * encrypted_client_hello extension is present.  SNI_NOT_TLS: not a
 * ClientHello, or a malformed one.  SNI_MORE: a prefix of what could still
 * be a ClientHello; call again with more bytes.  A hello longer than
 * SNI_MAX_HELLO stays SNI_MORE: the caller's byte cap ends it.
 */
#define SNI_MAX_HELLO	16384
#define SNI_ALPN_MAX	512		/* ALPN list bytes we read */
struct hello {
	char name[HOST_MAX_LEN];
	unsigned char alpn[SNI_ALPN_MAX];
	size_t alpn_len;
	int ech;
};
enum sni_res { SNI_MORE, SNI_FOUND, SNI_NONE, SNI_NOT_TLS };
enum sni_res sni_parse(const unsigned char *p, size_t n, struct hello *h);

/*
 * log.c: one line per event on stderr, one write(2) each.
 * log_msg(fmt, ...): "edge: " and the line; a format ending in ':' gets
 * strerror(errno) appended.  log_die(code, fmt, ...): the same, then
 * exit(code): for start-up only, never from the loop.  log_to(fd, fmt,
 * ...): a command's own output (usage, -V, probe), as it is, in one write.
 * struct logline, log_add(l, key, val), log_num(l, key, v, width),
 * log_end(l): a line built by appending key and value text (log_num pads
 * v with zeros to width digits), written by log_end.
 * log_refusal(now): may a refusal line be written now?  At most a few a
 * second; the rest are counted, and log_refusals_flush(now) reports them
 * once their second is over, by log_refusals_due() at the latest.
 */
#define LOG_MAX		1024
struct logline {
	char b[LOG_MAX];
	size_t n;
};
void log_msg(const char *fmt, ...);
void log_die(int code, const char *fmt, ...);
void log_to(int fd, const char *fmt, ...);
void log_add(struct logline *l, const char *key, const char *val);
void log_num(struct logline *l, const char *key, uint64_t v, int width);
void log_end(struct logline *l);
int log_refusal(int64_t now);
void log_refusals_flush(int64_t now);
int64_t log_refusals_due(void);

/*
 * pipes.c: the splice(2) relay's pipes (Linux; EDGE_SPLICE unset by
 * -DNO_SPLICE or elsewhere, and then the pool is empty and every call
 * fails).  pipes_init(n): at most n pipe pairs (capped at PIPES_MAX);
 * returns that cap (0 without splice), or -1 on ENOMEM.
 * pipes_get(p): an empty pipe into p[0] (read end), p[1]; -1 if none can
 * be had (relay through buffers instead).  pipes_put(p, empty): give it
 * back (kept if empty, else closed); p becomes -1, -1.
 * pipes_splice(in, out, n): splice(2) up to n bytes, non-blocking.
 * pipes_moved(n): count bytes relayed through a pipe.
 * pipes_usage(&busy, &cap, &bytes): pipes in use, the cap, bytes moved.
 */
#if defined(__linux__) && !defined(NO_SPLICE)
#define EDGE_SPLICE	1
#endif
#define PIPES_MAX	256		/* 64 MiB in flight at most, as BUF_MEMORY */
#define PIPE_BYTES	BUF_BIG		/* asked for per pipe (F_SETPIPE_SZ) */
int pipes_init(int n);
int pipes_get(int p[2]);
void pipes_put(int p[2], int empty);
ssize_t pipes_splice(int in, int out, size_t n);
void pipes_moved(uint64_t n);
void pipes_usage(int *busy, int *cap, uint64_t *bytes);

/*
 * notify.c: systemd's notify protocol, and the answer to `edge reload`.
 * notify_init(): open the socket $NOTIFY_SOCKET names; 0 if unset, 1 if
 * open, -1 with errno.  notify_on(): is there one?  notify_send(fmt, ...):
 * send one datagram of KEY=value lines (nothing without a socket; -1 on
 * a failed send).  notify_usec(): CLOCK_MONOTONIC in us (MONOTONIC_USEC).
 * notify_answer(pid, text): tell the `edge reload` process pid how its
 * reload went ("ok ..." or "failed: ...").  notify_reload(pid, secs):
 * `edge reload PID`: ask, wait up to secs, print the answer; the exit
 * code (0 ok, 1 refused or no answer, 2 usage).
 */
int notify_init(void);
int notify_on(void);
int notify_send(const char *fmt, ...);
int64_t notify_usec(void);
int notify_answer(long pid, const char *text);
int notify_reload(const char *pid, int secs);

/*
 * sys.c: system helpers.
 * sys_clock_ms(): the monotonic clock in milliseconds.  sys_tick(): read
 * it as the time of this loop turn; sys_now(): that time.
 * sys_nonblock(fd): non-blocking and close-on-exec.
 * sys_socket_nb(family), sys_accept_nb(lfd, &sa, &len): a non-blocking,
 * close-on-exec TCP socket, or -1 with errno.
 * sys_tune(fd): TCP_NODELAY and keepalive (first probe after 2 min).
 * sys_buffers(fd, bytes): SO_RCVBUF and SO_SNDBUF (socket_buffer), if
 * bytes > 0; the kernel's own sizing (autotuning) otherwise.
 * sys_inherits(fd): does an accepted socket come with its listener's
 * options (Linux: yes)?  Asked of the first one only.
 * sys_is_local(a): is a an address of this host (would the kernel send
 * to it from it)?  Answers are kept for a second.
 * sys_read_file(path, max, &n): the whole file, malloc'd, its n bytes
 * followed by a NUL; NULL with errno (EFBIG: max bytes or more).
 */
int64_t sys_clock_ms(void);
int64_t sys_tick(void);
int64_t sys_now(void);
int sys_nonblock(int fd);
int sys_socket_nb(int family);
int sys_accept_nb(int lfd, union sa *sa, socklen_t *len);
void sys_tune(int fd);
void sys_buffers(int fd, int bytes);
int sys_inherits(int fd);
int sys_is_local(const union sa *a);
char *sys_read_file(const char *path, size_t max, size_t *n);

/*
 * resolve.c: the resolver.  Lookups run on worker threads so that a slow
 * DNS server delays only the connections waiting on it.  A job names the
 * connection it serves by slot and generation, never by pointer.
 */
struct addrs {
	int n;
	union sa a[MAX_ADDRS];
};

/* resolve_init(): start the resolver.  Returns the fd to poll, or -1. */
int resolve_init(void);

/*
 * resolve_start(slot, gen, host, port, prefer): queue a lookup.  Returns 0,
 * or -1 with errno set if the job could not be queued.
 */
int resolve_start(int slot, uint32_t gen, const char *host,
    const char *port, enum prefer prefer);

/*
 * resolve_next(&slot, &gen, &a, &err, now): take one finished job.
 * Returns 1 with *a (owned by the caller, free() it) or *a == NULL and
 * *err set to a message; 0 when no finished job is left.  Drains the
 * wakeup fd.  A good answer for a name of resolve_names() is kept as its
 * last (at now).
 * resolve_names(cf): keep last answers for cf's names (listener and route
 * targets that are names, per prefer), one entry each; a name that stays
 * keeps its answer.  Call it before the old config can be freed.  -1 on
 * ENOMEM: no answer is kept until the next call.
 * resolve_stale(host, port, prefer, max, now, &age): the last good answer
 * for that name if it is at most max ms old (*age: how old), malloc'd; or
 * NULL.  These three run on the loop thread only.
 */
int resolve_next(int *slot, uint32_t *gen, struct addrs **a,
    const char **err, int64_t now);
int resolve_names(const struct conf *cf);
struct addrs *resolve_stale(const char *host, const char *port, int prefer,
    int64_t max, int64_t now, int64_t *age);

/*
 * buf.c: relay buffers, from a pool.  A buffer holds b[off .. off+len);
 * BUF_HEADROOM bytes in front of the first data leave room for a PROXY
 * header (buf_prepend).  buf_get(): a big buffer while there are fewer
 * than the cap, else a small one; NULL only when malloc fails.
 * buf_put(b): back to the pool (NULL is a no-op).  buf_init(maxc): size
 * the cap for maxc connections.  buf_usage(&big, &small, &bytes): buffers
 * allocated of each size, and the memory they hold.
 */
#ifndef BUF_BIG
#define BUF_BIG		(256 * 1024)	/* see bench/RESULTS.md */
#endif
#define BUF_SMALL	(16 * 1024)
#define BUF_HEADROOM	128		/* v1's longest line is 107 bytes */

struct buf {
	struct buf *next;	/* the pool's free list */
	uint32_t off, len;
	uint32_t size;		/* BUF_HEADROOM + BUF_BIG, or BUF_SMALL */
	unsigned char b[];
};

void buf_init(int maxc);
struct buf *buf_get(void);
void buf_put(struct buf *b);
void buf_usage(int *big, int *small, uint64_t *bytes);

/* Can more bytes go in, at the tail or after compacting? */
static inline int
buf_can_fill(const struct buf *b)
{
	return b->off + b->len < b->size || b->off > BUF_HEADROOM;
}

/*
 * Where the next bytes go, and *room how many fit.  An empty buffer starts
 * again at the headroom; a full tail moves the data back there (only then,
 * so that most reads cost no copy).
 */
static inline unsigned char *
buf_tail(struct buf *b, size_t *room)
{
	if (b->len == 0) {
		b->off = BUF_HEADROOM;
	} else if (b->off + b->len == b->size) {
		memmove(b->b + BUF_HEADROOM, b->b + b->off, b->len);
		b->off = BUF_HEADROOM;
	}
	*room = b->size - b->off - b->len;
	return b->b + b->off + b->len;
}

/* n bytes were written at buf_tail(). */
static inline void
buf_fill(struct buf *b, size_t n)
{
	b->len += (uint32_t)n;
}

static inline const unsigned char *
buf_data(const struct buf *b)
{
	return b->b + b->off;
}

static inline size_t
buf_len(const struct buf *b)
{
	return b->len;
}

/* The first n bytes were taken. */
static inline void
buf_drain(struct buf *b, size_t n)
{
	b->off += (uint32_t)n;
	b->len -= (uint32_t)n;
}

/* Put n <= BUF_HEADROOM bytes in front of the data (nothing drained yet). */
static inline void
buf_prepend(struct buf *b, const unsigned char *p, size_t n)
{
	b->off -= (uint32_t)n;
	b->len += (uint32_t)n;
	memcpy(b->b + b->off, p, n);
}

enum { CLI = 0, UPS = 1 };		/* side index; the peer is !side */

/* Why a connection ended: the log's why= and the metrics' label. */
enum why {
	W_EOF, W_IDLE, W_RESET, W_ERROR, W_CONNECT_FAILED, W_DNS_FAILED,
	W_DNS_TIMEOUT, W_SNI_TIMEOUT, W_SNI_TOO_BIG, W_SNI_INCOMPLETE,
	W_SNI_EOF, W_NOT_TLS, W_NO_ROUTE, W_NO_MEMORY, W_SHUTDOWN, W_LOOP,
	W_PROXY_TIMEOUT, W_PROXY_BAD, W_UPGRADE,
	NCLOSE,				/* the rest: refusals, before a slot */
	W_DENIED = NCLOSE, W_PER_IP, W_PROXY_UNTRUSTED, W_RATE_LIMIT, NWHY
};

/*
 * rate.c: connect-rate limits per (counters slot, client address).
 * rate_init(maxc): size the table once (at least 1,024 buckets, 4 per
 * connection); -1 on ENOMEM.  rate_take(sid, a, n, per_ms, now): may a
 * new connection from a go ahead under n per per_ms (a burst of n)?  1,
 * and one token is taken; or 0.  rate_evictions(): buckets evicted for
 * new clients while the table was full.
 */
int rate_init(int maxc);
int rate_take(int sid, const union sa *a, int n, int64_t per_ms,
    int64_t now);
uint64_t rate_evictions(void);

/*
 * iptab.c: connections open per (counters slot, client address).
 * iptab_init(maxc): size the table once; -1 on ENOMEM.
 * iptab_count(sid, a): how many now.  iptab_add, iptab_del: one more, one
 * fewer.  a is unmapped (an IPv4 client on a dual-stack socket is IPv4).
 */
int iptab_init(int maxc);
uint32_t iptab_count(int sid, const union sa *a);
void iptab_add(int sid, const union sa *a);
void iptab_del(int sid, const union sa *a);

/*
 * stats.c: counters per listener name, kept across reloads.
 * stats_why(w): the name of a close reason ("eof", "per_ip_limit").
 * stats_init(now): uptime counts from now.
 * stats_claim(cf, sid): a counters slot for each of cf's listeners, in
 * sid[i] (the same slot as before for a name that stays); these become
 * the named ones.  Returns cf->nl, or the index of the first listener
 * that found no room, and then nothing changes.
 * stats_up(sid, up): the listener's socket is open (1) or not.
 * stats_accepted, stats_refused, stats_opened, stats_closed,
 * stats_bytes(sid, side, n), stats_connect_failed, stats_stale: count an
 * event.
 * stats_reloaded(ok): count a reload.
 * struct gauges: what other rooms report, passed in by the caller.
 * stats_log(g): the SIGUSR1 lines.  stats_metrics(g, &len): the
 * Prometheus text, malloc'd, or NULL.
 */
struct gauges {
	int64_t now;
	int conns, max_conns;		/* open, and the cap */
	int big, small;			/* buffers allocated of each size */
	uint64_t buf_bytes;		/* the memory they hold */
	uint64_t rate_evicted;		/* rate.c's evictions */
	int pipes_busy, pipes_cap;	/* pipes.c's pool */
	uint64_t spliced;		/* bytes moved through its pipes */
};
const char *stats_why(enum why w);
void stats_init(int64_t now);
int stats_claim(const struct conf *cf, int sid[]);
void stats_up(int sid, int up);
void stats_accepted(int sid);
void stats_refused(int sid, enum why w);
void stats_opened(int sid);
void stats_closed(int sid, enum why w);
void stats_bytes(int sid, int side, uint64_t n);
void stats_connect_failed(int sid);
void stats_stale(int sid);
void stats_reloaded(int ok);
void stats_log(const struct gauges *g);
char *stats_metrics(const struct gauges *g, size_t *len);

/*
 * listen.c: the listening sockets of the running config and the status
 * endpoint's.  listen_start(cf, err, n): bind them all and log each;
 * -1 with the reason in err.  listen_reload(nc, err, n): merge nc into
 * the sockets (unchanged addresses keep theirs, the rest close or open,
 * each change logged); -1 if refused (nothing changed, err says why),
 * else how many listeners failed to bind (they stay closed).
 * listen_describe(what, cf, l, a): the "listening ..." line of l, bound
 * to a, and its routes.  listen_close_all(): close every socket (drain).
 * listen_count(), listen_fd(i) (-1: closed), listen_sid(i) (its counters
 * slot), listen_status_fd().  listen_self(a, msg, n): is a one of edge's
 * own sockets?  1 with the reason in msg.
 * listen_inherit(fd, name, from, sys, err, n): a listening socket handed
 * to edge at start (from "systemd" or "upgrade", name "" if none; sys:
 * systemd holds it too); -1 if it is not one.  listen_start() gives each to the listener whose address it
 * has (or name, where the address cannot tell) and binds the rest; a
 * socket from systemd that no listener takes makes it fail with -2.
 * listen_name(i): listener i's name; listen_systemd(i): is its socket one
 * systemd holds too (a socket unit's, maybe through an upgrade)?
 * listen_pause(name, err, nconn): out of descriptors: stop accepting for
 * a while, and say so once per episode; listen_fds_back(name, nconn): the
 * episode is over; listen_resume_at(): when accepting may start again.
 */
int listen_start(struct conf *cf, char *err, size_t errlen);
int listen_reload(struct conf *nc, char *err, size_t errlen);
void listen_describe(const char *what, const struct conf *cf,
    const struct listener *l, const union sa *a);
void listen_close_all(void);
int listen_count(void);
int listen_fd(int i);
int listen_sid(int i);
int listen_status_fd(void);
int listen_inherit(int fd, const char *name, const char *from, int sys,
    char *err, size_t errlen);
const char *listen_name(int i);
int listen_systemd(int i);
int listen_self(const union sa *a, char *msg, size_t n);
void listen_pause(const char *name, int err, int nconn);
void listen_fds_back(const char *name, int nconn);
int64_t listen_resume_at(void);

/*
 * conn.c: connection slots and the whole life of a connection.
 * conn_init(maxc): the slots, once; -1 on ENOMEM.
 * conn_accept(cf, li, fresh, max): accept up to max clients waiting on
 * listener li of cf; the slots of those still open go in fresh[], their
 * count is returned.  conn_resolved(): act on finished lookups.
 * conn_step(slot, rev): advance on the poll events of its client (rev[CLI])
 * and upstream (rev[UPS]) sockets.  conn_expire(slot): act on a deadline
 * that has passed.  conn_close_all(why): close every connection (stop).
 * For the poll layer: conn_interest(slot, side, &fd): the events to wait
 * for on that side's fd (0: none); conn_deadline(slot); conn_open(slot):
 * in use; conn_quiet(slot): relaying and holding no buffer;
 * conn_count(), conn_live(i) (the slot of the i-th open connection),
 * conn_max().
 */
#define ACCEPT_BATCH	64		/* accepts per listener per turn */
int conn_init(int maxc);
int conn_accept(struct conf *cf, int li, int *fresh, int max);
void conn_resolved(void);
void conn_step(int slot, const short rev[2]);
void conn_expire(int slot);
void conn_close_all(enum why why);
short conn_interest(int slot, int side, int *fd);
int64_t conn_deadline(int slot);
int conn_open(int slot);
int conn_quiet(int slot);
int conn_count(void);
int conn_live(int i);
int conn_max(void);

/*
 * poll.c: the pollset of one turn.  poll_init(maxc, nfixed): size it
 * once.  poll_begin(), then poll_add(fd, events) (returns the entry's
 * index; fd -1 is skipped by poll()), poll_room()/poll_used(k) to let a
 * caller fill k entries itself, poll_wake(t) to wake by t at the latest,
 * poll_conns() to add the connections (the hot ones and a slice of the
 * cold), poll_wait() (-1 with errno), poll_revents(i), poll_service() to
 * step every connection with events, poll_expire() for their deadlines.
 * poll_hot(slots, k): these new connections are hot.
 */
int poll_init(int maxc, int nfixed);
void poll_begin(void);
int poll_add(int fd, short events);
struct pollfd *poll_room(void);
void poll_used(int k);
void poll_wake(int64_t t);
void poll_conns(void);
int poll_wait(void);
short poll_revents(int i);
void poll_service(void);
void poll_expire(void);
void poll_hot(const int *slots, int k);

/*
 * handover.c: listening sockets handed to edge at start, and handed on to
 * a new process by an upgrade.  handover_init(argv, err, n): remember how
 * edge was started; take the sockets systemd (LISTEN_*) or an upgrade
 * (EDGE_UPGRADE_*) passed, removing the variables; how many, or -1 with
 * err.  handover_upgraded(): this process was started by an upgrade.
 * handover_ready(): tell the process that started it (if one did) that
 * this one serves now.  handover_start(err, n): SIGUSR2: start the new
 * process on the listening sockets; -1 with the reason it did not.
 * handover_fd(): the pipe to poll for its answer, or -1.
 * handover_due(): when it must have answered.  handover_check(now): after
 * either: its pid once it is ready, -1 if it failed (logged), else 0.
 * handover_reap(): SIGCHLD: collect ended children (a failed upgrade).
 */
int handover_init(char **argv, char *err, size_t errlen);
int handover_upgraded(void);
void handover_ready(void);
int handover_start(char *err, size_t errlen);
int handover_fd(void);
int64_t handover_due(void);
long handover_check(int64_t now);
void handover_reap(void);

/*
 * status.c: the status endpoint, driven by edge.c's poll loop: at most
 * STATUS_MAX clients at a time, each answered once and closed.
 * status_accept(lfd, now): take waiting clients while slots are free;
 * -1 with errno on a failure worth pausing for (EMFILE and kin).
 * status_full(): no slot is free (do not poll the listener).
 * status_pollfds(p, &next): fill p (STATUS_MAX entries) for the clients;
 * lowers *next to the earliest deadline.  Returns the count.
 * status_service(p, n, now): act on the revents of those n entries, and
 * close clients past their deadline.
 * status_probe("HOST:PORT"): `edge probe`; the exit code: 0 on a 200.
 * status_log(): the counters as log lines (SIGUSR1).
 */
#define STATUS_MAX	8
int status_accept(int lfd, int64_t now);
int status_full(void);
int status_pollfds(struct pollfd *p, int64_t *next);
void status_service(const struct pollfd *p, int n, int64_t now);
void status_close_all(void);
void status_log(void);
int status_probe(const char *hostport);

#endif
