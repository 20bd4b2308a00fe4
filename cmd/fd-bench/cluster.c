#include "cluster.h"
#include "auth.h"
#include "clock.h"
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define POLL_US 10000

static pid_t spawn(struct cluster *c, struct bench_node *bn, const char *join,
		   const char *listen, const char *const *extra)
{
	const char *argv[MAX_ARGS];
	char log[320];
	int p[2], k = 0;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/%s.log", c->dir, bn->name);
	argv[k++] = c->fd_node;
	argv[k++] = "--name";
	argv[k++] = bn->name;
	argv[k++] = "--listen";
	argv[k++] = listen ? listen : "127.0.0.1:0";
	argv[k++] = "--log-level";
	argv[k++] = "warn";
	/* every node of a local cluster connects from 127.0.0.1 */
	argv[k++] = "--max-client-conns";
	argv[k++] = "0";
	if (c->profile) {
		argv[k++] = "--profile";
		argv[k++] = c->profile;
	}
	if (join) {
		argv[k++] = "--join";
		argv[k++] = join;
	}
	if (c->encrypt) {
		argv[k++] = "--key-file";
		argv[k++] = c->key_file;
	}
	for (int i = 0; extra && extra[i] && k < MAX_ARGS - 1; i++)
		argv[k++] = extra[i];
	argv[k] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(p[1], STDOUT_FILENO);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		if (logfd >= 0)
			dup2(logfd, STDERR_FILENO);
		signal(SIGPIPE, SIG_DFL);
		execvp(c->fd_node, (char *const *)argv);
		dprintf(STDERR_FILENO, "unable to run '%s': %s\n", c->fd_node,
			strerror(errno));
		_exit(127);
	}
	close(p[1]);
	bn->out_fd = p[0];
	bn->pid = pid;
	return pid;
}

/* The first line of a node's log (its stderr), for error messages. */
static const char *log_head(const struct cluster *c,
			    const struct bench_node *bn, char *buf, size_t len)
{
	char path[320];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.log", c->dir, bn->name);
	buf[0] = '\0';
	f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	return buf[0] ? buf : "no message";
}

