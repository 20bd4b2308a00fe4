/* exec: cmd=CMD timeout=DURATION. Runs /bin/sh -c CMD at every poll without
 * blocking the loop: its stdout is a non-blocking pipe the loop watches, its
 * end a pidfd (or, where the kernel has none, a short timer that asks
 * waitpid). It runs in its own process group, so a timeout kills what it
 * started too. Lines as fd-discover exec takes them (fd_peer_line). A
 * command that fails, is killed or times out is a failed poll. */
#include "dsource.h"
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_OUTPUT (8 * 1024 * 1024)
#define WAIT_POLL_MS 20

struct xrun {
	struct fd_dsource *s;
	char *cmd;
	int64_t timeout_ms;
	pid_t pid; /* 0: nothing running */
	int out_fd, pid_fd;
	char *buf;
	size_t n, cap;
	int eof, timed_out, too_much;
	struct fd_timer deadline, waiter;
};

static const char *const exec_keys[] = {"cmd", "timeout", NULL};

static void on_deadline(struct fd_loop *loop, struct fd_timer *t, void *arg);
static void on_waiter(struct fd_loop *loop, struct fd_timer *t, void *arg);

static int exec_start(struct fd_dsource *s, const struct fd_dspec *sp,
		      struct fd_err *err)
{
	const char *cmd = fd_dspec_get(sp, "cmd");
	struct xrun *x;
	int64_t t;

	if (!cmd || !*cmd)
		return fd_err_set(err, "exec needs cmd=COMMAND");
	if (fd_dspec_duration(sp, "timeout", 10000, 1, 86400000, &t, err) < 0)
		return -1;
	x = calloc(1, sizeof(*x));
	if (!x || !(x->cmd = strdup(cmd))) {
		free(x);
		return fd_err_set(err, "out of memory");
	}
	x->s = s;
	x->timeout_ms = t;
	x->out_fd = x->pid_fd = -1;
	fd_timer_init(&x->deadline, on_deadline, x);
	fd_timer_init(&x->waiter, on_waiter, x);
	s->priv = x;
	return 0;
}

