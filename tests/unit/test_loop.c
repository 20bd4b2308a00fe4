#include "loop.h"
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct rec {
	int order[512];
	int n;
};

struct tctx {
	struct rec *rec;
	int id;
};

static void on_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct tctx *c = arg;

	(void)loop;
	(void)t;
	c->rec->order[c->rec->n++] = c->id;
}

static void run_for(struct fd_loop *loop, int64_t ms)
{
	int64_t end = fd_loop_update_now(loop) + ms;

	while (fd_loop_now(loop) < end)
		fd_loop_run_once(loop, (int)(end - fd_loop_now(loop)));
}

/* Property: timers armed with random delays (some disarmed, some re-armed)
 * fire exactly once each, in deadline order, and disarmed ones never. */
TEST(timers_fire_in_order_random)
{
	enum { N = 200 };
	struct fd_loop *loop = fd_loop_new();
	struct fd_timer t[N];
	struct tctx ctx[N];
	struct rec rec = {0};
	int64_t deadline[N];
	int disarmed[N] = {0}, expected = 0;

	REQUIRE(loop != NULL);
	for (int i = 0; i < N; i++) {
		ctx[i] = (struct tctx){&rec, i};
		fd_timer_init(&t[i], on_timer, &ctx[i]);
		CHECK_EQ(fd_timer_arm(loop, &t[i], (int64_t)unit_rand_below(40)), 0);
	}
	for (int i = 0; i < N; i++) {
		uint64_t r = unit_rand_below(4);

		if (r == 0) {
			fd_timer_disarm(loop, &t[i]);
			disarmed[i] = 1;
			CHECK(!fd_timer_armed(&t[i]));
		} else if (r == 1) {
			fd_timer_arm(loop, &t[i], (int64_t)unit_rand_below(40));
		}
		deadline[i] = t[i].deadline;
		expected += !disarmed[i];
	}
	run_for(loop, 80);
	CHECK_EQ(rec.n, expected);
	for (int k = 1; k < rec.n; k++)
		CHECK(deadline[rec.order[k - 1]] <= deadline[rec.order[k]]);
	for (int k = 0; k < rec.n; k++)
		CHECK(!disarmed[rec.order[k]]);
	for (int i = 0; i < N; i++)
		CHECK(!fd_timer_armed(&t[i]));
	fd_loop_free(loop);
}

static void rearm_self(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	int *count = arg;

	if (++*count < 5)
		fd_timer_arm(loop, t, 0);
}

TEST(timer_rearming_itself_does_not_starve)
{
	struct fd_loop *loop = fd_loop_new();
	struct fd_timer t;
	int count = 0;

	fd_timer_init(&t, rearm_self, &count);
	fd_timer_arm(loop, &t, 0);
	/* Each pass over the timers runs only those armed before it began, so
	 * one iteration (two passes: before and after polling) runs it twice at
	 * most, however often it re-arms itself. */
	fd_loop_run_once(loop, 0);
	CHECK_INT(count, <=, 2);
	run_for(loop, 20);
	CHECK_EQ(count, 5);
	fd_loop_free(loop);
}

static void on_pipe(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	char buf[16];
	int *got = arg;

	(void)loop;
	if ((events & EPOLLIN) && read(fd, buf, sizeof(buf)) > 0)
		(*got)++;
}

TEST(fd_watch_and_unwatch)
{
	struct fd_loop *loop = fd_loop_new();
	int p[2], got = 0;

	REQUIRE(pipe(p) == 0);
	CHECK_EQ(fd_loop_watch(loop, p[0], EPOLLIN, on_pipe, &got), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	fd_loop_run_once(loop, 100);
	CHECK_EQ(got, 1);
	fd_loop_unwatch(loop, p[0]);
	CHECK_EQ(write(p[1], "y", 1), 1);
	fd_loop_run_once(loop, 20);
	CHECK_EQ(got, 1);
	CHECK_EQ(fd_loop_watch(loop, -1, EPOLLIN, on_pipe, &got), -1);
	close(p[0]);
	close(p[1]);
	fd_loop_free(loop);
}

static void on_sig(struct fd_loop *loop, int signo, void *arg)
{
	int *got = arg;

	*got = signo;
	fd_loop_stop(loop);
}

TEST(signals_arrive_through_the_loop)
{
	struct fd_loop *loop = fd_loop_new();
	int got = 0;

	REQUIRE(fd_loop_signal(loop, SIGUSR1, on_sig, &got) == 0);
	REQUIRE(fd_loop_signal(loop, SIGUSR2, on_sig, &got) == 0);
	kill(getpid(), SIGUSR2);
	CHECK_EQ(fd_loop_run(loop), 0);
	CHECK_EQ(got, SIGUSR2);
	fd_loop_free(loop);
}

TEST(run_once_waits_at_most_max_wait)
{
	struct fd_loop *loop = fd_loop_new();
	int64_t t0 = fd_loop_update_now(loop);

	CHECK_EQ(fd_loop_run_once(loop, 30), 0);
	CHECK_INT(fd_loop_update_now(loop) - t0, >=, 29);
	CHECK_INT(fd_loop_now(loop) - t0, <, 1000);
	fd_loop_free(loop);
}
