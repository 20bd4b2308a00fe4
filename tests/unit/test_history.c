#include "clock.h"
#include "history.h"
#include "jsonl.h"
#include "unit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A history as lines, so tests can take evidence out or put some in. */
#define MAX_LINES 20000
struct lines {
	char *l[MAX_LINES];
	int n;
};

static void add(struct lines *ls, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add(struct lines *ls, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ls->n < MAX_LINES)
		ls->l[ls->n++] = strdup(buf);
}

static void del(struct lines *ls, int i)
{
	free(ls->l[i]);
	memmove(&ls->l[i], &ls->l[i + 1], (size_t)(ls->n - i - 1) * sizeof(char *));
	ls->n--;
}

static void ins(struct lines *ls, int i, const char *s)
{
	memmove(&ls->l[i + 1], &ls->l[i], (size_t)(ls->n - i) * sizeof(char *));
	ls->l[i] = strdup(s);
	ls->n++;
}

static void clear(struct lines *ls)
{
	for (int i = 0; i < ls->n; i++)
		free(ls->l[i]);
	ls->n = 0;
}

/* Feeds the lines and returns the verdict (NULL on a malformed line). */
static struct json_object *verdict(const struct lines *ls)
{
	struct fd_history *h = fd_history_new();
	struct json_object *v = NULL;

	for (int i = 0; i < ls->n; i++) {
		struct json_object *o =
			fd_json_parse(ls->l[i], strlen(ls->l[i]), NULL);
		struct fd_err err;
		int rc = fd_history_add(h, o, NULL, &err);

		json_object_put(o);
		if (rc < 0) {
			unit_fail(__FILE__, __LINE__, "line %d: %s: %s", i + 1,
				  ls->l[i], err.msg);
			goto out;
		}
	}
	v = fd_history_check(h);
out:
	fd_history_free(h);
	return v;
}

static long long part(struct json_object *v, const char *p, const char *key)
{
	struct json_object *o;

	if (!json_object_object_get_ex(v, p, &o))
		return -1;
	return fd_json_get_int(o, key, -1);
}

static int valid_of(const struct lines *ls)
{
	struct json_object *v = verdict(ls);
	int ok = v && fd_history_valid(v);

	json_object_put(v);
	return ok;
}

/* A random valid run: registrations seen by every node, publishes from a
 * few streams on a few nodes, subscribers that got each publish or, for
 * runs of missed ones, a gap line where they would have been. */
struct run {
	int nregs, nnodes, npubs, nsubs;
};

