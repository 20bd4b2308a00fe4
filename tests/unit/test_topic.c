#include "topic.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define S(x) x, sizeof(x) - 1

/* ---- Validation ---- */

struct vcase {
	const char *s;
	int subject_ok, pattern_ok;
	const char *msg; /* expected error for the pattern check (or subject) */
};

static const struct vcase vcases[] = {
	{"a", 1, 1, NULL},
	{"foo.bar.baz", 1, 1, NULL},
	{"orders.eu-west.42", 1, 1, NULL},
	{"caf\xc3\xa9.\xe2\x82\xac.\xf0\x9f\x98\x80", 1, 1, NULL},
	{"", 0, 0, "empty pattern"},
	{".a", 0, 0, "pattern starts with '.'"},
	{"a.", 0, 0, "pattern ends with '.'"},
	{"a..b", 0, 0, "empty token at byte 2"},
	{".", 0, 0, "pattern starts with '.'"},
	{"*", 0, 1, NULL},
	{">", 0, 1, NULL},
	{"a.*.c", 0, 1, NULL},
	{"a.*.>", 0, 1, NULL},
	{"*.*", 0, 1, NULL},
	{"a*", 0, 0, "'*' at byte 1 must be a whole token"},
	{"*a.b", 0, 0, "'*' at byte 0 must be a whole token"},
	{"a.b*c", 0, 0, "'*' at byte 3 must be a whole token"},
	{"a.>b", 0, 0, "'>' at byte 2 must be a whole token"},
	{">.a", 0, 0, "'>' at byte 0 must be the last token"},
	{"a.>.b", 0, 0, "'>' at byte 2 must be the last token"},
	{"a.>.>", 0, 0, "'>' at byte 2 must be the last token"},
	{"**", 0, 0, "'*' at byte 0 must be a whole token"},
	{"a b", 0, 0, "whitespace (0x20) at byte 1"},
	{"a\tb", 0, 0, "whitespace (0x09) at byte 1"},
	{"a\nb", 0, 0, "whitespace (0x0a) at byte 1"},
	{"a\x01", 0, 0, "control character 0x01 at byte 1"},
	{"a\x7f", 0, 0, "control character 0x7f at byte 1"},
	{"a\xc2\x85", 0, 0, "control character U+0085 at byte 1"},
	{"a\xc2\xa0", 0, 0, "whitespace U+00A0 at byte 1"},
	{"a\xe3\x80\x80", 0, 0, "whitespace U+3000 at byte 1"},
	{"a\xff", 0, 0, "invalid UTF-8 at byte 1"},
	{"a\xc0\xaf", 0, 0, "invalid UTF-8 at byte 1"},	   /* overlong '/' */
	{"\xed\xa0\x80", 0, 0, "invalid UTF-8 at byte 0"}, /* surrogate */
	{"\xf4\x90\x80\x80", 0, 0, "invalid UTF-8 at byte 0"}, /* > U+10FFFF */
	{"ab\xe2\x82", 0, 0, "invalid UTF-8 at byte 2"},       /* truncated */
	{"\x80", 0, 0, "invalid UTF-8 at byte 0"},
};

TEST(validation_examples)
{
	struct fd_err err;

	for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		const struct vcase *c = &vcases[i];
		size_t len = strlen(c->s);
		int rs = fd_topic_valid_subject(c->s, len, &err);
		int rp;

		if ((rs == 0) != c->subject_ok)
			unit_fail(__FILE__, __LINE__, "subject '%s': got %d (%s)",
				  c->s, rs, rs ? err.msg : "ok");
		rp = fd_topic_valid_pattern(c->s, len, &err);
		if ((rp == 0) != c->pattern_ok)
			unit_fail(__FILE__, __LINE__, "pattern '%s': got %d",
				  c->s, rp);
		if (rp && c->msg)
			CHECK_STR(err.msg, c->msg);
	}
	CHECK_EQ(fd_topic_valid_subject(S("a.*"), &err), -1);
	CHECK_STR(err.msg, "wildcard '*' at byte 2: not allowed in a subject");
	CHECK_EQ(fd_topic_valid_subject(S("a.>"), &err), -1);
	CHECK_EQ(fd_topic_valid_subject(S("a>b"), &err), -1);
	CHECK_EQ(fd_topic_valid_subject(S(""), &err), -1);
	CHECK_STR(err.msg, "empty subject");
	CHECK_EQ(fd_topic_valid_subject("a\0b", 3, &err), -1); /* embedded NUL */
	CHECK_EQ(fd_topic_valid_subject(S("a.b"), NULL), 0);
	CHECK_EQ(fd_topic_valid_pattern(S("a..b"), NULL), -1); /* NULL err is fine */
	CHECK_EQ(fd_topic_valid_group("workers", &err), 0);
	CHECK_EQ(fd_topic_valid_group("w.x", &err), 0);
	CHECK_EQ(fd_topic_valid_group("w*", &err), -1);
	CHECK_EQ(fd_topic_valid_group("", &err), -1);
	CHECK_STR(err.msg, "empty group");
}

