#include "psframe.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Random bytes; topics and groups never empty, at most max bytes. */
static void rand_bytes(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)unit_rand();
}

static size_t rand_len(size_t max)
{
	/* mostly small, sometimes up to max */
	switch (unit_rand_below(4)) {
	case 0: return unit_rand_below(4);
	case 1: return unit_rand_below(64);
	default: return unit_rand_below(max + 1);
	}
}

static uint64_t rand_u64(void)
{
	/* every varint length */
	return unit_rand() >> unit_rand_below(64);
}

/* A copy of s[0..len) in its own allocation, so that ASan sees a read past
 * its end. */
static char *exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	if (len)
		memcpy(p, s, len);
	return p;
}

static size_t frame_len(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (size_t)u[0] | (size_t)u[1] << 8 | (size_t)u[2] << 16 |
	       (size_t)u[3] << 24;
}

struct msg {
	unsigned flags, prio, ngroups;
	char topic[256], gstore[FD_PSF_MAX_GROUPS][256];
	const char *groups[FD_PSF_MAX_GROUPS];
	size_t tlen;
	uint64_t stream, seq, ts;
	char *data;
	size_t len;
};

static void rand_msg(struct msg *m, size_t max_data)
{
	memset(m, 0, sizeof(*m));
	m->flags = (unsigned)unit_rand_below(2) * FD_PSF_ZSTD;
	m->prio = (unsigned)unit_rand_below(FD_PSF_NPRIO);
	m->tlen = rand_len(255);
	rand_bytes(m->topic, m->tlen);
	m->stream = rand_u64();
	m->seq = rand_u64();
	m->ts = rand_u64();
	m->ngroups = unit_rand_below(3)
			     ? 0
			     : (unsigned)unit_rand_below(FD_PSF_MAX_GROUPS) + 1;
	for (unsigned i = 0; i < m->ngroups; i++) {
		size_t l = 1 + unit_rand_below(unit_rand_below(4) ? 16 : 255);

		/* groups are NUL-terminated for the encoder: no NUL inside */
		for (size_t k = 0; k < l; k++)
			m->gstore[i][k] = (char)(1 + unit_rand_below(255));
		m->gstore[i][l] = '\0';
		m->groups[i] = m->gstore[i];
	}
	m->len = rand_len(max_data);
	m->data = malloc(m->len + 1);
	rand_bytes(m->data, m->len);
}

static void check_groups(const struct fd_psf *f, const struct msg *m)
{
	size_t off = 0, glen;
	const char *g;
	unsigned n = 0;

	CHECK_EQ(f->ngroups, m->ngroups);
	CHECK_EQ(!!(f->flags & FD_PSF_GROUPS), m->ngroups > 0);
	while (fd_psf_group_next(f, &off, &g, &glen)) {
		REQUIRE(n < m->ngroups);
		CHECK_EQ(glen, strlen(m->groups[n]));
		CHECK(memcmp(g, m->groups[n], glen) == 0);
		n++;
	}
	CHECK_EQ(n, m->ngroups);
}

/* ---- round trips ---- */

TEST(pub_round_trip)
{
	for (int iter = 0; iter < 2000 && !unit_failed; iter++) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);
		struct msg m;
		struct fd_psf f;
		struct fd_err err;
		char *body;

		rand_msg(&m, 4096);
		REQUIRE(fd_psf_put_pub(&b, m.prio, m.topic, m.tlen, m.data,
				       m.len) == 0);
		REQUIRE(b.len >= 4);
		CHECK_EQ(frame_len(b.data), b.len - 4);
		body = exact(b.data + 4, b.len - 4);
		REQUIRE(fd_psf_parse(body, b.len - 4, &f, &err) == 0);
		CHECK_EQ(f.type, FD_PSF_PUB);
		CHECK_EQ(f.prio, m.prio);
		CHECK_EQ(f.topic_len, m.tlen);
		CHECK(memcmp(f.topic, m.topic, m.tlen) == 0);
		CHECK_EQ(f.len, m.len);
		CHECK(m.len == 0 || memcmp(f.data, m.data, m.len) == 0);
		free(body);
		free(m.data);
		fd_buf_release(&b);
	}
}

