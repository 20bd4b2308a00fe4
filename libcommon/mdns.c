#include "mdns.h"
#include "discover.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define ENUM_NAME "_services._dns-sd._udp.local"
#define NEVER INT64_MAX

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [lo, hi]. */
static int64_t rng_between(uint64_t *s, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Names */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Wire names compared byte by byte without case: length bytes (0..63)
 * are never letters, so folding every byte is safe. */
static int wire_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

int fd_dns_name_eq(const struct fd_dns_name *a, const struct fd_dns_name *b)
{
	return wire_eq(a->b, a->len, b->b, b->len);
}

static int append_label(struct fd_dns_name *n, const char *s, size_t len)
{
	if (len == 0 || len > FD_MDNS_LABEL_MAX ||
	    (size_t)n->len + 1 + len + 1 > FD_DNS_NAME_MAX) {
		errno = EINVAL;
		return -1;
	}
	n->b[n->len++] = (uint8_t)len;
	memcpy(n->b + n->len, s, len);
	n->len += (uint8_t)len;
	return 0;
}

int fd_dns_name_make(struct fd_dns_name *n, const char *label, const char *dotted)
{
	n->len = 0;
	if (label && append_label(n, label, strlen(label)) < 0)
		return -1;
	while (dotted && *dotted && strcmp(dotted, ".") != 0) {
		const char *dot = strchr(dotted, '.');
		size_t len = dot ? (size_t)(dot - dotted) : strlen(dotted);

		if (append_label(n, dotted, len) < 0)
			return -1;
		dotted += len + (dot ? 1 : 0);
	}
	n->b[n->len++] = 0;
	return 0;
}

int fd_dns_name_child(const struct fd_dns_name *n,
		      const struct fd_dns_name *parent, char *out)
{
	size_t l;

	if (n->len < 2 || n->b[0] == 0)
		return 0;
	l = n->b[0];
	if ((size_t)n->len != 1 + l + parent->len ||
	    !wire_eq(n->b + 1 + l, parent->len, parent->b, parent->len) ||
	    memchr(n->b + 1, '\0', l))
		return 0;
	memcpy(out, n->b + 1, l);
	out[l] = '\0';
	return 1;
}

void fd_dns_name_text(const struct fd_dns_name *n, char *out, size_t len)
{
	size_t o = 0, i = 0;

	if (len == 0)
		return;
	while (i < n->len && n->b[i] != 0) {
		size_t l = n->b[i++];

		if (o && o + 1 < len)
			out[o++] = '.';
		for (size_t k = 0; k < l && i < n->len; k++, i++) {
			char c = (char)n->b[i];

			if ((c == '.' || c == '\\') && o + 1 < len)
				out[o++] = '\\';
			if (o + 1 < len)
				out[o++] = c;
		}
	}
	out[o] = '\0';
}

/* True when n's last label before the root is "local". */
static int under_local(const struct fd_dns_name *n)
{
	return n->len >= 7 &&
	       wire_eq(n->b + n->len - 7, 7, (const uint8_t *)"\5local", 7);
}

/* Decoding */

static int read_name(const uint8_t *buf, size_t len, size_t *off,
		     struct fd_dns_name *out)
{
	size_t p = *off, end = 0;
	int jumped = 0, hops = 0;

	out->len = 0;
	for (;;) {
		uint8_t c;

		if (p >= len)
			return -1;
		c = buf[p];
		if ((c & 0xc0) == 0xc0) {
			size_t ptr;

			if (p + 1 >= len)
				return -1;
			ptr = ((size_t)(c & 0x3f) << 8) | buf[p + 1];
			if (!jumped)
				end = p + 2;
			jumped = 1;
			if (++hops > 64 || ptr >= len)
				return -1;
			p = ptr;
			continue;
		}
		if (c & 0xc0)
			return -1; /* extended label types: not used */
		if (c == 0) {
			out->b[out->len++] = 0;
			if (!jumped)
				end = p + 1;
			break;
		}
		if (p + 1 + c > len || (size_t)out->len + 1 + c + 1 > FD_DNS_NAME_MAX)
			return -1;
		out->b[out->len++] = c;
		memcpy(out->b + out->len, buf + p + 1, c);
		out->len += c;
		p += 1 + (size_t)c;
	}
	*off = end;
	return 0;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int decode_rdata(const uint8_t *buf, size_t len, size_t p, size_t rdlen,
			struct fd_dns_rr *rr)
{
	size_t end = p + rdlen, q = p;

	rr->rdata = buf + p;
	rr->rdlen = (uint16_t)rdlen;
	switch (rr->type) {
	case FD_DNS_A:
		if (rdlen != 4)
			return -1;
		memcpy(rr->addr, buf + p, 4);
		return 0;
	case FD_DNS_AAAA:
		if (rdlen != 16)
			return -1;
		memcpy(rr->addr, buf + p, 16);
		return 0;
	case FD_DNS_PTR:
		if (read_name(buf, end, &q, &rr->target) < 0 || q != end)
			return -1;
		return 0;
	case FD_DNS_SRV:
		if (rdlen < 7)
			return -1;
		rr->priority = get16(buf + p);
		rr->weight = get16(buf + p + 2);
		rr->port = get16(buf + p + 4);
		q = p + 6;
		if (read_name(buf, end, &q, &rr->target) < 0 || q != end)
			return -1;
		return 0;
	default: (void)len; return 0;
	}
}

int fd_dns_decode(const uint8_t *buf, size_t len, struct fd_dns_msg *m,
		  struct fd_err *err)
{
	size_t p = 12, counts[4];
	struct fd_dns_rr spare;

	m->nq = m->nrr = 0;
	m->truncated = 0;
	if (len < 12)
		return fd_err_set(err, "truncated header");
	m->id = get16(buf);
	m->flags = get16(buf + 2);
	for (int i = 0; i < 4; i++)
		counts[i] = get16(buf + 4 + 2 * i);
	for (size_t i = 0; i < counts[0]; i++) {
		struct fd_dns_q spare_q = {0};
		struct fd_dns_q *qp = m->nq < FD_DNS_MAX_Q ? &m->q[m->nq] : &spare_q;

		if (read_name(buf, len, &p, &qp->name) < 0)
			return fd_err_set(err, "bad name in question %zu", i + 1);
		if (p + 4 > len)
			return fd_err_set(err, "truncated question %zu", i + 1);
		qp->type = get16(buf + p);
		qp->class = get16(buf + p + 2) & 0x7fff;
		qp->unicast = (buf[p + 2] & 0x80) != 0;
		p += 4;
		if (qp == &spare_q)
			m->truncated = 1;
		else
			m->nq++;
	}
	for (int s = 1; s <= 3; s++) {
		for (size_t i = 0; i < counts[s]; i++) {
			struct fd_dns_rr *rr =
				m->nrr < FD_DNS_MAX_RR ? &m->rr[m->nrr] : &spare;
			size_t rdlen;

			memset(rr, 0, sizeof(*rr));
			rr->section = s;
			if (read_name(buf, len, &p, &rr->name) < 0)
				return fd_err_set(err, "bad name in record %zu",
						  m->nrr + 1);
			if (p + 10 > len)
				return fd_err_set(err, "truncated record %zu",
						  m->nrr + 1);
			rr->type = get16(buf + p);
			rr->class = get16(buf + p + 2) & 0x7fff;
			rr->flush = (buf[p + 2] & 0x80) != 0;
			rr->ttl = get32(buf + p + 4);
			rdlen = get16(buf + p + 8);
			p += 10;
			if (p + rdlen > len)
				return fd_err_set(err, "truncated record %zu",
						  m->nrr + 1);
			if (decode_rdata(buf, len, p, rdlen, rr) < 0)
				return fd_err_set(err, "bad data in record %zu (type %u)",
						  m->nrr + 1, rr->type);
			p += rdlen;
			if (rr == &spare)
				m->truncated = 1;
			else
				m->nrr++;
		}
	}
	return 0;
}

/* Encoding */

static void put(struct fd_dns_writer *w, const void *p, size_t n)
{
	if (w->overflow || w->len + n > w->cap) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put16(struct fd_dns_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(w, b, 2);
}

static void put32(struct fd_dns_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};

	put(w, b, 4);
}

void fd_dns_w_init(struct fd_dns_writer *w, uint8_t *buf, size_t cap,
		   uint16_t id, uint16_t flags)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	put16(w, id);
	put16(w, flags);
	for (int i = 0; i < 4; i++)
		put16(w, 0);
}

/* Writes name, compressed against the labels written before when compress
 * is set; records where its own labels start for later names. */
static void put_name(struct fd_dns_writer *w, const struct fd_dns_name *n, int compress)
{
	size_t i = 0;

	while (i < n->len && n->b[i] != 0) {
		if (compress) {
			for (size_t k = 0; k < w->nlabels; k++) {
				struct fd_dns_name there;
				size_t off = w->labels[k];

				if (read_name(w->buf, w->len, &off, &there) == 0 &&
				    wire_eq(there.b, there.len, n->b + i, n->len - i)) {
					put16(w, (uint16_t)(0xc000 | w->labels[k]));
					return;
				}
			}
		}
		if (w->nlabels < sizeof(w->labels) / sizeof(w->labels[0]) &&
		    w->len < 0x3fff && !w->overflow)
			w->labels[w->nlabels++] = (uint16_t)w->len;
		put(w, n->b + i, 1 + (size_t)n->b[i]);
		i += 1 + (size_t)n->b[i];
	}
	put(w, "", 1);
}

void fd_dns_w_question(struct fd_dns_writer *w, const struct fd_dns_name *name,
		       uint16_t type, int unicast)
{
	if (w->section != 0) {
		w->overflow = 1;
		return;
	}
	put_name(w, name, 1);
	put16(w, type);
	put16(w, (uint16_t)(FD_DNS_IN | (unicast ? 0x8000 : 0)));
	w->count[0]++;
}

void fd_dns_w_rr(struct fd_dns_writer *w, const struct fd_dns_rr *rr)
{
	size_t rdpos;

	if (rr->section < w->section || rr->section < 1 || rr->section > 3) {
		w->overflow = 1;
		return;
	}
	w->section = rr->section;
	put_name(w, &rr->name, 1);
	put16(w, rr->type);
	put16(w, (uint16_t)(rr->class | (rr->flush ? 0x8000 : 0)));
	put32(w, rr->ttl);
	rdpos = w->len;
	put16(w, 0);
	switch (rr->type) {
	case FD_DNS_A: put(w, rr->addr, 4); break;
	case FD_DNS_AAAA: put(w, rr->addr, 16); break;
	case FD_DNS_PTR: put_name(w, &rr->target, 1); break;
	case FD_DNS_SRV:
		put16(w, rr->priority);
		put16(w, rr->weight);
		put16(w, rr->port);
		put_name(w, &rr->target, 0);
		break;
	default: put(w, rr->rdata, rr->rdlen); break;
	}
	if (w->overflow)
		return;
	w->buf[rdpos] = (uint8_t)((w->len - rdpos - 2) >> 8);
	w->buf[rdpos + 1] = (uint8_t)(w->len - rdpos - 2);
	w->count[rr->section]++;
}

ssize_t fd_dns_w_finish(struct fd_dns_writer *w)
{
	if (w->overflow)
		return -1;
	for (int i = 0; i < 4; i++) {
		w->buf[4 + 2 * i] = (uint8_t)(w->count[i] >> 8);
		w->buf[5 + 2 * i] = (uint8_t)w->count[i];
	}
	return (ssize_t)w->len;
}

/* The writer's state, to take back a record that did not fit. */
struct w_mark {
	size_t len, nlabels;
	uint16_t count[4];
	int section;
};

static void w_mark(const struct fd_dns_writer *w, struct w_mark *m)
{
	m->len = w->len;
	m->nlabels = w->nlabels;
	m->section = w->section;
	memcpy(m->count, w->count, sizeof(m->count));
}

static void w_reset(struct fd_dns_writer *w, const struct w_mark *m)
{
	w->len = m->len;
	w->nlabels = m->nlabels;
	w->section = m->section;
	memcpy(w->count, m->count, sizeof(m->count));
	w->overflow = 0;
}

/* Record data in canonical form (names uncompressed, lowercased): what
 * conflicts and tie-breaks compare (RFC 6762 §8.2, §9). Other types are
 * compared as they came. */
static size_t rdata_canon(const struct fd_dns_rr *rr, uint8_t *out)
{
	size_t n = 0;

	switch (rr->type) {
	case FD_DNS_A: memcpy(out, rr->addr, 4); return 4;
	case FD_DNS_AAAA: memcpy(out, rr->addr, 16); return 16;
	case FD_DNS_SRV:
		out[0] = (uint8_t)(rr->priority >> 8);
		out[1] = (uint8_t)rr->priority;
		out[2] = (uint8_t)(rr->weight >> 8);
		out[3] = (uint8_t)rr->weight;
		out[4] = (uint8_t)(rr->port >> 8);
		out[5] = (uint8_t)rr->port;
		n = 6;
		/* fall through */
	default:
		for (size_t i = 0; i < rr->target.len; i++)
			out[n++] = (uint8_t)lower(rr->target.b[i]);
		return n;
	}
}

static int rdata_cmp(const struct fd_dns_rr *a, const struct fd_dns_rr *b)
{
	uint8_t xb[6 + FD_DNS_NAME_MAX], yb[6 + FD_DNS_NAME_MAX];
	const uint8_t *x = xb, *y = yb;
	size_t xl, yl;
	int c;

	if (a->type == b->type && a->type != FD_DNS_A && a->type != FD_DNS_AAAA &&
	    a->type != FD_DNS_PTR && a->type != FD_DNS_SRV) {
		x = a->rdata;
		xl = a->rdlen;
		y = b->rdata;
		yl = b->rdlen;
	} else {
		xl = rdata_canon(a, xb);
		yl = rdata_canon(b, yb);
	}
	c = xl && yl ? memcmp(x, y, xl < yl ? xl : yl) : 0;
	if (c)
		return c;
	return xl < yl ? -1 : xl > yl;
}

/* The service instance */

int fd_mdns_instance_ok(const char *name, struct fd_err *err)
{
	size_t len = strlen(name);

	if (len == 0 || len > FD_MDNS_LABEL_MAX)
		return fd_err_set(err, "an mDNS instance name has 1 to %d bytes ('%s' has %zu)",
				  FD_MDNS_LABEL_MAX, name, len);
	if (!fd_utf8_valid(name, len))
		return fd_err_set(err, "an mDNS instance name must be UTF-8");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return fd_err_set(
				err, "an mDNS instance name has no control characters");
	return 0;
}

/* A DNS host name: labels of letters, digits, '-' and '_', 1 to 63 bytes
 * each, at most 253 bytes in all. */
static int hostname_ok(const char *h)
{
	size_t label = 0, len = strlen(h);

	if (len == 0 || len > 253)
		return 0;
	for (const char *c = h; *c; c++) {
		if (*c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
			    *c) ||
		    ++label > FD_MDNS_LABEL_MAX)
			return 0;
	}
	return 1;
}

