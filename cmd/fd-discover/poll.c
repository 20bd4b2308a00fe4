/* The driver of the polled strategies (exec, dns, dns-srv). A CLI asks one
 * source at a time, so a poll simply blocks; under --watch SIGINT and
 * SIGTERM are blocked and waited for with sigtimedwait() between polls, and
 * a poll in progress checks stop_requested() to give up early. */
#include "cli.h"
#include "clock.h"
#include "strategy.h"
#include "jsonl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int watching;

int stop_requested(void)
{
	sigset_t pending;

	if (!watching || sigpending(&pending) < 0)
		return 0;
	return sigismember(&pending, SIGINT) == 1 ||
	       sigismember(&pending, SIGTERM) == 1;
}

/* One answer. Returns 0, or -1 when the source failed (reported once until
 * a poll works again). */
static int poll_once(struct poller *p, struct fd_peerset *set, char *last,
		     size_t lastlen)
{
	struct fd_err err = {0};

	if (fd_peerset_begin(set) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	if (p->poll(p, set, &err) < 0) {
		fd_peerset_abort(set);
		if (strcmp(err.msg, last) != 0) {
			out_error(p->source, err.msg);
			snprintf(last, lastlen, "%s", err.msg);
		}
		return -1;
	}
	last[0] = '\0';
	fd_peerset_end(set, out_down, set);
	return 0;
}

static void flush(void)
{
	if (fd_emit_flush() < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
}

static void run_watch(struct poller *p, struct fd_peerset *set, const struct dopts *o)
{
	char last[256] = "";
	sigset_t stop;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to block signals: %s",
		       strerror(errno));
	watching = 1;
	for (;;) {
		int64_t next = fd_mono_ms() + o->interval_ms, left;
		struct timespec ts;

		poll_once(p, set, last, sizeof(last));
		flush();
		while ((left = next - fd_mono_ms()) > 0 || stop_requested()) {
			int sig;

			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			sig = sigtimedwait(&stop, NULL, &ts);
			if (sig == SIGINT || sig == SIGTERM)
				return;
			if (sig < 0 && errno != EAGAIN && errno != EINTR)
				fd_die(FD_EXIT_RUNTIME, "unable to wait: %s",
				       strerror(errno));
		}
	}
}

int poll_run(struct poller *p, const struct dopts *o)
{
	struct fd_peerset set;
	char last[256] = "";
	int rc;

	if (fd_peerset_init(&set, o->down_after, 0) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	if (o->watch) {
		run_watch(p, &set, o);
		fd_peerset_release(&set);
		return p->bad_lines ? FD_EXIT_DATA : FD_EXIT_OK;
	}
	rc = poll_once(p, &set, last, sizeof(last));
	if (o->expect) {
		int64_t deadline = fd_mono_ms() + o->timeout_ms;

		while (fd_peerset_count(&set) < o->expect) {
			int64_t left = deadline - fd_mono_ms();
			struct timespec ts;

			if (left <= 0)
				break;
			if (left > o->interval_ms)
				left = o->interval_ms;
			flush();
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			if (fd_mono_ms() >= deadline)
				break;
			poll_once(p, &set, last, sizeof(last));
		}
		rc = expect_status(o, fd_peerset_count(&set));
	} else {
		rc = rc < 0 ? FD_EXIT_RUNTIME : FD_EXIT_OK;
	}
	fd_peerset_release(&set);
	if (rc == FD_EXIT_OK && p->bad_lines)
		rc = FD_EXIT_DATA;
	return rc;
}
