#include "http.h"
#include "jsonl.h"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fixture {
	struct fd_loop *loop;
	struct fd_http_server *srv;
	struct fd_http_client *cli;
	int port;
	char base[64];
	/* server side */
	struct fd_http_req *pending;
	struct fd_timer timer;
	int closed;
	int streams;
	/* client side */
	int done;
	long status;
	char body[4096];
	char error[256];
	int timed_out;
};

static int listen_any(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0)
		return -1;
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void h_hello(struct fd_http_req *req, void *arg)
{
	struct json_object *o = json_object_new_object();

	(void)arg;
	json_object_object_add(o, "hello", json_object_new_string("world"));
	fd_http_reply_json(req, 200, o);
}

static void h_echo(struct fd_http_req *req, void *arg)
{
	(void)arg;
	fd_http_reply_json(req, 201, json_object_get(fd_http_json(req)));
}

static void h_item(struct fd_http_req *req, void *arg)
{
	const char *q = fd_http_query(req, "q");
	char buf[256];

	(void)arg;
	snprintf(buf, sizeof(buf), "%s|%s", fd_http_subpath(req), q ? q : "");
	fd_http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static void on_req_close(struct fd_http_req *req, void *arg)
{
	struct fixture *f = arg;

	(void)req;
	f->closed++;
	f->pending = NULL;
}

static void reply_later(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct fixture *f = arg;

	(void)loop;
	(void)t;
	if (f->pending) {
		fd_http_reply_error(f->pending, 409, "later");
		f->pending = NULL;
	}
}

static void h_defer(struct fd_http_req *req, void *arg)
{
	struct fixture *f = arg;

	fd_http_defer(req);
	fd_http_on_close(req, on_req_close, f);
	f->pending = req;
	if (strcmp(fd_http_path(req), "/defer") == 0)
		fd_timer_arm(f->loop, &f->timer, 20);
}

static void stream_more(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct fixture *f = arg;
	char line[32];

	if (!f->pending)
		return;
	f->streams++;
	snprintf(line, sizeof(line), "{\"n\":%d}\n", f->streams);
	fd_http_stream_write(f->pending, line, strlen(line));
	if (f->streams == 3) {
		fd_http_stream_end(f->pending);
		f->pending = NULL;
		return;
	}
	fd_timer_arm(loop, t, 5);
}

static void h_stream(struct fd_http_req *req, void *arg)
{
	struct fixture *f = arg;

	REQUIRE(fd_http_stream_begin(req, "application/x-ndjson", 64) == 0);
	fd_http_on_close(req, on_req_close, f);
	f->pending = req;
	/* A write over the cap is refused, not queued. */
	CHECK_EQ(fd_http_stream_write(req,
				      "0123456789012345678901234567890123456789"
				      "0123456789012345678901234567890123456789",
				      80),
		 -1);
	if (strcmp(fd_http_path(req), "/stream") == 0) {
		fd_timer_init(&f->timer, stream_more, f);
		fd_timer_arm(f->loop, &f->timer, 5);
	}
}

static void setup_opts(struct fixture *f, struct fd_http_server_opts *o)
{
	struct fd_err err;

	memset(f, 0, sizeof(*f));
	f->loop = fd_loop_new();
	o->listen_fd = listen_any(&f->port);
	snprintf(f->base, sizeof(f->base), "127.0.0.1:%d", f->port);
	f->srv = fd_http_server_new(f->loop, o, &err);
	if (!f->srv)
		unit_fail(__FILE__, __LINE__, "server: %s", err.msg);
	f->cli = fd_http_client_new(f->loop, 0, &err);
	fd_timer_init(&f->timer, reply_later, f);
	fd_http_route(f->srv, "GET", "/hello", 0, h_hello, f);
	fd_http_route(f->srv, "PUT", "/echo", FD_HTTP_JSON, h_echo, f);
	fd_http_route(f->srv, "GET", "/items/", 0, h_item, f);
	fd_http_route(f->srv, "GET", "/defer", 0, h_defer, f);
	fd_http_route(f->srv, "GET", "/defer-forever", 0, h_defer, f);
	fd_http_route(f->srv, "GET", "/stream", 0, h_stream, f);
	fd_http_route(f->srv, "GET", "/stream-forever", 0, h_stream, f);
}

static void setup(struct fixture *f, size_t max_body)
{
	struct fd_http_server_opts o = {.max_body = max_body};

	setup_opts(f, &o);
}

static void teardown(struct fixture *f)
{
	fd_timer_disarm(f->loop, &f->timer);
	fd_http_client_free(f->cli);
	fd_http_server_free(f->srv);
	fd_loop_free(f->loop);
}

static void on_done(const struct fd_http_resp *r, void *arg)
{
	struct fixture *f = arg;

	f->done = 1;
	f->status = r->status;
	f->timed_out = r->timed_out;
	snprintf(f->body, sizeof(f->body), "%s", r->body);
	snprintf(f->error, sizeof(f->error), "%s", r->error ? r->error : "");
}

static int run_until(struct fixture *f, int *flag, int64_t ms)
{
	int64_t end = fd_loop_update_now(f->loop) + ms;

	while (!*flag && fd_loop_now(f->loop) < end)
		fd_loop_run_once(f->loop, 10);
	return *flag;
}

static void call(struct fixture *f, const char *method, const char *path,
		 const char *body, int64_t timeout)
{
	char url[128];

	f->done = 0;
	snprintf(url, sizeof(url), "http://%s%s", f->base, path);
	CHECK(fd_http_request(f->cli, method, url, body, body ? strlen(body) : 0,
			      NULL, timeout, on_done, f, NULL) != 0);
	CHECK(run_until(f, &f->done, 5000));
}

TEST(routes_and_errors)
{
	struct fixture f;

	setup(&f, 64);
	call(&f, "GET", "/hello", NULL, 2000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "{\"hello\":\"world\"}\n");
	call(&f, "PUT", "/echo", "{\"a\":[1,2]}", 2000);
	CHECK_EQ(f.status, 201);
	CHECK_STR(f.body, "{\"a\":[1,2]}\n");
	call(&f, "PUT", "/echo", "{\"a\":", 2000);
	CHECK_EQ(f.status, 400);
	CHECK(strstr(f.body, "\"error\":\"invalid request body") != NULL);
	call(&f, "PUT", "/echo",
	     "{\"a\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
	     2000);
	CHECK_EQ(f.status, 413);
	call(&f, "GET", "/nope", NULL, 2000);
	CHECK_EQ(f.status, 404);
	CHECK(strstr(f.body, "\"error\":") != NULL);
	call(&f, "DELETE", "/hello", NULL, 2000);
	CHECK_EQ(f.status, 405);
	call(&f, "GET", "/items/a%20b?q=x", NULL, 2000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "a b|x");
	teardown(&f);
}

/* ---- request bodies read as they are sent ---- */

struct sink {
	uint64_t len, hash;
};

static size_t sink_body(struct fd_http_req *req, const char *data, size_t len,
			int end, void *arg)
{
	struct sink *k = arg;
	char out[64];

	for (size_t i = 0; i < len; i++)
		k->hash = (k->hash ^ (unsigned char)data[i]) * 0x100000001b3ULL;
	k->len += len;
	if (end) {
		snprintf(out, sizeof(out), "%llu %llx",
			 (unsigned long long)k->len, (unsigned long long)k->hash);
		fd_http_reply(req, 200, "text/plain", out, strlen(out));
		free(k);
	}
	return len;
}

static void h_sink(struct fd_http_req *req, void *arg)
{
	struct sink *k = calloc(1, sizeof(*k));

	(void)arg;
	k->hash = 0xcbf29ce484222325ULL;
	fd_http_on_body(req, sink_body, k);
	fd_http_defer(req);
}

struct source {
	char *data;
	size_t len, pos;
	int reads;
};

static size_t source_read(char *buf, size_t max, void *arg)
{
	struct source *src = arg;
	size_t k = src->len - src->pos;
	char *moved;

	/* short reads, and the body moves between them */
	if (k > max)
		k = max;
	if (k > 1 && unit_rand_below(2))
		k = 1 + unit_rand_below(k);
	memcpy(buf, src->data + src->pos, k);
	src->pos += k;
	src->reads++;
	moved = malloc(src->len);
	memcpy(moved, src->data, src->len);
	memset(src->data, 0, src->len);
	free(src->data);
	src->data = moved;
	return k;
}

TEST(request_body_read_as_sent)
{
	struct fixture f;
	struct source src = {0};
	uint64_t hash = 0xcbf29ce484222325ULL;
	char url[128], want[64];

	setup(&f, 0);
	fd_http_route(f.srv, "POST", "/sink", FD_HTTP_STREAM_BODY, h_sink, &f);
	src.len = 3 * 1024 * 1024 + 17;
	src.data = malloc(src.len);
	for (size_t i = 0; i < src.len; i++) {
		src.data[i] = (char)unit_rand();
		hash = (hash ^ (unsigned char)src.data[i]) * 0x100000001b3ULL;
	}
	snprintf(url, sizeof(url), "http://%s/sink", f.base);
	CHECK(fd_http_request_read(f.cli, "POST", url, src.len, source_read,
				   &src, NULL, 10000, on_done, &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 10000));
	CHECK_EQ(f.status, 200);
	snprintf(want, sizeof(want), "%llu %llx", (unsigned long long)src.len,
		 (unsigned long long)hash);
	CHECK_STR(f.body, want);
	CHECK_EQ(src.pos, src.len);
	CHECK(src.reads > 1);
	free(src.data);
	teardown(&f);
}

/* ---- the fault gate holding requests (delay rules) ---- */

static int hold_gate(struct fd_http_req *req, void *arg)
{
	(void)arg;
	if (!fd_http_header(req, "X-Hold"))
		return 0;
	fd_http_hold(req, 150);
	return 1;
}

static void timed_call(struct fixture *f, const char *method, const char *path,
		       const char *body, int hold, int64_t *took)
{
	const char *hdrs[] = {"X-Hold: 1", NULL};
	char url[128];
	int64_t t0 = fd_loop_update_now(f->loop);

	f->done = 0;
	snprintf(url, sizeof(url), "http://%s%s", f->base, path);
	CHECK(fd_http_request(f->cli, method, url, body, body ? strlen(body) : 0,
			      hold ? hdrs : NULL, 5000, on_done, f, NULL) != 0);
	CHECK(run_until(f, &f->done, 5000));
	*took = fd_loop_update_now(f->loop) - t0;
}

TEST(gate_holds_requests_then_handles_them)
{
	struct fixture f;
	struct source src = {0};
	const char *hdrs[] = {"X-Hold: 1", NULL};
	char url[128];
	int64_t took, t0;

	setup(&f, 0);
	fd_http_route(f.srv, "POST", "/sink", FD_HTTP_STREAM_BODY, h_sink, &f);
	fd_http_server_set_gate(f.srv, hold_gate, &f);
	/* not held: at once; held: the handler runs after the delay */
	timed_call(&f, "GET", "/hello", NULL, 0, &took);
	CHECK_EQ(f.status, 200);
	CHECK(took < 150);
	timed_call(&f, "GET", "/hello", NULL, 1, &took);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "{\"hello\":\"world\"}\n");
	CHECK(took >= 150);
	/* a JSON body, and a handler that defers in turn */
	timed_call(&f, "PUT", "/echo", "{\"a\":1}", 1, &took);
	CHECK_EQ(f.status, 201);
	CHECK_STR(f.body, "{\"a\":1}\n");
	CHECK(took >= 150);
	timed_call(&f, "GET", "/defer", NULL, 1, &took);
	CHECK_EQ(f.status, 409);
	CHECK(took >= 150);
	/* a streamed body waits, then comes in whole */
	src.len = 256 * 1024 + 3;
	src.data = malloc(src.len);
	for (size_t i = 0; i < src.len; i++)
		src.data[i] = (char)unit_rand();
	snprintf(url, sizeof(url), "http://%s/sink", f.base);
	f.done = 0;
	t0 = fd_loop_update_now(f.loop);
	CHECK(fd_http_request_read(f.cli, "POST", url, src.len, source_read,
				   &src, hdrs, 10000, on_done, &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 10000));
	CHECK_EQ(f.status, 200);
	CHECK(fd_loop_update_now(f.loop) - t0 >= 150);
	CHECK_EQ(strtoull(f.body, NULL, 10), src.len);
	free(src.data);
	/* an empty streamed body: its end still reaches the handler */
	src = (struct source){0};
	f.done = 0;
	CHECK(fd_http_request_read(f.cli, "POST", url, 0, source_read, &src,
				   hdrs, 10000, on_done, &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 10000));
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "0 cbf29ce484222325");
	/* a client that gives up while held: the request goes quietly (no
	 * leak, no handler on a dead connection) */
	f.done = 0;
	snprintf(url, sizeof(url), "http://%s/hello", f.base);
	CHECK(fd_http_request(f.cli, "GET", url, NULL, 0, hdrs, 50, on_done, &f,
			      NULL) != 0);
	CHECK(run_until(&f, &f.done, 5000));
	CHECK(f.timed_out);
	f.done = 0;
	run_until(&f, &f.done, 300);
	teardown(&f);
}

