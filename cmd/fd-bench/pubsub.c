/* Pub/sub scenarios: real fd-node processes on 127.0.0.1; publishers and
 * subscribers are threads of this process speaking the node's HTTP API
 * (PUB frames in one streaming POST, as fd-pub does; the streamed GET, as
 * fd-sub does). Latencies are end to end: the publisher puts its send time
 * (monotonic ns) in the data, the subscriber reads it on arrival. */
#include "scenario.h"
#include "buf.h"
#include "client.h"
#include "clock.h"
#include "cluster.h"
#include "jsonl.h"
#include "psframe.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define MSG_PREFIX "{\"type\":\"message\","

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t)
{
	struct timespec ts;

	for (;;) {
		int64_t d = t - now_ns();

		if (d <= 0)
			return;
		ts.tv_sec = d / 1000000000;
		ts.tv_nsec = d % 1000000000;
		nanosleep(&ts, NULL);
	}
}

/* ---- subscriber thread ---- */

struct subscriber {
	const char *addr;
	char path[256];
	long long want; /* messages (received + missed) to wait for */
	int64_t deadline_ms;
	int latency; /* record latencies from the data's timestamp */
	/* results */
	long long got, missed, bytes;
	int64_t first_ns, last_ns;
	double *lat; /* ms */
	size_t nlat, caplat;
	int connected, failed;
	char error[256];
	struct fd_buf line; /* the head of a line split across reads */
	size_t line_len;    /* that line's length so far */
	pthread_t th;
};

/* What a line tells is in its first bytes (type, time stamp, missed
 * count): of a line split across reads only those are kept, its length
 * counted, so 8 MiB messages are not copied once more here. */
#define LINE_HEAD 4096

/* A line of len bytes whose first bytes (at least LINE_HEAD of them, or
 * all) are at l. */
static void sub_line(struct subscriber *s, const char *l, size_t len)
{
	size_t hlen = len < LINE_HEAD ? len : LINE_HEAD;

	if (len > sizeof(MSG_PREFIX) - 1 &&
	    memcmp(l, MSG_PREFIX, sizeof(MSG_PREFIX) - 1) == 0) {
		int64_t t = now_ns();

		if (s->got == 0)
			s->first_ns = t;
		s->last_ns = t;
		s->got++;
		s->bytes += (long long)len;
		if (s->latency) {
			const char *d = memmem(l, hlen, "\"data\":[", 8);

			if (d && s->nlat < s->caplat)
				s->lat[s->nlat++] =
					(double)(t - strtoll(d + 8, NULL, 10)) / 1e6;
		}
	} else if (memmem(l, hlen, "\"type\":\"gap\"", 12)) {
		const char *m = memmem(l, hlen, "\"missed\":", 9);

		if (m)
			s->missed += strtoll(m + 9, NULL, 10);
	}
}

/* The next k bytes of a split line: its head kept, its length counted. */
static void line_keep(struct subscriber *s, const char *p, size_t k)
{
	if (s->line.len < LINE_HEAD)
		fd_buf_append(
			&s->line, p,
			k < LINE_HEAD - s->line.len ? k : LINE_HEAD - s->line.len);
	s->line_len += k;
}

static int sub_data(const char *data, size_t len, void *arg)
{
	struct subscriber *s = arg;
	size_t off = 0;

	if (len == 0) {
		s->connected = 1;
		return 0;
	}
	if (s->line_len) {
		const char *nl = memchr(data, '\n', len);
		size_t k = nl ? (size_t)(nl - data) : len;

		line_keep(s, data, k);
		if (!nl)
			return 0;
		sub_line(s, s->line.data, s->line_len);
		s->line.len = s->line_len = 0;
		off = k + 1;
	}
	while (off < len) {
		const char *p = data + off, *nl = memchr(p, '\n', len - off);

		if (!nl) {
			line_keep(s, p, len - off);
			break;
		}
		sub_line(s, p, (size_t)(nl - p));
		off += (size_t)(nl - p) + 1;
	}
	return s->want && s->got + s->missed >= s->want;
}

static void *sub_main(void *arg)
{
	struct subscriber *s = arg;
	struct fd_client c;
	struct fd_err err;
	long status;
	int64_t left = s->deadline_ms - fd_mono_ms();

	if (fd_client_init(&c, s->addr, 5000, &err) < 0) {
		snprintf(s->error, sizeof(s->error), "%s", err.msg);
		s->failed = 1;
		s->connected = 1;
		return NULL;
	}
	if (fd_client_get_stream(&c, s->path, left > 0 ? left : 1, sub_data, s,
				 &status, &err) < 0 &&
	    errno != ECANCELED && errno != ETIMEDOUT) {
		snprintf(s->error, sizeof(s->error), "%s", err.msg);
		s->failed = 1;
	}
	s->connected = 1;
	fd_client_release(&c);
	return NULL;
}

