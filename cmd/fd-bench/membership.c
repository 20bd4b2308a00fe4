/* Membership scenarios: real fd-node processes on 127.0.0.1. */
#include "scenario.h"
#include "clock.h"
#include "cluster.h"
#include "jsonl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_US 10000

static int start(const struct bench_opts *o, struct cluster *c, int n,
		 struct fd_err *err)
{
	memset(c, 0, sizeof(*c));
	c->fd_node = o->fd_node;
	c->profile = o->profile;
	c->encrypt = o->encrypt;
	return cluster_start(c, n, NULL, 10000 + 200LL * n, err);
}

static int run_converge(const struct bench_opts *o, int n, double *v,
			struct fd_err *err)
{
	struct cluster c;
	int64_t t0 = fd_mono_us();
	int rc;

	if (start(o, &c, n, err) < 0)
		return -1;
	rc = cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err);
	v[0] = (double)(fd_mono_us() - t0) / 1e6;
	cluster_stop(&c);
	return rc;
}

static int run_detect(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	struct cluster c;
	const char *victim;
	int64_t t0, deadline;
	char *done;
	int left = n - 1;

	if (n < 2)
		return fd_err_set(err, "needs at least 2 nodes");
	if (start(o, &c, n, err) < 0)
		return -1;
	if (cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err) < 0) {
		cluster_stop(&c);
		return -1;
	}
	victim = c.nodes[n - 1].name;
	done = calloc((size_t)n, 1);
	t0 = fd_mono_us();
	deadline = fd_mono_ms() + o->timeout_ms;
	cluster_kill(&c, n - 1);
	while (left > 0 && fd_mono_ms() < deadline) {
		for (int i = 0; i < n - 1; i++) {
			char state[16];
			int alive, failed;

			if (done[i] || cluster_members(&c, i, &alive, &failed,
						       victim, state) < 0)
				continue;
			if (strcmp(state, "failed") == 0) {
				done[i] = 1;
				left--;
			}
		}
		if (left > 0)
			usleep(POLL_US);
	}
	v[0] = (double)(fd_mono_us() - t0) / 1e6;
	free(done);
	cluster_stop(&c);
	if (left > 0)
		return fd_err_set(err, "%d nodes never marked the killed node failed",
				  left);
	return 0;
}

/* Burns CPU on every core (two processes per core) until killed. */
static int contention_start(pid_t *pids, int max)
{
	int n = (int)sysconf(_SC_NPROCESSORS_ONLN) * 2;

	if (n > max)
		n = max;
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			volatile unsigned long x = 0;

			for (;;)
				x++;
		}
	}
	return n;
}

static void contention_stop(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
}

/* Counts members (all alive throughout) that any node ever saw as failed:
 * each member record carries "failures", how often that node saw it fail. */
static int count_false_failures(struct cluster *c, int *count)
{
	char **names = calloc((size_t)c->n, sizeof(*names));
	int nn = 0;

	for (int i = 0; i < c->n; i++) {
		struct json_object *resp, *members;
		struct fd_err err;
		long status;

		if (fd_client_call_ok(&c->nodes[i].client, "GET", "/v1/members",
				      NULL, &status, &resp, &err) < 0 ||
		    !json_object_object_get_ex(resp, "members", &members)) {
			json_object_put(resp);
			continue;
		}
		for (size_t k = 0; k < json_object_array_length(members); k++) {
			struct json_object *m =
				json_object_array_get_idx(members, k);
			const char *name = fd_json_get_str(m, "name");
			int seen = 0;

			if (!name || fd_json_get_int(m, "failures", 0) == 0)
				continue;
			for (int j = 0; j < nn && !seen; j++)
				seen = strcmp(names[j], name) == 0;
			if (!seen && nn < c->n)
				names[nn++] = strdup(name);
		}
		json_object_put(resp);
	}
	*count = nn;
	for (int j = 0; j < nn; j++)
		free(names[j]);
	free(names);
	return 0;
}

static int run_false_positives(const struct bench_opts *o, int n, double *v,
			       struct fd_err *err)
{
	struct cluster c;
	pid_t burners[64];
	int nb, count = 0, rc;

	if (start(o, &c, n, err) < 0)
		return -1;
	rc = cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err);
	if (rc == 0) {
		nb = contention_start(burners, 64);
		usleep((useconds_t)(o->duration_ms * 1000));
		contention_stop(burners, nb);
		count_false_failures(&c, &count);
		v[0] = count;
	}
	cluster_stop(&c);
	return rc;
}

static int run_rss(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	struct cluster c;
	struct proc_mem max = {0};
	int rc;

	if (start(o, &c, n, err) < 0)
		return -1;
	rc = cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err);
	if (rc == 0) {
		usleep(1000000); /* idle: past start-up and the first exchanges */
		for (int i = 0; i < n && rc == 0; i++) {
			struct proc_mem m;

			if (proc_mem(c.nodes[i].pid, &m) < 0) {
				rc = fd_err_set(err, "unable to read the memory of node %s",
						c.nodes[i].name);
				break;
			}
			max.rss = m.rss > max.rss ? m.rss : max.rss;
			max.pss = m.pss > max.pss ? m.pss : max.pss;
			max.private = m.private > max.private ? m.private
							      : max.private;
		}
		v[0] = (double)max.rss / (1024.0 * 1024.0);
		v[1] = (double)max.pss / (1024.0 * 1024.0);
		v[2] = (double)max.private / (1024.0 * 1024.0);
	}
	cluster_stop(&c);
	return rc;
}

const struct scenario membership_scenarios[] = {
	{"membership.converge",
	 "N nodes start at once, each joining the first; seconds from the first start "
	 "until every node sees N alive",
	 1,
	 8,
	 {{"membership.converge", "s"}},
	 run_converge,
	 0},
	{"membership.detect",
	 "SIGKILL one of N converged nodes; seconds until every other node marks it failed",
	 1,
	 8,
	 {{"membership.detect", "s"}},
	 run_detect,
	 0},
	{"membership.false_positives",
	 "N nodes under CPU contention (two busy processes per core) for --duration; "
	 "members ever marked failed though they never stopped",
	 1,
	 8,
	 {{"membership.false_positives", "count"}},
	 run_false_positives,
	 0},
	{"membership.rss",
	 "memory of the largest of N idle, converged nodes: resident set (shared "
	 "library pages included), proportional set (shared pages divided among the "
	 "processes using them) and private memory",
	 1,
	 8,
	 {{"membership.rss", "MiB"},
	  {"membership.pss", "MiB"},
	  {"membership.private", "MiB"}},
	 run_rss,
	 0},
};
const int membership_nscenarios =
	sizeof(membership_scenarios) / sizeof(membership_scenarios[0]);
