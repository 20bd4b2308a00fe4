/* Pub/sub in the node: see pubsub.h for the protocol. */
#include "pubsub.h"
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "http.h"
#include "jsonl.h"
#include "jsonscan.h"
#include "log.h"
#include "member.h"
#include "metrics.h"
#include "node.h"
#include "psframe.h"
#include "topic.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#define MAX_PEERS 4096
#define MAX_SUBS 65536
#define MAX_PATTERNS_PER_SUB 64
#define MAX_DELTAS 1024
#define BATCH_MAX (2 * 1024 * 1024)
#define STREAM_FILL \
	(256 * 1024) /* keep a subscriber's socket queue this full */
#define MAX_ERRORS 20
#define LINE_EXTRA 1024 /* a line's bytes besides its data */
/* Payloads from this size on are shared rather than copied where they can
 * be (below it a copy costs less than the bookkeeping). */
#define SHARE_MIN (16 * 1024)
/* Topics a peer's gap report keeps apart, per channel; beyond, ">". */
#define DEBT_TOPICS 16
/* After a failed batch, the wait before the gap report is sent again. */
#define DEBT_RETRY_MS 250

enum { KIND_SUB = 1, KIND_PEER = 2 };
enum { FMT_JSONL, FMT_SSE };

/* A large published payload, shared by the peer queues and
 * local subscribers that send it: the frame it came in, taken from the publisher's reader (no copy). */
struct ps_blob {
	unsigned refs;
	char *mem;
};

/* Where publish may take a large payload from without copying it. */
struct ps_src {
	struct fd_psf_reader *reader;
	struct ps_blob *blob; /* taken, once a queue wanted it */
};

static void blob_unref(struct ps_blob *b)
{
	if (b && --b->refs == 0) {
		free(b->mem);
		free(b);
	}
}

/* The payload src holds, taken from its reader: NULL when out of memory. */
static struct ps_blob *src_blob(struct ps_src *src)
{
	if (!src->blob) {
		src->blob = calloc(1, sizeof(*src->blob));
		if (!src->blob)
			return NULL;
		src->blob->refs = 1; /* src's, dropped after publishing */
		src->blob->mem = fd_psf_reader_detach(src->reader);
	}
	return src->blob;
}

/* A message as local subscribers get it: one JSON line, shared. A gap marker
 * is a message too (is_gap). */
struct ps_msg {
	unsigned refs;
	unsigned is_gap;
	size_t len;  /* line bytes, '\n' included */
	char *line;  /* in inl, or in block */
	char *block; /* a reassembly buffer holding the line (freed with it) */
	/* or: line is the start (hlen bytes), then data from a shared blob,
	 * then "}\n" */
	struct ps_blob *blob;
	const char *data;
	size_t hlen;
	char inl[];
};

/* A line's bytes besides its data, at most (topic and node name escaped). */
#define MSG_HEAD_MAX(tlen, flen) (100 + 2 * (tlen) + 2 * (flen) + 48)
/* Room reassembly keeps before a payload for the line's start. */
#define REASM_HEAD MSG_HEAD_MAX(FD_TOPIC_MAX_LEN, 255)

struct ps_sub {
	int kind;
	struct pubsub *ps;
	struct fd_http_req *req;
	char *patterns[MAX_PATTERNS_PER_SUB];
	int npatterns;
	char *group;
	int format, overflow, ended;
	int policy; /* the overflow policy asked for (overflow becomes -1) */
	size_t max_msgs, max_bytes;
	struct ps_msg **ring;
	size_t rcap, head, count, bytes;
	/* the record being written to the stream, a piece at a time */
	struct ps_msg *cur;
	size_t cur_off;
	/* loss not yet reported */
	uint64_t missed;
	char gap_topic[FD_TOPIC_MAX_LEN + 1];
	uint64_t delivered, missed_total;
	struct ps_sub *prev, *next;
};

/* A large message in a peer queue by reference: a frame of type FRAME_REF
 * holding a pointer to this; its frames are made as they are sent. */
struct ps_ref {
	struct ps_blob *blob;
	struct fd_psf_chunker ck;
};
#define FRAME_REF 0xff

/* Messages a peer's subscribers will not get from us, by topic: reported
 * to it in GAP frames before anything else we send it on that channel. */
struct ps_debt {
	char topic[FD_TOPIC_MAX_LEN + 1];
	uint64_t n;
};

struct ps_peer;
struct ps_chan {
	struct ps_peer *peer;
	int idx;
	struct fd_buf q;
	size_t head; /* bytes of q already sent (or being sent) */
	/* the batch in flight: q[fly, fly + fly_q), fly_len bytes once framed
	 * (references expanded); read up to q[fly + rd_q] and rd_v bytes of
	 * the frame there */
	size_t fly, fly_q, fly_len, rd_q, rd_v;
	size_t vbytes;	   /* bytes queued, not yet in a batch, once framed */
	size_t msgs;	   /* messages queued */
	uint64_t inflight; /* request handle, 0 when idle */
	size_t inflight_msgs;
	struct ps_debt *debt; /* DEBT_TOPICS of them once needed */
	unsigned ndebt;
};

struct ps_delta {
	enum fd_topic_op op;
	char *pattern;
	char *group;
};

struct ps_peer {
	int kind;
	struct pubsub *ps;
	char name[256];
	char addr[80];
	char id[40];
	int alive;
	struct ps_chan ch[FD_PSF_NPRIO];
	/* interest we send */
	uint64_t ivers;
	int ineed_full, isent;
	uint64_t iinflight;
	struct ps_delta *deltas;
	size_t ndeltas;
	struct fd_timer iretry;
	struct fd_timer dretry; /* a gap report failed: try again then */
	/* interest we got */
	uint64_t rvers;
	int rhave;
	size_t rcount;
	struct fd_psf_reasm rx[FD_PSF_NPRIO];
	uint64_t tx_bytes, rx_bytes, tx_msgs, rx_msgs, lost;
	struct ps_peer *next;
};

struct ps_pub;

struct pubsub {
	struct node *n;
	struct pubsub_opts o;
	struct fd_topic_tree *local, *remote;
	struct ps_sub *subs;
	size_t nsubs;
	struct ps_peer *peers;
	size_t npeers;
	struct ps_pub *paused;
	uint64_t next_stream;
	uint64_t pick;
	struct fd_topic_match *mbuf;
	size_t mcap;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	struct fd_buf zbuf, lbuf;
	/* time stamp cache */
	int64_t ts_sec;
	char ts_prefix[32];
	/* counters */
	uint64_t published, delivered, forwarded, received, missed, gaps, lost,
		rejected, compressed, compress_saved, paused_count;
	/* GAP frames sent to peers and got from them, and the messages the
	 * latter said our subscribers missed */
	uint64_t gap_frames_sent, gap_frames_received, remote_missed;
	/* per overflow policy of the subscribers: messages they missed (their
	 * queue overflowed, or a peer could not bring them) and gap lines */
	uint64_t missed_by[3], gaps_by[3];
};

struct ps_pub {
	struct pubsub *ps;
	struct fd_http_req *req;
	int frames; /* binary body */
	unsigned prio;
	char topic[FD_TOPIC_MAX_LEN + 1]; /* from the path */
	size_t tlen;
	uint64_t stream, seq, first_seq;
	uint64_t published, rejected, items;
	struct json_object *errors;
	struct fd_psf_reader reader;
	/* the payload of the PUB frame coming in pieces, validated as it
	 * comes (js_done bytes so far) */
	struct fd_json_stream js;
	size_t js_done;
	int js_active;
	struct fd_buf line;
	int skipping;	/* inside a line too long */
	int line_ready; /* line holds a whole line not yet published */
	int blocked, end_pending, in_paused, done;
	/* authorization: the client's publish scopes (NULL: every topic);
	 * the first topic outside them ends the request with 403 */
	const struct fd_scopes *scopes;
	char who[160];
	char *denied; /* the 403 message, once a topic was refused */
	char denied_topic[FD_TOPIC_MAX_LEN + 1];
	struct ps_pub *pnext;
};

static void sub_pump(struct ps_sub *s);
static void pub_free(struct ps_pub *pub);
static void peer_kick(struct ps_peer *p, int ch);
static void interest_kick(struct ps_peer *p);
static void resume_publishers(struct pubsub *ps);
static size_t chan_done(const struct ps_chan *c);
static void chan_unref(struct ps_chan *c, size_t from, size_t to);
static void debt_add(struct ps_chan *c, const char *topic, size_t tlen, uint64_t n);
static void debt_clear(struct ps_chan *c);
static void debt_frames(struct ps_chan *c, size_t from, size_t to);

void pubsub_opts_default(struct pubsub_opts *o)
{
	o->max_payload = 8 * 1024 * 1024;
	o->sub_queue = 100000;
	o->sub_queue_bytes = 64 * 1024 * 1024;
	o->overflow = PS_DROP_OLDEST;
	o->chunk = 64 * 1024;
	o->compress_min = 0;
	o->shared_channel = 0;
	o->peer_queue = 32 * 1024 * 1024;
}

int pubsub_parse_overflow(const char *s)
{
	if (strcmp(s, "drop-oldest") == 0)
		return PS_DROP_OLDEST;
	if (strcmp(s, "drop-new") == 0)
		return PS_DROP_NEW;
	if (strcmp(s, "disconnect") == 0)
		return PS_DISCONNECT;
	return -1;
}

static const char *const prio_names[FD_PSF_NPRIO] = {"high", "normal", "bulk"};

static int parse_prio(const char *s)
{
	for (int i = 0; i < FD_PSF_NPRIO; i++)
		if (strcmp(s, prio_names[i]) == 0)
			return i;
	return -1;
}

/* ---- messages and subscribers ---- */

static void msg_unref(struct ps_msg *m)
{
	if (m && --m->refs == 0) {
		free(m->block);
		blob_unref(m->blob);
		free(m);
	}
}

/* "2026-11-26T17:06:31.123456Z" */
static size_t format_ts(struct pubsub *ps, uint64_t us, char *out)
{
	int64_t sec = (int64_t)(us / 1000000);

	if (sec != ps->ts_sec) {
		time_t t = (time_t)sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ps->ts_prefix, sizeof(ps->ts_prefix),
			 "%Y-%m-%dT%H:%M:%S.", &tm);
		ps->ts_sec = sec;
	}
	return (size_t)snprintf(out, 40, "%s%06uZ", ps->ts_prefix,
				(unsigned)(us % 1000000));
}

static size_t put_u64(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0, k = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		p[k++] = tmp[--n];
	return k;
}

#define APPEND(lit)                              \
	do {                                     \
		memcpy(p, lit, sizeof(lit) - 1); \
		p += sizeof(lit) - 1;            \
	} while (0)

/* Writes the line's start, up to its data, to p: MSG_HEAD_MAX bytes at
 * most. Returns its length. */
static size_t msg_head(struct pubsub *ps, char *p, const char *topic, size_t tlen,
		       const char *from, uint64_t stream, uint64_t seq, uint64_t ts)
{
	size_t flen = strlen(from);
	char *start = p;

	APPEND("{\"type\":\"message\",\"topic\":");
	p += fd_json_quote(p, 2 * tlen + 2, topic, tlen);
	APPEND(",\"seq\":");
	p += put_u64(p, seq);
	APPEND(",\"from\":");
	p += fd_json_quote(p, 2 * flen + 2, from, flen);
	APPEND(",\"stream\":");
	p += put_u64(p, stream);
	APPEND(",\"ts\":\"");
	p += format_ts(ps, ts, p);
	APPEND("\",\"data\":");
	return (size_t)(p - start);
}

