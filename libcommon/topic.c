#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Validation ---- */

/* Decodes one UTF-8 sequence at s[0..avail); returns its length, or 0 when
 * it is invalid (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_one(const unsigned char *s, size_t avail, uint32_t *cp)
{
	unsigned c = s[0];
	size_t n;
	uint32_t v, min;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* Unicode White_Space beyond ASCII (U+0085 is a C1 control anyway). */
static int uni_space(uint32_t cp)
{
	return cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
	       cp == 0x3000;
}

static int check(const char *str, size_t len, int pattern, const char *what,
		 struct fd_err *err)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t tok = 0, i = 0;

	if (len == 0)
		return fd_err_set(err, "empty %s", what);
	if (len > FD_TOPIC_MAX_LEN)
		return fd_err_set(err, "%s longer than %d bytes", what,
				  FD_TOPIC_MAX_LEN);
	while (i <= len) {
		unsigned c;
		uint32_t cp;
		size_t n;

		if (i == len || s[i] == '.') {
			if (i == tok) {
				if (i == 0)
					return fd_err_set(
						err, "%s starts with '.'", what);
				if (i == len)
					return fd_err_set(err, "%s ends with '.'",
							  what);
				return fd_err_set(err, "empty token at byte %zu", i);
			}
			tok = ++i;
			continue;
		}
		c = s[i];
		if (c == '*' || c == '>') {
			if (!pattern)
				return fd_err_set(err, "wildcard '%c' at byte %zu: not allowed in a %s",
						  c, i, what);
			if (i != tok || (i + 1 < len && s[i + 1] != '.'))
				return fd_err_set(err, "'%c' at byte %zu must be a whole token",
						  c, i);
			if (c == '>' && i + 1 != len)
				return fd_err_set(err, "'>' at byte %zu must be the last token",
						  i);
			i++;
			continue;
		}
		if (c < 0x80) {
			if (c == ' ' || (c >= '\t' && c <= '\r'))
				return fd_err_set(err, "whitespace (0x%02x) at byte %zu",
						  c, i);
			if (c < 0x20 || c == 0x7f)
				return fd_err_set(err, "control character 0x%02x at byte %zu",
						  c, i);
			i++;
			continue;
		}
		n = utf8_one(s + i, len - i, &cp);
		if (!n)
			return fd_err_set(err, "invalid UTF-8 at byte %zu", i);
		if (cp <= 0x9f)
			return fd_err_set(err, "control character U+%04X at byte %zu",
					  (unsigned)cp, i);
		if (uni_space(cp))
			return fd_err_set(err, "whitespace U+%04X at byte %zu",
					  (unsigned)cp, i);
		i += n;
	}
	return 0;
}

int fd_topic_valid_subject(const char *s, size_t len, struct fd_err *err)
{
	return check(s, len, 0, "subject", err);
}

int fd_topic_valid_pattern(const char *s, size_t len, struct fd_err *err)
{
	return check(s, len, 1, "pattern", err);
}

int fd_topic_valid_group(const char *group, struct fd_err *err)
{
	return check(group, strnlen(group, FD_TOPIC_MAX_LEN + 1), 0, "group", err);
}

/* ---- Reference matcher ---- */

static int next_tok(const char *s, size_t len, size_t *pos, const char **tok,
		    size_t *toklen)
{
	const char *dot;

	if (*pos > len)
		return 0;
	*tok = s + *pos;
	dot = memchr(*tok, '.', len - *pos);
	*toklen = dot ? (size_t)(dot - *tok) : len - *pos;
	*pos += *toklen + 1;
	return 1;
}

int fd_topic_match(const char *pattern, size_t plen, const char *subject, size_t slen)
{
	size_t pp = 0, sp = 0, pl, sl;
	const char *pt, *st;

	for (;;) {
		int hp = next_tok(pattern, plen, &pp, &pt, &pl);
		int hs = next_tok(subject, slen, &sp, &st, &sl);

		if (!hp)
			return !hs;
		if (pl == 1 && pt[0] == '>')
			return hs;
		if (!hs)
			return 0;
		if (pl == 1 && pt[0] == '*')
			continue;
		if (pl != sl || memcmp(pt, st, pl) != 0)
			return 0;
	}
}

/* ---- Hashing ---- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}

/* Keyed by the tree's seed, so peers cannot choose colliding tokens without
 * knowing it. Not a MAC: good spreading is all it is for. */
static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	uint64_t w;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = mix(h ^ w) + 0x9e3779b97f4a7c15ULL;
		p += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, p, n);
	return mix(h ^ w ^ 0x2545f4914f6cdd1dULL);
}

/* ---- Tree ---- */

/* A queue group of one pattern, shared by the pattern's entries in it. */
struct gref {
	uint32_t count;
	char name[];
};

