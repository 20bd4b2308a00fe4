#include "crdt.h"
#include "jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Allocator overhead counted per allocation by fd_crdt_mem(). */
#define OVERHEAD 16
#define TAB_MIN 8
/* Largest limit accepted: keeps 32-bit cloud counts safe. */
#define LIMIT_MAX ((size_t)1 << 30)

/* One node's part of the causal context, plus bookkeeping. */
struct origin {
	uint64_t node;
	uint64_t max;	 /* dots 1..max seen */
	uint64_t *cloud; /* seen dots beyond max, sorted (cloud[0..nsorted)) */
	uint32_t ncloud, capcloud, nsorted;
	uint32_t reserve; /* merge scratch: dots about to be appended */
	uint64_t live;	  /* live entries with a dot of this node */
	uint64_t hash;	  /* sum of dot_hash() over them */
	uint64_t *keep;	  /* repairs only: live dots not resent, sorted */
	uint32_t nkeep, capkeep;
};

struct fd_crdt {
	enum fd_crdt_kind kind;
	uint64_t self;
	uint64_t seed;
	struct fd_crdt_limits lim;
	struct fd_crdt_name **tab; /* open addressing, linear probing */
	size_t tabcap, nnames, nentries, nbytes;
	struct origin *orig; /* sorted by node */
	size_t norig, origcap, ncloud;
	uint64_t *gone; /* sorted */
	size_t ngone, gonecap;
	fd_crdt_event_fn ev;
	void *evarg;
	size_t mem;
};

/* ---- small helpers ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t name_hash(uint64_t seed, const char *s, size_t len)
{
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL), w;

	while (len >= 8) {
		memcpy(&w, s, 8);
		h = mix64(h ^ w);
		s += 8;
		len -= 8;
	}
	w = 0;
	memcpy(&w, s, len);
	return mix64(h ^ w ^ ((uint64_t)len << 56));
}

static uint64_t dot_hash(struct fd_crdt_dot d)
{
	return mix64(d.node ^ mix64(d.counter + 0x9e3779b97f4a7c15ULL));
}

static int dot_eq(struct fd_crdt_dot a, struct fd_crdt_dot b)
{
	return a.node == b.node && a.counter == b.counter;
}

/* Winner order: earliest hlc, lowest node, lowest counter. */
static int entry_cmp(const struct fd_crdt_entry *a, const struct fd_crdt_entry *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	if (a->dot.node != b->dot.node)
		return a->dot.node < b->dot.node ? -1 : 1;
	if (a->dot.counter != b->dot.counter)
		return a->dot.counter < b->dot.counter ? -1 : 1;
	return 0;
}

static void entries_sort(struct fd_crdt_entry *e, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct fd_crdt_entry x = e[i];
		size_t j = i;

		while (j > 0 && entry_cmp(&e[j - 1], &x) > 0) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int u64_has(const uint64_t *a, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid] == x)
			return 1;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

static void *mem_alloc(struct fd_crdt *c, size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p)
		c->mem += n + OVERHEAD;
	return p;
}

static void mem_free(struct fd_crdt *c, void *p, size_t n)
{
	if (p) {
		c->mem -= n + OVERHEAD;
		free(p);
	}
}

/* Resizes an array of old to new elements of size sz; old 0 allocates. */
static void *mem_resize(struct fd_crdt *c, void *p, size_t old, size_t new, size_t sz)
{
	void *q;

	if (new > SIZE_MAX / sz) {
		errno = ENOMEM;
		return NULL;
	}
	q = realloc(p, new ? new *sz : 1);
	if (!q)
		return NULL;
	if (p)
		c->mem -= old * sz + OVERHEAD;
	c->mem += new *sz + OVERHEAD;
	return q;
}

/* ---- limits, creation ---- */

void fd_crdt_limits_default(struct fd_crdt_limits *lim)
{
	lim->max_names = 1000000;
	lim->max_entries = 2000000;
	lim->max_bytes = (size_t)1 << 30;
	lim->max_nodes = 65536;
	lim->max_cloud = 1000000;
}

static struct fd_crdt *crdt_new(enum fd_crdt_kind kind, uint64_t self,
				const struct fd_crdt_limits *lim)
{
	struct fd_crdt *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->self = self;
	c->seed = self ? mix64(self ^ 0x5eedULL) : 0;
	if (lim)
		c->lim = *lim;
	else
		fd_crdt_limits_default(&c->lim);
	if (c->lim.max_names > LIMIT_MAX)
		c->lim.max_names = LIMIT_MAX;
	if (c->lim.max_entries > LIMIT_MAX)
		c->lim.max_entries = LIMIT_MAX;
	if (c->lim.max_nodes > LIMIT_MAX)
		c->lim.max_nodes = LIMIT_MAX;
	if (c->lim.max_cloud > LIMIT_MAX)
		c->lim.max_cloud = LIMIT_MAX;
	c->mem = sizeof(*c) + OVERHEAD;
	return c;
}

struct fd_crdt *fd_crdt_new(uint64_t self, const struct fd_crdt_limits *lim)
{
	if (!self) {
		errno = EINVAL;
		return NULL;
	}
	return crdt_new(FD_CRDT_STATE, self, lim);
}

struct fd_crdt *fd_crdt_delta_new(const struct fd_crdt_limits *lim)
{
	return crdt_new(FD_CRDT_DELTA, 0, lim);
}

static void name_free(struct fd_crdt *c, struct fd_crdt_name *rec)
{
	for (size_t i = 0; i < rec->n; i++)
		mem_free(c, rec->entries[i].value, rec->entries[i].value_len + 1);
	mem_free(c, rec->entries, (size_t)rec->cap * sizeof(*rec->entries));
	mem_free(c, rec, sizeof(*rec) + rec->len + 1);
}

static void origin_release(struct fd_crdt *c, struct origin *o)
{
	mem_free(c, o->cloud, (size_t)o->capcloud * sizeof(uint64_t));
	mem_free(c, o->keep, (size_t)o->capkeep * sizeof(uint64_t));
}

void fd_crdt_clear(struct fd_crdt *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->tabcap; i++)
		if (c->tab[i])
			name_free(c, c->tab[i]);
	mem_free(c, c->tab, c->tabcap * sizeof(*c->tab));
	for (size_t i = 0; i < c->norig; i++)
		origin_release(c, &c->orig[i]);
	mem_free(c, c->orig, c->origcap * sizeof(*c->orig));
	mem_free(c, c->gone, c->gonecap * sizeof(*c->gone));
	c->tab = NULL;
	c->orig = NULL;
	c->gone = NULL;
	c->tabcap = c->nnames = c->nentries = c->nbytes = 0;
	c->norig = c->origcap = c->ncloud = 0;
	c->ngone = c->gonecap = 0;
}

void fd_crdt_free(struct fd_crdt *c)
{
	if (!c)
		return;
	fd_crdt_clear(c);
	free(c);
}

enum fd_crdt_kind fd_crdt_kind(const struct fd_crdt *c)
{
	return c->kind;
}

uint64_t fd_crdt_self(const struct fd_crdt *c)
{
	return c->self;
}

void fd_crdt_set_events(struct fd_crdt *c, fd_crdt_event_fn fn, void *arg)
{
	c->ev = fn;
	c->evarg = arg;
}

int fd_crdt_empty(const struct fd_crdt *c)
{
	return !c->nnames && !c->norig && !c->ngone;
}