TEST(validation_length_limit)
{
	char buf[300];
	struct fd_err err;

	/* 255 bytes is fine, 256 is not, whatever the tokens */
	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(fd_topic_valid_subject(buf, 255, &err), 0);
	CHECK_EQ(fd_topic_valid_subject(buf, 256, &err), -1);
	CHECK_STR(err.msg, "subject longer than 255 bytes");
	/* the most tokens a subject can have: 128 one-byte tokens */
	for (int i = 0; i < 255; i++)
		buf[i] = i % 2 ? '.' : 'a';
	CHECK_EQ(fd_topic_valid_subject(buf, 255, &err), 0);
	buf[254] = '*';
	CHECK_EQ(fd_topic_valid_pattern(buf, 255, &err), 0);
	buf[254] = '>';
	CHECK_EQ(fd_topic_valid_pattern(buf, 255, &err), 0);
	buf[255] = '.';
	buf[256] = 'a';
	CHECK_EQ(fd_topic_valid_pattern(buf, 257, &err), -1);
	/* a multi-byte character must not be cut at 255 */
	memset(buf, 'x', 253);
	memcpy(buf + 253, "\xc3\xa9", 2);
	CHECK_EQ(fd_topic_valid_subject(buf, 255, &err), 0);
	CHECK_EQ(fd_topic_valid_subject(buf, 254, &err), -1);
	CHECK_STR(err.msg, "invalid UTF-8 at byte 253");
}

/* ---- Matching: examples and an independent reference ---- */

TEST(match_examples)
{
	static const struct {
		const char *p, *s;
		int m;
	} c[] = {
		{"a", "a", 1},
		{"a", "b", 0},
		{"a", "a.b", 0},
		{"a.b", "a", 0},
		{"*", "a", 1},
		{"*", "a.b", 0},
		{">", "a", 1},
		{">", "a.b.c", 1},
		{"a.>", "a", 0},
		{"a.>", "a.b", 1},
		{"a.>", "a.b.c", 1},
		{"a.*", "a.b", 1},
		{"a.*", "a.b.c", 0},
		{"*.b", "a.b", 1},
		{"*.b", "a.c", 0},
		{"*.*.>", "a.b", 0},
		{"*.*.>", "a.b.c", 1},
		{"a.*.c", "a.x.c", 1},
		{"ab", "a", 0},
		{"a", "ab", 0},
		{"foo.bar", "foo.bar", 1},
		{"foo.*.baz", "foo.bar.baz", 1},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (fd_topic_match(c[i].p, strlen(c[i].p), c[i].s,
				   strlen(c[i].s)) != c[i].m)
			unit_fail(__FILE__, __LINE__, "'%s' vs '%s': want %d",
				  c[i].p, c[i].s, c[i].m);
}

/* Random subjects and patterns over a tiny alphabet, so that they match
 * often. Tokens are a, b, c, ab; patterns also * and a final >. */
static const char *const alpha[] = {"a", "b", "c", "ab"};

static size_t rand_subject(char *buf, int maxtok)
{
	int n = 1 + (int)unit_rand_below((uint64_t)maxtok);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		const char *t = alpha[unit_rand_below(4)];

		if (i)
			buf[len++] = '.';
		memcpy(buf + len, t, strlen(t));
		len += strlen(t);
	}
	buf[len] = '\0';
	return len;
}

static size_t rand_pattern(char *buf, int maxtok)
{
	int n = 1 + (int)unit_rand_below((uint64_t)maxtok);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		uint64_t r = unit_rand_below(10);
		const char *t = r < 6	     ? alpha[r % 4]
				: r < 9	     ? "*"
				: i == n - 1 ? ">"
					     : "*";

		if (i)
			buf[len++] = '.';
		memcpy(buf + len, t, strlen(t));
		len += strlen(t);
	}
	buf[len] = '\0';
	return len;
}

/* Independent reference: split both into token arrays, match recursively. */
static int split(const char *s, char tok[][8], int max)
{
	int n = 0;
	const char *p = s;

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (n == max || l >= 8)
			return -1;
		memcpy(tok[n], p, l);
		tok[n++][l] = '\0';
		if (!dot)
			return n;
		p = dot + 1;
	}
}

static int ref_rec(char p[][8], int np, char s[][8], int ns)
{
	if (np == 0)
		return ns == 0;
	if (strcmp(p[0], ">") == 0)
		return ns >= 1;
	if (ns == 0)
		return 0;
	if (strcmp(p[0], "*") != 0 && strcmp(p[0], s[0]) != 0)
		return 0;
	return ref_rec(p + 1, np - 1, s + 1, ns - 1);
}

static int ref_match(const char *pat, const char *subj)
{
	char p[16][8], s[16][8];
	int np = split(pat, p, 16), ns = split(subj, s, 16);

	return ref_rec(p, np, s, ns);
}

TEST(match_property_vs_reference)
{
	char p[64], s[64];
	long hits = 0;

	for (int i = 0; i < 20000; i++) {
		size_t pl = rand_pattern(p, 5), sl = rand_subject(s, 5);
		int want = ref_match(p, s);

		if (fd_topic_valid_pattern(p, pl, NULL) ||
		    fd_topic_valid_subject(s, sl, NULL)) {
			unit_fail(__FILE__, __LINE__,
				  "generator made '%s' / '%s'", p, s);
			return;
		}
		if (fd_topic_match(p, pl, s, sl) != want) {
			unit_fail(__FILE__, __LINE__, "'%s' vs '%s': want %d",
				  p, s, want);
			return;
		}
		hits += want;
	}
	CHECK_INT(hits, >, 1000); /* the alphabet is small enough to match */
}

/* ---- The tree against brute force ---- */

