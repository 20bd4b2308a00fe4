/* libFuzzer harness for topic: the validators, the reference matcher, the
 * interest tree and the interest-set decoder.
 *
 * Properties checked on every input (a failure traps):
 *   - a valid subject matches itself, and a valid pattern's tree entry
 *     matches exactly what fd_topic_match() says;
 *   - a set the decoder accepts encodes back to the very same bytes
 *     (the encoding is canonical) and can be applied to a tree.
 */
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

struct items {
	struct fd_topic_item *it;
	char *strings; /* pattern and group copies, 2 * 256 bytes per item */
	size_t n, cap;
	struct fd_topic_tree *tree;
};

static int keep(void *arg, const struct fd_topic_item *in)
{
	struct items *s = arg;
	struct fd_topic_item *it;
	char *pat, *grp;
	int v;

	ASSERT(s->n < s->cap);
	it = &s->it[s->n];
	pat = s->strings + s->n * 512;
	grp = pat + 256;
	memcpy(pat, in->pattern, in->len);
	pat[in->len] = '\0';
	*it = *in;
	it->pattern = pat;
	if (in->group) {
		size_t gl = strlen(in->group);

		ASSERT(gl < 256);
		memcpy(grp, in->group, gl + 1);
		it->group = grp;
	}
	s->n++;
	/* Apply it: the tree must accept a decoded pattern and group. */
	if (in->op == FD_TOPIC_ADD)
		v = fd_topic_tree_add(s->tree, in->pattern, in->len, in->group,
				      s, NULL);
	else
		v = fd_topic_tree_remove(s->tree, in->pattern, in->len, in->group, s);
	(void)v;
	return 0;
}

static int count(void *arg, const struct fd_topic_match *m)
{
	(void)m;
	++*(long *)arg;
	return 0;
}

static void fuzz_set(const uint8_t *data, size_t size)
{
	struct fd_topic_set_info info;
	struct items s = {0};
	struct fd_err err;
	uint8_t *again;
	size_t len;

	if (fd_topic_set_decode(data, size, &info, NULL, NULL, &err))
		return;
	ASSERT(info.count <= size / 4);
	s.cap = (size_t)info.count;
	s.it = calloc(s.cap + 1, sizeof(*s.it));
	s.strings = calloc(s.cap + 1, 512);
	again = malloc(size + 1);
	s.tree = fd_topic_tree_new(4096, 0, 1);
	if (!s.it || !s.strings || !again || !s.tree)
		goto out;
	ASSERT(fd_topic_set_decode(data, size, NULL, keep, &s, &err) == 0);
	ASSERT(s.n == info.count);
	ASSERT(fd_topic_set_encode(again, size, info.kind, info.version, s.it,
				   s.n, &len, &err) == 0);
	ASSERT(len == size && memcmp(again, data, size) == 0);
	for (size_t i = 0; i < s.n; i++) {
		long n = 0;

		/* a pattern without wildcards is a subject its own entry matches */
		if (fd_topic_valid_subject(s.it[i].pattern, s.it[i].len, NULL) == 0) {
			ASSERT(fd_topic_tree_match(s.tree, s.it[i].pattern,
						   s.it[i].len, count, &n) >= 0);
			ASSERT(fd_topic_match(s.it[i].pattern, s.it[i].len,
					      s.it[i].pattern, s.it[i].len));
		}
	}
out:
	fd_topic_tree_free(s.tree);
	free(again);
	free(s.strings);
	free(s.it);
}

/* Input "pattern\0subject": the tree and the reference matcher agree. */
static void fuzz_match(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *subj;
	const uint8_t *nul = memchr(data, 0, size);
	size_t plen, slen;
	struct fd_topic_tree *t;
	long n = 0, got;
	int v;

	if (!nul)
		return;
	plen = (size_t)(nul - data);
	subj = (const char *)nul + 1;
	slen = size - plen - 1;
	if (fd_topic_valid_pattern(p, plen, NULL) ||
	    fd_topic_valid_subject(subj, slen, NULL))
		return;
	t = fd_topic_tree_new(16, 0, 2);
	if (!t)
		return;
	ASSERT(fd_topic_tree_add(t, p, plen, NULL, &v, NULL) == 3);
	ASSERT(fd_topic_tree_add(t, p, plen, "g", &v, NULL) ==
	       FD_TOPIC_INTEREST_CHANGE);
	got = fd_topic_tree_match(t, subj, slen, count, &n);
	ASSERT(got == n);
	ASSERT(got == 2 * fd_topic_match(p, plen, subj, slen));
	ASSERT(fd_topic_tree_remove(t, p, plen, "g", &v) == FD_TOPIC_INTEREST_CHANGE);
	ASSERT(fd_topic_tree_remove(t, p, plen, NULL, &v) == 3);
	ASSERT(fd_topic_tree_patterns(t) == 0);
	fd_topic_tree_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_err err;
	const char *s = (const char *)data;
	int subject_ok = fd_topic_valid_subject(s, size, &err) == 0;
	int pattern_ok = fd_topic_valid_pattern(s, size, &err) == 0;

	ASSERT(!subject_ok || pattern_ok); /* every subject is a pattern */
	if (subject_ok)
		ASSERT(fd_topic_match(s, size, s, size));
	fuzz_set(data, size);
	fuzz_match(data, size);
	return 0;
}