TEST(deferred_reply)
{
	struct fixture f;

	setup(&f, 0);
	call(&f, "GET", "/defer", NULL, 2000);
	CHECK_EQ(f.status, 409);
	CHECK(strstr(f.body, "later") != NULL);
	CHECK_EQ(f.closed, 0);
	teardown(&f);
}

/* fd_http_reply_after: the stream write the handler made goes out before
 * the reply is built (the reply hook sees the stream drained), from a
 * handler run at once or held by the gate; a server freed with such a
 * reply pending lets go of it cleanly. */
static int after_handled, after_hooked;
static size_t after_queued_at_hook;

static void after_hook(struct fd_http_req *req, unsigned status,
		       const char *body, size_t len, void *arg)
{
	struct fixture *f = arg;

	(void)body;
	(void)len;
	if (strcmp(fd_http_path(req), "/after") || status != 200)
		return;
	after_hooked++;
	after_queued_at_hook = f->pending ? fd_http_stream_queued(f->pending) : 999;
}

static void h_after(struct fd_http_req *req, void *arg)
{
	struct fixture *f = arg;

	after_handled++;
	if (f->pending)
		fd_http_stream_write(f->pending, "x\n", 2);
	fd_http_reply_after(req, 200, "text/plain", "done", 4);
}

TEST(reply_after_the_stream_writes)
{
	struct fixture f;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *get = "GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n";
	char url[128], buf[512];
	int64_t took;
	int fd, zero = 0;

	setup(&f, 0);
	fd_http_route(f.srv, "GET", "/after", 0, h_after, &f);
	fd_http_server_set_reply_hook(f.srv, after_hook, &f);
	fd_http_server_set_gate(f.srv, hold_gate, &f);
	/* a stream to write to, from a raw client */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = htons((uint16_t)f.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	REQUIRE(write(fd, get, strlen(get)) == (ssize_t)strlen(get));
	for (int i = 0; i < 200 && !f.pending; i++)
		fd_loop_run_once(f.loop, 10);
	REQUIRE(f.pending != NULL);
	call(&f, "GET", "/after", NULL, 2000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "done");
	CHECK_EQ(after_hooked, 1);
	CHECK_EQ(after_queued_at_hook, 0); /* "x\n" had gone out */
	timed_call(&f, "GET", "/after", NULL, 1, &took);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "done");
	CHECK_EQ(after_hooked, 2);
	CHECK_EQ(after_queued_at_hook, 0);
	CHECK(read(fd, buf, sizeof(buf)) > 0);
	close(fd);
	/* pending when the server goes: freed, never answered */
	f.pending = NULL;
	snprintf(url, sizeof(url), "http://%s/after", f.base);
	CHECK(fd_http_request(f.cli, "GET", url, NULL, 0, NULL, 2000, on_done,
			      &f, NULL) != 0);
	for (int i = 0; i < 200 && after_handled < 3; i++)
		fd_loop_run_once(f.loop, 10);
	CHECK_EQ(after_handled, 3);
	run_until(&f, &zero, 0);
	teardown(&f);
}

