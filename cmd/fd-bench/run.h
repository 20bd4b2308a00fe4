/* Running scenarios, printing results, comparing with a baseline. */
#ifndef FD_BENCH_RUN_H
#define FD_BENCH_RUN_H

#include "scenario.h"

#define MAX_SIZES 16

struct bench_run {
	struct bench_opts opts;
	int nodes[MAX_SIZES];
	int nnodes;
	int runs;
	const char *baseline_path;
	double threshold;
	const char *format;
};

int bench_parse_nodes(struct bench_run *r, const char *list);
/* Runs the named scenarios; returns the exit status (0, 1 on a failed run,
 * 2 for an unknown scenario, 6 on a regression, 7 for a bad baseline). */
int bench_run_all(struct bench_run *r, int argc, char **argv);

#endif