TEST(msg_round_trip)
{
	for (int iter = 0; iter < 2000 && !unit_failed; iter++) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);
		struct msg m;
		struct fd_psf f;
		struct fd_err err;
		uint64_t total;
		size_t plen;
		char *body;

		rand_msg(&m, 4096);
		plen = unit_rand_below(m.len + 1);
		total = plen + (unit_rand_below(2) ? 0 : rand_u64() / 2);
		REQUIRE(fd_psf_put_msg(&b, m.flags, m.prio, m.topic, m.tlen,
				       m.stream, m.seq, m.ts, total, m.groups,
				       m.ngroups, m.data, plen) == 0);
		CHECK_EQ(frame_len(b.data), b.len - 4);
		body = exact(b.data + 4, b.len - 4);
		REQUIRE(fd_psf_parse(body, b.len - 4, &f, &err) == 0);
		CHECK_EQ(f.type, FD_PSF_MSG);
		CHECK_EQ(f.flags & FD_PSF_ZSTD, m.flags);
		CHECK_EQ(f.prio, m.prio);
		CHECK_EQ(f.topic_len, m.tlen);
		CHECK(memcmp(f.topic, m.topic, m.tlen) == 0);
		CHECK(f.stream == m.stream && f.seq == m.seq && f.ts == m.ts);
		CHECK(f.total == total);
		CHECK_EQ(f.len, plen);
		CHECK(plen == 0 || memcmp(f.data, m.data, plen) == 0);
		check_groups(&f, &m);
		free(body);
		free(m.data);
		fd_buf_release(&b);
	}
}

TEST(more_round_trip)
{
	for (int iter = 0; iter < 2000 && !unit_failed; iter++) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);
		struct msg m;
		struct fd_psf f;
		struct fd_err err;
		char *body;

		rand_msg(&m, 4096);
		if (m.len == 0) {
			/* an empty MORE is refused, and nothing appended */
			CHECK_EQ(fd_psf_put_more(&b, m.prio, m.data, 0), -1);
			CHECK_EQ(b.len, 0);
			free(m.data);
			continue;
		}
		REQUIRE(fd_psf_put_more(&b, m.prio, m.data, m.len) == 0);
		CHECK_EQ(frame_len(b.data), b.len - 4);
		body = exact(b.data + 4, b.len - 4);
		REQUIRE(fd_psf_parse(body, b.len - 4, &f, &err) == 0);
		CHECK_EQ(f.type, FD_PSF_MORE);
		CHECK_EQ(f.prio, m.prio);
		CHECK_EQ(f.len, m.len);
		CHECK(memcmp(f.data, m.data, m.len) == 0);
		free(body);
		free(m.data);
		fd_buf_release(&b);
	}
}

TEST(gap_round_trip)
{
	for (int iter = 0; iter < 2000 && !unit_failed; iter++) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);
		struct msg m;
		struct fd_psf f;
		struct fd_err err;
		uint64_t missed = unit_rand() >> unit_rand_below(64);
		char *body;

		rand_msg(&m, 16);
		if (m.tlen == 0) {
			CHECK_EQ(fd_psf_put_gap(&b, m.prio, m.topic, 0, 1), -1);
			CHECK_EQ(b.len, 0);
			free(m.data);
			continue;
		}
		REQUIRE(fd_psf_put_gap(&b, m.prio, m.topic, m.tlen, missed) == 0);
		CHECK_EQ(frame_len(b.data), b.len - 4);
		body = exact(b.data + 4, b.len - 4);
		REQUIRE(fd_psf_parse(body, b.len - 4, &f, &err) == 0);
		CHECK_EQ(f.type, FD_PSF_GAP);
		CHECK_EQ(f.prio, m.prio);
		CHECK_EQ(f.topic_len, m.tlen);
		CHECK(memcmp(f.topic, m.topic, m.tlen) == 0);
		CHECK(f.total == missed);
		/* every cut is refused, and so is a byte more */
		for (size_t cut = 0; cut < b.len - 4; cut++)
			CHECK_EQ(fd_psf_parse(body, cut, &f, NULL), -1);
		free(body);
		body = malloc(b.len - 3);
		memcpy(body, b.data + 4, b.len - 4);
		body[b.len - 4] = 0;
		CHECK_EQ(fd_psf_parse(body, b.len - 3, &f, NULL), -1);
		free(body);
		free(m.data);
		fd_buf_release(&b);
	}
}

