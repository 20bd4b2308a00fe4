/* fake-node: a stand-in for fd-node's join API, for testing the clients
 * (fd-join) before and apart from the real membership code.
 *
 * Listens on 127.0.0.1:0 and prints an identity line like fd-node's. Then:
 *   POST /v1/join {"addrs":[...]}  an address with port 1 fails with
 *        "connection refused"; any other is ok:true, name "peer-PORT", id
 *        "id-PORT", and becomes a member. Each request body is printed on
 *        stdout as {"type":"request","path":"/v1/join","body":{...}}.
 *   GET /v1/members  the fake itself and every joined address; a member is
 *        "suspect" for --alive-after after its join, then "alive".
 * --join-status CODE answers every join with CODE and {"error":"injected"}.
 *
 * And a stand-in for the registry API (fd-registry's contract, see
 * man/fd-registry.1): PUT/GET/DELETE /v1/registry, POST /v1/registry/batch
 * and /v1/registry/lookup, GET /v1/registry/watch. One replica, no CRDT:
 * entries are owned by "fake", except names starting with "foreign.", which
 * are owned by "n2" (so unregister without --force is refused). Each batch
 * or lookup request is printed as {"type":"request","path":...,"lines":N}.
 * Stops on SIGINT/SIGTERM.
 */
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "discover.h"
#include "http.h"
#include "jsonl.h"
#include "loop.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "fake-node [--join-status code] [--alive-after duration]"

struct fake {
	char addr[64];
	long join_status;
	int64_t alive_after;
	struct json_object *members; /* addr -> {name, joined (mono ms)} */
	/* registry */
	struct fd_loop *loop;
	struct json_object *reg; /* name -> entry record */
	unsigned long hlc;
	struct watcher *watchers;
	struct waiter *waiters;
};

struct watcher {
	struct fd_http_req *req;
	char *prefix;
	struct watcher *next;
};

struct waiter {
	struct fake *f;
	struct fd_http_req *req;
	char *name;
	struct fd_timer timer;
	struct waiter *next;
};

static void h_join(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	struct json_object *body = fd_http_json(req), *addrs, *log, *resp, *results;

	log = fd_json_record("request");
	json_object_object_add(log, "path",
			       json_object_new_string(fd_http_path(req)));
	json_object_object_add(log, "body", json_object_get(body));
	fd_emit(log);
	fd_emit_flush();
	json_object_put(log);
	if (f->join_status) {
		fd_http_reply_error(req, (unsigned)f->join_status, "injected");
		return;
	}
	if (!json_object_object_get_ex(body, "addrs", &addrs) ||
	    !json_object_is_type(addrs, json_type_array)) {
		fd_http_reply_error(req, 400, "expected {\"addrs\": [...]}");
		return;
	}
	results = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(addrs); i++) {
		const char *a = json_object_get_string(
			json_object_array_get_idx(addrs, i));
		const char *colon = strrchr(a, ':');
		struct json_object *r = json_object_new_object(), *m;
		char buf[64];

		json_object_object_add(r, "addr", json_object_new_string(a));
		if (colon && strcmp(colon, ":1") == 0) {
			json_object_object_add(r, "ok", json_object_new_boolean(0));
			json_object_object_add(
				r, "error",
				json_object_new_string("connection refused"));
		} else {
			json_object_object_add(r, "ok", json_object_new_boolean(1));
			snprintf(buf, sizeof(buf), "peer-%s",
				 colon ? colon + 1 : "x");
			json_object_object_add(r, "name",
					       json_object_new_string(buf));
			snprintf(buf, sizeof(buf), "id-%s", colon ? colon + 1 : "x");
			json_object_object_add(r, "id", json_object_new_string(buf));
			if (!json_object_object_get_ex(f->members, a, NULL)) {
				m = json_object_new_object();
				snprintf(buf, sizeof(buf), "peer-%s",
					 colon ? colon + 1 : "x");
				json_object_object_add(
					m, "name", json_object_new_string(buf));
				json_object_object_add(
					m, "joined",
					json_object_new_int64(fd_mono_ms()));
				json_object_object_add(f->members, a, m);
			}
		}
		json_object_array_add(results, r);
	}
	resp = json_object_new_object();
	json_object_object_add(resp, "results", results);
	fd_http_reply_json(req, 200, resp);
}

