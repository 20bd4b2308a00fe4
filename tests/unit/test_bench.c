#include "bench.h"
#include "unit.h"

TEST(stats_basic)
{
	double v[] = {5, 1, 4, 2, 3};
	double w[] = {4, 1, 3, 2};
	struct fd_stats s;

	fd_stats_of(v, 5, &s);
	CHECK_DBL(s.median, 3, 1e-12);
	CHECK_DBL(s.min, 1, 1e-12);
	CHECK_DBL(s.max, 5, 1e-12);
	CHECK_DBL(s.mean, 3, 1e-12);
	fd_stats_of(w, 4, &s);
	CHECK_DBL(s.median, 2.5, 1e-12);
	fd_stats_of(w, 0, &s);
	CHECK_EQ(s.n, 0);
}

TEST(percentiles_nearest_rank)
{
	double v[100];

	for (int i = 0; i < 100; i++)
		v[i] = i + 1;
	CHECK_DBL(fd_percentile(v, 100, 50), 50, 1e-12);
	CHECK_DBL(fd_percentile(v, 100, 99), 99, 1e-12);
	CHECK_DBL(fd_percentile(v, 100, 99.9), 100, 1e-12);
	CHECK_DBL(fd_percentile(v, 100, 0), 1, 1e-12);
	CHECK_DBL(fd_percentile(v, 1, 99), 1, 1e-12);
}

TEST(units_direction)
{
	CHECK(fd_bench_smaller_is_better("s"));
	CHECK(fd_bench_smaller_is_better("MiB"));
	CHECK(!fd_bench_smaller_is_better("msgs/s"));
	CHECK(!fd_bench_smaller_is_better("MB/s"));
}

TEST(compare_examples)
{
	struct fd_stats base = {.median = 1.0, .min = 0.9, .max = 1.1, .n = 5};
	struct fd_stats noisy = {.median = 1.3, .min = 1.05, .max = 1.6, .n = 5};
	struct fd_stats worse = {.median = 1.5, .min = 1.4, .max = 1.6, .n = 5};
	struct fd_stats better = {.median = 0.5, .min = 0.45, .max = 0.55, .n = 5};
	double ch;

	/* Median 30% worse, but the ranges overlap: noise, not a regression. */
	CHECK_EQ(fd_bench_compare(&base, &noisy, 1, 10, &ch), FD_BENCH_SAME);
	CHECK_DBL(ch, 30, 1e-9);
	CHECK_EQ(fd_bench_compare(&base, &worse, 1, 10, &ch), FD_BENCH_REGRESSION);
	CHECK_EQ(fd_bench_compare(&base, &worse, 1, 50, &ch), FD_BENCH_SAME);
	CHECK_EQ(fd_bench_compare(&base, &better, 1, 10, &ch), FD_BENCH_BETTER);
	CHECK_DBL(ch, -50, 1e-9);
	/* Rates: bigger is better, so the same numbers read the other way. */
	CHECK_EQ(fd_bench_compare(&worse, &base, 0, 10, &ch), FD_BENCH_REGRESSION);
	CHECK_EQ(fd_bench_compare(&base, &worse, 0, 10, &ch), FD_BENCH_BETTER);
}

/* Property: a figure never regresses against itself or against any run whose
 * range overlaps it, whatever the threshold. */
TEST(compare_overlap_never_regresses_random)
{
	for (int i = 0; i < 20000; i++) {
		double lo = (double)unit_rand_below(1000) + 1;
		double hi = lo + (double)unit_rand_below(1000);
		double mid = lo + (hi - lo) * (double)unit_rand_below(101) / 100.0;
		double clo = lo + (mid - lo) * (double)unit_rand_below(101) / 100.0;
		double chi = mid + (double)unit_rand_below(2000);
		struct fd_stats base = {
			.median = (lo + hi) / 2, .min = lo, .max = hi, .n = 3};
		struct fd_stats cur = {
			.median = (clo + chi) / 2, .min = clo, .max = chi, .n = 3};
		double thr = (double)unit_rand_below(50);

		if (fd_bench_compare(&base, &base, (int)(i & 1), thr, NULL) !=
			    FD_BENCH_SAME ||
		    fd_bench_compare(&base, &cur, (int)(i & 1), thr, NULL) ==
			    FD_BENCH_REGRESSION) {
			unit_fail(__FILE__, __LINE__, "case %d: [%g,%g] vs [%g,%g]",
				  i, lo, hi, clo, chi);
			return;
		}
	}
}