static int sub_start(struct subscriber *s, const char *addr, const char *pattern,
		     long long want, int64_t deadline_ms, int latency)
{
	memset(s, 0, sizeof(*s));
	s->addr = addr;
	snprintf(s->path, sizeof(s->path),
		 "/v1/subscribe?pattern=%s&queue=1000000&queue_bytes=1GiB", pattern);
	s->want = want;
	s->deadline_ms = deadline_ms;
	s->latency = latency;
	s->line = (struct fd_buf)FD_BUF_INIT(LINE_HEAD);
	if (latency) {
		s->caplat = 4000000;
		s->lat = malloc(s->caplat * sizeof(*s->lat));
	}
	return pthread_create(&s->th, NULL, sub_main, s) == 0 ? 0 : -1;
}

static void sub_finish(struct subscriber *s)
{
	pthread_join(s->th, NULL);
	fd_buf_release(&s->line);
}

/* ---- publisher thread ---- */

/* Messages this large are framed around their payload rather than copied
 * into the frame buffer first. */
#define DIRECT_MIN 65536

struct publisher {
	const char *addr;
	const char *topic;
	unsigned prio;
	size_t size;	   /* data bytes per message */
	long long count;   /* messages; 0: until stop */
	double rate;	   /* messages per second; 0: as fast as possible */
	int timestamps;	   /* data = [send_ns, "pad"] */
	volatile int stop; /* set by the main thread */
	long long sent;
	int64_t start_ns;
	struct fd_buf out;
	size_t off;
	char *payload;
	size_t poff; /* a large message's payload sent from payload: how far */
	int failed;
	char error[256];
	pthread_t th;
};

static void put_one(struct publisher *p)
{
	if (p->timestamps) {
		char head[64];
		int n = snprintf(head, sizeof(head), "[%lld,\"",
				 (long long)now_ns());
		size_t pad = p->size > (size_t)n + 2 ? p->size - (size_t)n - 2 : 0;
		char *d;

		/* frame in place: PUB header then [ns,"xxx"] */
		fd_psf_put_pub(&p->out, p->prio, p->topic, strlen(p->topic), NULL, 0);
		d = fd_buf_grow(&p->out, (size_t)n + pad + 2);
		memcpy(d, head, (size_t)n);
		memset(d + n, 'x', pad);
		memcpy(d + n + pad, "\"]", 2);
		/* fix the frame length */
		{
			unsigned char *f = (unsigned char *)p->out.data +
					   p->out.len - ((size_t)n + pad + 2) -
					   7 - strlen(p->topic);
			size_t body = 3 + strlen(p->topic) + (size_t)n + pad + 2;

			f[0] = (unsigned char)body;
			f[1] = (unsigned char)(body >> 8);
			f[2] = (unsigned char)(body >> 16);
			f[3] = (unsigned char)(body >> 24);
		}
	} else if (p->size >= DIRECT_MIN) {
		/* the frame's head only, its length counting the payload,
		 * which pub_read hands to curl from p->payload: one copy of
		 * each byte in this process, not two */
		size_t tlen = strlen(p->topic), at = p->out.len;
		unsigned char *f;

		fd_psf_put_pub(&p->out, p->prio, p->topic, tlen, NULL, 0);
		f = (unsigned char *)p->out.data + at;
		f[0] = (unsigned char)(3 + tlen + p->size);
		f[1] = (unsigned char)((3 + tlen + p->size) >> 8);
		f[2] = (unsigned char)((3 + tlen + p->size) >> 16);
		f[3] = (unsigned char)((3 + tlen + p->size) >> 24);
		p->poff = 0;
	} else {
		fd_psf_put_pub(&p->out, p->prio, p->topic, strlen(p->topic),
			       p->payload, p->size);
	}
	p->sent++;
}