static void child(const char *cmd, int out)
{
	sigset_t none;
	int null = open("/dev/null", O_RDONLY);

	/* The loop blocks the signals it takes through signalfd: undo that. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0)
		_exit(126);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

static void close_fds(struct xrun *x)
{
	struct fd_loop *loop = x->s->loop;

	if (x->out_fd >= 0) {
		fd_loop_unwatch(loop, x->out_fd);
		close(x->out_fd);
		x->out_fd = -1;
	}
	if (x->pid_fd >= 0) {
		fd_loop_unwatch(loop, x->pid_fd);
		close(x->pid_fd);
		x->pid_fd = -1;
	}
	fd_timer_disarm(loop, &x->deadline);
	fd_timer_disarm(loop, &x->waiter);
}

/* The run is over (output closed, child reaped with status): answer. */
static void finish(struct xrun *x, int status)
{
	struct fd_dsource *s = x->s;
	unsigned long bad = 0, found = 0;
	char addr[FD_PEER_ADDR_LEN];

	close_fds(x);
	x->pid = 0;
	if (x->timed_out) {
		fd_dsource_fail(s, "'%s': timed out after %lld ms", x->cmd,
				(long long)x->timeout_ms);
	} else if (x->too_much) {
		fd_dsource_fail(s, "'%s': more than %d MiB of output", x->cmd,
				MAX_OUTPUT / (1024 * 1024));
	} else if (WIFSIGNALED(status)) {
		fd_dsource_fail(s, "'%s': killed by signal %d", x->cmd,
				WTERMSIG(status));
	} else if (WEXITSTATUS(status) != 0) {
		fd_dsource_fail(s, "'%s': exited with status %d", x->cmd,
				WEXITSTATUS(status));
	} else {
		for (size_t pos = 0; pos < x->n;) {
			const char *line = x->buf + pos,
				   *nl = memchr(line, '\n', x->n - pos);
			size_t l = nl ? (size_t)(nl - line) : x->n - pos;
			struct json_object *obj = NULL, *meta = NULL;
			struct fd_err err;
			int rc;

			pos += l + 1;
			rc = fd_peer_line(line, l, addr, sizeof(addr), &obj, &err);
			if (rc < 0) {
				bad++;
				continue;
			}
			if (rc == 0)
				continue;
			if (obj)
				json_object_object_get_ex(obj, "meta", &meta);
			if (fd_dsource_add(s, addr, fd_json_get_str(obj, "name"),
					   meta, NULL) == 0)
				found++;
			json_object_put(obj);
		}
		if (!found)
			fd_dsource_fail(s, "'%s': no peers in its output%s",
					x->cmd, bad ? " (only bad lines)" : "");
		else
			fd_dsource_done(s);
	}
	free(x->buf);
	x->buf = NULL;
	x->n = x->cap = 0;
}

static void try_reap(struct xrun *x)
{
	int status;
	pid_t w;

	if (!x->pid || !x->eof)
		return;
	do
		w = waitpid(x->pid, &status, WNOHANG);
	while (w < 0 && errno == EINTR);
	if (w == x->pid) {
		finish(x, status);
		return;
	}
	if (w < 0) { /* not ours any more (SIGCHLD ignored?): take it as done */
		x->pid = 0;
		close_fds(x);
		fd_dsource_fail(x->s, "'%s': %s", x->cmd, strerror(errno));
		return;
	}
	if (x->pid_fd < 0)
		fd_timer_arm(x->s->loop, &x->waiter, WAIT_POLL_MS);
}

static void on_out(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xrun *x = arg;

	(void)events;
	for (;;) {
		ssize_t r;

		if (x->n == x->cap) {
			char *nb;

			if (x->cap >= MAX_OUTPUT) {
				x->too_much = 1;
				kill(-x->pid, SIGKILL);
				break;
			}
			nb = realloc(x->buf, x->cap ? x->cap * 2 : 4096);
			if (!nb) {
				x->too_much = 1;
				kill(-x->pid, SIGKILL);
				break;
			}
			x->buf = nb;
			x->cap = x->cap ? x->cap * 2 : 4096;
		}
		r = read(fd, x->buf + x->n, x->cap - x->n);
		if (r > 0) {
			x->n += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		break; /* EOF or an error: the output is over */
	}
	fd_loop_unwatch(loop, x->out_fd);
	close(x->out_fd);
	x->out_fd = -1;
	x->eof = 1;
	try_reap(x);
}

static void on_exit_fd(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xrun *x = arg;

	(void)loop;
	(void)fd;
	(void)events;
	/* Exited; the output may still hold lines (or a grandchild may hold
	 * the pipe: the deadline covers that). */
	fd_loop_unwatch(x->s->loop, x->pid_fd);
	close(x->pid_fd);
	x->pid_fd = -1;
	try_reap(x);
}

static void on_waiter(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	try_reap(arg);
}

static void on_deadline(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct xrun *x = arg;

	(void)t;
	x->timed_out = 1;
	kill(-x->pid, SIGKILL);
	kill(x->pid, SIGKILL);
	if (x->out_fd >= 0) {
		fd_loop_unwatch(loop, x->out_fd);
		close(x->out_fd);
		x->out_fd = -1;
	}
	x->eof = 1;
	if (x->pid_fd < 0)
		fd_timer_arm(loop, &x->waiter, WAIT_POLL_MS);
}

static void exec_poll(struct fd_dsource *s)
{
	struct xrun *x = s->priv;
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		fd_dsource_fail(s, "unable to run '%s': %s", x->cmd, strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		fd_dsource_fail(s, "unable to run '%s': %s", x->cmd, strerror(errno));
		return;
	}
	if (pid == 0)
		child(x->cmd, p[1]);
	setpgid(pid, pid);
	close(p[1]);
	x->pid = pid;
	x->out_fd = p[0];
	x->eof = x->timed_out = x->too_much = 0;
	fcntl(x->out_fd, F_SETFL, fcntl(x->out_fd, F_GETFL) | O_NONBLOCK);
#ifdef SYS_pidfd_open
	x->pid_fd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	x->pid_fd = -1;
#endif
	if (fd_loop_watch(s->loop, x->out_fd, EPOLLIN, on_out, x) < 0 ||
	    (x->pid_fd >= 0 &&
	     fd_loop_watch(s->loop, x->pid_fd, EPOLLIN, on_exit_fd, x) < 0) ||
	    fd_timer_arm(s->loop, &x->deadline, x->timeout_ms) < 0) {
		int e = errno;

		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		x->pid = 0;
		close_fds(x);
		fd_dsource_fail(s, "unable to run '%s': %s", x->cmd, strerror(e));
	}
}

static void exec_stop(struct fd_dsource *s)
{
	struct xrun *x = s->priv;

	if (!x)
		return;
	if (x->pid) {
		kill(-x->pid, SIGKILL);
		kill(x->pid, SIGKILL);
		/* Killed: reaped at once (only when stopping). */
		while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	close_fds(x);
	free(x->buf);
	free(x->cmd);
	free(x);
	s->priv = NULL;
}

const struct fd_dsource_ops fd_dsource_exec = {
	.name = "exec",
	.keys = exec_keys,
	.start = exec_start,
	.poll = exec_poll,
	.stop = exec_stop,
};