#define NVAL 6
static int values[NVAL];
static const char *const groups[] = {NULL, NULL, NULL, "g1", "g2"};

struct mentry {
	char pat[64];
	size_t len;
	const char *group;
	void *value;
	int live;
};

struct tuple {
	char pat[64];
	const char *group;
	void *value;
};

static int tuple_cmp(const void *a, const void *b)
{
	const struct tuple *x = a, *y = b;
	int c = strcmp(x->pat, y->pat);

	if (c)
		return c;
	c = strcmp(x->group ? x->group : "", y->group ? y->group : "");
	if (c)
		return c;
	return (x->value > y->value) - (x->value < y->value);
}

static int same_group(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Reference counts the model says the tree should report. */
static void model_counts(const struct mentry *m, int n, const struct mentry *e,
			 int *pat, int *interest)
{
	*pat = *interest = 0;
	for (int i = 0; i < n; i++) {
		if (!m[i].live || m[i].len != e->len ||
		    memcmp(m[i].pat, e->pat, e->len))
			continue;
		++*pat;
		if (same_group(m[i].group, e->group))
			++*interest;
	}
}

#define MAXM 400
#define MAXT 2000

/* Compares the tree's matches with brute force over the model for random
 * subjects; returns 0 when all agree. */
static int compare(const struct fd_topic_tree *t, const struct mentry *m, int n,
		   int subjects, long *total)
{
	static struct fd_topic_match got[MAXT];
	static struct tuple a[MAXT], b[MAXT];
	char s[64];

	for (int k = 0; k < subjects; k++) {
		size_t sl = rand_subject(s, 5);
		long ng = fd_topic_tree_collect(t, s, sl, got, MAXT);
		int nb = 0;

		if (ng < 0 || ng > MAXT) {
			unit_fail(__FILE__, __LINE__,
				  "collect '%s' returned %ld", s, ng);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			if (!m[i].live || !fd_topic_match(m[i].pat, m[i].len, s, sl))
				continue;
			memcpy(b[nb].pat, m[i].pat, m[i].len + 1);
			b[nb].group = m[i].group;
			b[nb++].value = m[i].value;
		}
		for (long i = 0; i < ng; i++) {
			CHECK_EQ(got[i].pattern_len, strlen(got[i].pattern));
			snprintf(a[i].pat, sizeof(a[i].pat), "%s", got[i].pattern);
			a[i].group = got[i].group;
			a[i].value = got[i].value;
		}
		qsort(a, (size_t)ng, sizeof(a[0]), tuple_cmp);
		qsort(b, (size_t)nb, sizeof(b[0]), tuple_cmp);
		if (ng != nb) {
			unit_fail(__FILE__, __LINE__,
				  "subject '%s': tree %ld matches, brute force %d",
				  s, ng, nb);
			return -1;
		}
		for (int i = 0; i < nb; i++) {
			if (tuple_cmp(&a[i], &b[i]) != 0) {
				unit_fail(__FILE__, __LINE__,
					  "subject '%s': match %d differs: '%s' vs '%s'",
					  s, i, a[i].pat, b[i].pat);
				return -1;
			}
		}
		*total += nb;
	}
	return 0;
}

static int count_interest(void *arg, const char *pattern, size_t len,
			  const char *group, size_t count)
{
	size_t *sum = arg;

	(void)pattern;
	(void)len;
	(void)group;
	sum[0] += count;
	sum[1]++;
	return 0;
}

TEST(tree_property_vs_brute_force)
{
	static struct mentry m[MAXM];
	struct fd_err err;
	long total = 0;

	for (int round = 0; round < 8 && !unit_failed; round++) {
		struct fd_topic_tree *t = fd_topic_tree_new(0, 0, unit_rand());
		int n = 0, live = 0;

		REQUIRE(t);
		/* add random entries, checking the flags against the model */
		for (int i = 0; i < 50 + round * 40; i++) {
			struct mentry *e = &m[n];
			int pat, interest, rc, dup = 0;

			e->len = rand_pattern(e->pat, 4);
			e->group = groups[unit_rand_below(5)];
			e->value = &values[unit_rand_below(NVAL)];
			for (int j = 0; j < n; j++)
				dup |= m[j].live && m[j].value == e->value &&
				       m[j].len == e->len &&
				       !memcmp(m[j].pat, e->pat, e->len) &&
				       same_group(m[j].group, e->group);
			model_counts(m, n, e, &pat, &interest);
			rc = fd_topic_tree_add(t, e->pat, e->len, e->group,
					       e->value, &err);
			if (dup) {
				CHECK_EQ(rc, -1);
				CHECK_EQ(errno, EEXIST);
				continue;
			}
			CHECK_EQ(rc, (pat == 0 ? FD_TOPIC_PATTERN_CHANGE : 0) |
					     (interest == 0 ? FD_TOPIC_INTEREST_CHANGE
							    : 0));
			e->live = 1;
			n++;
			live++;
		}
		CHECK_EQ(fd_topic_tree_entries(t), live);
		if (compare(t, m, n, 500, &total))
			break;
		/* remove half at random (and some that are not there) */
		for (int i = 0; i < n; i++) {
			struct mentry *e = &m[unit_rand_below((uint64_t)n)];
			int pat, interest, rc;

			if (!e->live) {
				CHECK_EQ(fd_topic_tree_remove(t, e->pat, e->len,
							      e->group, e->value),
					 -1);
				CHECK_EQ(errno, ENOENT);
				continue;
			}
			e->live = 0;
			model_counts(m, n, e, &pat, &interest);
			rc = fd_topic_tree_remove(t, e->pat, e->len, e->group,
						  e->value);
			CHECK_EQ(rc, (pat == 0 ? FD_TOPIC_PATTERN_CHANGE : 0) |
					     (interest == 0 ? FD_TOPIC_INTEREST_CHANGE
							    : 0));
			live--;
		}
		CHECK_EQ(fd_topic_tree_entries(t), live);
		if (compare(t, m, n, 500, &total))
			break;
		/* the interest listing adds up to the live entries */
		{
			size_t sum[2] = {0, 0};
			int pats = 0;

			fd_topic_tree_each_interest(t, count_interest, sum);
			CHECK_EQ(sum[0], live);
			for (int i = 0; i < n; i++) {
				int p, in;

				if (!m[i].live)
					continue;
				model_counts(m, i, &m[i], &p, &in);
				pats += p == 0;
			}
			CHECK_EQ(fd_topic_tree_patterns(t), pats);
		}
		/* drop one value entirely */
		{
			void *v = &values[round % NVAL];
			size_t want = 0;

			for (int i = 0; i < n; i++)
				if (m[i].live && m[i].value == v) {
					m[i].live = 0;
					want++;
				}
			CHECK_EQ(fd_topic_tree_remove_value(t, v, NULL, NULL), want);
			live -= (int)want;
			CHECK_EQ(fd_topic_tree_entries(t), live);
			if (compare(t, m, n, 300, &total))
				break;
		}
		/* and remove the rest: the tree ends empty */
		for (int i = 0; i < n; i++)
			if (m[i].live)
				CHECK_INT(fd_topic_tree_remove(t, m[i].pat,
							       m[i].len, m[i].group,
							       m[i].value),
					  >=, 0);
		CHECK_EQ(fd_topic_tree_entries(t), 0);
		CHECK_EQ(fd_topic_tree_patterns(t), 0);
		fd_topic_tree_free(t);
	}
	CHECK_INT(total, >, 10000);
	printf("# %ld matches compared\n", total);
}

/* Many values on one pattern goes through the per-pattern index. */
TEST(tree_many_values_one_pattern)
{
	static int v[3000];
	struct fd_topic_tree *t = fd_topic_tree_new(0, 0, 7);
	static struct fd_topic_match out[3000];
	int live[3000], n = 3000;

	REQUIRE(t);
	for (int i = 0; i < n; i++) {
		int rc = fd_topic_tree_add(t, S("x.>"), i % 3 ? NULL : "q",
					   &v[i], NULL);

		CHECK_EQ(rc, i == 0   ? 3
			     : i == 1 ? FD_TOPIC_INTEREST_CHANGE
				      : 0); /* 0 is in "q" */
		live[i] = 1;
	}
	CHECK_EQ(fd_topic_tree_add(t, S("x.>"), NULL, &v[1], NULL), -1);
	CHECK_EQ(errno, EEXIST);
	CHECK_EQ(fd_topic_tree_collect(t, S("x.y"), out, 3000), 3000);
	/* remove in random order, checking the others stay findable */
	for (int k = 0; k < 2990; k++) {
		int i = (int)unit_rand_below(3000);

		while (!live[i])
			i = (i + 1) % 3000;
		CHECK_INT(fd_topic_tree_remove(t, S("x.>"), i % 3 ? NULL : "q",
					       &v[i]),
			  >=, 0);
		live[i] = 0;
		if (k % 97 == 0) {
			for (int j = 0; j < 3000; j++) {
				int rc = fd_topic_tree_add(t, S("x.>"),
							   j % 3 ? NULL : "q",
							   &v[j], NULL);

				if (live[j] ? rc != -1 : rc < 0)
					unit_fail(__FILE__, __LINE__,
						  "entry %d live %d add %d", j,
						  live[j], rc);
				if (!live[j])
					fd_topic_tree_remove(t, S("x.>"),
							     j % 3 ? NULL : "q",
							     &v[j]);
			}
		}
	}
	CHECK_EQ(fd_topic_tree_collect(t, S("x.y.z"), out, 3000), 10);
	fd_topic_tree_free(t);
}

TEST(tree_refcounts)
{
	struct fd_topic_tree *t = fd_topic_tree_new(0, 0, 1);
	int a, b, c;

	REQUIRE(t);
	CHECK_EQ(fd_topic_tree_add(t, S("a.*"), NULL, &a, NULL),
		 FD_TOPIC_PATTERN_CHANGE | FD_TOPIC_INTEREST_CHANGE);
	CHECK_EQ(fd_topic_tree_add(t, S("a.*"), NULL, &b, NULL), 0);
	CHECK_EQ(fd_topic_tree_add(t, S("a.*"), "w", &c, NULL),
		 FD_TOPIC_INTEREST_CHANGE);
	CHECK_EQ(fd_topic_tree_add(t, S("a.*"), "w", &a, NULL), 0);
	CHECK_EQ(fd_topic_tree_add(t, S("a.>"), NULL, &a, NULL), 3);
	CHECK_EQ(fd_topic_tree_patterns(t), 2);
	CHECK_EQ(fd_topic_tree_entries(t), 5);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*"), NULL, &c), -1); /* c is only in "w" */
	CHECK_EQ(errno, ENOENT);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*"), "v", &c), -1);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.b"), NULL, &a), -1);
	CHECK_EQ(fd_topic_tree_remove(t, S("a..b"), NULL, &a), -1);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*"), NULL, &a), 0);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*"), NULL, &b),
		 FD_TOPIC_INTEREST_CHANGE);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*"), "w", &c), 0);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*"), "w", &a), 3);
	CHECK_EQ(fd_topic_tree_patterns(t), 1);
	CHECK_EQ(fd_topic_tree_remove(t, S("a.>"), NULL, &a), 3);
	CHECK_EQ(fd_topic_tree_patterns(t), 0);
	CHECK_EQ(fd_topic_tree_entries(t), 0);
	fd_topic_tree_free(t);
	fd_topic_tree_free(NULL);
}