/* Builds the message line. from is a node name. */
static struct ps_msg *msg_new(struct pubsub *ps, const char *topic, size_t tlen,
			      const char *from, uint64_t stream, uint64_t seq,
			      uint64_t ts, const char *data, size_t dlen)
{
	size_t cap = MSG_HEAD_MAX(tlen, strlen(from)) + dlen + 8;
	struct ps_msg *m = malloc(sizeof(*m) + cap);
	char *p;

	if (!m)
		return NULL;
	m->refs = 1;
	m->is_gap = 0;
	m->block = NULL;
	m->blob = NULL;
	m->line = p = m->inl;
	p += msg_head(ps, p, topic, tlen, from, stream, seq, ts);
	memcpy(p, data, dlen);
	p += dlen;
	APPEND("}\n");
	m->len = (size_t)(p - m->line);
	return m;
}

/* The same around a payload already in a reassembly buffer (REASM_HEAD
 * bytes in, 2 free after it), which the message takes: no copy. */
static struct ps_msg *msg_wrap(struct pubsub *ps, char *block, const char *topic,
			       size_t tlen, const char *from, uint64_t stream,
			       uint64_t seq, uint64_t ts, size_t dlen)
{
	struct ps_msg *m = malloc(sizeof(*m));
	char head[REASM_HEAD];
	size_t h;

	if (!m)
		return NULL;
	h = msg_head(ps, head, topic, tlen, from, stream, seq, ts);
	m->refs = 1;
	m->is_gap = 0;
	m->block = block;
	m->blob = NULL;
	m->line = block + REASM_HEAD - h;
	memcpy(m->line, head, h);
	memcpy(block + REASM_HEAD + dlen, "}\n", 2);
	m->len = h + dlen + 2;
	return m;
}

static struct ps_msg *gap_new(const char *topic, uint64_t missed, const char *reason)
{
	size_t tlen = strlen(topic);
	size_t cap = 64 + 2 * tlen + 24 + (reason ? strlen(reason) * 2 + 16 : 0);
	struct ps_msg *m = malloc(sizeof(*m) + cap);
	char *p;

	if (!m)
		return NULL;
	m->refs = 1;
	m->is_gap = 1;
	m->block = NULL;
	m->blob = NULL;
	m->line = p = m->inl;
	APPEND("{\"type\":\"gap\",\"topic\":");
	p += fd_json_quote(p, 2 * tlen + 2, topic, tlen);
	APPEND(",\"missed\":");
	p += put_u64(p, missed);
	if (reason) {
		APPEND(",\"reason\":");
		p += fd_json_quote(p, 2 * strlen(reason) + 2, reason, strlen(reason));
	}
	APPEND("}\n");
	m->len = (size_t)(p - m->line);
	return m;
}

static void note_missed_n(struct ps_sub *s, const char *topic, size_t tlen, uint64_t n)
{
	struct pubsub *ps = s->ps;

	if (s->missed == 0) {
		memcpy(s->gap_topic, topic, tlen);
		s->gap_topic[tlen] = '\0';
	} else if (strlen(s->gap_topic) != tlen || memcmp(s->gap_topic, topic, tlen)) {
		snprintf(s->gap_topic, sizeof(s->gap_topic), "%s", s->patterns[0]);
	}
	s->missed += n;
	s->missed_total += n;
	ps->missed += n;
	ps->missed_by[s->policy] += n;
}

/* A gap line was queued for s. */
static void count_gap(struct ps_sub *s)
{
	s->ps->gaps++;
	s->ps->gaps_by[s->policy]++;
}

static void note_missed(struct ps_sub *s, const char *topic, size_t tlen)
{
	note_missed_n(s, topic, tlen, 1);
}

static int ring_push(struct ps_sub *s, struct ps_msg *m)
{
	if (s->count == s->rcap) {
		size_t ncap = s->rcap ? s->rcap * 2 : 256;
		struct ps_msg **r;

		if (ncap > s->max_msgs + 2)
			ncap = s->max_msgs + 2;
		if (ncap <= s->count)
			return -1;
		r = malloc(ncap * sizeof(*r));
		if (!r)
			return -1;
		for (size_t i = 0; i < s->count; i++)
			r[i] = s->ring[(s->head + i) % s->rcap];
		free(s->ring);
		s->ring = r;
		s->rcap = ncap;
		s->head = 0;
	}
	s->ring[(s->head + s->count) % s->rcap] = m;
	s->count++;
	s->bytes += m->len;
	return 0;
}

static struct ps_msg *ring_pop(struct ps_sub *s)
{
	struct ps_msg *m;

	if (!s->count)
		return NULL;
	m = s->ring[s->head];
	s->head = (s->head + 1) % s->rcap;
	s->count--;
	s->bytes -= m->len;
	return m;
}

static void sub_end(struct ps_sub *s)
{
	if (s->ended)
		return;
	s->ended = 1;
	fd_http_stream_end(s->req);
}

/* Queues the pending gap line (drop-new: at the tail, once there is room). */
static void flush_gap_tail(struct ps_sub *s)
{
	struct ps_msg *g;

	if (!s->missed || s->count >= s->max_msgs)
		return;
	g = gap_new(s->gap_topic, s->missed, NULL);
	if (!g || ring_push(s, g) < 0) {
		free(g);
		return;
	}
	count_gap(s);
	s->missed = 0;
}

/* Hands m to subscriber s (taking a reference when queued). Returns 1 when
 * m was queued, 0 when it was dropped. */
static int sub_deliver(struct ps_sub *s, struct ps_msg *m, const char *topic,
		       size_t tlen)
{
	if (s->ended)
		return 0;
	if (s->overflow == PS_DROP_NEW)
		flush_gap_tail(s);
	if (s->count >= s->max_msgs || s->bytes + m->len > s->max_bytes) {
		if (s->overflow == PS_DISCONNECT) {
			struct ps_msg *g;

			note_missed(s, topic, tlen);
			g = gap_new(s->gap_topic, s->missed,
				    "subscriber queue full: disconnected");
			if (g) {
				if (ring_push(s, g) < 0)
					free(g);
				else
					count_gap(s);
			}
			s->missed = 0;
			s->overflow = -1; /* ends once the queue is written */
			sub_pump(s);
			return 0;
		}
		if (s->overflow == PS_DROP_NEW) {
			note_missed(s, topic, tlen);
			return 0;
		}
		if (s->overflow == PS_DROP_OLDEST) {
			while (s->count && (s->count >= s->max_msgs ||
					    s->bytes + m->len > s->max_bytes)) {
				struct ps_msg *old = ring_pop(s);
				const char *t = "?";
				size_t tl = 1;

				if (old->is_gap) {
					/* fold an older gap into the new one */
					struct json_object *o = fd_json_parse(
						old->line, old->len - 1, NULL);

					s->missed += (uint64_t)fd_json_get_int(
						o, "missed", 0);
					json_object_put(o);
					msg_unref(old);
					continue;
				}
				/* the topic sits at a fixed place in the line */
				t = old->line +
				    sizeof("{\"type\":\"message\",\"topic\":\"") - 1;
				tl = (size_t)(strchr(t, '"') - t);
				if (memchr(t, '\\', tl))
					tl = 0;
				note_missed(s, tl ? t : s->patterns[0],
					    tl ? tl : strlen(s->patterns[0]));
				msg_unref(old);
			}
			if (m->len > s->max_bytes) {
				note_missed(s, topic, tlen);
				return 0;
			}
		} else {
			return 0; /* disconnecting */
		}
	}
	if (ring_push(s, m) < 0) {
		note_missed(s, topic, tlen);
		return 0;
	}
	m->refs++;
	sub_pump(s);
	return 1;
}

/* n messages on topic for s that a peer could not bring here (a partition,
 * a failed batch): a gap line after what is queued, since they came after
 * it; with no room, the overflow policy applies to the gap line as to a
 * message. */
static void sub_lost(struct ps_sub *s, const char *topic, uint64_t n)
{
	size_t tlen = strlen(topic);
	struct ps_msg *g;

	if (s->ended || n == 0)
		return;
	if (s->overflow == PS_DROP_NEW && s->count >= s->max_msgs) {
		note_missed_n(s, topic, tlen, n); /* told at the tail later */
		return;
	}
	g = gap_new(topic, n, NULL);
	if (!g)
		return;
	s->missed_total += n;
	s->ps->missed += n;
	s->ps->missed_by[s->policy] += n;
	if (sub_deliver(s, g, topic, tlen))
		count_gap(s);
	msg_unref(g);
}

/* The same around a payload in a shared blob: the line's start only is
 * written here, the payload is referred to. */
static struct ps_msg *msg_share(struct pubsub *ps, struct ps_blob *blob,
				const char *topic, size_t tlen,
				const char *from, uint64_t stream, uint64_t seq,
				uint64_t ts, const char *data, size_t dlen)
{
	struct ps_msg *m = malloc(sizeof(*m) + MSG_HEAD_MAX(tlen, strlen(from)));

	if (!m)
		return NULL;
	m->refs = 1;
	m->is_gap = 0;
	m->block = NULL;
	m->line = m->inl;
	m->hlen = msg_head(ps, m->line, topic, tlen, from, stream, seq, ts);
	m->blob = blob;
	blob->refs++;
	m->data = data;
	m->len = m->hlen + dlen + 2;
	return m;
}

/* Writes record m on from *off, at most max bytes (the stream's format
 * around the line: SSE's "data: " and blank line). Returns 1 when all of it
 * is written, 0 when not yet, -1 when the stream refused it. */
static int sub_put(struct ps_sub *s, struct ps_msg *m, size_t *off, size_t max)
{
	struct {
		const char *p;
		size_t len;
	} part[5];
	size_t np = 0, at = 0, total = 0;

	if (s->format == FMT_SSE) {
		part[np].p = "data: ";
		part[np++].len = 6;
	}
	if (m->blob) {
		part[np].p = m->line;
		part[np++].len = m->hlen;
		part[np].p = m->data;
		part[np++].len = m->len - m->hlen - 2;
		part[np].p = "}\n";
		part[np++].len = 2;
	} else {
		part[np].p = m->line;
		part[np++].len = m->len;
	}
	if (s->format == FMT_SSE) {
		part[np].p = "\n";
		part[np++].len = 1;
	}
	for (size_t i = 0; i < np; i++)
		total += part[i].len;
	for (size_t i = 0; i < np && max > 0; at += part[i++].len) {
		size_t k;

		if (*off >= at + part[i].len)
			continue;
		k = at + part[i].len - *off;
		if (k > max)
			k = max;
		if (fd_http_stream_write(s->req, part[i].p + (*off - at), k) < 0)
			return -1;
		*off += k;
		max -= k;
	}
	return *off == total;
}

/* Moves queued records to the stream while it holds less than STREAM_FILL
 * bytes. A large record goes a piece at a time (as the stream drains), so
 * that no loop turn copies all of it. */
static void sub_pump(struct ps_sub *s)
{
	if (s->ended)
		return;
	for (;;) {
		size_t q = fd_http_stream_queued(s->req);
		int rc;

		if (q >= STREAM_FILL)
			break;
		if (s->cur) {
			rc = sub_put(s, s->cur, &s->cur_off, STREAM_FILL - q);
			if (rc < 0)
				break;
			if (rc == 0)
				continue;
			if (!s->cur->is_gap) {
				s->delivered++;
				s->ps->delivered++;
			}
			msg_unref(s->cur);
			s->cur = NULL;
			continue;
		}
		/* drop-oldest: the loss comes before what is left in the queue */
		if (s->missed && s->overflow == PS_DROP_OLDEST) {
			s->cur = gap_new(s->gap_topic, s->missed, NULL);
			if (!s->cur)
				break;
			s->cur_off = 0;
			count_gap(s);
			s->missed = 0;
			continue;
		}
		if (!s->count)
			break;
		s->cur = ring_pop(s);
		s->cur_off = 0;
	}
	if (s->overflow == PS_DROP_NEW)
		flush_gap_tail(s);
	if (s->overflow == -1 && s->count == 0 && !s->cur)
		sub_end(s);
}