TEST(encoders_refuse_bad_arguments)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);
	char topic[300], group[300];
	const char *groups[FD_PSF_MAX_GROUPS + 1];

	memset(topic, 'a', sizeof(topic));
	memset(group, 'g', sizeof(group) - 1);
	group[sizeof(group) - 1] = '\0';
	for (int i = 0; i <= FD_PSF_MAX_GROUPS; i++)
		groups[i] = "g";
	CHECK_EQ(fd_psf_put_pub(&b, 0, topic, 256, "1", 1), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(fd_psf_put_pub(&b, FD_PSF_NPRIO, topic, 1, "1", 1), -1);
	CHECK_EQ(fd_psf_put_msg(&b, 0, 0, topic, 256, 1, 1, 1, 1, NULL, 0, "1", 1),
		 -1);
	CHECK_EQ(fd_psf_put_msg(&b, 0, 0, topic, 1, 1, 1, 1, 0, NULL, 0, "1", 1),
		 -1); /* piece longer than total */
	CHECK_EQ(fd_psf_put_msg(&b, 0, 0, topic, 1, 1, 1, 1, 1, groups,
				FD_PSF_MAX_GROUPS + 1, "1", 1),
		 -1);
	groups[0] = group; /* 299 bytes */
	CHECK_EQ(fd_psf_put_msg(&b, 0, 0, topic, 1, 1, 1, 1, 1, groups, 1, "1", 1),
		 -1);
	groups[0] = "";
	CHECK_EQ(fd_psf_put_msg(&b, 0, 0, topic, 1, 1, 1, 1, 1, groups, 1, "1", 1),
		 -1);
	CHECK_EQ(fd_psf_put_more(&b, 3, "1", 1), -1);
	CHECK_EQ(fd_psf_put_gap(&b, 3, "t", 1, 1), -1);
	CHECK_EQ(fd_psf_put_gap(&b, 0, topic, 256, 1), -1);
	CHECK_EQ(fd_psf_put_chunks(&b, 0, 0, topic, 1, 1, 1, 1, NULL, 0, "1", 1, 0),
		 -1);
	CHECK_EQ(b.len, 0);
	/* a full buffer: EMSGSIZE, nothing appended */
	b.max = 10;
	CHECK_EQ(fd_psf_put_pub(&b, 0, topic, 5, "12345", 5), -1);
	CHECK_EQ(errno, EMSGSIZE);
	CHECK_EQ(b.len, 0);
	fd_buf_release(&b);
}

static int count_frame(void *arg, const char *body, size_t len, struct fd_err *err)
{
	struct fd_psf f;

	(void)err;
	++*(int *)arg;
	if (body) {
		/* every accepted frame is inside what was fed */
		if (fd_psf_parse(body, len, &f, NULL) == 0) {
			CHECK(f.len <= len);
			if (f.type == FD_PSF_MSG) {
				size_t off = 0, glen;
				const char *g;
				unsigned n = 0;

				while (fd_psf_group_next(&f, &off, &g, &glen)) {
					CHECK(g >= body && g + glen <= body + len);
					n++;
				}
				CHECK_EQ(n, f.ngroups);
			}
		}
	}
	return 0;
}

/* ---- truncation ---- */

/* Every proper prefix of an encoded frame is refused: the reader never
 * offers the frame and reports the stream as ending inside one; and the
 * decoder refuses every cut through the header (the payload is the rest of
 * the frame, so a cut there is only visible to the length prefix). */
TEST(truncations_rejected)
{
	for (int iter = 0; iter < 300 && !unit_failed; iter++) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);
		struct msg m;
		size_t head;
		int kind = (int)unit_rand_below(3);

		rand_msg(&m, 300);
		if (kind == 0) {
			fd_psf_put_pub(&b, m.prio, m.topic, m.tlen, m.data, m.len);
			head = 3 + m.tlen;
		} else if (kind == 1) {
			size_t before;

			fd_psf_put_msg(&b, m.flags, m.prio, m.topic, m.tlen,
				       m.stream, m.seq, m.ts, m.len, m.groups,
				       m.ngroups, m.data, m.len);
			before = b.len;
			head = before - 4 - m.len;
		} else {
			if (m.len == 0)
				m.len = 1;
			fd_psf_put_more(&b, m.prio, m.data, m.len);
			head = 3; /* at least one byte of piece */
		}
		REQUIRE(b.len > 4);
		for (size_t cut = 0; cut < b.len && !unit_failed; cut++) {
			struct fd_psf_reader r;
			struct fd_err err;
			int frames = 0;
			char *p = exact(b.data, cut);

			fd_psf_reader_init(&r, 1 << 20);
			CHECK_EQ(fd_psf_feed(&r, p, cut, count_frame, &frames, &err),
				 (ssize_t)cut);
			CHECK_EQ(frames, 0);
			CHECK_EQ(fd_psf_reader_partial(&r), cut > 0);
			fd_psf_reader_release(&r);
			if (cut >= 4 && cut - 4 < head) {
				struct fd_psf f;

				if (fd_psf_parse(p + 4, cut - 4, &f, &err) == 0)
					unit_fail(__FILE__, __LINE__,
						  "kind %d: a cut at %zu of a "
						  "%zu-byte header parsed",
						  kind, cut - 4, head);
				else
					CHECK_EQ(errno, EBADMSG);
			}
			free(p);
		}
		free(m.data);
		fd_buf_release(&b);
	}
}