int fd_mdns_svc_init(struct fd_mdns_svc *svc, const char *instance, const char *id,
		     const char *adv_host, int port, struct fd_err *err)
{
	memset(svc, 0, sizeof(*svc));
	if (fd_mdns_instance_ok(instance, err) < 0)
		return -1;
	snprintf(svc->instance, sizeof(svc->instance), "%s", instance);
	if (strlen(id) < 12 || strspn(id, "0123456789abcdefABCDEF") < 12)
		return fd_err_set(err, "invalid node id '%s'", id);
	snprintf(svc->host, sizeof(svc->host), "fd-%.12s", id);
	for (char *c = svc->host; *c; c++)
		*c = (char)lower(*c);
	if (port < 1 || port > 65535)
		return fd_err_set(err, "invalid port %d", port);
	svc->port = (uint16_t)port;
	if (inet_pton(AF_INET, adv_host, svc->addr) == 1) {
		svc->family = AF_INET;
	} else if (inet_pton(AF_INET6, adv_host, svc->addr) == 1) {
		svc->family = AF_INET6;
	} else if (hostname_ok(adv_host)) {
		snprintf(svc->target, sizeof(svc->target), "%s", adv_host);
	} else {
		return fd_err_set(err, "invalid advertised host '%s'", adv_host);
	}
	return 0;
}

