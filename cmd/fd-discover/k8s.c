/* kubernetes: the API server's endpoints or pods (k8s.h), one GET per poll
 * with libcurl (a CLI asks one thing at a time, so the request blocks; the
 * node uses the loop-driven source of the same settings). An error, an
 * answer other than 200, or an answer with no ready peer is a failed poll:
 * it removes nothing. */
#include "cli.h"
#include "jsonl.h"
#include "k8s.h"
#include "strategy.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ANSWER (16 * 1024 * 1024)
#define REQUEST_TIMEOUT_MS 10000

struct body {
	char *buf;
	size_t len, cap;
	int too_big;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (b->len + len + 1 > MAX_ANSWER) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *nb;

		while (cap < b->len + len + 1)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, ptr, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return len;
}

int k8s_get(const struct fd_k8s *k, const char *url, char **out, size_t *len,
	    long *status, struct fd_err *err)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	struct body b = {0};
	char auth[16500], ebuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	if (!c || !hdrs) {
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		return fd_err_set(err, "out of memory");
	}
	if (fd_k8s_auth(k, auth, sizeof(auth), err) < 0) {
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		return -1;
	}
	if (auth[0])
		hdrs = curl_slist_append(hdrs, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
	if (k->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
	rc = curl_easy_perform(c);
	explicit_bzero(auth, sizeof(auth));
	if (rc != CURLE_OK) {
		fd_err_set(err, "kubernetes API %s: %s", k->api,
			   b.too_big ? "answer larger than 16 MiB"
			   : ebuf[0] ? ebuf
				     : curl_easy_strerror(rc));
		free(b.buf);
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	*out = b.buf ? b.buf : calloc(1, 1);
	*len = b.len;
	if (!*out)
		return fd_err_set(err, "out of memory");
	return 0;
}

struct k8s_poll {
	struct fd_k8s k;
	char url[4096];
	struct poller *p;
	struct fd_peerset *set;
};

static int add_peer(const char *addr, const char *name,
		    struct json_object *meta, void *arg)
{
	struct k8s_poll *kp = arg;

	if (peer_add_meta(kp->set, addr, name, meta) < 0)
		kp->p->bad_lines = 1;
	return 0;
}

static int k8s_poll(struct poller *p, struct fd_peerset *set, struct fd_err *err)
{
	struct k8s_poll *kp = p->ctx;
	struct fd_k8s_stats st;
	char *body = NULL;
	size_t len = 0;
	long status = 0;
	int n;

	if (k8s_get(&kp->k, kp->url, &body, &len, &status, err) < 0)
		return -1;
	if (status != 200) {
		fd_k8s_status_error(status, body, len, err->msg, sizeof(err->msg));
		free(body);
		return -1;
	}
	kp->p = p;
	kp->set = set;
	n = fd_k8s_parse(&kp->k, body, len, add_peer, kp, &st, err);
	free(body);
	if (n < 0)
		return -1;
	if (n == 0) {
		fd_k8s_empty_error(&kp->k, &st, err->msg, sizeof(err->msg));
		return -1;
	}
	return 0;
}

/* The options as a spec (what fd_k8s_config takes). */
int k8s_spec(const struct dopts *o, struct fd_dspec *sp)
{
	char port[16];
	const struct {
		const char *key, *val;
	} kv[] = {
		{"selector", o->selector},     {"namespace", o->k8s_namespace},
		{"mode", o->k8s_mode},	       {"api", o->api},
		{"token_file", o->token_file}, {"ca_file", o->ca_file},
		{"sa_dir", o->sa_dir},	       {"port_name", o->port_name},
		{"basename", o->basename},
	};

	memset(sp, 0, sizeof(*sp));
	if (fd_dspec_set_strategy(sp, "kubernetes") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (kv[i].val && fd_dspec_set(sp, kv[i].key, kv[i].val) < 0)
			return -1;
	if (o->port_given) {
		snprintf(port, sizeof(port), "%d", o->port);
		if (fd_dspec_set(sp, "port", port) < 0)
			return -1;
	}
	return 0;
}

int strategy_kubernetes(int argc, char **argv, const struct dopts *o)
{
	struct k8s_poll kp = {0};
	struct poller p = {.poll = k8s_poll, .ctx = &kp};
	struct fd_dspec sp;
	struct fd_err err;
	int rc;

	(void)argv;
	if (argc != 0)
		fd_usage_die("kubernetes: no arguments expected (use --selector)");
	if (k8s_spec(o, &sp) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	rc = fd_k8s_config(&kp.k, &sp, &err);
	fd_dspec_release(&sp);
	if (rc < 0)
		fd_usage_die("kubernetes: %s", err.msg);
	if (fd_k8s_url(&kp.k, kp.url, sizeof(kp.url)) < 0)
		fd_usage_die("kubernetes: the request URL is too long");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fd_die(FD_EXIT_RUNTIME, "unable to start the HTTP client");
	p.source = kp.k.api;
	rc = poll_run(&p, o);
	curl_global_cleanup();
	return rc;
}
