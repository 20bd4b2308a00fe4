/* The history checker: see history.h for the records and the rules. */
#include "history.h"
#include "clock.h"
#include "jsonl.h"
#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An acknowledged publish. node NULL: any node. */
struct pub {
	char *node, *topic;
	uint64_t stream, seq;
};

/* An acknowledged registration (value set) or unregistration (NULL). */
struct reg {
	char *name, *value;
	int created; /* "created": true (the name was free) */
	size_t order;
};

struct conflict {
	char *name, *loser;
};

struct snap_entry {
	char *name, *value;
	char **conflicts; /* values of the losers kept */
	size_t nconflicts;
	size_t node; /* index in snaps */
};

struct snap {
	char *node;
	struct snap_entry *e;
	size_t n, cap;
};

enum { EV_MSG = 1, EV_GAP };
#define UNLIMITED UINT64_MAX

struct ev {
	int kind;
	char *from, *topic; /* from: messages only */
	uint64_t stream, seq;
	uint64_t missed; /* gaps: how many it may cover (UNLIMITED) */
};

struct sub {
	char *name;
	char *patterns[FD_HISTORY_PATTERNS_MAX];
	int npatterns, declared;
	struct ev *ev;
	size_t n, cap;
};

struct fd_history {
	struct pub *pubs;
	size_t npubs, cappubs;
	int pubs_sorted;
	struct reg *regs;
	size_t nregs, capregs;
	struct conflict *conflicts;
	size_t nconflicts, capconflicts;
	struct snap *snaps;
	size_t nsnaps, capsnaps;
	struct sub *subs;
	size_t nsubs, capsubs, last_sub; /* last_sub: the last one found */
	size_t faults, ignored;
	int64_t last_heal;
};

/* Makes room for one more item of size in *arr (n items, *cap room). */
static int grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void **p = arr;
	size_t ncap;
	void *np;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	np = realloc(*p, ncap * size);
	if (!np) {
		errno = ENOMEM;
		return -1;
	}
	*p = np;
	*cap = ncap;
	return 0;
}

static int nomem(struct fd_err *err)
{
	errno = ENOMEM;
	return fd_err_set(err, "out of memory");
}

struct fd_history *fd_history_new(void)
{
	struct fd_history *h = calloc(1, sizeof(*h));

	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->last_heal = INT64_MIN;
	return h;
}

void fd_history_clear_snapshots(struct fd_history *h)
{
	for (size_t i = 0; i < h->nsnaps; i++) {
		struct snap *s = &h->snaps[i];

		for (size_t k = 0; k < s->n; k++) {
			free(s->e[k].name);
			free(s->e[k].value);
			for (size_t c = 0; c < s->e[k].nconflicts; c++)
				free(s->e[k].conflicts[c]);
			free(s->e[k].conflicts);
		}
		free(s->e);
		free(s->node);
	}
	free(h->snaps);
	h->snaps = NULL;
	h->nsnaps = h->capsnaps = 0;
}

void fd_history_free(struct fd_history *h)
{
	if (!h)
		return;
	fd_history_clear_snapshots(h);
	for (size_t i = 0; i < h->npubs; i++) {
		free(h->pubs[i].node);
		free(h->pubs[i].topic);
	}
	free(h->pubs);
	for (size_t i = 0; i < h->nregs; i++) {
		free(h->regs[i].name);
		free(h->regs[i].value);
	}
	free(h->regs);
	for (size_t i = 0; i < h->nconflicts; i++) {
		free(h->conflicts[i].name);
		free(h->conflicts[i].loser);
	}
	free(h->conflicts);
	for (size_t i = 0; i < h->nsubs; i++) {
		struct sub *s = &h->subs[i];

		for (size_t k = 0; k < s->n; k++) {
			free(s->ev[k].from);
			free(s->ev[k].topic);
		}
		free(s->ev);
		for (int p = 0; p < s->npatterns; p++)
			free(s->patterns[p]);
		free(s->name);
	}
	free(h->subs);
	free(h);
}

/* ---- reading records ---- */

static const char *get_str(struct json_object *o, const char *key)
{
	return fd_json_get_str(o, key);
}

/* A required string field, non-empty. */
static int need_str(struct json_object *o, const char *key, const char **out,
		    struct fd_err *err)
{
	*out = get_str(o, key);
	if (!*out || !**out)
		return fd_err_set(err, "\"%s\" missing or not a non-empty string",
				  key);
	return 0;
}

