/* Registry scenarios: real fd-node processes on 127.0.0.1, driven through
 * the /v1/registry API (req.h), watched through /v1/registry/watch
 * streams in one curl multi, counted through /v1/info. */
#include "scenario.h"
#include "bench.h"
#include "clock.h"
#include "cluster.h"
#include "jsonl.h"
#include "req.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 1000	     /* names per batch request */
#define REQ_TIMEOUT_MS 30000 /* one request, batches included */
#define SINGLE_LOOKUPS 2000  /* timed GET lookups per run */
#define INFO_POLL_US 5000    /* between two rounds of /v1/info */
#define WATCH_LINE_MAX 16384 /* longest watch line we expect */
#define NAME_FMT "%s%07ld"   /* prefix, index */

static int start(const struct bench_opts *o, struct cluster *c, int n,
		 struct fd_err *err)
{
	memset(c, 0, sizeof(*c));
	c->fd_node = o->fd_node;
	c->profile = o->profile;
	c->encrypt = o->encrypt;
	if (cluster_start(c, n, NULL, 10000 + 200LL * n, err) < 0)
		return -1;
	if (cluster_wait_converged(c, n, fd_mono_ms() + o->timeout_ms, err) < 0) {
		cluster_stop(c);
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The lines of an ndjson answer, and whether one of them contains bad. */
static long count_lines(const struct req *q, const char *bad, int *has_bad)
{
	const char *s = fd_buf_str(&q->resp);
	long n = 0;

	for (const char *p = s; (p = strchr(p, '\n')); p++)
		n++;
	*has_bad = bad && strstr(s, bad) != NULL;
	return n;
}

/* The first line of an answer, for error messages (in buf). */
static const char *first_line(const struct req *q, char *buf, size_t len)
{
	snprintf(buf, len, "%s", fd_buf_str(&q->resp));
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* Registers names prefix0000000 .. prefix(count-1) with their index as
 * value, in batches of CHUNK through q. *bytes gets the name and value
 * bytes registered, *t_last (fd_mono_us) the time the last batch was
 * accepted. Returns 0, or -1 with err (any name not created). */
static int register_all(struct req *q, const char *prefix, long count,
			long long *bytes, int64_t *t_last, struct fd_err *err)
{
	struct fd_buf body = FD_BUF_INIT(REQ_RESP_MAX);
	char line[128], msg[200];
	int rc = 0;

	*bytes = 0;
	for (long i = 0; i < count && rc == 0; i += CHUNK) {
		long n = count - i < CHUNK ? count - i : CHUNK, got;
		int bad;

		fd_buf_release(&body);
		for (long k = i; k < i + n; k++) {
			char name[64], value[32];
			int nl = snprintf(name, sizeof(name), NAME_FMT, prefix, k);
			int vl = snprintf(value, sizeof(value), "%ld", k);
			int len = snprintf(line, sizeof(line),
					   "{\"name\":\"%s\",\"value\":%s}\n",
					   name, value);

			*bytes += nl + vl;
			if (fd_buf_append(&body, line, (size_t)len) < 0) {
				rc = fd_err_set(err, "out of memory");
				break;
			}
		}
		if (rc < 0 || req_do(q, "POST", "/v1/registry/batch",
				     fd_buf_str(&body), body.len, err) < 0) {
			rc = -1;
			break;
		}
		got = count_lines(q, "\"type\":\"error\"", &bad);
		if (q->status != 200 || got != n || bad)
			rc = fd_err_set(err, "batch register: status %ld, %ld answers for %ld names: %s",
					q->status, got, n,
					first_line(q, msg, sizeof(msg)));
	}
	*t_last = fd_mono_us();
	fd_buf_release(&body);
	return rc;
}

/* Node i's registry figure key of /v1/info, or -1. */
static long long info_registry(struct cluster *c, int i, const char *key)
{
	struct json_object *info = cluster_info(c, i), *reg;
	long long v = -1;

	if (info && json_object_object_get_ex(info, "registry", &reg))
		v = fd_json_get_int(reg, key, -1);
	json_object_put(info);
	return v;
}

/* Waits until every node holds at least want names. Returns 0 with *t_done
 * (fd_mono_us) set, or -1 with err at deadline (fd_mono_ms). */
static int wait_names(struct cluster *c, long want, int64_t deadline,
		      int64_t *t_done, struct fd_err *err)
{
	char *done = calloc((size_t)c->n, 1);
	int left = c->n;
	long long last = 0;

	if (!done)
		return fd_err_set(err, "out of memory");
	while (left > 0) {
		for (int i = 0; i < c->n; i++) {
			long long names;

			if (done[i])
				continue;
			names = info_registry(c, i, "names");
			if (names >= want) {
				done[i] = 1;
				left--;
			} else {
				last = names;
			}
		}
		*t_done = fd_mono_us();
		if (left == 0)
			break;
		if (fd_mono_ms() > deadline) {
			free(done);
			return fd_err_set(err, "%d of %d nodes hold fewer than %ld names (one has %lld)",
					  left, c->n, want, last);
		}
		usleep(INFO_POLL_US);
	}
	free(done);
	return 0;
}

/* registry.visible */

struct visible;

/* One watch stream on one node. */
struct watch {
	struct visible *v;
	CURL *curl;
	int node;
	long seen; /* last index seen of the name under way */
	char line[WATCH_LINE_MAX];
	size_t len;
	int overflow;
};

struct visible {
	const char *prefix;
	long cur;	 /* the index being registered */
	int left;	 /* watches that have not reported it yet */
	int64_t last_us; /* when the last of them did */
	int put_busy;	 /* the PUT is in the multi */
};

static void watch_line(struct watch *w, const char *s, size_t len)
{
	struct visible *v = w->v;
	struct json_object *o = fd_json_parse(s, len, NULL);
	const char *event = fd_json_get_str(o, "event");
	const char *name = fd_json_get_str(o, "name");
	size_t plen = strlen(v->prefix);

	if (event && name && strcmp(event, "registered") == 0 &&
	    strncmp(name, v->prefix, plen) == 0 &&
	    strtol(name + plen, NULL, 10) == v->cur && w->seen != v->cur) {
		w->seen = v->cur;
		v->left--;
		v->last_us = fd_mono_us();
	}
	json_object_put(o);
}

static size_t watch_data(char *p, size_t size, size_t n, void *arg)
{
	struct watch *w = arg;
	size_t total = size * n;

	for (size_t i = 0; i < total; i++) {
		if (p[i] == '\n') {
			if (!w->overflow)
				watch_line(w, w->line, w->len);
			w->len = 0;
			w->overflow = 0;
		} else if (w->len < sizeof(w->line)) {
			w->line[w->len++] = p[i];
		} else {
			w->overflow = 1;
		}
	}
	return total;
}

/* Runs the multi until every watch saw index cur and the PUT on put ended
 * (201), or until deadline (fd_mono_ms). Returns 0 or -1 with err. */
static int visible_wait(CURLM *m, struct visible *v, struct req *put,
			struct watch *ws, int nw, int64_t deadline,
			struct fd_err *err)
{
	int put_done = 0;

	while (v->left > 0 || !put_done) {
		CURLMsg *msg;
		int running, queued;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &queued))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			if (msg->easy_handle == put->curl) {
				curl_multi_remove_handle(m, put->curl);
				v->put_busy = 0;
				put_done = 1;
				if (req_finished(put, (int)msg->data.result, err) < 0)
					return -1;
				if (put->status != 201)
					return fd_err_set(err, "register: status %ld: %s",
							  put->status,
							  fd_buf_str(&put->resp));
				continue;
			}
			for (int i = 0; i < nw; i++)
				if (ws[i].curl == msg->easy_handle)
					return fd_err_set(
						err, "the watch on node b%d ended: %s",
						ws[i].node + 1,
						curl_easy_strerror(msg->data.result));
		}
		if (v->left == 0 && put_done)
			break;
		if (fd_mono_ms() > deadline)
			return fd_err_set(err,
					  "'" NAME_FMT
					  "' not seen by %d of %d nodes in time",
					  v->prefix, v->cur, v->left, nw);
		curl_multi_poll(m, NULL, 0, 5, NULL);
	}
	return 0;
}

