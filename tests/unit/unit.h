/* A minimal unit-test runner.
 *
 * A test file defines tests with TEST(name) { ... } and links with unit.c,
 * which supplies main(): every test runs in registration order, each check
 * failure prints file:line and the values, and the run ends with the line
 * "unit NAME: N passed, M failed". Exit status 1 when any test failed.
 *
 * Randomized tests draw from unit_rand(), seeded from FD_TEST_SEED when set
 * and from a fixed default otherwise; the seed is printed, so a failing run
 * can be replayed exactly. Each test starts from the same seed, so one test's
 * draws do not depend on which tests ran before it.
 */
#ifndef FD_UNIT_H
#define FD_UNIT_H

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Deterministic pseudo-random numbers (xorshift64*). */
uint64_t unit_rand(void);
/* Uniform in [0, n); n > 0. */
uint64_t unit_rand_below(uint64_t n);
uint64_t unit_seed(void);
/* Set by unit_fail; a test may return early when it is set. */
extern int unit_failed;

#define TEST(name)                                                     \
	static void test_##name(void);                                 \
	__attribute__((constructor)) static void register_##name(void) \
	{                                                              \
		unit_register(#name, test_##name);                     \
	}                                                              \
	static void test_##name(void)

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond))                                                      \
			unit_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
	} while (0)

#define CHECK_INT(a, op, b)                                                     \
	do {                                                                    \
		long long a_ = (long long)(a), b_ = (long long)(b);             \
		if (!(a_ op b_))                                                \
			unit_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", \
				  #a, #op, #b, a_, b_);                         \
	} while (0)

#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_DBL(a, b, eps)                                                \
	do {                                                                \
		double a_ = (a), b_ = (b);                                  \
		if (!(a_ - b_ <= (eps) && b_ - a_ <= (eps)))                \
			unit_fail(__FILE__, __LINE__, "%s == %s: %g vs %g", \
				  #a, #b, a_, b_);                          \
	} while (0)

#define CHECK_STR(a, b)                                                    \
	do {                                                               \
		const char *a_ = (a), *b_ = (b);                           \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                     \
			unit_fail(__FILE__, __LINE__,                      \
				  "%s == %s: \"%s\" vs \"%s\"", #a, #b,    \
				  a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	} while (0)

/* Stop the current test at the first failure (for checks later ones rely on). */
#define REQUIRE(cond)            \
	do {                     \
		CHECK(cond);     \
		if (unit_failed) \
			return;  \
	} while (0)

#endif
