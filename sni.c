/* SPDX-License-Identifier: ISC */
/*
 * sni_parse(): find the server_name, the ALPN protocols and whether an
 * encrypted_client_hello is present in a TLS ClientHello, given the bytes
 * received so far.  Pure and total: no allocation, no I/O, and every input
 * ends in one of four answers.  The bytes are not consumed; the caller
 * forwards them unchanged once it has chosen a route.
 *
 * TLS records (RFC 8446 section 5.1), one or more, carrying one handshake
 * message that may be split across them:
 *
 *   +------+---------+---------+------------------------------+
 *   | 0x16 | 0x03 xx | len (2) | handshake fragment (len)     |   ...
 *   +------+---------+---------+------------------------------+
 *   type   version    1..16384
 *
 * The handshake message, once reassembled:
 *
 *   +------+---------+---------------------------------------------+
 *   | 0x01 | len (3) | ClientHello                                 |
 *   +------+---------+---------------------------------------------+
 *
 *   ClientHello:
 *     legacy_version (2) random (32)
 *     session_id           <0..32>     1-byte length
 *     cipher_suites        <2..2^16-2> 2-byte length
 *     compression_methods  <1..2^8-1>  1-byte length
 *     extensions           <0..2^16-1> 2-byte length, optional
 *       each: type (2) len (2) data (len)
 *
 *   server_name extension, type 0 (RFC 6066 section 3):
 *     server_name_list (2-byte length), entries of
 *       name_type (1: 0 = host_name) len (2) name (len)
 *
 *   application_layer_protocol_negotiation, type 16 (RFC 7301 section
 *   3.1):
 *     protocol_name_list (2-byte length, at least 2), entries of
 *       len (1, at least 1) name (len)
 *
 *   encrypted_client_hello, type 0xfe0d (draft-ietf-tls-esni): only its
 *   presence is noted; the name routed on is then the outer one.
 *
 * A malformed extension makes the hello malformed (SNI_NOT_TLS): so do two
 * server_name or two ALPN extensions, an empty ALPN list or name, a name
 * listed twice, and a list longer than SNI_ALPN_MAX.
 */
#include <string.h>

#include "edge.h"

#define REC_MAX		16384	/* record payload, RFC 8446 5.1 */
#define EXT_SERVER_NAME	0
#define EXT_ALPN	16
#define EXT_ECH		0xfe0d

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static size_t
get24(const unsigned char *p)
{
	return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

/*
 * A cursor over the reassembled message.  take() hands out the next n
 * bytes, or NULL if fewer remain.
 */
struct cur {
	const unsigned char *p;
	size_t left;
};

static const unsigned char *
take(struct cur *c, size_t n)
{
	const unsigned char *p = c->p;

	if (n > c->left)
		return NULL;
	c->p += n;
	c->left -= n;
	return p;
}

/* Take a length-prefixed vector (lensz 1 or 2 bytes) as a sub-cursor. */
static int
vec(struct cur *c, size_t lensz, struct cur *out)
{
	const unsigned char *p = take(c, lensz);
	size_t n;

	if (p == NULL)
		return -1;
	n = lensz == 1 ? p[0] : get16(p);
	if ((out->p = take(c, n)) == NULL)
		return -1;
	out->left = n;
	return 0;
}

/*
 * Copy a host name, lower-cased, without one trailing dot.  Letters,
 * digits, '-', '_' and '.', 1 to 255 bytes, no empty label ("a..b", ".a",
 * "a.." are refused); anything else is refused.
 */
static int
host_name(const unsigned char *p, size_t n, char *name, size_t namesz)
{
	size_t i;

	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 255 || n >= namesz || p[0] == '.' ||
	    p[n - 1] == '.')
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (ch == '.' && i + 1 < n && p[i + 1] == '.')
			return -1;
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' &&
		    ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
			return -1;
		name[i] = (char)ch;
	}
	name[n] = '\0';
	return 0;
}

/*
 * The ALPN extension's body, copied as it is (entries of a length byte and
 * the name) into h: 0, or -1 if it is malformed.
 */
static int
alpn(struct cur *ext, struct hello *h)
{
	struct cur list, a, b;
	const unsigned char *n, *m;

	if (vec(ext, 2, &list) == -1 || ext->left != 0 || list.left == 0 ||
	    list.left > sizeof(h->alpn))
		return -1;
	memcpy(h->alpn, list.p, list.left);
	h->alpn_len = list.left;
	/* Every entry non-empty and inside the list; none twice. */
	for (a = list; a.left > 0; ) {
		if ((n = take(&a, 1)) == NULL || *n == 0 ||
		    (n = take(&a, *n)) == NULL)
			return -1;
		for (b = a; b.left > 0; ) {
			if ((m = take(&b, 1)) == NULL || *m == 0 ||
			    (m = take(&b, *m)) == NULL)
				return -1;
			if (m[-1] == n[-1] && memcmp(m, n, n[-1]) == 0)
				return -1;
		}
	}
	return 0;
}