/* ---- garbage ---- */

/* Random bytes, and valid frames with random bytes flipped: the decoder
 * never crashes nor reads outside its buffer (ASan checks: every buffer is
 * its own allocation of the exact size), and the reader gives the same
 * frames however the stream is split. */
TEST(garbage_never_crashes)
{
	for (int iter = 0; iter < 5000 && !unit_failed; iter++) {
		size_t len = rand_len(600);
		char *p = malloc(len + 1);
		struct fd_psf f;
		int whole = 0, split = 0;

		if (unit_rand_below(2)) {
			rand_bytes(p, len);
			/* a plausible type and priority more often than not */
			if (len > 0 && unit_rand_below(4))
				p[0] = (char)(1 + unit_rand_below(3));
			if (len > 2 && unit_rand_below(2))
				p[1] = p[2] = (char)unit_rand_below(3);
		} else {
			struct fd_buf b = FD_BUF_INIT(1 << 20);
			struct msg m;

			rand_msg(&m, 200);
			fd_psf_put_msg(&b, m.flags, m.prio, m.topic, m.tlen,
				       m.stream, m.seq, m.ts, m.len, m.groups,
				       m.ngroups, m.data, m.len);
			len = b.len - 4;
			free(p);
			p = malloc(len + 1);
			memcpy(p, b.data + 4, len);
			for (int k = 0; k < 1 + (int)unit_rand_below(4); k++)
				p[unit_rand_below(len)] = (char)unit_rand();
			if (unit_rand_below(2))
				len = unit_rand_below(len + 1);
			free(m.data);
			fd_buf_release(&b);
		}
		{
			char *e = exact(p, len);

			if (fd_psf_parse(e, len, &f, NULL) == 0) {
				CHECK(f.type >= FD_PSF_PUB && f.type <= FD_PSF_MORE);
				CHECK(f.prio < FD_PSF_NPRIO);
				CHECK(f.data >= e && f.data + f.len == e + len);
				if (f.type == FD_PSF_MSG)
					CHECK(f.len <= f.total);
			}
			free(e);
		}
		/* as a stream, whole and in random pieces */
		{
			struct fd_psf_reader a, b;
			size_t off = 0;

			fd_psf_reader_init(&a, 512);
			fd_psf_reader_init(&b, 512);
			fd_psf_feed(&a, p, len, count_frame, &whole, NULL);
			while (off < len) {
				size_t k = 1 + unit_rand_below(len - off);
				char *e = exact(p + off, k);

				CHECK_EQ(fd_psf_feed(&b, e, k, count_frame,
						     &split, NULL),
					 (ssize_t)k);
				free(e);
				off += k;
			}
			CHECK_EQ(whole, split);
			CHECK_EQ(fd_psf_reader_partial(&a),
				 fd_psf_reader_partial(&b));
			fd_psf_reader_release(&a);
			fd_psf_reader_release(&b);
		}
		free(p);
	}
}

/* ---- chunks ---- */

struct collect {
	struct fd_psf_reasm rx[FD_PSF_NPRIO];
	unsigned lost, done;
	const struct msg *want; /* the messages in order */
	size_t nwant, next[FD_PSF_NPRIO];
};

