/* The driver of the listening strategies (mdns, gossip): their sources are
 * caches of what peers announce, filled as packets arrive, so they run in
 * an fd_loop rather than poll.
 *
 * --watch: a peer new in the cache is printed "up" at once (the answer is
 * begun, added to, and dropped, which counts for nothing); every
 * --interval the whole cache is one answer (empty ones included: peers
 * that all said goodbye are gone), so a peer goes "down" after
 * --down-after intervals without it.
 * One-shot: listens for --window (or with --expect until that many peers
 * are there, or --timeout), then prints the set. */
#include "cli.h"
#include "clock.h"
#include "jsonl.h"
#include "live.h"
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void add_one(const char *name, const char *addr,
		    struct json_object *meta, void *arg)
{
	struct live *l = arg;

	if (peer_add_meta(&l->set, addr, name, meta) < 0)
		l->full = 1;
}

static void count_one(const char *name, const char *addr,
		      struct json_object *meta, void *arg)
{
	(void)name;
	(void)addr;
	(void)meta;
	(*(size_t *)arg)++;
}

static void flush(void)
{
	if (fd_emit_flush() < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
}

void live_changed(struct live *l)
{
	int64_t now = fd_loop_now(l->loop);

	if (l->o->watch) {
		if (fd_peerset_begin(&l->set) < 0)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		l->each(l, now, add_one, l);
		fd_peerset_abort(&l->set);
		flush();
		return;
	}
	if (l->o->expect) {
		size_t n = 0;

		l->each(l, now, count_one, &n);
		if (n >= l->o->expect)
			fd_loop_stop(l->loop);
	}
}

static void on_tick(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct live *l = arg;

	if (fd_peerset_begin(&l->set) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	l->each(l, fd_loop_now(loop), add_one, l);
	fd_peerset_end(&l->set, out_down, NULL);
	flush();
	if (fd_timer_arm(loop, t, l->o->interval_ms) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
}

static void on_end(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	fd_loop_stop(loop);
}

static void on_signal(struct fd_loop *loop, int signo, void *arg)
{
	struct live *l = arg;

	(void)signo;
	l->stopped = 1;
	fd_loop_stop(loop);
}

int live_init(struct live *l, const struct dopts *o)
{
	memset(l, 0, sizeof(*l));
	l->o = o;
	l->loop = fd_loop_new();
	if (!l->loop || fd_peerset_init(&l->set, o->down_after, 0) < 0)
		return -1;
	l->set.empty_ok = 1;
	if (fd_loop_signal(l->loop, SIGINT, on_signal, l) < 0 ||
	    fd_loop_signal(l->loop, SIGTERM, on_signal, l) < 0)
		return -1;
	return 0;
}

int live_run(struct live *l)
{
	struct fd_timer tick, end;
	int rc = FD_EXIT_OK;

	fd_timer_init(&tick, on_tick, l);
	fd_timer_init(&end, on_end, l);
	if (l->o->watch) {
		if (fd_timer_arm(l->loop, &tick, l->o->interval_ms) < 0)
			return -1;
	} else if (fd_timer_arm(l->loop, &end,
				l->o->expect ? l->o->timeout_ms
					     : l->o->window_ms) < 0) {
		return -1;
	}
	if (fd_loop_run(l->loop) < 0)
		return -1;
	fd_timer_disarm(l->loop, &tick);
	fd_timer_disarm(l->loop, &end);
	if (!l->o->watch) {
		/* the set as it is now, once */
		fd_loop_update_now(l->loop);
		if (fd_peerset_begin(&l->set) < 0)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		l->each(l, fd_loop_now(l->loop), add_one, l);
		fd_peerset_end(&l->set, NULL, NULL);
		if (!l->stopped)
			rc = expect_status(l->o, fd_peerset_count(&l->set));
		else if (l->o->expect && fd_peerset_count(&l->set) < l->o->expect)
			rc = FD_EXIT_TIMEOUT;
	}
	if (rc == FD_EXIT_OK && l->full)
		rc = FD_EXIT_DATA;
	return rc;
}

void live_release(struct live *l)
{
	fd_peerset_release(&l->set);
	fd_loop_free(l->loop);
	l->loop = NULL;
}
