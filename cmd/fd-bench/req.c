#include "req.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct req *q = arg;

	if (fd_buf_append(&q->resp, p, size * n) < 0)
		return 0; /* aborts the transfer */
	return size * n;
}

int req_init(struct req *q, const char *addr, int64_t timeout_ms, struct fd_err *err)
{
	memset(q, 0, sizeof(*q));
	q->resp = (struct fd_buf)FD_BUF_INIT(REQ_RESP_MAX);
	if ((size_t)snprintf(q->base, sizeof(q->base), "http://%s", addr) >=
	    sizeof(q->base))
		return fd_err_set(err, "address too long: '%s'", addr);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return fd_err_set(err, "unable to start the HTTP client");
	q->curl = curl_easy_init();
	/* No "Expect: 100-continue" wait before large bodies. */
	q->hdrs = curl_slist_append(NULL, "Expect:");
	if (!q->curl || !q->hdrs) {
		if (!q->curl)
			curl_global_cleanup();
		req_release(q);
		return fd_err_set(err, "out of memory");
	}
	curl_easy_setopt(q->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(q->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(q->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(q->curl, CURLOPT_HTTPHEADER, q->hdrs);
	curl_easy_setopt(q->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(q->curl, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->curl, CURLOPT_PRIVATE, q);
	return 0;
}

void req_release(struct req *q)
{
	if (q->curl) {
		curl_easy_cleanup(q->curl);
		curl_global_cleanup();
	}
	curl_slist_free_all(q->hdrs);
	fd_buf_release(&q->resp);
	q->curl = NULL;
	q->hdrs = NULL;
}

int req_prepare(struct req *q, const char *method, const char *path,
		const char *body, size_t len)
{
	char url[512];

	if ((size_t)snprintf(url, sizeof(url), "%s%s", q->base, path) >= sizeof(url))
		return -1;
	fd_buf_release(&q->resp);
	q->status = 0;
	curl_easy_setopt(q->curl, CURLOPT_URL, url);
	curl_easy_setopt(q->curl, CURLOPT_PROXY, ""); /* local nodes, directly */
	if (body) {
		curl_easy_setopt(q->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(q->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	} else {
		curl_easy_setopt(q->curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(q->curl, CURLOPT_CUSTOMREQUEST,
			 strcmp(method, body ? "POST" : "GET") ? method : NULL);
	return 0;
}

int req_finished(struct req *q, int cc, struct fd_err *err)
{
	if (cc != CURLE_OK)
		return fd_err_set(err, "unable to reach '%s': %s", q->base + 7,
				  curl_easy_strerror((CURLcode)cc));
	curl_easy_getinfo(q->curl, CURLINFO_RESPONSE_CODE, &q->status);
	return 0;
}

int req_do(struct req *q, const char *method, const char *path,
	   const char *body, size_t len, struct fd_err *err)
{
	if (req_prepare(q, method, path, body, len) < 0)
		return fd_err_set(err, "path too long");
	return req_finished(q, curl_easy_perform(q->curl), err);
}