/* A required integer field >= 1. */
static int need_pos(struct json_object *o, const char *key, uint64_t *out,
		    struct fd_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
		return fd_err_set(err, "\"%s\" missing or not a positive integer",
				  key);
	*out = (uint64_t)json_object_get_int64(v);
	return 0;
}

static int need_topic(struct json_object *o, const char **out, int pattern,
		      struct fd_err *err)
{
	if (need_str(o, "topic", out, err) < 0)
		return -1;
	if ((pattern ? fd_topic_valid_pattern
		     : fd_topic_valid_subject)(*out, strlen(*out), NULL) < 0)
		return fd_err_set(err, "\"topic\" is not a valid %s",
				  pattern ? "topic or pattern" : "topic");
	return 0;
}

/* The compact JSON text of a value (JSON null included), newly allocated. */
static char *value_text(struct json_object *v)
{
	size_t len;

	return strdup(v ? fd_json_str(v, &len) : "null");
}

static int find_sub(struct fd_history *h, struct json_object *rec,
		    const char *dflt, struct sub **out, struct fd_err *err)
{
	struct json_object *v;
	const char *name = dflt;

	if (json_object_object_get_ex(rec, "sub", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    !*json_object_get_string(v))
			return fd_err_set(err, "\"sub\" is not a non-empty string");
		name = json_object_get_string(v);
	}
	if (!name)
		return fd_err_set(err, "no subscriber: tag the line with \"sub\" "
				       "or give its file with --sub NAME=FILE");
	if (strlen(name) > FD_HISTORY_SUB_MAX)
		return fd_err_set(err, "\"sub\" longer than %d bytes",
				  FD_HISTORY_SUB_MAX);
	/* lines come in runs of one subscriber: try the last one first */
	if (h->last_sub < h->nsubs && strcmp(h->subs[h->last_sub].name, name) == 0) {
		*out = &h->subs[h->last_sub];
		return 0;
	}
	for (size_t i = 0; i < h->nsubs; i++)
		if (strcmp(h->subs[i].name, name) == 0) {
			h->last_sub = i;
			*out = &h->subs[i];
			return 0;
		}
	if (h->nsubs == FD_HISTORY_SUBS_MAX)
		return fd_err_set(err, "more than %d subscribers",
				  FD_HISTORY_SUBS_MAX);
	if (grow(&h->subs, &h->capsubs, h->nsubs, sizeof(*h->subs)) < 0)
		return nomem(err);
	*out = &h->subs[h->nsubs];
	memset(*out, 0, sizeof(**out));
	(*out)->name = strdup(name);
	if (!(*out)->name)
		return nomem(err);
	h->last_sub = h->nsubs++;
	return 0;
}

static int add_published(struct fd_history *h, struct json_object *rec,
			 struct fd_err *err)
{
	const char *topic, *node = get_str(rec, "node");
	struct pub p = {0};

	if (need_topic(rec, &topic, 0, err) < 0 ||
	    need_pos(rec, "stream", &p.stream, err) < 0 ||
	    need_pos(rec, "seq", &p.seq, err) < 0)
		return -1;
	if (grow(&h->pubs, &h->cappubs, h->npubs, sizeof(*h->pubs)) < 0)
		return nomem(err);
	p.topic = strdup(topic);
	p.node = node && *node ? strdup(node) : NULL;
	if (!p.topic || (node && *node && !p.node)) {
		free(p.topic);
		free(p.node);
		return nomem(err);
	}
	h->pubs[h->npubs++] = p;
	h->pubs_sorted = 0;
	return 1;
}

static int add_event(struct fd_history *h, struct json_object *rec,
		     const char *dflt, int kind, struct fd_err *err)
{
	struct ev e = {.kind = kind};
	const char *topic, *from = NULL;
	struct json_object *v;
	struct sub *s;

	if (need_topic(rec, &topic, kind == EV_GAP, err) < 0)
		return -1;
	if (kind == EV_MSG) {
		if (need_str(rec, "from", &from, err) < 0 ||
		    need_pos(rec, "stream", &e.stream, err) < 0 ||
		    need_pos(rec, "seq", &e.seq, err) < 0)
			return -1;
	} else {
		if (!json_object_object_get_ex(rec, "missed", &v))
			return fd_err_set(err, "\"missed\" missing");
		if (!v || get_str(rec, "reason"))
			e.missed = UNLIMITED;
		else if (json_object_is_type(v, json_type_int) &&
			 json_object_get_int64(v) >= 0)
			e.missed = (uint64_t)json_object_get_int64(v);
		else
			return fd_err_set(err, "\"missed\" is not a count or null");
	}
	if (find_sub(h, rec, dflt, &s, err) < 0)
		return -1;
	if (grow(&s->ev, &s->cap, s->n, sizeof(*s->ev)) < 0)
		return nomem(err);
	e.topic = strdup(topic);
	e.from = from ? strdup(from) : NULL;
	if (!e.topic || (from && !e.from)) {
		free(e.topic);
		free(e.from);
		return nomem(err);
	}
	s->ev[s->n++] = e;
	return 1;
}