struct ent {
	void *value;
	struct gref *g;
};

/* The entries of one distinct pattern, at the trie node where it ends.
 * Entries sit in a dense array (matching walks it); above IDX_ON entries an
 * open-addressing index (slots hold position + 1) finds one in O(1). */
struct term {
	struct term *prev, *next;
	struct tnode *node;
	struct ent *ents;
	uint32_t n, cap;
	uint32_t *idx;
	uint32_t idx_cap;
	struct gref **groups;
	uint32_t ngroups, groups_cap;
	uint32_t ungrouped;
	size_t len;
	char pattern[];
};

#define IDX_ON 8
#define IDX_OFF 4

struct tnode {
	struct tnode *parent;
	struct tnode *next; /* chain in the parent's bucket */
	struct tnode **buckets;
	uint32_t nbuckets, nkids;
	struct tnode *star, *gt;
	struct term *term;
	uint64_t hash;
	size_t toklen;
	char tok[];
};

struct fd_topic_tree {
	struct tnode *root;
	struct term *terms;
	uint64_t seed;
	size_t entries, patterns, nodes;
	size_t max_entries, max_nodes;
};

struct toks {
	int n;
	uint8_t len[FD_TOPIC_MAX_TOKENS];
	uint8_t off[FD_TOPIC_MAX_TOKENS];
};

/* Splits s into tokens; -1 unless it is shaped like a subject or pattern. */
static int tokenize(const char *s, size_t len, struct toks *tk)
{
	size_t start = 0;

	if (len == 0 || len > FD_TOPIC_MAX_LEN)
		return -1;
	tk->n = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (i == start || tk->n == FD_TOPIC_MAX_TOKENS)
			return -1;
		tk->off[tk->n] = (uint8_t)start;
		tk->len[tk->n] = (uint8_t)(i - start);
		tk->n++;
		start = i + 1;
	}
	return 0;
}

static int is_wild(const char *tok, size_t len, char w)
{
	return len == 1 && tok[0] == w;
}

static struct tnode *kid_find(const struct tnode *n, const char *tok,
			      size_t len, uint64_t h)
{
	const struct tnode *c;

	if (!n->nkids)
		return NULL;
	for (c = n->buckets[h & (n->nbuckets - 1)]; c; c = c->next)
		if (c->hash == h && c->toklen == len && memcmp(c->tok, tok, len) == 0)
			return (struct tnode *)c;
	return NULL;
}

static int kid_rehash(struct tnode *n, uint32_t nb)
{
	struct tnode **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (uint32_t i = 0; i < n->nbuckets; i++) {
		struct tnode *c = n->buckets[i], *next;

		for (; c; c = next) {
			next = c->next;
			c->next = b[c->hash & (nb - 1)];
			b[c->hash & (nb - 1)] = c;
		}
	}
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = nb;
	return 0;
}

static struct tnode *child(const struct fd_topic_tree *t, const struct tnode *n,
			   const char *tok, size_t len)
{
	if (is_wild(tok, len, '*'))
		return n->star;
	if (is_wild(tok, len, '>'))
		return n->gt;
	return kid_find(n, tok, len, hash_bytes(t->seed, tok, len));
}

static struct tnode *child_new(struct fd_topic_tree *t, struct tnode *n,
			       const char *tok, size_t len)
{
	struct tnode *c;

	if (!is_wild(tok, len, '*') && !is_wild(tok, len, '>') &&
	    n->nkids >= n->nbuckets &&
	    kid_rehash(n, n->nbuckets ? n->nbuckets * 2 : 4))
		return NULL;
	c = calloc(1, sizeof(*c) + len + 1);
	if (!c)
		return NULL;
	memcpy(c->tok, tok, len);
	c->toklen = len;
	c->parent = n;
	t->nodes++;
	if (is_wild(tok, len, '*')) {
		n->star = c;
	} else if (is_wild(tok, len, '>')) {
		n->gt = c;
	} else {
		c->hash = hash_bytes(t->seed, tok, len);
		c->next = n->buckets[c->hash & (n->nbuckets - 1)];
		n->buckets[c->hash & (n->nbuckets - 1)] = c;
		n->nkids++;
	}
	return c;
}

static void kid_unlink(struct tnode *p, struct tnode *c)
{
	struct tnode **pp = &p->buckets[c->hash & (p->nbuckets - 1)];

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	if (--p->nkids == 0) {
		free(p->buckets);
		p->buckets = NULL;
		p->nbuckets = 0;
	} else if (p->nbuckets > 16 && p->nkids * 8 < p->nbuckets) {
		kid_rehash(p, p->nbuckets / 2); /* on failure it just stays big */
	}
}

