#include "client.h"
#include "acl.h"
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "jsonl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RESP (64 * 1024 * 1024)

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct fd_buf *b = userdata;

	return fd_buf_append(b, ptr, size * nmemb) < 0 ? 0 : size * nmemb;
}

struct fd_client_sec fd_client_sec;

int fd_client_opt(int c, const char *arg)
{
	switch (c) {
	case FD_OPT_TLS_CA: fd_client_sec.tls_ca = arg; return 1;
	case FD_OPT_TLS_CERT: fd_client_sec.tls_cert = arg; return 1;
	case FD_OPT_TLS_KEY: fd_client_sec.tls_key = arg; return 1;
	case FD_OPT_TOKEN: fd_client_sec.token = arg; return 1;
	default: return 0;
	}
}

/* The option's value, else the environment's (empty counts as unset). */
static const char *sec_value(const char *opt, const char *env)
{
	const char *v = getenv(env);

	if (opt)
		return opt;
	return v && *v ? v : NULL;
}

static int check_file(const char *what, const char *path, struct fd_err *err)
{
	if (path && access(path, R_OK) < 0)
		return fd_err_set(err, "unable to read %s '%s': %s", what, path,
				  strerror(errno));
	return 0;
}

int fd_client_init(struct fd_client *c, const char *addr, int64_t timeout_ms,
		   struct fd_err *err)
{
	const char *ca = sec_value(fd_client_sec.tls_ca, "FD_TLS_CA");
	const char *cert = sec_value(fd_client_sec.tls_cert, "FD_TLS_CERT");
	const char *key = sec_value(fd_client_sec.tls_key, "FD_TLS_KEY");
	const char *token = sec_value(fd_client_sec.token, "FD_TOKEN");
	const char *a = addr;
	char host[256];
	int port, scheme = -1; /* -1: none given, 0 http, 1 https */

	memset(c, 0, sizeof(*c));
	if (strncmp(a, "https://", 8) == 0) {
		scheme = 1;
		a += 8;
	} else if (strncmp(a, "http://", 7) == 0) {
		scheme = 0;
		a += 7;
	}
	if (fd_parse_hostport(a, host, sizeof(host), -1, &port) < 0 || port == 0)
		return fd_err_set(err,
				  "invalid node address '%s' (expected HOST:PORT or "
				  "https://HOST:PORT)",
				  addr);
	snprintf(c->addr, sizeof(c->addr), "%s%s%s:%d", strchr(host, ':') ? "[" : "",
		 host, strchr(host, ':') ? "]" : "", port);
	c->tls = scheme >= 0 ? scheme : ca || cert;
	if (key && !cert)
		return fd_err_set(err, "a TLS key without a certificate (--tls-cert)");
	if (check_file("the TLS CA", ca, err) < 0 ||
	    check_file("the TLS certificate", cert, err) < 0 ||
	    check_file("the TLS key", key, err) < 0)
		return -1;
	fd_client_sec.tls_ca = ca;
	fd_client_sec.tls_cert = cert;
	fd_client_sec.tls_key = key;
	if (token) {
		size_t n = strlen(token);

		if (!fd_acl_token_valid(token, n))
			return fd_err_set(err, "invalid token (1 to %d visible ASCII characters)",
					  FD_ACL_MAX_TOKEN);
		c->auth = malloc(n + 32);
		if (!c->auth)
			return fd_err_set(err, "out of memory");
		snprintf(c->auth, n + 32, "Authorization: Bearer %s", token);
	}
	c->timeout_ms = timeout_ms;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    !(c->curl = curl_easy_init())) {
		free(c->auth);
		c->auth = NULL;
		return fd_err_set(err, "unable to start the HTTP client");
	}
	c->headers = curl_slist_append(NULL, "Expect:");
	c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
	if (c->auth)
		c->headers = curl_slist_append(c->headers, c->auth);
	return 0;
}

