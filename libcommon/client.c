#include "client.h"
#include "cli.h"
#include "jsonl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESP (64 * 1024 * 1024)

struct sink {
	char *buf;
	size_t len, cap;
	int overflow;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;

	if (s->len + n > MAX_RESP) {
		s->overflow = 1;
		return 0;
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *b;

		while (cap < s->len + n + 1)
			cap *= 2;
		b = realloc(s->buf, cap);
		if (!b)
			return 0;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, ptr, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

int fd_client_init(struct fd_client *c, const char *addr, int64_t timeout_ms,
		   struct fd_err *err)
{
	char host[256];
	int port;

	memset(c, 0, sizeof(*c));
	if (fd_parse_hostport(addr, host, sizeof(host), -1, &port) < 0 || port == 0)
		return fd_err_set(err, "invalid node address '%s' (expected HOST:PORT)",
				  addr);
	snprintf(c->addr, sizeof(c->addr), "%s%s%s:%d", strchr(host, ':') ? "[" : "",
		 host, strchr(host, ':') ? "]" : "", port);
	c->timeout_ms = timeout_ms;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    !(c->curl = curl_easy_init()))
		return fd_err_set(err, "unable to start the HTTP client");
	c->headers = curl_slist_append(NULL, "Expect:");
	c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
	return 0;
}

void fd_client_release(struct fd_client *c)
{
	if (c->curl) {
		curl_easy_cleanup(c->curl);
		curl_global_cleanup();
	}
	curl_slist_free_all(c->headers);
	c->curl = NULL;
	c->headers = NULL;
}

int fd_client_call(struct fd_client *c, const char *method, const char *path,
		   struct json_object *body, long *status,
		   struct json_object **resp, struct fd_err *err)
{
	char url[1024], errbuf[CURL_ERROR_SIZE] = "";
	struct sink s = {0};
	const char *b = NULL;
	size_t blen = 0;
	CURLcode rc;
	CURL *h = c->curl;

	*status = 0;
	*resp = NULL;
	if ((size_t)snprintf(url, sizeof(url), "http://%s%s", c->addr, path) >=
	    sizeof(url))
		return fd_err_set(err, "path too long");
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
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
		free(s.buf);
		if (s.overflow)
			return fd_err_set(err, "answer from '%s' too large", c->addr);
		errno = rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNREFUSED;
		return fd_err_set(err, "unable to reach '%s': %s", c->addr,
				  errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (s.buf)
		*resp = fd_json_parse(s.buf, s.len, NULL);
	free(s.buf);
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
