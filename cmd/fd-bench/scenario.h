/* fd-bench internals: scenarios and the options they see. */
#ifndef FD_BENCH_SCENARIO_H
#define FD_BENCH_SCENARIO_H

#include <stdint.h>

#include "err.h"

#define MAX_FIGURES 4
#define BENCH_SKIP (-2) /* a run that cannot be done on this system */

struct bench_opts {
	const char *fd_node;
	const char *profile;
	int64_t duration_ms; /* for scenarios that run for a while */
	int64_t timeout_ms;  /* the longest one run may wait for a condition */
	long entries; /* names per run (--entries; 0: the scenario's default) */
	int progress; /* print progress on stderr */
	int encrypt;  /* --encrypt: the nodes share a generated cluster key */
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
	/* One run: fills values[i] for each figure. Returns 0, or -1 with err,
	 * or BENCH_SKIP with err saying why it cannot run here. */
	int (*run)(const struct bench_opts *o, int nodes, double *values,
		   struct fd_err *err);
	/* Takes --entries when not 0: the default number of names per run
	 * (o->entries is set to it unless --entries was given). */
	long default_entries;
};

/* One table per file of scenarios. */
extern const struct scenario membership_scenarios[];
extern const int membership_nscenarios;
extern const struct scenario registry_scenarios[];
extern const int registry_nscenarios;
extern const struct scenario pubsub_scenarios[];
extern const int pubsub_nscenarios;
extern const struct scenario discover_scenarios[];
extern const int discover_nscenarios;
extern const struct scenario partition_scenarios[];
extern const int partition_nscenarios;
extern const struct scenario mcast_scenarios[]; /* discover.mdns, .gossip */
extern const int mcast_nscenarios;

/* Every scenario in list order: i from 0; NULL past the last. */
const struct scenario *bench_scenario(int i);
/* The scenario of that name, or NULL. */
const struct scenario *bench_scenario_find(const char *name);

#endif
