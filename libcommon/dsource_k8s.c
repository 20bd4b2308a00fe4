/* kubernetes inside the loop: one GET of the pod or endpoints list per
 * poll, through an fd_http_client of its own (its own CA bundle, its own
 * connections to the API server). Settings and parsing: k8s.h. A failed
 * request, an answer other than 200, or an answer with no ready peer is a
 * failed poll: it removes nothing (libcluster PR #82: one empty answer
 * must not take the cluster apart). */
#include "dsource.h"
#include "http.h"
#include "k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_TIMEOUT_MS 10000
#define MAX_ANSWER (16 * 1024 * 1024)

struct k8s_src {
	struct fd_dsource *s;
	struct fd_k8s k;
	struct fd_http_client *client;
	uint64_t req;
};

static int add_peer(const char *addr, const char *name,
		    struct json_object *meta, void *arg)
{
	fd_dsource_add(arg, addr, name, meta, NULL);
	return 0;
}

static void on_answer(const struct fd_http_resp *r, void *arg)
{
	struct k8s_src *ks = arg;
	struct fd_k8s_stats st;
	struct fd_err err;
	char msg[512];
	int n;

	ks->req = 0;
	if (r->error) {
		fd_dsource_fail(ks->s, "kubernetes API %s: %s", ks->k.api, r->error);
		return;
	}
	if (r->status != 200) {
		fd_k8s_status_error(r->status, r->body, r->len, msg, sizeof(msg));
		fd_dsource_fail(ks->s, "%s", msg);
		return;
	}
	n = fd_k8s_parse(&ks->k, r->body, r->len, add_peer, ks->s, &st, &err);
	if (n < 0) {
		fd_dsource_fail(ks->s, "%s", err.msg);
		return;
	}
	if (n == 0) {
		fd_k8s_empty_error(&ks->k, &st, msg, sizeof(msg));
		fd_dsource_fail(ks->s, "%s", msg);
		return;
	}
	fd_dsource_done(ks->s);
}

static void k8s_poll(struct fd_dsource *s)
{
	struct k8s_src *ks = s->priv;
	char url[4096], auth[16500];
	const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
	struct fd_err err;

	if (fd_k8s_url(&ks->k, url, sizeof(url)) < 0) {
		fd_dsource_fail(s, "kubernetes: the request URL is too long");
		return;
	}
	if (fd_k8s_auth(&ks->k, auth, sizeof(auth), &err) < 0) {
		fd_dsource_fail(s, "%s", err.msg);
		return;
	}
	if (auth[0])
		hdrs[1] = auth;
	ks->req = fd_http_request(ks->client, "GET", url, NULL, 0, hdrs,
				  REQUEST_TIMEOUT_MS, on_answer, ks, &err);
	if (!ks->req)
		fd_dsource_fail(s, "kubernetes API %s: %s", ks->k.api, err.msg);
}

static int k8s_start(struct fd_dsource *s, const struct fd_dspec *sp,
		     struct fd_err *err)
{
	struct k8s_src *ks = calloc(1, sizeof(*ks));

	if (!ks)
		return fd_err_set(err, "out of memory");
	ks->s = s;
	s->priv = ks;
	if (fd_k8s_config(&ks->k, sp, err) < 0)
		return -1;
	ks->client = fd_http_client_new(s->loop, MAX_ANSWER, err);
	if (!ks->client)
		return -1;
	fd_http_client_use_env_proxy(ks->client); /* as kubectl does */
	if (ks->k.ca_file[0] && fd_http_client_set_ca(ks->client, ks->k.ca_file) < 0)
		return fd_err_set(err, "out of memory");
	return 0;
}

static void k8s_stop(struct fd_dsource *s)
{
	struct k8s_src *ks = s->priv;

	if (!ks)
		return;
	fd_http_client_free(ks->client); /* cancels the request in flight */
	free(ks);
	s->priv = NULL;
}

const struct fd_dsource_ops fd_dsource_kubernetes = {
	.name = "kubernetes",
	.keys = fd_k8s_keys,
	.start = k8s_start,
	.poll = k8s_poll,
	.stop = k8s_stop,
};
