#include "clock.h"
#include "crdt.h"
#include "hlc.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- helpers ---- */

#define S(x) (x), strlen(x)

static struct fd_crdt *must_new(uint64_t id)
{
	struct fd_crdt *c = fd_crdt_new(id, NULL);

	if (!c)
		abort();
	return c;
}

static int reg(struct fd_crdt *c, const char *name, const char *val,
	       uint64_t hlc, struct fd_crdt *delta)
{
	return fd_crdt_register(c, S(name), S(val), hlc, 0, delta, NULL);
}

/* Canonical bytes; the caller frees. */
static unsigned char *enc(const struct fd_crdt *c, size_t *len)
{
	unsigned char *b;

	if (fd_crdt_encode(c, &b, len) < 0)
		abort();
	return b;
}

static int same(const struct fd_crdt *a, const struct fd_crdt *b)
{
	size_t la, lb;
	unsigned char *x = enc(a, &la), *y = enc(b, &lb);
	int r = la == lb && !memcmp(x, y, la);

	free(x);
	free(y);
	return r;
}

/* A copy through the wire format (so every copy also tests the codec). */
static struct fd_crdt *copy(const struct fd_crdt *a)
{
	size_t len;
	unsigned char *b = enc(a, &len);
	struct fd_err err;
	struct fd_crdt *c = fd_crdt_decode(b, len, NULL, &err);

	if (!c) {
		fprintf(stdout, "  decode of own encoding failed: %s\n", err.msg);
		abort();
	}
	free(b);
	return c;
}

/* a ⊔ b as a new state. */
static struct fd_crdt *join(const struct fd_crdt *a, const struct fd_crdt *b)
{
	struct fd_crdt *c = must_new(999);

	if (fd_crdt_merge(c, a) < 0 || fd_crdt_merge(c, b) < 0)
		abort();
	return c;
}

static uint64_t winner_node(const struct fd_crdt *c, const char *name)
{
	const struct fd_crdt_name *r = fd_crdt_lookup(c, S(name));

	return r && r->n ? r->entries[0].dot.node : 0;
}

struct evlog {
	int n;
	enum fd_crdt_event_type type[64];
	uint64_t entry[64], other[64];
	char name[64][32];
};

static void on_event(void *arg, const struct fd_crdt_event *ev)
{
	struct evlog *l = arg;

	if (l->n == 64)
		return;
	l->type[l->n] = ev->type;
	l->entry[l->n] = ev->entry ? ev->entry->dot.node : 0;
	l->other[l->n] = ev->other ? ev->other->dot.node : 0;
	snprintf(l->name[l->n], sizeof(l->name[0]), "%.*s", (int)ev->name_len,
		 ev->name);
	l->n++;
}

/* ---- basics ---- */

