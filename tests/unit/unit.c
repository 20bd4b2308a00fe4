#include "unit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define UNIT_MAX 512
#define UNIT_DEFAULT_SEED 0x5eed1234abcdULL

static struct {
	const char *name;
	unit_fn fn;
} tests[UNIT_MAX];
static int ntests;
static uint64_t seed, state;
int unit_failed;

void unit_register(const char *name, unit_fn fn)
{
	if (ntests == UNIT_MAX) {
		fprintf(stderr, "unit: too many tests\n");
		abort();
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	unit_failed = 1;
}

uint64_t unit_rand(void)
{
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545F4914F6CDD1DULL;
}

uint64_t unit_rand_below(uint64_t n)
{
	return unit_rand() % n;
}

uint64_t unit_seed(void)
{
	return seed;
}

int main(int argc, char **argv)
{
	const char *env = getenv("FD_TEST_SEED");
	const char *only = argc > 1 ? argv[1] : NULL;
	const char *prog = strrchr(argv[0], '/');
	int passed = 0, failed = 0;

	prog = prog ? prog + 1 : argv[0];
	seed = env && *env ? strtoull(env, NULL, 0) : UNIT_DEFAULT_SEED;
	if (!seed)
		seed = UNIT_DEFAULT_SEED;
	printf("# %s: seed %" PRIu64 " (FD_TEST_SEED to replay)\n", prog, seed);
	for (int i = 0; i < ntests; i++) {
		if (only && strcmp(only, tests[i].name) != 0)
			continue;
		state = seed;
		unit_failed = 0;
		tests[i].fn();
		fflush(stdout);
		printf("%s %s\n", unit_failed ? "not ok" : "ok", tests[i].name);
		if (unit_failed)
			failed++;
		else
			passed++;
	}
	printf("unit %s: %d passed, %d failed\n", prog, passed, failed);
	return failed ? 1 : 0;
}