static void on_sub_drain(struct fd_http_req *req, void *arg)
{
	(void)req;
	sub_pump(arg);
}

/* ---- interest ---- */

static struct ps_peer *peer_find(struct pubsub *ps, const char *name)
{
	for (struct ps_peer *p = ps->peers; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void on_iretry(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	interest_kick(arg);
}

static void on_dretry(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct ps_peer *p = arg;

	(void)loop;
	(void)t;
	for (int i = 0; i < FD_PSF_NPRIO; i++)
		peer_kick(p, i);
}

static struct ps_peer *peer_get(struct pubsub *ps, const char *name)
{
	struct ps_peer *p = peer_find(ps, name);

	if (p || ps->npeers >= MAX_PEERS || strlen(name) >= sizeof(p->name))
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->kind = KIND_PEER;
	p->ps = ps;
	snprintf(p->name, sizeof(p->name), "%s", name);
	for (int i = 0; i < FD_PSF_NPRIO; i++) {
		/* at most peer_queue + one message pending, and no more sent
		 * bytes than pending ones before compaction (peer_kick) */
		p->ch[i].q = (struct fd_buf)FD_BUF_INIT(
			2 * (ps->o.peer_queue + ps->o.max_payload +
			     ps->o.max_payload / 64 + 65536));
		p->ch[i].peer = p;
		p->ch[i].idx = i;
		fd_psf_reasm_init(&p->rx[i], ps->o.max_payload + 64, REASM_HEAD, 2);
	}
	fd_timer_init(&p->iretry, on_iretry, p);
	fd_timer_init(&p->dretry, on_dretry, p);
	p->next = ps->peers;
	ps->peers = p;
	ps->npeers++;
	return p;
}

static void deltas_clear(struct ps_peer *p)
{
	for (size_t i = 0; i < p->ndeltas; i++) {
		free(p->deltas[i].pattern);
		free(p->deltas[i].group);
	}
	free(p->deltas);
	p->deltas = NULL;
	p->ndeltas = 0;
}

/* The peer is gone (left, restarted, forgotten): forget what it wanted and
 * what we were sending it. With failed set it may come back (a partition):
 * what it wanted stays, and what it will not get is owed (debt_add), to be
 * reported to it when it is back. */
static void peer_reset(struct ps_peer *p, int failed)
{
	struct pubsub *ps = p->ps;

	if (!failed) {
		fd_topic_tree_remove_value(ps->remote, p, NULL, NULL);
		p->rhave = 0;
		p->rvers = 0;
		p->rcount = 0;
		fd_timer_disarm(ps->n->loop, &p->dretry);
	}
	for (int i = 0; i < FD_PSF_NPRIO; i++) {
		struct ps_chan *c = &p->ch[i];

		if (failed)
			debt_frames(c, chan_done(c), c->q.len);
		else
			debt_clear(c);
		chan_unref(c, chan_done(c), c->q.len);
		if (c->inflight)
			fd_http_cancel(ps->n->client, c->inflight);
		c->inflight = 0;
		c->vbytes = 0;
		p->lost += c->msgs + c->inflight_msgs;
		ps->lost += c->msgs + c->inflight_msgs;
		c->msgs = c->inflight_msgs = 0;
		fd_buf_release(&c->q);
		c->head = 0;
		fd_psf_reasm_release(&p->rx[i]);
	}
	if (p->iinflight)
		fd_http_cancel(ps->n->client, p->iinflight);
	p->iinflight = 0;
	fd_timer_disarm(ps->n->loop, &p->iretry);
	deltas_clear(p);
	p->ineed_full = 1;
	p->isent = 0;
	resume_publishers(ps);
}

struct collect {
	struct fd_topic_item *items;
	size_t n, cap;
};

static int collect_interest(void *arg, const char *pattern, size_t len,
			    const char *group, size_t count)
{
	struct collect *c = arg;

	(void)count;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct fd_topic_item *it = realloc(c->items, ncap * sizeof(*it));

		if (!it)
			return 1;
		c->items = it;
		c->cap = ncap;
	}
	c->items[c->n++] = (struct fd_topic_item){FD_TOPIC_ADD, pattern, len, group};
	return 0;
}

static int item_cmp(const void *a, const void *b)
{
	return fd_topic_item_cmp(a, b);
}

static void url_escape(char *out, size_t cap, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s && n + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c)) {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hexd[c >> 4];
			out[n++] = hexd[c & 15];
		}
	}
	out[n] = '\0';
}

static int peer_url(struct ps_peer *p, const char *path, const char *extra,
		    char *url, size_t len)
{
	struct node *n = p->ps->n;
	char name[800], full[1200];

	url_escape(name, sizeof(name), n->name);
	snprintf(full, sizeof(full), "%s?from=%s&id=%s%s", path, name, n->id, extra);
	return fd_http_url(url, len, p->addr, full);
}

static void on_interest_done(const struct fd_http_resp *resp, void *arg)
{
	struct ps_peer *p = arg;

	p->iinflight = 0;
	if (resp->status == 200) {
		p->isent = 1;
	} else if (resp->status == 409) {
		p->ineed_full = 1;
	} else {
		fd_debug("pubsub: interest to %s failed: %s", p->name,
			 resp->error ? resp->error : resp->body);
		p->ineed_full = 1;
		if (p->alive)
			fd_timer_arm(p->ps->n->loop, &p->iretry, 500);
		return;
	}
	interest_kick(p);
}

static void interest_kick(struct ps_peer *p)
{
	struct pubsub *ps = p->ps;
	struct collect c = {0};
	struct fd_topic_item *items;
	size_t n, need = 0, cap;
	char url[1024], *buf;
	struct fd_err err;
	enum fd_topic_set_kind kind;
	static const char *const hdrs[] = {
		"Content-Type: application/octet-stream", NULL};

	if (!p->alive || p->iinflight || !p->addr[0] || fd_timer_armed(&p->iretry))
		return;
	if (p->ineed_full) {
		fd_topic_tree_each_interest(ps->local, collect_interest, &c);
		if (c.n == 0 && !p->isent) {
			/* it knows nothing of us: nothing to tell */
			free(c.items);
			p->ineed_full = 0;
			deltas_clear(p);
			return;
		}
		qsort(c.items, c.n, sizeof(*c.items), item_cmp);
		items = c.items;
		n = c.n;
		kind = FD_TOPIC_SET_FULL;
	} else if (p->ndeltas) {
		c.items = calloc(p->ndeltas, sizeof(*c.items));
		if (!c.items)
			return;
		for (size_t i = 0; i < p->ndeltas; i++)
			c.items[i] = (struct fd_topic_item){
				p->deltas[i].op, p->deltas[i].pattern,
				strlen(p->deltas[i].pattern), p->deltas[i].group};
		items = c.items;
		n = p->ndeltas;
		kind = FD_TOPIC_SET_DELTA;
	} else {
		return;
	}
	fd_topic_set_encode(NULL, 0, kind, p->ivers + 1, items, n, &need, NULL);
	cap = need ? need : 64;
	buf = malloc(cap);
	if (!buf || fd_topic_set_encode(buf, cap, kind, p->ivers + 1, items, n,
					&need, &err) < 0) {
		free(buf);
		free(c.items);
		return;
	}
	free(c.items);
	p->ivers++;
	p->ineed_full = 0;
	deltas_clear(p);
	if (peer_url(p, "/v1/cluster/interest", "", url, sizeof(url)) == 0)
		p->iinflight = fd_http_request(ps->n->client, "POST", url, buf,
					       need, hdrs, 5000,
					       on_interest_done, p, &err);
	free(buf);
	if (!p->iinflight) {
		p->ineed_full = 1;
		fd_timer_arm(ps->n->loop, &p->iretry, 500);
	}
}

/* A (pattern, group) appeared or disappeared here: tell every live peer. */
static void interest_changed(struct pubsub *ps, enum fd_topic_op op,
			     const char *pattern, const char *group)
{
	for (struct ps_peer *p = ps->peers; p; p = p->next) {
		struct ps_delta *d;

		if (!p->alive)
			continue;
		if (p->ineed_full || p->ndeltas >= MAX_DELTAS) {
			p->ineed_full = 1;
			deltas_clear(p);
			interest_kick(p);
			continue;
		}
		d = realloc(p->deltas, (p->ndeltas + 1) * sizeof(*d));
		if (!d) {
			p->ineed_full = 1;
			continue;
		}
		p->deltas = d;
		d[p->ndeltas].op = op;
		d[p->ndeltas].pattern = strdup(pattern);
		d[p->ndeltas].group = group ? strdup(group) : NULL;
		p->ndeltas++;
		interest_kick(p);
	}
}

struct apply {
	struct pubsub *ps;
	struct ps_peer *p;
};

static int apply_item(void *arg, const struct fd_topic_item *it)
{
	struct apply *a = arg;

	if (it->op == FD_TOPIC_ADD) {
		if (fd_topic_tree_add(a->ps->remote, it->pattern, it->len,
				      it->group, a->p, NULL) >= 0)
			a->p->rcount++;
	} else if (fd_topic_tree_remove(a->ps->remote, it->pattern, it->len,
					it->group, a->p) >= 0) {
		a->p->rcount--;
	}
	return 0;
}

static struct ps_peer *peer_from_req(struct pubsub *ps, struct fd_http_req *req)
{
	const char *from = fd_http_query(req, "from");
	const char *id = fd_http_query(req, "id");
	struct ps_peer *p;

	if (!from || !*from || !id || strlen(id) >= sizeof(p->id))
		return NULL;
	p = peer_get(ps, from);
	if (!p)
		return NULL;
	if (strcmp(p->id, id) != 0) {
		/* a new instance of that name: what we had of the old is void */
		if (p->id[0]) {
			fd_topic_tree_remove_value(ps->remote, p, NULL, NULL);
			p->rhave = 0;
			p->rcount = 0;
			for (int i = 0; i < FD_PSF_NPRIO; i++) {
				fd_psf_reasm_reset(&p->rx[i]);
				debt_clear(&p->ch[i]); /* its subscribers are gone */
			}
		}
		snprintf(p->id, sizeof(p->id), "%s", id);
	}
	return p;
}

static void h_interest(struct fd_http_req *req, void *arg)
{
	struct pubsub *ps = arg;
	struct ps_peer *p = peer_from_req(ps, req);
	struct fd_topic_set_info info;
	struct apply a = {ps, p};
	struct fd_err err;
	size_t len;
	const char *body = fd_http_body(req, &len);

	if (!p) {
		fd_http_reply_error(req, 400, "expected from=NAME&id=ID");
		return;
	}
	if (fd_topic_set_decode(body, len, &info, NULL, NULL, &err) < 0) {
		fd_http_reply_error(req, 400, "%s", err.msg);
		return;
	}
	if (info.kind == FD_TOPIC_SET_DELTA &&
	    (!p->rhave || info.version != p->rvers + 1)) {
		fd_http_reply_error(req, 409,
				    "delta %llu does not follow %llu: send a full set",
				    (unsigned long long)info.version,
				    (unsigned long long)p->rvers);
		return;
	}
	if (info.kind == FD_TOPIC_SET_FULL) {
		fd_topic_tree_remove_value(ps->remote, p, NULL, NULL);
		p->rcount = 0;
	}
	fd_topic_set_decode(body, len, NULL, apply_item, &a, NULL);
	p->rvers = info.version;
	p->rhave = 1;
	fd_http_reply(req, 200, "application/json", "{}\n", 3);
}