TEST(register_lookup_unregister)
{
	struct fd_crdt *a = must_new(1);
	struct evlog log = {0};
	const struct fd_crdt_name *r;
	struct fd_crdt_dot dot;

	fd_crdt_set_events(a, on_event, &log);
	CHECK_EQ(fd_crdt_register(a, S("svc.web"), S("{\"port\":80}"), 10, 0,
				  NULL, &dot),
		 0);
	CHECK_EQ(dot.node, 1);
	CHECK_EQ(dot.counter, 1);
	r = fd_crdt_lookup(a, S("svc.web"));
	REQUIRE(r && r->n == 1);
	CHECK_STR(r->entries[0].value, "{\"port\":80}");
	CHECK_EQ(r->entries[0].hlc, 10);
	CHECK(fd_crdt_lookup(a, S("svc.we")) == NULL);
	CHECK_EQ(log.n, 1);
	CHECK_EQ(log.type[0], FD_CRDT_REGISTERED);
	/* Replace: a new dot, the old one removed, one UPDATED. */
	CHECK_EQ(reg(a, "svc.web", "2", 11, NULL), 0);
	r = fd_crdt_lookup(a, S("svc.web"));
	REQUIRE(r && r->n == 1);
	CHECK_EQ(r->entries[0].dot.counter, 2);
	CHECK_EQ(log.type[1], FD_CRDT_UPDATED);
	CHECK_EQ(fd_crdt_unregister(a, S("svc.web"), NULL), 1);
	CHECK(fd_crdt_lookup(a, S("svc.web")) == NULL);
	CHECK_EQ(log.type[2], FD_CRDT_UNREGISTERED);
	CHECK_EQ(fd_crdt_unregister(a, S("svc.web"), NULL), 0);
	CHECK_EQ(fd_crdt_names(a), 0);
	CHECK_EQ(fd_crdt_cloud(a), 0);
	/* Bad input. */
	errno = 0;
	CHECK_EQ(fd_crdt_register(a, "", 0, S("1"), 1, 0, NULL, NULL), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(reg(a, "tab\there", "1", 1, NULL), -1);
	CHECK_EQ(fd_crdt_register(a, S("x"), "", 0, 1, 0, NULL, NULL), -1);
	CHECK_EQ(fd_crdt_register(a, "\xc3\x28", 2, S("1"), 1, 0, NULL, NULL), -1);
	CHECK_EQ(fd_crdt_register(a, "\xc2\x85", 2, S("1"), 1, 0, NULL, NULL), -1);
	CHECK_EQ(reg(a, "caf\xc3\xa9", "1", 1, NULL), 0);
	fd_crdt_free(a);
}

TEST(list_by_prefix_is_sorted)
{
	struct fd_crdt *a = must_new(1);
	const struct fd_crdt_name **v;
	size_t n;
	const char *names[] = {"b.2", "a.1", "b.10", "b.1", "c", "b"};

	for (size_t i = 0; i < 6; i++)
		CHECK_EQ(reg(a, names[i], "1", i, NULL), 0);
	CHECK_EQ(fd_crdt_list(a, S("b."), &v, &n), 0);
	REQUIRE(n == 3);
	CHECK_STR(v[0]->name, "b.1");
	CHECK_STR(v[1]->name, "b.10");
	CHECK_STR(v[2]->name, "b.2");
	free(v);
	CHECK_EQ(fd_crdt_list(a, NULL, 0, &v, &n), 0);
	CHECK_EQ(n, 6);
	CHECK_STR(v[0]->name, "a.1");
	free(v);
	CHECK_EQ(fd_crdt_list(a, S("zz"), &v, &n), 0);
	CHECK_EQ(n, 0);
	CHECK(v == NULL);
	fd_crdt_free(a);
}

/* ---- conflicts ---- */

TEST(concurrent_registrations_both_survive_one_winner)
{
	struct fd_crdt *a = must_new(7), *b = must_new(3);
	struct fd_crdt *da = fd_crdt_delta_new(NULL), *db = fd_crdt_delta_new(NULL);
	struct evlog la = {0}, lb = {0};
	const struct fd_crdt_name *r;

	fd_crdt_set_events(a, on_event, &la);
	fd_crdt_set_events(b, on_event, &lb);
	/* a registers earlier (hlc 100) than b (200): a wins although its id is higher. */
	CHECK_EQ(reg(a, "leader", "\"a\"", 100, da), 0);
	CHECK_EQ(reg(b, "leader", "\"b\"", 200, db), 0);
	CHECK_EQ(fd_crdt_merge(a, db), 0);
	CHECK_EQ(fd_crdt_merge(b, da), 0);
	CHECK(same(a, b));
	r = fd_crdt_lookup(a, S("leader"));
	REQUIRE(r && r->n == 2);
	CHECK_EQ(winner_node(a, "leader"), 7);
	CHECK_EQ(winner_node(b, "leader"), 7);
	/* a saw a new loser; b saw its own entry lose. Both name the same pair. */
	CHECK_EQ(la.n, 2);
	CHECK_EQ(la.type[1], FD_CRDT_CONFLICT);
	CHECK_EQ(la.entry[1], 7);
	CHECK_EQ(la.other[1], 3);
	CHECK_EQ(lb.n, 3);
	CHECK_EQ(lb.type[1], FD_CRDT_UPDATED);
	CHECK_EQ(lb.type[2], FD_CRDT_CONFLICT);
	CHECK_EQ(lb.entry[2], 7);
	CHECK_EQ(lb.other[2], 3);
	/* Merging again changes nothing and says nothing. */
	CHECK_EQ(fd_crdt_merge(a, db), 0);
	CHECK_EQ(la.n, 2);
	/* The loser yields; a learns it. */
	fd_crdt_clear(db);
	CHECK_EQ(fd_crdt_remove_dot(b, S("leader"), r->entries[1].dot, db), 1);
	CHECK_EQ(fd_crdt_merge(a, db), 0);
	CHECK(same(a, b));
	r = fd_crdt_lookup(a, S("leader"));
	REQUIRE(r && r->n == 1);
	CHECK_EQ(r->entries[0].dot.node, 7);
	fd_crdt_free(a);
	fd_crdt_free(b);
	fd_crdt_free(da);
	fd_crdt_free(db);
}

TEST(equal_hlc_lowest_node_wins_everywhere)
{
	for (int i = 0; i < 200; i++) {
		uint64_t ida = 1 + unit_rand_below(1000),
			 idb = 1001 + unit_rand_below(1000);
		struct fd_crdt *a = must_new(ida), *b = must_new(idb), *x, *y;

		reg(a, "n", "1", 5, NULL);
		reg(b, "n", "2", 5, NULL);
		x = join(a, b);
		y = join(b, a);
		CHECK_EQ(winner_node(x, "n"), ida);
		CHECK(same(x, y));
		fd_crdt_free(a);
		fd_crdt_free(b);
		fd_crdt_free(x);
		fd_crdt_free(y);
	}
}

/* ---- add wins ---- */

TEST(unregister_is_observed_remove_add_wins)
{
	struct fd_crdt *a = must_new(1), *b = must_new(2), *c = must_new(3);
	struct fd_crdt *d = fd_crdt_delta_new(NULL), *e = fd_crdt_delta_new(NULL);
	struct fd_crdt *f = fd_crdt_delta_new(NULL);

	CHECK_EQ(reg(a, "x", "1", 1, d), 0);
	CHECK_EQ(fd_crdt_merge(b, d), 0);
	/* Concurrently: a unregisters what it saw; b replaces (it saw a's dot);
	 * c, which never saw a's entry, registers too. */
	fd_crdt_clear(d);
	CHECK_EQ(fd_crdt_unregister(a, S("x"), d), 1);
	CHECK_EQ(reg(b, "x", "2", 2, e), 0);
	CHECK_EQ(reg(c, "x", "3", 3, f), 0);
	for (int round = 0; round < 2; round++) {
		fd_crdt_merge(a, e);
		fd_crdt_merge(a, f);
		fd_crdt_merge(b, d);
		fd_crdt_merge(b, f);
		fd_crdt_merge(c, e);
		fd_crdt_merge(c, d);
	}
	CHECK(same(a, b));
	CHECK(same(b, c));
	REQUIRE(fd_crdt_lookup(a, S("x")) != NULL);
	CHECK_EQ(fd_crdt_lookup(a, S("x"))->n, 2); /* b's and c's; a's is gone */
	CHECK_EQ(winner_node(a, "x"), 2);
	fd_crdt_free(a);
	fd_crdt_free(b);
	fd_crdt_free(c);
	fd_crdt_free(d);
	fd_crdt_free(e);
	fd_crdt_free(f);
}

/* ---- owner gone ---- */

TEST(node_gone_drops_ephemeral_everywhere_keeps_persistent)
{
	struct fd_crdt *a = must_new(1), *b = must_new(2), *c = must_new(3);
	struct fd_crdt *da = fd_crdt_delta_new(NULL),
		       *late = fd_crdt_delta_new(NULL);
	struct fd_crdt *dc = fd_crdt_delta_new(NULL);
	struct evlog lb = {0};

	fd_crdt_set_events(b, on_event, &lb);
	CHECK_EQ(reg(a, "eph", "1", 1, da), 0);
	CHECK_EQ(fd_crdt_register(a, S("per"), S("2"), 2, 1, da, NULL), 0);
	CHECK_EQ(fd_crdt_merge(b, da), 0);
	CHECK_EQ(fd_crdt_merge(c, da), 0);
	/* a registers once more; only b gets it, later. */
	CHECK_EQ(reg(a, "late", "3", 3, late), 0);
	/* c notices a failed. */
	CHECK_EQ(fd_crdt_node_gone(c, 1, dc), 1);
	CHECK(fd_crdt_lookup(c, S("eph")) == NULL);
	CHECK(fd_crdt_lookup(c, S("per")) != NULL);
	CHECK_EQ(fd_crdt_node_gone(c, 1, dc), 0);
	/* b learns it from c before getting a's late delta: still gone. */
	lb.n = 0;
	CHECK_EQ(fd_crdt_merge(b, dc), 0);
	CHECK_EQ(lb.n, 1);
	CHECK_EQ(lb.type[0], FD_CRDT_UNREGISTERED);
	CHECK_EQ(fd_crdt_merge(b, late), 0);
	CHECK(fd_crdt_lookup(b, S("late")) == NULL);
	CHECK_EQ(lb.n, 1);
	CHECK_EQ(fd_crdt_merge(c, late), 0);
	CHECK(same(b, c));
	CHECK(fd_crdt_is_gone(b, 1));
	/* a, alive after all, sees itself gone: it may not register with that
	 * id, takes a new one, and re-registers. */
	CHECK_EQ(fd_crdt_merge(a, dc), 0);
	CHECK(fd_crdt_is_gone(a, 1));
	CHECK_EQ(reg(a, "eph", "1", 4, NULL), -1);
	CHECK_EQ(fd_crdt_set_self(a, 1), -1);
	CHECK_EQ(reg(b, "bee", "1", 5, NULL), 0);
	CHECK_EQ(fd_crdt_merge(a, b), 0);
	CHECK_EQ(fd_crdt_set_self(a, 2), -1); /* b's id has dots */
	CHECK_EQ(fd_crdt_set_self(a, 11), 0);
	CHECK_EQ(reg(a, "eph", "1", 4, NULL), 0);
	CHECK_EQ(winner_node(a, "eph"), 11);
	fd_crdt_free(a);
	fd_crdt_free(b);
	fd_crdt_free(c);
	fd_crdt_free(da);
	fd_crdt_free(dc);
	fd_crdt_free(late);
}

/* ---- randomized properties ---- */

#define NREP_MAX 5

struct sim {
	int n;
	struct fd_crdt *rep[NREP_MAX];
	struct fd_hlc clk[NREP_MAX];
	uint64_t wall;
};

static void sim_init(struct sim *s, int n)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->wall = 1000;
	for (int i = 0; i < n; i++) {
		s->rep[i] = must_new((uint64_t)(i + 1) * 10);
		fd_hlc_init(&s->clk[i], 0);
	}
}

