#include "psframe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static int get_varint(const unsigned char *p, size_t len, size_t *off, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0, i = 0; i < 10; i++, shift += 7) {
		unsigned char c;

		if (*off >= len)
			return -1;
		c = p[(*off)++];
		if (i == 9 && c > 1)
			return -1;
		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

static void put_len(unsigned char *p, size_t len)
{
	p[0] = (unsigned char)len;
	p[1] = (unsigned char)(len >> 8);
	p[2] = (unsigned char)(len >> 16);
	p[3] = (unsigned char)(len >> 24);
}

static int bad(struct fd_err *err, const char *what, size_t off)
{
	errno = EBADMSG;
	return fd_err_set(err, "bad frame: %s at byte %zu", what, off);
}

int fd_psf_parse(const void *body, size_t len, struct fd_psf *f, struct fd_err *err)
{
	const unsigned char *p = body;
	size_t off = 1;

	memset(f, 0, sizeof(*f));
	if (len < 1)
		return bad(err, "empty frame", 0);
	f->type = p[0];
	switch (f->type) {
	case FD_PSF_PUB:
		if (len < 3)
			return bad(err, "short header", len);
		f->prio = p[1];
		f->topic_len = p[2];
		off = 3;
		if (f->prio >= FD_PSF_NPRIO)
			return bad(err, "unknown priority", 1);
		if (len - off < f->topic_len)
			return bad(err, "topic past the end", off);
		f->topic = (const char *)p + off;
		off += f->topic_len;
		f->data = (const char *)p + off;
		f->len = len - off;
		return 0;
	case FD_PSF_MSG:
		if (len < 4)
			return bad(err, "short header", len);
		f->flags = p[1];
		f->prio = p[2];
		f->topic_len = p[3];
		off = 4;
		if (f->flags & ~(unsigned)(FD_PSF_ZSTD | FD_PSF_GROUPS))
			return bad(err, "unknown flags", 1);
		if (f->prio >= FD_PSF_NPRIO)
			return bad(err, "unknown priority", 2);
		if (len - off < f->topic_len)
			return bad(err, "topic past the end", off);
		f->topic = (const char *)p + off;
		off += f->topic_len;
		if (get_varint(p, len, &off, &f->stream) < 0 ||
		    get_varint(p, len, &off, &f->seq) < 0 ||
		    get_varint(p, len, &off, &f->ts) < 0 ||
		    get_varint(p, len, &off, &f->total) < 0)
			return bad(err, "bad varint", off);
		if (f->flags & FD_PSF_GROUPS) {
			if (off >= len)
				return bad(err, "group count past the end", off);
			f->ngroups = p[off++];
			f->groups = (const char *)p + off;
			if (f->ngroups == 0 || f->ngroups > FD_PSF_MAX_GROUPS)
				return bad(err, "bad group count", off - 1);
			for (unsigned i = 0; i < f->ngroups; i++) {
				if (off >= len || p[off] == 0 ||
				    len - off - 1 < p[off])
					return bad(err, "group past the end", off);
				off += 1 + p[off];
			}
			f->groups_len = (size_t)((const char *)p + off - f->groups);
		}
		f->data = (const char *)p + off;
		f->len = len - off;
		if (f->len > f->total)
			return bad(err, "piece longer than the payload", off);
		return 0;
	case FD_PSF_MORE:
		if (len < 3)
			return bad(err, "short frame", len);
		f->prio = p[1];
		if (f->prio >= FD_PSF_NPRIO)
			return bad(err, "unknown priority", 1);
		f->data = (const char *)p + 2;
		f->len = len - 2;
		return 0;
	case FD_PSF_GAP:
		if (len < 3)
			return bad(err, "short header", len);
		f->prio = p[1];
		f->topic_len = p[2];
		off = 3;
		if (f->prio >= FD_PSF_NPRIO)
			return bad(err, "unknown priority", 1);
		if (f->topic_len == 0 || len - off < f->topic_len)
			return bad(err, "topic past the end", off);
		f->topic = (const char *)p + off;
		off += f->topic_len;
		if (get_varint(p, len, &off, &f->total) < 0)
			return bad(err, "bad varint", off);
		if (off != len)
			return bad(err, "bytes after the count", off);
		return 0;
	default: return bad(err, "unknown frame type", 0);
	}
}

