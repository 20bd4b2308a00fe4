/* fd-bench internals: scenarios and the options they see. */
#ifndef FD_BENCH_SCENARIO_H
#define FD_BENCH_SCENARIO_H

#include <stdint.h>

#include "err.h"

#define MAX_FIGURES 4

struct bench_opts {
	const char *fd_node;
	const char *profile;
	int64_t duration_ms; /* for scenarios that run for a while */
	int64_t timeout_ms;  /* the longest one run may wait for a condition */
	int progress;	     /* print progress on stderr */
};

struct figure {
	const char *name; /* full result name, e.g. "membership.converge" */
	const char *unit;
};

struct scenario {
	const char *name;
	const char *description;
	int uses_nodes; /* takes --nodes */
	int default_nodes;
	struct figure figures[MAX_FIGURES];
	/* One run: fills values[i] for each figure. Returns 0, or -1 with err. */
	int (*run)(const struct bench_opts *o, int nodes, double *values,
		   struct fd_err *err);
};

extern const struct scenario bench_scenarios[]; /* membership.c */
extern const int bench_nscenarios;
extern const struct scenario bench_pubsub_scenarios[]; /* pubsub.c */
extern const int bench_pubsub_nscenarios;

/* Every scenario, in order: the count, and the i-th. */
int bench_scenario_count(void);
const struct scenario *bench_scenario_at(int i);

#endif
