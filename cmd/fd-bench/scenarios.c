/* The list of every scenario, from the files that define them. */
#include "scenario.h"

#include <stddef.h>

int bench_scenario_count(void)
{
	return bench_nscenarios + bench_pubsub_nscenarios;
}

const struct scenario *bench_scenario_at(int i)
{
	if (i < 0 || i >= bench_scenario_count())
		return NULL;
	if (i < bench_nscenarios)
		return &bench_scenarios[i];
	return &bench_pubsub_scenarios[i - bench_nscenarios];
}
