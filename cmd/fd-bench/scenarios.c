/* The list of every scenario, from the files that define them. */
#include "scenario.h"

#include <stddef.h>
#include <string.h>

const struct scenario *bench_scenario(int i)
{
	static const struct {
		const struct scenario *table;
		const int *n;
	} tables[] = {
		{membership_scenarios, &membership_nscenarios},
		{registry_scenarios, &registry_nscenarios},
		{pubsub_scenarios, &pubsub_nscenarios},
		{discover_scenarios, &discover_nscenarios},
	};

	for (size_t t = 0; i >= 0 && t < sizeof(tables) / sizeof(tables[0]); t++) {
		if (i < *tables[t].n)
			return &tables[t].table[i];
		i -= *tables[t].n;
	}
	return NULL;
}

const struct scenario *bench_scenario_find(const char *name)
{
	const struct scenario *s;

	for (int i = 0; (s = bench_scenario(i)); i++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}