/* Frees n and its empty ancestors. */
static void prune(struct fd_topic_tree *t, struct tnode *n)
{
	while (n != t->root && !n->term && !n->nkids && !n->star && !n->gt) {
		struct tnode *p = n->parent;

		if (p->star == n)
			p->star = NULL;
		else if (p->gt == n)
			p->gt = NULL;
		else
			kid_unlink(p, n);
		free(n);
		t->nodes--;
		n = p;
	}
}

static uint64_t ent_hash(const struct fd_topic_tree *t, const void *value,
			 const struct gref *g)
{
	return mix(t->seed ^ ((uint64_t)(uintptr_t)value * 0x9e3779b97f4a7c15ULL) ^
		   (uint64_t)(uintptr_t)g);
}

static long ent_find(const struct fd_topic_tree *t, const struct term *tm,
		     const void *value, const struct gref *g)
{
	uint32_t mask, s;

	if (!tm->idx) {
		for (uint32_t i = 0; i < tm->n; i++)
			if (tm->ents[i].value == value && tm->ents[i].g == g)
				return i;
		return -1;
	}
	mask = tm->idx_cap - 1;
	for (s = ent_hash(t, value, g) & mask; tm->idx[s]; s = (s + 1) & mask) {
		const struct ent *e = &tm->ents[tm->idx[s] - 1];

		if (e->value == value && e->g == g)
			return tm->idx[s] - 1;
	}
	return -1;
}

static uint32_t slot_of(const struct fd_topic_tree *t, const struct term *tm,
			uint32_t pos)
{
	uint32_t mask = tm->idx_cap - 1;
	uint32_t s = ent_hash(t, tm->ents[pos].value, tm->ents[pos].g) & mask;

	while (tm->idx[s] != pos + 1)
		s = (s + 1) & mask;
	return s;
}

static int idx_build(const struct fd_topic_tree *t, struct term *tm, uint32_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -1;
	for (uint32_t i = 0; i < tm->n; i++) {
		uint32_t s = ent_hash(t, tm->ents[i].value, tm->ents[i].g) &
			     (cap - 1);

		while (idx[s])
			s = (s + 1) & (cap - 1);
		idx[s] = i + 1;
	}
	free(tm->idx);
	tm->idx = idx;
	tm->idx_cap = cap;
	return 0;
}

static int ent_insert(const struct fd_topic_tree *t, struct term *tm,
		      void *value, struct gref *g)
{
	if (tm->n == tm->cap) {
		uint32_t cap = tm->cap ? tm->cap * 2 : 2;
		struct ent *e = realloc(tm->ents, cap * sizeof(*e));

		if (!e)
			return -1;
		tm->ents = e;
		tm->cap = cap;
	}
	tm->ents[tm->n].value = value;
	tm->ents[tm->n].g = g;
	tm->n++;
	if (tm->n > IDX_ON && (!tm->idx || tm->n * 2 > tm->idx_cap)) {
		uint32_t cap = 16;

		while (cap < tm->n * 4)
			cap *= 2;
		if (idx_build(t, tm, cap)) {
			tm->n--;
			return -1;
		}
	} else if (tm->idx) {
		uint32_t mask = tm->idx_cap - 1;
		uint32_t s = ent_hash(t, value, g) & mask;

		while (tm->idx[s])
			s = (s + 1) & mask;
		tm->idx[s] = tm->n;
	}
	return 0;
}

static void ent_delete(const struct fd_topic_tree *t, struct term *tm, uint32_t pos)
{
	uint32_t last = tm->n - 1;

	if (tm->idx) {
		/* Backward-shift deletion keeps probe chains unbroken. */
		uint32_t mask = tm->idx_cap - 1;
		uint32_t i = slot_of(t, tm, pos), j = i;

		for (;;) {
			const struct ent *e;
			uint32_t k;

			j = (j + 1) & mask;
			if (!tm->idx[j])
				break;
			e = &tm->ents[tm->idx[j] - 1];
			k = ent_hash(t, e->value, e->g) & mask;
			/* Move j's item back to i unless its home lies in (i, j]. */
			if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
				tm->idx[i] = tm->idx[j];
				i = j;
			}
		}
		tm->idx[i] = 0;
		if (pos != last)
			tm->idx[slot_of(t, tm, last)] = pos + 1;
	}
	tm->ents[pos] = tm->ents[last];
	tm->n--;
	if (tm->idx && tm->n < IDX_OFF) {
		free(tm->idx);
		tm->idx = NULL;
		tm->idx_cap = 0;
	} else if (tm->idx && tm->idx_cap > 64 && tm->n * 16 < tm->idx_cap) {
		idx_build(t, tm, tm->idx_cap / 2); /* on failure it stays big */
	}
	if (tm->cap > 8 && tm->n * 4 < tm->cap) {
		struct ent *e = realloc(tm->ents, tm->cap / 2 * sizeof(*e));

		if (e) {
			tm->ents = e;
			tm->cap /= 2;
		}
	}
}