static void sim_free(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		fd_crdt_free(s->rep[i]);
}

/* One random operation on replica i; its delta joins into d (may be NULL). */
static void sim_op(struct sim *s, int i, struct fd_crdt *d, int nnames, int allow_gone)
{
	struct fd_crdt *c = s->rep[i];
	char name[16], val[32];
	uint64_t k = unit_rand_below(100);
	const struct fd_crdt_name *r;

	snprintf(name, sizeof(name), "n%d", (int)unit_rand_below((uint64_t)nnames));
	snprintf(val, sizeof(val), "{\"v\":%d}", (int)unit_rand_below(1000));
	s->wall += unit_rand_below(3);
	r = fd_crdt_lookup(c, S(name));
	if (k < 45) {
		fd_crdt_register(c, S(name), S(val), fd_hlc_now(&s->clk[i], s->wall),
				 (int)unit_rand_below(2), d, NULL);
	} else if (k < 65) {
		if (!r) /* register if absent */
			fd_crdt_register(c, S(name), S(val),
					 fd_hlc_now(&s->clk[i], s->wall), 0, d,
					 NULL);
	} else if (k < 85) {
		fd_crdt_unregister(c, S(name), d);
	} else if (k < 97 || !allow_gone) {
		if (r && r->n > 1) /* a loser yields */
			fd_crdt_remove_dot(c, S(name), r->entries[r->n - 1].dot, d);
	} else {
		/* A node that is not one of the replicas goes away... or, rarely,
		 * one that is. */
		uint64_t node = unit_rand_below(4)
					? 10 * (1 + unit_rand_below((uint64_t)s->n))
					: 77;

		fd_crdt_node_gone(c, node, d);
	}
}