void fd_client_release(struct fd_client *c)
{
	if (c->curl) {
		curl_easy_cleanup(c->curl);
		curl_global_cleanup();
	}
	curl_slist_free_all(c->headers);
	free(c->auth);
	c->curl = NULL;
	c->headers = NULL;
	c->auth = NULL;
}

const char *fd_client_scheme(const struct fd_client *c)
{
	return c->tls ? "https" : "http";
}

void fd_client_setup_curl(const struct fd_client *c, void *curl)
{
	curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* straight to the node */
	if (!c->tls)
		return;
	if (fd_client_sec.tls_ca)
		curl_easy_setopt(curl, CURLOPT_CAINFO, fd_client_sec.tls_ca);
	if (fd_client_sec.tls_cert) {
		curl_easy_setopt(curl, CURLOPT_SSLCERT, fd_client_sec.tls_cert);
		curl_easy_setopt(curl, CURLOPT_SSLKEY,
				 fd_client_sec.tls_key ? fd_client_sec.tls_key
						       : fd_client_sec.tls_cert);
	}
}

/* Applies the client's local address (see fd_client_send_from). */
static void send_from(const struct fd_client *c, CURL *h)
{
	if (c->local[0])
		curl_easy_setopt(h, CURLOPT_INTERFACE, c->local);
}

int fd_client_send_from(struct fd_client *c, const char *ip)
{
	if (!ip) {
		c->local[0] = 0;
		return 0;
	}
	if (strlen(ip) + 6 > sizeof(c->local)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(c->local, sizeof(c->local), "host!%s", ip);
	return 0;
}

/* A hint for the usual TLS mismatches, after a transport error. */
static const char *hint(const struct fd_client *c, CURLcode rc)
{
	if (!c->tls && (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR))
		return " (if the node uses TLS: an https:// address or --tls-ca)";
	if (c->tls && rc == CURLE_SSL_CONNECT_ERROR)
		return " (if the node does not use TLS: an http:// address, "
		       "no --tls-* options)";
	if (c->tls && rc == CURLE_PEER_FAILED_VERIFICATION)
		return " (--tls-ca: the CA that signed the node's certificate)";
	return "";
}

/* The URL of path on c's node, and c's TLS settings on h (after a reset). */
static int prepare(struct fd_client *c, CURL *h, char *url, size_t len,
		   const char *path, struct fd_err *err)
{
	if ((size_t)snprintf(url, len, "%s://%s%s", fd_client_scheme(c),
			     c->addr, path) >= len)
		return fd_err_set(err, "path too long");
	curl_easy_reset(h);
	send_from(c, h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	fd_client_setup_curl(c, h);
	return 0;
}

int fd_client_call(struct fd_client *c, const char *method, const char *path,
		   struct json_object *body, long *status,
		   struct json_object **resp, struct fd_err *err)
{
	char url[1024], errbuf[CURL_ERROR_SIZE] = "";
	struct fd_buf s = FD_BUF_INIT(MAX_RESP);
	const char *b = NULL;
	size_t blen = 0;
	CURLcode rc;
	CURL *h = c->curl;

	*status = 0;
	*resp = NULL;
	if (prepare(c, h, url, sizeof(url), path, err) < 0)
		return -1;
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	if (body) {
		b = fd_json_str(body, &blen);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		fd_buf_release(&s);
		if (rc == CURLE_WRITE_ERROR)
			return fd_err_set(err, "answer from '%s' too large", c->addr);
		errno = rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNREFUSED;
		return fd_err_set(err, "unable to reach '%s': %s%s", c->addr,
				  errbuf[0] ? errbuf : curl_easy_strerror(rc),
				  hint(c, rc));
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (s.len)
		*resp = fd_json_parse(s.data, s.len, NULL);
	fd_buf_release(&s);
	return 0;
}

int fd_client_call_ok(struct fd_client *c, const char *method, const char *path,
		      struct json_object *body, long *status,
		      struct json_object **resp, struct fd_err *err)
{
	const char *msg;

	if (fd_client_call(c, method, path, body, status, resp, err) < 0)
		return -1;
	if (*status >= 200 && *status < 300)
		return 0;
	msg = fd_json_get_str(*resp, "error");
	fd_err_set(err, "%s", msg ? msg : "unexpected answer");
	if (!msg)
		fd_err_set(err, "'%s' answered HTTP %ld", c->addr, *status);
	return -1;
}

/* Lines */

#define DEFAULT_MAX_LINE (16 * 1024 * 1024)
#define MAX_ERROR_BODY (64 * 1024)
#define TICK_MS 200

struct lines_ctx {
	struct fd_client_lines *l;
	CURL *h;
	struct fd_buf part;    /* a line begun in an earlier piece */
	struct fd_buf errbody; /* the body of a non-2xx answer */
	int began, ok, too_long;
	int64_t last_tick;
};

/* Hands one line to the callback; returns non-zero to stop. */
static int lines_one(struct lines_ctx *x, const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return 0;
	x->l->lines++;
	if (x->l->on_line(line, len, x->l->arg)) {
		x->l->stopped = 1;
		return 1;
	}
	return 0;
}

static size_t lines_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct lines_ctx *x = userdata;
	size_t n = size * nmemb, max = x->l->max_line;
	const char *p = ptr, *end = ptr + n, *nl;

	if (!x->began) {
		x->began = 1;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->l->status);
		x->ok = x->l->status >= 200 && x->l->status < 300;
	}
	if (!x->ok) {
		/* Keep the start of an error body; drop the rest. */
		if (x->errbody.len < x->errbody.max)
			fd_buf_append(&x->errbody, p,
				      n < x->errbody.max - x->errbody.len
					      ? n
					      : x->errbody.max - x->errbody.len);
		return n;
	}
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			if ((size_t)(end - p) > max - x->part.len) {
				x->too_long = 1;
				return 0;
			}
			if (fd_buf_append(&x->part, p, (size_t)(end - p)) < 0)
				return 0;
			break;
		}
		if (x->part.len) {
			if ((size_t)(nl - p) > max - x->part.len) {
				x->too_long = 1;
				return 0;
			}
			if (fd_buf_append(&x->part, p, (size_t)(nl - p)) < 0)
				return 0;
			if (lines_one(x, x->part.data, x->part.len))
				return 0;
			fd_buf_clear(&x->part);
		} else {
			if ((size_t)(nl - p) > max) {
				x->too_long = 1;
				return 0;
			}
			if (lines_one(x, p, (size_t)(nl - p)))
				return 0;
		}
		p = nl + 1;
	}
	return n;
}