static int on_chunk_frame(void *arg, const char *body, size_t len, struct fd_err *err)
{
	struct collect *c = arg;
	struct fd_psf f;
	unsigned lost;
	int rc;

	(void)err;
	if (!body || fd_psf_parse(body, len, &f, NULL) < 0) {
		unit_fail(__FILE__, __LINE__, "a frame did not parse");
		return -1;
	}
	rc = fd_psf_reasm_add(&c->rx[f.prio], &f, &lost);
	c->lost += lost;
	if (rc == 1) {
		const struct fd_psf *h = &c->rx[f.prio].head;
		const struct msg *m;

		/* messages of one priority come in order */
		while (c->next[f.prio] < c->nwant &&
		       c->want[c->next[f.prio]].prio != f.prio)
			c->next[f.prio]++;
		if (c->next[f.prio] >= c->nwant) {
			unit_fail(__FILE__, __LINE__, "more messages than sent");
			return -1;
		}
		m = &c->want[c->next[f.prio]++];
		CHECK_EQ(h->len, m->len);
		CHECK(h->len == m->len &&
		      (m->len == 0 || memcmp(h->data, m->data, m->len) == 0));
		CHECK_EQ(h->topic_len, m->tlen);
		CHECK(memcmp(h->topic, m->topic, m->tlen) == 0);
		CHECK(h->stream == m->stream && h->seq == m->seq && h->ts == m->ts);
		CHECK_EQ(h->flags & FD_PSF_ZSTD, m->flags);
		check_groups(h, m);
		c->done++;
		/* a copied message can be taken with its room around it */
		if (unit_rand_below(2)) {
			const struct fd_psf_reasm *r = &c->rx[f.prio];
			size_t head = r->headroom, tail = r->tailroom;
			char *d = fd_psf_reasm_detach(&c->rx[f.prio]);

			if (d) {
				CHECK(h->data == d + head);
				memset(d, 0, head);
				memset(d + head + m->len, 0, tail);
				free(d);
			} else {
				CHECK(h->data >= body && h->data <= body + len);
			}
		}
	}
	return 0;
}

/* Messages of random sizes (around the chunk size and its multiples) split
 * into chunks, the frames of different priorities interleaved as a sender's
 * channels would, the stream cut at random places: each priority's
 * reassembly gives back the original messages, in order, nothing lost. */
TEST(chunks_reassemble)
{
	for (int iter = 0; iter < 200 && !unit_failed; iter++) {
		size_t chunk = 1 + unit_rand_below(unit_rand_below(2) ? 64 : 5000);
		size_t nmsgs = 1 + unit_rand_below(8);
		struct msg *msgs = calloc(nmsgs, sizeof(*msgs));
		struct fd_buf q[FD_PSF_NPRIO], stream = FD_BUF_INIT(1 << 26);
		size_t qoff[FD_PSF_NPRIO] = {0};
		struct collect c = {.want = msgs, .nwant = nmsgs};
		struct fd_psf_reader r;
		size_t off = 0;

		for (int i = 0; i < FD_PSF_NPRIO; i++) {
			q[i] = (struct fd_buf)FD_BUF_INIT(1 << 26);
			fd_psf_reasm_init(&c.rx[i], 1 << 20, unit_rand_below(3) * 100,
					  unit_rand_below(3));
		}
		for (size_t i = 0; i < nmsgs; i++) {
			struct msg *m = &msgs[i];
			size_t len;

			rand_msg(m, 0);
			free(m->data);
			/* exactly at, just around, or far from a boundary */
			len = chunk * unit_rand_below(5) + unit_rand_below(3);
			if (unit_rand_below(2) && len > 0)
				len -= 1 + unit_rand_below(len < 3 ? len : 3);
			if (unit_rand_below(4) == 0)
				len = unit_rand_below(20000);
			m->len = len;
			m->data = malloc(len + 1);
			rand_bytes(m->data, len);
			REQUIRE(fd_psf_put_chunks(&q[m->prio], m->flags, m->prio,
						  m->topic, m->tlen, m->stream,
						  m->seq, m->ts, m->groups, m->ngroups,
						  m->data, m->len, chunk) == 0);
		}
		/* interleave whole frames of the three queues at random */
		for (;;) {
			int left = 0, pick;

			for (int i = 0; i < FD_PSF_NPRIO; i++)
				left += qoff[i] < q[i].len;
			if (!left)
				break;
			do
				pick = (int)unit_rand_below(FD_PSF_NPRIO);
			while (qoff[pick] >= q[pick].len);
			{
				size_t flen =
					4 + frame_len(q[pick].data + qoff[pick]);

				fd_buf_append(&stream,
					      q[pick].data + qoff[pick], flen);
				qoff[pick] += flen;
			}
		}
		fd_psf_reader_init(&r, chunk + 4096);
		while (off < stream.len && !unit_failed) {
			size_t k = 1 + unit_rand_below(unit_rand_below(2)
							       ? 17
							       : 3 * chunk + 100);
			char *e;

			if (k > stream.len - off)
				k = stream.len - off;
			e = exact(stream.data + off, k);
			CHECK_EQ(fd_psf_feed(&r, e, k, on_chunk_frame, &c, NULL),
				 (ssize_t)k);
			free(e);
			off += k;
		}
		CHECK_EQ(c.done, nmsgs);
		CHECK_EQ(c.lost, 0);
		CHECK(!fd_psf_reader_partial(&r));
		fd_psf_reader_release(&r);
		for (int i = 0; i < FD_PSF_NPRIO; i++) {
			fd_buf_release(&q[i]);
			fd_psf_reasm_release(&c.rx[i]);
		}
		fd_buf_release(&stream);
		for (size_t i = 0; i < nmsgs; i++)
			free(msgs[i].data);
		free(msgs);
	}
}