int fd_mdns_svc_txt(struct fd_mdns_svc *svc, const char *key, const char *value,
		    struct fd_err *err)
{
	size_t klen = strlen(key), vlen = value ? strlen(value) : 0;
	size_t slen = klen + (value ? 1 + vlen : 0);

	if (klen == 0)
		return fd_err_set(err, "empty TXT key");
	for (const char *c = key; *c; c++)
		if (*c < 0x20 || *c > 0x7e || *c == '=')
			return fd_err_set(err, "invalid TXT key '%s' (printable ASCII without '=')",
					  key);
	if (slen > 255)
		return fd_err_set(err, "TXT string '%s=…' longer than 255 bytes", key);
	if (svc->txt_len + 1 + slen > FD_MDNS_TXT_MAX)
		return fd_err_set(err, "TXT record longer than %d bytes",
				  FD_MDNS_TXT_MAX);
	svc->txt[svc->txt_len++] = (uint8_t)slen;
	memcpy(svc->txt + svc->txt_len, key, klen);
	svc->txt_len += klen;
	if (value) {
		svc->txt[svc->txt_len++] = '=';
		memcpy(svc->txt + svc->txt_len, value, vlen);
		svc->txt_len += vlen;
	}
	return 0;
}

void fd_mdns_rename(const char *base, int n, char *out)
{
	char suffix[16];
	size_t slen = (size_t)snprintf(suffix, sizeof(suffix), " (%d)", n);
	size_t cut = strlen(base);

	if (cut + slen > FD_MDNS_LABEL_MAX) {
		cut = FD_MDNS_LABEL_MAX - slen;
		while (cut > 0 && ((unsigned char)base[cut] & 0xc0) == 0x80)
			cut--;
	}
	memcpy(out, base, cut);
	memcpy(out + cut, suffix, slen + 1);
}

struct json_object *fd_mdns_txt_json(const uint8_t *rdata, size_t len)
{
	struct json_object *o = json_object_new_object();
	size_t p = 0;

	if (!o)
		return NULL;
	while (p < len) {
		size_t l = rdata[p++], klen;
		const char *s = (const char *)rdata + p, *eq;
		char key[256];
		int dup = 0, ok = 1;

		if (l > len - p)
			break;
		p += l;
		eq = memchr(s, '=', l);
		klen = eq ? (size_t)(eq - s) : l;
		if (klen == 0)
			continue; /* RFC 6763 §6.4: no key, ignored */
		for (size_t i = 0; i < klen; i++)
			if (s[i] < 0x20 || s[i] > 0x7e)
				ok = 0;
		if (!ok || (eq && !fd_utf8_valid(eq + 1, l - klen - 1)))
			continue;
		memcpy(key, s, klen);
		key[klen] = '\0';
		json_object_object_foreach(o, k, v)
		{
			(void)v;
			if (strcasecmp(k, key) == 0)
				dup = 1;
		}
		if (dup)
			continue;
		json_object_object_add(o, key,
				       eq ? json_object_new_string_len(
						    eq + 1, (int)(l - klen - 1))
					  : json_object_new_boolean(1));
	}
	return o;
}

