#include "fault.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>

static struct fd_fault_table tab;

static struct fd_fault_rule rule(const char *tag, const char *peer, int dir,
				 int action, double p, int64_t expires_at)
{
	struct fd_fault_rule r = {.dir = dir,
				  .action = action,
				  .probability = p,
				  .expires_at = expires_at};

	snprintf(r.tag, sizeof(r.tag), "%s", tag);
	snprintf(r.peer, sizeof(r.peer), "%s", peer);
	if (action == FD_FAULT_DELAY)
		r.delay_ms = 100;
	return r;
}

TEST(names_round_trip)
{
	for (int d = FD_FAULT_IN; d <= FD_FAULT_BOTH; d++)
		CHECK_EQ(fd_fault_parse_dir(fd_fault_dir_name(d)), d);
	for (int a = FD_FAULT_DROP; a <= FD_FAULT_DUPLICATE; a++)
		CHECK_EQ(fd_fault_parse_action(fd_fault_action_name(a)), a);
	CHECK_EQ(fd_fault_parse_dir("sideways"), -1);
	CHECK_EQ(fd_fault_parse_action("explode"), -1);
}

TEST(validation_rejects_bad_rules)
{
	struct fd_fault_rule r;
	struct fd_err err;

	fd_fault_init(&tab);
	r = rule("t", "n1", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), 0);
	r.probability = 0.5;
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("t", "n1", FD_FAULT_BOTH, FD_FAULT_LOSS, 1.5, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r.probability = 0;
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("", "n1", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("a b", "n1", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("t", "", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("t", "n1", 0, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("t", "n1", FD_FAULT_IN, 9, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("t", "n1", FD_FAULT_IN, FD_FAULT_DELAY, 1, 1000);
	r.delay_ms = -1;
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r.delay_ms = 0;
	CHECK_EQ(fd_fault_validate(&r, 0, &err), -1);
	r = rule("t", "n1", FD_FAULT_IN, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_validate(&r, 1000, &err), -1); /* expired */
	errno = 0;
	CHECK_EQ(fd_fault_add(&tab, &r, 1000, &err), 0);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(tab.n, 0);
}

TEST(direction_semantics)
{
	struct fd_fault_rule r;
	struct fd_fault_verdict v;
	uint64_t rng = unit_seed();

	fd_fault_init(&tab);
	r = rule("t", "n1", FD_FAULT_IN, FD_FAULT_DROP, 1, 1000);
	CHECK(fd_fault_add(&tab, &r, 0, NULL) != 0);
	CHECK_EQ(fd_fault_check(&tab, 1, "n1", FD_FAULT_IN, &rng, &v), 1);
	CHECK_EQ(v.drop, 1);
	CHECK_EQ(fd_fault_check(&tab, 1, "n1", FD_FAULT_OUT, &rng, &v), 0);
	CHECK_EQ(fd_fault_check(&tab, 1, "n2", FD_FAULT_IN, &rng, &v), 0);
	r = rule("t", "n2", FD_FAULT_OUT, FD_FAULT_DROP, 1, 1000);
	fd_fault_add(&tab, &r, 0, NULL);
	CHECK_EQ(fd_fault_check(&tab, 1, "n2", FD_FAULT_OUT, &rng, &v), 1);
	CHECK_EQ(fd_fault_check(&tab, 1, "n2", FD_FAULT_IN, &rng, &v), 0);
	r = rule("t", "n3", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	fd_fault_add(&tab, &r, 0, NULL);
	CHECK_EQ(fd_fault_check(&tab, 1, "n3", FD_FAULT_OUT, &rng, &v), 1);
	CHECK_EQ(fd_fault_check(&tab, 1, "n3", FD_FAULT_IN, &rng, &v), 1);
	r = rule("t", "*", FD_FAULT_OUT, FD_FAULT_DUPLICATE, 1, 1000);
	fd_fault_add(&tab, &r, 0, NULL);
	CHECK_EQ(fd_fault_check(&tab, 1, "zz", FD_FAULT_OUT, &rng, &v), 1);
	CHECK_EQ(v.duplicate, 1);
	CHECK_EQ(v.drop, 0);
	/* drop wins over duplicate */
	CHECK_EQ(fd_fault_check(&tab, 1, "n3", FD_FAULT_OUT, &rng, &v), 1);
	CHECK_EQ(v.drop, 1);
	CHECK_EQ(v.duplicate, 0);
	CHECK_EQ(tab.rules[0].matched, 1);
	CHECK_EQ(tab.rules[0].applied, 1);
	CHECK_EQ(tab.rules[0].dropped, 1);
	CHECK_EQ(tab.rules[3].duplicated, 1);
	CHECK_EQ(tab.rules[3].dropped, 0);
}

TEST(expired_rules_never_apply)
{
	uint64_t rng = unit_seed();

	for (int round = 0; round < 200; round++) {
		struct fd_fault_verdict v;
		int64_t now = (int64_t)unit_rand_below(10000);
		size_t n = 1 + unit_rand_below(20), live = 0;
		char peer[8];

		fd_fault_init(&tab);
		for (size_t i = 0; i < n; i++) {
			int64_t exp = 1 + (int64_t)unit_rand_below(20000);
			struct fd_fault_rule r = rule("t", "p", FD_FAULT_BOTH,
						      FD_FAULT_DROP, 1, exp);

			CHECK(fd_fault_add(&tab, &r, 0, NULL) != 0);
			live += exp > now;
		}
		snprintf(peer, sizeof(peer), "p");
		CHECK_EQ(fd_fault_check(&tab, now, peer, FD_FAULT_OUT, &rng, &v),
			 live > 0);
		for (size_t i = 0; i < tab.n; i++)
			if (tab.rules[i].expires_at <= now)
				CHECK_EQ(tab.rules[i].matched, 0);
		CHECK_EQ(fd_fault_expire(&tab, now), n - live);
		CHECK_EQ(tab.n, live);
		for (size_t i = 0; i < tab.n; i++)
			CHECK_INT(tab.rules[i].expires_at, >, now);
		if (live)
			CHECK_INT(fd_fault_next_expiry(&tab), >, now);
		else
			CHECK_EQ(fd_fault_next_expiry(&tab), INT64_MAX);
	}
}

TEST(loss_drops_about_p)
{
	static const double ps[] = {0.05, 0.2, 0.5, 0.9};

	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		struct fd_fault_rule r = rule("t", "n1", FD_FAULT_BOTH,
					      FD_FAULT_LOSS, ps[k], 1000);
		struct fd_fault_verdict v;
		uint64_t rng = unit_seed() + k;
		int drops = 0, n = 20000;

		fd_fault_init(&tab);
		fd_fault_add(&tab, &r, 0, NULL);
		for (int i = 0; i < n; i++)
			drops += fd_fault_check(&tab, 1, "n1", FD_FAULT_OUT,
						&rng, &v) &&
				 v.drop;
		/* 20000 draws: a standard deviation below 0.0036 */
		CHECK_DBL((double)drops / n, ps[k], 0.02);
		CHECK_EQ(tab.rules[0].matched, (uint64_t)n);
		CHECK_EQ(tab.rules[0].applied, (uint64_t)drops);
		CHECK_EQ(tab.rules[0].dropped, (uint64_t)drops);
		CHECK_EQ(tab.rules[0].delayed + tab.rules[0].duplicated, 0);
		CHECK_EQ(tab.dropped, (uint64_t)drops);
	}
}

TEST(delay_stays_within_jitter)
{
	struct fd_fault_rule r =
		rule("t", "n1", FD_FAULT_OUT, FD_FAULT_DELAY, 1, 1000);
	struct fd_fault_verdict v;
	uint64_t rng = unit_seed();
	int64_t lo = INT64_MAX, hi = 0;

	r.delay_ms = 200;
	r.jitter_ms = 50;
	fd_fault_init(&tab);
	fd_fault_add(&tab, &r, 0, NULL);
	for (int i = 0; i < 5000; i++) {
		CHECK_EQ(fd_fault_check(&tab, 1, "n1", FD_FAULT_OUT, &rng, &v), 1);
		CHECK_EQ(v.drop, 0);
		if (v.delay_ms < lo)
			lo = v.delay_ms;
		if (v.delay_ms > hi)
			hi = v.delay_ms;
	}
	CHECK_INT(lo, >=, 150);
	CHECK_INT(hi, <=, 250);
	CHECK_EQ(tab.rules[0].delayed, 5000);
	CHECK_EQ(tab.rules[0].dropped, 0);
	CHECK_INT(lo, <, 160); /* the whole range is used */
	CHECK_INT(hi, >, 240);
}

TEST(tags_replace_and_remove)
{
	struct fd_fault_rule rs[3];
	struct fd_fault_verdict v;
	struct fd_err err;
	uint64_t rng = 1, id;

	fd_fault_init(&tab);
	rs[0] = rule("x", "n1", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	rs[1] = rule("x", "n2", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	rs[2] = rule("x", "n3", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	id = fd_fault_add(&tab, &rs[2], 0, NULL);
	CHECK(id != 0);
	CHECK_EQ(fd_fault_replace_tag(&tab, "a", rs, 2, 0, &err), 0);
	CHECK_EQ(tab.n, 3);
	CHECK(strcmp(tab.rules[1].tag, "a") == 0);
	/* replacing a's rules leaves x's alone */
	CHECK_EQ(fd_fault_replace_tag(&tab, "a", &rs[1], 1, 0, &err), 0);
	CHECK_EQ(tab.n, 2);
	CHECK_EQ(fd_fault_check(&tab, 1, "n1", FD_FAULT_OUT, &rng, &v), 0);
	CHECK_EQ(fd_fault_check(&tab, 1, "n2", FD_FAULT_OUT, &rng, &v), 1);
	CHECK_EQ(fd_fault_check(&tab, 1, "n3", FD_FAULT_OUT, &rng, &v), 1);
	/* all or nothing: one bad rule changes nothing */
	rs[1].probability = 2;
	CHECK_EQ(fd_fault_replace_tag(&tab, "a", rs, 2, 0, &err), -1);
	CHECK(strstr(err.msg, "rule 1") != NULL);
	CHECK_EQ(tab.n, 2);
	CHECK_EQ(fd_fault_remove_tag(&tab, "a"), 1);
	CHECK_EQ(fd_fault_remove_tag(&tab, "a"), 0);
	CHECK_EQ(fd_fault_remove_id(&tab, id), 0);
	CHECK_EQ(fd_fault_remove_id(&tab, id), -1);
	CHECK_EQ(tab.n, 0);
	fd_fault_add(&tab, &rs[0], 0, NULL);
	fd_fault_add(&tab, &rs[2], 0, NULL);
	CHECK_EQ(fd_fault_remove_tag(&tab, NULL), 2);
}

TEST(capacity_is_enforced_all_or_nothing)
{
	static struct fd_fault_rule rs[FD_FAULT_MAX + 1];
	struct fd_err err;

	fd_fault_init(&tab);
	for (size_t i = 0; i <= FD_FAULT_MAX; i++)
		rs[i] = rule("t", "n", FD_FAULT_BOTH, FD_FAULT_DROP, 1, 1000);
	CHECK_EQ(fd_fault_replace_tag(&tab, "t", rs, FD_FAULT_MAX + 1, 0, &err), -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(tab.n, 0);
	CHECK_EQ(fd_fault_replace_tag(&tab, "t", rs, FD_FAULT_MAX, 0, &err), 0);
	CHECK_EQ(fd_fault_add(&tab, &rs[0], 0, &err), 0);
	/* replacing the same tag frees its room first */
	CHECK_EQ(fd_fault_replace_tag(&tab, "t", rs, FD_FAULT_MAX, 0, &err), 0);
	CHECK_EQ(fd_fault_replace_tag(&tab, "u", rs, 1, 0, &err), -1);
}

TEST(random_table_matches_a_model)
{
	uint64_t rng = unit_seed();

	for (int round = 0; round < 300; round++) {
		struct fd_fault_verdict v;
		int64_t now = (int64_t)unit_rand_below(100);
		size_t n = unit_rand_below(8);
		int want_drop = 0, want_dup = 0;
		const char *peers[] = {"a", "b", "*"};
		int dir = 1 + (int)unit_rand_below(2);

		fd_fault_init(&tab);
		for (size_t i = 0; i < n; i++) {
			int action = unit_rand_below(2) ? FD_FAULT_DROP
							: FD_FAULT_DUPLICATE;
			const char *peer = peers[unit_rand_below(3)];
			int rdir = 1 + (int)unit_rand_below(3);
			int64_t exp = 1 + (int64_t)unit_rand_below(200);
			struct fd_fault_rule r =
				rule("t", peer, rdir, action, 1, exp);

			fd_fault_add(&tab, &r, 0, NULL);
			if (exp > now && (rdir & dir) &&
			    (peer[0] == '*' || peer[0] == 'a')) {
				want_drop |= action == FD_FAULT_DROP;
				want_dup |= action == FD_FAULT_DUPLICATE;
			}
		}
		fd_fault_check(&tab, now, "a", dir, &rng, &v);
		CHECK_EQ(v.drop, want_drop);
		CHECK_EQ(v.duplicate, want_dup && !want_drop);
	}
}