static struct gref *gref_find(const struct term *tm, const char *group)
{
	for (uint32_t i = 0; i < tm->ngroups; i++)
		if (strcmp(tm->groups[i]->name, group) == 0)
			return tm->groups[i];
	return NULL;
}

static struct gref *gref_new(struct term *tm, const char *group)
{
	size_t len = strlen(group);
	struct gref *g;

	if (tm->ngroups == tm->groups_cap) {
		uint32_t cap = tm->groups_cap ? tm->groups_cap * 2 : 2;
		struct gref **a = realloc(tm->groups, cap * sizeof(*a));

		if (!a)
			return NULL;
		tm->groups = a;
		tm->groups_cap = cap;
	}
	g = malloc(sizeof(*g) + len + 1);
	if (!g)
		return NULL;
	g->count = 0;
	memcpy(g->name, group, len + 1);
	tm->groups[tm->ngroups++] = g;
	return g;
}

static void gref_drop(struct term *tm, struct gref *g)
{
	for (uint32_t i = 0; i < tm->ngroups; i++) {
		if (tm->groups[i] == g) {
			tm->groups[i] = tm->groups[--tm->ngroups];
			break;
		}
	}
	free(g);
}

static struct term *term_new(struct fd_topic_tree *t, struct tnode *n,
			     const char *pattern, size_t len)
{
	struct term *tm = calloc(1, sizeof(*tm) + len + 1);

	if (!tm)
		return NULL;
	memcpy(tm->pattern, pattern, len);
	tm->len = len;
	tm->node = n;
	tm->next = t->terms;
	if (t->terms)
		t->terms->prev = tm;
	t->terms = tm;
	n->term = tm;
	t->patterns++;
	return tm;
}

static void term_free(struct term *tm)
{
	for (uint32_t i = 0; i < tm->ngroups; i++)
		free(tm->groups[i]);
	free(tm->groups);
	free(tm->ents);
	free(tm->idx);
	free(tm);
}

/* Unlinks an empty term and prunes the trie above it. */
static void term_drop(struct fd_topic_tree *t, struct term *tm)
{
	struct tnode *n = tm->node;

	if (tm->prev)
		tm->prev->next = tm->next;
	else
		t->terms = tm->next;
	if (tm->next)
		tm->next->prev = tm->prev;
	n->term = NULL;
	t->patterns--;
	term_free(tm);
	prune(t, n);
}

struct fd_topic_tree *fd_topic_tree_new(size_t max_entries, size_t max_nodes,
					uint64_t seed)
{
	struct fd_topic_tree *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->root = calloc(1, sizeof(*t->root) + 1);
	if (!t->root) {
		free(t);
		return NULL;
	}
	t->seed = mix(seed ^ 0x5851f42d4c957f2dULL);
	t->max_entries = max_entries ? max_entries : FD_TOPIC_DEFAULT_MAX_ENTRIES;
	if (t->max_entries > (1u << 28))
		t->max_entries = 1u << 28; /* per-pattern positions are 32-bit */
	t->max_nodes = max_nodes ? max_nodes : 8 * t->max_entries;
	return t;
}

static void node_free(struct tnode *n)
{
	for (uint32_t i = 0; i < n->nbuckets; i++) {
		struct tnode *c = n->buckets[i], *next;

		for (; c; c = next) {
			next = c->next;
			node_free(c);
		}
	}
	if (n->star)
		node_free(n->star);
	if (n->gt)
		node_free(n->gt);
	free(n->buckets);
	free(n);
}

void fd_topic_tree_free(struct fd_topic_tree *t)
{
	struct term *tm, *next;

	if (!t)
		return;
	for (tm = t->terms; tm; tm = next) {
		next = tm->next;
		term_free(tm);
	}
	node_free(t->root);
	free(t);
}

static int fail(int e)
{
	errno = e;
	return -1;
}