/* Random replicas with random histories: ops, full-state merges, and
 * deliveries of random earlier deltas (out of order, so contexts get gaps
 * and cloud-only parts). */
#define POOL 32

static void sim_random_history(struct sim *s, int steps, int nnames)
{
	struct fd_crdt *pool[POOL] = {0};

	for (int t = 0; t < steps; t++) {
		int i = (int)unit_rand_below((uint64_t)s->n);
		int j = (int)unit_rand_below((uint64_t)s->n);
		uint64_t k = unit_rand_below(8);

		if (k < 5) {
			struct fd_crdt *d = fd_crdt_delta_new(NULL);
			int slot = (int)unit_rand_below(POOL);

			sim_op(s, i, d, nnames, 1);
			fd_crdt_free(pool[slot]);
			pool[slot] = d;
		} else if (k < 7) {
			struct fd_crdt *d = pool[unit_rand_below(POOL)];

			if (d)
				fd_crdt_merge(s->rep[i], d);
		} else if (i != j) {
			fd_crdt_merge(s->rep[i], s->rep[j]);
		}
	}
	for (int k = 0; k < POOL; k++)
		fd_crdt_free(pool[k]);
}

TEST(merge_is_commutative_associative_idempotent)
{
	int cases = 0;

	for (int run = 0; run < 700; run++) {
		struct sim s;
		struct fd_crdt *ab, *ba, *ab_c, *bc, *a_bc, *aa;
		struct fd_crdt *a, *b, *c;

		sim_init(&s, 3);
		sim_random_history(&s, 5 + (int)unit_rand_below(60),
				   2 + (int)unit_rand_below(8));
		a = s.rep[0];
		b = s.rep[1];
		c = s.rep[2];
		ab = join(a, b);
		ba = join(b, a);
		CHECK(same(ab, ba));
		bc = join(b, c);
		ab_c = join(ab, c);
		a_bc = join(a, bc);
		CHECK(same(ab_c, a_bc));
		aa = join(a, a);
		CHECK(same(aa, a));
		/* Merging into a copy of a, not a fresh state, gives the same. */
		{
			struct fd_crdt *x = copy(a);

			CHECK_EQ(fd_crdt_merge(x, b), 0);
			CHECK(same(x, ab));
			CHECK_EQ(fd_crdt_merge(x, b), 0);
			CHECK(same(x, ab));
			fd_crdt_free(x);
		}
		fd_crdt_free(ab);
		fd_crdt_free(ba);
		fd_crdt_free(bc);
		fd_crdt_free(ab_c);
		fd_crdt_free(a_bc);
		fd_crdt_free(aa);
		sim_free(&s);
		cases++;
		if (unit_failed) {
			printf("  failed at run %d\n", run);
			return;
		}
	}
	printf("# %d random state triples checked\n", cases);
}

/* Replicas make random ops; each op's delta (grouped by 1..3) goes to every
 * other replica; deliveries are shuffled, some duplicated. Every replica
 * ends equal to the join of everything. */
#define MAXD 256

TEST(deltas_in_any_order_with_duplicates_converge)
{
	int cases = 0;

	for (int run = 0; run < 300; run++) {
		struct sim s;
		struct fd_crdt *deltas[MAXD];
		int origin[MAXD] = {0}, nd = 0;
		int n = 3 + (int)unit_rand_below(3),
		    nnames = 2 + (int)unit_rand_below(10);
		struct {
			int to, d;
		} q[MAXD * 6];
		int nq = 0;

		sim_init(&s, n);
		/* Phase 1: a few ops per replica, each replica first seeing some
		 * of the others' deltas so ops are causally related sometimes. */
		for (int t = 0; t < 40 && nd < MAXD; t++) {
			int i = (int)unit_rand_below((uint64_t)n);
			struct fd_crdt *d = fd_crdt_delta_new(NULL);
			int ops = 1 + (int)unit_rand_below(3);

			/* Sometimes, catch up on a random earlier delta first. */
			if (nd && unit_rand_below(2))
				fd_crdt_merge(s.rep[i],
					      deltas[unit_rand_below((uint64_t)nd)]);
			for (int k = 0; k < ops; k++)
				sim_op(&s, i, d, nnames, 1);
			deltas[nd] = d;
			origin[nd++] = i;
		}
		for (int k = 0; k < nd; k++)
			for (int to = 0; to < n; to++) {
				if (to == origin[k])
					continue;
				q[nq].to = to;
				q[nq++].d = k;
				if (!unit_rand_below(4)) {
					q[nq].to = to;
					q[nq++].d = k;
				}
			}
		for (int k = nq - 1; k > 0; k--) {
			int j = (int)unit_rand_below((uint64_t)k + 1);
			int to = q[k].to, d = q[k].d;

			q[k] = q[j];
			q[j].to = to;
			q[j].d = d;
		}
		for (int k = 0; k < nq; k++)
			CHECK_EQ(fd_crdt_merge(s.rep[q[k].to], deltas[q[k].d]), 0);
		for (int i = 1; i < n; i++)
			CHECK(same(s.rep[0], s.rep[i]));
		for (int i = 0; i < n; i++)
			CHECK_EQ(fd_crdt_cloud(s.rep[i]), 0);
		for (int k = 0; k < nd; k++)
			fd_crdt_free(deltas[k]);
		sim_free(&s);
		cases++;
		if (unit_failed) {
			printf("  failed at run %d\n", run);
			return;
		}
	}
	printf("# %d delta shuffles checked\n", cases);
}