/* ---- forwarding ---- */

static void on_batch_done(const struct fd_http_resp *resp, void *arg);

static struct ps_chan *chan_of(struct ps_peer *p, int ch)
{
	return &p->ch[ch];
}

static size_t frame_len_at(const char *p)
{
	const unsigned char *f = (const unsigned char *)p;

	return (size_t)f[0] | (size_t)f[1] << 8 | (size_t)f[2] << 16 |
	       (size_t)f[3] << 24;
}

static struct ps_ref *ref_at(const char *frame)
{
	struct ps_ref *r;

	memcpy(&r, frame + 5, sizeof(r));
	return r;
}

/* The bytes the frame at q[off] is on the wire. */
static size_t frame_wire_len(const struct ps_chan *c, size_t off)
{
	const char *f = c->q.data + off;

	return (unsigned char)f[4] == FRAME_REF ? ref_at(f)->ck.size
						: 4 + frame_len_at(f);
}

/* Lets go of the references in q[from, to). */
static void chan_unref(struct ps_chan *c, size_t from, size_t to)
{
	while (from < to) {
		const char *f = c->q.data + from;

		if ((unsigned char)f[4] == FRAME_REF) {
			struct ps_ref *r = ref_at(f);

			fd_psf_chunker_release(&r->ck);
			blob_unref(r->blob);
			free(r);
		}
		from += 4 + frame_len_at(f);
	}
}

/* Bytes of c->q that may be dropped: sent, and not in flight. */
static size_t chan_done(const struct ps_chan *c)
{
	return c->inflight ? c->fly : c->head;
}

static void chan_compact(struct ps_chan *c)
{
	size_t n = chan_done(c);

	fd_buf_consume(&c->q, n);
	c->head -= n;
	c->fly -= n;
}

/* curl reads the batch in flight from the queue as it sends it: no copy of
 * it up front, and the queue may grow (move) meanwhile. */
static size_t batch_read(char *buf, size_t max, void *arg)
{
	struct ps_chan *c = arg;
	size_t n = 0;

	while (n < max && c->rd_q < c->fly_q) {
		const char *f = c->q.data + c->fly + c->rd_q;
		size_t flen = 4 + frame_len_at(f), k;

		if ((unsigned char)f[4] == FRAME_REF) {
			struct ps_ref *r = ref_at(f);

			k = fd_psf_chunker_read(&r->ck, c->rd_v, buf + n, max - n);
			flen = r->ck.size;
		} else {
			k = flen - c->rd_v < max - n ? flen - c->rd_v : max - n;
			memcpy(buf + n, f + c->rd_v, k);
		}
		n += k;
		c->rd_v += k;
		if (c->rd_v == flen) {
			c->rd_q += 4 + frame_len_at(f);
			c->rd_v = 0;
		}
	}
	return n;
}

/* n more messages on topic that channel c's peer will not get. */
static void debt_add(struct ps_chan *c, const char *topic, size_t tlen, uint64_t n)
{
	struct ps_debt *d;

	if (n == 0 || tlen == 0 || tlen > FD_TOPIC_MAX_LEN)
		return;
	if (!c->debt) {
		c->debt = calloc(DEBT_TOPICS, sizeof(*c->debt));
		if (!c->debt)
			return;
	}
	for (unsigned i = 0; i < c->ndebt; i++) {
		d = &c->debt[i];
		if (strlen(d->topic) == tlen && memcmp(d->topic, topic, tlen) == 0) {
			d->n += n;
			return;
		}
	}
	if (c->ndebt == DEBT_TOPICS) {
		c->debt[DEBT_TOPICS - 1].n += n; /* the ">" slot */
		return;
	}
	d = &c->debt[c->ndebt++];
	if (c->ndebt == DEBT_TOPICS)
		snprintf(d->topic, sizeof(d->topic), ">");
	else
		snprintf(d->topic, sizeof(d->topic), "%.*s", (int)tlen, topic);
	d->n = n;
}

static void debt_clear(struct ps_chan *c)
{
	free(c->debt);
	c->debt = NULL;
	c->ndebt = 0;
}

/* The frames in c->q[from, to) will not reach the peer: what they carry
 * (messages, and earlier gap reports) is owed. */
static void debt_frames(struct ps_chan *c, size_t from, size_t to)
{
	while (from < to) {
		const char *f = c->q.data + from;
		size_t flen = frame_len_at(f);
		struct fd_psf pf;

		if ((unsigned char)f[4] == FRAME_REF) {
			const struct ps_ref *r = ref_at(f);

			if (fd_psf_parse(r->ck.head + 4, r->ck.hlen - 4, &pf,
					 NULL) == 0)
				debt_add(c, pf.topic, pf.topic_len, 1);
		} else if ((f[4] == FD_PSF_MSG || f[4] == FD_PSF_GAP) &&
			   fd_psf_parse(f + 4, flen, &pf, NULL) == 0) {
			debt_add(c, pf.topic, pf.topic_len,
				 pf.type == FD_PSF_GAP ? pf.total : 1);
		}
		from += 4 + flen;
	}
}

/* Puts the gap report at the head of what c sends next. Returns 0, or -1
 * (no room: it waits). */
static int debt_queue(struct ps_chan *c)
{
	struct fd_buf g = FD_BUF_INIT(DEBT_TOPICS * (FD_TOPIC_MAX_LEN + 20));
	size_t tail;
	char *room;
	int rc = -1;

	for (unsigned i = 0; i < c->ndebt; i++)
		if (fd_psf_put_gap(&g, (unsigned)c->idx, c->debt[i].topic,
				   strlen(c->debt[i].topic), c->debt[i].n) < 0)
			goto out;
	tail = c->q.len - c->head;
	room = fd_buf_grow(&c->q, g.len);
	if (!room)
		goto out;
	memmove(c->q.data + c->head + g.len, c->q.data + c->head, tail);
	memcpy(c->q.data + c->head, g.data, g.len);
	c->vbytes += g.len;
	c->peer->ps->gap_frames_sent += c->ndebt;
	debt_clear(c);
	rc = 0;
out:
	fd_buf_release(&g);
	return rc;
}

/* Sends the next batch of channel ch when none is in flight. */
static void peer_kick(struct ps_peer *p, int ch)
{
	struct pubsub *ps = p->ps;
	struct ps_chan *c = chan_of(p, ch);
	size_t avail = c->q.len - c->head, take = 0, vtake = 0, msgs = 0;
	char url[1024], extra[16];
	struct fd_err err;
	static const char *const hdrs[] = {"Content-Type: application/x-fd-frames",
					   NULL};

	if (c->inflight || !p->alive || !p->addr[0])
		return;
	/* what the peer missed is told first, and nothing goes before it */
	if (c->ndebt && (fd_timer_armed(&p->dretry) || debt_queue(c) < 0))
		return;
	avail = c->q.len - c->head;
	if (avail == 0)
		return;
	/* what was sent before is done with */
	if (c->head == c->q.len) {
		c->q.len = c->head = 0;
	} else if (c->head > (1u << 20) && c->head >= c->q.len / 2) {
		chan_compact(c);
	}
	/* whole frames, up to BATCH_MAX (at least one) */
	while (take < avail) {
		const unsigned char *f =
			(const unsigned char *)c->q.data + c->head + take;
		size_t wire = frame_wire_len(c, c->head + take);

		if (take > 0 && vtake + wire > BATCH_MAX)
			break;
		if (f[4] == FD_PSF_MSG || f[4] == FRAME_REF)
			msgs++;
		/* (GAP frames are not messages) */
		take += 4 + frame_len_at((const char *)f);
		vtake += wire;
	}
	snprintf(extra, sizeof(extra), "&ch=%d", ch);
	if (peer_url(p, "/v1/cluster/pubsub", extra, url, sizeof(url)) < 0)
		return;
	c->fly = c->head;
	c->fly_q = take;
	c->fly_len = vtake;
	c->rd_q = c->rd_v = 0;
	c->inflight = fd_http_request_read(ps->n->client, "POST", url, vtake,
					   batch_read, c, hdrs, 30000,
					   on_batch_done, c, &err);
	if (!c->inflight) {
		fd_warn("pubsub: unable to send to %s: %s", p->name, err.msg);
		return;
	}
	p->tx_bytes += vtake;
	c->head += take;
	c->vbytes -= vtake < c->vbytes ? vtake : c->vbytes;
	c->msgs -= msgs < c->msgs ? msgs : c->msgs;
	c->inflight_msgs = msgs;
}

static void on_batch_done(const struct fd_http_resp *resp, void *arg)
{
	struct ps_chan *c = arg;
	int ch = c->idx;
	struct ps_peer *p = c->peer;
	struct pubsub *ps = p->ps;

	if (resp->status != 200) {
		debt_frames(c, c->fly, c->fly + c->fly_q);
		if (c->ndebt)
			fd_timer_arm(ps->n->loop, &p->dretry, DEBT_RETRY_MS);
	}
	chan_unref(c, c->fly, c->fly + c->fly_q);
	c->inflight = 0;
	if (resp->status != 200) {
		fd_debug("pubsub: batch to %s failed: %s", p->name,
			 resp->error ? resp->error : resp->body);
		p->lost += c->inflight_msgs;
		ps->lost += c->inflight_msgs;
	} else {
		p->tx_msgs += c->inflight_msgs;
	}
	c->inflight_msgs = 0;
	peer_kick(p, ch);
	resume_publishers(ps);
}

static int chan_full(struct ps_peer *p, int ch)
{
	struct ps_chan *c = &p->ch[ch];

	return c->vbytes >= p->ps->o.peer_queue;
}

/* Queues one message for p on its channel. payload is what travels (maybe
 * compressed: flags). */
/* Queues a large payload that src can give by reference. Returns 0, or -1
 * (then copy it). */
static int enqueue_ref(struct ps_chan *c, struct ps_src *src, unsigned prio,
		       unsigned flags, const char *topic, size_t tlen,
		       uint64_t stream, uint64_t seq, uint64_t ts,
		       const char *payload, size_t plen,
		       const char *const *groups, unsigned ngroups, size_t chunk)
{
	struct ps_ref *r;
	unsigned char *f;

	if (!src_blob(src))
		return -1;
	r = malloc(sizeof(*r));
	if (!r)
		return -1;
	if (fd_psf_chunker_init(&r->ck, flags, prio, topic, tlen, stream, seq,
				ts, groups, ngroups, payload, plen, chunk) < 0) {
		free(r);
		return -1;
	}
	f = fd_buf_grow(&c->q, 5 + sizeof(r));
	if (!f) {
		fd_psf_chunker_release(&r->ck);
		free(r);
		return -1;
	}
	f[0] = 1 + sizeof(r);
	f[1] = f[2] = f[3] = 0;
	f[4] = FRAME_REF;
	memcpy(f + 5, &r, sizeof(r));
	r->blob = src->blob;
	src->blob->refs++;
	c->vbytes += r->ck.size;
	return 0;
}