int fd_topic_tree_add(struct fd_topic_tree *t, const char *pattern, size_t len,
		      const char *group, void *value, struct fd_err *err)
{
	struct fd_err why;
	struct toks tk;
	struct tnode *n = t->root, *c;
	struct term *tm;
	struct gref *g = NULL;
	int i, flags = 0;

	if (fd_topic_valid_pattern(pattern, len, &why)) {
		fd_err_set(err, "invalid pattern: %s", why.msg);
		return fail(EINVAL);
	}
	if (group && fd_topic_valid_group(group, &why)) {
		fd_err_set(err, "invalid group: %s", why.msg);
		return fail(EINVAL);
	}
	tokenize(pattern, len, &tk);
	for (i = 0; i < tk.n; i++) {
		c = child(t, n, pattern + tk.off[i], tk.len[i]);
		if (!c)
			break;
		n = c;
	}
	tm = i == tk.n ? n->term : NULL;
	if (tm && group)
		g = gref_find(tm, group);
	if (tm && (!group || g) && ent_find(t, tm, value, g) >= 0) {
		fd_err_set(err, "already subscribed to '%.*s'", (int)len, pattern);
		return fail(EEXIST);
	}
	if (t->entries >= t->max_entries) {
		fd_err_set(err, "interest table full (%zu entries)", t->max_entries);
		return fail(ENOSPC);
	}
	if ((size_t)(tk.n - i) > t->max_nodes - t->nodes) {
		fd_err_set(err, "interest table full (%zu trie nodes)", t->max_nodes);
		return fail(ENOSPC);
	}
	for (; i < tk.n; i++) {
		c = child_new(t, n, pattern + tk.off[i], tk.len[i]);
		if (!c)
			goto nomem;
		n = c;
	}
	if (!tm) {
		tm = term_new(t, n, pattern, len);
		if (!tm)
			goto nomem;
		flags = FD_TOPIC_PATTERN_CHANGE | FD_TOPIC_INTEREST_CHANGE;
	}
	if (group && !g) {
		g = gref_new(tm, group);
		if (!g)
			goto nomem;
	}
	if (ent_insert(t, tm, value, g))
		goto nomem;
	if (g ? ++g->count == 1 : ++tm->ungrouped == 1)
		flags |= FD_TOPIC_INTEREST_CHANGE;
	t->entries++;
	return flags;
nomem:
	if (g && !g->count)
		gref_drop(tm, g);
	if (tm && !tm->n)
		term_drop(t, tm);
	else
		prune(t, n);
	fd_err_set(err, "out of memory");
	return fail(ENOMEM);
}

static int remove_at(struct fd_topic_tree *t, struct term *tm, uint32_t pos)
{
	struct gref *g = tm->ents[pos].g;
	int flags = 0;

	ent_delete(t, tm, pos);
	t->entries--;
	if (g ? --g->count == 0 : --tm->ungrouped == 0)
		flags |= FD_TOPIC_INTEREST_CHANGE;
	if (g && !g->count)
		gref_drop(tm, g);
	if (!tm->n) {
		flags |= FD_TOPIC_PATTERN_CHANGE;
		term_drop(t, tm);
	}
	return flags;
}

int fd_topic_tree_remove(struct fd_topic_tree *t, const char *pattern,
			 size_t len, const char *group, void *value)
{
	struct toks tk;
	struct tnode *n = t->root;
	struct gref *g = NULL;
	long pos;

	if (tokenize(pattern, len, &tk))
		return fail(ENOENT);
	for (int i = 0; i < tk.n && n; i++)
		n = child(t, n, pattern + tk.off[i], tk.len[i]);
	if (!n || !n->term)
		return fail(ENOENT);
	if (group) {
		g = gref_find(n->term, group);
		if (!g)
			return fail(ENOENT);
	}
	pos = ent_find(t, n->term, value, g);
	if (pos < 0)
		return fail(ENOENT);
	return remove_at(t, n->term, (uint32_t)pos);
}

size_t fd_topic_tree_remove_value(struct fd_topic_tree *t, void *value,
				  fd_topic_removed_fn fn, void *arg)
{
	struct term *tm, *next;
	size_t removed = 0;

	for (tm = t->terms; tm; tm = next) {
		char pat[FD_TOPIC_MAX_LEN + 1], grp[FD_TOPIC_MAX_LEN + 1];
		size_t len = tm->len;

		next = tm->next;
		memcpy(pat, tm->pattern, len + 1);
		/* Downwards: a removal moves the last entry, already seen, here. */
		for (uint32_t i = tm->n; i-- > 0;) {
			const struct gref *g = tm->ents[i].g;
			int flags, grouped = g != NULL;

			if (tm->ents[i].value != value)
				continue;
			if (grouped)
				memcpy(grp, g->name, strlen(g->name) + 1);
			flags = remove_at(t, tm, i);
			removed++;
			if (fn)
				fn(arg, pat, len, grouped ? grp : NULL, flags);
			if (flags & FD_TOPIC_PATTERN_CHANGE)
				break;
		}
	}
	return removed;
}

static int visit(const struct term *tm, fd_topic_visit_fn fn, void *arg, long *count)
{
	struct fd_topic_match m;

	m.pattern = tm->pattern;
	m.pattern_len = tm->len;
	for (uint32_t i = 0; i < tm->n; i++) {
		m.group = tm->ents[i].g ? tm->ents[i].g->name : NULL;
		m.value = tm->ents[i].value;
		++*count;
		if (fn(arg, &m))
			return 1;
	}
	return 0;
}