/* Digest -> repair through the wire, one direction. */
static void anti_entropy(struct fd_crdt *from, struct fd_crdt *to)
{
	struct fd_crdt *g = fd_crdt_digest(to), *g2, *r, *r2;

	g2 = copy(g);
	r = fd_crdt_repair(from, g2);
	if (!r)
		abort();
	r2 = copy(r);
	CHECK_EQ(fd_crdt_merge(to, r2), 0);
	fd_crdt_free(g);
	fd_crdt_free(g2);
	fd_crdt_free(r);
	fd_crdt_free(r2);
}

TEST(dropped_deltas_are_repaired_by_anti_entropy)
{
	int cases = 0;

	for (int run = 0; run < 300; run++) {
		struct sim s;
		int n = 3 + (int)unit_rand_below(3),
		    nnames = 2 + (int)unit_rand_below(12);
		struct fd_crdt *truth = must_new(999);

		sim_init(&s, n);
		for (int t = 0; t < 60; t++) {
			int i = (int)unit_rand_below((uint64_t)n);
			struct fd_crdt *d = fd_crdt_delta_new(NULL);

			sim_op(&s, i, d, nnames, 1);
			for (int to = 0; to < n; to++)
				if (to != i && unit_rand_below(3))
					fd_crdt_merge(s.rep[to], d);
			fd_crdt_free(d);
			if (!unit_rand_below(15)) { /* an occasional partial repair */
				int a = (int)unit_rand_below((uint64_t)n),
				    b = (int)unit_rand_below((uint64_t)n);

				if (a != b)
					anti_entropy(s.rep[a], s.rep[b]);
			}
		}
		for (int i = 0; i < n; i++)
			fd_crdt_merge(truth, s.rep[i]);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				if (i != j)
					anti_entropy(s.rep[i], s.rep[j]);
		for (int i = 0; i < n; i++) {
			CHECK(same(s.rep[i], truth));
			CHECK_EQ(fd_crdt_cloud(s.rep[i]), 0);
		}
		/* Converged: the digests say so, and repairs are empty. */
		for (int i = 0; i < n; i++) {
			struct fd_crdt *g = fd_crdt_digest(s.rep[(i + 1) % n]);
			struct fd_crdt *r = fd_crdt_repair(s.rep[i], g);

			CHECK(r && fd_crdt_empty(r));
			fd_crdt_free(g);
			fd_crdt_free(r);
		}
		fd_crdt_free(truth);
		sim_free(&s);
		cases++;
		if (unit_failed) {
			printf("  failed at run %d\n", run);
			return;
		}
	}
	printf("# %d lossy runs repaired\n", cases);
}

/* A state that learned of a removal only through a delta past a gap has
 * a context without a contiguous prefix; merging that state must still
 * remove the entry elsewhere. */
TEST(state_merge_applies_removals_from_gappy_context)
{
	struct fd_crdt *a = must_new(1), *b = must_new(2), *c = must_new(3);
	struct fd_crdt *d = fd_crdt_delta_new(NULL), *x;

	reg(a, "x", "1", 1, NULL);
	reg(a, "y", "1", 2, NULL);
	fd_crdt_merge(c, a);
	CHECK_EQ(fd_crdt_unregister(a, S("y"), d), 1);
	fd_crdt_merge(b, d); /* b knows dot 2 of a, not dot 1 */
	CHECK_EQ(fd_crdt_cloud(b), 1);
	x = join(c, b);
	CHECK(fd_crdt_lookup(x, S("y")) == NULL);
	CHECK(fd_crdt_lookup(x, S("x")) != NULL);
	CHECK_EQ(fd_crdt_merge(c, b), 0);
	CHECK(same(c, x));
	CHECK_EQ(fd_crdt_merge(c, d), 0);
	CHECK(same(c, x));
	fd_crdt_free(a);
	fd_crdt_free(b);
	fd_crdt_free(c);
	fd_crdt_free(d);
	fd_crdt_free(x);
}

