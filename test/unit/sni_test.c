/* SPDX-License-Identifier: ISC */
/*
 * Vectors for sni_parse(): a ClientHello captured from openssl s_client,
 * and hellos built here in every shape the wire allows or a client might
 * abuse: truncated at every offset, split across records, oversized
 * lengths, empty, long and duplicate names, and bytes that are not TLS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../edge.h"

static int fails;
static const char *names[] = { "more", "found", "none", "not_tls" };

static void
expect(const char *what, const unsigned char *p, size_t n, enum sni_res want,
    const char *wantname)
{
	static struct hello hl;
	char *name = hl.name;
	enum sni_res got = sni_parse(p, n, &hl);

	if (got == want && (want != SNI_FOUND || strcmp(name, wantname) == 0)) {
		printf("ok   %s\n", what);
		return;
	}
	fails++;
	printf("FAIL %s: got %s \"%s\", want %s \"%s\"\n", what, names[got],
	    name, names[want], wantname ? wantname : "");
}

/* Options for build(). */
struct opts {
	const char *sni;	/* NULL: no server_name extension */
	size_t snilen;		/* 0: strlen(sni) */
	int dup;		/* a second server_name extension */
	int other_first;	/* a non-host_name entry before host_name */
	int other_only;		/* a non-host_name entry and no host_name */
	size_t pad;		/* a padding extension (21) of this size */
	int noext;		/* no extensions block at all */
	int records;		/* split the handshake over this many */
	const char *alpn;	/* an ALPN extension: its body, or NULL */
	size_t alpnlen;
	int alpn_dup;		/* a second ALPN extension */
	int ech;		/* an encrypted_client_hello extension */
};

static size_t
put16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
	return 2;
}

static size_t
sni_ext(unsigned char *p, const struct opts *h)
{
	size_t n = h->snilen ? h->snilen : strlen(h->sni), o = 0, list;

	o += put16(p + o, 0);		/* type: server_name */
	list = (h->other_only ? 0 : 3 + n) +
	    (h->other_first || h->other_only ? 3 + 4 : 0);
	o += put16(p + o, 2 + list);
	o += put16(p + o, list);
	if (h->other_first || h->other_only) {
		p[o++] = 7;
		o += put16(p + o, 4);
		memcpy(p + o, "\1\2\3\4", 4);
		o += 4;
	}
	if (h->other_only)
		return o;
	p[o++] = 0;			/* host_name */
	o += put16(p + o, n);
	memset(p + o, 'a', n);
	memcpy(p + o, h->sni, strlen(h->sni) < n ? strlen(h->sni) : n);
	return o + n;
}

/* Build a ClientHello into out; returns its length. */
static size_t
build(unsigned char *out, const struct opts *h)
{
	static unsigned char hs[70000], body[70000];
	size_t b = 0, e, hl, o = 0, per, i, chunk;
	int r, records = h->records ? h->records : 1;

	b += put16(body + b, 0x0303);
	memset(body + b, 0x42, 32);
	b += 32;
	body[b++] = 32;			/* session_id */
	memset(body + b, 0x17, 32);
	b += 32;
	b += put16(body + b, 4);	/* cipher_suites */
	b += put16(body + b, 0x1301);
	b += put16(body + b, 0x1302);
	body[b++] = 1;			/* compression: null */
	body[b++] = 0;
	if (!h->noext) {
		e = b;
		b += 2;
		if (h->sni != NULL) {
			b += sni_ext(body + b, h);
			if (h->dup)
				b += sni_ext(body + b, h);
		}
		if (h->alpn != NULL) {
			for (r = 0; r <= h->alpn_dup; r++) {
				b += put16(body + b, 16);
				b += put16(body + b, h->alpnlen);
				memcpy(body + b, h->alpn, h->alpnlen);
				b += h->alpnlen;
			}
		}
		if (h->ech) {
			b += put16(body + b, 0xfe0d);
			b += put16(body + b, 4);
			memcpy(body + b, "\0\1\2\3", 4);
			b += 4;
		}
		b += put16(body + b, 43);	/* supported_versions */
		b += put16(body + b, 3);
		body[b++] = 2;
		b += put16(body + b, 0x0304);
		if (h->pad) {
			b += put16(body + b, 21);
			b += put16(body + b, h->pad);
			memset(body + b, 0, h->pad);
			b += h->pad;
		}
		put16(body + e, b - e - 2);
	}
	hs[0] = 1;
	hs[1] = (unsigned char)(b >> 16);
	put16(hs + 2, b);
	memcpy(hs + 4, body, b);
	hl = b + 4;
	per = (hl + (size_t)records - 1) / (size_t)records;
	for (r = 0, i = 0; i < hl; r++, i += chunk) {
		chunk = hl - i < per ? hl - i : per;
		out[o++] = 0x16;
		out[o++] = 0x03;
		out[o++] = 0x01;
		o += put16(out + o, chunk);
		memcpy(out + o, hs + i, chunk);
		o += chunk;
	}
	return o;
}

