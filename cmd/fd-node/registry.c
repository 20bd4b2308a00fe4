/* The registry in the node: the delta CRDT of crdt.h replicated to every
 * alive peer, and the /v1/registry API.
 *
 * Replication. Each local change joins its delta into one delta group per
 * alive peer; a peer's group is sent as soon as the previous send to that
 * peer completed (so changes batch while a send is in flight). A send that
 * fails, a group that grows past its cap, or a peer that comes (back) alive
 * marks the peer for anti-entropy: we send it our digest, it answers with
 * what we lack and its own digest, and we send it what it lacks. A random
 * alive peer gets the same exchange every sync interval, so a lost delta
 * is repaired even when nothing failed visibly.
 *
 * Owners. A replica id (64 bits) is the first half of the node's id, new at
 * every start. When a member fails or leaves, or comes back as a new
 * instance, its id is marked gone and its ephemeral entries drop out
 * everywhere. If the cluster marks *us* gone (a false failure detection, a
 * long partition), we take a new replica id and register our entries again
 * rather than lose them.
 *
 * Conflicts. After a partition heals, concurrent registrations of one name
 * both survive the merge; every replica picks the same winner (crdt.h) and
 * reports a conflict; the loser's owner drops its entry unless it was
 * registered with on_conflict "keep". */
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "crdt.h"
#include "hlc.h"
#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "member.h"
#include "metrics.h"
#include "node.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_PATH "/v1/cluster/registry/sync"
#define MAX_PEERS 4096
#define MAX_WATCHERS 256
#define WATCH_QUEUE_MAX (4 * 1024 * 1024)
#define PEER_PENDING_MAX 200000 /* entries; past this, anti-entropy instead */
#define NODE_TIMEOUT_MS 10000
#define BATCH_LINES_MAX 100000
#define SYNC_TICK_MS 100
#define MAX_OWNERS 65536

struct peer {
	char name[FD_MEMBER_NAME_MAX + 1];
	char addr[FD_MEMBER_ADDR_MAX + 1];
	uint64_t id;		 /* its replica id */
	struct fd_crdt *pending; /* deltas not yet sent */
	int in_flight;		 /* a delta send is under way */
	int syncing;		 /* an anti-entropy exchange is under way */
	int needs_sync;
	int alive;
	int fails;	  /* exchanges failed in a row */
	int64_t retry_at; /* no anti-entropy with it before this (backoff) */
};

struct waiter {
	struct registry *reg;
	struct fd_http_req *req;
	char *name;
	struct fd_timer timer;
	struct waiter *prev, *next;
};

struct yield {
	char *name;
	struct fd_crdt_dot dot;
};

struct watcher {
	struct fd_http_req *req;
	char *prefix;
	size_t plen;
};

struct owner {
	uint64_t id;
	char name[FD_MEMBER_NAME_MAX + 1];
};

struct registry {
	struct node *n;
	struct owner *owners; /* replica id -> node name, append-only */
	size_t nowners, last_owner;
	char hdr[FD_MEMBER_NAME_MAX + 48]; /* our X-FD-Replica header */
	struct fd_crdt *c;
	struct fd_crdt *scratch; /* the delta of the operation under way */
	struct fd_hlc hlc;
	uint64_t self;
	struct peer *peers;
	int npeers;
	struct watcher watchers[MAX_WATCHERS];
	int nwatchers;
	struct waiter *waiters;
	struct yield *yields; /* conflicts we lost, to drop after the merge */
	size_t nyields, capyields;
	char **keep; /* names we registered with on_conflict "keep" */
	size_t nkeep, capkeep;
	struct fd_timer sync_timer;
	int64_t sync_interval, next_sync;
	struct call *calls;
	int wake; /* a name appeared: look at the waiters */
	/* the batch under way: its client's scopes, and who it is */
	const struct fd_scopes *batch_scopes;
	char batch_who[160];
	struct {
		uint64_t deltas_sent, deltas_received, delta_errors;
		uint64_t syncs, sync_errors, conflicts, yielded, readopted;
	} stats;
};

static struct registry *reg_of(struct node *n)
{
	return n->registry;
}

static uint64_t id64(const uint8_t *id)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | id[i];
	return v ? v : 1;
}

static void hex64(uint64_t v, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)v);
}

/* Peers */

static struct peer *peer_find(struct registry *r, const char *name)
{
	for (int i = 0; i < r->npeers; i++)
		if (strcmp(r->peers[i].name, name) == 0)
			return &r->peers[i];
	return NULL;
}

/* Which node a replica id belongs to: its first id is the first half of
 * its member id; a node that takes a new one says so in the X-FD-Replica
 * header of what it sends. */
static void owner_learn(struct registry *r, uint64_t id, const char *name)
{
	struct owner *o;

	for (size_t i = 0; i < r->nowners; i++)
		if (r->owners[i].id == id)
			return;
	if (r->nowners == MAX_OWNERS)
		return;
	o = realloc(r->owners, (r->nowners + 1) * sizeof(*o));
	if (!o)
		return;
	r->owners = o;
	r->owners[r->nowners].id = id;
	snprintf(r->owners[r->nowners].name, sizeof(o->name), "%s", name);
	r->nowners++;
}

static const char *owner_name(struct registry *r, uint64_t id)
{
	if (id == r->self)
		return r->n->name;
	if (r->last_owner < r->nowners && r->owners[r->last_owner].id == id)
		return r->owners[r->last_owner].name;
	for (size_t i = 0; i < r->nowners; i++)
		if (r->owners[i].id == id) {
			r->last_owner = i;
			return r->owners[i].name;
		}
	return NULL;
}

static void set_self(struct registry *r, uint64_t id)
{
	char hex[17];

	r->self = id;
	owner_learn(r, id, r->n->name);
	hex64(id, hex);
	snprintf(r->hdr, sizeof(r->hdr), "X-FD-Replica: %s %s", hex, r->n->name);
}

/* Reads the sender's "X-FD-Replica: ID NAME" header. */
static void owner_from_header(struct registry *r, struct fd_http_req *req)
{
	const char *h = fd_http_header(req, "X-FD-Replica");
	unsigned long long id;
	int off = 0;

	if (h && sscanf(h, "%16llx %n", &id, &off) == 1 && off > 0 && h[off] && id)
		owner_learn(r, id, h + off);
}

/* JSON of entries */

