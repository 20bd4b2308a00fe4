/* exec: runs a command with /bin/sh -c at every poll; its stdout lists the
 * peers, one plain address or one JSON peer object per line. A command that
 * exits non-zero, is killed or outlives --exec-timeout is a failed poll: it
 * removes nothing. The command runs in its own process group so that a
 * timeout kills what it started too; its stderr is ours. */
#include "cli.h"
#include "clock.h"
#include "strategy.h"
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OUTPUT (8 * 1024 * 1024)

struct exec {
	const struct dopts *o;
	const char *cmd;
	char *prev; /* the output of the last good run, to warn once */
	size_t prev_len;
};

static void child(const char *cmd, int out)
{
	sigset_t none;
	int null = open("/dev/null", O_RDONLY);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0)
		_exit(126);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

static void kill_wait(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Runs the command; its output in a new buffer. Returns 0, or -1 with err. */
static int run(struct exec *x, char **out, size_t *len, struct fd_err *err)
{
	int64_t deadline = fd_mono_ms() + x->o->exec_timeout_ms;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int p[2], status, eof = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return fd_err_set(err, "unable to run '%s': %s", x->cmd,
				  strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return fd_err_set(err, "unable to run '%s': %s", x->cmd,
				  strerror(errno));
	}
	if (pid == 0)
		child(x->cmd, p[1]);
	setpgid(pid, pid);
	close(p[1]);
	for (;;) {
		int64_t left = deadline - fd_mono_ms();
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		pid_t w;

		if (stop_requested()) {
			close(p[0]);
			kill_wait(pid);
			free(buf);
			return fd_err_set(err, "'%s': stopped", x->cmd);
		}
		if (left <= 0) {
			close(p[0]);
			kill_wait(pid);
			free(buf);
			return fd_err_set(err, "'%s': timed out after %lld ms",
					  x->cmd, (long long)x->o->exec_timeout_ms);
		}
		if (eof) {
			w = waitpid(pid, &status, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR) {
				close(p[0]);
				free(buf);
				return fd_err_set(err, "'%s': %s", x->cmd,
						  strerror(errno));
			}
			nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
			continue;
		}
		if (poll(&pfd, 1, left > 100 ? 100 : (int)left) <= 0)
			continue;
		if (n == cap) {
			char *nb;

			if (cap >= MAX_OUTPUT) {
				close(p[0]);
				kill_wait(pid);
				free(buf);
				return fd_err_set(
					err, "'%s': more than %d MiB of output",
					x->cmd, MAX_OUTPUT / (1024 * 1024));
			}
			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				close(p[0]);
				kill_wait(pid);
				free(buf);
				return fd_err_set(err, "'%s': out of memory", x->cmd);
			}
			buf = nb;
		}
		{
			ssize_t r = read(p[0], buf + n, cap - n);

			if (r < 0 && errno != EINTR && errno != EAGAIN)
				eof = 1;
			else if (r == 0)
				eof = 1;
			else if (r > 0)
				n += (size_t)r;
		}
	}
	close(p[0]);
	if (WIFSIGNALED(status)) {
		free(buf);
		return fd_err_set(err, "'%s': killed by signal %d", x->cmd,
				  WTERMSIG(status));
	}
	if (WEXITSTATUS(status) != 0) {
		free(buf);
		return fd_err_set(err, "'%s': exited with status %d", x->cmd,
				  WEXITSTATUS(status));
	}
	*out = buf;
	*len = n;
	return 0;
}

static int exec_poll(struct poller *p, struct fd_peerset *set, struct fd_err *err)
{
	struct exec *x = p->ctx;
	char *buf = NULL, addr[FD_PEER_ADDR_LEN];
	size_t len = 0;
	unsigned long lineno = 0, found = 0;
	int same;

	if (run(x, &buf, &len, err) < 0)
		return -1;
	/* Bad lines are reported once, not at every run with the same output. */
	same = x->prev && x->prev_len == len &&
	       (len == 0 || memcmp(x->prev, buf, len) == 0);
	for (size_t pos = 0; pos < len;) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - line) : len - pos;
		struct json_object *obj = NULL;
		struct fd_err lerr;
		int rc;

		pos += l + 1;
		lineno++;
		rc = fd_peer_line(line, l, addr, sizeof(addr), &obj, &lerr);
		if (rc == 1) {
			struct json_object *meta = NULL;

			if (obj)
				json_object_object_get_ex(obj, "meta", &meta);
			if (peer_add_meta(set, addr,
					  obj ? fd_json_get_str(obj, "name") : NULL,
					  meta) < 0)
				p->bad_lines = 1;
			found++;
			json_object_put(obj);
			continue;
		}
		if (rc == 0 || same)
			continue;
		fd_warn("exec '%s': line %lu: %s", x->cmd, lineno, lerr.msg);
		p->bad_lines = 1;
		if (x->o->strict) {
			free(buf);
			fd_finish_stdout(FD_EXIT_DATA);
			exit(FD_EXIT_DATA);
		}
	}
	free(x->prev);
	x->prev = buf;
	x->prev_len = len;
	if (!found) /* says nothing: more likely broken than meant */
		return fd_err_set(err, "'%s': no peers in its output", x->cmd);
	return 0;
}

int strategy_exec(int argc, char **argv, const struct dopts *o)
{
	struct exec x = {.o = o};
	struct poller p = {.poll = exec_poll, .ctx = &x};
	int rc;

	if (argc != 1)
		fd_usage_die(argc ? "exec: one CMD expected (quote it)"
				  : "exec: no CMD given");
	x.cmd = argv[0];
	p.source = x.cmd;
	rc = poll_run(&p, o);
	free(x.prev);
	return rc;
}
