/* Fault rules. See fault.h. */
#include "fault.h"
#include "wire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static const char *const dir_names[] = {NULL, "in", "out", "both"};
static const char *const action_names[] = {NULL, "drop", "loss", "delay", "duplicate"};

void fd_fault_init(struct fd_fault_table *t)
{
	memset(t, 0, sizeof(*t));
	t->next_id = 1;
}

const char *fd_fault_dir_name(int dir)
{
	return dir >= FD_FAULT_IN && dir <= FD_FAULT_BOTH ? dir_names[dir] : "?";
}

const char *fd_fault_action_name(int action)
{
	return action >= FD_FAULT_DROP && action <= FD_FAULT_DUPLICATE
		       ? action_names[action]
		       : "?";
}

int fd_fault_parse_dir(const char *s)
{
	for (int i = FD_FAULT_IN; i <= FD_FAULT_BOTH; i++)
		if (strcmp(s, dir_names[i]) == 0)
			return i;
	return -1;
}

int fd_fault_parse_action(const char *s)
{
	for (int i = FD_FAULT_DROP; i <= FD_FAULT_DUPLICATE; i++)
		if (strcmp(s, action_names[i]) == 0)
			return i;
	return -1;
}

static int tag_ok(const char *tag)
{
	size_t n = strnlen(tag, FD_FAULT_TAG_MAX + 1);

	if (n == 0 || n > FD_FAULT_TAG_MAX)
		return 0;
	for (const char *p = tag; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._:-", *p)))
			return 0;
	return 1;
}

int fd_fault_validate(const struct fd_fault_rule *r, int64_t now, struct fd_err *err)
{
	if (!tag_ok(r->tag))
		return fd_err_set(err, "invalid tag (1 to %d of A-Z a-z 0-9 . _ : -)",
				  FD_FAULT_TAG_MAX);
	if (strcmp(r->peer, "*") != 0 && !fd_wire_name_ok(r->peer))
		return fd_err_set(err, "invalid peer name");
	if (r->dir < FD_FAULT_IN || r->dir > FD_FAULT_BOTH)
		return fd_err_set(err, "invalid direction (in, out, both)");
	if (r->action < FD_FAULT_DROP || r->action > FD_FAULT_DUPLICATE)
		return fd_err_set(err, "invalid action (drop, loss, delay, duplicate)");
	if (!(r->probability > 0 && r->probability <= 1))
		return fd_err_set(err, "probability must be above 0 and at most 1");
	if (r->action == FD_FAULT_DROP && r->probability != 1)
		return fd_err_set(err, "a drop has probability 1 (use loss)");
	if (r->delay_ms < 0 || r->delay_ms > FD_FAULT_DELAY_MAX ||
	    r->jitter_ms < 0 || r->jitter_ms > FD_FAULT_DELAY_MAX)
		return fd_err_set(err, "delay and jitter must be 0 to %d ms",
				  FD_FAULT_DELAY_MAX);
	if (r->action == FD_FAULT_DELAY && r->delay_ms == 0 && r->jitter_ms == 0)
		return fd_err_set(err, "a delay needs delay_ms or jitter_ms");
	if (r->expires_at <= now)
		return fd_err_set(err, "the rule has already expired");
	return 0;
}

uint64_t fd_fault_add(struct fd_fault_table *t, const struct fd_fault_rule *r,
		      int64_t now, struct fd_err *err)
{
	struct fd_fault_rule *d;

	if (fd_fault_validate(r, now, err) < 0) {
		errno = EINVAL;
		return 0;
	}
	if (t->n == FD_FAULT_MAX) {
		fd_err_set(err, "too many fault rules (at most %d)", FD_FAULT_MAX);
		errno = ENOSPC;
		return 0;
	}
	d = &t->rules[t->n++];
	*d = *r;
	d->id = t->next_id++;
	d->created_at = now;
	d->matched = d->applied = 0;
	d->dropped = d->delayed = d->duplicated = 0;
	return d->id;
}

int fd_fault_replace_tag(struct fd_fault_table *t, const char *tag,
			 const struct fd_fault_rule *rules, size_t n,
			 int64_t now, struct fd_err *err)
{
	size_t mine = 0;

	if (!tag_ok(tag)) {
		errno = EINVAL;
		return fd_err_set(err, "invalid tag (1 to %d of A-Z a-z 0-9 . _ : -)",
				  FD_FAULT_TAG_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		struct fd_fault_rule r = rules[i];
		struct fd_err e;

		memcpy(r.tag, tag, strlen(tag) + 1);
		if (fd_fault_validate(&r, now, &e) < 0) {
			errno = EINVAL;
			return fd_err_set(err, "rule %zu: %s", i, e.msg);
		}
	}
	for (size_t i = 0; i < t->n; i++)
		mine += strcmp(t->rules[i].tag, tag) == 0;
	if (t->n - mine + n > FD_FAULT_MAX) {
		errno = ENOSPC;
		return fd_err_set(err, "too many fault rules (at most %d)",
				  FD_FAULT_MAX);
	}
	fd_fault_remove_tag(t, tag);
	for (size_t i = 0; i < n; i++) {
		struct fd_fault_rule r = rules[i];

		memcpy(r.tag, tag, strlen(tag) + 1);
		fd_fault_add(t, &r, now, NULL);
	}
	return 0;
}

/* Keeps the rules for which drop() is 0, in order. */
static size_t remove_if(struct fd_fault_table *t,
			int (*drop)(const struct fd_fault_rule *, const void *),
			const void *arg)
{
	size_t k = 0, before = t->n;

	for (size_t i = 0; i < t->n; i++) {
		if (drop(&t->rules[i], arg))
			continue;
		if (k != i)
			t->rules[k] = t->rules[i];
		k++;
	}
	t->n = k;
	return before - k;
}

static int by_tag(const struct fd_fault_rule *r, const void *arg)
{
	return !arg || strcmp(r->tag, arg) == 0;
}

static int by_id(const struct fd_fault_rule *r, const void *arg)
{
	return r->id == *(const uint64_t *)arg;
}

static int by_expiry(const struct fd_fault_rule *r, const void *arg)
{
	return r->expires_at <= *(const int64_t *)arg;
}

size_t fd_fault_remove_tag(struct fd_fault_table *t, const char *tag)
{
	return remove_if(t, by_tag, tag);
}

int fd_fault_remove_id(struct fd_fault_table *t, uint64_t id)
{
	return remove_if(t, by_id, &id) ? 0 : -1;
}

size_t fd_fault_expire(struct fd_fault_table *t, int64_t now)
{
	return remove_if(t, by_expiry, &now);
}

int64_t fd_fault_next_expiry(const struct fd_fault_table *t)
{
	int64_t e = INT64_MAX;

	for (size_t i = 0; i < t->n; i++)
		if (t->rules[i].expires_at < e)
			e = t->rules[i].expires_at;
	return e;
}

double fd_fault_rand(uint64_t *rng)
{
	uint64_t x = *rng ? *rng : 0x9E3779B97F4A7C15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

int fd_fault_check(struct fd_fault_table *t, int64_t now, const char *peer,
		   int dir, uint64_t *rng, struct fd_fault_verdict *v)
{
	memset(v, 0, sizeof(*v));
	t->checked++;
	for (size_t i = 0; i < t->n && !v->drop; i++) {
		struct fd_fault_rule *r = &t->rules[i];

		if (r->expires_at <= now || !(r->dir & dir) ||
		    (strcmp(r->peer, "*") != 0 && strcmp(r->peer, peer) != 0))
			continue;
		r->matched++;
		if (r->probability < 1 && fd_fault_rand(rng) >= r->probability)
			continue;
		r->applied++;
		switch (r->action) {
		case FD_FAULT_DROP:
		case FD_FAULT_LOSS:
			v->drop = 1;
			r->dropped++;
			break;
		case FD_FAULT_DUPLICATE:
			v->duplicate = 1;
			r->duplicated++;
			break;
		case FD_FAULT_DELAY: {
			int64_t d = r->delay_ms;

			if (r->jitter_ms > 0)
				d += (int64_t)(fd_fault_rand(rng) *
					       (double)(2 * r->jitter_ms + 1)) -
				     r->jitter_ms;
			if (d > 0) {
				v->delay_ms += d;
				r->delayed++;
			}
			break;
		}
		}
	}
	if (v->drop) {
		v->duplicate = 0;
		v->delay_ms = 0;
		t->dropped++;
		return 1;
	}
	t->delayed += v->delay_ms > 0;
	t->duplicated += v->duplicate != 0;
	return v->delay_ms > 0 || v->duplicate;
}