static void gen(struct lines *ls, struct run *r)
{
	static const char *const topics[] = {"t.a", "t.b", "t.c.d"};
	int nstreams = 1 + (int)unit_rand_below(3);
	uint64_t seqs[3] = {0, 0, 0};
	struct {
		int node, stream;
		uint64_t seq;
		const char *topic;
	} pubs[400];

	r->nregs = 1 + (int)unit_rand_below(50);
	r->nnodes = 1 + (int)unit_rand_below(5);
	r->npubs = 1 + (int)unit_rand_below(400);
	r->nsubs = 1 + (int)unit_rand_below(4);
	for (int i = 0; i < r->nregs; i++)
		add(ls, "{\"type\":\"entry\",\"name\":\"name-%d\",\"value\":{\"i\":%d},\"owner\":\"n%d\",\"created\":true}",
		    i, i, (int)unit_rand_below(3));
	for (int i = 0; i < r->npubs; i++) {
		int s = (int)unit_rand_below((uint64_t)nstreams);

		pubs[i].node = s; /* stream s lives on node n<s> */
		pubs[i].stream = 1;
		pubs[i].seq = ++seqs[s];
		pubs[i].topic = topics[unit_rand_below(3)];
		add(ls, "{\"type\":\"published\",\"topic\":\"%s\",\"seq\":%llu,\"stream\":1,\"node\":\"n%d\",\"bytes\":3}",
		    pubs[i].topic, (unsigned long long)pubs[i].seq, pubs[i].node);
	}
	for (int s = 0; s < r->nsubs; s++) {
		int missing = 0;
		const char *mtopic = NULL;

		for (int i = 0; i <= r->npubs; i++) {
			/* a run of misses ends: its gap line comes first */
			int miss = i < r->npubs && unit_rand_below(10) == 0;

			if (!miss && missing) {
				add(ls, "{\"type\":\"gap\",\"topic\":\"%s\",\"missed\":%d,\"sub\":\"s%d\"}",
				    mtopic, missing, s);
				missing = 0;
				mtopic = NULL;
			}
			if (i == r->npubs)
				break;
			if (miss) {
				missing++;
				mtopic = !mtopic || strcmp(mtopic, pubs[i].topic) == 0
						 ? pubs[i].topic
						 : "t.>";
				continue;
			}
			add(ls, "{\"type\":\"message\",\"topic\":\"%s\",\"seq\":%llu,\"from\":\"n%d\",\"stream\":1,\"ts\":\"2026-01-01T00:00:00Z\",\"data\":1,\"sub\":\"s%d\"}",
			    pubs[i].topic, (unsigned long long)pubs[i].seq,
			    pubs[i].node, s);
		}
	}
	for (int n = 0; n < r->nnodes; n++)
		for (int i = 0; i < r->nregs; i++)
			add(ls, "{\"type\":\"entry\",\"name\":\"name-%d\",\"value\":{\"i\":%d},\"owner\":\"n0\",\"snapshot\":\"n%d\"}",
			    i, i, n);
	add(ls, "{\"type\":\"fault\",\"action\":\"heal\",\"ts\":\"2026-01-01T00:00:01.5Z\"}");
}

/* Index of a random line containing all of the given strings, or -1. */
static int pick(const struct lines *ls, const char *a, const char *b)
{
	int idx[MAX_LINES], n = 0;

	for (int i = 0; i < ls->n; i++)
		if (strstr(ls->l[i], a) && (!b || strstr(ls->l[i], b)))
			idx[n++] = i;
	return n ? idx[unit_rand_below((uint64_t)n)] : -1;
}

TEST(random_valid_histories_and_one_lost_write)
{
	for (int round = 0; round < 40 && !unit_failed; round++) {
		struct lines ls = {0};
		struct json_object *v;
		struct run r;
		int i;

		gen(&ls, &r);
		v = verdict(&ls);
		REQUIRE(v);
		CHECK(fd_history_valid(v));
		CHECK_EQ(part(v, "registrations", "present"), r.nregs);
		CHECK_EQ(part(v, "registrations", "nodes"), r.nnodes);
		CHECK_EQ(part(v, "publishes", "expected"),
			 (long long)r.npubs * r.nsubs);
		CHECK_EQ(part(v, "publishes", "received") +
				 part(v, "publishes", "covered"),
			 (long long)r.npubs * r.nsubs);
		json_object_put(v);

		/* a registration missing on one node: lost */
		i = pick(&ls, "\"snapshot\"", NULL);
		REQUIRE(i >= 0);
		{
			char *saved = strdup(ls.l[i]);

			del(&ls, i);
			v = verdict(&ls);
			CHECK(!fd_history_valid(v));
			CHECK_EQ(part(v, "registrations", "lost"), 1);
			json_object_put(v);
			ins(&ls, i, saved);
			free(saved);
		}
		CHECK(valid_of(&ls));

		/* a received publish taken out: lost; a gap in its place covers it */
		i = pick(&ls, "\"type\":\"message\"", NULL);
		REQUIRE(i >= 0);
		{
			char gap[512], sub[32];
			const char *s = strstr(ls.l[i], "\"sub\":\"");
			const char *t = strstr(ls.l[i], "\"topic\":\"") + 9;

			snprintf(sub, sizeof(sub), "%.*s",
				 (int)(strchr(s + 7, '"') - (s + 7)), s + 7);
			snprintf(gap, sizeof(gap),
				 "{\"type\":\"gap\",\"topic\":\"%.*s\",\"missed\":1,\"sub\":\"%s\"}",
				 (int)(strchr(t, '"') - t), t, sub);
			del(&ls, i);
			v = verdict(&ls);
			CHECK(!fd_history_valid(v));
			CHECK_EQ(part(v, "publishes", "lost"), 1);
			json_object_put(v);
			ins(&ls, i, gap);
			CHECK(valid_of(&ls));
		}
		clear(&ls);
	}
}