/* A chunker reads, in pieces of any size from any place, exactly the bytes
 * fd_psf_put_chunks appends. */
TEST(chunker_reads_what_put_chunks_writes)
{
	for (int iter = 0; iter < 300 && !unit_failed; iter++) {
		struct fd_buf b = FD_BUF_INIT(1 << 26);
		struct fd_psf_chunker ck;
		size_t chunk = 1 + unit_rand_below(unit_rand_below(2) ? 50 : 3000);
		struct msg m;
		char *out;
		size_t off = 0;

		rand_msg(&m, 0);
		free(m.data);
		m.len = unit_rand_below(2)
				? chunk * unit_rand_below(4) + unit_rand_below(3)
				: unit_rand_below(10000);
		m.data = malloc(m.len + 1);
		rand_bytes(m.data, m.len);
		REQUIRE(fd_psf_put_chunks(&b, m.flags, m.prio, m.topic, m.tlen,
					  m.stream, m.seq, m.ts, m.groups,
					  m.ngroups, m.data, m.len, chunk) == 0);
		REQUIRE(fd_psf_chunker_init(&ck, m.flags, m.prio, m.topic, m.tlen,
					    m.stream, m.seq, m.ts, m.groups,
					    m.ngroups, m.data, m.len, chunk) == 0);
		CHECK_EQ(ck.size, b.len);
		out = malloc(ck.size + 10);
		while (off < ck.size) {
			size_t k = 1 + unit_rand_below(unit_rand_below(2)
							       ? 9
							       : 2 * chunk + 20);
			size_t got = fd_psf_chunker_read(&ck, off, out + off, k);

			CHECK(got > 0 && got <= k);
			CHECK(off + got <= ck.size);
			if (got == 0)
				break;
			off += got;
		}
		CHECK_EQ(fd_psf_chunker_read(&ck, ck.size, out, 5), 0);
		CHECK(memcmp(out, b.data, b.len) == 0);
		/* and from random places */
		for (int i = 0; i < 20; i++) {
			size_t at = unit_rand_below(ck.size + 1);
			size_t k = unit_rand_below(ck.size - at + 1);
			size_t got = fd_psf_chunker_read(&ck, at, out, k);

			CHECK_EQ(got, k);
			CHECK(memcmp(out, b.data + at, k) == 0);
		}
		fd_psf_chunker_release(&ck);
		free(out);
		free(m.data);
		fd_buf_release(&b);
	}
}

struct taker {
	struct fd_psf_reader *r;
	int frames, taken;
	struct fd_buf got;
};

static int take_frame(void *arg, const char *body, size_t len, struct fd_err *err)
{
	struct taker *t = arg;

	(void)err;
	t->frames++;
	fd_buf_append(&t->got, body, len);
	if (t->r->part.data && body == t->r->part.data + 4 && unit_rand_below(2)) {
		char *d = fd_psf_reader_detach(t->r);

		CHECK_EQ(frame_len(d), len);
		CHECK(d + 4 == body);
		free(d);
		t->taken++;
	}
	return 0;
}

/* A frame that came in pieces can be taken with its buffer; the reader
 * goes on with the next frames as if it had been consumed. */