static int peer_enqueue(struct ps_peer *p, unsigned prio, unsigned flags,
			const char *topic, size_t tlen, uint64_t stream,
			uint64_t seq, uint64_t ts, const char *payload,
			size_t plen, const char *const *groups,
			unsigned ngroups, struct ps_src *src)
{
	struct pubsub *ps = p->ps;
	int ch = ps->o.shared_channel ? 0 : (int)prio;
	struct ps_chan *c = &p->ch[ch];
	size_t old = c->q.len;

	/* room: drop the bytes already sent (only when they are at least half
	 * of the buffer, so that compaction stays linear overall) */
	if (chan_done(c) > 0 && chan_done(c) >= c->q.len / 2 &&
	    c->q.len + plen + FD_PSF_MSG_OVERHEAD + tlen +
			    (plen / ps->o.chunk + 1) * 8 + 256 * ngroups >
		    c->q.max)
		chan_compact(c);
	if (src && plen >= SHARE_MIN &&
	    enqueue_ref(c, src, prio, flags, topic, tlen, stream, seq, ts,
			payload, plen, groups, ngroups, ps->o.chunk) == 0) {
		/* queued by reference */
	} else if (fd_psf_put_chunks(&c->q, flags, prio, topic, tlen, stream,
				     seq, ts, groups, ngroups, payload, plen,
				     ps->o.chunk) < 0) {
		p->lost++;
		ps->lost++;
		return -1;
	} else {
		c->vbytes += c->q.len - old;
	}
	c->msgs++;
	ps->forwarded++;
	peer_kick(p, ch);
	return 0;
}

/* ---- publishing and delivery ---- */

static int match_into(struct pubsub *ps, const struct fd_topic_tree *t,
		      const char *topic, size_t tlen, size_t at, size_t *n)
{
	long k;

	for (;;) {
		k = fd_topic_tree_collect(t, topic, tlen, ps->mbuf + at,
					  ps->mcap - at);
		if (k < 0)
			return -1;
		if ((size_t)k <= ps->mcap - at)
			break;
		{
			size_t ncap = at + (size_t)k + 16;
			struct fd_topic_match *m =
				realloc(ps->mbuf, ncap * sizeof(*m));

			if (!m)
				return -1;
			ps->mbuf = m;
			ps->mcap = ncap;
		}
	}
	*n = at + (size_t)k;
	return 0;
}

static int group_listed(const struct fd_psf *f, const char *group)
{
	size_t off = 0, glen, l = strlen(group);
	const char *g;

	while (fd_psf_group_next(f, &off, &g, &glen))
		if (glen == l && memcmp(g, group, l) == 0)
			return 1;
	return 0;
}

/* Delivers a message that came from peer `from` to the local subscribers:
 * the ungrouped ones and one member of each group the sender picked us
 * for (f: the MSG header, for its group list; NULL: none). */
/* block: NULL, or a reassembly buffer holding data (REASM_HEAD bytes in),
 * which this takes. */
static void deliver_remote(struct pubsub *ps, struct ps_peer *from,
			   const struct fd_psf *f, const char *topic,
			   size_t tlen, uint64_t stream, uint64_t seq,
			   uint64_t ts, const char *data, size_t dlen,
			   char *block, struct ps_src *src)
{
	struct ps_msg *m = NULL;
	size_t n = 0, k;

	if (match_into(ps, ps->local, topic, tlen, 0, &n) < 0 || n == 0) {
		free(block);
		return;
	}
	k = fd_topic_select(ps->mbuf, n, ps->pick++, FD_TOPIC_ONCE_PER_VALUE);
	for (size_t i = 0; i < k; i++) {
		struct ps_sub *s = ps->mbuf[i].value;

		if (ps->mbuf[i].group && (!f || !group_listed(f, ps->mbuf[i].group)))
			continue;
		if (!m) {
			struct ps_blob *b = !block && src && dlen >= SHARE_MIN
						    ? src_blob(src)
						    : NULL;

			if (block)
				m = msg_wrap(ps, block, topic, tlen, from->name,
					     stream, seq, ts, dlen);
			else if (b)
				m = msg_share(ps, b, topic, tlen, from->name,
					      stream, seq, ts, data, dlen);
			else
				m = msg_new(ps, topic, tlen, from->name, stream,
					    seq, ts, data, dlen);
			if (!m)
				break;
			block = NULL;
		}
		sub_deliver(s, m, topic, tlen);
	}
	free(block);
	msg_unref(m);
}

/* Publishes from a local client. Returns 0, 1 when a peer queue is full (try
 * again later; nothing done), -1 on a failure (err filled). */
/* src: NULL, or where data can be taken from without a copy. */
static int publish(struct ps_pub *pub, unsigned prio, const char *topic,
		   size_t tlen, const char *data, size_t dlen, struct ps_src *src)
{
	struct pubsub *ps = pub->ps;
	struct ps_msg *m = NULL;
	size_t n = 0, k;
	uint64_t seq, ts;
	const char *payload = data;
	size_t plen = dlen;
	unsigned flags = 0;
	int compressed = 0;

	if (match_into(ps, ps->local, topic, tlen, 0, &n) < 0 ||
	    match_into(ps, ps->remote, topic, tlen, n, &n) < 0)
		return -1;
	k = fd_topic_select(ps->mbuf, n, ps->pick++, FD_TOPIC_ONCE_PER_VALUE);
	for (size_t i = 0; i < k; i++) {
		struct ps_peer *p = ps->mbuf[i].value;

		if (p->kind == KIND_PEER && p->alive &&
		    chan_full(p, ps->o.shared_channel ? 0 : (int)prio))
			return 1;
	}
	seq = ++pub->seq;
	ts = (uint64_t)fd_wall_us();
	ps->published++;
	for (size_t i = 0; i < k; i++) {
		struct ps_sub *s = ps->mbuf[i].value;
		struct ps_peer *p = ps->mbuf[i].value;
		const char *groups[FD_PSF_MAX_GROUPS];
		unsigned ng = 0;
		int dup = 0;

		if (s->kind == KIND_SUB) {
			if (!m) {
				struct ps_blob *b = src && dlen >= SHARE_MIN
							    ? src_blob(src)
							    : NULL;

				m = b ? msg_share(ps, b, topic, tlen, ps->n->name,
						  pub->stream, seq, ts, data, dlen)
				      : msg_new(ps, topic, tlen, ps->n->name,
						pub->stream, seq, ts, data, dlen);
				if (!m)
					continue;
			}
			sub_deliver(s, m, topic, tlen);
			continue;
		}
		/* one frame per peer: gather its groups, skip later entries */
		for (size_t j = 0; j < i; j++)
			if (ps->mbuf[j].value == p)
				dup = 1;
		if (dup)
			continue;
		if (!p->alive) {
			/* failed, maybe cut off: owed, told when it is back */
			debt_add(&p->ch[ps->o.shared_channel ? 0 : prio], topic,
				 tlen, 1);
			p->lost++;
			ps->lost++;
			continue;
		}
		for (size_t j = i; j < k && ng < FD_PSF_MAX_GROUPS; j++)
			if (ps->mbuf[j].value == p && ps->mbuf[j].group)
				groups[ng++] = ps->mbuf[j].group;
		if (!compressed && ps->o.compress_min && dlen >= ps->o.compress_min) {
			size_t bound = ZSTD_compressBound(dlen), z;

			compressed = 1;
			ps->zbuf.len = 0;
			if (fd_buf_grow(&ps->zbuf, bound)) {
				z = ZSTD_compressCCtx(ps->zc, ps->zbuf.data,
						      bound, data, dlen, 1);
				if (!ZSTD_isError(z) && z < dlen) {
					payload = ps->zbuf.data;
					plen = z;
					flags = FD_PSF_ZSTD;
					ps->compressed++;
					ps->compress_saved += dlen - z;
				}
			}
		}
		peer_enqueue(p, prio, flags, topic, tlen, pub->stream, seq, ts,
			     payload, plen, groups, ng,
			     payload == data ? src : NULL);
	}
	msg_unref(m);
	return 0;
}

/* ---- publish requests ---- */