long fd_topic_tree_match(const struct fd_topic_tree *t, const char *subject,
			 size_t len, fd_topic_visit_fn fn, void *arg)
{
	/* Each pop pushes at most two nodes one level deeper, so the stack
	 * never holds more than one pending node per level, plus two. */
	struct {
		const struct tnode *n;
		int i;
	} stack[FD_TOPIC_MAX_TOKENS + 2];
	uint64_t hash[FD_TOPIC_MAX_TOKENS];
	struct toks tk;
	long count = 0;
	int sp = 0;

	if (tokenize(subject, len, &tk)) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < tk.n; i++)
		hash[i] = hash_bytes(t->seed, subject + tk.off[i], tk.len[i]);
	stack[sp].n = t->root;
	stack[sp++].i = 0;
	while (sp) {
		const struct tnode *n = stack[--sp].n, *c;
		int i = stack[sp].i;

		if (i == tk.n) {
			if (n->term && visit(n->term, fn, arg, &count))
				break;
			continue;
		}
		if (n->gt && n->gt->term && visit(n->gt->term, fn, arg, &count))
			break;
		if (n->star) {
			stack[sp].n = n->star;
			stack[sp++].i = i + 1;
		}
		c = kid_find(n, subject + tk.off[i], tk.len[i], hash[i]);
		if (c) {
			stack[sp].n = c;
			stack[sp++].i = i + 1;
		}
	}
	return count;
}

struct collect {
	struct fd_topic_match *out;
	size_t cap, n;
};

static int collect_one(void *arg, const struct fd_topic_match *m)
{
	struct collect *c = arg;

	if (c->n < c->cap)
		c->out[c->n] = *m;
	c->n++;
	return 0;
}

long fd_topic_tree_collect(const struct fd_topic_tree *t, const char *subject,
			   size_t len, struct fd_topic_match *out, size_t cap)
{
	struct collect c = {out, cap, 0};

	return fd_topic_tree_match(t, subject, len, collect_one, &c);
}

size_t fd_topic_tree_entries(const struct fd_topic_tree *t)
{
	return t->entries;
}

size_t fd_topic_tree_patterns(const struct fd_topic_tree *t)
{
	return t->patterns;
}