/* Registers index k on node 1 and waits for every watch. */
static int visible_one(CURLM *m, struct visible *v, struct req *put,
		       struct watch *ws, int nw, long k, int64_t deadline,
		       int64_t *t0, struct fd_err *err)
{
	char path[128];

	snprintf(path, sizeof(path), "/v1/registry?name=" NAME_FMT, v->prefix, k);
	v->cur = k;
	v->left = nw;
	*t0 = fd_mono_us();
	if (req_prepare(put, "PUT", path, "{\"value\":1}", 11) < 0 ||
	    curl_multi_add_handle(m, put->curl) != CURLM_OK)
		return fd_err_set(err, "unable to start a request");
	v->put_busy = 1;
	return visible_wait(m, v, put, ws, nw, deadline, err);
}

static int run_visible(const struct bench_opts *o, int n, double *vals,
		       struct fd_err *err)
{
	struct visible v = {.prefix = "bv."};
	struct cluster c;
	struct req put;
	struct watch *ws = NULL;
	double *lat = NULL;
	CURLM *m = NULL;
	long count = o->entries, next = 0;
	int nw = n - 1, rc = -1;
	int64_t t0;

	if (n < 2)
		return fd_err_set(err, "needs at least 2 nodes");
	if (start(o, &c, n, err) < 0)
		return -1;
	memset(&put, 0, sizeof(put));
	ws = calloc((size_t)nw, sizeof(*ws));
	lat = calloc((size_t)count, sizeof(*lat));
	m = curl_multi_init();
	if (!ws || !lat || !m) {
		fd_err_set(err, "out of memory");
		goto out;
	}
	if (req_init(&put, c.nodes[0].addr, REQ_TIMEOUT_MS, err) < 0)
		goto out;
	for (int i = 0; i < nw; i++) {
		char url[160];
		struct watch *w = &ws[i];

		w->v = &v;
		w->node = i + 1;
		w->seen = -1;
		w->curl = curl_easy_init();
		if (!w->curl) {
			fd_err_set(err, "out of memory");
			goto out;
		}
		snprintf(url, sizeof(url), "http://%s/v1/registry/watch?prefix=%s",
			 c.nodes[i + 1].addr, v.prefix);
		curl_easy_setopt(w->curl, CURLOPT_URL, url);
		curl_easy_setopt(w->curl, CURLOPT_PROXY, "");
		curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
		curl_easy_setopt(w->curl, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, watch_data);
		curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
		curl_multi_add_handle(m, w->curl);
	}
	/* Warm-up, not measured: names until one is seen by every watch,
	 * which tells that every stream is open and that node 1 replicates
	 * to every other node. */
	for (int64_t deadline = fd_mono_ms() + o->timeout_ms;;) {
		int64_t d = fd_mono_ms() + 500;

		if (visible_one(m, &v, &put, ws, nw, next++,
				d < deadline ? d : deadline, &t0, err) == 0)
			break;
		if (fd_mono_ms() > deadline)
			goto out;
		if (v.put_busy) {
			curl_multi_remove_handle(m, put.curl);
			v.put_busy = 0;
		}
	}
	for (long k = 0; k < count; k++) {
		if (visible_one(m, &v, &put, ws, nw, next++,
				fd_mono_ms() + o->timeout_ms, &t0, err) < 0)
			goto out;
		lat[k] = (double)(v.last_us - t0) / 1000.0;
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp_double);
	vals[0] = fd_percentile(lat, (size_t)count, 50);
	vals[1] = fd_percentile(lat, (size_t)count, 99);
	rc = 0;
out:
	for (int i = 0; ws && i < nw; i++)
		if (ws[i].curl) {
			curl_multi_remove_handle(m, ws[i].curl);
			curl_easy_cleanup(ws[i].curl);
		}
	if (v.put_busy)
		curl_multi_remove_handle(m, put.curl);
	req_release(&put);
	if (m)
		curl_multi_cleanup(m);
	free(ws);
	free(lat);
	cluster_stop(&c);
	return rc;
}

