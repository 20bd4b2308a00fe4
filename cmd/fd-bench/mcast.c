/* Discovery scenarios: how long a new node takes to be found over mdns or
 * gossip and joined by a running cluster.
 *
 * Multicast must not leave the machine: each run forks a child that moves
 * into a network namespace of its own (unshare(CLONE_NEWNET): needs root),
 * brings its loopback up with multicast and a route for 224.0.0.0/4, and
 * measures there. Without root the scenarios are skipped, with a message.
 *
 * The cluster learns of new nodes through the pipeline
 * "fd-discover STRATEGY --watch | fd-join -n FIRST" (binaries beside
 * --fd-node; fd-node's own --discover would do the same from inside): N
 * nodes that announce themselves form a cluster, then one more starts
 * without --join, and the figure is the time from its start until every
 * one of the N sees N + 1 alive members. */
#include "scenario.h"
#include "auth.h"
#include "clock.h"
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs argv to completion (stdout, stderr to /dev/null). 0 or -1. */
static int run_cmd(const char *const *argv)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The calling process moves to a new network namespace with multicast on
 * lo. 0; -1 with err (skip: 1 when the system does not allow it). */
static int enter_netns(struct fd_err *err, int *skip)
{
	static const char *const up[] = {"ip", "link", "set", "lo", "up", NULL};
	static const char *const mc[] = {"ip",	      "link", "set", "lo",
					 "multicast", "on",   NULL};
	static const char *const rt[] = {"ip",	"route", "add", "224.0.0.0/4",
					 "dev", "lo",	 NULL};

	*skip = 1;
	if (unshare(CLONE_NEWNET) < 0)
		return fd_err_set(err, "skipped: needs a network namespace of its own (run as root): %s",
				  strerror(errno));
	if (run_cmd(up) < 0 || run_cmd(mc) < 0 || run_cmd(rt) < 0)
		return fd_err_set(
			err, "skipped: unable to set up multicast on lo with ip(8)");
	*skip = 0;
	return 0;
}

/* A sibling binary of fd-node (fd-discover, fd-join) into out: beside it,
 * else beside the file a link to it names, else from PATH. */
static const char *sibling(const char *fd_node, const char *name, char *out, size_t len)
{
	char *real = realpath(fd_node, NULL);
	const char *paths[] = {fd_node, real};

	for (size_t i = 0; i < 2; i++) {
		const char *slash = paths[i] ? strrchr(paths[i], '/') : NULL;

		if (!slash)
			continue;
		snprintf(out, len, "%.*s/%s", (int)(slash - paths[i]), paths[i], name);
		if (access(out, X_OK) == 0) {
			free(real);
			return out;
		}
	}
	free(real);
	snprintf(out, len, "%s", name);
	return out;
}

/* "fd-discover STRATEGY --watch [--key-file K] | fd-join -n NODE": the two
 * PIDs into pids. 0, or -1 with err. */
static int pipeline(const char *fd_node, const char *strategy, const char *key,
		    const char *node, pid_t pids[2], struct fd_err *err)
{
	char disc[300], join[300];
	const char *dargv[] = {sibling(fd_node, "fd-discover", disc, sizeof(disc)),
			       strategy,
			       "--watch",
			       key ? "--key-file" : NULL,
			       key,
			       NULL};
	const char *jargv[] = {sibling(fd_node, "fd-join", join, sizeof(join)),
			       "-n", node, "--quiet", NULL};
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return fd_err_set(err, "pipe: %s", strerror(errno));
	for (int k = 0; k < 2; k++) {
		pids[k] = fork();
		if (pids[k] < 0)
			return fd_err_set(err, "fork: %s", strerror(errno));
		if (pids[k] == 0) {
			int null = open("/dev/null", O_RDWR);

			dup2(p[k == 0 ? 1 : 0], k == 0 ? STDOUT_FILENO : STDIN_FILENO);
			if (null >= 0) {
				dup2(null, k == 0 ? STDIN_FILENO : STDOUT_FILENO);
				dup2(null, STDERR_FILENO);
			}
			signal(SIGPIPE, SIG_DFL);
			execvp(k == 0 ? dargv[0] : jargv[0],
			       (char *const *)(k == 0 ? dargv : jargv));
			_exit(127);
		}
	}
	close(p[0]);
	close(p[1]);
	return 0;
}

static void stop_pids(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
}