int fd_topic_tree_each_interest(const struct fd_topic_tree *t,
				fd_topic_interest_fn fn, void *arg)
{
	for (const struct term *tm = t->terms; tm; tm = tm->next) {
		int rc;

		if (tm->ungrouped) {
			rc = fn(arg, tm->pattern, tm->len, NULL, tm->ungrouped);
			if (rc)
				return rc;
		}
		for (uint32_t i = 0; i < tm->ngroups; i++) {
			rc = fn(arg, tm->pattern, tm->len, tm->groups[i]->name,
				tm->groups[i]->count);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- Delivery selection ---- */

static int sel_cmp(const struct fd_topic_match *x, const struct fd_topic_match *y)
{
	int c;

	if (!x->group != !y->group)
		return x->group ? 1 : -1;
	if (x->group) {
		c = strcmp(x->group, y->group);
		if (c)
			return c;
	}
	if (x->value != y->value)
		return (uintptr_t)x->value < (uintptr_t)y->value ? -1 : 1;
	return strcmp(x->pattern, y->pattern);
}

static void sift(struct fd_topic_match *m, size_t root, size_t n)
{
	for (;;) {
		size_t c = 2 * root + 1;
		struct fd_topic_match tmp;

		if (c >= n)
			return;
		if (c + 1 < n && sel_cmp(&m[c], &m[c + 1]) < 0)
			c++;
		if (sel_cmp(&m[root], &m[c]) >= 0)
			return;
		tmp = m[root];
		m[root] = m[c];
		m[c] = tmp;
		root = c;
	}
}

/* Heapsort: in place, no allocation (glibc's qsort may malloc). */
static void sel_sort(struct fd_topic_match *m, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(m, i, n);
	for (size_t end = n; end-- > 1;) {
		struct fd_topic_match tmp = m[0];

		m[0] = m[end];
		m[end] = tmp;
		sift(m, 0, end);
	}
}

size_t fd_topic_select(struct fd_topic_match *m, size_t n, uint64_t pick,
		       unsigned flags)
{
	size_t w = 0, i = 0;

	sel_sort(m, n);
	while (i < n) {
		size_t j;

		if (!m[i].group) {
			if (!((flags & FD_TOPIC_ONCE_PER_VALUE) && w > 0 &&
			      !m[w - 1].group && m[w - 1].value == m[i].value))
				m[w++] = m[i];
			i++;
			continue;
		}
		for (j = i + 1;
		     j < n && m[j].group && strcmp(m[j].group, m[i].group) == 0; j++)
			;
		m[w++] = m[i + (pick + hash_bytes(0, m[i].group, strlen(m[i].group))) %
				       (j - i)];
		i = j;
	}
	return w;
}

/* ---- Interest sets on the wire ---- */

int fd_topic_item_cmp(const struct fd_topic_item *a, const struct fd_topic_item *b)
{
	size_t min = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->pattern, b->pattern, min);

	if (c)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	if (!a->group || !b->group)
		return (a->group != NULL) - (b->group != NULL);
	return strcmp(a->group, b->group);
}

#define SET_MAGIC0 0xfd
#define SET_MAGIC1 'T'
#define SET_VERSION 1

static void put(uint8_t *out, size_t cap, size_t *pos, const void *p, size_t n)
{
	if (n && *pos <= cap && n <= cap - *pos)
		memcpy(out + *pos, p, n);
	*pos += n;
}

static void put_byte(uint8_t *out, size_t cap, size_t *pos, unsigned b)
{
	uint8_t c = (uint8_t)b;

	put(out, cap, pos, &c, 1);
}

static void put_varint(uint8_t *out, size_t cap, size_t *pos, uint64_t v)
{
	while (v >= 0x80) {
		put_byte(out, cap, pos, (unsigned)(v & 0x7f) | 0x80);
		v >>= 7;
	}
	put_byte(out, cap, pos, (unsigned)v);
}

int fd_topic_set_encode(void *buf, size_t cap, enum fd_topic_set_kind kind,
			uint64_t version, const struct fd_topic_item *items,
			size_t n, size_t *outlen, struct fd_err *err)
{
	uint8_t *out = buf;
	struct fd_err why;
	size_t pos = 0;

	*outlen = 0;
	if (kind != FD_TOPIC_SET_FULL && kind != FD_TOPIC_SET_DELTA) {
		fd_err_set(err, "unknown set kind %d", (int)kind);
		return fail(EINVAL);
	}
	put_byte(out, cap, &pos, SET_MAGIC0);
	put_byte(out, cap, &pos, SET_MAGIC1);
	put_byte(out, cap, &pos, SET_VERSION);
	put_byte(out, cap, &pos, kind);
	put_varint(out, cap, &pos, version);
	put_varint(out, cap, &pos, n);
	for (size_t i = 0; i < n; i++) {
		const struct fd_topic_item *it = &items[i];
		size_t shared = 0, glen = it->group ? strlen(it->group) : 0;

		if (fd_topic_valid_pattern(it->pattern, it->len, &why)) {
			fd_err_set(err, "item %zu: invalid pattern: %s", i, why.msg);
			return fail(EINVAL);
		}
		if (it->group && fd_topic_valid_group(it->group, &why)) {
			fd_err_set(err, "item %zu: invalid group: %s", i, why.msg);
			return fail(EINVAL);
		}
		if (kind == FD_TOPIC_SET_FULL) {
			if (it->op != FD_TOPIC_ADD) {
				fd_err_set(err, "item %zu: a full set holds adds only",
					   i);
				return fail(EINVAL);
			}
			if (i > 0 && fd_topic_item_cmp(&items[i - 1], it) >= 0) {
				fd_err_set(err, "item %zu: full set not sorted or not distinct",
					   i);
				return fail(EINVAL);
			}
		} else {
			if (it->op != FD_TOPIC_ADD && it->op != FD_TOPIC_REMOVE) {
				fd_err_set(err, "item %zu: unknown op %d", i,
					   (int)it->op);
				return fail(EINVAL);
			}
			put_byte(out, cap, &pos, it->op);
		}
		if (i > 0) {
			const struct fd_topic_item *prev = &items[i - 1];

			while (shared < prev->len && shared < it->len &&
			       prev->pattern[shared] == it->pattern[shared])
				shared++;
		}
		put_byte(out, cap, &pos, (unsigned)shared);
		put_byte(out, cap, &pos, (unsigned)(it->len - shared));
		put(out, cap, &pos, it->pattern + shared, it->len - shared);
		put_byte(out, cap, &pos, (unsigned)glen);
		put(out, cap, &pos, it->group, glen);
	}
	*outlen = pos;
	if (pos > cap) {
		fd_err_set(err, "buffer too small: %zu bytes needed", pos);
		return fail(ENOSPC);
	}
	return 0;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*pos >= len)
			return -1;
		b = p[(*pos)++];
		if (shift == 63 && b > 1)
			return -1;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return (b == 0 && shift > 0) ? -1 : 0; /* no padding */
	}
	return -1;
}