/* Appends the fields of one entry ("value": … "persistent": …) as JSON. */
static int entry_fields_raw(struct registry *r, struct fd_buf *b,
			    const struct fd_crdt_entry *e)
{
	char tail[128], hlc[FD_HLC_STR_LEN], id[17];
	const char *owner = owner_name(r, e->dot.node);

	fd_hlc_format(e->hlc, hlc, sizeof(hlc));
	hex64(e->dot.node, id);
	if (fd_buf_append(b, "\"value\":", 8) < 0 ||
	    fd_buf_append(b, e->value, e->value_len) < 0 ||
	    fd_buf_append(b, ",\"owner\":", 9) < 0 ||
	    (owner ? fd_json_append_str(b, owner, strlen(owner))
		   : fd_buf_append(b, "null", 4)) < 0)
		return -1;
	snprintf(tail, sizeof(tail),
		 ",\"owner_id\":\"%s\",\"hlc\":\"%s\",\"persistent\":%s", id,
		 hlc, e->persistent ? "true" : "false");
	return fd_buf_append(b, tail, strlen(tail));
}

/* The same fields added to an object (events). */
static void add_entry_fields(struct registry *r, struct json_object *o,
			     const struct fd_crdt_entry *e)
{
	struct fd_buf b = FD_BUF_INIT(2 * FD_CRDT_VALUE_MAX);
	struct json_object *f = NULL;

	if (fd_buf_append(&b, "{", 1) == 0 && entry_fields_raw(r, &b, e) == 0 &&
	    fd_buf_append(&b, "}", 1) == 0)
		f = fd_json_parse(b.data, b.len, NULL);
	fd_buf_release(&b);
	if (!f)
		return;
	json_object_object_foreach(f, k, v)
		json_object_object_add(o, k, json_object_get(v));
	json_object_put(f);
}

/* Appends the record of a name (its winner, and the losers kept as
 * "conflicts") as one JSON line without the newline. Written by hand: the
 * hot path of lists and batch lookups. */
static int entry_line(struct registry *r, struct fd_buf *b,
		      const struct fd_crdt_name *nm)
{
	if (fd_buf_append(b, "{\"type\":\"entry\",\"name\":", 23) < 0 ||
	    fd_json_append_str(b, nm->name, nm->len) < 0 ||
	    fd_buf_append(b, ",", 1) < 0 ||
	    entry_fields_raw(r, b, &nm->entries[0]) < 0)
		return -1;
	if (nm->n > 1) {
		if (fd_buf_append(b, ",\"conflicts\":[", 14) < 0)
			return -1;
		for (uint16_t i = 1; i < nm->n; i++)
			if (fd_buf_append(b, i > 1 ? ",{" : "{", i > 1 ? 2 : 1) < 0 ||
			    entry_fields_raw(r, b, &nm->entries[i]) < 0 ||
			    fd_buf_append(b, "}", 1) < 0)
				return -1;
		if (fd_buf_append(b, "]", 1) < 0)
			return -1;
	}
	return fd_buf_append(b, "}", 1);
}

/* The same record as an object (for single answers). */
static struct json_object *entry_json(struct registry *r,
				      const struct fd_crdt_name *nm)
{
	struct fd_buf b =
		FD_BUF_INIT(FD_CRDT_VALUE_MAX * (FD_CRDT_MAX_PER_NAME + 1));
	struct json_object *o = NULL;

	if (entry_line(r, &b, nm) == 0)
		o = fd_json_parse(b.data, b.len, NULL);
	fd_buf_release(&b);
	return o ? o : fd_json_record("entry");
}

/* Watchers and waiters */

static void watch_publish(struct registry *r, const char *name, struct json_object *o)
{
	const char *line;
	size_t len, nlen = strlen(name);
	char ts[FD_TS_LEN];

	if (r->nwatchers == 0)
		return;
	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
	line = fd_json_str(o, &len);
	for (int i = 0; i < r->nwatchers; i++) {
		struct watcher *w = &r->watchers[i];

		if (w->plen > nlen || memcmp(w->prefix, name, w->plen) != 0)
			continue;
		if (fd_http_stream_write(w->req, line, len) < 0 ||
		    fd_http_stream_write(w->req, "\n", 1) < 0) {
			/* Too slow to keep up: cut off rather than skip events. */
			fd_warnlog("registry: dropping a watcher %zu bytes behind",
				   fd_http_stream_queued(w->req));
			fd_http_stream_end(w->req);
			free(w->prefix);
			r->watchers[i--] = r->watchers[--r->nwatchers];
		}
	}
}

static void waiter_free(struct waiter *w)
{
	struct registry *r = w->reg;

	fd_timer_disarm(r->n->loop, &w->timer);
	if (w->prev)
		w->prev->next = w->next;
	else
		r->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	free(w->name);
	free(w);
}

static void wake_waiters(struct registry *r)
{
	struct waiter *w = r->waiters, *next;

	r->wake = 0;
	for (; w; w = next) {
		const struct fd_crdt_name *nm;

		next = w->next;
		nm = fd_crdt_lookup(r->c, w->name, strlen(w->name));
		if (!nm || nm->n == 0)
			continue;
		fd_http_on_close(w->req, NULL, NULL);
		fd_http_reply_json(w->req, 200, entry_json(r, nm));
		waiter_free(w);
	}
}

static int keeps(struct registry *r, const char *name)
{
	for (size_t i = 0; i < r->nkeep; i++)
		if (strcmp(r->keep[i], name) == 0)
			return 1;
	return 0;
}

static void set_keep(struct registry *r, const char *name, int keep)
{
	for (size_t i = 0; i < r->nkeep; i++) {
		if (strcmp(r->keep[i], name) != 0)
			continue;
		if (!keep) {
			free(r->keep[i]);
			r->keep[i] = r->keep[--r->nkeep];
		}
		return;
	}
	if (!keep)
		return;
	if (r->nkeep == r->capkeep) {
		size_t cap = r->capkeep ? r->capkeep * 2 : 8;
		char **k = realloc(r->keep, cap * sizeof(*k));

		if (!k)
			return;
		r->keep = k;
		r->capkeep = cap;
	}
	r->keep[r->nkeep] = strdup(name);
	if (r->keep[r->nkeep])
		r->nkeep++;
}

/* The event record of a change, for the watchers. */
static void publish_event(struct registry *r, const struct fd_crdt_event *ev)
{
	struct json_object *o = fd_json_record("event");
	static const char *const names[] = {"registered", "updated",
					    "unregistered", "conflict"};

	fd_debug("registry: %s %s %016llx%s%016llx", names[ev->type], ev->name,
		 (unsigned long long)ev->entry->dot.node, ev->other ? " vs " : " ",
		 ev->other ? (unsigned long long)ev->other->dot.node : 0ULL);
	json_object_object_add(o, "event", json_object_new_string(names[ev->type]));
	json_object_object_add(o, "name", json_object_new_string(ev->name));
	switch (ev->type) {
	case FD_CRDT_REGISTERED:
	case FD_CRDT_UPDATED: add_entry_fields(r, o, ev->entry); break;
	case FD_CRDT_UNREGISTERED: {
		const char *owner = owner_name(r, ev->entry->dot.node);

		json_object_object_add(
			o, "owner", owner ? json_object_new_string(owner) : NULL);
		break;
	}
	case FD_CRDT_CONFLICT: {
		struct json_object *w = json_object_new_object();
		struct json_object *l = json_object_new_object();

		add_entry_fields(r, w, ev->entry);
		add_entry_fields(r, l, ev->other);
		json_object_object_add(o, "winner", w);
		json_object_object_add(o, "loser", l);
		break;
	}
	}
	watch_publish(r, ev->name, o);
	json_object_put(o);
}