/* registry.bulk */

static int run_bulk(const struct bench_opts *o, int n, double *vals,
		    struct fd_err *err)
{
	struct cluster c;
	struct req q;
	long long bytes, cpu0, cpu1, rcpu0 = 0, rcpu1 = 0;
	int64_t t0, t_last, t_done;
	int rc = -1;

	if (start(o, &c, n, err) < 0)
		return -1;
	if (req_init(&q, c.nodes[0].addr, REQ_TIMEOUT_MS, err) < 0)
		goto out;
	cpu0 = proc_cpu_us(c.nodes[0].pid);
	if (n > 1)
		rcpu0 = proc_cpu_us(c.nodes[1].pid);
	t0 = fd_mono_us();
	if (register_all(&q, "bb.", o->entries, &bytes, &t_last, err) < 0)
		goto out;
	cpu1 = proc_cpu_us(c.nodes[0].pid);
	if (wait_names(&c, o->entries, fd_mono_ms() + o->timeout_ms, &t_done, err) < 0)
		goto out;
	if (n > 1)
		rcpu1 = proc_cpu_us(c.nodes[1].pid);
	vals[0] = (double)o->entries * 1e6 /
		  (double)(t_last - t0 > 0 ? t_last - t0 : 1);
	vals[1] = (double)(t_done - t_last) / 1e6;
	vals[2] = (double)(cpu1 - cpu0) / (double)o->entries;
	vals[3] = (double)(rcpu1 - rcpu0) / (double)o->entries;
	rc = 0;
out:
	req_release(&q);
	cluster_stop(&c);
	return rc;
}

