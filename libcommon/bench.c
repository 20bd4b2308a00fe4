#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double fd_percentile(const double *sorted, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	if (p <= 0)
		return sorted[0];
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

void fd_stats_of(double *v, size_t n, struct fd_stats *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	out->n = n;
	out->min = v[0];
	out->max = v[n - 1];
	out->mean = sum / (double)n;
	out->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int fd_bench_smaller_is_better(const char *unit)
{
	static const char *const smaller[] = {
		"s",   "ms",  "us",  "ns",    "bytes",	    "B",
		"KiB", "MiB", "GiB", "count", "bytes/entry"};

	for (size_t i = 0; i < sizeof(smaller) / sizeof(smaller[0]); i++)
		if (strcmp(unit, smaller[i]) == 0)
			return 1;
	return 0;
}

enum fd_bench_verdict fd_bench_compare(const struct fd_stats *base,
				       const struct fd_stats *cur,
				       int smaller_is_better,
				       double threshold_pct, double *change_pct)
{
	double t = threshold_pct / 100.0;
	double change = 0;

	if (base->median != 0)
		change = (cur->median - base->median) / fabs(base->median) * 100.0;
	else if (cur->median != 0)
		change = cur->median > 0 ? 100.0 : -100.0;
	if (!smaller_is_better)
		change = -change;
	if (change_pct)
		*change_pct = change;
	if (smaller_is_better) {
		if (cur->min > base->max * (1 + t) && cur->min > base->max)
			return FD_BENCH_REGRESSION;
		if (cur->max * (1 + t) < base->min)
			return FD_BENCH_BETTER;
	} else {
		if (cur->max < base->min * (1 - t) && cur->max < base->min)
			return FD_BENCH_REGRESSION;
		if (cur->min > base->max * (1 + t))
			return FD_BENCH_BETTER;
	}
	return FD_BENCH_SAME;
}