TEST(repair_is_refused_by_another_replica)
{
	struct fd_crdt *a = must_new(1), *b = must_new(2), *c = must_new(3);
	struct fd_crdt *g, *r;

	reg(a, "x", "1", 1, NULL);
	reg(a, "y", "1", 1, NULL);
	fd_crdt_merge(b, a);
	reg(a, "z", "1", 2, NULL);
	g = fd_crdt_digest(b);
	r = fd_crdt_repair(a, g);
	REQUIRE(r != NULL);
	CHECK_EQ(fd_crdt_kind(r), FD_CRDT_REPAIR);
	errno = 0;
	CHECK_EQ(fd_crdt_merge(c, r), -1); /* c has not seen x and y */
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(fd_crdt_merge(c, g), -1); /* a digest is not mergeable */
	CHECK_EQ(fd_crdt_merge(b, r), 0);
	CHECK(same(a, b));
	fd_crdt_free(a);
	fd_crdt_free(b);
	fd_crdt_free(c);
	fd_crdt_free(g);
	fd_crdt_free(r);
}

/* ---- compaction ---- */

TEST(context_compacts_memory_follows_live_entries)
{
	struct sim s;
	size_t base, mem;

	sim_init(&s, 3);
	base = fd_crdt_mem(s.rep[0]);
	struct fd_crdt *held[16];
	int from[16], nheld = 0;

	for (int cycle = 0; cycle < 3000; cycle++) {
		int i = (int)unit_rand_below(3);
		struct fd_crdt *d = fd_crdt_delta_new(NULL);
		char name[32];

		snprintf(name, sizeof(name), "tmp.%d", cycle);
		reg(s.rep[i], name, "{\"x\":1}", (uint64_t)cycle, d);
		if (cycle % 100 != 0)
			fd_crdt_unregister(s.rep[i], S(name), d);
		/* Deliver out of order: hold some deltas back a while. */
		held[nheld] = d;
		from[nheld++] = i;
		while (nheld == 16 ||
		       (nheld && (unit_rand_below(3) == 0 || cycle == 2999))) {
			int k = (int)unit_rand_below((uint64_t)nheld);

			for (int to = 0; to < 3; to++)
				if (to != from[k])
					fd_crdt_merge(s.rep[to], held[k]);
			fd_crdt_free(held[k]);
			held[k] = held[--nheld];
			from[k] = from[nheld];
		}
	}
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(fd_crdt_entries(s.rep[i]), 30);
		CHECK_EQ(fd_crdt_cloud(s.rep[i]), 0);
		CHECK(same(s.rep[0], s.rep[i]));
	}
	mem = fd_crdt_mem(s.rep[0]) - base;
	printf("# 3000 register/unregister cycles, 30 live: %zu bytes\n", mem);
	CHECK_INT(mem, <, 30 * 300 + 2048);
	sim_free(&s);
}

TEST(cloud_holds_gaps_until_they_fill)
{
	struct fd_crdt *a = must_new(1), *b = must_new(2);
	struct fd_crdt *d[50];

	for (int k = 0; k < 50; k++) {
		char name[16];

		d[k] = fd_crdt_delta_new(NULL);
		snprintf(name, sizeof(name), "k%d", k);
		reg(a, name, "1", (uint64_t)k, d[k]);
	}
	/* Deliver in reverse order: gaps everywhere until the first arrives. */
	for (int k = 49; k >= 1; k--)
		fd_crdt_merge(b, d[k]);
	CHECK_INT(fd_crdt_cloud(b), >, 0);
	fd_crdt_merge(b, d[0]);
	CHECK_EQ(fd_crdt_cloud(b), 0);
	CHECK(same(a, b));
	for (int k = 0; k < 50; k++)
		fd_crdt_free(d[k]);
	fd_crdt_free(a);
	fd_crdt_free(b);
}

/* ---- decoders ---- */

static void check_decoder(const struct fd_crdt *c, int flips)
{
	size_t len;
	unsigned char *b = enc(c, &len), *m;
	struct fd_err err;

	/* Every proper prefix is rejected. */
	for (size_t k = 0; k < len; k++) {
		struct fd_crdt *x = fd_crdt_decode(b, k, NULL, &err);

		CHECK(x == NULL);
		fd_crdt_free(x);
	}
	/* Trailing garbage too. */
	m = malloc(len + 1);
	memcpy(m, b, len);
	m[len] = 0;
	CHECK(fd_crdt_decode(m, len + 1, NULL, &err) == NULL);
	/* Mutations never crash; what decodes re-encodes to the same bytes. */
	for (int k = 0; k < flips; k++) {
		struct fd_crdt *x;

		memcpy(m, b, len);
		for (int f = 0; f < 1 + (int)unit_rand_below(3); f++)
			m[unit_rand_below(len)] ^=
				(unsigned char)(1 + unit_rand_below(255));
		x = fd_crdt_decode(m, len, NULL, &err);
		if (x) {
			size_t l2;
			unsigned char *b2 = enc(x, &l2);

			CHECK(l2 == len && !memcmp(b2, m, len));
			free(b2);
			fd_crdt_free(x);
		}
	}
	free(m);
	free(b);
}