/* Called by the CRDT after each change of a name (no calls back into it).
 * The event record is built only when someone watches: building it (the
 * value parsed back into JSON) was a sixth of a bulk registration's cost. */
static void on_crdt_event(void *arg, const struct fd_crdt_event *ev)
{
	struct registry *r = arg;

	if (r->nwatchers > 0)
		publish_event(r, ev);
	if (ev->type == FD_CRDT_CONFLICT) {
		r->stats.conflicts++;
		fd_info("registry: conflict on '%s': %s wins over %s", ev->name,
			owner_name(r, ev->entry->dot.node)
				? owner_name(r, ev->entry->dot.node)
				: "?",
			owner_name(r, ev->other->dot.node)
				? owner_name(r, ev->other->dot.node)
				: "?");
		if (ev->other->dot.node == r->self && !keeps(r, ev->name) &&
		    r->nyields < 65536) {
			if (r->nyields == r->capyields) {
				size_t cap = r->capyields ? r->capyields * 2 : 8;
				struct yield *y =
					realloc(r->yields, cap * sizeof(*y));

				if (!y)
					return;
				r->yields = y;
				r->capyields = cap;
			}
			r->yields[r->nyields].name = strdup(ev->name);
			r->yields[r->nyields].dot = ev->other->dot;
			if (r->yields[r->nyields].name)
				r->nyields++;
		}
	}
	if (ev->type == FD_CRDT_REGISTERED || ev->type == FD_CRDT_UPDATED)
		r->wake = 1;
}

/* Replication */

static void flush_peer(struct registry *r, struct peer *p);
static void sync_peer(struct registry *r, struct peer *p);

/* An exchange with p failed: anti-entropy will repair what it missed, after
 * a backoff that doubles with each failure in a row (up to 5 s), so a peer
 * that refuses what we send is not hammered. */
static void peer_failed(struct registry *r, struct peer *p)
{
	int64_t backoff = (int64_t)100 << (p->fails < 6 ? p->fails : 6);

	p->fails++;
	p->needs_sync = 1;
	p->retry_at = fd_loop_now(r->n->loop) + (backoff > 5000 ? 5000 : backoff);
}

static void yields_apply(struct registry *r);

/* After every change: drops the conflicts we lost, answers the lookups
 * waiting for a name that appeared, and hands the delta of it all to every
 * alive peer. */
static void distribute(struct registry *r)
{
	yields_apply(r);
	if (r->wake)
		wake_waiters(r);
	if (fd_crdt_empty(r->scratch))
		return;
	for (int i = 0; i < r->npeers; i++) {
		struct peer *p = &r->peers[i];

		if (!p->alive || p->needs_sync)
			continue;
		if (fd_crdt_merge(p->pending, r->scratch) < 0 ||
		    fd_crdt_entries(p->pending) > PEER_PENDING_MAX) {
			/* Past the cap (a slow or stuck peer): anti-entropy
			 * sends what it lacks once it answers again. */
			fd_crdt_clear(p->pending);
			p->needs_sync = 1;
		}
		flush_peer(r, p);
	}
	fd_crdt_clear(r->scratch);
}

/* A request to a peer in flight. Kept in a list: at shutdown the HTTP
 * client drops them without calling back. */
struct call {
	struct registry *reg;
	char name[FD_MEMBER_NAME_MAX + 1];
	struct call *prev, *next;
};

static struct call *call_new(struct registry *r, struct peer *p)
{
	struct call *c = calloc(1, sizeof(*c));

	if (c) {
		c->reg = r;
		memcpy(c->name, p->name, sizeof(c->name));
		c->next = r->calls;
		if (r->calls)
			r->calls->prev = c;
		r->calls = c;
	}
	return c;
}