size_t fd_crdt_names(const struct fd_crdt *c)
{
	return c->nnames;
}

size_t fd_crdt_entries(const struct fd_crdt *c)
{
	return c->nentries;
}

size_t fd_crdt_cloud(const struct fd_crdt *c)
{
	return c->ncloud;
}

size_t fd_crdt_mem(const struct fd_crdt *c)
{
	return c->mem;
}

int fd_crdt_name_valid(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;

	if (len < 1 || len > FD_CRDT_NAME_MAX || !fd_utf8_valid(name, len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
		/* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8. */
		if (s[i] == 0xc2 && i + 1 < len && s[i + 1] < 0xa0)
			return 0;
	}
	return 1;
}

/* ---- the name table ---- */

static size_t tab_slot(const struct fd_crdt *c, const char *name, size_t len,
		       uint64_t h)
{
	size_t mask = c->tabcap - 1, i = h & mask;

	for (;;) {
		const struct fd_crdt_name *r = c->tab[i];

		if (!r ||
		    (r->hash == h && r->len == len && !memcmp(r->name, name, len)))
			return i;
		i = (i + 1) & mask;
	}
}

static struct fd_crdt_name *tab_get(const struct fd_crdt *c, const char *name,
				    size_t len)
{
	if (!c->tabcap)
		return NULL;
	return c->tab[tab_slot(c, name, len, name_hash(c->seed, name, len))];
}

/* Room for want names at a load of at most 3/4. */
static int tab_reserve(struct fd_crdt *c, size_t want)
{
	struct fd_crdt_name **t;
	size_t cap = c->tabcap ? c->tabcap : TAB_MIN;

	while (want * 4 > cap * 3)
		cap *= 2;
	if (cap == c->tabcap)
		return 0;
	t = calloc(cap, sizeof(*t));
	if (!t)
		return -1;
	c->mem += cap * sizeof(*t) + OVERHEAD;
	for (size_t i = 0; i < c->tabcap; i++) {
		struct fd_crdt_name *r = c->tab[i];
		size_t j;

		if (!r)
			continue;
		j = r->hash & (cap - 1);
		while (t[j])
			j = (j + 1) & (cap - 1);
		t[j] = r;
	}
	mem_free(c, c->tab, c->tabcap * sizeof(*c->tab));
	c->tab = t;
	c->tabcap = cap;
	return 0;
}

/* Gives back table room when most names are gone (best effort). */
static void tab_shrink(struct fd_crdt *c)
{
	struct fd_crdt_name **old = c->tab;
	size_t oldcap = c->tabcap;

	if (oldcap <= TAB_MIN || c->nnames * 8 > oldcap)
		return;
	c->tab = NULL;
	c->tabcap = 0;
	if (tab_reserve(c, c->nnames) < 0) {
		c->tab = old;
		c->tabcap = oldcap;
		return;
	}
	for (size_t i = 0; i < oldcap; i++) {
		struct fd_crdt_name *r = old[i];
		size_t j;

		if (!r)
			continue;
		j = r->hash & (c->tabcap - 1);
		while (c->tab[j])
			j = (j + 1) & (c->tabcap - 1);
		c->tab[j] = r;
	}
	mem_free(c, old, oldcap * sizeof(*old));
}

/* Room must have been reserved. */
static void tab_put(struct fd_crdt *c, struct fd_crdt_name *r)
{
	c->tab[tab_slot(c, r->name, r->len, r->hash)] = r;
	c->nnames++;
	c->nbytes += r->len;
}

/* Backward-shift deletion: no tombstones. */
static void tab_del(struct fd_crdt *c, struct fd_crdt_name *r)
{
	size_t mask = c->tabcap - 1, i = tab_slot(c, r->name, r->len, r->hash), j;

	c->tab[i] = NULL;
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!c->tab[j])
			break;
		home = c->tab[j]->hash & mask;
		/* Move tab[j] into the hole unless its home lies in (i, j]. */
		if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
			c->tab[i] = c->tab[j];
			c->tab[j] = NULL;
			i = j;
		}
	}
	c->nnames--;
	c->nbytes -= r->len;
}

/* A new record holding cap entries (n = 0), not in the table. */
static struct fd_crdt_name *rec_alloc(struct fd_crdt *c, const char *name,
				      size_t len, size_t cap)
{
	struct fd_crdt_name *r = mem_alloc(c, sizeof(*r) + len + 1);

	if (!r)
		return NULL;
	r->entries = NULL;
	if (cap) {
		r->entries = mem_alloc(c, cap * sizeof(*r->entries));
		if (!r->entries) {
			mem_free(c, r, sizeof(*r) + len + 1);
			return NULL;
		}
	}
	r->hash = name_hash(c->seed, name, len);
	r->n = 0;
	r->cap = (uint16_t)cap;
	r->len = (uint16_t)len;
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	return r;
}

/* ---- the causal context ---- */