static int add_subscriber(struct fd_history *h, struct json_object *rec,
			  const char *dflt, struct fd_err *err)
{
	struct json_object *pats;
	struct sub *s;
	size_t n;

	if (!json_object_object_get_ex(rec, "patterns", &pats) ||
	    !json_object_is_type(pats, json_type_array))
		return fd_err_set(err, "\"patterns\" missing or not an array");
	n = json_object_array_length(pats);
	if (n == 0 || n > FD_HISTORY_PATTERNS_MAX)
		return fd_err_set(err, "\"patterns\": 1 to %d patterns",
				  FD_HISTORY_PATTERNS_MAX);
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(pats, i);

		if (!json_object_is_type(p, json_type_string) ||
		    fd_topic_valid_pattern(json_object_get_string(p),
					   strlen(json_object_get_string(p)),
					   NULL) < 0)
			return fd_err_set(err, "\"patterns\": item %zu is not a pattern",
					  i + 1);
	}
	if (find_sub(h, rec, dflt, &s, err) < 0)
		return -1;
	if (s->declared)
		return fd_err_set(err, "subscriber '%s' declared twice", s->name);
	for (size_t i = 0; i < n; i++) {
		s->patterns[i] = strdup(json_object_get_string(
			json_object_array_get_idx(pats, i)));
		if (!s->patterns[i])
			return nomem(err);
		s->npatterns = (int)i + 1;
	}
	s->declared = 1;
	return 1;
}