static size_t pub_read(char *buf, size_t len, void *arg)
{
	struct publisher *p = arg;
	size_t n;

	if (p->off == p->out.len && p->poff < p->size && !p->timestamps &&
	    p->size >= DIRECT_MIN && p->sent > 0) {
		n = p->size - p->poff < len ? p->size - p->poff : len;
		memcpy(buf, p->payload + p->poff, n);
		p->poff += n;
		return n;
	}
	if (p->off == p->out.len) {
		p->out.len = p->off = 0;
		if (p->stop || (p->count && p->sent >= p->count))
			return 0;
		if (p->rate > 0) {
			sleep_until_ns(p->start_ns +
				       (int64_t)((double)p->sent * 1e9 / p->rate));
			if (p->stop)
				return 0;
			put_one(p);
		} else if (p->size >= DIRECT_MIN && !p->timestamps) {
			put_one(p); /* one head, then its payload */
		} else {
			while (p->out.len < len &&
			       !(p->count && p->sent >= p->count) && !p->stop)
				put_one(p);
		}
	}
	n = p->out.len - p->off < len ? p->out.len - p->off : len;
	memcpy(buf, p->out.data + p->off, n);
	p->off += n;
	return n;
}

static void *pub_main(void *arg)
{
	struct publisher *p = arg;
	struct fd_client c;
	struct fd_err err;
	struct json_object *resp = NULL;
	long status;

	if (fd_client_init(&c, p->addr, 30000, &err) < 0) {
		snprintf(p->error, sizeof(p->error), "%s", err.msg);
		p->failed = 1;
		return NULL;
	}
	p->start_ns = now_ns();
	if (fd_client_post_stream(&c, "/v1/publish", "application/x-fd-pub",
				  pub_read, p, &status, &resp, &err) < 0) {
		snprintf(p->error, sizeof(p->error), "%s", err.msg);
		p->failed = 1;
	} else if (status != 200) {
		snprintf(p->error, sizeof(p->error), "publish answered %ld: %s",
			 status,
			 fd_json_get_str(resp, "error")
				 ? fd_json_get_str(resp, "error")
				 : "?");
		p->failed = 1;
	}
	json_object_put(resp);
	fd_client_release(&c);
	return NULL;
}

static int pub_start_with(struct publisher *p, const char *addr, const char *topic,
			  unsigned prio, size_t size, long long count,
			  double rate, int timestamps, char *payload);

static int pub_start(struct publisher *p, const char *addr, const char *topic,
		     unsigned prio, size_t size, long long count, double rate,
		     int timestamps)
{
	return pub_start_with(p, addr, topic, prio, size, count, rate,
			      timestamps, NULL);
}

/* payload: NULL, or size bytes of JSON text the publisher takes. */
static int pub_start_with(struct publisher *p, const char *addr, const char *topic,
			  unsigned prio, size_t size, long long count,
			  double rate, int timestamps, char *payload)
{
	memset(p, 0, sizeof(*p));
	p->addr = addr;
	p->topic = topic;
	p->prio = prio;
	p->size = size < 2 ? 2 : size;
	p->count = count;
	p->rate = rate;
	p->timestamps = timestamps;
	p->out = (struct fd_buf)FD_BUF_INIT((size_t)1 << 40);
	if (payload) {
		p->payload = payload;
	} else if (!timestamps) {
		p->payload = malloc(p->size);
		memset(p->payload, 'x', p->size);
		p->payload[0] = '"';
		p->payload[p->size - 1] = '"';
	}
	return pthread_create(&p->th, NULL, pub_main, p) == 0 ? 0 : -1;
}

static void pub_finish(struct publisher *p)
{
	pthread_join(p->th, NULL);
	fd_buf_release(&p->out);
	free(p->payload);
}

/* ---- helpers ---- */

static int start_nodes(const struct bench_opts *o, struct cluster *c, int n,
		       const char *const *extra, struct fd_err *err)
{
	memset(c, 0, sizeof(*c));
	c->fd_node = o->fd_node;
	c->profile = "local";
	c->encrypt = o->encrypt;
	if (cluster_start(c, n, extra, 15000, err) < 0)
		return -1;
	/* wait until they see each other */
	for (int64_t end = fd_mono_ms() + 15000;;) {
		int ok = 1;

		for (int i = 0; i < n; i++) {
			int alive, failed;

			if (cluster_members(c, i, &alive, &failed, NULL, NULL) < 0 ||
			    alive < n)
				ok = 0;
		}
		if (ok)
			return 0;
		if (fd_mono_ms() > end) {
			cluster_stop(c);
			return fd_err_set(err, "the nodes did not form a cluster");
		}
		usleep(20000);
	}
}

/* Waits until node `at` knows `want` interest entries of node `of` (or its
 * own subscribers when at == of). */