struct removed {
	int calls, pattern_gone;
};

static void on_removed(void *arg, const char *pattern, size_t len,
		       const char *group, int flags)
{
	struct removed *r = arg;

	(void)group;
	CHECK_EQ(strlen(pattern), len);
	r->calls++;
	r->pattern_gone += !!(flags & FD_TOPIC_PATTERN_CHANGE);
}

TEST(tree_remove_value)
{
	struct fd_topic_tree *t = fd_topic_tree_new(0, 0, 2);
	struct removed r = {0, 0};
	int peer1, peer2;

	REQUIRE(t);
	fd_topic_tree_add(t, S("a.>"), NULL, &peer1, NULL);
	fd_topic_tree_add(t, S("a.b"), NULL, &peer1, NULL);
	fd_topic_tree_add(t, S("a.b"), "q", &peer1, NULL);
	fd_topic_tree_add(t, S("a.b"), NULL, &peer2, NULL);
	CHECK_EQ(fd_topic_tree_remove_value(t, &peer1, on_removed, &r), 3);
	CHECK_EQ(r.calls, 3);
	CHECK_EQ(r.pattern_gone, 1); /* a.> went; a.b stays for peer2 */
	CHECK_EQ(fd_topic_tree_entries(t), 1);
	CHECK_EQ(fd_topic_tree_collect(t, S("a.b"), NULL, 0), 1);
	CHECK_EQ(fd_topic_tree_remove_value(t, &peer1, on_removed, &r), 0);
	fd_topic_tree_free(t);
}