static int add_entry(struct fd_history *h, struct json_object *rec, struct fd_err *err)
{
	struct json_object *v, *snap;
	const char *name;
	struct reg r = {0};

	if (json_object_object_get_ex(rec, "snapshot", &snap)) {
		if (!json_object_is_type(snap, json_type_string) ||
		    !*json_object_get_string(snap))
			return fd_err_set(err, "\"snapshot\" is not a node name");
		return fd_history_snapshot(h, json_object_get_string(snap), rec,
					   err) < 0
			       ? -1
			       : 1;
	}
	if (need_str(rec, "name", &name, err) < 0)
		return -1;
	if (json_object_object_get_ex(rec, "unregistered", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return fd_err_set(err, "\"unregistered\" is not a boolean");
		if (!json_object_get_boolean(v))
			return 0;
	} else if (json_object_object_get_ex(rec, "found", &v)) {
		return 0; /* a lookup's "not found" answer */
	} else {
		if (!json_object_object_get_ex(rec, "value", &v))
			return fd_err_set(err, "\"value\" missing");
		r.value = value_text(v);
		if (!r.value)
			return nomem(err);
		r.created = json_object_object_get_ex(rec, "created", &v) &&
			    json_object_get_boolean(v);
	}
	if (grow(&h->regs, &h->capregs, h->nregs, sizeof(*h->regs)) < 0) {
		free(r.value);
		return nomem(err);
	}
	r.name = strdup(name);
	if (!r.name) {
		free(r.value);
		return nomem(err);
	}
	r.order = h->nregs;
	h->regs[h->nregs++] = r;
	return 1;
}

static int add_conflict(struct fd_history *h, struct json_object *rec,
			struct fd_err *err)
{
	const char *name, *ev = get_str(rec, "event");
	struct json_object *loser, *v;
	struct conflict c;

	if (!ev || strcmp(ev, "conflict") != 0)
		return 0;
	if (need_str(rec, "name", &name, err) < 0)
		return -1;
	if (!json_object_object_get_ex(rec, "loser", &loser) ||
	    !json_object_is_type(loser, json_type_object) ||
	    !json_object_object_get_ex(loser, "value", &v))
		return fd_err_set(err, "\"loser\" missing or without a \"value\"");
	if (grow(&h->conflicts, &h->capconflicts, h->nconflicts,
		 sizeof(*h->conflicts)) < 0)
		return nomem(err);
	c.name = strdup(name);
	c.loser = value_text(v);
	if (!c.name || !c.loser) {
		free(c.name);
		free(c.loser);
		return nomem(err);
	}
	h->conflicts[h->nconflicts++] = c;
	return 1;
}

static int add_fault(struct fd_history *h, struct json_object *rec, struct fd_err *err)
{
	const char *ts = get_str(rec, "ts"), *action = get_str(rec, "action");
	struct json_object *v;
	int64_t us;
	int heal;

	if (!ts || fd_ts_parse(ts, &us) < 0)
		return fd_err_set(err, "\"ts\" missing or not an RFC 3339 time");
	heal = (action && strcmp(action, "heal") == 0) ||
	       (get_str(rec, "event") && strcmp(get_str(rec, "event"), "heal") == 0);
	if (json_object_object_get_ex(rec, "healed", &v) &&
	    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
		heal = 1;
	h->faults++;
	if (heal && us > h->last_heal)
		h->last_heal = us;
	return 1;
}

int fd_history_add(struct fd_history *h, struct json_object *rec,
		   const char *sub, struct fd_err *err)
{
	const char *type;

	if (!json_object_is_type(rec, json_type_object))
		return fd_err_set(err, "not a JSON object");
	type = get_str(rec, "type");
	if (!type)
		return fd_err_set(err, "\"type\" missing or not a string");
	if (strcmp(type, "published") == 0)
		return add_published(h, rec, err);
	if (strcmp(type, "message") == 0)
		return add_event(h, rec, sub, EV_MSG, err);
	if (strcmp(type, "gap") == 0)
		return add_event(h, rec, sub, EV_GAP, err);
	if (strcmp(type, "subscriber") == 0)
		return add_subscriber(h, rec, sub, err);
	if (strcmp(type, "entry") == 0)
		return add_entry(h, rec, err);
	if (strcmp(type, "event") == 0)
		return add_conflict(h, rec, err);
	if (strcmp(type, "fault") == 0)
		return add_fault(h, rec, err);
	h->ignored++;
	return 0;
}

int fd_history_snapshot(struct fd_history *h, const char *node,
			struct json_object *rec, struct fd_err *err)
{
	struct snap *s = NULL;
	struct snap_entry e = {0};
	struct json_object *v = NULL, *confl;
	const char *name = NULL;

	if (!node || !*node)
		return fd_err_set(err, "a snapshot needs a node name");
	for (size_t i = 0; i < h->nsnaps && !s; i++)
		if (strcmp(h->snaps[i].node, node) == 0)
			s = &h->snaps[i];
	if (rec) {
		if (need_str(rec, "name", &name, err) < 0)
			return -1;
		if (!json_object_object_get_ex(rec, "value", &v))
			return fd_err_set(err, "\"value\" missing");
	}
	if (!s) {
		if (h->nsnaps == FD_HISTORY_NODES_MAX)
			return fd_err_set(err, "more than %d snapshot nodes",
					  FD_HISTORY_NODES_MAX);
		if (grow(&h->snaps, &h->capsnaps, h->nsnaps, sizeof(*h->snaps)) < 0)
			return nomem(err);
		s = &h->snaps[h->nsnaps];
		memset(s, 0, sizeof(*s));
		s->node = strdup(node);
		if (!s->node)
			return nomem(err);
		h->nsnaps++;
	}
	if (!rec)
		return 0;
	if (grow(&s->e, &s->cap, s->n, sizeof(*s->e)) < 0)
		return nomem(err);
	e.node = (size_t)(s - h->snaps);
	e.name = strdup(name);
	e.value = value_text(v);
	if (!e.name || !e.value)
		goto nomem;
	if (json_object_object_get_ex(rec, "conflicts", &confl) &&
	    json_object_is_type(confl, json_type_array) &&
	    json_object_array_length(confl) > 0) {
		size_t n = json_object_array_length(confl);

		e.conflicts = calloc(n, sizeof(*e.conflicts));
		if (!e.conflicts)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			struct json_object *c = json_object_array_get_idx(confl, i);

			if (!json_object_object_get_ex(c, "value", &v))
				continue;
			e.conflicts[e.nconflicts] = value_text(v);
			if (!e.conflicts[e.nconflicts])
				goto nomem;
			e.nconflicts++;
		}
	}
	s->e[s->n++] = e;
	return 0;
nomem:
	for (size_t i = 0; i < e.nconflicts; i++)
		free(e.conflicts[i]);
	free(e.conflicts);
	free(e.name);
	free(e.value);
	return nomem(err);
}

int64_t fd_history_last_heal(const struct fd_history *h)
{
	return h->last_heal;
}

/* ---- the verdict ---- */

/* strcmp with NULL first. */
static int strcmp_null(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_pub(const void *x, const void *y)
{
	const struct pub *a = x, *b = y;
	int c;

	if (a->stream != b->stream)
		return a->stream < b->stream ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	c = strcmp_null(a->node, b->node);
	return c ? c : strcmp(a->topic, b->topic);
}

/* Sorts the publishes and drops repeated acknowledgements. */
static void sort_pubs(struct fd_history *h)
{
	size_t k = 0;

	if (h->pubs_sorted)
		return;
	if (h->npubs > 1)
		qsort(h->pubs, h->npubs, sizeof(*h->pubs), cmp_pub);
	for (size_t i = 0; i < h->npubs; i++) {
		if (k > 0 && cmp_pub(&h->pubs[k - 1], &h->pubs[i]) == 0) {
			free(h->pubs[i].node);
			free(h->pubs[i].topic);
			continue;
		}
		h->pubs[k++] = h->pubs[i];
	}
	h->npubs = k;
	h->pubs_sorted = 1;
}

/* The acknowledged publish a message is, or -1. */
static long find_pub(const struct fd_history *h, const struct ev *m)
{
	size_t lo = 0, hi = h->npubs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct pub *p = &h->pubs[mid];

		if (p->stream < m->stream ||
		    (p->stream == m->stream && p->seq < m->seq))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < h->npubs && h->pubs[i].stream == m->stream &&
			    h->pubs[i].seq == m->seq;
	     i++) {
		const struct pub *p = &h->pubs[i];

		if ((!p->node || strcmp(p->node, m->from) == 0) &&
		    strcmp(p->topic, m->topic) == 0)
			return (long)i;
	}
	return -1;
}

static int sub_wants(const struct sub *s, const char *topic)
{
	if (!s->declared)
		return 1;
	for (int i = 0; i < s->npatterns; i++)
		if (fd_topic_match(s->patterns[i], strlen(s->patterns[i]),
				   topic, strlen(topic)))
			return 1;
	return 0;
}

/* A message a subscriber received, in its stream's order. */
struct recv {
	const char *from;
	uint64_t stream, seq;
	size_t pos;
};

static int cmp_recv_pos(const void *x, const void *y)
{
	const struct recv *a = x, *b = y;
	int c = strcmp(a->from, b->from);

	if (c)
		return c;
	if (a->stream != b->stream)
		return a->stream < b->stream ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int cmp_recv_seq(const void *x, const void *y)
{
	const struct recv *a = x, *b = y;
	int c = strcmp(a->from, b->from);

	if (c)
		return c;
	if (a->stream != b->stream)
		return a->stream < b->stream ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* The first of the gaps at positions gpos[0..n) (ascending) at pos or
 * later; n when none. */
static size_t first_gap(const size_t *gpos, size_t n, size_t pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (gpos[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first gap from j on that still has room (live[] as in check_sub,
 * its chains shortened on the way: union-find's path halving). */
static size_t gap_live(size_t *live, size_t j)
{
	while (live[j] != j) {
		live[j] = live[live[j]];
		j = live[j];
	}
	return j;
}

/* A publish the subscriber did not get, and where a gap must be to cover
 * it: strictly between positions lo and hi of its stream. */
struct miss {
	size_t pub;
	size_t lo, hi; /* lo: SIZE_MAX for "from the start" */
};

static int cmp_miss(const void *x, const void *y)
{
	const struct miss *a = x, *b = y;

	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo + 1 < b->lo + 1 ? -1 : 1;
	return a->pub < b->pub ? -1 : a->pub > b->pub;
}

/* The window of a missed publish among the received messages (sorted by
 * from, stream, seq): after the last one of its stream with a lower seq,
 * before the first with a higher one. */
static void window(const struct recv *r, size_t n, const struct pub *p,
		   size_t nev, struct miss *m)
{
	size_t lo = 0, hi = n;

	m->lo = SIZE_MAX;
	m->hi = nev;
	if (!p->node)
		return; /* any node's stream: not placed */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r[mid].from, p->node);

		if (c < 0 ||
		    (c == 0 && (r[mid].stream < p->stream ||
				(r[mid].stream == p->stream && r[mid].seq < p->seq))))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && strcmp(r[lo].from, p->node) == 0 && r[lo].stream == p->stream)
		m->hi = r[lo].pos;
	if (lo > 0 && strcmp(r[lo - 1].from, p->node) == 0 &&
	    r[lo - 1].stream == p->stream)
		m->lo = r[lo - 1].pos;
}

struct pub_counts {
	uint64_t expected, received, covered, lost, duplicated, reordered,
		unexpected, gaps;
};

static struct json_object *lost_pub(const struct sub *s, const struct pub *p)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string("publish"));
	json_object_object_add(o, "sub", json_object_new_string(s->name));
	json_object_object_add(o, "topic", json_object_new_string(p->topic));
	if (p->node)
		json_object_object_add(o, "node", json_object_new_string(p->node));
	json_object_object_add(o, "stream",
			       json_object_new_int64((int64_t)p->stream));
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)p->seq));
	return o;
}