/* Responder */

enum { R_PTR = 1, R_SRV = 2, R_TXT = 4, R_ADDR = 8, R_ENUM = 16, R_ALL = 31 };

struct names {
	struct fd_dns_name service, instance, host, enumname;
};

static void svc_names(const struct fd_mdns_svc *svc, struct names *n)
{
	fd_dns_name_make(&n->service, NULL, FD_MDNS_SERVICE);
	fd_dns_name_make(&n->instance, svc->instance, FD_MDNS_SERVICE);
	if (svc->target[0])
		fd_dns_name_make(&n->host, NULL, svc->target);
	else
		fd_dns_name_make(&n->host, svc->host, "local");
	fd_dns_name_make(&n->enumname, NULL, ENUM_NAME);
}

/* Our record for bit (R_*); returns 0 when we have none (no address). */
static int svc_rr(const struct fd_mdns_svc *svc, const struct names *n, int bit,
		  struct fd_dns_rr *rr)
{
	static const uint8_t empty_txt[1] = {0};

	memset(rr, 0, sizeof(*rr));
	rr->class = FD_DNS_IN;
	rr->section = FD_DNS_ANSWER;
	switch (bit) {
	case R_PTR:
		rr->name = n->service;
		rr->type = FD_DNS_PTR;
		rr->target = n->instance;
		rr->ttl = FD_MDNS_TTL_OTHER;
		return 1;
	case R_ENUM:
		rr->name = n->enumname;
		rr->type = FD_DNS_PTR;
		rr->target = n->service;
		rr->ttl = FD_MDNS_TTL_OTHER;
		return 1;
	case R_SRV:
		rr->name = n->instance;
		rr->type = FD_DNS_SRV;
		rr->flush = 1;
		rr->port = svc->port;
		rr->target = n->host;
		rr->ttl = FD_MDNS_TTL_HOST;
		return 1;
	case R_TXT:
		rr->name = n->instance;
		rr->type = FD_DNS_TXT;
		rr->flush = 1;
		rr->rdata = svc->txt_len ? svc->txt : empty_txt; /* RFC 6763 §6.1 */
		rr->rdlen = (uint16_t)(svc->txt_len ? svc->txt_len : 1);
		rr->ttl = FD_MDNS_TTL_OTHER;
		return 1;
	case R_ADDR:
		if (!svc->family)
			return 0;
		rr->name = n->host;
		rr->type = svc->family == AF_INET ? FD_DNS_A : FD_DNS_AAAA;
		memcpy(rr->addr, svc->addr, 16);
		rr->flush = 1;
		rr->ttl = FD_MDNS_TTL_HOST;
		return 1;
	}
	return 0;
}

/* Writes our records of bits into section. ttl < 0: the normal TTLs;
 * otherwise at most ttl (0: goodbye); legacy: no cache-flush bits. */
static void put_records(struct fd_dns_writer *w, const struct fd_mdns_svc *svc,
			const struct names *n, unsigned bits, int section,
			long ttl, int legacy)
{
	for (int bit = 1; bit <= R_ENUM; bit <<= 1) {
		struct fd_dns_rr rr;

		if (!(bits & (unsigned)bit) || !svc_rr(svc, n, bit, &rr))
			continue;
		rr.section = section;
		if (ttl >= 0 && rr.ttl > (uint32_t)ttl)
			rr.ttl = (uint32_t)ttl;
		if (legacy)
			rr.flush = 0;
		fd_dns_w_rr(w, &rr);
	}
}

/* The records answering question q, and the additional records that go
 * with them (RFC 6763 §12). */
static void answer_bits(const struct fd_mdns_svc *svc, const struct names *n,
			const struct fd_dns_q *q, unsigned *ans, unsigned *add)
{
	int any = q->type == FD_DNS_ANY;

	if (q->class != FD_DNS_IN && q->class != 255)
		return;
	if (fd_dns_name_eq(&q->name, &n->service) && (any || q->type == FD_DNS_PTR)) {
		*ans |= R_PTR;
		*add |= R_SRV | R_TXT | R_ADDR;
	}
	if (fd_dns_name_eq(&q->name, &n->enumname) && (any || q->type == FD_DNS_PTR))
		*ans |= R_ENUM;
	if (fd_dns_name_eq(&q->name, &n->instance)) {
		if (any || q->type == FD_DNS_SRV) {
			*ans |= R_SRV;
			*add |= R_ADDR;
		}
		if (any || q->type == FD_DNS_TXT)
			*ans |= R_TXT;
	}
	if (svc->family && fd_dns_name_eq(&q->name, &n->host) &&
	    (any || q->type == (svc->family == AF_INET ? FD_DNS_A : FD_DNS_AAAA)))
		*ans |= R_ADDR;
}

/* Known-answer suppression (RFC 6762 §7.1): the querier has our record
 * with at least half its TTL left. */
static unsigned known_answers(const struct fd_mdns_svc *svc,
			      const struct names *n, const struct fd_dns_msg *m)
{
	unsigned known = 0;

	for (size_t i = 0; i < m->nrr; i++) {
		const struct fd_dns_rr *k = &m->rr[i];

		if (k->section != FD_DNS_ANSWER)
			continue;
		for (int bit = 1; bit <= R_ENUM; bit <<= 1) {
			struct fd_dns_rr ours;

			if (svc_rr(svc, n, bit, &ours) && k->type == ours.type &&
			    fd_dns_name_eq(&k->name, &ours.name) &&
			    k->ttl >= ours.ttl / 2 && rdata_cmp(k, &ours) == 0)
				known |= (unsigned)bit;
		}
	}
	return known;
}

static void start_probing(struct fd_mdns_responder *r, int64_t now, int64_t delay)
{
	r->state = FD_MDNS_PROBING;
	r->sent = 0;
	r->pending = 0;
	r->next = now + delay;
}

void fd_mdns_responder_init(struct fd_mdns_responder *r,
			    const struct fd_mdns_svc *svc, uint64_t seed, int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->svc = *svc;
	snprintf(r->base, sizeof(r->base), "%s", svc->instance);
	snprintf(r->base_host, sizeof(r->base_host), "%s", svc->host);
	r->rng = seed;
	start_probing(r, now, rng_between(&r->rng, 0, 250));
}