static void call_free(struct call *c)
{
	struct registry *r = c->reg;

	if (c->prev)
		c->prev->next = c->next;
	else
		r->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void delta_sent(const struct fd_http_resp *resp, void *arg)
{
	struct call *c = arg;
	struct registry *r = c->reg;
	struct peer *p = peer_find(r, c->name);

	call_free(c);
	if (!p)
		return;
	p->in_flight = 0;
	if (resp->error || resp->status != 200) {
		r->stats.delta_errors++;
		fd_debug("registry: delta to %s failed: %s", p->name,
			 resp->error ? resp->error : resp->body);
		peer_failed(r, p);
		fd_crdt_clear(p->pending);
	} else {
		r->stats.deltas_sent++;
		p->fails = 0;
	}
	flush_peer(r, p);
}

/* Sends a delta group or a repair to p's delta route. Returns 0 or -1. */
static int send_crdt(struct registry *r, struct peer *p, const struct fd_crdt *d)
{
	const char *const hdrs[] = {"Content-Type: application/octet-stream",
				    r->hdr, NULL};
	unsigned char *buf;
	size_t len;
	char url[160];
	struct call *c;
	int rc = -1;

	if (fd_http_url(url, sizeof(url), p->addr, REGISTRY_DELTA_PATH) < 0 ||
	    fd_crdt_encode(d, &buf, &len) < 0)
		return -1;
	c = call_new(r, p);
	if (c && fd_http_request(r->n->client, "POST", url, (const char *)buf, len,
				 hdrs, NODE_TIMEOUT_MS, delta_sent, c, NULL)) {
		p->in_flight = 1;
		rc = 0;
	} else if (c) {
		call_free(c);
	}
	free(buf);
	return rc;
}

static void flush_peer(struct registry *r, struct peer *p)
{
	if (!p->alive || p->in_flight || p->syncing || p->needs_sync ||
	    fd_crdt_empty(p->pending))
		return;
	if (send_crdt(r, p, p->pending) == 0)
		fd_crdt_clear(p->pending);
}

/* A merge of remote data. If it marks us gone, our ephemeral entries go
 * with it: take a new replica id and register them again. */
static int merge_remote(struct registry *r, const struct fd_crdt *d)
{
	const struct fd_crdt_name **names = NULL;
	struct {
		char *name, *value;
		size_t len, vlen;
		uint64_t hlc;
	} *mine = NULL;
	size_t nnames = 0, nmine = 0;
	int rc, gone = fd_crdt_is_gone(d, r->self) &&
		       !fd_crdt_is_gone(r->c, r->self);

	if (gone && fd_crdt_list(r->c, "", 0, &names, &nnames) == 0 && nnames) {
		mine = calloc(nnames, sizeof(*mine));
		for (size_t i = 0; mine && i < nnames; i++) {
			const struct fd_crdt_entry *e = &names[i]->entries[0];

			for (uint16_t k = 0; k < names[i]->n; k++)
				if (names[i]->entries[k].dot.node == r->self)
					e = &names[i]->entries[k];
			if (e->dot.node != r->self || e->persistent)
				continue;
			mine[nmine].name = strdup(names[i]->name);
			mine[nmine].len = names[i]->len;
			mine[nmine].value = strndup(e->value, e->value_len);
			mine[nmine].vlen = e->value_len;
			mine[nmine].hlc = e->hlc;
			nmine++;
		}
	}
	free(names);
	fd_debug("registry: merging kind %d: %zu names, %zu entries%s",
		 (int)fd_crdt_kind(d), fd_crdt_names(d), fd_crdt_entries(d),
		 gone ? " (we are gone in it)" : "");
	rc = fd_crdt_merge(r->c, d);
	if (gone) {
		uint64_t id;

		do
			RAND_bytes((unsigned char *)&id, sizeof(id));
		while (!id || fd_crdt_set_self(r->c, id) < 0);
		fd_warnlog("registry: the cluster took this node for gone; "
			   "registering its %zu names again as %016llx",
			   nmine, (unsigned long long)id);
		set_self(r, id);
		/* Under the new id, next to what others hold (concurrent, as
		 * it was), with the original time, so a conflict is still won
		 * by the registration that came first. */
		for (size_t i = 0; i < nmine; i++) {
			fd_crdt_add(r->c, mine[i].name, mine[i].len,
				    mine[i].value, mine[i].vlen, mine[i].hlc, 0,
				    r->scratch, NULL);
			r->stats.readopted++;
		}
		/* Everyone must learn the new id's entries, and the old ones
		 * of ours they may still hold are filtered by the gone set. */
		for (int i = 0; i < r->npeers; i++)
			r->peers[i].needs_sync = 1;
	}
	for (size_t i = 0; i < nmine; i++) {
		free(mine[i].name);
		free(mine[i].value);
	}
	free(mine);
	distribute(r);
	if (gone)
		for (int i = 0; i < r->npeers; i++)
			sync_peer(r, &r->peers[i]);
	return rc;
}

/* Drops the entries of ours that lost a conflict (queued by the event
 * callback, which may not call back into the CRDT). */
static void yields_apply(struct registry *r)
{
	for (size_t i = 0; i < r->nyields; i++) {
		struct yield *y = &r->yields[i];

		if (fd_crdt_remove_dot(r->c, y->name, strlen(y->name), y->dot,
				       r->scratch) == 1) {
			r->stats.yielded++;
			fd_info("registry: yielded '%s' to the conflict's winner",
				y->name);
		}
		free(y->name);
	}
	r->nyields = 0;
}

static void h_delta(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;
	struct fd_err err;
	size_t len;
	const char *body = fd_http_body(req, &len);
	struct fd_crdt *d = fd_crdt_decode(body, len, NULL, &err);

	owner_from_header(r, req);
	if (!d) {
		fd_warnlog("registry: undecodable delta from %s: %s",
			   fd_http_peer(req), err.msg);
		fd_http_reply_error(req, 400, "undecodable registry data: %s",
				    err.msg);
		return;
	}
	if (merge_remote(r, d) < 0 && errno == EINVAL) {
		fd_crdt_free(d);
		fd_http_reply_error(req, 400, "registry data not mergeable here");
		return;
	}
	fd_crdt_free(d);
	r->stats.deltas_received++;
	/* after the watch events this delta made: local watchers first */
	fd_http_reply_after(req, 200, "application/json", "{}\n", 3);
}

/* Anti-entropy. The request body is our digest; the answer is
 * u32 length + the repair for us, then the answerer's digest. */

static void sync_done(const struct fd_http_resp *resp, void *arg)
{
	struct call *c = arg;
	struct registry *r = c->reg;
	struct peer *p = peer_find(r, c->name);
	const unsigned char *b = (const unsigned char *)resp->body;
	struct fd_crdt *repair = NULL, *digest = NULL, *back = NULL;
	struct fd_err err = {.msg = "short answer"};
	uint32_t rlen = 0;

	call_free(c);
	if (!p)
		return;
	p->syncing = 0;
	if (!resp->error && resp->status == 200 && resp->len >= 4) {
		rlen = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		       (uint32_t)b[2] << 8 | b[3];
		if (rlen <= resp->len - 4 &&
		    (repair = fd_crdt_decode(b + 4, rlen, NULL, &err)) &&
		    (digest = fd_crdt_decode(b + 4 + rlen, resp->len - 4 - rlen,
					     NULL, &err))) {
			if (merge_remote(r, repair) < 0)
				fd_debug("registry: repair from %s not merged: %s",
					 p->name, strerror(errno));
			back = fd_crdt_repair(r->c, digest);
		}
	}
	if (!back) {
		r->stats.sync_errors++;
		fd_debug("registry: sync with %s failed: %s", p->name,
			 resp->error ? resp->error : err.msg);
		peer_failed(r, p);
	} else {
		r->stats.syncs++;
		/* What it lacks goes to the delta route, which merges repairs
		 * answering its own digest. */
		if (!fd_crdt_empty(back))
			send_crdt(r, p, back);
	}
	fd_crdt_free(repair);
	fd_crdt_free(digest);
	fd_crdt_free(back);
	flush_peer(r, p);
}

static void sync_peer(struct registry *r, struct peer *p)
{
	const char *const hdrs[] = {"Content-Type: application/octet-stream",
				    r->hdr, NULL};
	struct fd_crdt *digest;
	unsigned char *buf;
	size_t len;
	char url[160];
	struct call *c;

	if (!p->alive || p->syncing || p->in_flight ||
	    fd_loop_now(r->n->loop) < p->retry_at)
		return;
	digest = fd_crdt_digest(r->c);
	if (!digest || fd_http_url(url, sizeof(url), p->addr, SYNC_PATH) < 0 ||
	    fd_crdt_encode(digest, &buf, &len) < 0) {
		fd_crdt_free(digest);
		return;
	}
	fd_crdt_free(digest);
	c = call_new(r, p);
	/* Anything pending is covered by the exchange. */
	fd_crdt_clear(p->pending);
	p->needs_sync = 0;
	if (c && fd_http_request(r->n->client, "POST", url, (const char *)buf,
				 len, hdrs, NODE_TIMEOUT_MS, sync_done, c, NULL)) {
		p->syncing = 1;
	} else {
		if (c)
			call_free(c);
		p->needs_sync = 1;
	}
	free(buf);
}

static void h_sync(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;
	struct fd_err err;
	size_t len, rlen, dlen;
	const char *body = fd_http_body(req, &len);
	struct fd_crdt *theirs = fd_crdt_decode(body, len, NULL, &err);
	struct fd_crdt *repair = NULL, *ours = NULL;
	unsigned char *rbuf = NULL, *dbuf = NULL, *out;

	owner_from_header(r, req);
	if (!theirs || fd_crdt_kind(theirs) != FD_CRDT_DIGEST) {
		fd_crdt_free(theirs);
		fd_http_reply_error(req, 400, "expected a registry digest");
		return;
	}
	repair = fd_crdt_repair(r->c, theirs);
	ours = fd_crdt_digest(r->c);
	fd_crdt_free(theirs);
	if (!repair || !ours || fd_crdt_encode(repair, &rbuf, &rlen) < 0 ||
	    fd_crdt_encode(ours, &dbuf, &dlen) < 0 || rlen > UINT32_MAX ||
	    !(out = malloc(4 + rlen + dlen))) {
		fd_http_reply_error(req, 500, "out of memory");
	} else {
		out[0] = (unsigned char)(rlen >> 24);
		out[1] = (unsigned char)(rlen >> 16);
		out[2] = (unsigned char)(rlen >> 8);
		out[3] = (unsigned char)rlen;
		memcpy(out + 4, rbuf, rlen);
		memcpy(out + 4 + rlen, dbuf, dlen);
		fd_http_reply(req, 200, "application/octet-stream",
			      (const char *)out, 4 + rlen + dlen);
		free(out);
	}
	free(rbuf);
	free(dbuf);
	fd_crdt_free(repair);
	fd_crdt_free(ours);
}

/* Every tick: the peers due for anti-entropy; every sync interval, one
 * random alive peer as well, so a delta lost without any error is repaired
 * too. */
static void on_sync_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct registry *r = arg;
	int64_t now = fd_loop_now(loop);
	int alive = 0;

	for (int i = 0; i < r->npeers; i++) {
		alive += r->peers[i].alive;
		if (r->peers[i].needs_sync)
			sync_peer(r, &r->peers[i]);
	}
	if (alive > 0 && now >= r->next_sync) {
		int pick = (int)((uint64_t)fd_mono_us() % (uint64_t)alive);

		r->next_sync = now + r->sync_interval;
		for (int i = 0; i < r->npeers; i++) {
			if (r->peers[i].alive && pick-- == 0) {
				sync_peer(r, &r->peers[i]);
				break;
			}
		}
	}
	fd_timer_arm(loop, t, SYNC_TICK_MS);
}