static int lines_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	struct lines_ctx *x = userdata;
	int64_t now = fd_mono_ms();

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (now - x->last_tick < TICK_MS)
		return 0;
	x->last_tick = now;
	if (x->l->on_tick(x->l->arg)) {
		x->l->stopped = 1;
		return 1;
	}
	return 0;
}

int fd_client_lines(struct fd_client *c, struct fd_client_lines *l, struct fd_err *err)
{
	char url[1024], errbuf[CURL_ERROR_SIZE] = "", ctype[128];
	struct lines_ctx x = {
		.l = l,
		.h = c->curl,
		.part = FD_BUF_INIT(l->max_line ? l->max_line : DEFAULT_MAX_LINE),
		.errbody = FD_BUF_INIT(MAX_ERROR_BODY),
		.last_tick = fd_mono_ms()};
	struct curl_slist *headers = NULL;
	struct json_object *eo;
	const char *msg;
	CURLcode rc;
	CURL *h = c->curl;
	int ret = -1, saved;

	l->status = 0;
	l->stopped = l->timed_out = 0;
	l->lines = 0;
	if (!l->max_line)
		l->max_line = DEFAULT_MAX_LINE;
	if (prepare(c, h, url, sizeof(url), l->path, err) < 0)
		return -1;
	snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		 l->content_type ? l->content_type : "application/json");
	headers = curl_slist_append(headers, "Expect:");
	headers = curl_slist_append(headers, ctype);
	if (c->auth)
		headers = curl_slist_append(headers, c->auth);
	if (!headers)
		return fd_err_set(err, "out of memory");
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, l->method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, lines_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	if (l->on_tick) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, lines_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	}
	if (l->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, l->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)l->len);
	} else if (strcmp(l->method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	rc = curl_easy_perform(h);
	if (!x.began) {
		/* An answer without a body (yet): its status, or 0 for none. */
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &l->status);
		x.ok = l->status >= 200 && l->status < 300;
	}
	if (l->stopped) {
		ret = 1;
	} else if (x.too_long) {
		fd_err_set(err, "a line of the answer from '%s' is longer than %zu bytes",
			   c->addr, l->max_line);
		errno = EMSGSIZE;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		l->timed_out = 1;
		fd_err_set(err, "no answer from '%s' in time", c->addr);
		errno = ETIMEDOUT;
	} else if (rc != CURLE_OK) {
		if (x.began)
			fd_err_set(err, "connection to '%s' lost: %s", c->addr,
				   errbuf[0] ? errbuf : curl_easy_strerror(rc));
		else
			fd_err_set(err, "unable to reach '%s': %s%s", c->addr,
				   errbuf[0] ? errbuf : curl_easy_strerror(rc),
				   hint(c, rc));
		errno = rc == CURLE_WRITE_ERROR ? ENOMEM : ECONNREFUSED;
	} else if (!x.ok) {
		eo = x.errbody.len
			     ? fd_json_parse(x.errbody.data, x.errbody.len, NULL)
			     : NULL;
		msg = fd_json_get_str(eo, "error");
		if (msg)
			fd_err_set(err, "%s", msg);
		else
			fd_err_set(err, "'%s' answered HTTP %ld", c->addr, l->status);
		json_object_put(eo);
		errno = EPROTO;
	} else if (x.part.len && lines_one(&x, x.part.data, x.part.len)) {
		ret = 1;
	} else {
		ret = 0;
	}
	saved = errno;
	fd_buf_release(&x.part);
	fd_buf_release(&x.errbody);
	curl_slist_free_all(headers);
	errno = saved;
	return ret;
}