static void pub_error(struct ps_pub *pub, const char *what, uint64_t at,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void pub_error(struct ps_pub *pub, const char *what, uint64_t at,
		      const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	pub->rejected++;
	pub->ps->rejected++;
	if (!pub->errors)
		pub->errors = json_object_new_array();
	if (json_object_array_length(pub->errors) >= MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	{
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, what, json_object_new_int64((int64_t)at));
		json_object_object_add(e, "error", json_object_new_string(msg));
		json_object_array_add(pub->errors, e);
	}
}

/* Strips the newlines a pretty-printed payload may hold (only whitespace can
 * hold one in valid JSON), so the message stays one line. */
static const char *one_line(struct pubsub *ps, const char *data, size_t *len)
{
	if (!memchr(data, '\n', *len) && !memchr(data, '\r', *len))
		return data;
	ps->lbuf.len = 0;
	if (!fd_buf_append(&ps->lbuf, data, *len)) {
		for (size_t i = 0; i < *len; i++)
			if (ps->lbuf.data[i] == '\n' || ps->lbuf.data[i] == '\r')
				ps->lbuf.data[i] = ' ';
		return ps->lbuf.data;
	}
	*len = 0;
	return NULL;
}

/* A PUB frame growing in the reader: validate its payload as it comes. */
static void pub_part(void *arg, const char *body, size_t have, size_t flen)
{
	struct ps_pub *pub = arg;
	size_t hdr;

	(void)flen;
	if (have < 3 || body[0] != FD_PSF_PUB)
		return;
	hdr = 3 + (unsigned char)body[2];
	if (have < hdr)
		return;
	if (!pub->js_active) {
		fd_json_stream_init(&pub->js);
		pub->js_done = 0;
		pub->js_active = 1;
	}
	if (have - hdr > pub->js_done) {
		fd_json_stream_feed(&pub->js, body + hdr + pub->js_done,
				    have - hdr - pub->js_done, NULL);
		pub->js_done = have - hdr;
	}
}

/* Checks a PUB frame's payload: 0, or -1 with e filled. Uses what pub_part
 * found when the frame came in pieces. *nl: may the payload hold newlines. */
static int pub_check_data(struct ps_pub *pub, const struct fd_psf *f, int *nl,
			  struct fd_err *e)
{
	if (pub->js_active && pub->js_done == f->len) {
		*nl = pub->js.newlines > 0;
		return fd_json_stream_end(&pub->js, e);
	}
	*nl = 1;
	return fd_json_scan(f->data, f->len, NULL, NULL, e);
}

/* 1 when the client may publish to topic; else 0, and the request is to
 * end with 403 (pub->denied): the messages before it went out, none after
 * it will. */
static int pub_allowed(struct ps_pub *pub, const char *topic, size_t tlen)
{
	char msg[512];

	if (!pub->scopes ||
	    fd_scopes_allow(pub->scopes, FD_SCOPE_PUBLISH, topic, tlen))
		return 1;
	if (!pub->denied) {
		snprintf(msg, sizeof(msg), "forbidden: %s %s publish:%.*s",
			 pub->who, strncmp(pub->who, "token", 5) ? "lack" : "lacks",
			 (int)tlen, topic);
		pub->denied = strdup(msg);
		snprintf(pub->denied_topic, sizeof(pub->denied_topic), "%.*s",
			 (int)tlen, topic);
	}
	return 0;
}

/* The checks every message passes, frame or line: 1 to go on; 0 rejected
 * (reported as a bad item of that kind); -1 not allowed (pub_allowed: the
 * request is to end with 403). */
static int pub_admit(struct ps_pub *pub, const char *kind, const char *topic,
		     size_t tlen, size_t dlen)
{
	struct fd_err e;

	if (fd_topic_valid_subject(topic, tlen, &e) < 0) {
		pub_error(pub, kind, pub->items, "invalid topic: %s", e.msg);
		return 0;
	}
	if (dlen > pub->ps->o.max_payload) {
		pub_error(pub, kind, pub->items,
			  "payload of %zu bytes over the limit of %zu", dlen,
			  pub->ps->o.max_payload);
		return 0;
	}
	if (!pub_allowed(pub, topic, tlen)) {
		pub->items--;
		return -1;
	}
	return 1;
}

/* Counts what publish() returned: 1 when it blocked (the item comes
 * again), else 0. */
static int pub_done(struct ps_pub *pub, int rc)
{
	if (rc == 1) {
		pub->items--;
		pub->blocked = 1;
		return 1;
	}
	if (rc == 0)
		pub->published++;
	return 0;
}

/* pub_frame's work: 0 done (published or rejected), 1 blocked, -1 not
 * allowed. */
static int pub_frame_do(struct ps_pub *pub, const char *body, size_t len, int *nl)
{
	struct pubsub *ps = pub->ps;
	struct fd_psf f;
	struct fd_err e;
	const char *data;
	size_t dlen;
	int rc;

	pub->items++;
	if (!body) {
		pub_error(pub, "frame", pub->items,
			  "payload of about %zu bytes over the limit of %zu",
			  len, ps->o.max_payload);
		return 0;
	}
	if (fd_psf_parse(body, len, &f, &e) < 0 || f.type != FD_PSF_PUB) {
		pub_error(pub, "frame", pub->items, "%s",
			  f.type != FD_PSF_PUB ? "not a PUB frame" : e.msg);
		return 0;
	}
	rc = pub_admit(pub, "frame", f.topic, f.topic_len, f.len);
	if (rc <= 0)
		return rc;
	if (pub_check_data(pub, &f, nl, &e) < 0) {
		pub_error(pub, "frame", pub->items, "data: %s", e.msg);
		return 0;
	}
	dlen = f.len;
	data = *nl ? one_line(ps, f.data, &dlen) : f.data;
	if (!data)
		return 0;
	/* a frame that came in pieces sits alone in the reader's buffer,
	 * which the peer queues may take */
	if (data == f.data && pub->reader.part.data &&
	    body == pub->reader.part.data + 4) {
		struct ps_src src = {&pub->reader, NULL};

		rc = publish(pub, f.prio, f.topic, f.topic_len, data, dlen, &src);
		blob_unref(src.blob);
	} else {
		rc = publish(pub, f.prio, f.topic, f.topic_len, data, dlen, NULL);
	}
	return pub_done(pub, rc);
}

/* One PUB frame from the client. */
static int pub_frame(void *arg, const char *body, size_t len, struct fd_err *err)
{
	struct ps_pub *pub = arg;
	int rc, nl = 1;

	rc = pub_frame_do(pub, body, len, &nl);
	if (rc != 1)
		pub->js_active = 0; /* done with this frame */
	if (rc < 0)
		fd_err_set(err, "%s", pub->denied);
	return rc;
}

struct line_fields {
	const char *topic, *data;
	size_t tlen, dlen;
	int tesc, has_topic;
	char tbuf[FD_TOPIC_MAX_LEN + 1];
};

static int line_member(void *arg, const struct fd_json_member *m)
{
	struct line_fields *lf = arg;

	if (m->key_len == 5 && !m->key_escaped && memcmp(m->key, "topic", 5) == 0) {
		if (m->value[0] != '"')
			return 1;
		lf->has_topic = 1;
		lf->topic = m->value + 1;
		lf->tlen = m->value_len - 2;
		lf->tesc = m->value_escaped;
	} else if (m->key_len == 4 && !m->key_escaped &&
		   memcmp(m->key, "data", 4) == 0) {
		lf->data = m->value;
		lf->dlen = m->value_len;
	}
	return 0;
}

/* One JSON line. Returns 0 or 1 (blocked). */
static int pub_line(struct ps_pub *pub, const char *line, size_t len)
{
	struct line_fields lf = {0};
	struct fd_err e;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
		       line[len - 1] == '\t'))
		len--;
	pub->items++;
	if (len == 0) {
		pub->items--;
		return 0;
	}
	if (fd_json_scan(line, len, line_member, &lf, &e) < 0) {
		if (strstr(e.msg, "rejected by caller"))
			pub_error(pub, "line", pub->items,
				  "\"topic\" is not a string");
		else if (strstr(e.msg, "not an object") && pub->tlen &&
			 fd_json_scan(line, len, NULL, NULL, NULL) == 0)
			goto whole; /* a bare value, published on the path's topic */
		else
			pub_error(pub, "line", pub->items, "%s", e.msg);
		return 0;
	}
	if (lf.has_topic && lf.tesc) {
		struct json_object *o =
			fd_json_parse(lf.topic - 1, lf.tlen + 2, NULL);
		const char *t = o ? json_object_get_string(o) : NULL;

		if (!t || strlen(t) > FD_TOPIC_MAX_LEN) {
			json_object_put(o);
			pub_error(pub, "line", pub->items, "invalid topic");
			return 0;
		}
		snprintf(lf.tbuf, sizeof(lf.tbuf), "%s", t);
		json_object_put(o);
		lf.topic = lf.tbuf;
		lf.tlen = strlen(lf.tbuf);
	}
	if (!lf.has_topic) {
		if (!pub->tlen) {
			pub_error(pub, "line", pub->items,
				  "no \"topic\" (and none in the path)");
			return 0;
		}
	whole:
		lf.topic = pub->topic;
		lf.tlen = pub->tlen;
	}
	if (!lf.data) {
		lf.data = line;
		lf.dlen = len;
		while (lf.dlen && (*lf.data == ' ' || *lf.data == '\t')) {
			lf.data++;
			lf.dlen--;
		}
	}
	if (pub_admit(pub, "line", lf.topic, lf.tlen, lf.dlen) <= 0)
		return 0; /* rejected, or denied: pub_lines stops at pub->denied */
	return pub_done(pub, publish(pub, pub->prio, lf.topic, lf.tlen, lf.data,
				     lf.dlen, NULL));
}

/* Splits JSON lines; returns the bytes consumed (fewer when blocked). */
static size_t pub_lines(struct ps_pub *pub, const char *data, size_t len, int end)
{
	size_t used = 0;

	if (pub->line.len > 0 || pub->skipping || pub->line_ready) {
		if (!pub->line_ready) {
			const char *nl = len ? memchr(data, '\n', len) : NULL;
			size_t k = nl ? (size_t)(nl - data) : len;

			if (!pub->skipping && fd_buf_append(&pub->line, data, k) < 0) {
				pub->skipping = 1;
				pub->line.len = 0;
			}
			used = nl ? k + 1 : len;
			if (!nl && !end)
				return used;
			pub->line_ready = 1;
		}
		if (pub->skipping) {
			pub->items++;
			pub_error(pub, "line", pub->items,
				  "line longer than %zu bytes", pub->line.max);
			pub->skipping = 0;
		} else if (pub_line(pub, fd_buf_str(&pub->line), pub->line.len)) {
			return used; /* blocked: the line stays ready */
		}
		pub->line.len = 0;
		pub->line_ready = 0;
	}
	while (used < len && !pub->denied) {
		const char *p = data + used, *nl = memchr(p, '\n', len - used);

		if (!nl && !end) {
			if (fd_buf_append(&pub->line, p, len - used) < 0) {
				pub->skipping = 1;
				pub->line.len = 0;
			}
			return len;
		}
		if (pub_line(pub, p, nl ? (size_t)(nl - p) : len - used)) {
			if (nl)
				return used;
			/* the last line, blocked at the end: keep it */
			if (fd_buf_append(&pub->line, p, len - used) == 0)
				pub->line_ready = 1;
			return len;
		}
		used = nl ? used + (size_t)(nl - p) + 1 : len;
	}
	return used;
}

static void pub_finish(struct ps_pub *pub)
{
	struct json_object *o = json_object_new_object();

	pub->done = 1;
	/* the stream is this node's: (node, stream, seq) names a message */
	json_object_object_add(o, "node", json_object_new_string(pub->ps->n->name));
	json_object_object_add(o, "stream",
			       json_object_new_int64((int64_t)pub->stream));
	json_object_object_add(o, "first_seq",
			       json_object_new_int64((int64_t)pub->first_seq + 1));
	json_object_object_add(o, "last_seq",
			       json_object_new_int64((int64_t)pub->seq));
	json_object_object_add(o, "published",
			       json_object_new_int64((int64_t)pub->published));
	json_object_object_add(o, "rejected",
			       json_object_new_int64((int64_t)pub->rejected));
	if (pub->errors) {
		json_object_object_add(o, "errors", pub->errors);
		pub->errors = NULL;
	}
	fd_http_reply_json(pub->req, pub->rejected ? 400 : 200, o);
	pub_free(pub); /* replied: no callback comes for it any more */
}

/* The first topic outside the client's scopes: 403, with what went out
 * before it. */
static void pub_deny(struct ps_pub *pub)
{
	struct json_object *o = json_object_new_object();

	pub->done = 1;
	json_object_object_add(o, "error", json_object_new_string(pub->denied));
	json_object_object_add(o, "status", json_object_new_int(403));
	json_object_object_add(o, "topic", json_object_new_string(pub->denied_topic));
	json_object_object_add(o, "stream",
			       json_object_new_int64((int64_t)pub->stream));
	json_object_object_add(o, "published",
			       json_object_new_int64((int64_t)pub->published));
	fd_http_reply_json(pub->req, 403, o);
	pub_free(pub);
}

static void pub_unpause(struct ps_pub *pub)
{
	struct pubsub *ps = pub->ps;

	if (!pub->in_paused)
		return;
	for (struct ps_pub **pp = &ps->paused; *pp; pp = &(*pp)->pnext)
		if (*pp == pub) {
			*pp = pub->pnext;
			break;
		}
	pub->in_paused = 0;
}

static void pub_free(struct ps_pub *pub)
{
	pub_unpause(pub);
	fd_psf_reader_release(&pub->reader);
	fd_buf_release(&pub->line);
	json_object_put(pub->errors);
	free(pub->denied);
	free(pub);
}

static size_t on_pub_body(struct fd_http_req *req, const char *data, size_t len,
			  int end, void *arg)
{
	struct ps_pub *pub = arg;
	struct pubsub *ps = pub->ps;
	size_t used;
	struct fd_err err;

	(void)req;
	if (pub->done)
		return len;
	pub->blocked = 0;
	if (pub->frames) {
		ssize_t r = fd_psf_feed(&pub->reader, data, len, pub_frame, pub,
					&err);

		if (r < 0 && pub->denied) {
			pub_deny(pub);
			return len;
		}
		if (r < 0) {
			pub_error(pub, "frame", pub->items + 1, "%s", err.msg);
			pub_finish(pub);
			return len;
		}
		used = (size_t)r;
		if (end && !pub->blocked && fd_psf_reader_partial(&pub->reader))
			pub_error(pub, "frame", pub->items + 1,
				  "body ends inside a frame");
	} else {
		used = pub_lines(pub, data, len, end);
		if (pub->denied) {
			pub_deny(pub);
			return len;
		}
	}
	if (pub->blocked) {
		if (!pub->in_paused) {
			pub->pnext = ps->paused;
			ps->paused = pub;
			pub->in_paused = 1;
			ps->paused_count++;
		}
		if (end)
			pub->end_pending = 1;
		return used;
	}
	if (end)
		pub_finish(pub);
	return used;
}

static void resume_publishers(struct pubsub *ps)
{
	while (ps->paused) {
		struct ps_pub *pub = ps->paused;

		struct fd_http_req *req = pub->req;

		pub_unpause(pub);
		if (pub->end_pending) {
			pub->end_pending = 0;
			on_pub_body(req, NULL, 0, 1, pub); /* may free pub */
			if (ps->paused == pub)
				break; /* still blocked: the rest waits too */
			continue;
		}
		/* what the reader holds goes first */
		on_pub_body(req, NULL, 0, 0, pub);
		if (pub->in_paused)
			break;
		fd_http_body_resume(req);
	}
}

static void pub_closed(struct fd_http_req *req, void *arg)
{
	(void)req;
	pub_free(arg);
}