/* Checks one subscriber. Returns 0, or -1 (ENOMEM). */
static int check_sub(const struct fd_history *h, const struct sub *s,
		     struct pub_counts *pc, struct json_object *lost)
{
	uint32_t *got = calloc(h->npubs ? h->npubs : 1, sizeof(*got));
	struct recv *r = calloc(s->n ? s->n : 1, sizeof(*r));
	struct miss *miss = NULL;
	uint64_t *room = calloc(s->n ? s->n : 1, sizeof(*room));
	size_t *gpos = calloc(s->n ? s->n : 1, sizeof(*gpos)), *live = NULL;
	size_t nr = 0, nmiss = 0, capmiss = 0, ngaps = 0;
	int rc = -1;

	if (!got || !r || !room || !gpos)
		goto out;
	for (size_t i = 0; i < s->n; i++) {
		const struct ev *e = &s->ev[i];
		long p;

		if (e->kind == EV_GAP) {
			room[i] = e->missed;
			pc->gaps++;
			gpos[ngaps++] = i;
			continue;
		}
		r[nr].from = e->from;
		r[nr].stream = e->stream;
		r[nr].seq = e->seq;
		r[nr].pos = i;
		nr++;
		p = find_pub(h, e);
		if (p < 0)
			pc->unexpected++;
		else if (got[p]++ > 0)
			pc->duplicated++;
	}
	/* live[j]: j when gap j has room, else a later gap to look at (a
	 * gap with no room from the start, missed 0, is skipped at once) */
	live = malloc((ngaps + 1) * sizeof(*live));
	if (!live)
		goto out;
	for (size_t j = 0; j <= ngaps; j++)
		live[j] = j < ngaps && room[gpos[j]] == 0 ? j + 1 : j;
	/* in receiving order per stream, a seq never goes back */
	qsort(r, nr, sizeof(*r), cmp_recv_pos);
	for (size_t i = 1; i < nr; i++)
		if (strcmp(r[i].from, r[i - 1].from) == 0 &&
		    r[i].stream == r[i - 1].stream && r[i].seq < r[i - 1].seq)
			pc->reordered++;
	qsort(r, nr, sizeof(*r), cmp_recv_seq);
	for (size_t i = 0; i < h->npubs; i++) {
		if (!sub_wants(s, h->pubs[i].topic))
			continue;
		pc->expected++;
		if (got[i]) {
			pc->received++;
			continue;
		}
		if (grow(&miss, &capmiss, nmiss, sizeof(*miss)) < 0)
			goto out;
		miss[nmiss].pub = i;
		window(r, nr, &h->pubs[i], s->n, &miss[nmiss]);
		nmiss++;
	}
	/* Covering: earliest window end first, each to the earliest gap of
	 * its window with room left (the greedy that covers the most when
	 * every gap fits every topic). */
	if (nmiss > 1)
		qsort(miss, nmiss, sizeof(*miss), cmp_miss);
	for (size_t k = 0; k < nmiss; k++) {
		const struct pub *p = &h->pubs[miss[k].pub];
		size_t from = miss[k].lo == SIZE_MAX ? 0 : miss[k].lo + 1;
		int covered = 0;

		/* the gaps of the window that have room, in order */
		for (size_t j = gap_live(live, first_gap(gpos, ngaps, from));
		     j < ngaps && gpos[j] < miss[k].hi && !covered;
		     j = gap_live(live, j + 1)) {
			const struct ev *g = &s->ev[gpos[j]];

			if (!fd_topic_match(g->topic, strlen(g->topic),
					    p->topic, strlen(p->topic)))
				continue;
			if (room[gpos[j]] != UNLIMITED && --room[gpos[j]] == 0)
				live[j] = j + 1; /* used up: skipped from now on */
			covered = 1;
		}
		if (covered) {
			pc->covered++;
			continue;
		}
		pc->lost++;
		if (json_object_array_length(lost) < FD_HISTORY_LOST_SHOWN)
			json_object_array_add(lost, lost_pub(s, p));
	}
	rc = 0;
out:
	free(got);
	free(r);
	free(miss);
	free(room);
	free(gpos);
	free(live);
	if (rc < 0)
		errno = ENOMEM;
	return rc;
}