/* Reads the identity line of bn (up to the deadline). */
static int read_identity(const struct cluster *c, struct bench_node *bn,
			 int64_t deadline, struct fd_err *err)
{
	char head[200];

	char buf[512];
	size_t len = 0;
	struct json_object *o;
	const char *addr;

	for (;;) {
		struct pollfd pfd = {.fd = bn->out_fd, .events = POLLIN};
		int64_t left = deadline - fd_mono_ms();
		ssize_t r;
		char *nl;

		if (left <= 0)
			return fd_err_set(err, "node %s did not start in time",
					  bn->name);
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		r = read(bn->out_fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return fd_err_set(err, "node %s exited during start-up: %s",
					  bn->name,
					  log_head(c, bn, head, sizeof(head)));
		len += (size_t)r;
		buf[len] = '\0';
		nl = strchr(buf, '\n');
		if (!nl) {
			if (len == sizeof(buf) - 1)
				return fd_err_set(err, "node %s: identity line too long",
						  bn->name);
			continue;
		}
		o = fd_json_parse(buf, (size_t)(nl - buf), NULL);
		addr = fd_json_get_str(o, "addr");
		if (!addr) {
			json_object_put(o);
			return fd_err_set(err, "node %s: bad identity line",
					  bn->name);
		}
		snprintf(bn->addr, sizeof(bn->addr), "%s", addr);
		json_object_put(o);
		close(bn->out_fd);
		bn->out_fd = -1;
		if (fd_client_init(&bn->client, bn->addr, 2000, err) < 0)
			return -1;
		bn->has_client = 1;
		return 0;
	}
}

static void rm_dir(const char *dir);

/* A new cluster key in dir/cluster.key (0600). 0, or -1 with err. */
static int write_key(struct cluster *c, struct fd_err *err)
{
	struct fd_key k;
	char line[FD_KEY_B64_LEN + 2];
	int fd, ok;

	snprintf(c->key_file, sizeof(c->key_file), "%s/cluster.key", c->dir);
	if (fd_key_generate(&k, err) < 0)
		return -1;
	fd_key_format(&k, line);
	line[FD_KEY_B64_LEN] = '\n';
	fd = open(c->key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ok = fd >= 0 && write(fd, line, FD_KEY_B64_LEN + 1) == FD_KEY_B64_LEN + 1;
	if (fd >= 0)
		close(fd);
	if (!ok)
		return fd_err_set(err, "unable to write '%s': %s", c->key_file,
				  strerror(errno));
	return 0;
}

int cluster_start(struct cluster *c, int n, const char *const *extra,
		  int64_t timeout_ms, struct fd_err *err)
{
	const char *tmp = getenv("TMPDIR");
	int64_t deadline = fd_mono_ms() + timeout_ms;

	snprintf(c->dir, sizeof(c->dir), "%s/fd-bench.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir))
		return fd_err_set(err, "unable to create a temp dir: %s",
				  strerror(errno));
	if (c->encrypt && write_key(c, err) < 0) {
		rmdir(c->dir);
		return -1;
	}
	c->nodes = calloc((size_t)n, sizeof(*c->nodes));
	if (!c->nodes)
		return fd_err_set(err, "out of memory");
	c->n = n;
	for (int i = 0; i < n; i++) {
		snprintf(c->nodes[i].name, sizeof(c->nodes[i].name), "b%d", i + 1);
		c->nodes[i].out_fd = -1;
	}
	if (spawn(c, &c->nodes[0], NULL, NULL, extra) < 0 ||
	    read_identity(c, &c->nodes[0], deadline, err) < 0)
		goto fail;
	for (int i = 1; i < n; i++)
		if (spawn(c, &c->nodes[i], c->nodes[0].addr, NULL, extra) < 0) {
			fd_err_set(err, "unable to start fd-node: %s",
				   strerror(errno));
			goto fail;
		}
	for (int i = 1; i < n; i++)
		if (read_identity(c, &c->nodes[i], deadline, err) < 0)
			goto fail;
	return 0;
fail:
	cluster_stop(c);
	return -1;
}

int cluster_init(struct cluster *c, int max, struct fd_err *err)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(c->dir, sizeof(c->dir), "%s/fd-bench.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir))
		return fd_err_set(err, "unable to create a temp dir: %s",
				  strerror(errno));
	if (c->encrypt && write_key(c, err) < 0) {
		rmdir(c->dir);
		return -1;
	}
	c->nodes = calloc((size_t)max, sizeof(*c->nodes));
	if (!c->nodes) {
		rm_dir(c->dir);
		return fd_err_set(err, "out of memory");
	}
	c->n = max;
	for (int i = 0; i < max; i++) {
		snprintf(c->nodes[i].name, sizeof(c->nodes[i].name), "b%d", i + 1);
		c->nodes[i].out_fd = -1;
	}
	return 0;
}

int cluster_start_node(struct cluster *c, int i, const char *listen,
		       const char *const *extra, int64_t deadline, struct fd_err *err)
{
	struct bench_node *bn = &c->nodes[i];

	if (bn->has_client) {
		fd_client_release(&bn->client);
		bn->has_client = 0;
	}
	if (spawn(c, bn, NULL, listen, extra) < 0)
		return fd_err_set(err, "unable to start fd-node: %s",
				  strerror(errno));
	return read_identity(c, bn, deadline, err);
}

static void rm_dir(const char *dir)
{
	char path[512];

	for (int i = 1; i <= 100000; i++) {
		snprintf(path, sizeof(path), "%s/b%d.log", dir, i);
		if (unlink(path) < 0 && errno == ENOENT)
			break;
	}
	snprintf(path, sizeof(path), "%s/cluster.key", dir);
	unlink(path);
	rmdir(dir);
}

void cluster_stop(struct cluster *c)
{
	int64_t deadline = fd_mono_ms() + 2000;

	for (int i = 0; i < c->n; i++)
		if (c->nodes[i].pid > 0)
			kill(c->nodes[i].pid, SIGTERM);
	for (int i = 0; i < c->n; i++) {
		struct bench_node *bn = &c->nodes[i];

		while (bn->pid > 0 && waitpid(bn->pid, NULL, WNOHANG) == 0) {
			if (fd_mono_ms() > deadline) {
				kill(bn->pid, SIGKILL);
				waitpid(bn->pid, NULL, 0);
				break;
			}
			usleep(5000);
		}
		bn->pid = 0;
		if (bn->out_fd >= 0)
			close(bn->out_fd);
		if (bn->has_client)
			fd_client_release(&bn->client);
	}
	free(c->nodes);
	c->nodes = NULL;
	c->n = 0;
	if (c->dir[0])
		rm_dir(c->dir);
	c->dir[0] = '\0';
}

void cluster_kill(struct cluster *c, int i)
{
	if (c->nodes[i].pid > 0) {
		kill(c->nodes[i].pid, SIGKILL);
		waitpid(c->nodes[i].pid, NULL, 0);
		c->nodes[i].pid = 0;
	}
}

int cluster_members(struct cluster *c, int i, int *alive, int *failed,
		    const char *state_of, char *state)
{
	struct json_object *resp, *members;
	struct fd_err err;
	long status;

	*alive = *failed = 0;
	if (state)
		state[0] = '\0';
	if (fd_client_call_ok(&c->nodes[i].client, "GET", "/v1/members", NULL,
			      &status, &resp, &err) < 0) {
		json_object_put(resp);
		return -1;
	}
	if (!json_object_object_get_ex(resp, "members", &members)) {
		json_object_put(resp);
		return -1;
	}
	for (size_t k = 0; k < json_object_array_length(members); k++) {
		struct json_object *m = json_object_array_get_idx(members, k);
		const char *st = fd_json_get_str(m, "state");
		const char *name = fd_json_get_str(m, "name");

		if (!st)
			continue;
		*alive += strcmp(st, "alive") == 0;
		*failed += strcmp(st, "failed") == 0;
		if (state_of && name && strcmp(name, state_of) == 0)
			snprintf(state, 16, "%s", st);
	}
	json_object_put(resp);
	return 0;
}

int cluster_wait_converged(struct cluster *c, int want, int64_t deadline,
			   struct fd_err *err)
{
	char *done = calloc((size_t)c->n, 1);
	int left = 0;

	for (int i = 0; i < c->n; i++)
		if (c->nodes[i].pid > 0)
			left++;
		else
			done[i] = 1;
	while (left > 0) {
		for (int i = 0; i < c->n; i++) {
			int alive, failed;

			if (done[i] ||
			    cluster_members(c, i, &alive, &failed, NULL, NULL) < 0)
				continue;
			if (alive >= want) {
				done[i] = 1;
				left--;
			}
		}
		if (left == 0)
			break;
		if (fd_mono_ms() > deadline) {
			free(done);
			return fd_err_set(err, "%d of %d nodes still saw fewer than %d alive members",
					  left, c->n, want);
		}
		usleep(POLL_US);
	}
	free(done);
	return 0;
}

struct json_object *cluster_info(struct cluster *c, int i)
{
	struct json_object *resp;
	struct fd_err err;
	long status;

	if (fd_client_call_ok(&c->nodes[i].client, "GET", "/v1/info", NULL,
			      &status, &resp, &err) < 0) {
		json_object_put(resp);
		return NULL;
	}
	return resp;
}

/* One "Key: N kB" figure of /proc/PID/FILE in bytes, or -1. */
static long long proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
		    sscanf(line + klen + 1, "%lld", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

int proc_mem(pid_t pid, struct proc_mem *m)
{
	m->rss = proc_kb(pid, "status", "VmRSS");
	m->private = proc_kb(pid, "status", "RssAnon");
	m->pss = proc_kb(pid, "smaps_rollup", "Pss");
	return m->rss < 0 || m->private < 0 || m->pss < 0 ? -1 : 0;
}

long long proc_cpu_us(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "pid (comm) ": state is field 3, utime and stime 14 and 15. */
	p = strrchr(buf, ')');
	if (!p || hz <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -1;
	return (long long)((ut + st) * 1000000ULL / (unsigned long long)hz);
}