char *fd_client_escape(struct fd_client *c, const char *s)
{
	char *e = curl_easy_escape(c->curl, s, (int)strlen(s)), *copy;

	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	copy = strdup(e);
	curl_free(e);
	return copy;
}

/* Streaming */

struct rd {
	fd_client_read_fn fn;
	void *arg;
};

static size_t on_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct rd *r = userdata;
	size_t n = r->fn(buf, size * nmemb, r->arg);

	return n == FD_CLIENT_ABORT ? CURL_READFUNC_ABORT : n;
}

static int post_common(struct fd_client *c, const char *path,
		       const char *content_type, struct rd *r, const char *body,
		       size_t blen, long *status, struct json_object **resp,
		       struct fd_err *err)
{
	char url[1024], errbuf[CURL_ERROR_SIZE] = "", ctype[256];
	struct fd_buf s = FD_BUF_INIT(MAX_RESP);
	struct curl_slist *h = NULL;
	CURLcode rc;
	CURL *e = c->curl;

	*status = 0;
	*resp = NULL;
	if (prepare(c, e, url, sizeof(url), path, err) < 0)
		return -1;
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, ctype);
	if (r)
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
	if (c->auth)
		h = curl_slist_append(h, c->auth);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	if (r) {
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, r);
		curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
		if (c->timeout_ms > 0)
			curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
					 (long)c->timeout_ms);
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
		if (c->timeout_ms > 0)
			curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	}
	rc = curl_easy_perform(e);
	curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		fd_buf_release(&s);
		if (rc == CURLE_ABORTED_BY_CALLBACK) {
			errno = ECANCELED;
			return fd_err_set(err, "request aborted");
		}
		errno = rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNREFUSED;
		return fd_err_set(err, "unable to reach '%s': %s%s", c->addr,
				  errbuf[0] ? errbuf : curl_easy_strerror(rc),
				  hint(c, rc));
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	if (s.len)
		*resp = fd_json_parse(s.data, s.len, NULL);
	fd_buf_release(&s);
	return 0;
}

