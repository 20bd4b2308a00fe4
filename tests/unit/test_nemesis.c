#include "nemesis.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>

static void random_order(int *order, int n)
{
	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)unit_rand_below((uint64_t)i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
}

TEST(prng_known_values_and_ranges)
{
	uint64_t s = 0;
	int a[50], seen[50] = {0};

	/* splitmix64's published first outputs for seed 0 */
	CHECK(fd_prng_next(&s) == 0xE220A8397B1DCDAFULL);
	CHECK(fd_prng_next(&s) == 0x6E789E6AA1B965F4ULL);
	CHECK(fd_prng_next(&s) == 0x06C45D188009454FULL);
	for (int i = 0; i < 10000; i++) {
		uint64_t n = 1 + unit_rand_below(1000);

		CHECK(fd_prng_below(&s, n) < n);
	}
	for (int i = 0; i < 50; i++)
		a[i] = i;
	fd_prng_shuffle(&s, a, 50);
	for (int i = 0; i < 50; i++)
		seen[a[i]]++;
	for (int i = 0; i < 50; i++)
		CHECK_EQ(seen[i], 1);
}

TEST(sides_drop_exactly_across)
{
	struct fd_grudge g;
	int side[FD_NEMESIS_MAX];

	for (int round = 0; round < 200; round++) {
		int n = 1 + (int)unit_rand_below(FD_NEMESIS_MAX);

		for (int i = 0; i < n; i++)
			side[i] = (int)unit_rand_below(4);
		fd_grudge_sides(&g, n, side);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				CHECK_EQ(g.drop[i][j], side[i] != side[j]);
	}
}

TEST(bridge_sees_everyone_the_halves_do_not_see_each_other)
{
	struct fd_grudge g;
	struct fd_err err;
	int order[FD_NEMESIS_MAX] = {0, 1, 2};

	CHECK_EQ(fd_grudge_bridge(&g, 2, order, &err), -1);
	order[1] = 0;
	CHECK_EQ(fd_grudge_bridge(&g, 3, order, &err), -1);
	CHECK(strstr(err.msg, "permutation") != NULL);
	for (int round = 0; round < 200; round++) {
		int n = 3 + (int)unit_rand_below(FD_NEMESIS_MAX - 2), b,
		    inA[FD_NEMESIS_MAX];

		random_order(order, n);
		CHECK_EQ(fd_grudge_bridge(&g, n, order, &err), 0);
		b = order[n / 2];
		for (int k = 0; k < n; k++)
			inA[order[k]] = k < n / 2;
		CHECK_EQ(fd_grudge_heard(&g, b), n);
		for (int i = 0; i < n; i++) {
			CHECK_EQ(g.drop[i][b], 0);
			for (int j = 0; j < n; j++) {
				CHECK(fd_grudge_symmetric(&g, i, j));
				if (i != b && j != b)
					CHECK_EQ(g.drop[i][j], inA[i] != inA[j]);
			}
		}
	}
}

TEST(ring_every_node_hears_a_different_majority)
{
	struct fd_grudge g;
	struct fd_err err;
	int order[FD_NEMESIS_MAX];

	for (int round = 0; round < 200; round++) {
		int n = 3 + (int)unit_rand_below(FD_NEMESIS_MAX - 2);

		random_order(order, n);
		CHECK_EQ(fd_grudge_ring(&g, n, order, &err), 0);
		for (int i = 0; i < n; i++) {
			CHECK_EQ(fd_grudge_heard(&g, i), n / 2 + 1);
			CHECK_EQ(g.drop[i][i], 0);
			for (int j = 0; j < i; j++)
				CHECK(memcmp(g.drop[i], g.drop[j], (size_t)n) != 0);
			/* an odd majority is a window centred on the node */
			if ((n / 2 + 1) % 2)
				for (int j = 0; j < n; j++)
					CHECK(fd_grudge_symmetric(&g, i, j));
		}
	}
}

TEST(ring_of_five_example)
{
	struct fd_grudge g;
	int order[5] = {0, 1, 2, 3, 4};

	CHECK_EQ(fd_grudge_ring(&g, 5, order, NULL), 0);
	/* node 2 hears 1, 2, 3 and drops 0 and 4 */
	CHECK_EQ(g.drop[2][0], 1);
	CHECK_EQ(g.drop[2][1], 0);
	CHECK_EQ(g.drop[2][3], 0);
	CHECK_EQ(g.drop[2][4], 1);
	CHECK_EQ(g.drop[0][4], 0);
	CHECK_EQ(g.drop[0][2], 1);
}