/* Membership */

void registry_member_changed(struct node *n, const struct fd_member_event *ev)
{
	struct registry *r = reg_of(n);
	struct peer *p;
	uint64_t id = id64(ev->id);

	if (!r)
		return;
	p = peer_find(r, ev->name);
	if (!p && ev->new_state != FD_MEMBER_ALIVE)
		return;
	if (!p) {
		struct peer *np;

		if (r->npeers == MAX_PEERS)
			return;
		np = realloc(r->peers, (size_t)(r->npeers + 1) * sizeof(*np));
		if (!np)
			return;
		r->peers = np;
		p = &r->peers[r->npeers];
		memset(p, 0, sizeof(*p));
		p->pending = fd_crdt_delta_new(NULL);
		if (!p->pending)
			return;
		snprintf(p->name, sizeof(p->name), "%s", ev->name);
		p->id = id;
		r->npeers++;
	}
	owner_learn(r, id, ev->name);
	snprintf(p->addr, sizeof(p->addr), "%s", ev->addr);
	if (p->id != id) {
		/* A new instance: the old one's ephemeral entries go. */
		fd_crdt_node_gone(r->c, p->id, r->scratch);
		p->id = id;
	}
	switch (ev->new_state) {
	case FD_MEMBER_ALIVE:
	case FD_MEMBER_SUSPECT:
		if (!p->alive) {
			p->alive = 1;
			p->needs_sync = 1;
			p->fails = 0;
			p->retry_at = 0;
			fd_crdt_clear(p->pending);
			sync_peer(r, p);
		}
		break;
	case FD_MEMBER_FAILED:
	case FD_MEMBER_LEFT:
		fd_crdt_node_gone(r->c, id, r->scratch);
		/* fall through */
	default:
		p->alive = 0;
		fd_crdt_clear(p->pending);
		break;
	}
	distribute(r);
}

/* The API */

/* The name a request is about: ?name= or the rest of the path. NULL (and a
 * 400 sent) when it is missing or invalid. */
static const char *req_name(struct fd_http_req *req)
{
	const char *name = fd_http_query(req, "name");

	if (!name || !*name)
		name = fd_http_subpath(req);
	if (!*name) {
		fd_http_reply_error(req, 400, "a name is needed (?name=NAME)");
		return NULL;
	}
	if (!fd_crdt_name_valid(name, strlen(name))) {
		fd_http_reply_error(req, 400,
				    "invalid name: 1 to %d bytes of UTF-8 "
				    "without control characters",
				    FD_CRDT_NAME_MAX);
		return NULL;
	}
	return name;
}

/* Registers one name. Returns the HTTP status and, in *out, the record to
 * answer with (an entry, or an error object) - except on success when line
 * is not NULL: the entry is then appended to line as JSON text and *out
 * stays NULL (the batch path, which writes records without objects). */