static void h_publish(struct fd_http_req *req, void *arg)
{
	struct pubsub *ps = arg;
	const char *topic = fd_http_subpath(req);
	const char *prio = fd_http_query(req, "priority");
	const char *ctype = fd_http_header(req, "Content-Type");
	const char *stream = fd_http_query(req, "stream");
	const char *seq = fd_http_query(req, "seq");
	struct ps_pub *pub;
	struct fd_err err;
	int p = FD_PSF_NORMAL;

	if (*topic && fd_topic_valid_subject(topic, strlen(topic), &err) < 0) {
		fd_http_reply_error(req, 400, "invalid topic '%s': %s", topic,
				    err.msg);
		return;
	}
	if (prio && (p = parse_prio(prio)) < 0) {
		fd_http_reply_error(req, 400,
				    "invalid priority '%s' (high, normal, bulk)",
				    prio);
		return;
	}
	if (*topic && !node_allow(ps->n, req, FD_SCOPE_PUBLISH, topic, strlen(topic)))
		return;
	pub = calloc(1, sizeof(*pub));
	if (!pub) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	pub->scopes = node_scopes(ps->n, req, pub->who, sizeof(pub->who));
	if (fd_scopes_allow(pub->scopes, FD_SCOPE_PUBLISH, NULL, 0))
		pub->scopes = NULL; /* every topic: no check per message */
	pub->ps = ps;
	pub->req = req;
	pub->prio = (unsigned)p;
	pub->frames = ctype && strncmp(ctype, "application/x-fd-pub", 20) == 0;
	snprintf(pub->topic, sizeof(pub->topic), "%s", topic);
	pub->tlen = strlen(pub->topic);
	if (stream && seq) {
		unsigned long long s = strtoull(stream, NULL, 10);

		if (s == 0 || s > ps->next_stream) {
			free(pub);
			fd_http_reply_error(req, 400, "unknown stream '%s'", stream);
			return;
		}
		pub->stream = s;
		pub->seq = strtoull(seq, NULL, 10);
	} else {
		pub->stream = ++ps->next_stream;
	}
	pub->first_seq = pub->seq;
	fd_psf_reader_init(&pub->reader, ps->o.max_payload + 4 + 3 + 256);
	fd_psf_reader_on_part(&pub->reader, pub_part, pub);
	pub->line = (struct fd_buf)FD_BUF_INIT(ps->o.max_payload + LINE_EXTRA);
	fd_http_on_body(req, on_pub_body, pub);
	fd_http_on_close(req, pub_closed, pub);
	fd_http_set_timeout(req, 0);
	fd_http_defer(req);
}

/* ---- receiving from peers ---- */

struct ps_rx {
	struct pubsub *ps;
	struct ps_peer *p;
	struct fd_psf_reader reader;
};

static void rx_closed(struct fd_http_req *req, void *arg);

/* A peer could not bring f->total messages on f->topic here: every local
 * subscriber that would have got them is told by a gap line (a queue
 * group's members all are: which one would have got them is unknown). */