static void
every_prefix(const char *what, const unsigned char *p, size_t n)
{
	static struct hello hl;
	size_t i;

	for (i = 0; i < n; i++) {
		if (sni_parse(p, i, &hl) != SNI_MORE) {
			fails++;
			printf("FAIL %s: prefix of %zu bytes is not MORE\n",
			    what, i);
			return;
		}
	}
	printf("ok   %s (%zu prefixes)\n", what, n);
}

static size_t
readfile(const char *path, unsigned char *buf, size_t n)
{
	FILE *f = fopen(path, "rb");
	size_t r;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	r = fread(buf, 1, n, f);
	fclose(f);
	return r;
}

/* Parse a built hello; check the answer and the ALPN list and ECH seen. */
static void
expect_alpn(const char *what, const struct opts *o, unsigned char *buf,
    enum sni_res want, const char *list, size_t listlen, int ech)
{
	static struct hello hl;
	size_t n = build(buf, o);
	enum sni_res got = sni_parse(buf, n, &hl);
	int ok = got == want;

	if (ok && want != SNI_NOT_TLS)
		ok = hl.alpn_len == listlen && memcmp(hl.alpn, list, listlen)
		    == 0 && hl.ech == ech;
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	fails += !ok;
}

static void
alpn_vectors(unsigned char *buf)
{
	static const char two[] = "\0\x0c\x02h2\x08http/1.1";
	static const char acme[] = "\0\x0b\x0a" "acme-tls/1";
	struct opts o;

	memset(&o, 0, sizeof(o));
	o.sni = "mail.example.com";
	o.alpn = two;
	o.alpnlen = sizeof(two) - 1;
	expect_alpn("ALPN h2, http/1.1 with the name", &o, buf, SNI_FOUND,
	    two + 2, 12, 0);
	every_prefix("ALPN hello: every prefix needs more", buf, build(buf, &o));
	o.alpn = acme;
	o.alpnlen = sizeof(acme) - 1;
	o.ech = 1;
	o.records = 3;
	expect_alpn("ALPN acme-tls/1 and ECH, across three records", &o, buf,
	    SNI_FOUND, acme + 2, 11, 1);
	o.records = 1;
	o.sni = NULL;
	o.ech = 0;
	expect_alpn("ALPN without a name: none, the list still read", &o, buf,
	    SNI_NONE, acme + 2, 11, 0);
	o.sni = "mail.example.com";
	o.alpn = NULL;
	expect_alpn("no ALPN extension: an empty list", &o, buf, SNI_FOUND, "",
	    0, 0);
	o.alpn = "\0\0";
	o.alpnlen = 2;
	expect_alpn("ALPN: an empty list is malformed", &o, buf, SNI_NOT_TLS,
	    NULL, 0, 0);
	o.alpn = "\0\x03\x00h2";
	o.alpnlen = 5;
	expect_alpn("ALPN: an empty name is malformed", &o, buf, SNI_NOT_TLS,
	    NULL, 0, 0);
	o.alpn = "\0\x03\x05h2";
	o.alpnlen = 5;
	expect_alpn("ALPN: a name past the list is malformed", &o, buf,
	    SNI_NOT_TLS, NULL, 0, 0);
	o.alpn = "\0\x09\x02h2";
	o.alpnlen = 5;
	expect_alpn("ALPN: a list past the extension is malformed", &o, buf,
	    SNI_NOT_TLS, NULL, 0, 0);
	o.alpn = "\0\x06\x02h2\x02h2";
	o.alpnlen = 8;
	expect_alpn("ALPN: a name listed twice is malformed", &o, buf,
	    SNI_NOT_TLS, NULL, 0, 0);
	o.alpn = "\0\x03\x02h2\x00";
	o.alpnlen = 6;
	expect_alpn("ALPN: bytes after the list are malformed", &o, buf,
	    SNI_NOT_TLS, NULL, 0, 0);
	o.alpn = two;
	o.alpnlen = sizeof(two) - 1;
	o.alpn_dup = 1;
	expect_alpn("ALPN: two extensions are malformed", &o, buf, SNI_NOT_TLS,
	    NULL, 0, 0);
}