static struct json_object *member(const char *name, const char *addr, const char *state)
{
	struct json_object *m = fd_json_record("member");

	json_object_object_add(m, "name", json_object_new_string(name));
	json_object_object_add(m, "id", json_object_new_string(name));
	json_object_object_add(m, "addr", json_object_new_string(addr));
	json_object_object_add(m, "state", json_object_new_string(state));
	json_object_object_add(m, "incarnation", json_object_new_int(0));
	return m;
}

static void h_members(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	struct json_object *list = json_object_new_array(),
			   *resp = json_object_new_object();
	int64_t now = fd_mono_ms();

	json_object_array_add(list, member("fake", f->addr, "alive"));
	json_object_object_foreach(f->members, a, m)
	{
		int alive = now - fd_json_get_int(m, "joined", 0) >= f->alive_after;

		json_object_array_add(list, member(fd_json_get_str(m, "name"), a,
						   alive ? "alive" : "suspect"));
	}
	json_object_object_add(resp, "members", list);
	fd_http_reply_json(req, 200, resp);
}

/* Registry stand-in */

#define NAME_MAX_LEN 255
#define VALUE_MAX_LEN 65536

static int name_ok(const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len > NAME_MAX_LEN || !fd_utf8_valid(s, len))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static void log_request(struct fd_http_req *req, size_t lines)
{
	struct json_object *log = fd_json_record("request");

	json_object_object_add(log, "path",
			       json_object_new_string(fd_http_path(req)));
	json_object_object_add(log, "lines", json_object_new_int64((int64_t)lines));
	fd_emit(log);
	fd_emit_flush();
	json_object_put(log);
}

static struct json_object *copy(struct json_object *o)
{
	struct json_object *c = NULL;

	json_object_deep_copy(o, &c, NULL);
	return c;
}

static void broadcast(struct fake *f, const char *event, const char *name,
		      struct json_object *entry)
{
	struct json_object *ev = fd_json_record("event");
	char ts[FD_TS_LEN];
	const char *line;
	size_t len;