static void deliver_gap(struct pubsub *ps, const struct fd_psf *f)
{
	char topic[FD_TOPIC_MAX_LEN + 1];
	size_t n = 0;

	ps->gap_frames_received++;
	ps->remote_missed += f->total;
	snprintf(topic, sizeof(topic), "%.*s", (int)f->topic_len, f->topic);
	if (strcmp(topic, ">") == 0) {
		for (struct ps_sub *s = ps->subs; s; s = s->next)
			sub_lost(s, s->patterns[0], f->total);
		return;
	}
	if (fd_topic_valid_subject(topic, f->topic_len, NULL) < 0 ||
	    match_into(ps, ps->local, topic, f->topic_len, 0, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		int seen = 0;

		for (size_t j = 0; j < i && !seen; j++)
			seen = ps->mbuf[j].value == ps->mbuf[i].value;
		if (!seen)
			sub_lost(ps->mbuf[i].value, topic, f->total);
	}
}

/* A whole message from peer p: decompressed when need be, then delivered. */
/* src: NULL, or where a message that came whole in one frame can be taken
 * from without a copy. */
static void deliver_whole(struct pubsub *ps, struct ps_peer *p,
			  struct fd_psf_reasm *r, struct ps_src *src)
{
	const struct fd_psf *f = &r->head;
	const char *data = f->data;
	size_t dlen = f->len;
	char *block = NULL;

	if (!(f->flags & FD_PSF_ZSTD)) {
		block = fd_psf_reasm_detach(r); /* the line is built around it */
	} else {
		unsigned long long size = ZSTD_getFrameContentSize(data, dlen);

		ps->zbuf.len = 0;
		if (size == ZSTD_CONTENTSIZE_ERROR ||
		    size == ZSTD_CONTENTSIZE_UNKNOWN || size > ps->o.max_payload ||
		    !fd_buf_grow(&ps->zbuf, (size_t)size) ||
		    ZSTD_isError(ZSTD_decompressDCtx(ps->zd, ps->zbuf.data,
						     (size_t)size, data, dlen))) {
			p->lost++;
			ps->lost++;
			return;
		}
		data = ps->zbuf.data;
		dlen = (size_t)size;
	}
	deliver_remote(ps, p, f->ngroups ? f : NULL, f->topic, f->topic_len,
		       f->stream, f->seq, f->ts, data, dlen, block,
		       block || (f->flags & FD_PSF_ZSTD) ? NULL : src);
}

static int rx_frame(void *arg, const char *body, size_t len, struct fd_err *err)
{
	struct ps_rx *rx = arg;
	struct pubsub *ps = rx->ps;
	struct ps_peer *p = rx->p;
	struct fd_psf f;
	unsigned lost;
	int rc;

	if (!body)
		return fd_err_set(err, "frame of %zu bytes, over the limit", len);
	if (fd_psf_parse(body, len, &f, err) < 0)
		return -1;
	if (f.type == FD_PSF_GAP) {
		deliver_gap(ps, &f);
		return 0;
	}
	if (f.type != FD_PSF_MSG && f.type != FD_PSF_MORE)
		return fd_err_set(err, "unexpected frame type %d", f.type);
	if (f.type == FD_PSF_MSG) {
		p->rx_msgs++;
		ps->received++;
	}
	rc = fd_psf_reasm_add(&p->rx[f.prio], &f, &lost);
	p->lost += lost;
	ps->lost += lost;
	if (rc == 1) {
		/* a whole message in a frame that came in pieces sits alone in
		 * the reader's buffer, which its line may take */
		int alone = rx->reader.part.data && body == rx->reader.part.data + 4;
		struct ps_src src = {&rx->reader, NULL};

		deliver_whole(ps, p, &p->rx[f.prio], alone ? &src : NULL);
		blob_unref(src.blob);
	}
	return 0;
}

static size_t on_rx_body(struct fd_http_req *req, const char *data, size_t len,
			 int end, void *arg)
{
	struct ps_rx *rx = arg;
	struct fd_err err;

	rx->p->rx_bytes += len;
	if (len && fd_psf_feed(&rx->reader, data, len, rx_frame, rx, &err) < 0) {
		fd_http_reply_error(req, 400, "%s", err.msg);
		rx_closed(req, rx); /* replied: no callback comes for it any more */
		return len;
	}
	if (end) {
		fd_http_reply(req, 200, "application/json", "{}\n", 3);
		rx_closed(req, rx);
	}
	return len;
}

static void rx_closed(struct fd_http_req *req, void *arg)
{
	struct ps_rx *rx = arg;

	(void)req;
	fd_psf_reader_release(&rx->reader);
	free(rx);
}

static void h_cluster_pubsub(struct fd_http_req *req, void *arg)
{
	struct pubsub *ps = arg;
	struct ps_peer *p = peer_from_req(ps, req);
	struct ps_rx *rx;

	if (!p) {
		fd_http_reply_error(req, 400, "expected from=NAME&id=ID");
		return;
	}
	rx = calloc(1, sizeof(*rx));
	if (!rx) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	rx->ps = ps;
	rx->p = p;
	fd_psf_reader_init(&rx->reader, ps->o.chunk + 4096);
	fd_http_on_body(req, on_rx_body, rx);
	fd_http_on_close(req, rx_closed, rx);
	fd_http_defer(req);
}

/* ---- subscribing ---- */

static void sub_removed(void *arg, const char *pattern, size_t len,
			const char *group, int flags)
{
	struct pubsub *ps = arg;

	(void)len;
	if (flags & FD_TOPIC_INTEREST_CHANGE)
		interest_changed(ps, FD_TOPIC_REMOVE, pattern, group);
}

static void sub_free(struct ps_sub *s)
{
	struct pubsub *ps = s->ps;

	fd_topic_tree_remove_value(ps->local, s, sub_removed, ps);
	if (s->prev)
		s->prev->next = s->next;
	else
		ps->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ps->nsubs--;
	while (s->count)
		msg_unref(ring_pop(s));
	msg_unref(s->cur);
	free(s->ring);
	for (int i = 0; i < s->npatterns; i++)
		free(s->patterns[i]);
	free(s->group);
	free(s);
}

static void sub_closed(struct fd_http_req *req, void *arg)
{
	(void)req;
	sub_free(arg);
}

static int parse_size_param(struct fd_http_req *req, const char *key,
			    size_t def, size_t max, size_t *out)
{
	const char *v = fd_http_query(req, key);
	uint64_t n;

	*out = def;
	if (!v)
		return 0;
	if (fd_parse_size(v, &n) < 0 || n == 0 || n > max)
		return -1;
	*out = (size_t)n;
	return 0;
}

static void h_subscribe(struct fd_http_req *req, void *arg)
{
	struct pubsub *ps = arg;
	const char *pat = fd_http_query(req, "pattern");
	const char *group = fd_http_query(req, "group");
	const char *overflow = fd_http_query(req, "overflow");
	const char *format = fd_http_query(req, "format");
	const char *accept = fd_http_header(req, "Accept");
	struct ps_sub *s;
	struct fd_err err;
	char *copy, *save = NULL;
	int ov = ps->o.overflow, fmt = FMT_JSONL;

	if (!pat || !*pat) {
		fd_http_reply_error(req, 400, "expected pattern=PATTERN");
		return;
	}
	if (group && fd_topic_valid_group(group, &err) < 0) {
		fd_http_reply_error(req, 400, "invalid group '%s': %s", group,
				    err.msg);
		return;
	}
	if (overflow && (ov = pubsub_parse_overflow(overflow)) < 0) {
		fd_http_reply_error(req, 400,
				    "invalid overflow '%s' (drop-oldest, drop-new, disconnect)",
				    overflow);
		return;
	}
	if ((format && strcmp(format, "sse") == 0) ||
	    (!format && accept && strstr(accept, "text/event-stream")))
		fmt = FMT_SSE;
	else if (format && strcmp(format, "jsonl") != 0) {
		fd_http_reply_error(req, 400,
				    "invalid format '%s' (jsonl, sse)", format);
		return;
	}
	if (ps->nsubs >= MAX_SUBS) {
		fd_http_reply_error(req, 503, "too many subscribers (%d)", MAX_SUBS);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	s->kind = KIND_SUB;
	s->ps = ps;
	s->req = req;
	s->overflow = ov;
	s->policy = ov;
	s->format = fmt;
	if (parse_size_param(req, "queue", ps->o.sub_queue, 10000000,
			     &s->max_msgs) < 0 ||
	    parse_size_param(req, "queue_bytes", ps->o.sub_queue_bytes,
			     1ULL << 32, &s->max_bytes) < 0) {
		free(s);
		fd_http_reply_error(req, 400, "invalid queue or queue_bytes");
		return;
	}
	copy = strdup(pat);
	for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t;
	     t = strtok_r(NULL, " ", &save)) {
		if (fd_topic_valid_pattern(t, strlen(t), &err) < 0) {
			fd_http_reply_error(req, 400, "invalid pattern '%s': %s",
					    t, err.msg);
			goto bad;
		}
		if (!node_allow_pattern(ps->n, req, t, strlen(t)))
			goto bad;
		if (s->npatterns == MAX_PATTERNS_PER_SUB) {
			fd_http_reply_error(req, 400, "too many patterns (at most %d)",
					    MAX_PATTERNS_PER_SUB);
			goto bad;
		}
		s->patterns[s->npatterns++] = strdup(t);
	}
	free(copy);
	copy = NULL;
	if (s->npatterns == 0) {
		fd_http_reply_error(req, 400, "expected pattern=PATTERN");
		goto bad;
	}
	s->group = group ? strdup(group) : NULL;
	if (fd_http_stream_begin(
		    req, fmt == FMT_SSE ? "text/event-stream" : "application/x-ndjson",
		    STREAM_FILL + ps->o.max_payload + LINE_EXTRA + 4096) < 0) {
		fd_http_reply_error(req, 500, "unable to start the stream");
		goto bad;
	}
	fd_http_set_timeout(req, 0);
	fd_http_on_close(req, sub_closed, s);
	fd_http_stream_on_drain(req, STREAM_FILL / 2, on_sub_drain, s);
	s->next = ps->subs;
	if (ps->subs)
		ps->subs->prev = s;
	ps->subs = s;
	ps->nsubs++;
	for (int i = 0; i < s->npatterns; i++) {
		int f = fd_topic_tree_add(ps->local, s->patterns[i],
					  strlen(s->patterns[i]), s->group, s, NULL);

		if (f > 0 && (f & FD_TOPIC_INTEREST_CHANGE))
			interest_changed(ps, FD_TOPIC_ADD, s->patterns[i], s->group);
	}
	if (fmt == FMT_SSE)
		fd_http_stream_write(req, ": subscribed\n\n", 14);
	return;
bad:
	free(copy);
	for (int i = 0; i < s->npatterns; i++)
		free(s->patterns[i]);
	free(s);
}

/* ---- membership ---- */

void pubsub_member_changed(struct node *n, const struct fd_member_event *ev)
{
	struct pubsub *ps = n->pubsub;
	struct ps_peer *p;

	if (!ps || ev->type != FD_MEMBER_EV_STATE)
		return;
	if (ev->new_state == FD_MEMBER_ALIVE || ev->new_state == FD_MEMBER_SUSPECT) {
		int back = ev->old_state != FD_MEMBER_ALIVE &&
			   ev->old_state != FD_MEMBER_SUSPECT;

		p = peer_get(ps, ev->name);
		if (!p)
			return;
		snprintf(p->addr, sizeof(p->addr), "%s", ev->addr);
		if (ev->restarted || back || !p->alive) {
			if (ev->restarted)
				peer_reset(p, 0);
			p->alive = 1;
			p->ineed_full = 1;
			interest_kick(p);
			for (int i = 0; i < FD_PSF_NPRIO; i++)
				peer_kick(p, i); /* what it missed meanwhile */
		}
		return;
	}
	p = peer_find(ps, ev->name);
	if (p && (p->alive || ev->new_state != FD_MEMBER_FAILED)) {
		/* failed: it may be cut off and come back, so what it wants
		 * stays and what it misses is owed; left or forgotten: done */
		int failed = ev->new_state == FD_MEMBER_FAILED;

		p->alive = 0;
		peer_reset(p, failed);
		if (!failed)
			p->id[0] = '\0';
	}
}

/* ---- node hooks ---- */

int pubsub_init(struct node *n)
{
	struct pubsub *ps = calloc(1, sizeof(*ps));
	uint64_t seed;

	if (!ps)
		return -1;
	ps->n = n;
	/* Payloads of megabytes come and go: keep freed memory for the next
	 * ones (up to 64 MiB) instead of handing it back to the kernel and
	 * faulting it in again, page by page, for every message. */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	if (n->opts->pubsub)
		ps->o = *n->opts->pubsub;
	else
		pubsub_opts_default(&ps->o);
	RAND_bytes((unsigned char *)&seed, sizeof(seed));
	ps->local = fd_topic_tree_new(0, 0, seed);
	ps->remote = fd_topic_tree_new(0, 0, seed ^ 0x9e3779b97f4a7c15ULL);
	ps->zc = ZSTD_createCCtx();
	ps->zd = ZSTD_createDCtx();
	ps->zbuf = (struct fd_buf)FD_BUF_INIT(
		ZSTD_compressBound(ps->o.max_payload) + 64);
	ps->lbuf = (struct fd_buf)FD_BUF_INIT(ps->o.max_payload + 64);
	ps->ts_sec = -1;
	if (!ps->local || !ps->remote || !ps->zc || !ps->zd) {
		fd_topic_tree_free(ps->local);
		fd_topic_tree_free(ps->remote);
		ZSTD_freeCCtx(ps->zc);
		ZSTD_freeDCtx(ps->zd);
		free(ps);
		return -1;
	}
	n->pubsub = ps;
	return 0;
}

void pubsub_free(struct node *n)
{
	struct pubsub *ps = n->pubsub;

	if (!ps)
		return;
	while (ps->subs)
		sub_free(ps->subs);
	while (ps->peers) {
		struct ps_peer *p = ps->peers;

		ps->peers = p->next;
		for (int i = 0; i < FD_PSF_NPRIO; i++) {
			chan_unref(&p->ch[i], chan_done(&p->ch[i]), p->ch[i].q.len);
			fd_buf_release(&p->ch[i].q);
			fd_psf_reasm_release(&p->rx[i]);
		}
		fd_timer_disarm(n->loop, &p->iretry);
		fd_timer_disarm(n->loop, &p->dretry);
		for (int i = 0; i < FD_PSF_NPRIO; i++)
			debt_clear(&p->ch[i]);
		deltas_clear(p);
		free(p);
	}
	fd_topic_tree_free(ps->local);
	fd_topic_tree_free(ps->remote);
	ZSTD_freeCCtx(ps->zc);
	ZSTD_freeDCtx(ps->zd);
	fd_buf_release(&ps->zbuf);
	fd_buf_release(&ps->lbuf);
	free(ps->mbuf);
	free(ps);
	n->pubsub = NULL;
}

void pubsub_add_routes(struct node *n)
{
	struct pubsub *ps = n->pubsub;

	fd_http_route(n->http, "POST", "/v1/publish",
		      FD_HTTP_STREAM_BODY | FD_HTTP_SCOPED, h_publish, ps);
	fd_http_route(n->http, "POST", "/v1/publish/",
		      FD_HTTP_STREAM_BODY | FD_HTTP_SCOPED, h_publish, ps);
	fd_http_route(n->http, "GET", "/v1/subscribe", FD_HTTP_SCOPED,
		      h_subscribe, ps);
	fd_http_route(n->http, "POST", "/v1/cluster/interest", 0, h_interest, ps);
	fd_http_route(n->http, "POST", "/v1/cluster/pubsub",
		      FD_HTTP_STREAM_BODY, h_cluster_pubsub, ps);
}

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

void pubsub_add_metrics(struct node *n, struct fd_metrics *m)
{
	struct pubsub *ps = n->pubsub;
	static const char *const policies[] = {"drop-oldest", "drop-new",
					       "disconnect"};

	if (!ps)
		return;
	fd_metrics_gauge(m, "fd_pubsub_subscribers",
			 "Subscribers on this node.", (double)ps->nsubs);
	fd_metrics_counter(m, "fd_pubsub_published_total",
			   "Messages published through this node.", ps->published);
	fd_metrics_counter(m, "fd_pubsub_delivered_total",
			   "Messages written to local subscribers.", ps->delivered);
	fd_metrics_counter(m, "fd_pubsub_forwarded_total",
			   "Messages queued for other nodes.", ps->forwarded);
	fd_metrics_counter(m, "fd_pubsub_received_total",
			   "Messages received from other nodes.", ps->received);
	fd_metrics_counter(m, "fd_pubsub_lost_total",
			   "Messages that did not reach another node (each is "
			   "reported to it by a gap frame when it can be).",
			   ps->lost);
	fd_metrics_counter(m, "fd_pubsub_rejected_total",
			   "Messages refused from publishers (bad topic or data).",
			   ps->rejected);
	fd_metrics_counter(m, "fd_pubsub_gap_frames_sent_total",
			   "Gap reports sent to other nodes.", ps->gap_frames_sent);
	fd_metrics_counter(m, "fd_pubsub_gap_frames_received_total",
			   "Gap reports received from other nodes.",
			   ps->gap_frames_received);
	fd_metrics_family(m, "fd_pubsub_missed_total", "counter",
			  "Messages local subscribers missed (told by gap lines), "
			  "by their overflow policy.");
	for (int i = 0; i < 3; i++) {
		const char *l[] = {"overflow", policies[i], NULL};

		fd_metrics_sample_u64(m, "fd_pubsub_missed_total", l,
				      ps->missed_by[i]);
	}
	fd_metrics_family(m, "fd_pubsub_gaps_total", "counter",
			  "Gap lines queued for local subscribers, by their "
			  "overflow policy.");
	for (int i = 0; i < 3; i++) {
		const char *l[] = {"overflow", policies[i], NULL};

		fd_metrics_sample_u64(m, "fd_pubsub_gaps_total", l, ps->gaps_by[i]);
	}
}

void pubsub_add_info(struct node *n, struct json_object *info)
{
	struct pubsub *ps = n->pubsub;
	struct json_object *o, *peers;

	if (!ps)
		return;
	o = json_object_new_object();
	add_u64(o, "subscribers", ps->nsubs);
	add_u64(o, "patterns", fd_topic_tree_patterns(ps->local));
	add_u64(o, "published", ps->published);
	add_u64(o, "delivered", ps->delivered);
	add_u64(o, "forwarded", ps->forwarded);
	add_u64(o, "received", ps->received);
	add_u64(o, "missed", ps->missed);
	add_u64(o, "gaps", ps->gaps);
	add_u64(o, "lost", ps->lost);
	add_u64(o, "gap_frames_sent", ps->gap_frames_sent);
	add_u64(o, "gap_frames_received", ps->gap_frames_received);
	add_u64(o, "remote_missed", ps->remote_missed);
	add_u64(o, "rejected", ps->rejected);
	add_u64(o, "paused", ps->paused_count);
	add_u64(o, "compressed", ps->compressed);
	add_u64(o, "compress_saved_bytes", ps->compress_saved);
	add_u64(o, "max_payload", ps->o.max_payload);
	json_object_object_add(
		o, "channels",
		json_object_new_string(ps->o.shared_channel ? "shared" : "separate"));
	peers = json_object_new_object();
	for (struct ps_peer *p = ps->peers; p; p = p->next) {
		struct json_object *po = json_object_new_object();
		size_t queued = 0;
		uint64_t owed = 0; /* messages it missed, to be reported */

		for (int i = 0; i < FD_PSF_NPRIO; i++) {
			queued += p->ch[i].vbytes;
			for (unsigned k = 0; k < p->ch[i].ndebt; k++)
				owed += p->ch[i].debt[k].n;
		}
		json_object_object_add(po, "alive",
				       json_object_new_boolean(p->alive));
		add_u64(po, "interest", p->rcount);
		add_u64(po, "tx_bytes", p->tx_bytes);
		add_u64(po, "rx_bytes", p->rx_bytes);
		add_u64(po, "tx_msgs", p->tx_msgs);
		add_u64(po, "rx_msgs", p->rx_msgs);
		add_u64(po, "queued_bytes", queued);
		add_u64(po, "lost", p->lost);
		add_u64(po, "owed", owed);
		json_object_object_add(peers, p->name, po);
	}
	json_object_object_add(o, "peers", peers);
	json_object_object_add(info, "pubsub", o);
}