TEST(gap_must_sit_between_the_neighbours_and_fit)
{
	struct lines ls = {0};

	for (int s = 1; s <= 3; s++)
		add(&ls, "{\"type\":\"published\",\"topic\":\"t.a\",\"seq\":%d,\"stream\":7,\"node\":\"n1\"}",
		    s);
	add(&ls, "{\"type\":\"message\",\"topic\":\"t.a\",\"seq\":1,\"from\":\"n1\",\"stream\":7,\"sub\":\"x\"}");
	add(&ls, "{\"type\":\"message\",\"topic\":\"t.a\",\"seq\":3,\"from\":\"n1\",\"stream\":7,\"sub\":\"x\"}");
	/* after seq 3: too late for seq 2 */
	add(&ls, "{\"type\":\"gap\",\"topic\":\"t.a\",\"missed\":1,\"sub\":\"x\"}");
	CHECK(!valid_of(&ls));
	del(&ls, ls.n - 1);
	/* before seq 1: too early */
	ins(&ls, 3, "{\"type\":\"gap\",\"topic\":\"t.a\",\"missed\":1,\"sub\":\"x\"}");
	CHECK(!valid_of(&ls));
	del(&ls, 3);
	/* between, but another topic */
	ins(&ls, 4, "{\"type\":\"gap\",\"topic\":\"t.b\",\"missed\":1,\"sub\":\"x\"}");
	CHECK(!valid_of(&ls));
	del(&ls, 4);
	/* a pattern covering the topic, missed 0 */
	ins(&ls, 4, "{\"type\":\"gap\",\"topic\":\"t.*\",\"missed\":0,\"sub\":\"x\"}");
	CHECK(!valid_of(&ls));
	del(&ls, 4);
	ins(&ls, 4, "{\"type\":\"gap\",\"topic\":\"t.*\",\"missed\":1,\"sub\":\"x\"}");
	CHECK(valid_of(&ls));
	clear(&ls);

	/* one gap of 1 cannot cover 2; a gap of null (unknown) can */
	for (int s = 1; s <= 3; s++)
		add(&ls, "{\"type\":\"published\",\"topic\":\"t.a\",\"seq\":%d,\"stream\":1,\"node\":\"n1\"}",
		    s);
	add(&ls, "{\"type\":\"message\",\"topic\":\"t.a\",\"seq\":1,\"from\":\"n1\",\"stream\":1,\"sub\":\"x\"}");
	add(&ls, "{\"type\":\"gap\",\"topic\":\"t.a\",\"missed\":1,\"sub\":\"x\"}");
	CHECK(!valid_of(&ls));
	del(&ls, ls.n - 1);
	add(&ls, "{\"type\":\"gap\",\"topic\":\"t.a\",\"missed\":null,\"reason\":\"connection to the node lost\",\"sub\":\"x\"}");
	CHECK(valid_of(&ls));
	clear(&ls);
}