TEST(decoders_reject_truncation_and_garbage)
{
	struct sim s;
	struct fd_crdt *d = fd_crdt_delta_new(NULL), *g, *r;
	struct fd_err err;
	unsigned char junk[512];

	sim_init(&s, 3);
	sim_random_history(&s, 80, 6);
	for (int k = 0; k < 10; k++)
		sim_op(&s, 0, d, 6, 0);
	reg(s.rep[0], "fresh", "[1,2,{\"a\":null}]", 5, d);
	g = fd_crdt_digest(s.rep[1]);
	r = fd_crdt_repair(s.rep[0], g);
	REQUIRE(r != NULL);
	check_decoder(s.rep[0], 3000);
	check_decoder(d, 3000);
	check_decoder(g, 1000);
	check_decoder(r, 1000);
	for (int k = 0; k < 20000; k++) {
		size_t len = unit_rand_below(sizeof(junk));
		struct fd_crdt *x;

		for (size_t i = 0; i < len; i++)
			junk[i] = (unsigned char)unit_rand();
		if (len >= 6 && unit_rand_below(2)) { /* get past the header */
			memcpy(junk, "FDCR\x01", 5);
			junk[5] = (unsigned char)(1 + unit_rand_below(4));
			for (size_t i = 6; i < len; i++)
				junk[i] = (unsigned char)unit_rand_below(4);
		}
		x = fd_crdt_decode(junk, len, NULL, &err);
		fd_crdt_free(x);
	}
	CHECK(fd_crdt_decode("FDCR\x02\x01", 6, NULL, &err) == NULL);
	CHECK_STR(err.msg, "invalid registry data: unsupported version");
	fd_crdt_free(d);
	fd_crdt_free(g);
	fd_crdt_free(r);
	sim_free(&s);
}

TEST(decoder_rejects_non_canonical_and_inconsistent)
{
	/* Hand-made: one origin (node 1, max 1), one name "a" with an entry
	 * at counter 2, outside the context. */
	static const unsigned char outside[] = {
		'F', 'D', 'C', 'R', 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1,   0,
		1,   1,	  'a', 1,   0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, '1',
	};
	unsigned char ok[sizeof(outside)], tmp[sizeof(outside)];
	struct fd_err err;
	struct fd_crdt *x;

	memcpy(ok, outside, sizeof(ok));
	ok[23] = 1; /* counter 1: inside */
	x = fd_crdt_decode(ok, sizeof(ok), NULL, &err);
	CHECK(x != NULL);
	fd_crdt_free(x);
	CHECK(fd_crdt_decode(outside, sizeof(outside), NULL, &err) == NULL);
	CHECK_STR(err.msg, "invalid registry data: entry outside the context");
	memcpy(tmp, ok, sizeof(tmp));
	tmp[34] = '}'; /* not JSON */
	CHECK(fd_crdt_decode(tmp, sizeof(tmp), NULL, &err) == NULL);
	CHECK_STR(err.msg, "invalid registry data: invalid JSON value");
	memcpy(tmp, ok, sizeof(tmp));
	tmp[20] = 0x01; /* control character in the name */
	CHECK(fd_crdt_decode(tmp, sizeof(tmp), NULL, &err) == NULL);
	CHECK_STR(err.msg, "invalid registry data: invalid name");
	memcpy(tmp, ok, sizeof(tmp));
	tmp[21] = 0; /* a name without entries in a state */
	CHECK(fd_crdt_decode(tmp, sizeof(tmp), NULL, &err) == NULL);
}

/* ---- size and speed ---- */

TEST(bytes_per_entry_and_throughput)
{
	enum { N = 100000 };
	struct fd_crdt *a = must_new(1), *b, *d = fd_crdt_delta_new(NULL);
	size_t base = fd_crdt_mem(a), payload = 0, len;
	int64_t t0, t1, t2, t3, t4;
	unsigned char *buf;
	struct fd_err err;
	const char *val = "{\"addr\":\"10.0.0.1:4380\"}";
	long found = 0;

	t0 = fd_mono_us();
	for (int i = 0; i < N; i++) {
		char name[32];
		int nl = snprintf(name, sizeof(name), "svc.worker.%06d", i);

		if (fd_crdt_register(a, name, (size_t)nl, S(val), (uint64_t)i,
				     0, d, NULL) < 0)
			break;
		payload += (size_t)nl + strlen(val);
		if (i % 64 == 63) /* a send completed: next batch */
			fd_crdt_clear(d);
	}
	t1 = fd_mono_us();
	REQUIRE(fd_crdt_names(a) == N);
	for (int i = 0; i < N; i++) {
		char name[32];
		int nl = snprintf(name, sizeof(name), "svc.worker.%06d",
				  (i * 7919) % N);

		found += fd_crdt_lookup(a, name, (size_t)nl) != NULL;
	}
	t2 = fd_mono_us();
	CHECK_EQ(found, N);
	CHECK_EQ(fd_crdt_encode(a, &buf, &len), 0);
	t3 = fd_mono_us();
	b = fd_crdt_decode(buf, len, NULL, &err);
	t4 = fd_mono_us();
	REQUIRE(b != NULL);
	CHECK(same(a, b));
	{
		double per = (double)(fd_crdt_mem(a) - base - payload) / N;

		printf("# %d entries: %.1f bytes/entry beyond name+value (target < 300)\n",
		       N, per);
		printf("# register %.0f ops/s, lookup %.0f ops/s (this build)\n",
		       N / ((double)(t1 - t0) / 1e6),
		       N / ((double)(t2 - t1) / 1e6));
		printf("# full state %zu bytes (%.1f/entry), encode %.1f ms, decode %.1f ms\n",
		       len, (double)len / N, (double)(t3 - t2) / 1e3,
		       (double)(t4 - t3) / 1e3);
		CHECK_INT(per, <, 300);
	}
	free(buf);
	fd_crdt_free(a);
	fd_crdt_free(b);
	fd_crdt_free(d);
}