static unsigned do_register(struct registry *r, const char *name,
			    struct json_object *value, int replace, int persistent,
			    int keep, struct json_object **out, struct fd_buf *line)
{
	const struct fd_crdt_name *nm;
	const char *v;
	size_t vlen;
	int existed;

	*out = NULL;
	if (!fd_crdt_name_valid(name, strlen(name))) {
		*out = json_object_new_object();
		json_object_object_add(
			*out, "error",
			json_object_new_string("invalid name: 1 to 255 bytes of "
					       "UTF-8 without control characters"));
		return 400;
	}
	v = value ? fd_json_str(value, &vlen) : "null";
	if (!value)
		vlen = 4;
	if (vlen > FD_CRDT_VALUE_MAX) {
		char msg[96];

		snprintf(msg, sizeof(msg), "value larger than %d bytes",
			 FD_CRDT_VALUE_MAX);
		*out = json_object_new_object();
		json_object_object_add(*out, "error", json_object_new_string(msg));
		return 413;
	}
	nm = fd_crdt_lookup(r->c, name, strlen(name));
	existed = nm && nm->n > 0;
	if (existed && !replace) {
		char msg[320];

		snprintf(msg, sizeof(msg), "name '%s' is already registered", name);
		*out = json_object_new_object();
		json_object_object_add(*out, "error", json_object_new_string(msg));
		json_object_object_add(*out, "entry", entry_json(r, nm));
		return 409;
	}
	if (fd_crdt_register(r->c, name, strlen(name), v, vlen,
			     fd_hlc_now(&r->hlc, (uint64_t)(fd_wall_us() / 1000)),
			     persistent, r->scratch, NULL) < 0) {
		*out = json_object_new_object();
		json_object_object_add(
			*out, "error",
			json_object_new_string(errno == ENOSPC ? "registry full"
							       : "out of memory"));
		return errno == ENOSPC ? 507 : 500;
	}
	set_keep(r, name, keep);
	nm = fd_crdt_lookup(r->c, name, strlen(name));
	if (line) {
		size_t mark = line->len;

		/* the entry's closing brace becomes a comma */
		const char *tail = existed ? ",\"replaced\":true}\n"
					   : ",\"created\":true}\n";

		if (entry_line(r, line, nm) == 0) {
			line->len--;
			fd_buf_append(line, tail, strlen(tail));
		} else {
			line->len = mark;
		}
		return existed ? 200 : 201;
	}
	*out = entry_json(r, nm);
	json_object_object_add(*out, existed ? "replaced" : "created",
			       json_object_new_boolean(1));
	return existed ? 200 : 201;
}

static int parse_flags(struct json_object *o, int *replace, int *persistent,
		       int *keep, const char **why)
{
	struct json_object *v;
	const char *oc;

	*replace = *persistent = *keep = 0;
	if (json_object_object_get_ex(o, "replace", &v))
		*replace = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "persistent", &v))
		*persistent = json_object_get_boolean(v);
	oc = fd_json_get_str(o, "on_conflict");
	if (oc && strcmp(oc, "keep") == 0)
		*keep = 1;
	else if (oc && strcmp(oc, "yield") != 0) {
		*why = "on_conflict must be \"yield\" or \"keep\"";
		return -1;
	}
	return 0;
}

static void h_put(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;
	struct json_object *body = fd_http_json(req), *value = NULL, *out;
	const char *name = req_name(req), *why = NULL;
	int replace, persistent, keep;
	unsigned status;

	if (!name || !node_allow(r->n, req, FD_SCOPE_REGISTER, name, strlen(name)))
		return;
	if (!json_object_is_type(body, json_type_object) ||
	    parse_flags(body, &replace, &persistent, &keep, &why) < 0) {
		fd_http_reply_error(req, 400, "%s",
				    why ? why
					: "expected {\"value\": …, \"replace\": "
					  "bool, \"persistent\": bool}");
		return;
	}
	json_object_object_get_ex(body, "value", &value);
	status = do_register(r, name, value, replace, persistent, keep, &out, NULL);
	fd_http_reply_json(req, status, out);
	distribute(r);
}

static void waiter_timeout(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct waiter *w = arg;
	struct json_object *o = json_object_new_object();

	(void)loop;
	(void)t;
	json_object_object_add(o, "error", json_object_new_string("not found"));
	json_object_object_add(o, "name", json_object_new_string(w->name));
	fd_http_on_close(w->req, NULL, NULL);
	fd_http_reply_json(w->req, 404, o);
	waiter_free(w);
}

static void waiter_closed(struct fd_http_req *req, void *arg)
{
	(void)req;
	waiter_free(arg);
}

static void lookup(struct registry *r, struct fd_http_req *req, const char *name)
{
	const struct fd_crdt_name *nm = fd_crdt_lookup(r->c, name, strlen(name));
	const char *wait = fd_http_query(req, "wait");
	long long ms = 0;
	struct json_object *o;
	struct waiter *w;

	if (nm && nm->n > 0) {
		fd_http_reply_json(req, 200, entry_json(r, nm));
		return;
	}
	if (wait && fd_parse_int(wait, 0, 3600 * 1000, &ms) < 0) {
		fd_http_reply_error(req, 400, "wait: milliseconds, 0 to 3600000");
		return;
	}
	if (ms > 0 && (w = calloc(1, sizeof(*w))) && (w->name = strdup(name))) {
		w->reg = r;
		w->req = req;
		fd_timer_init(&w->timer, waiter_timeout, w);
		fd_timer_arm(r->n->loop, &w->timer, ms);
		w->next = r->waiters;
		if (r->waiters)
			r->waiters->prev = w;
		r->waiters = w;
		fd_http_defer(req);
		fd_http_on_close(req, waiter_closed, w);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string("not found"));
	json_object_object_add(o, "name", json_object_new_string(name));
	fd_http_reply_json(req, 404, o);
}

static void list(struct registry *r, struct fd_http_req *req)
{
	const char *prefix = fd_http_query(req, "prefix");
	const struct fd_crdt_name **names;
	struct fd_buf out = FD_BUF_INIT((size_t)1 << 31);
	size_t n;

	if (!prefix)
		prefix = "";
	if (fd_crdt_list(r->c, prefix, strlen(prefix), &names, &n) < 0) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (names[i]->n == 0)
			continue;
		if (entry_line(r, &out, names[i]) < 0 ||
		    fd_buf_append(&out, "\n", 1) < 0)
			break;
	}
	free(names);
	fd_http_reply(req, 200, "application/x-ndjson", fd_buf_str(&out), out.len);
	fd_buf_release(&out);
}

static void h_get(struct fd_http_req *req, void *arg)
{
	const char *name = fd_http_query(req, "name");

	if (!name && !*fd_http_subpath(req)) {
		list(arg, req);
		return;
	}
	name = req_name(req);
	if (name)
		lookup(arg, req, name);
}

static void h_delete(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;
	const char *name = req_name(req), *force = fd_http_query(req, "force");
	const struct fd_crdt_name *nm;
	struct json_object *o;
	int removed;

	if (!name || !node_allow(r->n, req, FD_SCOPE_REGISTER, name, strlen(name)))
		return;
	if (force && strcmp(force, "0") != 0) {
		/* taking another node's name is an admin's act, and audited */
		if (!node_allow(r->n, req, FD_SCOPE_ADMIN, NULL, 0))
			return;
		node_audit_request(r->n, req, NULL);
	}
	nm = fd_crdt_lookup(r->c, name, strlen(name));
	if (!nm || nm->n == 0) {
		o = json_object_new_object();
		json_object_object_add(o, "error",
				       json_object_new_string("not found"));
		json_object_object_add(o, "name", json_object_new_string(name));
		fd_http_reply_json(req, 404, o);
		return;
	}
	if (nm->entries[0].dot.node != r->self &&
	    !(force && strcmp(force, "0") != 0)) {
		const char *owner = owner_name(r, nm->entries[0].dot.node);

		fd_http_reply_error(req, 403,
				    "'%s' is owned by node '%s' (use --force)",
				    name, owner ? owner : "?");
		return;
	}
	removed = fd_crdt_unregister(r->c, name, strlen(name), r->scratch);
	set_keep(r, name, 0);
	if (force && nm && removed > 0)
		fd_info("registry: '%s' unregistered by force from %s", name,
			fd_http_peer(req));
	o = fd_json_record("entry");
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "unregistered", json_object_new_boolean(1));
	json_object_object_add(o, "removed", json_object_new_int(removed));
	fd_http_reply_json(req, 200, o);
	distribute(r);
}