TEST(names)
{
	for (int k = 0; k < FD_NEM_COUNT; k++)
		CHECK_EQ(fd_nemesis_parse(fd_nemesis_name(k)), k);
	CHECK_EQ(fd_nemesis_parse("meteor"), -1);
	CHECK_EQ(fd_nemesis_min_nodes(FD_NEM_RING), 3);
	CHECK_EQ(fd_nemesis_min_nodes(FD_NEM_SPLIT), 2);
	CHECK_EQ(fd_nemesis_min_nodes(FD_NEM_KILL), 1);
}

TEST(chaos_same_seed_same_schedule)
{
	unsigned all = (1u << FD_NEM_COUNT) - 1;

	for (int round = 0; round < 50; round++) {
		uint64_t seed = unit_rand(), s1 = seed, s2 = seed;
		int n = 1 + (int)unit_rand_below(FD_NEMESIS_MAX);
		unsigned mask = (unsigned)unit_rand_below(all) + 1;
		struct fd_chaos_fault a, b;
		struct fd_err err;

		for (int k = 0; k < 20; k++) {
			int ra = fd_chaos_draw(&s1, n, mask, &a, &err),
			    rb = fd_chaos_draw(&s2, n, mask, &b, &err);

			CHECK_EQ(ra, rb);
			if (ra < 0)
				break;
			CHECK(memcmp(&a, &b, sizeof(a)) == 0);
		}
	}
}

TEST(chaos_draws_stay_in_bounds_and_cover_every_kind)
{
	unsigned all = (1u << FD_NEM_COUNT) - 1;
	uint64_t s = unit_rand();
	int count[FD_NEM_COUNT] = {0};
	struct fd_chaos_fault f;
	struct fd_grudge g;
	struct fd_err err;

	CHECK_EQ(fd_chaos_draw(&s, 2, 1u << FD_NEM_RING, &f, &err), -1);
	CHECK(strstr(err.msg, "fits 2 nodes") != NULL);
	CHECK_EQ(fd_chaos_draw(&s, 0, all, &f, &err), -1);
	for (int k = 0; k < 4000; k++) {
		int n = 1 + (int)unit_rand_below(8), heard = 0;
		unsigned mask = (unsigned)unit_rand_below(all) + 1;

		if (fd_chaos_draw(&s, n, mask, &f, &err) < 0) {
			/* only when no kind of the mask fits */
			for (int kind = 0; kind < FD_NEM_COUNT; kind++)
				CHECK(!(mask & (1u << kind)) ||
				      fd_nemesis_min_nodes(kind) > n);
			continue;
		}
		CHECK(mask & (1u << f.kind));
		CHECK(n >= fd_nemesis_min_nodes(f.kind));
		count[f.kind]++;
		fd_chaos_grudge(&f, &g);
		for (int i = 0; i < n; i++)
			heard += fd_grudge_heard(&g, i);
		switch (f.kind) {
		case FD_NEM_SPLIT:
		case FD_NEM_HALVES:
			CHECK(f.cut >= 1 && f.cut < n);
			CHECK(heard < n * n);
			break;
		case FD_NEM_ISOLATE:
			CHECK_EQ(fd_grudge_heard(&g, f.node), 1);
			break;
		case FD_NEM_BRIDGE:
			CHECK_EQ(fd_grudge_heard(&g, f.node), n);
			break;
		case FD_NEM_SLOW:
			CHECK(f.nsel >= 1 && f.nsel <= n);
			CHECK(f.delay_ms >= 50 && f.jitter_ms < f.delay_ms);
			CHECK_EQ(heard, n * n);
			break;
		case FD_NEM_FLAKY:
			CHECK(f.nsel >= 1 && f.nsel <= n);
			CHECK(f.loss_pct >= 1 && f.loss_pct <= 100);
			break;
		case FD_NEM_KILL: CHECK(f.node >= 0 && f.node < n); break;
		}
	}
	for (int kind = 0; kind < FD_NEM_COUNT; kind++)
		CHECK(count[kind] > 0);
}