TEST(limits_refuse_without_changing_anything)
{
	struct fd_crdt_limits lim;
	struct fd_crdt *a, *b;
	size_t len1, len2;
	unsigned char *e1, *e2;

	fd_crdt_limits_default(&lim);
	lim.max_names = 3;
	a = fd_crdt_new(1, &lim);
	b = must_new(2);
	REQUIRE(a != NULL);
	CHECK_EQ(reg(a, "a", "1", 1, NULL), 0);
	CHECK_EQ(reg(a, "b", "1", 1, NULL), 0);
	CHECK_EQ(reg(a, "c", "1", 1, NULL), 0);
	errno = 0;
	CHECK_EQ(reg(a, "d", "1", 1, NULL), -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(reg(a, "a", "2", 2, NULL), 0); /* replacing takes no room */
	reg(b, "x", "1", 1, NULL);
	reg(b, "y", "1", 1, NULL);
	e1 = enc(a, &len1);
	CHECK_EQ(fd_crdt_merge(a, b), -1);
	CHECK_EQ(errno, ENOSPC);
	e2 = enc(a, &len2);
	CHECK(len1 == len2 && !memcmp(e1, e2, len1));
	free(e1);
	free(e2);
	/* Too many concurrent entries for one name. */
	{
		struct fd_crdt *c = must_new(1000);

		for (uint64_t i = 1; i <= FD_CRDT_MAX_PER_NAME + 1; i++) {
			struct fd_crdt *r = must_new(i);

			reg(r, "hot", "1", i, NULL);
			if (i <= FD_CRDT_MAX_PER_NAME)
				CHECK_EQ(fd_crdt_merge(c, r), 0);
			else
				CHECK_EQ(fd_crdt_merge(c, r), -1);
			fd_crdt_free(r);
		}
		CHECK_EQ(fd_crdt_lookup(c, S("hot"))->n, FD_CRDT_MAX_PER_NAME);
		CHECK_EQ(winner_node(c, "hot"), 1);
		fd_crdt_free(c);
	}
	/* A value too large. */
	{
		char *big = malloc(FD_CRDT_VALUE_MAX + 2);

		memset(big, '1', FD_CRDT_VALUE_MAX + 1);
		CHECK_EQ(fd_crdt_register(b, S("big"), big, FD_CRDT_VALUE_MAX + 1,
					  1, 0, NULL, NULL),
			 -1);
		CHECK_EQ(fd_crdt_register(b, S("big"), big, FD_CRDT_VALUE_MAX,
					  1, 0, NULL, NULL),
			 0);
		free(big);
	}
	fd_crdt_free(a);
	fd_crdt_free(b);
}

TEST(memory_returns_to_base_when_emptied)
{
	struct fd_crdt *a = must_new(1), *b = must_new(2);
	size_t base = fd_crdt_mem(a);

	for (int i = 0; i < 5000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "n.%d", i);
		reg(a, name, "[1,2,3]", (uint64_t)i, NULL);
	}
	fd_crdt_merge(b, a);
	for (int i = 0; i < 5000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "n.%d", i);
		fd_crdt_unregister(a, S(name), NULL);
	}
	fd_crdt_merge(b, a);
	CHECK_EQ(fd_crdt_names(b), 0);
	CHECK_EQ(fd_crdt_cloud(b), 0);
	/* What is left: the struct, one context entry per node, a small table. */
	CHECK_INT(fd_crdt_mem(a) - base, <, 512);
	CHECK_INT(fd_crdt_mem(b) - base, <, 512);
	fd_crdt_free(a);
	fd_crdt_free(b);
}

/* fd_crdt_add keeps the entries of other replicas: concurrent, so both
 * survive and the earliest wins, as after a merge; register replaces. */
TEST(add_is_concurrent_with_seen_entries)
{
	struct fd_crdt *a = fd_crdt_new(1, NULL), *b = fd_crdt_new(2, NULL);
	const struct fd_crdt_name *nm;

	REQUIRE(a && b);
	REQUIRE(fd_crdt_register(a, "x", 1, "1", 1, 100, 0, NULL, NULL) == 0);
	REQUIRE(fd_crdt_merge(b, a) == 0);
	REQUIRE(fd_crdt_add(b, "x", 1, "2", 1, 50, 0, NULL, NULL) == 0);
	nm = fd_crdt_lookup(b, "x", 1);
	REQUIRE(nm != NULL);
	CHECK_EQ(nm->n, 2);
	CHECK_EQ(nm->entries[0].dot.node, 2); /* hlc 50 wins */
	REQUIRE(fd_crdt_merge(a, b) == 0);
	nm = fd_crdt_lookup(a, "x", 1);
	REQUIRE(nm != NULL);
	CHECK_EQ(nm->n, 2);
	REQUIRE(fd_crdt_register(b, "x", 1, "3", 1, 200, 0, NULL, NULL) == 0);
	nm = fd_crdt_lookup(b, "x", 1);
	CHECK_EQ(nm->n, 1);
	fd_crdt_free(a);
	fd_crdt_free(b);
}
