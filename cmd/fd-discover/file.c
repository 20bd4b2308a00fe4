/* file: one address per line in a file; with --watch the file is re-read
 * when inotify says it was written, replaced or removed, and every
 * --interval in any case (that catches what inotify cannot see, such as a
 * change on a network filesystem, and paces --down-after). */
#include "cli.h"
#include "clock.h"
#include "strategy.h"
#include "jsonl.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILE (8 * 1024 * 1024)

struct watch {
	const struct dopts *o;
	const char *path;
	char *dir, *base; /* for inotify; base points into base_copy */
	char *dir_copy, *base_copy;
	struct fd_peerset set;
	struct fd_loop *loop;
	struct fd_timer timer;
	int ino_fd;
	int started; /* a read failed now is reported, not fatal */
	char *prev;  /* content of the last good read, to warn once */
	size_t prev_len;
	char last_error[256]; /* the error reported last, to report once */
	int rc;
};

/* Reads the whole file into a new buffer. Returns 0, or -1 with err. */
static int read_all(const char *path, char **out, size_t *len, struct fd_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return fd_err_set(err, "unable to read '%s': %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0) {
		fd_err_set(err, "unable to read '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fd_err_set(err, "unable to read '%s': %s", path,
			   S_ISDIR(st.st_mode) ? strerror(EISDIR)
					       : "not a regular file");
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap > MAX_FILE) {
				free(buf);
				close(fd);
				return fd_err_set(err, "unable to read '%s': larger than %d MiB",
						  path, MAX_FILE / (1024 * 1024));
			}
			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				close(fd);
				return fd_err_set(err, "unable to read '%s': out of memory",
						  path);
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fd_err_set(err, "unable to read '%s': %s", path,
				   strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!buf)
		buf = calloc(1, 1);
	if (!buf)
		return fd_err_set(err, "unable to read '%s': out of memory", path);
	*out = buf;
	*len = n;
	return 0;
}

/* One read of the file: an answer for the peer set. Returns 0, or -1 when
 * the file could not be read (reported), or stops the program with exit 7
 * on a bad line in --strict mode. */
static int read_peers(struct watch *w)
{
	struct fd_err err;
	char *buf = NULL, addr[FD_PEER_ADDR_LEN];
	size_t len = 0;
	unsigned long lineno = 0;
	int same;

	if (read_all(w->path, &buf, &len, &err) < 0) {
		if (!w->loop && !w->started) /* the first read: a wrong path fails at once */
			fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
		if (strcmp(err.msg, w->last_error) != 0) {
			out_error(w->path, err.msg);
			snprintf(w->last_error, sizeof(w->last_error), "%s", err.msg);
		}
		return -1;
	}
	w->last_error[0] = '\0';
	/* Bad lines are reported once, not at every re-read of the same text. */
	same = w->prev && w->prev_len == len && memcmp(w->prev, buf, len) == 0;
	if (fd_peerset_begin(&w->set) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	for (size_t pos = 0; pos < len;) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - line) : len - pos;
		int rc;

		pos += l + 1;
		lineno++;
		rc = fd_peer_file_line(line, l, addr, sizeof(addr), &err);
		if (rc == 1 && peer_add(&w->set, addr) < 0 && !same)
			w->rc = FD_EXIT_DATA;
		if (rc >= 0 || same)
			continue;
		fd_warn("%s: line %lu: %s", w->path, lineno, err.msg);
		w->rc = FD_EXIT_DATA;
		if (w->o->strict) {
			free(buf);
			fd_finish_stdout(FD_EXIT_DATA);
			exit(FD_EXIT_DATA);
		}
	}
	fd_peerset_end(&w->set, out_down, &w->set);
	free(w->prev);
	w->prev = buf;
	w->prev_len = len;
	return 0;
}

static void on_stop(struct fd_loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	fd_loop_stop(loop);
}

static void reread(struct watch *w)
{
	read_peers(w);
	if (fd_emit_flush() < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
	if (fd_timer_arm(w->loop, &w->timer, w->o->interval_ms) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
}

static void on_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	reread(arg);
}

static void on_inotify(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int hit = 0;
	ssize_t n;

	(void)loop;
	(void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev =
				(const struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW)
				hit = 1;
			if (ev->len && strcmp(ev->name, w->base) == 0)
				hit = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (hit)
		reread(w);
}

/* inotify on the file's directory (a file replaced by rename is seen too).
 * Without it, the --interval reads alone notice changes. */
static void watch_dir(struct watch *w)
{
	w->dir_copy = strdup(w->path);
	w->base_copy = strdup(w->path);
	if (!w->dir_copy || !w->base_copy)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	w->dir = dirname(w->dir_copy);
	w->base = basename(w->base_copy);
	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ino_fd >= 0 &&
	    inotify_add_watch(w->ino_fd, w->dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
				      IN_DELETE | IN_ATTRIB | IN_ONLYDIR) >= 0 &&
	    fd_loop_watch(w->loop, w->ino_fd, EPOLLIN, on_inotify, w) == 0)
		return;
	fd_warn("unable to watch '%s': %s; reading '%s' every %lld ms", w->dir,
		strerror(errno), w->path, (long long)w->o->interval_ms);
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	w->ino_fd = -1;
}

static void run_watch(struct watch *w)
{
	w->loop = fd_loop_new();
	if (!w->loop || fd_loop_signal(w->loop, SIGINT, on_stop, w) < 0 ||
	    fd_loop_signal(w->loop, SIGTERM, on_stop, w) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to set up the event loop: %s",
		       strerror(errno));
	fd_timer_init(&w->timer, on_timer, w);
	watch_dir(w);
	if (fd_emit_flush() < 0 ||
	    fd_timer_arm(w->loop, &w->timer, w->o->interval_ms) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to start watching: %s",
		       strerror(errno));
	if (fd_loop_run(w->loop) < 0)
		fd_die(FD_EXIT_RUNTIME, "event loop failed: %s", strerror(errno));
	fd_timer_disarm(w->loop, &w->timer);
	if (w->ino_fd >= 0) {
		fd_loop_unwatch(w->loop, w->ino_fd);
		close(w->ino_fd);
	}
	fd_loop_free(w->loop);
}

/* One-shot --expect: read again every --interval until enough peers are
 * listed or --timeout passes. */
static void expect_file(struct watch *w)
{
	int64_t deadline = fd_mono_ms() + w->o->timeout_ms;
	struct timespec ts;

	w->started = 1;
	while (fd_peerset_count(&w->set) < w->o->expect) {
		int64_t left = deadline - fd_mono_ms();

		if (left <= 0)
			break;
		if (left > w->o->interval_ms)
			left = w->o->interval_ms;
		if (fd_emit_flush() < 0)
			fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
			       strerror(errno));
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		read_peers(w);
	}
	if (expect_status(w->o, fd_peerset_count(&w->set)))
		w->rc = FD_EXIT_TIMEOUT;
}

int strategy_file(int argc, char **argv, const struct dopts *o)
{
	struct watch w = {.o = o, .ino_fd = -1};

	if (argc != 1)
		fd_usage_die(argc ? "file: one PATH expected" : "file: no PATH given");
	w.path = argv[0];
	if (fd_peerset_init(&w.set, o->down_after, 0) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	read_peers(&w);
	if (o->watch)
		run_watch(&w);
	else if (o->expect)
		expect_file(&w);
	fd_peerset_release(&w.set);
	free(w.prev);
	free(w.dir_copy);
	free(w.base_copy);
	return w.rc;
}