static int cmp_reg(const void *x, const void *y)
{
	const struct reg *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int cmp_conflict(const void *x, const void *y)
{
	const struct conflict *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->loser, b->loser);
}

static int cmp_entry_ptr(const void *x, const void *y)
{
	const struct snap_entry *a = *(const struct snap_entry *const *)x;
	const struct snap_entry *b = *(const struct snap_entry *const *)y;
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->node < b->node ? -1 : a->node > b->node;
}

/* The entries of all snapshots sorted by name, then node. */
static const struct snap_entry **all_entries(const struct fd_history *h, size_t *n)
{
	const struct snap_entry **all;
	size_t total = 0, k = 0;

	for (size_t i = 0; i < h->nsnaps; i++)
		total += h->snaps[i].n;
	all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		return NULL;
	for (size_t i = 0; i < h->nsnaps; i++)
		for (size_t j = 0; j < h->snaps[i].n; j++)
			all[k++] = &h->snaps[i].e[j];
	if (total > 1)
		qsort(all, total, sizeof(*all), cmp_entry_ptr);
	*n = total;
	return all;
}

/* Whether the registration want lost a conflict on name: a conflict event
 * says so, the entry e keeps it among its conflicts, or both it and e's
 * value were acknowledged as creations of the name (regs[from..to) are the
 * name's acknowledgements). */