/* A fresh cluster key in a file of mode 0600; the path into out. */
static int write_key(char *out, size_t len, struct fd_err *err)
{
	const char *tmp = getenv("TMPDIR");
	struct fd_keyring kr = {.n = 1};
	char *text;
	int fd;

	snprintf(out, len, "%s/fd-bench-key.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (fd_key_generate(&kr.keys[0], err) < 0)
		return -1;
	text = fd_keyring_format(&kr);
	fd = mkstemp(out);
	if (!text || fd < 0 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		free(text);
		if (fd >= 0)
			close(fd);
		return fd_err_set(err, "unable to write a key file: %s",
				  strerror(errno));
	}
	explicit_bzero(text, strlen(text));
	free(text);
	fd_keyring_clear(&kr);
	close(fd);
	return 0;
}

/* Starts one more node, without --join, with extra; its PID into *pid
 * once it printed its identity line (before deadline). 0, or -1 with err. */
static int start_newcomer(const struct bench_opts *o, const char *const *extra,
			  pid_t *pid, int64_t deadline, struct fd_err *err)
{
	const char *argv[16] = {o->fd_node, "--name",	   "newcomer",
				"--listen", "127.0.0.1:0", "--log-level",
				"warn"};
	char line[512] = "";
	size_t len = 0;
	int k = 7, p[2];

	if (o->profile) {
		argv[k++] = "--profile";
		argv[k++] = o->profile;
	}
	for (int i = 0; extra[i] && k < 15; i++)
		argv[k++] = extra[i];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fd_err_set(err, "pipe: %s", strerror(errno));
	*pid = fork();
	if (*pid < 0)
		return fd_err_set(err, "fork: %s", strerror(errno));
	if (*pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(p[1], STDOUT_FILENO);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDERR_FILENO);
		}
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (!memchr(line, '\n', len) && len < sizeof(line)) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		int64_t left = deadline - fd_mono_ms();
		ssize_t r;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		r = read(p[0], line + len, sizeof(line) - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(p[0]);
	if (!memchr(line, '\n', len))
		return fd_err_set(err, "the new node did not start in time");
	return 0;
}

/* One measurement, in the namespace: a cluster of n announcing nodes
 * (joined through the first, as any), the pipeline, then one more node;
 * the time from its start until all n see it alive. 0 with *secs, or -1. */
static int measure(const struct bench_opts *o, const char *strategy, int n,
		   double *secs, struct fd_err *err)
{
	char key[300] = "";
	const char *extra[] = {"--announce", strategy, NULL, NULL, NULL};
	struct cluster c = {.fd_node = o->fd_node, .profile = o->profile};
	pid_t pids[3] = {0, 0, 0}; /* fd-discover, fd-join, the newcomer */
	int64_t t0;
	int rc = -1;

	if (strcmp(strategy, "gossip") == 0) {
		if (write_key(key, sizeof(key), err) < 0)
			return -1;
		extra[2] = "--key-file";
		extra[3] = key;
	}
	if (cluster_start(&c, n, extra, 10000 + 200LL * n, err) < 0)
		goto out;
	if (pipeline(o->fd_node, strategy, key[0] ? key : NULL, c.nodes[0].addr,
		     pids, err) < 0 ||
	    cluster_wait_converged(&c, n, fd_mono_ms() + o->timeout_ms, err) < 0)
		goto out;
	t0 = fd_mono_us();
	if (start_newcomer(o, extra, &pids[2], fd_mono_ms() + 10000, err) < 0)
		goto out;
	if (cluster_wait_converged(&c, n + 1, fd_mono_ms() + o->timeout_ms, err) < 0) {
		for (int k = 0; k < 2; k++) {
			int st;

			if (waitpid(pids[k], &st, WNOHANG) == pids[k]) {
				pids[k] = 0;
				fd_err_set(err, "fd-%s exited (status %d): is it beside --fd-node or in PATH?",
					   k ? "join" : "discover",
					   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			}
		}
		goto out;
	}
	*secs = (double)(fd_mono_us() - t0) / 1e6;
	rc = 0;
out:
	stop_pids(pids, 3);
	cluster_stop(&c);
	if (key[0])
		unlink(key);
	return rc;
}

/* Forks a child into a namespace of its own for the measurement; its
 * answer comes back through a pipe: "ok SECONDS", "skip WHY", "err WHY". */
static int run_discover(const struct bench_opts *o, const char *strategy, int n,
			double *v, struct fd_err *err)
{
	char buf[512];
	int p[2], st;
	ssize_t len;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return fd_err_set(err, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fd_err_set(err, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct fd_err e;
		double secs = 0;
		int skip;

		close(p[0]);
		if (enter_netns(&e, &skip) < 0)
			dprintf(p[1], "%s %s", skip ? "skip" : "err", e.msg);
		else if (measure(o, strategy, n, &secs, &e) < 0)
			dprintf(p[1], "err %s", e.msg);
		else
			dprintf(p[1], "ok %.6f", secs);
		_exit(0);
	}
	close(p[1]);
	len = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	waitpid(pid, &st, 0);
	if (len <= 3)
		return fd_err_set(err, "the measuring process ended without an answer");
	buf[len] = '\0';
	if (strncmp(buf, "ok ", 3) == 0) {
		v[0] = strtod(buf + 3, NULL);
		return 0;
	}
	fd_err_set(err, "%s", buf + (strncmp(buf, "skip ", 5) == 0 ? 5 : 4));
	return strncmp(buf, "skip ", 5) == 0 ? BENCH_SKIP : -1;
}

static int run_mdns(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	return run_discover(o, "mdns", n, v, err);
}

static int run_gossip(const struct bench_opts *o, int n, double *v, struct fd_err *err)
{
	return run_discover(o, "gossip", n, v, err);
}

const struct scenario mcast_scenarios[] = {
	{"discover.mdns",
	 "N nodes announce themselves over mDNS and form a cluster through "
	 "fd-discover mdns --watch | fd-join; seconds from the start of one more "
	 "until all N + 1 see it alive (in a network namespace: needs root)",
	 1,
	 3,
	 {{"discover.mdns", "s"}},
	 run_mdns,
	 0},
	{"discover.gossip",
	 "the same over sealed multicast heartbeats (fd-node --announce gossip, "
	 "fd-discover gossip --watch | fd-join)",
	 1,
	 3,
	 {{"discover.gossip", "s"}},
	 run_gossip,
	 0},
};
const int mcast_nscenarios = sizeof(mcast_scenarios) / sizeof(mcast_scenarios[0]);