TEST(duplicates_reordering_and_unexpected)
{
	struct lines ls = {0};
	struct json_object *v;

	add(&ls, "{\"type\":\"published\",\"topic\":\"t\",\"seq\":1,\"stream\":1,\"node\":\"n1\"}");
	add(&ls, "{\"type\":\"published\",\"topic\":\"t\",\"seq\":2,\"stream\":1,\"node\":\"n1\"}");
	add(&ls, "{\"type\":\"message\",\"topic\":\"t\",\"seq\":1,\"from\":\"n1\",\"stream\":1,\"sub\":\"x\"}");
	add(&ls, "{\"type\":\"message\",\"topic\":\"t\",\"seq\":2,\"from\":\"n1\",\"stream\":1,\"sub\":\"x\"}");
	CHECK(valid_of(&ls));
	/* the same publish from another node's stream 1 is not this one */
	add(&ls, "{\"type\":\"message\",\"topic\":\"t\",\"seq\":1,\"from\":\"n2\",\"stream\":1,\"sub\":\"x\"}");
	v = verdict(&ls);
	CHECK(fd_history_valid(v));
	CHECK_EQ(part(v, "publishes", "unexpected"), 1);
	json_object_put(v);
	add(&ls, "{\"type\":\"message\",\"topic\":\"t\",\"seq\":1,\"from\":\"n1\",\"stream\":1,\"sub\":\"x\"}");
	v = verdict(&ls);
	CHECK(!fd_history_valid(v));
	CHECK_EQ(part(v, "publishes", "duplicated"), 1);
	CHECK_EQ(part(v, "publishes", "reordered"), 1);
	json_object_put(v);
	clear(&ls);

	/* a subscriber's patterns limit what it must get */
	add(&ls, "{\"type\":\"subscriber\",\"sub\":\"x\",\"patterns\":[\"a.>\"]}");
	add(&ls, "{\"type\":\"published\",\"topic\":\"a.b\",\"seq\":1,\"stream\":1}");
	add(&ls, "{\"type\":\"published\",\"topic\":\"b.b\",\"seq\":2,\"stream\":1}");
	add(&ls, "{\"type\":\"message\",\"topic\":\"a.b\",\"seq\":1,\"from\":\"n9\",\"stream\":1,\"sub\":\"x\"}");
	v = verdict(&ls);
	CHECK(fd_history_valid(v));
	CHECK_EQ(part(v, "publishes", "expected"), 1);
	json_object_put(v);
	clear(&ls);
}

TEST(registration_conflicts_explained_or_not)
{
	struct lines ls = {0};
	struct json_object *v;

	/* two creations of one name across a partition: the loser yields */
	add(&ls, "{\"type\":\"entry\",\"name\":\"x\",\"value\":1,\"created\":true}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"x\",\"value\":2,\"created\":true}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"x\",\"value\":1,\"snapshot\":\"n1\"}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"x\",\"value\":1,\"snapshot\":\"n2\"}");
	v = verdict(&ls);
	CHECK(fd_history_valid(v));
	CHECK_EQ(part(v, "registrations", "conflicts"), 1);
	json_object_put(v);
	/* a replace that did not stick is not a conflict: stale */
	free(ls.l[1]);
	ls.l[1] = strdup(
		"{\"type\":\"entry\",\"name\":\"x\",\"value\":2,\"replaced\":true}");
	CHECK(!valid_of(&ls));
	/* ... unless a conflict event names it the loser */
	add(&ls, "{\"type\":\"event\",\"event\":\"conflict\",\"name\":\"x\",\"winner\":{\"value\":1},\"loser\":{\"value\":2}}");
	CHECK(valid_of(&ls));
	clear(&ls);

	/* kept as a visible loser */
	add(&ls, "{\"type\":\"entry\",\"name\":\"x\",\"value\":2,\"replaced\":true}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"x\",\"value\":1,\"snapshot\":\"n1\",\"conflicts\":[{\"value\":2}]}");
	CHECK(valid_of(&ls));
	clear(&ls);

	/* nodes that disagree; an unregistration that did not stick */
	add(&ls, "{\"type\":\"entry\",\"name\":\"y\",\"value\":1,\"snapshot\":\"n1\"}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"y\",\"value\":2,\"snapshot\":\"n2\"}");
	v = verdict(&ls);
	CHECK(!fd_history_valid(v));
	CHECK_EQ(part(v, "registrations", "divergent"), 1);
	CHECK_EQ(part(v, "registrations", "unexpected"), 1);
	json_object_put(v);
	clear(&ls);
	add(&ls, "{\"type\":\"entry\",\"name\":\"z\",\"value\":1,\"created\":true}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"z\",\"unregistered\":true,\"removed\":1}");
	add(&ls, "{\"type\":\"entry\",\"name\":\"z\",\"value\":1,\"snapshot\":\"n1\"}");
	CHECK(!valid_of(&ls));
	del(&ls, 2);
	CHECK(valid_of(&ls));
	clear(&ls);
}