static int rr_cmp_canon(const void *a, const void *b)
{
	const struct fd_dns_rr *x = a, *y = b;

	if (x->class != y->class)
		return x->class < y->class ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return rdata_cmp(x, y);
}

/* Simultaneous probe tie-break for one name (RFC 6762 §8.2): > 0 when the
 * other prober's records for name sort after ours (it wins), 0 when they
 * are ours, < 0 when we win or it says nothing about name. */
static int tiebreak(const struct fd_mdns_svc *svc, const struct names *n,
		    const struct fd_dns_name *name, const struct fd_dns_msg *m)
{
	struct fd_dns_rr theirs[8], ours[2];
	size_t nt = 0, no = 0;

	for (size_t i = 0; i < m->nrr && nt < 8; i++)
		if (m->rr[i].section == FD_DNS_AUTHORITY &&
		    fd_dns_name_eq(&m->rr[i].name, name))
			theirs[nt++] = m->rr[i];
	if (nt == 0)
		return -1;
	for (int bit = R_SRV; bit <= R_ADDR; bit <<= 1) {
		struct fd_dns_rr rr;

		if (svc_rr(svc, n, bit, &rr) && fd_dns_name_eq(&rr.name, name))
			ours[no++] = rr;
	}
	qsort(theirs, nt, sizeof(theirs[0]), rr_cmp_canon);
	qsort(ours, no, sizeof(ours[0]), rr_cmp_canon);
	for (size_t i = 0; i < nt && i < no; i++) {
		int c = rr_cmp_canon(&theirs[i], &ours[i]);

		if (c)
			return c;
	}
	return nt > no ? 1 : nt < no ? -1 : 0;
}

/* A response claiming one of our unique names with other data: 1 for the
 * instance name, 2 for the host name, 0 for none. */
static int conflict_in(const struct fd_mdns_svc *svc, const struct names *n,
		       const struct fd_dns_msg *m)
{
	int which = 0;

	for (size_t i = 0; i < m->nrr; i++) {
		const struct fd_dns_rr *rr = &m->rr[i];

		if (rr->ttl == 0)
			continue; /* a goodbye claims nothing */
		for (int bit = R_SRV; bit <= R_ADDR; bit <<= 1) {
			struct fd_dns_rr ours;

			if (svc_rr(svc, n, bit, &ours) &&
			    rr->type == ours.type && rr->class == ours.class &&
			    fd_dns_name_eq(&rr->name, &ours.name) &&
			    rdata_cmp(rr, &ours) != 0)
				which |= bit == R_ADDR ? 2 : 1;
		}
	}
	return which;
}

static void rename_after(struct fd_mdns_responder *r, int64_t now, int which)
{
	int64_t delay;

	r->renames++;
	r->stats.renames++;
	if (which & 1)
		fd_mdns_rename(r->base, r->renames + 1, r->svc.instance);
	if (which & 2)
		snprintf(r->svc.host, sizeof(r->svc.host), "%.50s-%d",
			 r->base_host, r->renames + 1);
	/* RFC 6762 §8.1: after 15 conflicts within 10 s, 5 s between tries */
	if (now - r->conflict_win > 10000) {
		r->conflict_win = now;
		r->conflict_n = 0;
	}
	delay = ++r->conflict_n >= 15 ? 5000 : rng_between(&r->rng, 0, 250);
	start_probing(r, now, delay);
}

enum fd_mdns_event fd_mdns_responder_recv(struct fd_mdns_responder *r,
					  int64_t now, const struct fd_dns_msg *m)
{
	struct names n;
	unsigned ans = 0, add = 0, known;

	if (r->state == FD_MDNS_STOPPED)
		return FD_MDNS_EV_NONE;
	svc_names(&r->svc, &n);
	if (m->flags & FD_DNS_QR) {
		int which = conflict_in(&r->svc, &n, m);

		if (!which)
			return FD_MDNS_EV_NONE;
		r->stats.conflicts++;
		if (r->state == FD_MDNS_PROBING) {
			rename_after(r, now, which);
			return FD_MDNS_EV_RENAMED;
		}
		/* RFC 6762 §9: after probing, a conflict sends us back to
		 * probing the same names; whoever else holds them answers
		 * then, and we rename. */
		start_probing(r, now, 0);
		return FD_MDNS_EV_REPROBE;
	}
	if (r->state == FD_MDNS_PROBING) {
		if (tiebreak(&r->svc, &n, &n.instance, m) > 0 ||
		    (r->svc.family && tiebreak(&r->svc, &n, &n.host, m) > 0)) {
			r->stats.conflicts++;
			start_probing(r, now, 1000);
			return FD_MDNS_EV_REPROBE;
		}
		return FD_MDNS_EV_NONE;
	}
	for (size_t i = 0; i < m->nq; i++)
		answer_bits(&r->svc, &n, &m->q[i], &ans, &add);
	if (!ans)
		return FD_MDNS_EV_NONE;
	r->stats.queries++;
	known = known_answers(&r->svc, &n, m);
	ans &= ~known;
	if (!ans)
		return FD_MDNS_EV_NONE;
	{
		/* Shared records wait 20-120 ms so answers from several
		 * responders spread out; unique ones go at once (§6). */
		int64_t at = now + ((ans & (R_PTR | R_ENUM))
					    ? rng_between(&r->rng, 20, 120)
					    : 0);

		r->answer_at = r->pending ? min64(r->answer_at, at) : at;
		r->pending |= ans | ((add & ~ans & ~known) << 8);
	}
	return FD_MDNS_EV_ANSWERING;
}

static ssize_t announce(const struct fd_mdns_svc *svc, uint8_t *buf, size_t cap,
			long ttl)
{
	struct fd_dns_writer w;
	struct names n;

	svc_names(svc, &n);
	fd_dns_w_init(&w, buf, cap, 0, FD_DNS_QR | FD_DNS_AA);
	put_records(&w, svc, &n, R_ALL, FD_DNS_ANSWER, ttl, 0);
	return fd_dns_w_finish(&w);
}

