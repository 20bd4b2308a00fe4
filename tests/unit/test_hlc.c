#include "hlc.h"
#include "unit.h"

#include <errno.h>

TEST(now_follows_wall_and_stays_monotonic)
{
	struct fd_hlc c;
	uint64_t a, b, d;

	fd_hlc_init(&c, 0);
	a = fd_hlc_now(&c, 1000);
	CHECK_EQ(fd_hlc_ms(a), 1000);
	CHECK_EQ(fd_hlc_logical(a), 0);
	b = fd_hlc_now(&c, 1000);
	CHECK_EQ(b, a + 1);
	/* Wall clock steps back: the HLC does not. */
	d = fd_hlc_now(&c, 10);
	CHECK_INT(d, >, b);
	CHECK_EQ(fd_hlc_ms(d), 1000);
	CHECK_EQ(fd_hlc_ms(fd_hlc_now(&c, 2000)), 2000);
}

TEST(logical_overflow_borrows_a_millisecond)
{
	struct fd_hlc c;
	uint64_t t = 0, prev;

	fd_hlc_init(&c, 0);
	prev = fd_hlc_now(&c, 500);
	for (unsigned i = 0; i < FD_HLC_LOGICAL_MAX + 10u; i++) {
		t = fd_hlc_now(&c, 500);
		if (t <= prev) {
			CHECK_INT(t, >, prev);
			return;
		}
		prev = t;
	}
	CHECK_EQ(fd_hlc_ms(t), 501);
	CHECK_EQ(fd_hlc_logical(t), 9);
}

TEST(update_takes_the_max_and_rejects_far_future)
{
	struct fd_hlc c;
	uint64_t out = 0, before;

	fd_hlc_init(&c, 5000);
	fd_hlc_now(&c, 1000);
	CHECK_EQ(fd_hlc_update(&c, fd_hlc_make(3000, 7), 1000, &out), 0);
	CHECK_EQ(out, fd_hlc_make(3000, 8));
	/* Older remote: we still move forward. */
	CHECK_EQ(fd_hlc_update(&c, fd_hlc_make(10, 0), 1000, &out), 0);
	CHECK_EQ(out, fd_hlc_make(3000, 9));
	/* Exactly at the bound is accepted, one beyond is not. */
	CHECK_EQ(fd_hlc_update(&c, fd_hlc_make(6000, 0), 1000, NULL), 0);
	before = c.last;
	errno = 0;
	CHECK_EQ(fd_hlc_update(&c, fd_hlc_make(6001, 0), 1000, &out), -1);
	CHECK_EQ(errno, ERANGE);
	CHECK_EQ(c.last, before);
	CHECK_EQ(fd_hlc_cmp(1, 2), -1);
	CHECK_EQ(fd_hlc_cmp(2, 2), 0);
	CHECK_EQ(fd_hlc_cmp(3, 2), 1);
}

TEST(text_form_round_trips_and_sorts)
{
	char a[FD_HLC_STR_LEN], b[FD_HLC_STR_LEN];
	uint64_t t;

	fd_hlc_format(fd_hlc_make(0x190f5c2a1b3ULL, 1), a, sizeof(a));
	CHECK_STR(a, "0190f5c2a1b3-0001");
	CHECK_EQ(fd_hlc_parse(a, &t), 0);
	CHECK_EQ(t, fd_hlc_make(0x190f5c2a1b3ULL, 1));
	CHECK_EQ(fd_hlc_parse("0190f5c2a1b3-000", &t), -1);
	CHECK_EQ(fd_hlc_parse("0190f5c2a1b3-00011", &t), -1);
	CHECK_EQ(fd_hlc_parse("0190F5c2a1b3-0001", &t), -1);
	CHECK_EQ(fd_hlc_parse("0190f5c2a1b3_0001", &t), -1);
	CHECK_EQ(fd_hlc_parse("", &t), -1);
	for (int i = 0; i < 2000; i++) {
		uint64_t x = unit_rand() >> 1, y = unit_rand() >> 1;

		fd_hlc_format(x, a, sizeof(a));
		fd_hlc_format(y, b, sizeof(b));
		CHECK_INT(fd_hlc_cmp(x, y), ==,
			  (strcmp(a, b) > 0) - (strcmp(a, b) < 0));
		CHECK_EQ(fd_hlc_parse(a, &t), 0);
		CHECK_EQ(t, x);
	}
}

/* Random runs over 4 clocks with skewed, jumping wall clocks: every receive
 * is ordered after its send, every clock is strictly monotonic, and the
 * physical part never exceeds the largest wall time seen plus the one-ms
 * overflow allowance per 65536 events. */
TEST(random_message_runs_keep_causality)
{
	for (int run = 0; run < 200; run++) {
		struct fd_hlc c[4];
		uint64_t wall[4], last[4] = {0}, maxwall = 0;

		for (int i = 0; i < 4; i++) {
			fd_hlc_init(&c[i], 1000000);
			wall[i] = 1000000 + unit_rand_below(5000);
			if (wall[i] > maxwall)
				maxwall = wall[i];
		}
		for (int step = 0; step < 500; step++) {
			int i = (int)unit_rand_below(4),
			    j = (int)unit_rand_below(4);
			uint64_t t, r;

			wall[i] += unit_rand_below(3);
			if (unit_rand_below(50) == 0)
				wall[i] -= unit_rand_below(100); /* NTP step back */
			if (wall[i] > maxwall)
				maxwall = wall[i];
			t = fd_hlc_now(&c[i], wall[i]);
			CHECK_INT(t, >, last[i]);
			last[i] = t;
			if (fd_hlc_update(&c[j], t, wall[j], &r) == 0) {
				CHECK_INT(r, >, t);
				CHECK_INT(r, >, last[j]);
				last[j] = r;
			} else {
				CHECK(0);
			}
			CHECK_INT(fd_hlc_ms(last[j]), <=, maxwall + 1);
			if (unit_failed)
				return;
		}
		if (unit_failed)
			return;
	}
}