TEST(client_timeout_closes_deferred_request)
{
	struct fixture f;

	setup(&f, 0);
	call(&f, "GET", "/defer-forever", NULL, 100);
	CHECK_EQ(f.status, 0);
	CHECK(f.timed_out);
	CHECK(f.error[0] != '\0');
	/* The server notices the client left while the request was suspended. */
	CHECK(run_until(&f, &f.closed, 3000));
	CHECK(f.pending == NULL);
	teardown(&f);
}

TEST(stream_delivers_then_ends)
{
	struct fixture f;

	setup(&f, 0);
	call(&f, "GET", "/stream", NULL, 5000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
	CHECK_EQ(f.closed, 0);
	teardown(&f);
}

TEST(stream_client_hangup_is_reported)
{
	struct fixture f;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char req[] = "GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n";
	int fd, started = 0;

	setup(&f, 0);
	sa.sin_port = htons((uint16_t)f.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK_EQ(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	for (int i = 0; i < 100 && !f.pending; i++)
		fd_loop_run_once(f.loop, 10);
	started = f.pending != NULL;
	CHECK(started);
	close(fd);
	CHECK(run_until(&f, &f.closed, 3000));
	teardown(&f);
}

TEST(server_free_closes_pending)
{
	struct fixture f;
	char url[128];

	setup(&f, 0);
	snprintf(url, sizeof(url), "http://%s/defer-forever", f.base);
	fd_http_request(f.cli, "GET", url, NULL, 0, NULL, 5000, on_done, &f, NULL);
	for (int i = 0; i < 100 && !f.pending; i++)
		fd_loop_run_once(f.loop, 10);
	CHECK(f.pending != NULL);
	fd_http_server_free(f.srv);
	f.srv = NULL;
	CHECK_EQ(f.closed, 1);
	CHECK(run_until(&f, &f.done, 3000));
	CHECK_EQ(f.status, 0);
	fd_http_client_free(f.cli);
	fd_loop_free(f.loop);
}

TEST(client_connection_refused_and_cancel)
{
	struct fixture f;
	char url[64];
	uint64_t h;
	int port;
	int fd;

	setup(&f, 0);
	fd = listen_any(&port);
	close(fd); /* nothing listens there now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	fd_http_request(f.cli, "GET", url, NULL, 0, NULL, 2000, on_done, &f, NULL);
	CHECK(run_until(&f, &f.done, 3000));
	CHECK_EQ(f.status, 0);
	CHECK(f.error[0] != '\0');
	f.done = 0;
	h = fd_http_request(f.cli, "GET", url, NULL, 0, NULL, 2000, on_done, &f, NULL);
	CHECK_EQ(fd_http_pending(f.cli), 1);
	fd_http_cancel(f.cli, h);
	CHECK_EQ(fd_http_pending(f.cli), 0);
	fd_loop_run_once(f.loop, 20);
	CHECK_EQ(f.done, 0);
	teardown(&f);
}

TEST(url_building)
{
	char buf[64];

	CHECK_EQ(fd_http_url(buf, sizeof(buf), "127.0.0.1:1", "/v1/info"), 0);
	CHECK_STR(buf, "http://127.0.0.1:1/v1/info");
	CHECK_EQ(fd_http_url(buf, 10, "127.0.0.1:1", "/v1/info"), -1);
}

/* ---- TLS ---- */

/* A CA, a server certificate for 127.0.0.1 (usable as a client one too),
 * a client certificate, and a second CA's client certificate, made with
 * the openssl command in a fresh directory. */
static char tls_dir[64];

static char *slurp(const char *name)
{
	char path[128];
	FILE *fp;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", tls_dir, name);
	fp = fopen(path, "r");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static void cleanup_certs(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
	if (tls_dir[0] && system(cmd) != 0)
		fprintf(stderr, "unable to remove %s\n", tls_dir);
}

static int make_certs(void)
{
	char cmd[4096];

	if (tls_dir[0])
		return 0;
	snprintf(tls_dir, sizeof(tls_dir), "/tmp/test_http_tls.XXXXXX");
	if (!mkdtemp(tls_dir))
		return -1;
	atexit(cleanup_certs);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && exec >log 2>&1 && "
		 "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1; } && "
		 "ca() { key $1.key && openssl req -x509 -new -key $1.key -subj /CN=$1 -days 2 -out $1.pem; } && "
		 "cert() { key $2.key && openssl req -new -key $2.key -subj /CN=$2 -out $2.csr && "
		 "  printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' >$2.ext && "
		 "  openssl x509 -req -in $2.csr -CA $1.pem -CAkey $1.key -CAcreateserial -days 2 -extfile $2.ext -out $2.pem; } && "
		 "ca ca && ca other && cert ca server && cert ca client && cert other stranger",
		 tls_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void setup_tls(struct fixture *f, int verify)
{
	struct fd_http_server_opts o = {0};
	char *cert = slurp("server.pem"), *key = slurp("server.key");
	char *ca = slurp("ca.pem");

	o.tls_cert = cert;
	o.tls_key = key;
	o.tls_ca = ca;
	o.tls_verify_client = verify;
	setup_opts(f, &o);
	free(cert);
	free(key);
	free(ca);
}

static void client_tls(struct fixture *f, const char *ca, const char *cert)
{
	char c[128], k[128], a[128];

	snprintf(a, sizeof(a), "%s/%s.pem", tls_dir, ca ? ca : "");
	snprintf(c, sizeof(c), "%s/%s.pem", tls_dir, cert ? cert : "");
	snprintf(k, sizeof(k), "%s/%s.key", tls_dir, cert ? cert : "");
	CHECK_EQ(fd_http_client_set_tls(f->cli, ca ? a : NULL, cert ? c : NULL,
					cert ? k : NULL),
		 0);
}

TEST(tls_routes_streams_and_bodies)
{
	struct fixture f;
	struct source src = {0};
	uint64_t hash = 0xcbf29ce484222325ULL;
	char url[128], want[64];

	REQUIRE(make_certs() == 0);
	setup_tls(&f, 0);
	REQUIRE(f.srv);
	fd_http_route(f.srv, "POST", "/sink", FD_HTTP_STREAM_BODY, h_sink, &f);
	client_tls(&f, "ca", NULL);
	/* an http:// URL goes over https: the client is a TLS one */
	call(&f, "GET", "/hello", NULL, 5000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "{\"hello\":\"world\"}\n");
	call(&f, "PUT", "/echo", "{\"a\":1}", 5000);
	CHECK_EQ(f.status, 201);
	call(&f, "GET", "/defer", NULL, 5000);
	CHECK_EQ(f.status, 409);
	call(&f, "GET", "/stream", NULL, 5000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
	src.len = 3 * 1024 * 1024 + 17;
	src.data = malloc(src.len);
	for (size_t i = 0; i < src.len; i++) {
		src.data[i] = (char)unit_rand();
		hash = (hash ^ (unsigned char)src.data[i]) * 0x100000001b3ULL;
	}
	f.done = 0;
	snprintf(url, sizeof(url), "https://%s/sink", f.base);
	CHECK(fd_http_request_read(f.cli, "POST", url, src.len, source_read,
				   &src, NULL, 20000, on_done, &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 20000));
	CHECK_EQ(f.status, 200);
	snprintf(want, sizeof(want), "%llu %llx", (unsigned long long)src.len,
		 (unsigned long long)hash);
	CHECK_STR(f.body, want);
	free(src.data);
	teardown(&f);
}

TEST(tls_client_needs_the_ca)
{
	struct fixture f;

	REQUIRE(make_certs() == 0);
	setup_tls(&f, 0);
	REQUIRE(f.srv);
	client_tls(&f, "other", NULL); /* the wrong CA */
	call(&f, "GET", "/hello", NULL, 5000);
	CHECK_EQ(f.status, 0);
	CHECK(strstr(f.error, "certificate") != NULL);
	teardown(&f);
	/* plain HTTP to a TLS port gets no answer */
	setup_tls(&f, 0);
	call(&f, "GET", "/hello", NULL, 2000);
	CHECK_EQ(f.status, 0);
	teardown(&f);
}

TEST(tls_client_certificates)
{
	struct fixture f;

	REQUIRE(make_certs() == 0);
	setup_tls(&f, 1);
	REQUIRE(f.srv);
	client_tls(&f, "ca", NULL);
	call(&f, "GET", "/hello", NULL, 5000);
	CHECK_EQ(f.status, 403);
	CHECK(strstr(f.body,
		     "client certificate required: no client certificate was presented"));
	client_tls(&f, "ca", "stranger"); /* signed by another CA */
	call(&f, "GET", "/hello", NULL, 5000);
	CHECK_EQ(f.status, 403);
	CHECK(strstr(f.body, "the client certificate is not trusted"));
	client_tls(&f, "ca", "client");
	call(&f, "GET", "/hello", NULL, 5000);
	CHECK_EQ(f.status, 200);
	call(&f, "GET", "/stream", NULL, 5000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
	teardown(&f);
}

TEST(tls_options_checked)
{
	struct fd_http_server_opts o = {0};
	struct fd_loop *loop = fd_loop_new();
	struct fd_err err;
	int port;

	REQUIRE(make_certs() == 0);
	o.listen_fd = listen_any(&port);
	o.tls_cert = "x";
	CHECK(fd_http_server_new(loop, &o, &err) == NULL);
	CHECK_STR(err.msg, "TLS needs both a certificate and a key");
	o.tls_key = "-----BEGIN PRIVATE KEY-----\nbad\n-----END PRIVATE KEY-----\n";
	CHECK(fd_http_server_new(loop, &o, &err) == NULL);
	CHECK_STR(err.msg, "the certificate does not load: No certificate was found.");
	o.tls_cert = o.tls_key = NULL;
	o.tls_verify_client = 1;
	CHECK(fd_http_server_new(loop, &o, &err) == NULL);
	CHECK_STR(err.msg, "client verification needs TLS");
	/* a certificate reload needs a TLS server */
	o.tls_verify_client = 0;
	{
		struct fd_http_server *srv = fd_http_server_new(loop, &o, &err);

		REQUIRE(srv != NULL);
		CHECK_EQ(fd_http_server_reload_tls(srv, "x", "y", &err), -1);
		CHECK_STR(err.msg, "this server does not serve TLS");
		fd_http_server_free(srv);
	}
	fd_loop_free(loop);
}

/* ---- authorization hook ---- */

static int freed_auth;

static void free_auth(void *p)
{
	freed_auth++;
	free(p);
}

static int auth_hook(struct fd_http_req *req, unsigned flags, void *arg)
{
	const char *who = fd_http_header(req, "Authorization");

	(void)arg;
	CHECK(fd_http_peer_local(req));
	if (flags & FD_HTTP_OPEN)
		return 0;
	if (!who || strcmp(who, "Bearer good") != 0) {
		fd_http_reply_error(req, 401, "who are you");
		return 1;
	}
	fd_http_set_auth_data(req, strdup("good"), free_auth);
	return 0;
}

static void h_whoami(struct fd_http_req *req, void *arg)
{
	const char *who = fd_http_auth_data(req);

	(void)arg;
	fd_http_reply(req, 200, "text/plain", who ? who : "-",
		      strlen(who ? who : "-"));
}

TEST(auth_hook_runs_before_the_body)
{
	struct fixture f;
	static const char *const good[] = {"Authorization: Bearer good", NULL};
	char big[200000], url[128];

	setup(&f, 1 << 20);
	fd_http_server_set_auth(f.srv, auth_hook, NULL);
	fd_http_route(f.srv, "GET", "/open", FD_HTTP_OPEN, h_whoami, &f);
	fd_http_route(f.srv, "GET", "/who", 0, h_whoami, &f);
	fd_http_route(f.srv, "POST", "/sink", FD_HTTP_STREAM_BODY, h_sink, &f);
	call(&f, "GET", "/open", NULL, 2000);
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "-");
	call(&f, "GET", "/who", NULL, 2000);
	CHECK_EQ(f.status, 401);
	CHECK(strstr(f.body, "who are you"));
	/* a refused body is read and dropped; the connection lives on */
	memset(big, '{', sizeof(big));
	snprintf(url, sizeof(url), "http://%s/echo", f.base);
	f.done = 0;
	CHECK(fd_http_request(f.cli, "PUT", url, big, sizeof(big), NULL, 5000,
			      on_done, &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 5000));
	CHECK_EQ(f.status, 401);
	snprintf(url, sizeof(url), "http://%s/sink", f.base);
	f.done = 0;
	CHECK(fd_http_request(f.cli, "POST", url, big, sizeof(big), NULL, 5000,
			      on_done, &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 5000));
	CHECK_EQ(f.status, 401);
	snprintf(url, sizeof(url), "http://%s/who", f.base);
	f.done = 0;
	CHECK(fd_http_request(f.cli, "GET", url, NULL, 0, good, 5000, on_done,
			      &f, NULL) != 0);
	CHECK(run_until(&f, &f.done, 5000));
	CHECK_EQ(f.status, 200);
	CHECK_STR(f.body, "good");
	teardown(&f);
	CHECK_EQ(freed_auth, 1);
}