static ssize_t probe(const struct fd_mdns_svc *svc, uint8_t *buf, size_t cap)
{
	struct fd_dns_writer w;
	struct names n;

	svc_names(svc, &n);
	fd_dns_w_init(&w, buf, cap, 0, 0);
	fd_dns_w_question(&w, &n.instance, FD_DNS_ANY, 0);
	if (svc->family)
		fd_dns_w_question(&w, &n.host, FD_DNS_ANY, 0);
	put_records(&w, svc, &n, R_SRV | R_TXT | R_ADDR, FD_DNS_AUTHORITY, -1, 0);
	return fd_dns_w_finish(&w);
}

static int64_t responder_next(const struct fd_mdns_responder *r)
{
	int64_t next = NEVER;

	if (r->state == FD_MDNS_PROBING || r->state == FD_MDNS_ANNOUNCING)
		next = r->next;
	if (r->pending)
		next = min64(next, r->answer_at);
	return next;
}

ssize_t fd_mdns_responder_poll(struct fd_mdns_responder *r, int64_t now,
			       uint8_t *buf, size_t cap, int64_t *next)
{
	ssize_t len = 0;

	if (r->pending && now >= r->answer_at &&
	    (r->state == FD_MDNS_ANNOUNCING || r->state == FD_MDNS_READY)) {
		struct fd_dns_writer w;
		struct names n;

		svc_names(&r->svc, &n);
		fd_dns_w_init(&w, buf, cap, 0, FD_DNS_QR | FD_DNS_AA);
		put_records(&w, &r->svc, &n, r->pending & 0xff, FD_DNS_ANSWER, -1, 0);
		put_records(&w, &r->svc, &n, r->pending >> 8, FD_DNS_ADDITIONAL,
			    -1, 0);
		r->pending = 0;
		len = fd_dns_w_finish(&w);
		r->stats.answers++;
	} else if (r->state == FD_MDNS_PROBING && now >= r->next) {
		if (r->sent < 3) {
			len = probe(&r->svc, buf, cap);
			r->sent++;
			r->next = now + 250;
			r->stats.probes++;
		} else {
			/* 250 ms after the third probe, nobody objected */
			r->state = FD_MDNS_ANNOUNCING;
			r->sent = 0;
			r->next = now;
		}
	}
	if (len == 0 && r->state == FD_MDNS_ANNOUNCING && now >= r->next) {
		len = announce(&r->svc, buf, cap, -1);
		r->stats.announcements++;
		if (++r->sent >= 2)
			r->state = FD_MDNS_READY;
		r->next = now + 1000;
	}
	*next = responder_next(r);
	if (len == 0 && *next <= now)
		*next = now + 1; /* e.g. probing done, announcing next turn */
	return len < 0 ? 0 : len;
}

ssize_t fd_mdns_responder_legacy(struct fd_mdns_responder *r,
				 const struct fd_dns_msg *m, uint8_t *buf, size_t cap)
{
	struct fd_dns_writer w;
	struct names n;
	unsigned ans = 0, add = 0;
	ssize_t len;

	if ((r->state != FD_MDNS_ANNOUNCING && r->state != FD_MDNS_READY) ||
	    (m->flags & FD_DNS_QR))
		return 0;
	svc_names(&r->svc, &n);
	for (size_t i = 0; i < m->nq; i++)
		answer_bits(&r->svc, &n, &m->q[i], &ans, &add);
	if (!ans)
		return 0;
	fd_dns_w_init(&w, buf, cap, m->id, FD_DNS_QR | FD_DNS_AA);
	for (size_t i = 0; i < m->nq; i++)
		fd_dns_w_question(&w, &m->q[i].name, m->q[i].type, 0);
	put_records(&w, &r->svc, &n, ans, FD_DNS_ANSWER, FD_MDNS_TTL_LEGACY, 1);
	put_records(&w, &r->svc, &n, add & ~ans, FD_DNS_ADDITIONAL,
		    FD_MDNS_TTL_LEGACY, 1);
	len = fd_dns_w_finish(&w);
	if (len > 0)
		r->stats.answers++;
	return len < 0 ? 0 : len;
}

ssize_t fd_mdns_responder_goodbye(struct fd_mdns_responder *r, uint8_t *buf, size_t cap)
{
	int announced = r->stats.announcements > 0 && r->state != FD_MDNS_STOPPED;
	ssize_t len;

	r->state = FD_MDNS_STOPPED;
	r->pending = 0;
	if (!announced)
		return 0;
	len = announce(&r->svc, buf, cap, 0);
	return len < 0 ? 0 : len;
}

/* Browser */

struct brec {
	struct fd_dns_rr rr; /* rdata points to txt for TXT records */
	uint8_t *txt;
	int64_t received, expires;
	int stage;  /* refresh queries sent for this record: 0..4 */
	int jitter; /* 0..2 %, so many browsers do not refresh at once */
};

struct fd_mdns_browser {
	struct brec *recs;
	size_t n, max;
	struct fd_dns_name service;
	int64_t ptr_next, ptr_interval, max_interval, resolve_next;
	uint64_t rng;
	struct fd_mdns_browser_stats stats;
};

struct fd_mdns_browser *fd_mdns_browser_new(size_t max_records,
					    int64_t max_interval_ms,
					    uint64_t seed, int64_t now)
{
	struct fd_mdns_browser *b = calloc(1, sizeof(*b));

	if (!b) {
		errno = ENOMEM;
		return NULL;
	}
	b->max = max_records ? max_records : 1024;
	b->recs = calloc(b->max, sizeof(*b->recs));
	if (!b->recs) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	fd_dns_name_make(&b->service, NULL, FD_MDNS_SERVICE);
	b->rng = seed;
	b->ptr_interval = 1000;
	b->max_interval = max_interval_ms > 0 ? max_interval_ms : 3600000;
	b->ptr_next = now + rng_between(&b->rng, 20, 120);
	b->resolve_next = now;
	return b;
}

void fd_mdns_browser_free(struct fd_mdns_browser *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->recs[i].txt);
	free(b->recs);
	free(b);
}

const struct fd_mdns_browser_stats *fd_mdns_browser_stats(const struct fd_mdns_browser *b)
{
	return &b->stats;
}

static int same_rdata(const struct fd_dns_rr *a, const struct fd_dns_rr *b)
{
	switch (a->type) {
	case FD_DNS_A: return memcmp(a->addr, b->addr, 4) == 0;
	case FD_DNS_AAAA: return memcmp(a->addr, b->addr, 16) == 0;
	case FD_DNS_PTR: return fd_dns_name_eq(&a->target, &b->target);
	case FD_DNS_SRV:
		return a->priority == b->priority && a->weight == b->weight &&
		       a->port == b->port &&
		       fd_dns_name_eq(&a->target, &b->target);
	default:
		return a->rdlen == b->rdlen &&
		       (a->rdlen == 0 || memcmp(a->rdata, b->rdata, a->rdlen) == 0);
	}
}