	json_object_object_add(ev, "event", json_object_new_string(event));
	json_object_object_add(ev, "name", json_object_new_string(name));
	json_object_object_add(
		ev, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
	json_object_object_foreach(entry, k, v)
	{
		if (strcmp(k, "type") && strcmp(k, "name"))
			json_object_object_add(ev, k, json_object_get(v));
	}
	line = fd_json_str(ev, &len);
	for (struct watcher *w = f->watchers; w; w = w->next) {
		if (strncmp(name, w->prefix, strlen(w->prefix)))
			continue;
		fd_http_stream_write(w->req, line, len);
		fd_http_stream_write(w->req, "\n", 1);
	}
	json_object_put(ev);
}

static void waiter_free(struct fake *f, struct waiter *w)
{
	struct waiter **pp = &f->waiters;

	while (*pp != w)
		pp = &(*pp)->next;
	*pp = w->next;
	fd_timer_disarm(f->loop, &w->timer);
	free(w->name);
	free(w);
}

/* Registers name; returns the HTTP status, *out the answer record. */
static unsigned reg_put(struct fake *f, const char *name, struct json_object *value,
			int replace, int persistent, struct json_object **out)
{
	struct json_object *old = NULL, *e;
	char buf[320];
	size_t vlen = 4;

	if (!name_ok(name)) {
		*out = json_object_new_object();
		json_object_object_add(*out, "error",
				       json_object_new_string("invalid name"));
		return 400;
	}
	if (value)
		fd_json_str(value, &vlen);
	if (vlen > VALUE_MAX_LEN) {
		*out = json_object_new_object();
		json_object_object_add(
			*out, "error",
			json_object_new_string("value larger than 65536 bytes"));
		return 413;
	}
	json_object_object_get_ex(f->reg, name, &old);
	if (old && !replace) {
		*out = json_object_new_object();
		snprintf(buf, sizeof(buf), "name '%s' is already registered", name);
		json_object_object_add(*out, "error", json_object_new_string(buf));
		json_object_object_add(*out, "entry", copy(old));
		return 409;
	}
	e = fd_json_record("entry");
	json_object_object_add(e, "name", json_object_new_string(name));
	json_object_object_add(e, "value", value ? copy(value) : NULL);
	json_object_object_add(
		e, "owner",
		json_object_new_string(strncmp(name, "foreign.", 8) ? "fake" : "n2"));
	json_object_object_add(e, "owner_id",
			       json_object_new_string("00000000000000f1"));
	snprintf(buf, sizeof(buf), "%lu.0", ++f->hlc);
	json_object_object_add(e, "hlc", json_object_new_string(buf));
	json_object_object_add(e, "persistent", json_object_new_boolean(persistent));
	json_object_object_add(f->reg, name, e);
	broadcast(f, old ? "updated" : "registered", name, e);
	for (struct waiter *w = f->waiters, *next; w; w = next) {
		next = w->next;
		if (strcmp(w->name, name) == 0) {
			fd_http_reply_json(w->req, 200, copy(e));
			waiter_free(f, w);
		}
	}
	*out = copy(e);
	json_object_object_add(*out, old ? "replaced" : "created",
			       json_object_new_boolean(1));
	return old ? 200 : 201;
}

static int get_flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void h_reg_put(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	struct json_object *body = fd_http_json(req), *value = NULL, *out;
	unsigned status;

	if (!json_object_is_type(body, json_type_object)) {
		fd_http_reply_error(req, 400, "expected a JSON object");
		return;
	}
	json_object_object_get_ex(body, "value", &value);
	status = reg_put(f, fd_http_query(req, "name"), value,
			 get_flag(body, "replace"),
			 get_flag(body, "persistent"), &out);
	fd_http_reply_json(req, status, out);
}

static void not_found(struct fd_http_req *req, const char *name)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string("not found"));
	json_object_object_add(o, "name", json_object_new_string(name));
	fd_http_reply_json(req, 404, o);
}

static void waiter_timeout(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct waiter *w = arg;

	(void)loop;
	(void)t;
	not_found(w->req, w->name);
	waiter_free(w->f, w);
}