TEST(reader_detach)
{
	for (int iter = 0; iter < 200 && !unit_failed; iter++) {
		struct fd_buf in = FD_BUF_INIT(1 << 24), want = FD_BUF_INIT(1 << 24);
		struct fd_psf_reader r;
		struct taker t = {&r, 0, 0, FD_BUF_INIT(1 << 24)};
		int n = 1 + (int)unit_rand_below(10);
		size_t off = 0;

		for (int i = 0; i < n; i++) {
			struct msg m;

			rand_msg(&m, 3000);
			fd_psf_put_pub(&in, m.prio, m.topic, m.tlen, m.data, m.len);
			fd_buf_append(&want, in.data + in.len - (3 + m.tlen + m.len),
				      3 + m.tlen + m.len);
			free(m.data);
		}
		fd_psf_reader_init(&r, 1 << 20);
		while (off < in.len) {
			size_t k = 1 + unit_rand_below(500);
			char *e;

			if (k > in.len - off)
				k = in.len - off;
			e = exact(in.data + off, k);
			CHECK_EQ(fd_psf_feed(&r, e, k, take_frame, &t, NULL),
				 (ssize_t)k);
			free(e);
			off += k;
		}
		CHECK_EQ(t.frames, n);
		CHECK_EQ(t.got.len, want.len);
		CHECK(memcmp(t.got.data, want.data, want.len) == 0);
		CHECK(!fd_psf_reader_partial(&r));
		fd_psf_reader_release(&r);
		fd_buf_release(&in);
		fd_buf_release(&want);
		fd_buf_release(&t.got);
	}
}

/* What reassembly gives up on, it counts: a message cut short by the next
 * one, a MORE without its MSG, pieces running past the total or the limit. */
TEST(reassembly_losses_counted)
{
	struct fd_psf_reasm r;
	struct fd_buf b = FD_BUF_INIT(1 << 20);
	struct fd_psf f;
	unsigned lost;
	char data[100];

	memset(data, 'x', sizeof(data));
	fd_psf_reasm_init(&r, 50, 0, 0);
	/* a MORE out of nowhere: ignored */
	fd_psf_put_more(&b, 0, data, 10);
	REQUIRE(fd_psf_parse(b.data + 4, b.len - 4, &f, NULL) == 0);
	CHECK_EQ(fd_psf_reasm_add(&r, &f, &lost), 0);
	CHECK_EQ(lost, 0);
	/* a start, then another start: the first is lost */
	b.len = 0;
	fd_psf_put_msg(&b, 0, 0, "t", 1, 1, 1, 1, 20, NULL, 0, data, 10);
	REQUIRE(fd_psf_parse(b.data + 4, b.len - 4, &f, NULL) == 0);
	CHECK_EQ(fd_psf_reasm_add(&r, &f, &lost), 0);
	CHECK_EQ(lost, 0);
	CHECK_EQ(fd_psf_reasm_add(&r, &f, &lost), 0);
	CHECK_EQ(lost, 1);
	/* a MORE past the total: lost */
	b.len = 0;
	fd_psf_put_more(&b, 0, data, 11);
	REQUIRE(fd_psf_parse(b.data + 4, b.len - 4, &f, NULL) == 0);
	CHECK_EQ(fd_psf_reasm_add(&r, &f, &lost), 0);
	CHECK_EQ(lost, 1);
	CHECK_EQ(r.active, 0);
	/* over the limit: lost at once */
	b.len = 0;
	fd_psf_put_msg(&b, 0, 0, "t", 1, 1, 1, 1, 51, NULL, 0, data, 10);
	REQUIRE(fd_psf_parse(b.data + 4, b.len - 4, &f, NULL) == 0);
	CHECK_EQ(fd_psf_reasm_add(&r, &f, &lost), 0);
	CHECK_EQ(lost, 1);
	/* a whole message in one frame: given back without a copy */
	b.len = 0;
	fd_psf_put_msg(&b, 0, 0, "t", 1, 1, 1, 1, 10, NULL, 0, data, 10);
	REQUIRE(fd_psf_parse(b.data + 4, b.len - 4, &f, NULL) == 0);
	CHECK_EQ(fd_psf_reasm_add(&r, &f, &lost), 1);
	CHECK(r.head.data == f.data);
	CHECK(fd_psf_reasm_detach(&r) == NULL);
	fd_psf_reasm_release(&r);
	fd_buf_release(&b);
}