int
main(int argc, char **argv)
{
	static unsigned char buf[80000], cap[4096];
	struct opts h;
	size_t n, capn;

	capn = readfile(argc > 1 ? argv[1] :
	    "test/fixtures/clienthello-openssl.bin", cap, sizeof(cap));
	expect("openssl s_client hello: name lower-cased", cap, capn,
	    SNI_FOUND, "mta-sts.example.com");
	every_prefix("openssl hello: every prefix needs more", cap, capn);

	memset(&h, 0, sizeof(h));
	h.sni = "Autoconfig.Example.NET.";
	n = build(buf, &h);
	expect("built hello: case folded, trailing dot dropped", buf, n,
	    SNI_FOUND, "autoconfig.example.net");
	every_prefix("built hello: every prefix needs more", buf, n);

	h.records = 2;
	n = build(buf, &h);
	expect("hello split across two records", buf, n, SNI_FOUND,
	    "autoconfig.example.net");
	every_prefix("two records: every prefix needs more", buf, n);

	h.records = 7;
	h.pad = 6000;
	n = build(buf, &h);
	expect("6 KB hello across seven records", buf, n, SNI_FOUND,
	    "autoconfig.example.net");

	h.records = 1;
	h.pad = 16000;
	n = build(buf, &h);
	expect("16 KB hello in one record", buf, n, SNI_FOUND,
	    "autoconfig.example.net");

	h.pad = 17000;
	n = build(buf, &h);
	expect("hello over the 16 KiB record limit is not TLS", buf, n,
	    SNI_NOT_TLS, NULL);
	h.records = 2;
	n = build(buf, &h);
	expect("hello over the 16 KiB cap stays MORE (caller's cap ends it)",
	    buf, n, SNI_MORE, NULL);

	memset(&h, 0, sizeof(h));
	h.sni = "mail.example.org";
	h.other_first = 1;
	n = build(buf, &h);
	expect("an unknown name_type before host_name is skipped", buf, n,
	    SNI_FOUND, "mail.example.org");
	h.other_only = 1;
	n = build(buf, &h);
	expect("a server_name list with no host_name: TLS, no name", buf, n,
	    SNI_NONE, NULL);
	h.other_only = 0;

	h.other_first = 0;
	h.sni = NULL;
	n = build(buf, &h);
	expect("no server_name extension", buf, n, SNI_NONE, NULL);
	h.noext = 1;
	n = build(buf, &h);
	expect("no extensions at all", buf, n, SNI_NONE, NULL);

	memset(&h, 0, sizeof(h));
	h.sni = "";
	h.snilen = 0;
	n = build(buf, &h);
	expect("zero-length name", buf, n, SNI_NOT_TLS, NULL);
	h.sni = "x";
	h.snilen = 300;
	n = build(buf, &h);
	expect("300-byte name", buf, n, SNI_NOT_TLS, NULL);
	h.snilen = 255;
	n = build(buf, &h);
	expect("255-byte name is accepted", buf, n, SNI_FOUND,
	    "xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	h.snilen = 0;
	h.sni = "bad name.example";
	n = build(buf, &h);
	expect("a space in the name", buf, n, SNI_NOT_TLS, NULL);
	h.sni = "evil\033[2J.example";
	n = build(buf, &h);
	expect("terminal escapes in the name", buf, n, SNI_NOT_TLS, NULL);
	h.sni = "autodisc..";
	n = build(buf, &h);
	expect("a name ending in two dots (found by the fuzzer)", buf, n,
	    SNI_NOT_TLS, NULL);
	h.sni = "a..example";
	n = build(buf, &h);
	expect("an empty label inside the name", buf, n, SNI_NOT_TLS, NULL);
	h.sni = ".example";
	n = build(buf, &h);
	expect("a leading dot", buf, n, SNI_NOT_TLS, NULL);
	h.sni = ".";
	n = build(buf, &h);
	expect("a lone dot", buf, n, SNI_NOT_TLS, NULL);
	h.sni = "mail.example.org";
	h.dup = 1;
	n = build(buf, &h);
	expect("duplicate server_name extensions", buf, n, SNI_NOT_TLS, NULL);

	/* Lengths that overflow what surrounds them. */
	h.dup = 0;
	n = build(buf, &h);
	buf[5 + 4 + 2 + 32 + 1 + 32 + 6 + 2] ^= 0x7f;	/* extensions length */
	expect("extensions length overflows the hello", buf, n, SNI_NOT_TLS,
	    NULL);
	n = build(buf, &h);
	buf[5 + 4 + 2 + 32] = 33;			/* session_id 33 */
	expect("session_id longer than 32", buf, n, SNI_NOT_TLS, NULL);
	n = build(buf, &h);
	buf[5 + 4 + 2 + 32 + 1 + 32 + 6 + 2 + 2 + 2 + 1] = 0xff; /* list len */
	expect("server_name list length overflows", buf, n, SNI_NOT_TLS,
	    NULL);
	n = build(buf, &h);
	buf[6] = 0xff;					/* handshake length */
	expect("handshake length beyond what came: needs more", buf, n,
	    SNI_MORE, NULL);

	/* Not TLS, decided as early as possible. */
	expect("HTTP request, first byte", (const unsigned char *)"G", 1,
	    SNI_NOT_TLS, NULL);
	expect("HTTP request", (const unsigned char *)"GET / HTTP/1.1\r\n", 16,
	    SNI_NOT_TLS, NULL);
	expect("SSLv2-style hello", (const unsigned char *)"\x80\x2e\x01\x00",
	    4, SNI_NOT_TLS, NULL);
	expect("alert record", (const unsigned char *)"\x15\x03\x01\x00\x02",
	    5, SNI_NOT_TLS, NULL);
	expect("record major version 2", (const unsigned char *)"\x16\x02", 2,
	    SNI_NOT_TLS, NULL);
	expect("zero-length record", (const unsigned char *)"\x16\x03\x01\x00"
	    "\x00", 5, SNI_NOT_TLS, NULL);
	expect("record longer than 2^14", (const unsigned char *)"\x16\x03"
	    "\x01\x40\x01", 5, SNI_NOT_TLS, NULL);
	expect("ServerHello, not ClientHello", (const unsigned char *)"\x16"
	    "\x03\x03\x00\x04\x02\x00\x00\x00", 9, SNI_NOT_TLS, NULL);
	expect("empty input needs more", (const unsigned char *)"", 0,
	    SNI_MORE, NULL);
	alpn_vectors(buf);

	printf("%s: %d failed\n", __FILE__, fails);
	return fails != 0;
}