int fd_psf_group_next(const struct fd_psf *f, size_t *off, const char **g,
		      size_t *glen)
{
	const unsigned char *p = (const unsigned char *)f->groups;

	if (*off >= f->groups_len)
		return 0;
	*glen = p[*off];
	*g = f->groups + *off + 1;
	*off += 1 + p[*off];
	return 1;
}

static int reserve(struct fd_buf *b, size_t n, unsigned char **out)
{
	*out = fd_buf_grow(b, n);
	return *out ? 0 : -1;
}

int fd_psf_put_pub(struct fd_buf *b, unsigned prio, const char *topic,
		   size_t tlen, const char *data, size_t dlen)
{
	unsigned char *p;
	size_t body = 3 + tlen + dlen;

	if (tlen > 255 || prio >= FD_PSF_NPRIO || body > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (reserve(b, 4 + body, &p) < 0)
		return -1;
	put_len(p, body);
	p[4] = FD_PSF_PUB;
	p[5] = (unsigned char)prio;
	p[6] = (unsigned char)tlen;
	memcpy(p + 7, topic, tlen);
	if (dlen)
		memcpy(p + 7 + tlen, data, dlen);
	return 0;
}

int fd_psf_put_msg(struct fd_buf *b, unsigned flags, unsigned prio,
		   const char *topic, size_t tlen, uint64_t stream, uint64_t seq,
		   uint64_t ts, uint64_t total, const char *const *groups,
		   unsigned ngroups, const char *piece, size_t plen)
{
	unsigned char head[4 + 4 + 255 + 40 + 1], *p;
	size_t h = 4, glen = 0;

	if (tlen > 255 || prio >= FD_PSF_NPRIO || ngroups > FD_PSF_MAX_GROUPS ||
	    plen > total) {
		errno = EINVAL;
		return -1;
	}
	flags &= FD_PSF_ZSTD;
	if (ngroups) {
		flags |= FD_PSF_GROUPS;
		for (unsigned i = 0; i < ngroups; i++) {
			size_t l = strlen(groups[i]);

			if (l == 0 || l > 255) {
				errno = EINVAL;
				return -1;
			}
			glen += 1 + l;
		}
		glen++;
	}
	head[h++] = FD_PSF_MSG;
	head[h++] = (unsigned char)flags;
	head[h++] = (unsigned char)prio;
	head[h++] = (unsigned char)tlen;
	memcpy(head + h, topic, tlen);
	h += tlen;
	h += put_varint(head + h, stream);
	h += put_varint(head + h, seq);
	h += put_varint(head + h, ts);
	h += put_varint(head + h, total);
	if (h - 4 + glen + plen > UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	put_len(head, h - 4 + glen + plen);
	if (reserve(b, h + glen + plen, &p) < 0)
		return -1;
	memcpy(p, head, h);
	p += h;
	if (ngroups) {
		*p++ = (unsigned char)ngroups;
		for (unsigned i = 0; i < ngroups; i++) {
			size_t l = strlen(groups[i]);

			*p++ = (unsigned char)l;
			memcpy(p, groups[i], l);
			p += l;
		}
	}
	if (plen)
		memcpy(p, piece, plen);
	return 0;
}

int fd_psf_put_more(struct fd_buf *b, unsigned prio, const char *piece, size_t plen)
{
	unsigned char *p;

	if (plen == 0 || plen + 2 > UINT32_MAX || prio >= FD_PSF_NPRIO) {
		errno = EINVAL;
		return -1;
	}
	if (reserve(b, 6 + plen, &p) < 0)
		return -1;
	put_len(p, 2 + plen);
	p[4] = FD_PSF_MORE;
	p[5] = (unsigned char)prio;
	memcpy(p + 6, piece, plen);
	return 0;
}

int fd_psf_put_gap(struct fd_buf *b, unsigned prio, const char *topic,
		   size_t tlen, uint64_t missed)
{
	unsigned char *p;
	size_t n;

	if (tlen == 0 || tlen > 255 || prio >= FD_PSF_NPRIO) {
		errno = EINVAL;
		return -1;
	}
	if (reserve(b, 7 + tlen + 10, &p) < 0)
		return -1;
	p[4] = FD_PSF_GAP;
	p[5] = (unsigned char)prio;
	p[6] = (unsigned char)tlen;
	memcpy(p + 7, topic, tlen);
	n = 7 + tlen + put_varint(p + 7 + tlen, missed);
	put_len(p, n - 4);
	b->len -= 7 + tlen + 10 - n; /* the varint's unused room */
	return 0;
}

static size_t get_len(const char *p);

void fd_psf_reader_init(struct fd_psf_reader *r, size_t max)
{
	r->max = max;
	r->part = (struct fd_buf)FD_BUF_INIT(max + 4);
	r->skip = 0;
	r->part_fn = NULL;
	r->part_arg = NULL;
}

void fd_psf_reader_on_part(struct fd_psf_reader *r, fd_psf_part_fn fn, void *arg)
{
	r->part_fn = fn;
	r->part_arg = arg;
}

/* The partial frame grew: tell part_fn. */
static void grew(struct fd_psf_reader *r, size_t old)
{
	size_t flen;

	if (!r->part_fn || r->part.len <= 4 || r->part.len == old)
		return;
	flen = get_len(r->part.data);
	if (flen <= r->max)
		r->part_fn(r->part_arg, r->part.data + 4, r->part.len - 4, flen);
}

void fd_psf_reader_release(struct fd_psf_reader *r)
{
	fd_buf_release(&r->part);
}

char *fd_psf_reader_detach(struct fd_psf_reader *r)
{
	char *d = r->part.data;

	r->part.data = NULL;
	r->part.len = r->part.cap = 0;
	return d;
}

int fd_psf_reader_partial(const struct fd_psf_reader *r)
{
	return r->part.len > 0;
}

static size_t get_len(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (size_t)u[0] | (size_t)u[1] << 8 | (size_t)u[2] << 16 |
	       (size_t)u[3] << 24;
}

/* A frame header announcing flen > max: let fn decide, then skip it. */
static int oversized(struct fd_psf_reader *r, size_t flen, fd_psf_frame_fn fn,
		     void *arg, struct fd_err *err)
{
	if (fn(arg, NULL, flen, err) < 0)
		return -1;
	r->skip = flen;
	return 0;
}

ssize_t fd_psf_feed(struct fd_psf_reader *r, const char *data, size_t len,
		    fd_psf_frame_fn fn, void *arg, struct fd_err *err)
{
	size_t used = 0;
	int rc;

again:
	if (r->skip) {
		size_t k = r->skip < len - used ? r->skip : len - used;

		r->skip -= k;
		used += k;
		if (r->skip)
			return (ssize_t)used;
	}
	if (r->part.len > 0) {
		size_t flen;

		if (r->part.len < 4) {
			size_t k = 4 - r->part.len < len - used ? 4 - r->part.len
								: len - used;

			if (fd_buf_append(&r->part, data + used, k) < 0)
				return fd_err_set(err, "out of memory");
			used += k;
			if (r->part.len < 4)
				return (ssize_t)used;
		}
		flen = get_len(r->part.data);
		if (flen > r->max) {
			r->part.len = 0;
			if (oversized(r, flen, fn, arg, err) < 0)
				return -1;
			goto again;
		}
		if (r->part.len < 4 + flen) {
			size_t k = 4 + flen - r->part.len, old = r->part.len;

			/* the whole frame's room at once: a large frame is
			 * not moved again and again as it grows */
			if (fd_buf_reserve(&r->part, k) < 0)
				return fd_err_set(err, "out of memory");
			if (k > len - used)
				k = len - used;
			if (fd_buf_append(&r->part, data + used, k) < 0)
				return fd_err_set(err, "out of memory");
			used += k;
			grew(r, old);
			if (r->part.len < 4 + flen)
				return (ssize_t)used;
		}
		rc = fn(arg, r->part.data + 4, flen, err);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return (ssize_t)used;
		r->part.len = 0;
	}
	while (len - used >= 4) {
		size_t flen = get_len(data + used);

		if (flen > r->max) {
			used += 4;
			if (oversized(r, flen, fn, arg, err) < 0)
				return -1;
			goto again;
		}
		if (len - used - 4 < flen)
			break;
		rc = fn(arg, data + used + 4, flen, err);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return (ssize_t)used;
		used += 4 + flen;
	}
	if (used < len) {
		if (fd_buf_append(&r->part, data + used, len - used) < 0)
			return fd_err_set(err, "out of memory");
		used = len;
		grew(r, 0);
	}
	return (ssize_t)used;
}

int fd_psf_put_chunks(struct fd_buf *b, unsigned flags, unsigned prio,
		      const char *topic, size_t tlen, uint64_t stream, uint64_t seq,
		      uint64_t ts, const char *const *groups, unsigned ngroups,
		      const char *payload, size_t plen, size_t chunk)
{
	size_t old = b->len, first;

	if (chunk == 0) {
		errno = EINVAL;
		return -1;
	}
	first = plen < chunk ? plen : chunk;
	if (fd_psf_put_msg(b, flags, prio, topic, tlen, stream, seq, ts, plen,
			   groups, ngroups, payload, first) < 0)
		return -1;
	for (size_t off = first; off < plen; off += chunk) {
		size_t k = plen - off < chunk ? plen - off : chunk;

		if (fd_psf_put_more(b, prio, payload + off, k) < 0) {
			b->len = old;
			return -1;
		}
	}
	return 0;
}

void fd_psf_reasm_init(struct fd_psf_reasm *r, size_t max, size_t headroom,
		       size_t tailroom)
{
	memset(r, 0, sizeof(*r));
	r->headroom = headroom;
	r->tailroom = tailroom;
	r->buf = (struct fd_buf)FD_BUF_INIT(headroom + max + tailroom);
}

char *fd_psf_reasm_detach(struct fd_psf_reasm *r)
{
	char *d = r->copied ? r->buf.data : NULL;

	if (d) {
		r->buf.data = NULL;
		r->buf.len = r->buf.cap = 0;
		r->copied = 0;
	}
	return d;
}

void fd_psf_reasm_reset(struct fd_psf_reasm *r)
{
	r->active = 0;
	r->copied = 0;
	r->buf.len = 0;
}

void fd_psf_reasm_release(struct fd_psf_reasm *r)
{
	r->active = 0;
	fd_buf_release(&r->buf);
	free(r->groups);
	r->groups = NULL;
	r->gcap = 0;
}

int fd_psf_reasm_add(struct fd_psf_reasm *r, const struct fd_psf *f, unsigned *lost)
{
	size_t have, need;

	*lost = 0;
	if (f->type == FD_PSF_MSG) {
		if (r->active) {
			(*lost)++;
			fd_psf_reasm_reset(r);
		}
		r->head = *f;
		r->copied = 0;
		if (f->len == f->total)
			return 1; /* whole: no copy */
		if (f->total > r->buf.max - r->headroom - r->tailroom) {
			(*lost)++;
			return 0;
		}
		memcpy(r->topic, f->topic, f->topic_len);
		r->head.topic = r->topic;
		if (f->groups_len > r->gcap) {
			char *g = realloc(r->groups, f->groups_len);

			if (!g) {
				(*lost)++;
				return -1;
			}
			r->groups = g;
			r->gcap = f->groups_len;
		}
		if (f->groups_len)
			memcpy(r->groups, f->groups, f->groups_len);
		r->head.groups = r->groups;
		/* the whole buffer at once, of the size needed: no copy as
		 * it fills, no room wasted while a caller keeps it */
		need = r->headroom + f->total + r->tailroom;
		if (need > r->buf.cap || need < r->buf.cap / 4) {
			char *d = realloc(r->buf.data, need);

			if (!d) {
				(*lost)++;
				return -1;
			}
			r->buf.data = d;
			r->buf.cap = need;
		}
		r->buf.len = r->headroom;
		r->active = 1;
	} else if (f->type == FD_PSF_MORE) {
		if (!r->active)
			return 0; /* the start was lost */
	} else {
		return 0;
	}
	have = r->buf.len - r->headroom;
	if (have + f->len > r->head.total) {
		(*lost)++;
		fd_psf_reasm_reset(r);
		return 0;
	}
	if (f->len)
		memcpy(r->buf.data + r->buf.len, f->data, f->len);
	r->buf.len += f->len;
	if (have + f->len < r->head.total)
		return 0;
	r->active = 0;
	r->copied = 1;
	r->head.type = FD_PSF_MSG;
	r->head.data = r->buf.data + r->headroom;
	r->head.len = r->head.total;
	return 1;
}

int fd_psf_chunker_init(struct fd_psf_chunker *c, unsigned flags, unsigned prio,
			const char *topic, size_t tlen, uint64_t stream, uint64_t seq,
			uint64_t ts, const char *const *groups, unsigned ngroups,
			const char *payload, size_t plen, size_t chunk)
{
	struct fd_buf b = FD_BUF_INIT((size_t)1 << 20);
	size_t more;

	memset(c, 0, sizeof(*c));
	if (chunk == 0) {
		errno = EINVAL;
		return -1;
	}
	c->first = plen < chunk ? plen : chunk;
	/* the header as put_msg writes it, with the length of the piece to
	 * come */
	if (fd_psf_put_msg(&b, flags, prio, topic, tlen, stream, seq, ts, plen,
			   groups, ngroups, NULL, 0) < 0) {
		fd_buf_release(&b);
		return -1;
	}
	put_len((unsigned char *)b.data, b.len - 4 + c->first);
	c->head = b.data;
	c->hlen = b.len;
	c->payload = payload;
	c->plen = plen;
	c->chunk = chunk;
	c->prio = prio;
	more = (plen - c->first + chunk - 1) / chunk;
	c->size = c->hlen + plen + 6 * more;
	return 0;
}

void fd_psf_chunker_release(struct fd_psf_chunker *c)
{
	free(c->head);
	c->head = NULL;
}

size_t fd_psf_chunker_read(const struct fd_psf_chunker *c, size_t off,
			   char *out, size_t max)
{
	size_t n = 0;

	while (n < max && off < c->size) {
		const char *src;
		size_t k;
		unsigned char mh[6];

		if (off < c->hlen) {
			src = c->head + off;
			k = c->hlen - off;
		} else if (off < c->hlen + c->first) {
			src = c->payload + (off - c->hlen);
			k = c->hlen + c->first - off;
		} else {
			size_t j = off - c->hlen - c->first;
			size_t i = j / (6 + c->chunk), w = j % (6 + c->chunk);
			size_t at = c->first + i * c->chunk;
			size_t pl = c->plen - at < c->chunk ? c->plen - at : c->chunk;

			if (w < 6) {
				put_len(mh, 2 + pl);
				mh[4] = FD_PSF_MORE;
				mh[5] = (unsigned char)c->prio;
				src = (const char *)mh + w;
				k = 6 - w;
			} else {
				src = c->payload + at + (w - 6);
				k = pl - (w - 6);
			}
		}
		if (k > max - n)
			k = max - n;
		memcpy(out + n, src, k);
		n += k;
		off += k;
	}
	return n;
}
