/* Partition scenarios: real fd-node processes on 127.0.0.1, cut in two
 * through their fault rules (/v1/faults, as fd-partition does), written to
 * on both sides, then healed. */
#include "scenario.h"
#include "clock.h"
#include "cluster.h"
#include "jsonl.h"
#include "req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG "fd-bench"
#define POLL_US 10000
#define REQ_TIMEOUT_MS 30000
#define CHUNK 1000

/* Node i's side: the first half, or the rest. */
static int side(int n, int i)
{
	return i >= n / 2;
}

/* Installs on every node a rule dropping all traffic with the nodes of the
 * other side, expiring after expire_ms (so a crashed bench leaves nothing
 * behind for long). Returns 0, or -1 with err. */
static int split(struct cluster *c, int64_t expire_ms, struct fd_err *err)
{
	for (int i = 0; i < c->n; i++) {
		struct json_object *body = json_object_new_object(),
				   *rules = json_object_new_array(), *resp = NULL;
		long status;
		int rc;

		json_object_object_add(body, "tag", json_object_new_string(TAG));
		for (int k = 0; k < c->n; k++) {
			struct json_object *r;

			if (side(c->n, k) == side(c->n, i))
				continue;
			r = json_object_new_object();
			json_object_object_add(
				r, "peer", json_object_new_string(c->nodes[k].name));
			json_object_object_add(r, "direction",
					       json_object_new_string("both"));
			json_object_object_add(r, "action",
					       json_object_new_string("drop"));
			json_object_object_add(r, "duration",
					       fd_json_seconds(expire_ms));
			json_object_array_add(rules, r);
		}
		json_object_object_add(body, "rules", rules);
		rc = fd_client_call_ok(&c->nodes[i].client, "PUT", "/v1/faults",
				       body, &status, &resp, err);
		json_object_put(body);
		json_object_put(resp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int heal(struct cluster *c, struct fd_err *err)
{
	for (int i = 0; i < c->n; i++) {
		struct json_object *resp = NULL;
		long status;
		int rc = fd_client_call_ok(&c->nodes[i].client, "DELETE",
					   "/v1/faults?tag=" TAG, NULL, &status,
					   &resp, err);

		json_object_put(resp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Waits until every node sees exactly its own side alive. */
static int wait_split(struct cluster *c, int64_t deadline, struct fd_err *err)
{
	for (;;) {
		int left = 0;

		for (int i = 0; i < c->n; i++) {
			int alive, failed,
				want = side(c->n, i) ? c->n - c->n / 2 : c->n / 2;

			if (cluster_members(c, i, &alive, &failed, NULL, NULL) < 0 ||
			    alive != want)
				left++;
		}
		if (left == 0)
			return 0;
		if (fd_mono_ms() > deadline)
			return fd_err_set(err, "%d of %d nodes still see the other side alive",
					  left, c->n);
		usleep(POLL_US);
	}
}

/* Registers count names prefix0..prefix(count-1) through node i. */
static int write_names(struct cluster *c, int i, const char *prefix, long count,
		       struct fd_err *err)
{
	struct req q = {0};
	char line[96];
	int rc = 0;

	if (req_init(&q, c->nodes[i].addr, REQ_TIMEOUT_MS, err) < 0)
		return -1;
	for (long k = 0; k < count && rc == 0; k += CHUNK) {
		struct fd_buf body = FD_BUF_INIT(1 << 20);

		for (long j = k; j < count && j < k + CHUNK && rc == 0; j++) {
			int len = snprintf(line, sizeof(line),
					   "{\"name\":\"%s%ld\",\"value\":%ld}\n",
					   prefix, j, j);

			if (fd_buf_append(&body, line, (size_t)len) < 0)
				rc = fd_err_set(err, "out of memory");
		}
		if (rc == 0 && req_do(&q, "POST", "/v1/registry/batch",
				      fd_buf_str(&body), body.len, err) < 0)
			rc = -1;
		else if (rc == 0 &&
			 (q.status != 200 ||
			  strstr(fd_buf_str(&q.resp), "\"type\":\"error\"")))
			rc = fd_err_set(err, "batch register on %s: status %ld",
					c->nodes[i].name, q.status);
		fd_buf_release(&body);
	}
	req_release(&q);
	return rc;
}

/* The registry's digest and name count on node i (digest in buf). */
static int registry_state(struct cluster *c, int i, char *digest, size_t len,
			  long long *names)
{
	struct json_object *info = cluster_info(c, i), *reg;
	const char *d = NULL;

	if (info && json_object_object_get_ex(info, "registry", &reg))
		d = fd_json_get_str(reg, "digest");
	if (!d) {
		json_object_put(info);
		return -1;
	}
	snprintf(digest, len, "%s", d);
	*names = fd_json_get_int(reg, "names", -1);
	json_object_put(info);
	return 0;
}

/* After the heal at t0 (fd_mono_us): seconds until every node sees all n
 * alive (v[0]) and until every registry has want names and one digest
 * (v[1]). */
static int wait_heal(struct cluster *c, long want, int64_t t0, int64_t deadline,
		     double *v, struct fd_err *err)
{
	int members = 0, registry = 0;

	while (!members || !registry) {
		int64_t now;

		if (!members) {
			int ok = 1;

			for (int i = 0; i < c->n && ok; i++) {
				int alive, failed;

				ok = cluster_members(c, i, &alive, &failed,
						     NULL, NULL) == 0 &&
				     alive == c->n;
			}
			if (ok) {
				members = 1;
				v[0] = (double)(fd_mono_us() - t0) / 1e6;
			}
		}
		if (!registry) {
			char first[32] = "", d[32];
			long long names;
			int ok = 1;

			for (int i = 0; i < c->n && ok; i++) {
				ok = registry_state(c, i, d, sizeof(d), &names) == 0 &&
				     names == want;
				if (ok && i == 0)
					snprintf(first, sizeof(first), "%s", d);
				else if (ok)
					ok = strcmp(first, d) == 0;
			}
			if (ok) {
				registry = 1;
				v[1] = (double)(fd_mono_us() - t0) / 1e6;
			}
		}
		now = fd_mono_ms();
		if (now > deadline)
			return fd_err_set(err, "after the heal: %s not converged within the timeout",
					  !members ? "membership" : "registry");
		if (!members || !registry)
			usleep(POLL_US);
	}
	return 0;
}

static int run_heal(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	struct cluster c;
	int64_t split_at, t0;
	long half = o->entries / 2;
	int rc;

	if (n < 2)
		return fd_err_set(err, "needs at least 2 nodes");
	memset(&c, 0, sizeof(c));
	c.fd_node = o->fd_node;
	c.profile = o->profile;
	if (cluster_start(&c, n, NULL, 10000 + 200LL * n, err) < 0)
		return -1;
	rc = cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err);
	split_at = fd_mono_ms();
	if (rc == 0)
		rc = split(&c, o->duration_ms + o->timeout_ms + 60000, err);
	if (rc == 0)
		rc = wait_split(&c, fd_mono_ms() + o->timeout_ms, err);
	/* both sides take writes the other does not see */
	if (rc == 0)
		rc = write_names(&c, 0, "a", half, err);
	if (rc == 0)
		rc = write_names(&c, n - 1, "b", o->entries - half, err);
	while (rc == 0 && fd_mono_ms() < split_at + o->duration_ms)
		usleep(POLL_US * 10);
	t0 = fd_mono_us();
	if (rc == 0)
		rc = heal(&c, err);
	if (rc == 0)
		rc = wait_heal(&c, o->entries, t0, fd_mono_ms() + o->timeout_ms,
			       v, err);
	cluster_stop(&c);
	return rc;
}

const struct scenario partition_scenarios[] = {
	{
		.name = "partition.heal",
		.description =
			"N converged nodes split in two halves through their fault "
			"rules for --duration, --entries names registered on each "
			"side meanwhile; seconds from the heal until every node sees "
			"N alive, and until every registry holds every name with one "
			"digest",
		.uses_nodes = 1,
		.default_nodes = 8,
		.figures = {{"partition.heal.members", "s"},
			    {"partition.heal.registry", "s"}},
		.run = run_heal,
		.default_entries = 1000,
	},
};
const int partition_nscenarios =
	sizeof(partition_scenarios) / sizeof(partition_scenarios[0]);