/* registry.lookup */

/* Looks up every name in batches of CHUNK; *secs gets the time taken. */
static int lookup_batches(struct req *q, const char *prefix, long count,
			  double *secs, struct fd_err *err)
{
	struct fd_buf *bodies;
	long nb = (count + CHUNK - 1) / CHUNK;
	char msg[200];
	int64_t t0;
	int rc = 0;

	bodies = calloc((size_t)nb, sizeof(*bodies));
	if (!bodies)
		return fd_err_set(err, "out of memory");
	for (long b = 0; b < nb && rc == 0; b++) {
		bodies[b] = (struct fd_buf)FD_BUF_INIT(REQ_RESP_MAX);
		for (long k = b * CHUNK; k < count && k < (b + 1) * CHUNK; k++) {
			char line[96];
			int len = snprintf(line, sizeof(line),
					   "{\"name\":\"" NAME_FMT "\"}\n",
					   prefix, k);

			if (fd_buf_append(&bodies[b], line, (size_t)len) < 0)
				rc = fd_err_set(err, "out of memory");
		}
	}
	t0 = fd_mono_us();
	for (long b = 0; b < nb && rc == 0; b++) {
		long want = b == nb - 1 ? count - b * CHUNK : CHUNK, got;
		int missing;

		if (req_do(q, "POST", "/v1/registry/lookup",
			   fd_buf_str(&bodies[b]), bodies[b].len, err) < 0) {
			rc = -1;
			break;
		}
		got = count_lines(q, "\"found\":false", &missing);
		if (q->status != 200 || got != want || missing)
			rc = fd_err_set(err, "batch lookup: status %ld, %ld answers for %ld names%s: %s",
					q->status, got, want,
					missing ? ", some not found" : "",
					first_line(q, msg, sizeof(msg)));
	}
	*secs = (double)(fd_mono_us() - t0) / 1e6;
	for (long b = 0; b < nb; b++)
		fd_buf_release(&bodies[b]);
	free(bodies);
	return rc;
}

/* SINGLE_LOOKUPS GETs of names picked at random; lat gets their times in
 * ms, sorted. */
static int lookup_singles(struct req *q, const char *prefix, long count,
			  double *lat, struct fd_err *err)
{
	unsigned seed = (unsigned)fd_mono_us();

	for (int i = 0; i < SINGLE_LOOKUPS; i++) {
		char path[128];
		int64_t t0;

		snprintf(path, sizeof(path), "/v1/registry?name=" NAME_FMT,
			 prefix, (long)(rand_r(&seed) % count));
		t0 = fd_mono_us();
		if (req_do(q, "GET", path, NULL, 0, err) < 0)
			return -1;
		lat[i] = (double)(fd_mono_us() - t0) / 1000.0;
		if (q->status != 200)
			return fd_err_set(err, "lookup %s: status %ld", path,
					  q->status);
	}
	qsort(lat, SINGLE_LOOKUPS, sizeof(*lat), cmp_double);
	return 0;
}

static int run_lookup(const struct bench_opts *o, int n, double *vals,
		      struct fd_err *err)
{
	struct cluster c;
	struct req q;
	double lat[SINGLE_LOOKUPS], secs = 0;
	long long bytes;
	int64_t t_last;
	int rc = -1;

	if (start(o, &c, n, err) < 0)
		return -1;
	if (req_init(&q, c.nodes[0].addr, REQ_TIMEOUT_MS, err) == 0 &&
	    register_all(&q, "bl.", o->entries, &bytes, &t_last, err) == 0 &&
	    lookup_batches(&q, "bl.", o->entries, &secs, err) == 0 &&
	    lookup_singles(&q, "bl.", o->entries, lat, err) == 0) {
		vals[0] = (double)o->entries / (secs > 0 ? secs : 1e-9);
		vals[1] = fd_percentile(lat, SINGLE_LOOKUPS, 50);
		vals[2] = fd_percentile(lat, SINGLE_LOOKUPS, 99);
		rc = 0;
	}
	req_release(&q);
	cluster_stop(&c);
	return rc;
}