static void watcher_closed(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;

	for (int i = 0; i < r->nwatchers; i++)
		if (r->watchers[i].req == req) {
			free(r->watchers[i].prefix);
			r->watchers[i] = r->watchers[--r->nwatchers];
			return;
		}
}

static void h_watch(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;
	const char *prefix = fd_http_query(req, "prefix");
	struct watcher *w;

	if (r->nwatchers == MAX_WATCHERS) {
		fd_http_reply_error(req, 503, "too many watchers (%d)", MAX_WATCHERS);
		return;
	}
	w = &r->watchers[r->nwatchers];
	w->prefix = strdup(prefix ? prefix : "");
	if (!w->prefix || fd_http_stream_begin(req, "application/x-ndjson",
					       WATCH_QUEUE_MAX) < 0) {
		free(w->prefix);
		fd_http_reply_error(req, 500, "unable to start the stream");
		return;
	}
	w->plen = strlen(w->prefix);
	w->req = req;
	r->nwatchers++;
	fd_http_on_close(req, watcher_closed, r);
}

/* Batches: ndjson bodies, one answer line per input line. */

static int append_line(struct fd_buf *out, struct json_object *o)
{
	size_t len;
	const char *s = fd_json_str(o, &len);

	return fd_buf_append(out, s, len) < 0 || fd_buf_append(out, "\n", 1) < 0
		       ? -1
		       : 0;
}

static struct json_object *line_error(unsigned long line, const char *name,
				      unsigned status, const char *msg)
{
	struct json_object *o = fd_json_record("error");

	json_object_object_add(o, "line", json_object_new_int64((int64_t)line));
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

/* Calls fn for each non-blank line of the body. */
static void each_line(struct fd_http_req *req,
		      void (*fn)(struct registry *r, unsigned long line,
				 const char *s, size_t len, struct fd_buf *out),
		      struct registry *r)
{
	size_t len;
	const char *body = fd_http_body(req, &len), *end = body + len, *p = body;
	struct fd_buf out = FD_BUF_INIT((size_t)1 << 31);
	unsigned long line = 0;

	while (p < end && line < BATCH_LINES_MAX) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		line++;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l > 0)
			fn(r, line, p, l, &out);
		p += (nl ? (size_t)(nl - p) + 1 : (size_t)(end - p));
	}
	if (p < end) {
		struct json_object *e = line_error(line + 1, NULL, 413,
						   "too many lines in one batch");

		append_line(&out, e);
		json_object_put(e);
	}
	fd_http_reply(req, 200, "application/x-ndjson", fd_buf_str(&out), out.len);
	fd_buf_release(&out);
}

static void batch_register_line(struct registry *r, unsigned long line,
				const char *s, size_t len, struct fd_buf *out)
{
	struct fd_err err;
	struct json_object *o = fd_json_parse(s, len, &err), *value = NULL, *res;
	const char *name = fd_json_get_str(o, "name"), *why = NULL;
	int replace, persistent, keep;
	unsigned status;

	if (!o || !json_object_is_type(o, json_type_object) || !name ||
	    parse_flags(o, &replace, &persistent, &keep, &why) < 0) {
		res = line_error(line, name, 400,
				 !o    ? err.msg
				 : why ? why
				       : "expected {\"name\": …, \"value\": …}");
	} else if (!fd_scopes_allow(r->batch_scopes, FD_SCOPE_REGISTER, name,
				    strlen(name))) {
		char msg[512];

		snprintf(msg, sizeof(msg), "forbidden: %s %s register:%s",
			 r->batch_who,
			 strncmp(r->batch_who, "token", 5) ? "lack" : "lacks", name);
		res = line_error(line, name, 403, msg);
	} else {
		json_object_object_get_ex(o, "value", &value);
		status = do_register(r, name, value, replace, persistent, keep,
				     &res, out);
		if (status >= 300) {
			struct json_object *e = line_error(
				line, name, status, fd_json_get_str(res, "error"));

			json_object_put(res);
			res = e;
		}
	}
	if (res)
		append_line(out, res);
	json_object_put(res);
	json_object_put(o);
}

static void h_batch(struct fd_http_req *req, void *arg)
{
	struct registry *r = arg;

	r->batch_scopes = node_scopes(r->n, req, r->batch_who, sizeof(r->batch_who));
	each_line(req, batch_register_line, r);
	r->batch_scopes = NULL;
	distribute(r);
}

static void batch_lookup_line(struct registry *r, unsigned long line,
			      const char *s, size_t len, struct fd_buf *out)
{
	struct json_object *o = fd_json_parse(s, len, NULL), *res;
	const char *name = fd_json_get_str(o, "name");
	const struct fd_crdt_name *nm;

	if (!name) {
		res = line_error(line, NULL, 400, "expected {\"name\": …}");
	} else if ((nm = fd_crdt_lookup(r->c, name, strlen(name))) && nm->n > 0) {
		json_object_put(o);
		if (entry_line(r, out, nm) == 0)
			fd_buf_append(out, "\n", 1);
		return;
	} else {
		res = fd_json_record("entry");
		json_object_object_add(res, "name", json_object_new_string(name));
		json_object_object_add(res, "found", json_object_new_boolean(0));
	}
	append_line(out, res);
	json_object_put(res);
	json_object_put(o);
}

static void h_lookup_batch(struct fd_http_req *req, void *arg)
{
	each_line(req, batch_lookup_line, arg);
}

/* Setup */

int registry_init(struct node *n)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	n->registry = r;
	r->n = n;
	set_self(r, id64(n->id_raw));
	r->c = fd_crdt_new(r->self, NULL);
	r->scratch = fd_crdt_delta_new(NULL);
	if (!r->c || !r->scratch)
		return -1;
	fd_crdt_set_events(r->c, on_crdt_event, r);
	fd_hlc_init(&r->hlc, 0);
	r->sync_interval = strcmp(n->opts->profile, "local") == 0 ? 2000
			   : strcmp(n->opts->profile, "lan") == 0 ? 10000
								  : 30000;
	fd_timer_init(&r->sync_timer, on_sync_timer, r);
	r->next_sync = fd_loop_now(n->loop) + r->sync_interval;
	fd_timer_arm(n->loop, &r->sync_timer, SYNC_TICK_MS);
	return 0;
}