static void waiter_gone(struct fd_http_req *req, void *arg)
{
	struct waiter *w = arg;

	(void)req;
	waiter_free(w->f, w);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void h_reg_list(struct fd_http_req *req, struct fake *f, const char *prefix)
{
	struct fd_buf b = FD_BUF_INIT(1 << 30);
	size_t n = 0, len;
	const char **names = malloc(
		sizeof(*names) * (size_t)(json_object_object_length(f->reg) + 1));
	const char *line;

	json_object_object_foreach(f->reg, k, v)
	{
		(void)v;
		if (!prefix || strncmp(k, prefix, strlen(prefix)) == 0)
			names[n++] = k;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e;

		json_object_object_get_ex(f->reg, names[i], &e);
		line = fd_json_str(e, &len);
		fd_buf_append(&b, line, len);
		fd_buf_append(&b, "\n", 1);
	}
	fd_http_reply(req, 200, "application/x-ndjson", fd_buf_str(&b), b.len);
	fd_buf_release(&b);
	free(names);
}

static void h_reg_get(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	const char *name = fd_http_query(req, "name"),
		   *wait = fd_http_query(req, "wait");
	struct json_object *e;
	struct waiter *w;
	long long ms;

	if (!name) {
		h_reg_list(req, f, fd_http_query(req, "prefix"));
		return;
	}
	if (json_object_object_get_ex(f->reg, name, &e)) {
		fd_http_reply_json(req, 200, copy(e));
		return;
	}
	if (!wait || fd_parse_int(wait, 0, 3600000, &ms) < 0 || ms == 0) {
		not_found(req, name);
		return;
	}
	w = calloc(1, sizeof(*w));
	w->f = f;
	w->req = req;
	w->name = strdup(name);
	w->next = f->waiters;
	f->waiters = w;
	fd_timer_init(&w->timer, waiter_timeout, w);
	fd_timer_arm(f->loop, &w->timer, ms);
	fd_http_defer(req);
	fd_http_on_close(req, waiter_gone, w);
}

static void h_reg_delete(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	const char *name = fd_http_query(req, "name"),
		   *force = fd_http_query(req, "force");
	struct json_object *e, *o;
	const char *owner;

	if (!name || !json_object_object_get_ex(f->reg, name, &e)) {
		not_found(req, name ? name : "");
		return;
	}
	owner = fd_json_get_str(e, "owner");
	if (strcmp(owner, "fake") && !(force && strcmp(force, "1") == 0)) {
		fd_http_reply_error(req, 403,
				    "'%s' is owned by node '%s' (use --force)",
				    name, owner);
		return;
	}
	o = fd_json_record("event");
	json_object_object_add(o, "owner", json_object_new_string(owner));
	broadcast(f, "unregistered", name, o);
	json_object_put(o);
	o = fd_json_record("entry");
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "unregistered", json_object_new_boolean(1));
	json_object_object_add(o, "removed", json_object_new_int(1));
	json_object_object_del(f->reg, name);
	fd_http_reply_json(req, 200, o);
}

/* Runs each line of an ndjson body through fn; replies with the results. */
static void ndjson(struct fd_http_req *req, struct fake *f,
		   struct json_object *(*fn)(struct fake *,
					     struct json_object *, size_t))
{
	size_t blen, len, lineno = 0;
	const char *body = fd_http_body(req, &blen), *p = body,
		   *end = body + blen, *nl;
	struct fd_buf out = FD_BUF_INIT(1 << 30);

	while (p < end) {
		struct json_object *rec, *r;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl > p) {
			lineno++;
			rec = fd_json_parse(p, (size_t)(nl - p), NULL);
			r = fn(f, rec, lineno);
			const char *s = fd_json_str(r, &len);

			fd_buf_append(&out, s, len);
			fd_buf_append(&out, "\n", 1);
			json_object_put(r);
			json_object_put(rec);
		}
		p = nl + 1;
	}
	log_request(req, lineno);
	fd_http_reply(req, 200, "application/x-ndjson", fd_buf_str(&out), out.len);
	fd_buf_release(&out);
}

static struct json_object *batch_one(struct fake *f, struct json_object *rec,
				     size_t lineno)
{
	struct json_object *value = NULL, *out, *err;
	const char *name = fd_json_get_str(rec, "name");
	unsigned status;

	json_object_object_get_ex(rec, "value", &value);
	status = reg_put(f, name, value, get_flag(rec, "replace"),
			 get_flag(rec, "persistent"), &out);
	if (status < 300)
		return out;
	err = fd_json_record("error");
	json_object_object_add(err, "line", json_object_new_int64((int64_t)lineno));
	json_object_object_add(err, "name", json_object_new_string(name ? name : ""));
	json_object_object_add(err, "status", json_object_new_int((int)status));
	json_object_object_add(err, "error",
			       json_object_new_string(fd_json_get_str(out, "error")));
	json_object_put(out);
	return err;
}

static struct json_object *lookup_one(struct fake *f, struct json_object *rec,
				      size_t lineno)
{
	struct json_object *e, *out;
	const char *name = fd_json_get_str(rec, "name");

	(void)lineno;
	if (name && json_object_object_get_ex(f->reg, name, &e))
		return copy(e);
	out = fd_json_record("entry");
	json_object_object_add(out, "name", json_object_new_string(name ? name : ""));
	json_object_object_add(out, "found", json_object_new_boolean(0));
	return out;
}