/* registry.memory */

static int run_memory(const struct bench_opts *o, int n, double *vals,
		      struct fd_err *err)
{
	struct cluster c;
	struct req q;
	struct proc_mem p0, p1, r0 = {0}, r1 = {0};
	long long m0, m1, bytes;
	int64_t t_last, t_done;
	int rc = -1, replica = n > 1;

	if (start(o, &c, n, err) < 0)
		return -1;
	usleep(200000); /* past the first exchanges after the join */
	m0 = info_registry(&c, 0, "mem_bytes");
	if (m0 < 0 || proc_mem(c.nodes[0].pid, &p0) < 0 ||
	    (replica && proc_mem(c.nodes[1].pid, &r0) < 0)) {
		fd_err_set(err, "unable to read the memory of the nodes");
		cluster_stop(&c);
		return -1;
	}
	if (req_init(&q, c.nodes[0].addr, REQ_TIMEOUT_MS, err) == 0 &&
	    register_all(&q, "bm.", o->entries, &bytes, &t_last, err) == 0 &&
	    wait_names(&c, o->entries, fd_mono_ms() + o->timeout_ms, &t_done,
		       err) == 0) {
		usleep(200000); /* the last delta acknowledged, its group freed */
		m1 = info_registry(&c, 0, "mem_bytes");
		if (m1 < 0 || proc_mem(c.nodes[0].pid, &p1) < 0 ||
		    (replica && proc_mem(c.nodes[1].pid, &r1) < 0)) {
			fd_err_set(err, "unable to read the memory of the nodes");
		} else {
			vals[0] = (double)(m1 - m0 - bytes) / (double)o->entries;
			vals[1] = (double)(p1.private - p0.private) /
				  (double)o->entries;
			vals[2] = (double)(r1.private - r0.private) /
				  (double)o->entries;
			rc = 0;
		}
	}
	req_release(&q);
	cluster_stop(&c);
	return rc;
}

const struct scenario registry_scenarios[] = {
	{
		.name = "registry.visible",
		.description = "N nodes; names registered one at a time on the first; ms until "
			       "a watch stream on every other node reports the name (p50, p99 "
			       "over --entries names)",
		.uses_nodes = 1,
		.default_nodes = 3,
		.figures = {{"registry.visible.p50", "ms"},
			    {"registry.visible.p99", "ms"}},
		.run = run_visible,
		/* 1000: a p99 over 200 names was the second-worst of them */
		.default_entries = 1000,
	},
	{
		.name = "registry.bulk",
		.description = "--entries names registered through the first of N nodes in "
			       "batches of 1000: names/s accepted, then seconds from the last "
			       "accept until every node holds them all",
		.uses_nodes = 1,
		.default_nodes = 3,
		.figures = {{"registry.bulk", "names/s"},
			    {"registry.bulk.replicated", "s"},
			    {"registry.bulk.cpu", "us"},
			    {"registry.bulk.replica_cpu", "us"}},
		.run = run_bulk,
		.default_entries = 100000,
	},
	{
		.name = "registry.lookup",
		.description = "--entries names on the first of N nodes, looked up there: "
			       "lookups/s in batches of 1000, then ms per single GET lookup "
			       "(p50, p99 of 2000)",
		.uses_nodes = 1,
		.default_nodes = 3,
		.figures = {{"registry.lookup", "lookups/s"},
			    {"registry.lookup.p50", "ms"},
			    {"registry.lookup.p99", "ms"}},
		.run = run_lookup,
		.default_entries = 100000,
	},
	{
		.name = "registry.memory",
		.description = "--entries names registered on the first of N nodes: registry "
			       "bytes per entry beyond name and value (/v1/info mem_bytes), "
			       "then private memory growth per entry of that node and of a "
			       "replica",
		.uses_nodes = 1,
		.default_nodes = 3,
		.figures = {{"registry.memory", "bytes/entry"},
			    {"registry.memory.private", "bytes/entry"},
			    {"registry.memory.replica", "bytes/entry"}},
		.run = run_memory,
		.default_entries = 100000,
	},
};
const int registry_nscenarios =
	sizeof(registry_scenarios) / sizeof(registry_scenarios[0]);