static int bad(struct fd_err *err, const char *what, size_t pos)
{
	fd_err_set(err, "bad interest set: %s at byte %zu", what, pos);
	return fail(EBADMSG);
}

/* One pass over a set: checks everything; calls fn per item when given. */
static int parse(const uint8_t *p, size_t len, struct fd_topic_set_info *info,
		 fd_topic_item_fn fn, void *arg, struct fd_err *err)
{
	char bufs[2][FD_TOPIC_MAX_LEN + 1], gbufs[2][FD_TOPIC_MAX_LEN + 1];
	struct fd_topic_item cur, prev = {FD_TOPIC_ADD, bufs[1], 0, NULL};
	struct fd_err why;
	size_t pos = 4, min;
	uint64_t version, count;
	int kind, b = 0;

	if (len < 4)
		return bad(err, "truncated header", len);
	if (p[0] != SET_MAGIC0 || p[1] != SET_MAGIC1)
		return bad(err, "bad magic", 0);
	if (p[2] != SET_VERSION)
		return bad(err, "unsupported format version", 2);
	kind = p[3];
	if (kind != FD_TOPIC_SET_FULL && kind != FD_TOPIC_SET_DELTA)
		return bad(err, "unknown kind", 3);
	if (get_varint(p, len, &pos, &version))
		return bad(err, "bad version number", pos);
	if (get_varint(p, len, &pos, &count))
		return bad(err, "bad count", pos);
	min = 4; /* smallest item: full sets need a suffix, deltas an op */
	if (count > (len - pos) / min)
		return bad(err, "count beyond the data", pos);
	if (info) {
		info->kind = kind;
		info->version = version;
		info->count = count;
	}
	for (uint64_t k = 0; k < count; k++, b ^= 1) {
		size_t start = pos, shared, slen, glen;
		char *pat = bufs[b], *grp = gbufs[b];
		int rc;

		cur.op = FD_TOPIC_ADD;
		if (kind == FD_TOPIC_SET_DELTA) {
			if (pos >= len)
				return bad(err, "truncated item", pos);
			if (p[pos] > FD_TOPIC_REMOVE)
				return bad(err, "unknown op", pos);
			cur.op = p[pos++];
		}
		if (len - pos < 2)
			return bad(err, "truncated item", pos);
		shared = p[pos];
		slen = p[pos + 1];
		pos += 2;
		if (shared > prev.len)
			return bad(err, "shared prefix longer than the previous pattern",
				   pos - 2);
		if (shared + slen > FD_TOPIC_MAX_LEN)
			return bad(err, "pattern too long", pos - 1);
		if (slen > len - pos)
			return bad(err, "truncated pattern", pos);
		if (shared < prev.len && slen > 0 &&
		    p[pos] == (uint8_t)prev.pattern[shared])
			return bad(err, "shared prefix not the longest", pos - 2);
		memcpy(pat, prev.pattern, shared);
		memcpy(pat + shared, p + pos, slen);
		pat[shared + slen] = '\0';
		pos += slen;
		cur.pattern = pat;
		cur.len = shared + slen;
		if (fd_topic_valid_pattern(cur.pattern, cur.len, &why)) {
			fd_err_set(err, "bad interest set: item at byte %zu: invalid pattern: %s",
				   start, why.msg);
			return fail(EBADMSG);
		}
		if (pos >= len)
			return bad(err, "truncated item", pos);
		glen = p[pos++];
		if (glen > len - pos)
			return bad(err, "truncated group", pos);
		cur.group = NULL;
		if (glen) {
			memcpy(grp, p + pos, glen);
			grp[glen] = '\0';
			/* An embedded NUL fails here as a control character. */
			if (check(grp, glen, 0, "group", &why)) {
				fd_err_set(err, "bad interest set: item at byte %zu: invalid group: %s",
					   start, why.msg);
				return fail(EBADMSG);
			}
			cur.group = grp;
			pos += glen;
		}
		if (kind == FD_TOPIC_SET_FULL && k > 0 &&
		    fd_topic_item_cmp(&prev, &cur) >= 0)
			return bad(err, "full set not sorted or not distinct", start);
		if (fn) {
			rc = fn(arg, &cur);
			if (rc)
				return rc;
		}
		prev = cur;
	}
	if (pos != len)
		return bad(err, "trailing bytes", pos);
	return 0;
}

int fd_topic_set_decode(const void *buf, size_t len, struct fd_topic_set_info *info,
			fd_topic_item_fn fn, void *arg, struct fd_err *err)
{
	if (parse(buf, len, info, NULL, NULL, err))
		return -1;
	return fn ? parse(buf, len, NULL, fn, arg, NULL) : 0;
}