static int wait_interest(struct cluster *c, int at, int of, int want,
			 struct fd_err *err)
{
	for (int64_t end = fd_mono_ms() + 10000;;) {
		struct json_object *info = cluster_info(c, at), *ps, *peers, *p;
		long long have = -1;

		if (info && json_object_object_get_ex(info, "pubsub", &ps)) {
			if (at == of) {
				have = fd_json_get_int(ps, "subscribers", -1);
			} else if (json_object_object_get_ex(ps, "peers", &peers) &&
				   json_object_object_get_ex(
					   peers, c->nodes[of].name, &p)) {
				have = fd_json_get_int(p, "interest", -1);
			}
		}
		json_object_put(info);
		if (have >= want)
			return 0;
		if (fd_mono_ms() > end)
			return fd_err_set(
				err, "subscriptions did not reach the publisher's node");
		usleep(10000);
	}
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* ---- throughput ---- */

/* One publisher on node 0, nsubs subscribers on node `sub_node`. */
static int throughput(const struct bench_opts *o, size_t size, int same_node,
		      int nsubs, double *v, struct fd_err *err)
{
	struct cluster c;
	struct subscriber subs[4];
	struct publisher pub;
	long long count = (long long)((256u << 20) / size);
	int64_t t0, t1 = 0;
	long long got = 0, missed = 0;
	int rc = 0, sn = same_node ? 0 : 1;
	const char *const extra[] = {"--max-payload", "8MiB", NULL};

	if (count > 1000000)
		count = 1000000;
	if (count < 64)
		count = 64;
	if (start_nodes(o, &c, same_node ? 1 : 2, extra, err) < 0)
		return -1;
	for (int i = 0; i < nsubs; i++)
		sub_start(&subs[i], c.nodes[sn].addr, "tp.>", count,
			  fd_mono_ms() + o->timeout_ms, 0);
	for (int i = 0; i < nsubs; i++)
		while (!subs[i].connected)
			usleep(1000);
	if (wait_interest(&c, 0, sn, same_node ? nsubs : 1, err) < 0) {
		rc = -1;
		for (int i = 0; i < nsubs; i++)
			pthread_cancel(subs[i].th);
		goto out;
	}
	t0 = now_ns();
	pub_start(&pub, c.nodes[0].addr, "tp.x", FD_PSF_NORMAL, size, count, 0, 0);
	pub_finish(&pub);
	for (int i = 0; i < nsubs; i++) {
		sub_finish(&subs[i]);
		got += subs[i].got;
		missed += subs[i].missed;
		if (subs[i].last_ns > t1)
			t1 = subs[i].last_ns;
		if (subs[i].failed) {
			fd_err_set(err, "subscriber: %s", subs[i].error);
			rc = -1;
		}
	}
	if (pub.failed) {
		fd_err_set(err, "publisher: %s", pub.error);
		rc = -1;
	}
	if (rc == 0) {
		double secs = (double)(t1 - t0) / 1e9;

		v[0] = (double)got / secs;
		v[1] = (double)got * (double)size / secs / 1e6;
		v[2] = (double)(count * nsubs - got);
		if (o->progress)
			fprintf(stderr,
				"fd-bench: %lld x %zu B, %d subscriber(s): %lld received, %lld in gaps, %.2f s\n",
				count, size, nsubs, got, missed, secs);
	}
out:
	cluster_stop(&c);
	return rc;
}

#define TP(name, size, same, nsubs)                                   \
	static int name(const struct bench_opts *o, int n, double *v, \
			struct fd_err *err)                           \
	{                                                             \
		(void)n;                                              \
		return throughput(o, size, same, nsubs, v, err);      \
	}
TP(run_tp16, 16, 0, 1)
TP(run_tp256, 256, 0, 1)
TP(run_tp4k, 4096, 0, 1)
TP(run_tp64k, 65536, 0, 1)
TP(run_tp1m, 1048576, 0, 1)
TP(run_tp_same, 256, 1, 1)
TP(run_tp_fanout, 256, 0, 4)

/* ---- latency ---- */

static int run_latency(const struct bench_opts *o, int n, double *v,
		       struct fd_err *err)
{
	struct cluster c;
	struct subscriber s;
	struct publisher pub;
	double rate = 10000;
	int64_t dur = o->duration_ms < 3000 ? o->duration_ms : 3000;
	long long count = (long long)(rate * (double)dur / 1000);
	int rc = 0;