static int explained(const struct fd_history *h, const char *name,
		     const struct reg *want, const struct snap_entry *e,
		     const struct reg *regs, size_t from, size_t to)
{
	struct conflict key = {(char *)name, want->value};
	const char *value = want->value;

	if (h->nconflicts && bsearch(&key, h->conflicts, h->nconflicts,
				     sizeof(*h->conflicts), cmp_conflict))
		return 1;
	if (!e)
		return 0;
	for (size_t i = 0; i < e->nconflicts; i++)
		if (strcmp(e->conflicts[i], value) == 0)
			return 1;
	/* two creations that did not see each other (a partition) */
	for (size_t i = from; i < to && want->created; i++)
		if (regs[i].created && strcmp(regs[i].value, e->value) == 0 &&
		    strcmp(regs[i].value, value) != 0)
			return 1;
	return 0;
}

struct reg_counts {
	uint64_t acknowledged, unregistered, names, present, conflicts, lost,
		divergent, unexpected;
};

static struct json_object *lost_reg(const char *name, const char *value,
				    struct json_object *nodes)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string("registration"));
	json_object_object_add(o, "name", json_object_new_string(name));
	if (value)
		json_object_object_add(o, "value",
				       fd_json_parse(value, strlen(value), NULL));
	else
		json_object_object_add(o, "unregistered",
				       json_object_new_boolean(1));
	json_object_object_add(o, "nodes", nodes);
	return o;
}

/* The entry of name on snapshot node i among all[lo..hi) (the name's). */
static const struct snap_entry *on_node(const struct snap_entry **all,
					size_t lo, size_t hi, size_t node)
{
	for (size_t i = lo; i < hi; i++)
		if (all[i]->node == node)
			return all[i];
	return NULL;
}

static int check_regs(struct fd_history *h, struct reg_counts *rc,
		      struct json_object *lost)
{
	struct reg *regs = NULL;
	const struct snap_entry **all;
	size_t nall = 0, a = 0, i = 0;
	int ret = -1;