static long orig_find(const struct fd_crdt *c, uint64_t node)
{
	size_t lo = 0, hi = c->norig;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->orig[mid].node == node)
			return (long)mid;
		if (c->orig[mid].node < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Finds or inserts node's origin. Pointers to origins move. */
static struct origin *orig_get(struct fd_crdt *c, uint64_t node)
{
	long i = orig_find(c, node);
	size_t pos = 0;

	if (i >= 0)
		return &c->orig[i];
	if (c->norig == c->origcap) {
		size_t cap = c->origcap ? c->origcap * 2 : 4;
		struct origin *o =
			mem_resize(c, c->orig, c->origcap, cap, sizeof(*o));

		if (!o)
			return NULL;
		c->orig = o;
		c->origcap = cap;
	}
	while (pos < c->norig && c->orig[pos].node < node)
		pos++;
	memmove(&c->orig[pos + 1], &c->orig[pos],
		(c->norig - pos) * sizeof(*c->orig));
	memset(&c->orig[pos], 0, sizeof(*c->orig));
	c->orig[pos].node = node;
	c->norig++;
	return &c->orig[pos];
}

static int ctx_has(const struct fd_crdt *c, struct fd_crdt_dot d)
{
	long i = orig_find(c, d.node);
	const struct origin *o;

	if (i < 0)
		return 0;
	o = &c->orig[i];
	return d.counter <= o->max || u64_has(o->cloud, o->nsorted, d.counter);
}

static int keep_has(const struct fd_crdt *c, struct fd_crdt_dot d)
{
	long i;

	if (c->kind != FD_CRDT_REPAIR)
		return 0;
	i = orig_find(c, d.node);
	return i >= 0 && u64_has(c->orig[i].keep, c->orig[i].nkeep, d.counter);
}

int fd_crdt_is_gone(const struct fd_crdt *c, uint64_t node)
{
	return u64_has(c->gone, c->ngone, node);
}

static int filtered(const struct fd_crdt *c, const struct fd_crdt_entry *e)
{
	return !e->persistent && c->ngone && fd_crdt_is_gone(c, e->dot.node);
}

static int cloud_reserve(struct fd_crdt *c, struct origin *o, size_t want)
{
	uint64_t *p;

	if (want <= o->capcloud)
		return 0;
	if (want < (size_t)o->capcloud * 2)
		want = (size_t)o->capcloud * 2;
	p = mem_resize(c, o->cloud, o->capcloud, want, sizeof(*p));
	if (!p)
		return -1;
	o->cloud = p;
	o->capcloud = (uint32_t)want;
	return 0;
}

/* Inserts a dot in sorted position (small clouds: deltas under construction). */
static int cloud_insert(struct fd_crdt *c, struct fd_crdt_dot d)
{
	struct origin *o = orig_get(c, d.node);
	uint32_t pos;

	if (!o)
		return -1;
	if (d.counter <= o->max || u64_has(o->cloud, o->ncloud, d.counter))
		return 0;
	if (o->ncloud == o->capcloud &&
	    cloud_reserve(c, o, o->capcloud ? (size_t)o->capcloud * 2 : 4) < 0)
		return -1;
	pos = o->ncloud;
	while (pos > 0 && o->cloud[pos - 1] > d.counter)
		pos--;
	memmove(&o->cloud[pos + 1], &o->cloud[pos],
		(o->ncloud - pos) * sizeof(uint64_t));
	o->cloud[pos] = d.counter;
	o->ncloud++;
	o->nsorted = o->ncloud;
	c->ncloud++;
	return 0;
}

/* Brings one origin's cloud back to sorted, unique, beyond max: the part
 * appended during a merge (after nsorted) is usually short and sorts after
 * the rest, so this costs little for a delta group growing one op at a
 * time. States then fold the cloud into max as gaps fill. */
static void cloud_normalize(struct fd_crdt *c, struct origin *o)
{
	uint64_t *a = o->cloud;
	uint32_t ns = o->nsorted, n = o->ncloud, w = ns, h = 0;

	for (uint32_t j = ns; j < n; j++)
		if (a[j] > o->max)
			a[w++] = a[j];
	n = w;
	if (n - ns > 1)
		qsort(a + ns, n - ns, sizeof(*a), u64_cmp);
	w = ns;
	for (uint32_t j = ns; j < n; j++)
		if (w == ns || a[w - 1] != a[j])
			a[w++] = a[j];
	n = w;
	while (h < ns && a[h] <= o->max)
		h++;
	if (h) {
		memmove(a, a + h, (n - h) * sizeof(*a));
		ns -= h;
		n -= h;
	}
	if (ns && n > ns && a[ns - 1] >= a[ns]) {
		if (n - ns <= 16) {
			uint32_t m = ns;

			for (uint32_t j = ns; j < n; j++) {
				uint64_t x = a[j];
				uint32_t lo = 0, hi = m;

				while (lo < hi) {
					uint32_t mid = lo + (hi - lo) / 2;

					if (a[mid] < x)
						lo = mid + 1;
					else
						hi = mid;
				}
				if (lo < m && a[lo] == x)
					continue;
				memmove(a + lo + 1, a + lo, (m - lo) * sizeof(*a));
				a[lo] = x;
				m++;
			}
			n = m;
		} else {
			qsort(a, n, sizeof(*a), u64_cmp);
			w = 0;
			for (uint32_t j = 0; j < n; j++)
				if (!w || a[w - 1] != a[j])
					a[w++] = a[j];
			n = w;
		}
	}
	h = 0;
	if (c->kind == FD_CRDT_STATE) {
		while (h < n && a[h] == o->max + 1) {
			o->max++;
			h++;
		}
		if (h)
			memmove(a, a + h, (n - h) * sizeof(*a));
	}
	o->ncloud = o->nsorted = n - h;
}

/* Normalizes every cloud, drops empty origins, gives back spare room. */
static void ctx_normalize(struct fd_crdt *c)
{
	size_t w = 0;

	c->ncloud = 0;
	for (size_t i = 0; i < c->norig; i++) {
		struct origin *o = &c->orig[i];

		cloud_normalize(c, o);
		if (!o->ncloud) {
			mem_free(c, o->cloud, (size_t)o->capcloud * sizeof(uint64_t));
			o->cloud = NULL;
			o->capcloud = 0;
		} else if (o->capcloud > 4 * (size_t)o->ncloud + 16) {
			uint64_t *p = mem_resize(c, o->cloud, o->capcloud,
						 o->ncloud, sizeof(uint64_t));

			if (p) {
				o->cloud = p;
				o->capcloud = o->ncloud;
			}
		}
		c->ncloud += o->ncloud;
		if (!o->max && !o->ncloud && !o->live && !o->nkeep) {
			origin_release(c, o);
			continue;
		}
		c->orig[w++] = *o;
	}
	c->norig = w;
}

static void stat_add(struct fd_crdt *c, const struct fd_crdt_entry *e, int sign)
{
	long i = orig_find(c, e->dot.node);
	uint64_t h = dot_hash(e->dot);

	if (i >= 0) {
		struct origin *o = &c->orig[i];

		if (sign > 0) {
			o->live++;
			o->hash += h;
		} else {
			o->live--;
			o->hash -= h;
		}
	}
	if (sign > 0) {
		c->nentries++;
		c->nbytes += e->value_len;
	} else {
		c->nentries--;
		c->nbytes -= e->value_len;
	}
}

/* ---- events ---- */

static int has_dot(const struct fd_crdt_entry *e, size_t n, struct fd_crdt_dot d)
{
	for (size_t i = 0; i < n; i++)
		if (dot_eq(e[i].dot, d))
			return 1;
	return 0;
}

static void emit(struct fd_crdt *c, const struct fd_crdt_name *r,
		 const struct fd_crdt_entry *before, size_t nb,
		 const struct fd_crdt_entry *after, size_t na)
{
	struct fd_crdt_event ev = {.name = r->name, .name_len = r->len};
	int changed = 0;

	if (!c->ev || c->kind != FD_CRDT_STATE || (!nb && !na))
		return;
	if (!nb) {
		ev.type = FD_CRDT_REGISTERED;
		ev.entry = &after[0];
		c->ev(c->evarg, &ev);
		changed = 1;
	} else if (!na) {
		ev.type = FD_CRDT_UNREGISTERED;
		ev.entry = &before[0];
		c->ev(c->evarg, &ev);
		return;
	} else if (!dot_eq(before[0].dot, after[0].dot)) {
		ev.type = FD_CRDT_UPDATED;
		ev.entry = &after[0];
		ev.other = &before[0];
		c->ev(c->evarg, &ev);
		changed = 1;
	}
	for (size_t i = 1; i < na; i++) {
		if (!changed && has_dot(before, nb, after[i].dot))
			continue;
		ev.type = FD_CRDT_CONFLICT;
		ev.entry = &after[0];
		ev.other = &after[i];
		c->ev(c->evarg, &ev);
	}
}

/* ---- the join, one name at a time ---- */

/* Joins d's view of one name into c: s is c's record (or NULL), dk d's (or
 * NULL: the name is absent from d's store). Either fully applied or, on
 * error, not at all. Room in the table and in the clouds was reserved. */
static int name_join(struct fd_crdt *c, struct fd_crdt_name *s,
		     const struct fd_crdt_name *dk, const struct fd_crdt *d)
{
	struct fd_crdt_entry before[FD_CRDT_MAX_PER_NAME];
	const struct fd_crdt_entry *add[FD_CRDT_MAX_PER_NAME];
	char *vals[FD_CRDT_MAX_PER_NAME];
	unsigned char drop[FD_CRDT_MAX_PER_NAME];
	size_t nold = s ? s->n : 0, nadd = 0, ndrop = 0, nnew, k = 0;
	struct fd_crdt_entry *arr = NULL, *oldarr = NULL;
	struct fd_crdt_name *r = s;
	size_t oldcap = 0;
	int created = 0, removed = 0;

	for (size_t i = 0; i < nold; i++) {
		const struct fd_crdt_entry *e = &s->entries[i];

		drop[i] = 0;
		if (filtered(c, e))
			drop[i] = 1;
		else if (dk && has_dot(dk->entries, dk->n, e->dot))
			;
		else if (d && ctx_has(d, e->dot) && !keep_has(d, e->dot))
			drop[i] = 1;
		ndrop += drop[i];
	}
	for (size_t i = 0; dk && i < dk->n; i++) {
		const struct fd_crdt_entry *e = &dk->entries[i];

		if (ctx_has(c, e->dot) || filtered(c, e))
			continue;
		if (nadd == FD_CRDT_MAX_PER_NAME) {
			errno = ENOSPC;
			return -1;
		}
		add[nadd++] = e;
	}
	nnew = nold - ndrop + nadd;
	if (nnew > FD_CRDT_MAX_PER_NAME) {
		errno = ENOSPC;
		return -1;
	}
	if (!ndrop && !nadd && (s || c->kind != FD_CRDT_DELTA))
		return 0;

	/* Allocate everything first, so that failing changes nothing. */
	if (!s) {
		r = rec_alloc(c, dk->name, dk->len, 0);
		if (!r)
			return -1;
		created = 1;
	}
	if (nadd) {
		arr = mem_alloc(c, nnew * sizeof(*arr));
		for (k = 0; arr && k < nadd; k++) {
			vals[k] = mem_alloc(c, add[k]->value_len + 1);
			if (!vals[k])
				break;
			memcpy(vals[k], add[k]->value, add[k]->value_len + 1);
		}
		if (!arr || k < nadd) {
			while (arr && k-- > 0)
				mem_free(c, vals[k], add[k]->value_len + 1);
			mem_free(c, arr, nnew * sizeof(*arr));
			if (created)
				mem_free(c, r, sizeof(*r) + r->len + 1);
			errno = ENOMEM;
			return -1;
		}
	}

	/* Commit. */
	if (nold)
		memcpy(before, s->entries, nold * sizeof(*before));
	if (arr) {
		oldarr = r->entries;
		oldcap = r->cap;
		r->entries = arr;
		r->cap = (uint16_t)nnew;
	}
	k = 0;
	for (size_t i = 0; i < nold; i++) {
		if (drop[i])
			stat_add(c, &before[i], -1);
		else
			r->entries[k++] = before[i];
	}
	for (size_t i = 0; i < nadd; i++) {
		struct fd_crdt_entry *e = &r->entries[k++];
		struct origin *o = &c->orig[orig_find(c, add[i]->dot.node)];

		*e = *add[i];
		e->value = vals[i];
		stat_add(c, e, 1);
		o->cloud[o->ncloud++] = e->dot.counter;
	}
	r->n = (uint16_t)nnew;
	if (nadd)
		entries_sort(r->entries, nnew);
	if (created)
		tab_put(c, r);
	if (!nnew && c->kind != FD_CRDT_DELTA) {
		tab_del(c, r);
		removed = 1;
	}
	emit(c, r, before, nold, r->entries, nnew);
	for (size_t i = 0; i < nold; i++)
		if (drop[i])
			mem_free(c, before[i].value, before[i].value_len + 1);
	if (arr)
		mem_free(c, oldarr, oldcap * sizeof(*oldarr));
	if (removed) {
		r->n = 0;
		name_free(c, r);
	}
	return 0;
}

/* ---- merge ---- */

static int gone_reserve(struct fd_crdt *c, size_t want)
{
	uint64_t *p;

	if (want <= c->gonecap)
		return 0;
	p = mem_resize(c, c->gone, c->gonecap, want, sizeof(*p));
	if (!p)
		return -1;
	c->gone = p;
	c->gonecap = want;
	return 0;
}

/* Merges sorted d->gone into c->gone (room reserved). Returns how many
 * are new. */
static size_t gone_union(struct fd_crdt *c, const struct fd_crdt *d)
{
	size_t i = c->ngone, j = d->ngone, n = 0, w;

	for (size_t k = 0; k < d->ngone; k++)
		n += !fd_crdt_is_gone(c, d->gone[k]);
	w = c->ngone + n;
	c->ngone = w;
	while (j > 0) {
		if (i > 0 && c->gone[i - 1] == d->gone[j - 1]) {
			c->gone[--w] = c->gone[--i];
			j--;
		} else if (i > 0 && c->gone[i - 1] > d->gone[j - 1]) {
			c->gone[--w] = c->gone[--i];
		} else {
			c->gone[--w] = d->gone[--j];
		}
	}
	return n;
}

int fd_crdt_merge(struct fd_crdt *c, const struct fd_crdt *d)
{
	size_t newnames = 0, adds = 0, bytes = 0, neworig = 0, newgone = 0;
	int full = 0, rc = 0, complete = 1;

	/* A delta group only takes delta groups: it must keep naming every
	 * name whose dots its context removes (see the header). */
	if (!c || !d || d->kind == FD_CRDT_DIGEST ||
	    (c->kind != FD_CRDT_STATE && c->kind != FD_CRDT_DELTA) ||
	    (c->kind == FD_CRDT_DELTA && d->kind != FD_CRDT_DELTA)) {
		errno = EINVAL;
		return -1;
	}
	if (c == d)
		return 0;
	/* Only a delta group names what its context removes; anything else
	 * (a state, a repair) may remove dots of any name: scan them all. */
	full = d->kind != FD_CRDT_DELTA;

	/* A repair answers one replica's digest: all it says we have, we have. */
	for (size_t i = 0; d->kind == FD_CRDT_REPAIR && i < d->norig; i++) {
		const struct origin *od = &d->orig[i];

		for (uint32_t j = 0; j < od->nkeep; j++) {
			struct fd_crdt_dot dot = {od->node, od->keep[j]};

			if (!ctx_has(c, dot)) {
				errno = EINVAL;
				return -1;
			}
		}
	}
	for (size_t i = 0; i < d->ngone; i++)
		newgone += !fd_crdt_is_gone(c, d->gone[i]);
	for (size_t i = 0; i < d->norig; i++) {
		neworig += orig_find(c, d->orig[i].node) < 0;
		if (d->orig[i].max)
			full = 1;
	}
	if (c->norig + neworig > c->lim.max_nodes ||
	    c->ngone + newgone > c->lim.max_nodes ||
	    c->ncloud + d->ncloud > c->lim.max_cloud) {
		errno = ENOSPC;
		return -1;
	}
	if (gone_reserve(c, c->ngone + newgone) < 0)
		return -1;
	for (size_t i = 0; i < d->norig; i++) {
		struct origin *o = orig_get(c, d->orig[i].node);

		if (!o) {
			ctx_normalize(c);
			return -1;
		}
	}
	for (size_t i = 0; i < c->norig; i++)
		c->orig[i].reserve = 0;
	/* Count what d adds, for the limits and the room to reserve. The gone
	 * filter uses both sides' gone sets. */
	for (size_t t = 0; t < d->tabcap; t++) {
		const struct fd_crdt_name *dk = d->tab[t];
		size_t nadd = 0;

		if (!dk)
			continue;
		for (size_t i = 0; i < dk->n; i++) {
			const struct fd_crdt_entry *e = &dk->entries[i];

			if (ctx_has(c, e->dot) || filtered(c, e) || filtered(d, e))
				continue;
			nadd++;
			bytes += e->value_len;
			c->orig[orig_find(c, e->dot.node)].reserve++;
		}
		if ((nadd || c->kind == FD_CRDT_DELTA) &&
		    !tab_get(c, dk->name, dk->len)) {
			newnames++;
			bytes += dk->len;
		}
		adds += nadd;
	}
	if (c->nnames + newnames > c->lim.max_names ||
	    c->nentries + adds > c->lim.max_entries ||
	    c->nbytes + bytes > c->lim.max_bytes) {
		ctx_normalize(c);
		errno = ENOSPC;
		return -1;
	}
	if (tab_reserve(c, c->nnames + newnames) < 0) {
		ctx_normalize(c);
		return -1;
	}
	for (size_t i = 0; i < c->norig; i++) {
		struct origin *o = &c->orig[i];
		long j = orig_find(d, o->node);
		size_t want = (size_t)o->ncloud + o->reserve +
			      (j >= 0 ? d->orig[j].ncloud : 0);

		if (cloud_reserve(c, o, want) < 0) {
			ctx_normalize(c);
			return -1;
		}
	}

	/* Apply. From here on the only failures are per name (ENOSPC for a
	 * name with too many entries, ENOMEM), after which the state holds the
	 * names applied so far and their dots, without the rest of d's context:
	 * a valid state that is less than c ⊔ d. */
	if (gone_union(c, d))
		full = 1;
	if (full) {
		for (size_t t = 0; t < c->tabcap;) {
			struct fd_crdt_name *s = c->tab[t];

			if (s && !tab_get(d, s->name, s->len))
				name_join(c, s, NULL, d); /* removes only: cannot fail */
			if (c->tab[t] == s)
				t++;
		}
	}
	for (size_t t = 0; t < d->tabcap; t++) {
		const struct fd_crdt_name *dk = d->tab[t];

		if (!dk)
			continue;
		if (name_join(c, tab_get(c, dk->name, dk->len), dk, d) < 0) {
			rc = -1;
			complete = 0;
			break;
		}
	}
	if (complete) {
		for (size_t i = 0; i < d->norig; i++) {
			const struct origin *od = &d->orig[i];
			struct origin *o = &c->orig[orig_find(c, od->node)];

			if (od->max > o->max)
				o->max = od->max;
			if (od->ncloud)
				memcpy(o->cloud + o->ncloud, od->cloud,
				       od->ncloud * sizeof(uint64_t));
			o->ncloud += od->ncloud;
		}
	}
	{
		int e = errno;

		ctx_normalize(c);
		tab_shrink(c);
		errno = e;
	}
	return rc;
}

/* ---- local operations ---- */

static uint64_t next_counter(const struct fd_crdt *c)
{
	long i = orig_find(c, c->self);
	const struct origin *o;

	if (i < 0)
		return 1;
	o = &c->orig[i];
	return (o->ncloud ? o->cloud[o->ncloud - 1] : o->max) + 1;
}

/* A delta for name in construction: the record (room for cap entries) in
 * a new delta, or NULL. */
static struct fd_crdt *op_delta(struct fd_crdt *c, const char *name, size_t len,
				size_t cap, struct fd_crdt_name **rec)
{
	struct fd_crdt *d = crdt_new(FD_CRDT_DELTA, 0, &c->lim);
	struct fd_crdt_name *r;

	if (!d)
		return NULL;
	r = rec_alloc(d, name, len, cap);
	if (!r || tab_reserve(d, 1) < 0) {
		if (r)
			name_free(d, r);
		fd_crdt_free(d);
		errno = ENOMEM;
		return NULL;
	}
	tab_put(d, r);
	*rec = r;
	return d;
}

/* Merges the operation's delta into c, then into the caller's group. */
static int op_apply(struct fd_crdt *c, struct fd_crdt *d, struct fd_crdt *group)
{
	int rc = fd_crdt_merge(c, d);

	/* Should the group be full, the change still reaches the peers by
	 * anti-entropy; the state already has it, so report success. */
	if (rc == 0 && group)
		fd_crdt_merge(group, d);
	fd_crdt_free(d);
	return rc;
}

static int op_check(struct fd_crdt *c, const char *name, size_t len)
{
	if (!c || c->kind != FD_CRDT_STATE || !c->self || !name ||
	    !fd_crdt_name_valid(name, len)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Adds an entry for name; removes the dots of name this replica has seen:
 * all of them (others = 1) or only its own. */
static int put_entry(struct fd_crdt *c, const char *name, size_t len,
		     const char *value, size_t value_len, uint64_t hlc, int persistent,
		     struct fd_crdt *delta, struct fd_crdt_dot *dot, int others)
{
	const struct fd_crdt_name *s;
	struct fd_crdt_name *r;
	struct fd_crdt_entry *e;
	struct fd_crdt *d;
	struct fd_crdt_dot nd;

	if (op_check(c, name, len) < 0)
		return -1;
	if (!value || value_len < 1 || value_len > FD_CRDT_VALUE_MAX ||
	    fd_crdt_is_gone(c, c->self)) {
		errno = EINVAL;
		return -1;
	}
	nd.node = c->self;
	nd.counter = next_counter(c);
	d = op_delta(c, name, len, 1, &r);
	if (!d)
		return -1;
	s = tab_get(c, name, len);
	if (cloud_insert(d, nd) < 0)
		goto fail;
	for (size_t i = 0; s && i < s->n; i++)
		if ((others || s->entries[i].dot.node == c->self) &&
		    cloud_insert(d, s->entries[i].dot) < 0)
			goto fail;
	e = &r->entries[0];
	e->value = mem_alloc(d, value_len + 1);
	if (!e->value)
		goto fail;
	memcpy(e->value, value, value_len);
	e->value[value_len] = '\0';
	e->value_len = (uint32_t)value_len;
	e->dot = nd;
	e->hlc = hlc;
	e->persistent = persistent ? 1 : 0;
	r->n = 1;
	stat_add(d, e, 1);
	if (op_apply(c, d, delta) < 0)
		return -1;
	if (dot)
		*dot = nd;
	return 0;
fail:
	fd_crdt_free(d);
	errno = ENOMEM;
	return -1;
}

int fd_crdt_register(struct fd_crdt *c, const char *name, size_t len,
		     const char *value, size_t value_len, uint64_t hlc,
		     int persistent, struct fd_crdt *delta, struct fd_crdt_dot *dot)
{
	return put_entry(c, name, len, value, value_len, hlc, persistent, delta,
			 dot, 1);
}

int fd_crdt_add(struct fd_crdt *c, const char *name, size_t len,
		const char *value, size_t value_len, uint64_t hlc,
		int persistent, struct fd_crdt *delta, struct fd_crdt_dot *dot)
{
	return put_entry(c, name, len, value, value_len, hlc, persistent, delta,
			 dot, 0);
}

/* Removes the dots of name this replica has seen (only that one, if given). */
static int remove_dots(struct fd_crdt *c, const char *name, size_t len,
		       const struct fd_crdt_dot *only, struct fd_crdt *delta)
{
	const struct fd_crdt_name *s;
	struct fd_crdt_name *r;
	struct fd_crdt *d;
	int n = 0;

	if (op_check(c, name, len) < 0)
		return -1;
	s = tab_get(c, name, len);
	if (!s)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		n += !only || dot_eq(*only, s->entries[i].dot);
	if (!n)
		return 0;
	d = op_delta(c, name, len, 0, &r);
	if (!d)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		if (only && !dot_eq(*only, s->entries[i].dot))
			continue;
		if (cloud_insert(d, s->entries[i].dot) < 0) {
			fd_crdt_free(d);
			errno = ENOMEM;
			return -1;
		}
	}
	if (op_apply(c, d, delta) < 0)
		return -1;
	return n;
}

int fd_crdt_unregister(struct fd_crdt *c, const char *name, size_t len,
		       struct fd_crdt *delta)
{
	return remove_dots(c, name, len, NULL, delta);
}

int fd_crdt_remove_dot(struct fd_crdt *c, const char *name, size_t len,
		       struct fd_crdt_dot dot, struct fd_crdt *delta)
{
	return remove_dots(c, name, len, &dot, delta);
}

int fd_crdt_node_gone(struct fd_crdt *c, uint64_t node, struct fd_crdt *delta)
{
	struct fd_crdt *d;
	size_t before;

	if (!c || c->kind != FD_CRDT_STATE || !node) {
		errno = EINVAL;
		return -1;
	}
	if (fd_crdt_is_gone(c, node))
		return 0;
	d = crdt_new(FD_CRDT_DELTA, 0, &c->lim);
	if (!d || gone_reserve(d, 1) < 0) {
		fd_crdt_free(d);
		errno = ENOMEM;
		return -1;
	}
	d->gone[0] = node;
	d->ngone = 1;
	before = c->nentries;
	if (op_apply(c, d, delta) < 0)
		return -1;
	return (int)(before - c->nentries);
}

int fd_crdt_set_self(struct fd_crdt *c, uint64_t id)
{
	if (!c || c->kind != FD_CRDT_STATE || !id || fd_crdt_is_gone(c, id) ||
	    orig_find(c, id) >= 0) {
		errno = EINVAL;
		return -1;
	}
	c->self = id;
	return 0;
}

/* ---- reading ---- */

const struct fd_crdt_name *fd_crdt_lookup(const struct fd_crdt *c,
					  const char *name, size_t len)
{
	if (!c || !name || len > FD_CRDT_NAME_MAX)
		return NULL;
	return tab_get(c, name, len);
}

static int rec_cmp(const void *a, const void *b)
{
	const struct fd_crdt_name *x = *(const struct fd_crdt_name *const *)a;
	const struct fd_crdt_name *y = *(const struct fd_crdt_name *const *)b;

	return name_cmp(x->name, x->len, y->name, y->len);
}

int fd_crdt_list(const struct fd_crdt *c, const char *prefix, size_t plen,
		 const struct fd_crdt_name ***out, size_t *n)
{
	const struct fd_crdt_name **v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (!c->nnames)
		return 0;
	v = malloc(c->nnames * sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < c->tabcap; i++) {
		const struct fd_crdt_name *r = c->tab[i];

		if (r && r->len >= plen && (!plen || !memcmp(r->name, prefix, plen)))
			v[k++] = r;
	}
	if (!k) {
		free(v);
		return 0;
	}
	qsort(v, k, sizeof(*v), rec_cmp);
	*out = v;
	*n = k;
	return 0;
}

/* ---- anti-entropy ---- */

static int origin_copy_ctx(struct fd_crdt *dst, const struct origin *src)
{
	struct origin *o = orig_get(dst, src->node);

	if (!o)
		return -1;
	o->max = src->max;
	if (src->ncloud) {
		if (cloud_reserve(dst, o, src->ncloud) < 0)
			return -1;
		memcpy(o->cloud, src->cloud, src->ncloud * sizeof(uint64_t));
	}
	o->ncloud = o->nsorted = src->ncloud;
	dst->ncloud += src->ncloud;
	return 0;
}

struct fd_crdt *fd_crdt_digest(const struct fd_crdt *c)
{
	struct fd_crdt *g = crdt_new(FD_CRDT_DIGEST, 0, &c->lim);

	if (!g)
		return NULL;
	if (gone_reserve(g, c->ngone) < 0)
		goto fail;
	if (c->ngone)
		memcpy(g->gone, c->gone, c->ngone * sizeof(uint64_t));
	g->ngone = c->ngone;
	for (size_t i = 0; i < c->norig; i++) {
		struct origin *o;

		if (origin_copy_ctx(g, &c->orig[i]) < 0)
			goto fail;
		o = &g->orig[g->norig - 1];
		o->live = c->orig[i].live;
		o->hash = c->orig[i].hash;
	}
	return g;
fail:
	fd_crdt_free(g);
	errno = ENOMEM;
	return NULL;
}

static int same_origin(const struct origin *a, const struct origin *b)
{
	return a->max == b->max && a->ncloud == b->ncloud &&
	       a->live == b->live && a->hash == b->hash &&
	       (!a->ncloud ||
		!memcmp(a->cloud, b->cloud, a->ncloud * sizeof(uint64_t)));
}

static int keep_push(struct fd_crdt *r, struct origin *o, uint64_t counter)
{
	if (o->nkeep == o->capkeep) {
		size_t cap = o->capkeep ? (size_t)o->capkeep * 2 : 16;
		uint64_t *p =
			mem_resize(r, o->keep, o->capkeep, cap, sizeof(uint64_t));

		if (!p)
			return -1;
		o->keep = p;
		o->capkeep = (uint32_t)cap;
	}
	o->keep[o->nkeep++] = counter;
	return 0;
}

struct fd_crdt *fd_crdt_repair(const struct fd_crdt *c, const struct fd_crdt *g)
{
	struct fd_crdt *r;
	size_t ng = 0;

	if (!c || !g || g->kind != FD_CRDT_DIGEST || c->kind == FD_CRDT_DIGEST) {
		errno = EINVAL;
		return NULL;
	}
	r = crdt_new(FD_CRDT_REPAIR, 0, &c->lim);
	if (!r)
		return NULL;
	if (gone_reserve(r, c->ngone) < 0)
		goto fail;
	for (size_t i = 0; i < c->ngone; i++)
		if (!fd_crdt_is_gone(g, c->gone[i]))
			r->gone[ng++] = c->gone[i];
	r->ngone = ng;
	for (size_t i = 0; i < c->norig; i++) {
		long j = orig_find(g, c->orig[i].node);

		if (j >= 0 && same_origin(&c->orig[i], &g->orig[j]))
			continue;
		if (origin_copy_ctx(r, &c->orig[i]) < 0)
			goto fail;
	}
	if (!r->norig)
		return r;
	for (size_t t = 0; t < c->tabcap; t++) {
		const struct fd_crdt_name *s = c->tab[t];
		struct fd_crdt_name *dk = NULL;
		size_t nsend = 0;

		if (!s)
			continue;
		for (size_t i = 0; i < s->n; i++) {
			const struct fd_crdt_entry *e = &s->entries[i];
			long j = orig_find(r, e->dot.node);

			if (j < 0)
				continue;
			if (ctx_has(g, e->dot)) {
				if (keep_push(r, &r->orig[j], e->dot.counter) < 0)
					goto fail;
			} else {
				nsend++;
			}
		}
		if (!nsend)
			continue;
		dk = rec_alloc(r, s->name, s->len, nsend);
		if (!dk || tab_reserve(r, r->nnames + 1) < 0) {
			if (dk)
				name_free(r, dk);
			goto fail;
		}
		tab_put(r, dk);
		for (size_t i = 0; i < s->n; i++) {
			const struct fd_crdt_entry *e = &s->entries[i];
			struct fd_crdt_entry *x;

			if (orig_find(r, e->dot.node) < 0 || ctx_has(g, e->dot))
				continue;
			x = &dk->entries[dk->n];
			*x = *e;
			x->value = mem_alloc(r, e->value_len + 1);
			if (!x->value)
				goto fail;
			memcpy(x->value, e->value, e->value_len + 1);
			dk->n++;
			stat_add(r, x, 1);
		}
	}
	for (size_t i = 0; i < r->norig; i++)
		if (r->orig[i].nkeep > 1)
			qsort(r->orig[i].keep, r->orig[i].nkeep,
			      sizeof(uint64_t), u64_cmp);
	return r;
fail:
	fd_crdt_free(r);
	errno = ENOMEM;
	return NULL;
}

/* ---- encoding ----
 *
 * "FDCR", version 1, kind; then, integers as LEB128 varints ("var") or
 * fixed 8-byte little-endian ("u64"):
 *   gone:    var n, n × u64 node (strictly increasing)
 *   origins: var n, per origin (strictly increasing node):
 *            u64 node, var max, var ncloud, ncloud × var gap (cloud[0] -
 *            max, then differences; all >= 1, and cloud[0] > max + 1 in
 *            states); digests: var live, u64 hash; repairs: var nkeep,
 *            nkeep × var gap (first from 0)
 *   names:   var n, per name (strictly increasing bytes): var len, bytes,
 *            var nentries, per entry in winner order: var origin index,
 *            var counter, u64 hlc, byte flags (1: persistent), var
 *            value_len, value bytes
 */
#define ENC_VERSION 1
#define ENC_MAX ((size_t)1 << 31)

struct wbuf {
	unsigned char *p;
	size_t n, cap;
	int err;
};

static void w_put(struct wbuf *w, const void *s, size_t n)
{
	if (w->err || !n)
		return;
	if (n > ENC_MAX - w->n) {
		w->err = E2BIG;
		return;
	}
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		unsigned char *p;

		while (cap < w->n + n)
			cap *= 2;
		p = realloc(w->p, cap);
		if (!p) {
			w->err = ENOMEM;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void w_u8(struct wbuf *w, unsigned v)
{
	unsigned char b = (unsigned char)v;

	w_put(w, &b, 1);
}

static void w_var(struct wbuf *w, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	w_put(w, b, n);
}

static void w_u64(struct wbuf *w, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	w_put(w, b, 8);
}

int fd_crdt_encode(const struct fd_crdt *c, unsigned char **out, size_t *len)
{
	struct wbuf w = {0};
	const struct fd_crdt_name **names = NULL;
	size_t nn = 0;

	*out = NULL;
	*len = 0;
	if (fd_crdt_list(c, NULL, 0, &names, &nn) < 0)
		return -1;
	w_put(&w, "FDCR", 4);
	w_u8(&w, ENC_VERSION);
	w_u8(&w, c->kind);
	w_var(&w, c->ngone);
	for (size_t i = 0; i < c->ngone; i++)
		w_u64(&w, c->gone[i]);
	w_var(&w, c->norig);
	for (size_t i = 0; i < c->norig; i++) {
		const struct origin *o = &c->orig[i];
		uint64_t prev = o->max;

		w_u64(&w, o->node);
		w_var(&w, o->max);
		w_var(&w, o->ncloud);
		for (uint32_t j = 0; j < o->ncloud; j++) {
			w_var(&w, o->cloud[j] - prev);
			prev = o->cloud[j];
		}
		if (c->kind == FD_CRDT_DIGEST) {
			w_var(&w, o->live);
			w_u64(&w, o->hash);
		}
		if (c->kind == FD_CRDT_REPAIR) {
			prev = 0;
			w_var(&w, o->nkeep);
			for (uint32_t j = 0; j < o->nkeep; j++) {
				w_var(&w, o->keep[j] - prev);
				prev = o->keep[j];
			}
		}
	}
	w_var(&w, nn);
	for (size_t i = 0; i < nn; i++) {
		const struct fd_crdt_name *r = names[i];

		w_var(&w, r->len);
		w_put(&w, r->name, r->len);
		w_var(&w, r->n);
		for (size_t j = 0; j < r->n; j++) {
			const struct fd_crdt_entry *e = &r->entries[j];

			w_var(&w, (uint64_t)orig_find(c, e->dot.node));
			w_var(&w, e->dot.counter);
			w_u64(&w, e->hlc);
			w_u8(&w, e->persistent);
			w_var(&w, e->value_len);
			w_put(&w, e->value, e->value_len);
		}
	}
	free(names);
	if (w.err) {
		free(w.p);
		errno = w.err;
		return -1;
	}
	*out = w.p;
	*len = w.n;
	return 0;
}

/* ---- decoding ---- */

struct rbuf {
	const unsigned char *p;
	size_t n, off;
};

static size_t r_left(const struct rbuf *r)
{
	return r->n - r->off;
}

static int r_take(struct rbuf *r, size_t n, const unsigned char **p)
{
	if (n > r_left(r))
		return -1;
	*p = r->p + r->off;
	r->off += n;
	return 0;
}

static int r_u8(struct rbuf *r, unsigned *v)
{
	if (!r_left(r))
		return -1;
	*v = r->p[r->off++];
	return 0;
}

static int r_u64(struct rbuf *r, uint64_t *v)
{
	const unsigned char *p;

	if (r_take(r, 8, &p) < 0)
		return -1;
	*v = 0;
	for (int i = 7; i >= 0; i--)
		*v = (*v << 8) | p[i];
	return 0;
}

/* Minimal LEB128 only: one encoding per number. */
static int r_var(struct rbuf *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int i = 0; i < 10; i++) {
		unsigned b;

		if (r_u8(r, &b) < 0)
			return -1;
		if (i == 9 && b > 1)
			return -1;
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (i > 0 && b == 0)
				return -1;
			*v = x;
			return 0;
		}
	}
	return -1;
}

static int dot_cmp(const void *a, const void *b)
{
	const struct fd_crdt_dot *x = a, *y = b;

	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

/* No dot may be stored twice, nor be both stored and kept. */
static int dots_unique(const struct fd_crdt *c)
{
	size_t n = c->nentries, k = 0;
	struct fd_crdt_dot *v;
	int ok = 1;

	for (size_t i = 0; i < c->norig; i++)
		n += c->orig[i].nkeep;
	if (n < 2)
		return 1;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -1;
	for (size_t t = 0; t < c->tabcap; t++)
		for (size_t i = 0; c->tab[t] && i < c->tab[t]->n; i++)
			v[k++] = c->tab[t]->entries[i].dot;
	for (size_t i = 0; i < c->norig; i++)
		for (uint32_t j = 0; j < c->orig[i].nkeep; j++) {
			v[k].node = c->orig[i].node;
			v[k++].counter = c->orig[i].keep[j];
		}
	qsort(v, k, sizeof(*v), dot_cmp);
	for (size_t i = 1; i < k && ok; i++)
		ok = !dot_eq(v[i - 1], v[i]);
	free(v);
	return ok;
}

static int origin_covers(const struct origin *o, uint64_t counter)
{
	return counter <= o->max || u64_has(o->cloud, o->ncloud, counter);
}

/* Reads a sorted list of gaps into a new array. */
static int read_gaps(struct fd_crdt *c, struct rbuf *r, uint64_t base,
		     uint64_t first_min, uint64_t n, uint64_t **out)
{
	uint64_t prev = base, *a;

	*out = NULL;
	if (!n)
		return 0;
	a = mem_alloc(c, n * sizeof(*a));
	if (!a)
		return -1;
	*out = a;
	for (uint64_t j = 0; j < n; j++) {
		uint64_t gap;

		if (r_var(r, &gap) < 0 || gap < (j ? 1 : first_min) ||
		    gap > UINT64_MAX - prev)
			return -1;
		prev += gap;
		a[j] = prev;
	}
	return 0;
}

struct fd_crdt *fd_crdt_decode(const void *buf, size_t len,
			       const struct fd_crdt_limits *lim, struct fd_err *err)
{
	struct rbuf r = {buf, len, 0};
	const unsigned char *p;
	const char *why = "truncated or malformed";
	struct fd_crdt *c = NULL;
	const char *prevname = NULL;
	size_t prevlen = 0;
	uint64_t n, v, prev;
	unsigned u, kind;

	if (!buf || r_take(&r, 4, &p) < 0 || memcmp(p, "FDCR", 4) != 0) {
		why = "not a registry encoding";
		goto bad;
	}
	if (r_u8(&r, &u) < 0 || u != ENC_VERSION) {
		why = "unsupported version";
		goto bad;
	}
	if (r_u8(&r, &kind) < 0 || kind < FD_CRDT_STATE || kind > FD_CRDT_DIGEST) {
		why = "unknown kind";
		goto bad;
	}
	c = crdt_new((enum fd_crdt_kind)kind, 0, lim);
	if (!c) {
		why = "out of memory";
		goto bad;
	}

	if (r_var(&r, &n) < 0 || n > c->lim.max_nodes || n > r_left(&r) / 8)
		goto bad;
	if (gone_reserve(c, n) < 0)
		goto oom;
	for (prev = 0; c->ngone < n; c->ngone++) {
		if (r_u64(&r, &v) < 0 || v <= prev)
			goto bad;
		c->gone[c->ngone] = prev = v;
	}

	if (r_var(&r, &n) < 0 || n > c->lim.max_nodes || n > r_left(&r) / 10)
		goto bad;
	if (n) {
		c->orig = mem_resize(c, NULL, 0, n, sizeof(*c->orig));
		if (!c->orig)
			goto oom;
		c->origcap = n;
	}
	for (prev = 0; c->norig < n;) {
		struct origin *o = &c->orig[c->norig];
		uint64_t nc;

		memset(o, 0, sizeof(*o));
		c->norig++;
		if (r_u64(&r, &o->node) < 0 || o->node <= prev)
			goto bad;
		prev = o->node;
		if (r_var(&r, &o->max) < 0 || r_var(&r, &nc) < 0 ||
		    nc > r_left(&r) || c->ncloud + nc > c->lim.max_cloud)
			goto bad;
		if (read_gaps(c, &r, o->max, kind == FD_CRDT_STATE ? 2 : 1, nc,
			      &o->cloud) < 0) {
			o->capcloud = (uint32_t)nc;
			goto bad;
		}
		o->ncloud = o->nsorted = o->capcloud = (uint32_t)nc;
		c->ncloud += nc;
		if (!o->max && !nc) {
			why = "empty context entry";
			goto bad;
		}
		if (kind == FD_CRDT_DIGEST &&
		    (r_var(&r, &o->live) < 0 || r_u64(&r, &o->hash) < 0))
			goto bad;
		if (kind == FD_CRDT_REPAIR) {
			if (r_var(&r, &nc) < 0 || nc > r_left(&r) ||
			    nc > c->lim.max_entries)
				goto bad;
			if (read_gaps(c, &r, 0, 1, nc, &o->keep) < 0) {
				o->capkeep = (uint32_t)nc;
				goto bad;
			}
			o->nkeep = o->capkeep = (uint32_t)nc;
			for (uint32_t j = 0; j < o->nkeep; j++)
				if (!origin_covers(o, o->keep[j])) {
					why = "kept dot outside the context";
					goto bad;
				}
		}
	}

	if (r_var(&r, &n) < 0 || n > c->lim.max_names || n > r_left(&r) / 3 ||
	    (kind == FD_CRDT_DIGEST && n))
		goto bad;
	if (n && tab_reserve(c, n) < 0)
		goto oom;
	for (uint64_t i = 0; i < n; i++) {
		struct fd_crdt_name *rec;
		const unsigned char *name;
		uint64_t nlen, ne;

		if (r_var(&r, &nlen) < 0 || nlen < 1 ||
		    nlen > FD_CRDT_NAME_MAX || r_take(&r, nlen, &name) < 0)
			goto bad;
		if (!fd_crdt_name_valid((const char *)name, nlen)) {
			why = "invalid name";
			goto bad;
		}
		if (prevname &&
		    name_cmp(prevname, prevlen, (const char *)name, nlen) >= 0) {
			why = "names out of order";
			goto bad;
		}
		prevname = (const char *)name;
		prevlen = nlen;
		if (r_var(&r, &ne) < 0 || ne > FD_CRDT_MAX_PER_NAME ||
		    (kind == FD_CRDT_STATE && !ne) || ne > r_left(&r) / 12 ||
		    c->nentries + ne > c->lim.max_entries)
			goto bad;
		rec = rec_alloc(c, (const char *)name, nlen, ne);
		if (!rec)
			goto oom;
		tab_put(c, rec);
		for (uint64_t j = 0; j < ne; j++) {
			struct fd_crdt_entry *e = &rec->entries[j];
			const unsigned char *val;
			struct json_object *jo;
			uint64_t idx, vlen;
			unsigned flags;

			if (r_var(&r, &idx) < 0 || idx >= c->norig ||
			    r_var(&r, &e->dot.counter) < 0 || !e->dot.counter ||
			    r_u64(&r, &e->hlc) < 0 || r_u8(&r, &flags) < 0 ||
			    flags > 1 || r_var(&r, &vlen) < 0 || vlen < 1 ||
			    vlen > FD_CRDT_VALUE_MAX || r_take(&r, vlen, &val) < 0)
				goto bad;
			e->dot.node = c->orig[idx].node;
			e->persistent = (uint8_t)flags;
			e->value_len = (uint32_t)vlen;
			if (!origin_covers(&c->orig[idx], e->dot.counter)) {
				why = "entry outside the context";
				goto bad;
			}
			if (filtered(c, e)) {
				why = "entry of a gone node";
				goto bad;
			}
			if (j && entry_cmp(&rec->entries[j - 1], e) >= 0) {
				why = "entries out of order";
				goto bad;
			}
			if (c->nbytes + vlen + nlen > c->lim.max_bytes) {
				why = "too large";
				goto bad;
			}
			if (fd_json_parse_value((const char *)val, vlen, &jo,
						NULL) < 0) {
				why = "invalid JSON value";
				goto bad;
			}
			json_object_put(jo);
			e->value = mem_alloc(c, vlen + 1);
			if (!e->value)
				goto oom;
			memcpy(e->value, val, vlen);
			e->value[vlen] = '\0';
			rec->n++;
			stat_add(c, e, 1);
		}
	}
	if (r.off != r.n) {
		why = "trailing bytes";
		goto bad;
	}
	switch (dots_unique(c)) {
	case 1: return c;
	case 0: why = "duplicate dot"; goto bad;
	default: goto oom;
	}
oom:
	why = "out of memory";
bad:
	fd_err_set(err, "invalid registry data: %s", why);
	fd_crdt_free(c);
	errno = strcmp(why, "out of memory") ? EINVAL : ENOMEM;
	return NULL;
}