static int live(const struct brec *r, int64_t now)
{
	return r->expires > now;
}

/* Caches rr; returns 1 when it is new. */
static int cache_put(struct fd_mdns_browser *b, int64_t now,
		     const struct fd_dns_rr *rr)
{
	struct brec *found = NULL, *r;

	for (size_t i = 0; i < b->n; i++) {
		r = &b->recs[i];
		if (r->rr.type != rr->type || !fd_dns_name_eq(&r->rr.name, &rr->name))
			continue;
		if (same_rdata(&r->rr, rr))
			found = r;
		else if (rr->flush && rr->ttl > 0 && r->received < now - 1000)
			r->expires = min64(r->expires, now + 1000);
	}
	if (found) {
		if (rr->ttl == 0) {
			found->expires = min64(found->expires, now + 1000);
			found->stage = 4; /* leaving: no refresh */
			return 0;
		}
		found->rr.ttl = rr->ttl;
		found->received = now;
		found->expires = now + (int64_t)rr->ttl * 1000;
		found->stage = 0;
		return 0;
	}
	if (rr->ttl == 0)
		return 0;
	if (b->n == b->max) {
		b->stats.dropped++;
		return 0;
	}
	r = &b->recs[b->n];
	memset(r, 0, sizeof(*r));
	r->rr = *rr;
	r->rr.section = FD_DNS_ANSWER;
	r->rr.flush = 0;
	if (rr->type != FD_DNS_A && rr->type != FD_DNS_AAAA &&
	    rr->type != FD_DNS_PTR && rr->type != FD_DNS_SRV) {
		r->txt = malloc(rr->rdlen ? rr->rdlen : 1);
		if (!r->txt) {
			b->stats.dropped++;
			return 0;
		}
		if (rr->rdlen)
			memcpy(r->txt, rr->rdata, rr->rdlen);
		r->rr.rdata = r->txt;
	} else {
		r->rr.rdata = NULL;
		r->rr.rdlen = 0;
	}
	r->received = now;
	r->expires = now + (int64_t)rr->ttl * 1000;
	r->jitter = (int)rng_between(&b->rng, 0, 2);
	b->n++;
	b->stats.records++;
	return 1;
}

static void cache_expire(struct fd_mdns_browser *b, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < b->n; i++) {
		if (!live(&b->recs[i], now)) {
			free(b->recs[i].txt);
			continue;
		}
		b->recs[k++] = b->recs[i];
	}
	b->n = k;
}

static const struct brec *find_live(const struct fd_mdns_browser *b, int64_t now,
				    const struct fd_dns_name *name, uint16_t type)
{
	const struct brec *best = NULL;

	for (size_t i = 0; i < b->n; i++) {
		const struct brec *r = &b->recs[i];

		if (r->rr.type != type || !live(r, now) ||
		    !fd_dns_name_eq(&r->rr.name, name))
			continue;
		/* SRV: the lowest priority, then the newest */
		if (!best || r->rr.priority < best->rr.priority ||
		    (r->rr.priority == best->rr.priority &&
		     r->received > best->received))
			best = r;
	}
	return best;
}

/* Is name the target of a live SRV record? */
static int srv_target(const struct fd_mdns_browser *b, int64_t now,
		      const struct fd_dns_name *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->recs[i].rr.type == FD_DNS_SRV && live(&b->recs[i], now) &&
		    fd_dns_name_eq(&b->recs[i].rr.target, name))
			return 1;
	return 0;
}

int fd_mdns_browser_recv(struct fd_mdns_browser *b, int64_t now,
			 const struct fd_dns_msg *m)
{
	char label[FD_MDNS_LABEL_MAX + 1];
	int added = 0;

	if (!(m->flags & FD_DNS_QR))
		return 0;
	b->stats.packets++;
	/* Service records first, then the addresses of the SRV targets
	 * (which may come before their SRV in the packet). */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < m->nrr; i++) {
			const struct fd_dns_rr *rr = &m->rr[i];
			int take;

			if (rr->section == FD_DNS_AUTHORITY || rr->class != FD_DNS_IN)
				continue;
			if (pass == 0)
				take = (rr->type == FD_DNS_PTR &&
					fd_dns_name_eq(&rr->name, &b->service) &&
					fd_dns_name_child(&rr->target,
							  &b->service, label)) ||
				       ((rr->type == FD_DNS_SRV ||
					 rr->type == FD_DNS_TXT) &&
					fd_dns_name_child(&rr->name,
							  &b->service, label));
			else
				take = (rr->type == FD_DNS_A ||
					rr->type == FD_DNS_AAAA) &&
				       srv_target(b, now, &rr->name);
			if (take && cache_put(b, now, rr))
				added = 1;
		}
	}
	return added;
}

enum { RES_OK, RES_NO_SRV, RES_NO_ADDR, RES_BAD };

/* Resolves the instance a PTR record names into addr. */
static int resolve(const struct fd_mdns_browser *b, int64_t now,
		   const struct brec *ptr, char *addr, size_t len,
		   const struct brec **srv_out)
{
	const struct brec *srv = find_live(b, now, &ptr->rr.target, FD_DNS_SRV), *a;
	char host[4 * FD_DNS_NAME_MAX], hp[4 * FD_DNS_NAME_MAX + 8];

	*srv_out = srv;
	if (!srv)
		return RES_NO_SRV;
	if (srv->rr.port == 0)
		return RES_BAD;
	a = find_live(b, now, &srv->rr.target, FD_DNS_A);
	if (a)
		return fd_peer_addr_ip(AF_INET, a->rr.addr, srv->rr.port, addr,
				       len) == 0
			       ? RES_OK
			       : RES_BAD;
	a = find_live(b, now, &srv->rr.target, FD_DNS_AAAA);
	if (a)
		return fd_peer_addr_ip(AF_INET6, a->rr.addr, srv->rr.port, addr,
				       len) == 0
			       ? RES_OK
			       : RES_BAD;
	if (under_local(&srv->rr.target))
		return RES_NO_ADDR;
	fd_dns_name_text(&srv->rr.target, host, sizeof(host));
	snprintf(hp, sizeof(hp), "%s:%u", host, srv->rr.port);
	return fd_peer_addr_norm(hp, addr, len, NULL) == 0 ? RES_OK : RES_BAD;
}