	if (h->nregs) {
		regs = malloc(h->nregs * sizeof(*regs));
		if (!regs)
			return -1;
		memcpy(regs, h->regs, h->nregs * sizeof(*regs));
		qsort(regs, h->nregs, sizeof(*regs), cmp_reg);
	}
	if (h->nconflicts)
		qsort(h->conflicts, h->nconflicts, sizeof(*h->conflicts),
		      cmp_conflict);
	all = all_entries(h, &nall);
	if (!all)
		goto out;
	for (size_t k = 0; k < h->nregs; k++) {
		if (regs[k].value)
			rc->acknowledged++;
		else
			rc->unregistered++;
	}
	/* the acknowledged names and the snapshots' names, walked together */
	while (i < h->nregs || a < nall) {
		size_t j = i, b = a;
		const struct reg *last;
		struct json_object *nodes;
		const char *name;
		int c, conflict = 0;

		if (i < h->nregs && a < nall)
			c = strcmp(regs[i].name, all[a]->name);
		else
			c = i < h->nregs ? -1 : 1;
		name = c <= 0 ? regs[i].name : all[a]->name;
		while (c <= 0 && j < h->nregs && strcmp(regs[j].name, name) == 0)
			j++;
		while (c >= 0 && b < nall && strcmp(all[b]->name, name) == 0)
			b++;
		rc->names++;
		/* every node holds the name with one value, or none does */
		if (b > a) {
			int agree = b - a == h->nsnaps;

			for (size_t k = a + 1; k < b && agree; k++)
				agree = strcmp(all[k]->value, all[a]->value) == 0;
			if (!agree)
				rc->divergent++;
		}
		if (j == i) {
			rc->unexpected++;
			goto next;
		}
		if (h->nsnaps == 0)
			goto next;
		last = &regs[j - 1];
		nodes = json_object_new_array();
		for (size_t k = 0; k < h->nsnaps; k++) {
			const struct snap_entry *e = on_node(all, a, b, k);

			if (!last->value) {
				if (e)
					json_object_array_add(
						nodes, json_object_new_string(
							       h->snaps[k].node));
			} else if (e && strcmp(e->value, last->value) == 0) {
				continue;
			} else if (explained(h, name, last, e, regs, i, j)) {
				conflict = 1;
			} else {
				json_object_array_add(
					nodes,
					json_object_new_string(h->snaps[k].node));
			}
		}
		if (json_object_array_length(nodes) > 0) {
			rc->lost++;
			if (json_object_array_length(lost) < FD_HISTORY_LOST_SHOWN)
				json_object_array_add(
					lost, lost_reg(name, last->value, nodes));
			else
				json_object_put(nodes);
		} else {
			json_object_put(nodes);
			if (conflict)
				rc->conflicts++;
			else if (last->value)
				rc->present++;
		}
	next:
		i = j;
		a = b;
	}
	ret = 0;
out:
	free(regs);
	free(all);
	return ret;
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

struct json_object *fd_history_check(struct fd_history *h)
{
	struct json_object *v = fd_json_record("check"), *lost, *o;
	struct reg_counts rc = {0};
	struct pub_counts pc = {0};
	char ts[FD_TS_LEN];
	int valid;

	if (!v)
		return NULL;
	lost = json_object_new_array();
	if (check_regs(h, &rc, lost) < 0)
		goto nomem;
	sort_pubs(h);
	for (size_t i = 0; i < h->nsubs; i++)
		if (check_sub(h, &h->subs[i], &pc, lost) < 0)
			goto nomem;
	valid = rc.lost == 0 && rc.divergent == 0 && pc.lost == 0 &&
		pc.duplicated == 0 && pc.reordered == 0;
	json_object_object_add(v, "valid", json_object_new_boolean(valid));

	o = json_object_new_object();
	json_object_object_add(o, "checked", json_object_new_boolean(h->nsnaps > 0));
	add_u64(o, "nodes", h->nsnaps);
	add_u64(o, "acknowledged", rc.acknowledged);
	add_u64(o, "unregistered", rc.unregistered);
	add_u64(o, "present", rc.present);
	add_u64(o, "conflicts", rc.conflicts);
	add_u64(o, "lost", rc.lost);
	add_u64(o, "divergent", rc.divergent);
	add_u64(o, "unexpected", rc.unexpected);
	json_object_object_add(v, "registrations", o);

	o = json_object_new_object();
	json_object_object_add(o, "checked", json_object_new_boolean(h->nsubs > 0));
	add_u64(o, "acknowledged", h->npubs);
	add_u64(o, "subscribers", h->nsubs);
	add_u64(o, "expected", pc.expected);
	add_u64(o, "received", pc.received);
	add_u64(o, "covered", pc.covered);
	add_u64(o, "gaps", pc.gaps);
	add_u64(o, "lost", pc.lost);
	add_u64(o, "duplicated", pc.duplicated);
	add_u64(o, "reordered", pc.reordered);
	add_u64(o, "unexpected", pc.unexpected);
	json_object_object_add(v, "publishes", o);

	json_object_object_add(v, "lost", lost);
	add_u64(v, "faults", h->faults);
	json_object_object_add(v, "last_heal",
			       h->last_heal == INT64_MIN
				       ? NULL
				       : json_object_new_string(fd_ts_format(
						 h->last_heal, ts, sizeof(ts))));
	add_u64(v, "ignored", h->ignored);
	return v;
nomem:
	json_object_put(lost);
	json_object_put(v);
	errno = ENOMEM;
	return NULL;
}

int fd_history_valid(struct json_object *verdict)
{
	struct json_object *v;

	return json_object_object_get_ex(verdict, "valid", &v) &&
	       json_object_get_boolean(v);
}