/* The server_name extension's body: SNI_FOUND, SNI_NONE or SNI_NOT_TLS. */
static enum sni_res
server_name(struct cur *ext, char *name, size_t namesz)
{
	struct cur list, hn;
	const unsigned char *type;

	if (vec(ext, 2, &list) == -1 || ext->left != 0 || list.left == 0)
		return SNI_NOT_TLS;
	while (list.left > 0) {
		if ((type = take(&list, 1)) == NULL ||
		    vec(&list, 2, &hn) == -1)
			return SNI_NOT_TLS;
		if (*type != 0)
			continue;	/* not host_name: skip */
		if (host_name(hn.p, hn.left, name, namesz) == -1)
			return SNI_NOT_TLS;
		return SNI_FOUND;
	}
	return SNI_NONE;	/* a list without a host_name (RFC 6066
				 * defines no other type, but allows them) */
}

/* Parse a complete ClientHello body. */
static enum sni_res
client_hello(struct cur *h, struct hello *out)
{
	struct cur v, exts, ext;
	const unsigned char *p;
	enum sni_res res = SNI_NONE;
	int seen = 0, seen_alpn = 0;

	if (take(h, 2 + 32) == NULL)			/* version, random */
		return SNI_NOT_TLS;
	if (vec(h, 1, &v) == -1 || v.left > 32)		/* session_id */
		return SNI_NOT_TLS;
	if (vec(h, 2, &v) == -1 || v.left < 2 || v.left % 2 != 0)
		return SNI_NOT_TLS;			/* cipher_suites */
	if (vec(h, 1, &v) == -1 || v.left < 1)		/* compression */
		return SNI_NOT_TLS;
	if (h->left == 0)
		return SNI_NONE;			/* no extensions */
	if (vec(h, 2, &exts) == -1 || h->left != 0)
		return SNI_NOT_TLS;
	while (exts.left > 0) {
		if ((p = take(&exts, 2)) == NULL || vec(&exts, 2, &ext) == -1)
			return SNI_NOT_TLS;
		switch (get16(p)) {
		case EXT_SERVER_NAME:
			/* Two would make routing ambiguous. */
			if (seen++ || (res = server_name(&ext, out->name,
			    sizeof(out->name))) == SNI_NOT_TLS)
				return SNI_NOT_TLS;
			break;
		case EXT_ALPN:
			if (seen_alpn++ || alpn(&ext, out) == -1)
				return SNI_NOT_TLS;
			break;
		case EXT_ECH:
			out->ech = 1;
			break;
		}
	}
	return res;
}

enum sni_res
sni_parse(const unsigned char *p, size_t n, struct hello *out)
{
	unsigned char hdr[4], hs[SNI_MAX_HELLO];
	size_t pos = 0, have = 0, need = 0, rlen, chunk, i;
	struct cur h;

	out->name[0] = '\0';
	out->alpn_len = 0;
	out->ech = 0;
	/*
	 * Walk the record headers until the handshake message is complete,
	 * copying nothing: a hello that arrives a byte at a time costs one
	 * short walk per call, not a copy of everything so far.
	 */
	for (;;) {
		/* Decide on "not TLS" from as few bytes as possible. */
		if (n - pos >= 1 && p[pos] != 0x16)
			return SNI_NOT_TLS;
		if (n - pos >= 2 && p[pos + 1] != 0x03)
			return SNI_NOT_TLS;
		if (n - pos < 5)
			return SNI_MORE;
		rlen = get16(p + pos + 3);
		if (rlen == 0 || rlen > REC_MAX)
			return SNI_NOT_TLS;
		chunk = n - pos - 5 < rlen ? n - pos - 5 : rlen;
		for (i = 0; i < chunk && have + i < sizeof(hdr); i++)
			hdr[have + i] = p[pos + 5 + i];
		have += chunk;
		if (have >= 1 && hdr[0] != 0x01)
			return SNI_NOT_TLS;	/* not a ClientHello */
		if (have >= 4) {
			need = 4 + get24(hdr + 1);
			if (need > sizeof(hs))
				return SNI_MORE; /* over our cap: caller's call */
			if (have >= need)
				break;
		}
		if (chunk < rlen)
			return SNI_MORE;	/* this record is still arriving */
		pos += 5 + rlen;
	}
	if (pos == 0) {
		/* The usual case: the whole message is in the first record. */
		h.p = p + 5 + 4;
	} else {
		/* Reassemble the fragments, once. */
		for (pos = 0, have = 0; have < need; pos += 5 + rlen) {
			rlen = get16(p + pos + 3);
			chunk = need - have < rlen ? need - have : rlen;
			memcpy(hs + have, p + pos + 5, chunk);
			have += chunk;
		}
		h.p = hs + 4;
	}
	h.left = need - 4;
	return client_hello(&h, out);
}