struct inst {
	char name[FD_MDNS_LABEL_MAX + 1];
	const struct brec *ptr;
};

static int inst_cmp(const void *a, const void *b)
{
	return strcmp(((const struct inst *)a)->name, ((const struct inst *)b)->name);
}

/* The live instances, sorted by name, into a new array (*n of them). */
static struct inst *instances(const struct fd_mdns_browser *b, int64_t now, size_t *n)
{
	struct inst *v = calloc(b->n ? b->n : 1, sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < b->n; i++) {
		const struct brec *r = &b->recs[i];

		if (r->rr.type == FD_DNS_PTR && live(r, now) &&
		    fd_dns_name_child(&r->rr.target, &b->service, v[*n].name) &&
		    fd_mdns_instance_ok(v[*n].name, NULL) == 0) {
			v[*n].ptr = r;
			(*n)++;
		}
	}
	qsort(v, *n, sizeof(*v), inst_cmp);
	return v;
}

size_t fd_mdns_browser_each(struct fd_mdns_browser *b, int64_t now,
			    void (*cb)(const char *name, const char *addr,
				       struct json_object *meta, void *arg),
			    void *arg)
{
	size_t n, calls = 0;
	struct inst *v = instances(b, now, &n);

	for (size_t i = 0; v && i < n; i++) {
		char addr[FD_PEER_ADDR_LEN];
		const struct brec *srv, *txt;
		struct json_object *meta;

		if (i > 0 && strcmp(v[i].name, v[i - 1].name) == 0)
			continue;
		if (resolve(b, now, v[i].ptr, addr, sizeof(addr), &srv) != RES_OK)
			continue;
		txt = find_live(b, now, &v[i].ptr->rr.target, FD_DNS_TXT);
		meta = txt ? fd_mdns_txt_json(txt->rr.rdata, txt->rr.rdlen)
			   : json_object_new_object();
		if (!meta)
			continue;
		cb(v[i].name, addr, meta, arg);
		json_object_put(meta);
		calls++;
	}
	free(v);
	return calls;
}

/* Questions of a query, without duplicates. */
struct qset {
	size_t n;
	struct {
		const struct fd_dns_name *name;
		uint16_t type;
	} q[FD_DNS_MAX_Q];
};

static void ask(struct qset *s, const struct fd_dns_name *name, uint16_t type)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->q[i].type == type && fd_dns_name_eq(s->q[i].name, name))
			return;
	if (s->n < FD_DNS_MAX_Q) {
		s->q[s->n].name = name;
		s->q[s->n].type = type;
		s->n++;
	}
}

/* When r's next refresh query is due (NEVER: none left). */
static int64_t refresh_at(const struct brec *r)
{
	if (r->stage >= 4)
		return NEVER;
	return r->received +
	       (int64_t)r->rr.ttl * 10 * (80 + 5 * r->stage + r->jitter);
}

ssize_t fd_mdns_browser_poll(struct fd_mdns_browser *b, int64_t now,
			     uint8_t *buf, size_t cap, int64_t *next)
{
	struct fd_dns_name *svc = &b->service;
	struct fd_dns_writer w;
	struct qset qs = {0};
	int64_t nxt;
	int missing = 0, ptr_due = now >= b->ptr_next;
	size_t n;
	struct inst *v;
	ssize_t len = 0;

	cache_expire(b, now);
	if (ptr_due) {
		ask(&qs, svc, FD_DNS_PTR);
		b->ptr_next = now + b->ptr_interval;
		b->ptr_interval = min64(b->ptr_interval * 2, b->max_interval);
	}
	/* Instances not resolved: their SRV and TXT, or their address. */
	v = instances(b, now, &n);
	for (size_t i = 0; v && i < n; i++) {
		char addr[FD_PEER_ADDR_LEN];
		const struct brec *srv;
		int res = resolve(b, now, v[i].ptr, addr, sizeof(addr), &srv);

		if (res == RES_NO_SRV || res == RES_NO_ADDR)
			missing = 1;
		if (now < b->resolve_next)
			continue;
		if (res == RES_NO_SRV) {
			ask(&qs, &v[i].ptr->rr.target, FD_DNS_SRV);
			ask(&qs, &v[i].ptr->rr.target, FD_DNS_TXT);
		} else if (res == RES_NO_ADDR) {
			ask(&qs, &srv->rr.target, FD_DNS_A);
			ask(&qs, &srv->rr.target, FD_DNS_AAAA);
		}
	}
	free(v);
	if (missing && now >= b->resolve_next)
		b->resolve_next = now + 1000;
	/* Refreshes at 80, 85, 90, 95 % of the TTL (RFC 6762 §5.2) */
	for (size_t i = 0; i < b->n; i++) {
		struct brec *r = &b->recs[i];

		if (refresh_at(r) > now)
			continue;
		ask(&qs, &r->rr.name, r->rr.type);
		while (refresh_at(r) <= now)
			r->stage++;
	}
	if (qs.n) {
		fd_dns_w_init(&w, buf, cap, 0, 0);
		for (size_t i = 0; i < qs.n; i++)
			fd_dns_w_question(&w, qs.q[i].name, qs.q[i].type, 0);
		/* Known answers: PTRs with more than half their TTL left */
		for (size_t i = 0; ptr_due && i < b->n; i++) {
			const struct brec *r = &b->recs[i];
			struct fd_dns_rr ka;
			struct w_mark m;
			int64_t left = r->expires - now;

			if (r->rr.type != FD_DNS_PTR ||
			    left <= (int64_t)r->rr.ttl * 500)
				continue;
			ka = r->rr;
			ka.section = FD_DNS_ANSWER;
			ka.ttl = (uint32_t)(left / 1000);
			w_mark(&w, &m);
			fd_dns_w_rr(&w, &ka);
			if (w.overflow) {
				w_reset(&w, &m); /* the rest would not fit */
				break;
			}
		}
		len = fd_dns_w_finish(&w);
		if (len < 0)
			len = 0;
		else
			b->stats.queries++;
	}
	nxt = b->ptr_next;
	if (missing)
		nxt = min64(nxt, b->resolve_next);
	for (size_t i = 0; i < b->n; i++)
		nxt = min64(nxt, min64(refresh_at(&b->recs[i]), b->recs[i].expires));
	*next = nxt > now ? nxt : now + 1;
	return len;
}