int fd_client_post_stream(struct fd_client *c, const char *path,
			  const char *content_type, fd_client_read_fn fn,
			  void *arg, long *status, struct json_object **resp,
			  struct fd_err *err)
{
	struct rd r = {fn, arg};

	return post_common(c, path, content_type, &r, NULL, 0, status, resp, err);
}

int fd_client_post_bytes(struct fd_client *c, const char *path,
			 const char *content_type, const char *body, size_t len,
			 long *status, struct json_object **resp, struct fd_err *err)
{
	return post_common(c, path, content_type, NULL, body, len, status, resp, err);
}

struct wr {
	CURL *e;
	fd_client_write_fn fn;
	void *arg;
	int checked, ok, stopped;
	struct fd_buf errbody;
};

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct wr *w = userdata;
	size_t n = size * nmemb;

	if (!w->checked) {
		long st = 0;

		curl_easy_getinfo(w->e, CURLINFO_RESPONSE_CODE, &st);
		w->checked = 1;
		w->ok = st >= 200 && st < 300;
		if (w->ok && w->fn(ptr, 0, w->arg) != 0) {
			w->stopped = 1;
			return 0;
		}
	}
	if (!w->ok) {
		fd_buf_append(&w->errbody, ptr, n);
		return n;
	}
	if (w->fn(ptr, n, w->arg) != 0) {
		w->stopped = 1;
		return 0;
	}
	return n;
}

/* The end of the headers: a 2xx answer is "connected" (fn gets len 0). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct wr *w = userdata;
	size_t n = size * nmemb;

	if (n <= 2 && (ptr[0] == '\r' || ptr[0] == '\n') && !w->checked) {
		long st = 0;

		curl_easy_getinfo(w->e, CURLINFO_RESPONSE_CODE, &st);
		if (st >= 100 && st < 200)
			return n; /* an interim answer */
		w->checked = 1;
		w->ok = st >= 200 && st < 300;
		if (w->ok && w->fn(ptr, 0, w->arg) != 0) {
			w->stopped = 1;
			return 0;
		}
	}
	return n;
}

int fd_client_get_stream(struct fd_client *c, const char *path,
			 int64_t timeout_ms, fd_client_write_fn fn, void *arg,
			 long *status, struct fd_err *err)
{
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	struct wr w = {c->curl, fn, arg, 0, 0, 0, FD_BUF_INIT(64 * 1024)};
	CURLcode rc;
	CURL *e = c->curl;

	*status = 0;
	if (prepare(c, e, url, sizeof(url), path, err) < 0)
		return -1;
	if (c->auth)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &w);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(c->timeout_ms > 0 ? c->timeout_ms : 5000));
	if (timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	if (w.checked && !w.ok) {
		struct json_object *o =
			fd_json_parse(w.errbody.data, w.errbody.len, NULL);
		const char *msg = fd_json_get_str(o, "error");

		fd_err_set(err, "%s", msg ? msg : "unexpected answer");
		if (!msg)
			fd_err_set(err, "'%s' answered HTTP %ld", c->addr, *status);
		json_object_put(o);
		fd_buf_release(&w.errbody);
		errno = EPROTO;
		return -1;
	}
	fd_buf_release(&w.errbody);
	if (rc == CURLE_OK)
		return 0;
	if (w.stopped) {
		errno = ECANCELED;
		return fd_err_set(err, "stopped");
	}
	if (rc == CURLE_OPERATION_TIMEDOUT)
		errno = ETIMEDOUT;
	else if (rc == CURLE_COULDNT_CONNECT ||
		 rc == CURLE_COULDNT_RESOLVE_HOST || !w.checked)
		errno = ECONNREFUSED;
	else
		errno = ECONNRESET;
	{
		int e2 = errno;

		fd_err_set(err, "unable to reach '%s': %s%s", c->addr,
			   errbuf[0] ? errbuf : curl_easy_strerror(rc),
			   hint(c, rc));
		errno = e2;
	}
	return -1;
}