TEST(tree_limits_and_bad_input)
{
	struct fd_topic_tree *t = fd_topic_tree_new(3, 5, 3);
	struct fd_err err;
	char big[300];
	int v;

	REQUIRE(t);
	CHECK_EQ(fd_topic_tree_add(t, S("a.b"), NULL, &v, &err), 3);
	CHECK_EQ(fd_topic_tree_add(t, S("a.*.c"), NULL, &v, &err), 3); /* 4 nodes */
	/* two more nodes would exceed 5 */
	CHECK_EQ(fd_topic_tree_add(t, S("x.y"), NULL, &v, &err), -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_STR(err.msg, "interest table full (5 trie nodes)");
	CHECK_EQ(fd_topic_tree_add(t, S("x"), NULL, &v, &err), 3);
	CHECK_EQ(fd_topic_tree_add(t, S("a.b"), NULL, &err, &err), -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_STR(err.msg, "interest table full (3 entries)");
	CHECK_EQ(fd_topic_tree_add(t, S("a.b"), NULL, &v, &err), -1);
	CHECK_EQ(errno, EEXIST);
	CHECK_EQ(fd_topic_tree_add(t, S("a.b*"), NULL, &v, &err), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_STR(err.msg, "invalid pattern: '*' at byte 3 must be a whole token");
	CHECK_EQ(fd_topic_tree_add(t, S("a.b"), "q w", &v, &err), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_STR(err.msg, "invalid group: whitespace (0x20) at byte 1");
	CHECK_EQ(fd_topic_tree_entries(t), 3);
	/* removing frees room */
	CHECK_EQ(fd_topic_tree_remove(t, S("a.*.c"), NULL, &v), 3);
	CHECK_EQ(fd_topic_tree_add(t, S("x.y"), NULL, &v, &err), 3);
	/* match rejects what is not shaped like a subject */
	memset(big, 'a', sizeof(big));
	CHECK_EQ(fd_topic_tree_collect(t, big, 256, NULL, 0), -1);
	CHECK_EQ(fd_topic_tree_collect(t, S(""), NULL, 0), -1);
	CHECK_EQ(fd_topic_tree_collect(t, S("a..b"), NULL, 0), -1);
	CHECK_EQ(fd_topic_tree_collect(t, S("a."), NULL, 0), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(fd_topic_tree_collect(t, S("a.b"), NULL, 0), 1);
	fd_topic_tree_free(t);
}

/* Deepest patterns: 128 tokens, with every token also a '*' alternative. */
TEST(tree_deep_patterns)
{
	struct fd_topic_tree *t = fd_topic_tree_new(0, 0, 4);
	char p[256], s[256];
	int v[4];

	REQUIRE(t);
	for (int i = 0; i < 255; i++)
		s[i] = p[i] = i % 2 ? '.' : 'a';
	CHECK_EQ(fd_topic_tree_add(t, p, 255, NULL, &v[0], NULL), 3);
	for (int i = 0; i < 255; i += 2)
		p[i] = '*';
	CHECK_EQ(fd_topic_tree_add(t, p, 255, NULL, &v[1], NULL), 3);
	p[254] = '>';
	CHECK_EQ(fd_topic_tree_add(t, p, 255, NULL, &v[2], NULL), 3);
	p[0] = '>';
	CHECK_EQ(fd_topic_tree_add(t, p, 1, NULL, &v[3], NULL), 3);
	CHECK_EQ(fd_topic_tree_collect(t, s, 255, NULL, 0), 4);
	fd_topic_tree_free(t);
}

/* ---- Queue groups ---- */

TEST(select_groups)
{
	int a, b, c, d;
	struct fd_topic_match m[8],
		base[8] = {
			{"x.*", 3, NULL, &a}, {"x.>", 3, NULL, &a},
			{"x.*", 3, NULL, &b}, {"x.*", 3, "w", &c},
			{"x.>", 3, "w", &d},  {"x.*", 3, "w", &a},
			{"x.>", 3, "z", &b},
		};
	int seen[3] = {0, 0, 0};
	void *first = NULL;

	for (uint64_t pick = 0; pick < 30; pick++) {
		size_t k, ng = 0, nu = 0;

		memcpy(m, base, sizeof(m));
		/* shuffle: the result must not depend on the order */
		for (int i = 6; i > 0; i--) {
			int j = (int)unit_rand_below((uint64_t)i + 1);
			struct fd_topic_match tmp = m[i];

			m[i] = m[j];
			m[j] = tmp;
		}
		k = fd_topic_select(m, 7, pick, 0);
		REQUIRE(k == 5); /* 3 ungrouped + one "w" + one "z" */
		for (size_t i = 0; i < k; i++) {
			if (!m[i].group) {
				nu++;
				continue;
			}
			ng++;
			if (strcmp(m[i].group, "w") == 0) {
				seen[m[i].value == &a	? 0
				     : m[i].value == &c ? 1
							: 2]++;
				if (pick == 0)
					first = m[i].value;
			} else {
				CHECK(m[i].value == &b);
			}
		}
		CHECK_EQ(nu, 3);
		CHECK_EQ(ng, 2);
	}
	/* round-robin over 30 picks reaches each of the 3 members 10 times */
	CHECK_EQ(seen[0], 10);
	CHECK_EQ(seen[1], 10);
	CHECK_EQ(seen[2], 10);
	CHECK(first != NULL);
	/* once per value: a's two ungrouped patterns count once */
	memcpy(m, base, sizeof(m));
	CHECK_EQ(fd_topic_select(m, 7, 0, FD_TOPIC_ONCE_PER_VALUE), 4);
	CHECK_EQ(fd_topic_select(m, 0, 0, 0), 0);
}

/* ---- Interest sets on the wire ---- */

struct sink {
	struct fd_topic_item items[64];
	char pats[64][256];
	char grps[64][256];
	int n;
};

static int sink_item(void *arg, const struct fd_topic_item *it)
{
	struct sink *s = arg;

	if (s->n == 64)
		return 1;
	memcpy(s->pats[s->n], it->pattern, it->len);
	s->pats[s->n][it->len] = '\0';
	s->items[s->n] = *it;
	s->items[s->n].pattern = s->pats[s->n];
	if (it->group) {
		snprintf(s->grps[s->n], 256, "%s", it->group);
		s->items[s->n].group = s->grps[s->n];
	}
	s->n++;
	return 0;
}

static int item_qcmp(const void *a, const void *b)
{
	return fd_topic_item_cmp(a, b);
}

/* Random set of n items: distinct and sorted for a full set. */
static int rand_items(struct fd_topic_item *it, char pats[][64], int n, int full)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		it[k].len = rand_pattern(pats[i], 5);
		it[k].pattern = pats[i];
		it[k].group = groups[unit_rand_below(5)];
		it[k].op = full ? FD_TOPIC_ADD
				: (enum fd_topic_op)unit_rand_below(2);
		k++;
	}
	if (full) {
		int w = 0;

		qsort(it, (size_t)k, sizeof(it[0]), item_qcmp);
		for (int i = 0; i < k; i++)
			if (w == 0 || fd_topic_item_cmp(&it[w - 1], &it[i]) != 0)
				it[w++] = it[i];
		k = w;
	}
	return k;
}

TEST(set_round_trip_and_truncations)
{
	static struct fd_topic_item it[40];
	char pats[40][64];
	uint8_t buf[4096], again[4096];
	struct sink sink;
	struct fd_err err;

	for (int round = 0; round < 300; round++) {
		int full = round % 2 == 0;
		int n = rand_items(it, pats, (int)unit_rand_below(40), full);
		enum fd_topic_set_kind kind = full ? FD_TOPIC_SET_FULL
						   : FD_TOPIC_SET_DELTA;
		uint64_t version = unit_rand() >> unit_rand_below(64);
		struct fd_topic_set_info info;
		size_t len, len2;

		REQUIRE(fd_topic_set_encode(buf, sizeof(buf), kind, version, it,
					    (size_t)n, &len, &err) == 0);
		sink.n = 0;
		REQUIRE(fd_topic_set_decode(buf, len, &info, sink_item, &sink,
					    &err) == 0);
		CHECK_EQ(info.kind, kind);
		CHECK(info.version == version);
		CHECK_EQ(info.count, n);
		REQUIRE(sink.n == n);
		for (int i = 0; i < n; i++) {
			CHECK_EQ(sink.items[i].op, it[i].op);
			CHECK_EQ(fd_topic_item_cmp(&sink.items[i], &it[i]), 0);
		}
		/* the encoding is canonical: decoding and encoding again is identity */
		REQUIRE(fd_topic_set_encode(again, sizeof(again), kind, version,
					    sink.items, (size_t)n, &len2, &err) == 0);
		CHECK_EQ(len2, len);
		CHECK(memcmp(buf, again, len) == 0);
		/* every truncation is rejected, and so is any trailing byte */
		for (size_t cut = 0; cut < len; cut++)
			if (fd_topic_set_decode(buf, cut, NULL, NULL, NULL,
						&err) != -1) {
				unit_fail(__FILE__, __LINE__,
					  "truncation to %zu of %zu accepted",
					  cut, len);
				return;
			}
		buf[len] = 0;
		CHECK_EQ(fd_topic_set_decode(buf, len + 1, NULL, NULL, NULL, &err),
			 -1);
		CHECK_EQ(errno, EBADMSG);
		/* too small a buffer says how much is needed */
		if (len > 0) {
			CHECK_EQ(fd_topic_set_encode(again, len - 1, kind, version,
						     it, (size_t)n, &len2, &err),
				 -1);
			CHECK_EQ(errno, ENOSPC);
			CHECK_EQ(len2, len);
		}
	}
}

/* Every single-byte change either is rejected or decodes to a set that
 * encodes back to exactly the changed bytes: nothing ambiguous gets in. */
TEST(set_mutations)
{
	static struct fd_topic_item it[20];
	char pats[20][64];
	uint8_t buf[2048], again[2048];
	struct sink sink;
	struct fd_err err;
	long rejected = 0, accepted = 0;

	for (int round = 0; round < 60; round++) {
		int full = round % 2 == 0;
		int n = rand_items(it, pats, 1 + (int)unit_rand_below(19), full);
		enum fd_topic_set_kind kind = full ? FD_TOPIC_SET_FULL
						   : FD_TOPIC_SET_DELTA;
		size_t len;

		REQUIRE(fd_topic_set_encode(buf, sizeof(buf), kind, round, it,
					    (size_t)n, &len, &err) == 0);
		for (size_t pos = 0; pos < len; pos++) {
			uint8_t orig = buf[pos];

			for (int k = 0; k < 4; k++) {
				struct fd_topic_set_info info;
				size_t len2;

				buf[pos] = (uint8_t)(k == 0   ? orig + 1u
						     : k == 1 ? orig - 1u
							      : (unsigned)unit_rand());
				sink.n = 0;
				if (fd_topic_set_decode(buf, len, &info,
							sink_item, &sink, &err)) {
					rejected++;
					continue;
				}
				accepted++;
				REQUIRE(sink.n == (int)info.count);
				REQUIRE(fd_topic_set_encode(
						again, sizeof(again), info.kind,
						info.version, sink.items,
						(size_t)sink.n, &len2, &err) == 0);
				if (len2 != len || memcmp(again, buf, len) != 0) {
					unit_fail(__FILE__, __LINE__,
						  "byte %zu changed: accepted but not canonical",
						  pos);
					return;
				}
			}
			buf[pos] = orig;
		}
	}
	CHECK_INT(rejected, >, 0);
	printf("# mutations: %ld rejected, %ld accepted (canonical)\n",
	       rejected, accepted);
}

TEST(set_garbage)
{
	static const struct {
		const char *data;
		size_t len;
		const char *msg;
	} c[] = {
		{"", 0, "bad interest set: truncated header at byte 0"},
		{"\xfdT\x01", 3, "bad interest set: truncated header at byte 3"},
		{"xxxx", 4, "bad interest set: bad magic at byte 0"},
		{"\xfdT\x02\x00\x00\x00", 6,
		 "bad interest set: unsupported format version at byte 2"},
		{"\xfdT\x01\x02\x00\x00", 6, "bad interest set: unknown kind at byte 3"},
		{"\xfdT\x01\x00\x80", 5,
		 "bad interest set: bad version number at byte 5"},
		{"\xfdT\x01\x00\x80\x00\x00", 7,
		 "bad interest set: bad version number at byte 6"},
		{"\xfdT\x01\x00\x00\x05\x00\x01\x61\x00", 10,
		 "bad interest set: count beyond the data at byte 6"},
		{"\xfdT\x01\x00\x00\x01\x01\x01\x61\x00", 10,
		 "bad interest set: shared prefix longer than the previous pattern at byte 6"},
		{"\xfdT\x01\x00\x00\x01\x00\x02\x61\x2e\x00", 11,
		 "bad interest set: item at byte 6: invalid pattern: pattern ends with '.'"},
		{"\xfdT\x01\x00\x00\x01\x00\x01\x61\x01\x00", 11,
		 "bad interest set: item at byte 6: invalid group: control character 0x00 at byte 0"},
		{"\xfdT\x01\x00\x00\x02\x00\x01\x62\x00\x00\x01\x61\x00", 14,
		 "bad interest set: full set not sorted or not distinct at byte 10"},
		{"\xfdT\x01\x00\x00\x02\x00\x01\x61\x00\x01\x00\x00", 13,
		 "bad interest set: count beyond the data at byte 6"},
		{"\xfdT\x01\x00\x00\x02\x00\x01\x61\x01\x67\x01\x00\x00", 14,
		 "bad interest set: full set not sorted or not distinct at byte 11"},
		{"\xfdT\x01\x01\x00\x02\x00\x00\x01\x61\x00\x01\x00\x01\x61\x00",
		 16, "bad interest set: shared prefix not the longest at byte 12"},
		{"\xfdT\x01\x01\x00\x01\x02\x00\x01\x61\x00", 11,
		 "bad interest set: unknown op at byte 6"},
		{"\xfdT\x01\x00\x00\x00\x00", 7,
		 "bad interest set: trailing bytes at byte 6"},
	};
	struct fd_err err;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (fd_topic_set_decode(c[i].data, c[i].len, NULL, NULL, NULL,
					&err) != -1) {
			unit_fail(__FILE__, __LINE__, "case %zu accepted", i);
			continue;
		}
		CHECK_STR(err.msg, c[i].msg);
	}
	/* the empty set and a delta that adds then removes one pattern are fine */
	CHECK_EQ(fd_topic_set_decode("\xfdT\x01\x00\x07\x00", 6, NULL, NULL,
				     NULL, &err),
		 0);
	CHECK_EQ(fd_topic_set_decode("\xfdT\x01\x01\x00\x02\x00\x00\x01\x61\x00\x01\x01\x00\x00",
				     15, NULL, NULL, NULL, &err),
		 0);
}

TEST(set_encode_rejects)
{
	struct fd_topic_item it[2] = {
		{FD_TOPIC_ADD, "b", 1, NULL},
		{FD_TOPIC_ADD, "a", 1, NULL},
	};
	uint8_t buf[64];
	struct fd_err err;
	size_t len;

	CHECK_EQ(fd_topic_set_encode(buf, sizeof(buf), FD_TOPIC_SET_FULL, 1, it,
				     2, &len, &err),
		 -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_STR(err.msg, "item 1: full set not sorted or not distinct");
	CHECK_EQ(fd_topic_set_encode(buf, sizeof(buf), FD_TOPIC_SET_DELTA, 1,
				     it, 2, &len, &err),
		 0);
	it[0].op = FD_TOPIC_REMOVE;
	CHECK_EQ(fd_topic_set_encode(buf, sizeof(buf), FD_TOPIC_SET_FULL, 1, it,
				     1, &len, &err),
		 -1);
	it[0].pattern = "a.";
	it[0].len = 2;
	CHECK_EQ(fd_topic_set_encode(buf, sizeof(buf), FD_TOPIC_SET_DELTA, 1,
				     it, 1, &len, &err),
		 -1);
	CHECK_STR(err.msg, "item 0: invalid pattern: pattern ends with '.'");
	CHECK_EQ(fd_topic_set_encode(NULL, 0, FD_TOPIC_SET_DELTA, 1, it + 1, 1,
				     &len, &err),
		 -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(len, 11);
}

/* ---- Benchmark ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_one(void *arg, const struct fd_topic_match *m)
{
	(void)m;
	++*(long *)arg;
	return 0;
}

/* Subscriptions like "svc<i>.<region>.*" and "svc<i>.>" with a few
 * wildcard-heavy ones; publishes to random "svc<i>.<region>.<x>". */
static double bench(int nsubs, long *matched)
{
	struct fd_topic_tree *t = fd_topic_tree_new(0, 0, 99);
	static const char *const region[] = {"eu", "us", "ap", "sa"};
	static char subj[4096][32];
	static size_t slen[4096];
	char buf[64];
	double t0, dt;
	int pubs = 1000000;

	if (!t)
		return 0;
	for (int i = 0; i < nsubs; i++) {
		int n = i % 3 == 0 ? snprintf(buf, sizeof(buf), "svc%d.>", i / 3)
				   : snprintf(buf, sizeof(buf), "svc%d.%s.*",
					      i / 3, region[i % 4]);

		fd_topic_tree_add(t, buf, (size_t)n, NULL, &values[i % NVAL], NULL);
	}
	fd_topic_tree_add(t, S("*.eu.*"), NULL, &values[0], NULL);
	fd_topic_tree_add(t, S(">"), NULL, &values[1], NULL);
	for (int k = 0; k < 4096; k++) {
		uint64_t r = unit_rand();
		int n = snprintf(subj[k], sizeof(subj[k]), "svc%d.%s.x%d",
				 (int)(r % (uint64_t)(nsubs / 3 + 1)),
				 region[(r >> 20) % 4], (int)((r >> 30) % 100));

		slen[k] = (size_t)n;
	}
	*matched = 0;
	t0 = now_s();
	for (int k = 0; k < pubs; k++)
		fd_topic_tree_match(t, subj[k & 4095], slen[k & 4095],
				    count_one, matched);
	dt = now_s() - t0;
	fd_topic_tree_free(t);
	return pubs / dt;
}

TEST(bench_match_rate)
{
	long m1, m2;
	double small = bench(1000, &m1), large = bench(100000, &m2);

	printf("# bench: %.0f publishes/s with 1k subscriptions (%.2f matches each), "
	       "%.0f/s with 100k (%.2f matches each)\n",
	       small, m1 / 1e6, large, m2 / 1e6);
	CHECK(small > 0 && large > 0);
	/* 100x the subscriptions must not cost anything like 100x the time */
	CHECK_INT(small / large, <, 20);
}