TEST(snapshot_of_an_empty_node_counts)
{
	struct fd_history *h = fd_history_new();
	static const char ack[] =
		"{\"type\":\"entry\",\"name\":\"a\",\"value\":1,\"created\":true}";
	static const char ent[] = "{\"type\":\"entry\",\"name\":\"a\",\"value\":1}";
	struct json_object *o = fd_json_parse(ack, strlen(ack), NULL), *e, *v;
	struct fd_err err;

	REQUIRE(o);
	CHECK_EQ(fd_history_add(h, o, NULL, &err), 1);
	e = fd_json_parse(ent, strlen(ent), NULL);
	CHECK_EQ(fd_history_snapshot(h, "n1", e, &err), 0);
	CHECK_EQ(fd_history_snapshot(h, "n2", NULL, &err), 0);
	v = fd_history_check(h);
	CHECK(!fd_history_valid(v));
	json_object_put(v);
	fd_history_clear_snapshots(h);
	CHECK_EQ(fd_history_snapshot(h, "n1", e, &err), 0);
	CHECK_EQ(fd_history_snapshot(h, "n2", e, &err), 0);
	v = fd_history_check(h);
	CHECK(fd_history_valid(v));
	json_object_put(v);
	json_object_put(e);
	json_object_put(o);
	fd_history_free(h);
}

TEST(malformed_records)
{
	static const char *const bad[] = {
		"[1]",
		"{\"no\":\"type\"}",
		"{\"type\":\"published\",\"topic\":\"t\",\"seq\":0,\"stream\":1}",
		"{\"type\":\"published\",\"topic\":\"t.>\",\"seq\":1,\"stream\":1}",
		"{\"type\":\"published\",\"seq\":1,\"stream\":1}",
		"{\"type\":\"message\",\"topic\":\"t\",\"seq\":1,\"stream\":1,\"sub\":\"x\"}",
		"{\"type\":\"message\",\"topic\":\"t\",\"seq\":1,\"from\":\"n\",\"stream\":1}",
		"{\"type\":\"gap\",\"topic\":\"t\",\"sub\":\"x\"}",
		"{\"type\":\"gap\",\"topic\":\"t\",\"missed\":-1,\"sub\":\"x\"}",
		"{\"type\":\"gap\",\"topic\":\"t\",\"missed\":1,\"sub\":5}",
		"{\"type\":\"entry\",\"value\":1}",
		"{\"type\":\"entry\",\"name\":\"a\"}",
		"{\"type\":\"entry\",\"name\":\"a\",\"value\":1,\"snapshot\":\"\"}",
		"{\"type\":\"event\",\"event\":\"conflict\",\"name\":\"a\"}",
		"{\"type\":\"fault\",\"action\":\"heal\",\"ts\":\"yesterday\"}",
		"{\"type\":\"subscriber\",\"sub\":\"x\",\"patterns\":[]}",
		"{\"type\":\"subscriber\",\"sub\":\"x\",\"patterns\":[\"a..b\"]}",
	};
	static const char *const ignored[] = {
		"{\"type\":\"node\",\"name\":\"n1\"}",
		"{\"type\":\"event\",\"event\":\"registered\",\"name\":\"a\"}",
		"{\"type\":\"entry\",\"name\":\"a\",\"found\":false}",
	};
	struct fd_history *h = fd_history_new();
	struct fd_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = fd_json_parse(bad[i], strlen(bad[i]), NULL);

		if (fd_history_add(h, o, NULL, &err) != -1)
			unit_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
		json_object_put(o);
	}
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		struct json_object *o =
			fd_json_parse(ignored[i], strlen(ignored[i]), NULL);

		CHECK_EQ(fd_history_add(h, o, NULL, &err), 0);
		json_object_put(o);
	}
	{
		static const char gap[] =
			"{\"type\":\"gap\",\"topic\":\"t\",\"missed\":1}";
		struct json_object *o = fd_json_parse(gap, strlen(gap), NULL);

		CHECK_EQ(fd_history_add(h, o, NULL, &err), -1);
		CHECK_EQ(fd_history_add(h, o, "file-sub", &err), 1);
		json_object_put(o);
	}
	fd_history_free(h);
}

