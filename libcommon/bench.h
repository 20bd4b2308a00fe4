/* Benchmark figures: summaries of repeated measurements and the regression
 * rule fd-bench applies against a baseline. Pure: no I/O. */
#ifndef FD_BENCH_H
#define FD_BENCH_H

#include <stddef.h>

struct fd_stats {
	double median, min, max, mean;
	size_t n;
};

/* Summarizes v[0..n) (reordered in place). n == 0 gives all zeros. */
void fd_stats_of(double *v, size_t n, struct fd_stats *out);
/* The p-th percentile (0..100) of sorted[0..n), nearest-rank. */
double fd_percentile(const double *sorted, size_t n, double p);

/* Whether smaller values of a unit are better: "s", "ms", "us", "bytes",
 * "MiB", "count" are; rates ("msgs/s", "MB/s", "ops/s", …) are not.
 * Returns 1 (smaller is better) or 0. */
int fd_bench_smaller_is_better(const char *unit);

enum fd_bench_verdict {
	FD_BENCH_SAME,	     /* within the threshold or within the spread */
	FD_BENCH_BETTER,     /* improved beyond threshold and spread */
	FD_BENCH_REGRESSION, /* worse beyond threshold and spread */
};

/* Compares a new figure with a baseline. A regression is called only when
 * the new figure's whole measured range lies beyond the baseline's range
 * widened by threshold_pct (for smaller-is-better: new.min > base.max ×
 * (1 + t); for bigger-is-better: new.max < base.min × (1 − t)), so noise
 * within the spread of either run never fails a build. *change_pct gets the
 * change of the medians in percent (positive = worse). */
enum fd_bench_verdict fd_bench_compare(const struct fd_stats *base,
				       const struct fd_stats *cur,
				       int smaller_is_better,
				       double threshold_pct, double *change_pct);

#endif