	(void)n;
	if (start_nodes(o, &c, 2, NULL, err) < 0)
		return -1;
	sub_start(&s, c.nodes[1].addr, "lat.x", count, fd_mono_ms() + dur + 10000, 1);
	while (!s.connected)
		usleep(1000);
	if (wait_interest(&c, 0, 1, 1, err) < 0) {
		pthread_cancel(s.th);
		cluster_stop(&c);
		return -1;
	}
	pub_start(&pub, c.nodes[0].addr, "lat.x", FD_PSF_NORMAL, 64, count, rate, 1);
	pub_finish(&pub);
	sub_finish(&s);
	if (pub.failed || s.failed || s.nlat == 0) {
		rc = fd_err_set(err, "%s",
				pub.failed ? pub.error
				: s.failed ? s.error
					   : "no message arrived");
	} else {
		qsort(s.lat, s.nlat, sizeof(*s.lat), cmp_dbl);
		v[0] = pct(s.lat, s.nlat, 0.5);
		v[1] = pct(s.lat, s.nlat, 0.99);
		v[2] = pct(s.lat, s.nlat, 0.999);
		v[3] = (double)(count - s.got);
	}
	free(s.lat);
	cluster_stop(&c);
	return rc;
}

/* ---- head-of-line blocking ---- */

/* p99 of small high-priority messages (500/s) while a bulk publisher sends
 * 8 MiB messages as fast as it can over the same node pair. */
static int hol_once(const struct bench_opts *o, int shared, double *p99,
		    double *bulk_mbs, struct fd_err *err)
{
	struct cluster c;
	struct subscriber hi, bulk;
	struct publisher phi, pbulk;
	const char *const extra[] = {"--channels",
				     shared ? "shared" : "separate", NULL};
	int64_t dur = o->duration_ms < 4000 ? o->duration_ms : 4000;
	long long count = 500 * dur / 1000;
	int rc = 0;

	if (start_nodes(o, &c, 2, extra, err) < 0)
		return -1;
	sub_start(&hi, c.nodes[1].addr, "hol.high", count,
		  fd_mono_ms() + dur + 20000, 1);
	sub_start(&bulk, c.nodes[1].addr, "hol.bulk", 0,
		  fd_mono_ms() + dur + 20000, 0);
	while (!hi.connected || !bulk.connected)
		usleep(1000);
	if (wait_interest(&c, 0, 1, 2, err) < 0) {
		pthread_cancel(hi.th);
		pthread_cancel(bulk.th);
		cluster_stop(&c);
		return -1;
	}
	pub_start(&pbulk, c.nodes[0].addr, "hol.bulk", FD_PSF_BULK,
		  8 * 1024 * 1024 - 64, 0, 0, 0);
	usleep(300000); /* let the bulk stream saturate the pair */
	pub_start(&phi, c.nodes[0].addr, "hol.high", FD_PSF_HIGH, 64, count, 500, 1);
	pub_finish(&phi);
	pbulk.stop = 1;
	sub_finish(&hi);
	*bulk_mbs =
		bulk.got ? (double)bulk.bytes /
				   ((double)(bulk.last_ns - bulk.first_ns) / 1e9) / 1e6
			 : 0;
	/* the bulk subscriber has no count: ending the cluster ends it */
	cluster_stop(&c);
	pub_finish(&pbulk);
	sub_finish(&bulk);
	if (phi.failed || hi.failed || hi.nlat == 0) {
		rc = fd_err_set(err, "%s",
				phi.failed  ? phi.error
				: hi.failed ? hi.error
					    : "no high-priority message arrived");
	} else {
		qsort(hi.lat, hi.nlat, sizeof(*hi.lat), cmp_dbl);
		*p99 = pct(hi.lat, hi.nlat, 0.99);
		if (o->progress)
			fprintf(stderr,
				"fd-bench: hol %s: %zu high messages, p50 %.3f ms, p99 %.3f ms; bulk %.0f MB/s\n",
				shared ? "shared" : "separate", hi.nlat,
				pct(hi.lat, hi.nlat, 0.5), *p99, *bulk_mbs);
	}
	free(hi.lat);
	return rc;
}

static int run_hol(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	(void)n;
	if (hol_once(o, 0, &v[0], &v[2], err) < 0 ||
	    hol_once(o, 1, &v[1], &v[3], err) < 0)
		return -1;
	return 0;
}

/* ---- compression ---- */

enum { PL_JSON, PL_TEXT, PL_RANDOM };

static uint64_t rng(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545F4914F6CDD1DULL;
}

/* size bytes of JSON text (size >= 64), the same for a kind every time:
 *   PL_JSON    an array of event records, as services publish them;
 *   PL_TEXT    a string of log-like prose from a small vocabulary;
 *   PL_RANDOM  a string of base64 random bytes (a binary blob in JSON). */
static char *make_payload(int kind, size_t size)
{
	static const char *const words[] = {
		"the",	      "request", "failed",  "after", "retrying",
		"connection", "to",	 "node",    "timed", "out",
		"user",	      "session", "started", "cache", "miss",
		"for",	      "key",	 "queue",   "is",    "full",
		"dropping",   "oldest",	 "message", "ok"};
	static const char *const events[] = {"click", "view",	"purchase",
					     "login", "logout", "search"};
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *p = malloc(size + 1);
	uint64_t st = 0x9e3779b97f4a7c15ULL + (uint64_t)kind;
	size_t n = 0;

	if (kind == PL_JSON) {
		p[n++] = '[';
		while (size - n > 400) {
			n += (size_t)snprintf(
				p + n, size - n,
				"{\"id\":%llu,\"user\":\"u%05llu\",\"event\":\"%s\","
				"\"ts\":\"2026-11-26T18:%02llu:%02llu.%06lluZ\","
				"\"value\":%llu.%02llu,\"tags\":[\"web\",\"%s\"],"
				"\"ok\":%s},",
				(unsigned long long)(rng(&st) % 100000000),
				(unsigned long long)(rng(&st) % 100000),
				events[rng(&st) % 6],
				(unsigned long long)(rng(&st) % 60),
				(unsigned long long)(rng(&st) % 60),
				(unsigned long long)(rng(&st) % 1000000),
				(unsigned long long)(rng(&st) % 10000),
				(unsigned long long)(rng(&st) % 100),
				rng(&st) % 2 ? "eu" : "us",
				rng(&st) % 5 ? "true" : "false");
		}
		p[n++] = '"'; /* the rest: one string, to the exact size */
		while (n < size - 2)
			p[n++] = words[rng(&st) % 24][0];
		p[n++] = '"';
		p[n++] = ']';
	} else {
		p[n++] = '"';
		while (n < size - 1) {
			if (kind == PL_RANDOM) {
				p[n++] = b64[rng(&st) % 64];
				continue;
			}
			{
				const char *w = words[rng(&st) % 24];

				while (*w && n < size - 1)
					p[n++] = *w++;
				if (n < size - 1)
					p[n++] = ' ';
			}
		}
		p[n++] = '"';
	}
	p[n] = '\0';
	return p;
}

static int compress_once(const struct bench_opts *o, int kind, int on,
			 double *mbs, double *ratio, struct fd_err *err)
{
	struct cluster c;
	struct subscriber s;
	struct publisher pub;
	const char *const extra[] = {"--compress-min", on ? "1KiB" : "0", NULL};
	size_t size = 65536;
	long long count = 2048;
	int64_t t0;
	int rc = 0;

	if (start_nodes(o, &c, 2, extra, err) < 0)
		return -1;
	sub_start(&s, c.nodes[1].addr, "cmp.x", count,
		  fd_mono_ms() + o->timeout_ms, 0);
	while (!s.connected)
		usleep(1000);
	if (wait_interest(&c, 0, 1, 1, err) < 0) {
		pthread_cancel(s.th);
		cluster_stop(&c);
		return -1;
	}
	t0 = now_ns();
	pub_start_with(&pub, c.nodes[0].addr, "cmp.x", FD_PSF_NORMAL, size,
		       count, 0, 0, make_payload(kind, size));
	pub_finish(&pub);
	sub_finish(&s);
	if (pub.failed || s.failed) {
		rc = fd_err_set(err, "%s", pub.failed ? pub.error : s.error);
	} else {
		struct json_object *info = cluster_info(&c, 0), *ps, *peers, *p;
		long long tx = 0;

		if (info && json_object_object_get_ex(info, "pubsub", &ps) &&
		    json_object_object_get_ex(ps, "peers", &peers) &&
		    json_object_object_get_ex(peers, c.nodes[1].name, &p))
			tx = fd_json_get_int(p, "tx_bytes", 0);
		json_object_put(info);
		*mbs = (double)s.got * (double)size /
		       ((double)(s.last_ns - t0) / 1e9) / 1e6;
		*ratio = (double)tx / ((double)count * (double)size);
	}
	cluster_stop(&c);
	return rc;
}

static int compression(const struct bench_opts *o, int kind, double *v,
		       struct fd_err *err)
{
	if (compress_once(o, kind, 1, &v[0], &v[2], err) < 0 ||
	    compress_once(o, kind, 0, &v[1], &v[3], err) < 0)
		return -1;
	return 0;
}

#define CMP(name, kind)                                               \
	static int name(const struct bench_opts *o, int n, double *v, \
			struct fd_err *err)                           \
	{                                                             \
		(void)n;                                              \
		return compression(o, kind, v, err);                  \
	}
CMP(run_compression, PL_JSON)
CMP(run_compression_text, PL_TEXT)
CMP(run_compression_random, PL_RANDOM)

/* The codecs alone, in this process: zstd and zlib at level 1 (the fast
 * end, where a node compresses), on 64 KiB payloads of one kind. The
 * ratio is compressed / original bytes; the speed is payload bytes per
 * second through compression and decompression (a sender compresses once,
 * each receiving node decompresses once). */
static int codec(const struct bench_opts *o, int kind, double *v, struct fd_err *err)
{
	size_t size = 65536, bound = ZSTD_compressBound(size);
	char *pl = make_payload(kind, size), *z = malloc(bound + 1024),
	     *back = malloc(size);
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	ZSTD_DCtx *zd = ZSTD_createDCtx();
	int64_t budget = o->duration_ms < 1000 ? o->duration_ms : 1000;
	int rc = 0;

	for (int lib = 0; lib < 2 && rc == 0; lib++) {
		size_t zlen = 0;
		long long rounds = 0;
		int64_t t0 = now_ns(), t1;

		do {
			if (lib == 0) {
				zlen = ZSTD_compressCCtx(zc, z, bound, pl, size, 1);
				if (ZSTD_isError(zlen) ||
				    ZSTD_decompressDCtx(zd, back, size, z, zlen) != size)
					rc = -1;
			} else {
				uLongf zl = (uLongf)(bound + 1024), bl = size;

				if (compress2((Bytef *)z, &zl, (const Bytef *)pl,
					      size, 1) != Z_OK ||
				    uncompress((Bytef *)back, &bl, (Bytef *)z,
					       zl) != Z_OK ||
				    bl != size)
					rc = -1;
				zlen = zl;
			}
			if (rc == 0 && memcmp(back, pl, size) != 0)
				rc = -1;
			rounds++;
			t1 = now_ns();
		} while (rc == 0 && t1 - t0 < budget * 1000000 / 2);
		if (rc < 0) {
			fd_err_set(err, "%s round trip failed", lib ? "zlib" : "zstd");
			break;
		}
		v[lib] = (double)zlen / (double)size;
		v[2 + lib] = (double)rounds * (double)size /
			     ((double)(t1 - t0) / 1e9) / 1e6;
	}
	ZSTD_freeCCtx(zc);
	ZSTD_freeDCtx(zd);
	free(pl);
	free(z);
	free(back);
	return rc;
}

#define CODEC(name, kind)                                             \
	static int name(const struct bench_opts *o, int n, double *v, \
			struct fd_err *err)                           \
	{                                                             \
		(void)n;                                              \
		return codec(o, kind, v, err);                        \
	}
CODEC(run_codec_json, PL_JSON)
CODEC(run_codec_text, PL_TEXT)
CODEC(run_codec_random, PL_RANDOM)

const struct scenario pubsub_scenarios[] = {
	{"pubsub.throughput.16",
	 "1,000,000 messages of 16 B published on node A, one subscriber on node B",
	 0,
	 2,
	 {{"pubsub.throughput.16.msgs", "msgs/s"},
	  {"pubsub.throughput.16.mbs", "MB/s"},
	  {"pubsub.throughput.16.lost", "count"}},
	 run_tp16,
	 0},
	{"pubsub.throughput.256",
	 "1,000,000 messages of 256 B, A -> B",
	 0,
	 2,
	 {{"pubsub.throughput.256.msgs", "msgs/s"},
	  {"pubsub.throughput.256.mbs", "MB/s"},
	  {"pubsub.throughput.256.lost", "count"}},
	 run_tp256,
	 0},
	{"pubsub.throughput.4k",
	 "256 MiB in messages of 4 KiB, A -> B",
	 0,
	 2,
	 {{"pubsub.throughput.4k.msgs", "msgs/s"},
	  {"pubsub.throughput.4k.mbs", "MB/s"},
	  {"pubsub.throughput.4k.lost", "count"}},
	 run_tp4k,
	 0},
	{"pubsub.throughput.64k",
	 "256 MiB in messages of 64 KiB, A -> B",
	 0,
	 2,
	 {{"pubsub.throughput.64k.msgs", "msgs/s"},
	  {"pubsub.throughput.64k.mbs", "MB/s"},
	  {"pubsub.throughput.64k.lost", "count"}},
	 run_tp64k,
	 0},
	{"pubsub.throughput.1m",
	 "256 MiB in messages of 1 MiB, A -> B",
	 0,
	 2,
	 {{"pubsub.throughput.1m.msgs", "msgs/s"},
	  {"pubsub.throughput.1m.mbs", "MB/s"},
	  {"pubsub.throughput.1m.lost", "count"}},
	 run_tp1m,
	 0},
	{"pubsub.throughput.same_node",
	 "1,000,000 messages of 256 B, publisher and subscriber on one node",
	 0,
	 1,
	 {{"pubsub.throughput.same_node.msgs", "msgs/s"},
	  {"pubsub.throughput.same_node.mbs", "MB/s"},
	  {"pubsub.throughput.same_node.lost", "count"}},
	 run_tp_same,
	 0},
	{"pubsub.throughput.fanout4",
	 "1,000,000 messages of 256 B on A, four subscribers on B (deliveries counted)",
	 0,
	 2,
	 {{"pubsub.throughput.fanout4.msgs", "msgs/s"},
	  {"pubsub.throughput.fanout4.mbs", "MB/s"},
	  {"pubsub.throughput.fanout4.lost", "count"}},
	 run_tp_fanout,
	 0},
	{"pubsub.latency",
	 "end-to-end latency A -> B at 10,000 messages/s (for up to 3 s of --duration)",
	 0,
	 2,
	 {{"pubsub.latency.p50", "ms"},
	  {"pubsub.latency.p99", "ms"},
	  {"pubsub.latency.p999", "ms"},
	  {"pubsub.latency.lost", "count"}},
	 run_latency,
	 0},
	{"pubsub.hol",
	 "p99 latency of small high-priority messages (500/s) while 8 MiB bulk messages "
	 "saturate the same node pair: channels separate, then shared; and the bulk MB/s",
	 0,
	 2,
	 {{"pubsub.hol.separate.p99", "ms"},
	  {"pubsub.hol.shared.p99", "ms"},
	  {"pubsub.hol.separate.bulk", "MB/s"},
	  {"pubsub.hol.shared.bulk", "MB/s"}},
	 run_hol,
	 0},
	{"pubsub.compression",
	 "2048 messages of 64 KiB of JSON records A -> B with zstd on, then off: "
	 "MB/s and bytes on the wire per payload byte",
	 0,
	 2,
	 {{"pubsub.compression.on", "MB/s"},
	  {"pubsub.compression.off", "MB/s"},
	  {"pubsub.compression.on.ratio", "ratio"},
	  {"pubsub.compression.off.ratio", "ratio"}},
	 run_compression,
	 0},
	{"pubsub.compression.text",
	 "the same with repetitive text (a JSON string of log-like words)",
	 0,
	 2,
	 {{"pubsub.compression.text.on", "MB/s"},
	  {"pubsub.compression.text.off", "MB/s"},
	  {"pubsub.compression.text.on.ratio", "ratio"},
	  {"pubsub.compression.text.off.ratio", "ratio"}},
	 run_compression_text,
	 0},
	{"pubsub.compression.random",
	 "the same with random bytes (a JSON string of base64)",
	 0,
	 2,
	 {{"pubsub.compression.random.on", "MB/s"},
	  {"pubsub.compression.random.off", "MB/s"},
	  {"pubsub.compression.random.on.ratio", "ratio"},
	  {"pubsub.compression.random.off.ratio", "ratio"}},
	 run_compression_random,
	 0},
	{"pubsub.codec.json",
	 "zstd and zlib at level 1 in process on 64 KiB of JSON records: "
	 "compressed size per byte, MB/s through compression and decompression",
	 0,
	 0,
	 {{"pubsub.codec.json.zstd.ratio", "ratio"},
	  {"pubsub.codec.json.zlib.ratio", "ratio"},
	  {"pubsub.codec.json.zstd", "MB/s"},
	  {"pubsub.codec.json.zlib", "MB/s"}},
	 run_codec_json,
	 0},
	{"pubsub.codec.text",
	 "the same on 64 KiB of repetitive text",
	 0,
	 0,
	 {{"pubsub.codec.text.zstd.ratio", "ratio"},
	  {"pubsub.codec.text.zlib.ratio", "ratio"},
	  {"pubsub.codec.text.zstd", "MB/s"},
	  {"pubsub.codec.text.zlib", "MB/s"}},
	 run_codec_text,
	 0},
	{"pubsub.codec.random",
	 "the same on 64 KiB of base64 random bytes",
	 0,
	 0,
	 {{"pubsub.codec.random.zstd.ratio", "ratio"},
	  {"pubsub.codec.random.zlib.ratio", "ratio"},
	  {"pubsub.codec.random.zstd", "MB/s"},
	  {"pubsub.codec.random.zlib", "MB/s"}},
	 run_codec_random,
	 0},
};
const int pubsub_nscenarios = sizeof(pubsub_scenarios) / sizeof(pubsub_scenarios[0]);