void registry_add_routes(struct node *n)
{
	struct registry *r = reg_of(n);
	struct fd_http_server *s = n->http;

	fd_http_route(s, "POST", REGISTRY_DELTA_PATH, FD_HTTP_LARGE, h_delta, r);
	fd_http_route(s, "POST", SYNC_PATH, FD_HTTP_LARGE, h_sync, r);
	fd_http_route(s, "GET", "/v1/registry/watch", 0, h_watch, r);
	fd_http_route(s, "POST", "/v1/registry/batch",
		      FD_HTTP_LARGE | FD_HTTP_SCOPED, h_batch, r);
	fd_http_route(s, "POST", "/v1/registry/lookup", FD_HTTP_LARGE,
		      h_lookup_batch, r);
	fd_http_route(s, "GET", "/v1/registry", 0, h_get, r);
	fd_http_route(s, "PUT", "/v1/registry", FD_HTTP_JSON | FD_HTTP_SCOPED,
		      h_put, r);
	fd_http_route(s, "DELETE", "/v1/registry", FD_HTTP_SCOPED, h_delete, r);
	fd_http_route(s, "GET", "/v1/registry/", 0, h_get, r);
	fd_http_route(s, "PUT", "/v1/registry/", FD_HTTP_JSON | FD_HTTP_SCOPED,
		      h_put, r);
	fd_http_route(s, "DELETE", "/v1/registry/", FD_HTTP_SCOPED, h_delete, r);
}

/* A short summary of the replica's whole state: a hash of its anti-entropy
 * digest (per writer: its context, live entries and their hash; the gone
 * nodes), which is canonical, so two replicas holding the same state show
 * the same digest. Costs one pass over the writers, not the entries. */
static void add_digest(struct registry *r, struct json_object *o)
{
	struct fd_crdt *d = fd_crdt_digest(r->c);
	unsigned char *buf = NULL;
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	size_t len;
	char hex[17];

	if (d && fd_crdt_encode(d, &buf, &len) == 0) {
		for (size_t i = 0; i < len; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
		hex64(h, hex);
		json_object_object_add(o, "digest", json_object_new_string(hex));
	}
	free(buf);
	fd_crdt_free(d);
}

void registry_add_info(struct node *n, struct json_object *info)
{
	struct registry *r = reg_of(n);
	struct json_object *o = json_object_new_object();
	char id[17];

	hex64(r->self, id);
	json_object_object_add(o, "replica_id", json_object_new_string(id));
	json_object_object_add(
		o, "names", json_object_new_int64((int64_t)fd_crdt_names(r->c)));
	json_object_object_add(o, "entries",
			       json_object_new_int64((int64_t)fd_crdt_entries(r->c)));
	json_object_object_add(o, "mem_bytes",
			       json_object_new_int64((int64_t)fd_crdt_mem(r->c)));
	json_object_object_add(o, "deltas_sent",
			       json_object_new_uint64(r->stats.deltas_sent));
	json_object_object_add(o, "deltas_received",
			       json_object_new_uint64(r->stats.deltas_received));
	json_object_object_add(o, "delta_errors",
			       json_object_new_uint64(r->stats.delta_errors));
	json_object_object_add(o, "syncs", json_object_new_uint64(r->stats.syncs));
	json_object_object_add(o, "sync_errors",
			       json_object_new_uint64(r->stats.sync_errors));
	json_object_object_add(o, "conflicts",
			       json_object_new_uint64(r->stats.conflicts));
	json_object_object_add(o, "yielded",
			       json_object_new_uint64(r->stats.yielded));
	json_object_object_add(o, "watchers", json_object_new_int(r->nwatchers));
	add_digest(r, o);
	json_object_object_add(info, "registry", o);
}

void registry_add_metrics(struct node *n, struct fd_metrics *m)
{
	struct registry *r = reg_of(n);

	fd_metrics_gauge(m, "fd_registry_names", "Names in the registry.",
			 (double)fd_crdt_names(r->c));
	fd_metrics_gauge(m, "fd_registry_entries",
			 "Entries in the registry (a name in conflict has several).",
			 (double)fd_crdt_entries(r->c));
	fd_metrics_gauge(m, "fd_registry_memory_bytes",
			 "Bytes the registry holds.", (double)fd_crdt_mem(r->c));
	fd_metrics_counter(m, "fd_registry_deltas_sent_total",
			   "Delta groups sent to peers.", r->stats.deltas_sent);
	fd_metrics_counter(m, "fd_registry_deltas_received_total",
			   "Delta groups received from peers.",
			   r->stats.deltas_received);
	fd_metrics_counter(m, "fd_registry_delta_errors_total",
			   "Delta groups that failed to go or to merge.",
			   r->stats.delta_errors);
	fd_metrics_counter(m, "fd_registry_syncs_total",
			   "Anti-entropy exchanges done.", r->stats.syncs);
	fd_metrics_counter(m, "fd_registry_sync_errors_total",
			   "Anti-entropy exchanges that failed.",
			   r->stats.sync_errors);
	fd_metrics_counter(m, "fd_registry_conflicts_total",
			   "Conflicts seen (concurrent registrations of a name).",
			   r->stats.conflicts);
	fd_metrics_counter(m, "fd_registry_yielded_total",
			   "Entries of ours dropped after losing a conflict.",
			   r->stats.yielded);
	fd_metrics_gauge(m, "fd_registry_watchers", "Open watch streams.",
			 r->nwatchers);
}

void registry_free(struct node *n)
{
	struct registry *r = reg_of(n);

	if (!r)
		return;
	fd_timer_disarm(n->loop, &r->sync_timer);
	while (r->calls)
		call_free(r->calls);
	while (r->waiters)
		waiter_free(r->waiters);
	for (int i = 0; i < r->nwatchers; i++)
		free(r->watchers[i].prefix);
	for (int i = 0; i < r->npeers; i++)
		fd_crdt_free(r->peers[i].pending);
	for (size_t i = 0; i < r->nyields; i++)
		free(r->yields[i].name);
	for (size_t i = 0; i < r->nkeep; i++)
		free(r->keep[i]);
	free(r->keep);
	free(r->owners);
	free(r->yields);
	free(r->peers);
	fd_crdt_free(r->scratch);
	fd_crdt_free(r->c);
	free(r);
	n->registry = NULL;
}