TEST(last_heal_and_timestamps)
{
	struct lines ls = {0};
	struct json_object *v;
	int64_t us;

	CHECK_EQ(fd_ts_parse("2026-11-26T17:06:31.123456Z", &us), 0);
	CHECK_EQ(us, 1795712791123456LL);
	CHECK_EQ(fd_ts_parse("2026-11-26T18:06:31.123456+01:00", &us), 0);
	CHECK_EQ(us, 1795712791123456LL);
	CHECK_EQ(fd_ts_parse("2026-11-26t17:06:31z", &us), 0);
	CHECK_EQ(us, 1795712791000000LL);
	CHECK_EQ(fd_ts_parse("2026-11-26T17:06:31.5Z", &us), 0);
	CHECK_EQ(us, 1795712791500000LL);
	CHECK_EQ(fd_ts_parse("2026-11-26 17:06:31Z", &us), -1);
	CHECK_EQ(fd_ts_parse("2026-13-26T17:06:31Z", &us), -1);
	CHECK_EQ(fd_ts_parse("2026-11-26T17:06:31", &us), -1);
	CHECK_EQ(fd_ts_parse("2026-11-26T17:06:31.Z", &us), -1);
	CHECK_EQ(fd_ts_parse("2026-11-26T17:06:31Zx", &us), -1);
	for (int i = 0; i < 100; i++) {
		int64_t t = (int64_t)unit_rand_below(4000000000ULL) * 1000000 +
			    (int64_t)unit_rand_below(1000000);
		char buf[FD_TS_LEN];

		CHECK_EQ(fd_ts_parse(fd_ts_format(t, buf, sizeof(buf)), &us), 0);
		CHECK_EQ(us, t);
	}

	add(&ls, "{\"type\":\"fault\",\"action\":\"split\",\"ts\":\"2026-01-01T00:00:09Z\"}");
	add(&ls, "{\"type\":\"fault\",\"action\":\"heal\",\"ts\":\"2026-01-01T00:00:05Z\"}");
	add(&ls, "{\"type\":\"fault\",\"action\":\"isolate\",\"healed\":true,\"ts\":\"2026-01-01T00:00:07Z\"}");
	v = verdict(&ls);
	CHECK_STR(fd_json_get_str(v, "last_heal"), "2026-01-01T00:00:07.000000Z");
	CHECK_EQ(fd_json_get_int(v, "faults", 0), 3);
	json_object_put(v);
	add(&ls, "{\"type\":\"fault\",\"action\":\"ring\",\"event\":\"apply\",\"ts\":\"2026-01-01T00:00:10Z\"}");
	add(&ls, "{\"type\":\"fault\",\"action\":\"ring\",\"event\":\"heal\",\"ts\":\"2026-01-01T00:00:08Z\"}");
	v = verdict(&ls);
	CHECK_STR(fd_json_get_str(v, "last_heal"), "2026-01-01T00:00:08.000000Z");
	json_object_put(v);
	clear(&ls);
}