static void h_reg_batch(struct fd_http_req *req, void *arg)
{
	ndjson(req, arg, batch_one);
}

static void h_reg_lookup(struct fd_http_req *req, void *arg)
{
	ndjson(req, arg, lookup_one);
}

static void watcher_gone(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;

	for (struct watcher **pp = &f->watchers; *pp; pp = &(*pp)->next) {
		if ((*pp)->req == req) {
			struct watcher *w = *pp;

			*pp = w->next;
			free(w->prefix);
			free(w);
			return;
		}
	}
}

static void h_reg_watch(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	const char *prefix = fd_http_query(req, "prefix");
	struct watcher *w;

	if (fd_http_stream_begin(req, "application/x-ndjson", 1 << 20) < 0) {
		fd_http_reply_error(req, 500, "unable to stream");
		return;
	}
	w = calloc(1, sizeof(*w));
	w->req = req;
	w->prefix = strdup(prefix ? prefix : "");
	w->next = f->watchers;
	f->watchers = w;
	fd_http_on_close(req, watcher_gone, f);
}

static void on_stop(struct fd_loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	fd_loop_stop(loop);
}

static int listen_any(char *addr, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t salen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to listen: %m");
	snprintf(addr, len, "127.0.0.1:%d", ntohs(sa.sin_port));
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"join-status", required_argument, NULL, 'j'},
		{"alive-after", required_argument, NULL, 'a'},
		{0},
	};
	struct fake f = {0};
	struct fd_http_server_opts hopts = {0};
	struct fd_http_server *srv;
	struct fd_loop *loop;
	struct json_object *id;
	struct fd_err err;
	long long v;
	int c;

	fd_cli_init("fake-node", USAGE);
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (fd_parse_int(optarg, 100, 599, &v) < 0)
				fd_usage_die("invalid --join-status '%s'", optarg);
			f.join_status = (long)v;
			break;
		case 'a':
			if (fd_parse_duration(optarg, &f.alive_after) < 0)
				fd_usage_die("invalid --alive-after '%s'", optarg);
			break;
		default: fd_usage_getopt(c, argv);
		}
	}
	f.members = json_object_new_object();
	f.reg = json_object_new_object();
	hopts.listen_fd = listen_any(f.addr, sizeof(f.addr));
	loop = fd_loop_new();
	f.loop = loop;
	if (!loop || fd_loop_signal(loop, SIGTERM, on_stop, NULL) < 0 ||
	    fd_loop_signal(loop, SIGINT, on_stop, NULL) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to set up the loop: %m");
	srv = fd_http_server_new(loop, &hopts, &err);
	if (!srv)
		fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
	fd_http_route(srv, "POST", "/v1/join", FD_HTTP_JSON, h_join, &f);
	fd_http_route(srv, "GET", "/v1/members", 0, h_members, &f);
	fd_http_route(srv, "PUT", "/v1/registry", FD_HTTP_JSON, h_reg_put, &f);
	fd_http_route(srv, "GET", "/v1/registry", 0, h_reg_get, &f);
	fd_http_route(srv, "DELETE", "/v1/registry", 0, h_reg_delete, &f);
	fd_http_route(srv, "POST", "/v1/registry/batch", 0, h_reg_batch, &f);
	fd_http_route(srv, "POST", "/v1/registry/lookup", 0, h_reg_lookup, &f);
	fd_http_route(srv, "GET", "/v1/registry/watch", 0, h_reg_watch, &f);
	id = fd_json_record("node");
	json_object_object_add(id, "name", json_object_new_string("fake"));
	json_object_object_add(id, "addr", json_object_new_string(f.addr));
	json_object_object_add(id, "pid", json_object_new_int(getpid()));
	fd_emit(id);
	fd_emit_flush();
	json_object_put(id);
	fd_loop_run(loop);
	fd_http_server_free(srv);
	fd_loop_free(loop);
	json_object_put(f.members);
	json_object_put(f.reg);
	return fd_finish_stdout(0);
}
