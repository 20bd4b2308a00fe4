/* fd-node --discover SPEC: discovery sources (dsource.h) in the node's
 * loop, and joins of what they find.
 *
 * After every poll of a source (answered or not: a failed poll keeps the
 * set it had), every peer of its desired set that is not an alive member
 * is joined through members_join(), the path POST /v1/join takes. So a
 * node that dropped out, was declared failed, or was killed and started
 * again is joined again at the next poll, with nobody asking (libcluster
 * #148: a dropped node must always be retried, not only when the
 * discovered list changes).
 *
 * A discovered address is matched to a member by address, or by the name
 * a join through it answered with (a host name, or an address that is not
 * the one the node advertises). This node's own address is skipped, and so
 * is an address whose join answered with this node's name.
 */
#include "cli.h"
#include "clock.h"
#include "dsource.h"
#include "jsonl.h"
#include "log.h"
#include "member.h"
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOIN_BATCH 64
#define MAX_LEARNED 4096

struct dsrc {
	struct discover *d;
	struct fd_dsource *src;
	uint64_t joins, join_ok, join_failed;
	char last_join_error[256];
	int64_t last_join_wall;
};

struct discover {
	struct node *n;
	struct dsrc srcs[NODE_MAX_DISCOVER];
	int nsrc;
	struct json_object *learned;  /* addr -> the name its join answered */
	struct json_object *inflight; /* addrs being joined */
	struct djoin *joins;	      /* members_join() calls in flight */
};

/* One members_join() of a source's batch. */
struct djoin {
	struct dsrc *ds;
	struct discover *d; /* NULL once discover_free() has run */
	struct djoin *next;
	int n;
	char addrs[MAX_JOIN_BATCH][FD_PEER_ADDR_LEN];
};

static void on_joined(struct json_object *results, void *arg)
{
	struct djoin *j = arg, **pp;
	struct discover *d = j->d;
	struct dsrc *ds = j->ds;

	if (!d) { /* the node stopped: only j is left */
		free(j);
		return;
	}
	for (pp = &d->joins; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	for (int i = 0; i < j->n; i++)
		json_object_object_del(d->inflight, j->addrs[i]);
	if (!results) { /* the join could not run (leaving, out of memory) */
		free(j);
		return;
	}
	ds->last_join_wall = fd_wall_us();
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		struct json_object *r = json_object_array_get_idx(results, i), *ok;
		const char *addr = fd_json_get_str(r, "addr"),
			   *name = fd_json_get_str(r, "name");

		if (!addr)
			continue;
		if (json_object_object_get_ex(r, "ok", &ok) &&
		    json_object_get_boolean(ok)) {
			ds->join_ok++;
			if (name &&
			    (json_object_object_length(d->learned) < MAX_LEARNED ||
			     json_object_object_get_ex(d->learned, addr, NULL)))
				json_object_object_add(d->learned, addr,
						       json_object_new_string(name));
			fd_info("discover %s: joined %s (%s)",
				fd_dsource_strategy(ds->src), addr,
				name ? name : "?");
		} else {
			const char *why = fd_json_get_str(r, "error");

			ds->join_failed++;
			/* Expected while a peer is down: debug only. */
			fd_debug("discover %s: unable to join %s: %s",
				 fd_dsource_strategy(ds->src), addr,
				 why ? why : "?");
			snprintf(ds->last_join_error, sizeof(ds->last_join_error),
				 "%s: %s", addr, why ? why : "?");
		}
	}
	free(j);
}

/* Alive members by address and by name, for one reconcile. */
struct alive_set {
	struct json_object *addrs, *names;
};

static void alive_load(struct discover *d, struct alive_set *a)
{
	const struct fd_member *m = members_core(d->n);
	struct fd_member_info mi;

	a->addrs = json_object_new_object();
	a->names = json_object_new_object();
	for (size_t i = 0; a->addrs && a->names && fd_member_at(m, i, &mi) == 0; i++) {
		if (mi.state != FD_MEMBER_ALIVE)
			continue;
		json_object_object_add(a->addrs, mi.addr, NULL);
		json_object_object_add(a->names, mi.name,
				       json_object_new_string(mi.addr));
	}
}

struct reconcile {
	struct discover *d;
	struct alive_set alive;
	struct djoin *j;
};

static void consider(struct fd_dsource *s, const struct fd_dpeer *p, void *arg)
{
	struct reconcile *rc = arg;
	struct discover *d = rc->d;
	struct json_object *v;
	const char *learned = NULL;

	if (strcmp(p->addr, d->n->addr) == 0)
		return; /* ourselves */
	if (json_object_object_get_ex(d->learned, p->addr, &v))
		learned = json_object_get_string(v);
	if (learned && strcmp(learned, d->n->name) == 0)
		return; /* ourselves, under another address */
	if (json_object_object_get_ex(rc->alive.addrs, p->addr, NULL))
		return;
	/* Alive under the name its join gave, unless that member now lives at
	 * another address the source lists too: then p->addr was taken over by
	 * someone else (a pod IP reused), and the name learned is stale. */
	if (learned && json_object_object_get_ex(rc->alive.names, learned, &v)) {
		if (!fd_dsource_has(s, json_object_get_string(v)))
			return;
		json_object_object_del(d->learned, p->addr);
	}
	if (json_object_object_get_ex(d->inflight, p->addr, NULL))
		return;
	if (!rc->j || rc->j->n == MAX_JOIN_BATCH)
		return; /* the rest at the next poll */
	snprintf(rc->j->addrs[rc->j->n++], FD_PEER_ADDR_LEN, "%s", p->addr);
	json_object_object_add(d->inflight, p->addr, NULL);
}

static void on_polled(struct fd_dsource *s, int ok, void *arg)
{
	struct dsrc *ds = arg;
	struct discover *d = ds->d;
	struct reconcile rc = {.d = d};
	const char *list[MAX_JOIN_BATCH];

	(void)ok;
	if (d->n->stopping || fd_dsource_count(s) == 0)
		return;
	alive_load(d, &rc.alive);
	rc.j = calloc(1, sizeof(*rc.j));
	if (rc.j && rc.alive.addrs && rc.alive.names) {
		rc.j->ds = ds;
		rc.j->d = d;
		fd_dsource_each(s, consider, &rc);
	}
	json_object_put(rc.alive.addrs);
	json_object_put(rc.alive.names);
	if (!rc.j || rc.j->n == 0) {
		free(rc.j);
		return;
	}
	for (int i = 0; i < rc.j->n; i++)
		list[i] = rc.j->addrs[i];
	ds->joins += (uint64_t)rc.j->n;
	rc.j->next = d->joins;
	d->joins = rc.j;
	fd_debug("discover %s: joining %d peer%s", fd_dsource_strategy(s),
		 rc.j->n, rc.j->n == 1 ? "" : "s");
	members_join(d->n, list, rc.j->n, on_joined, rc.j);
}

static void on_up(struct fd_dsource *s, const struct fd_dpeer *p, void *arg)
{
	(void)arg;
	fd_info("discover %s: peer up %s%s%s%s", fd_dsource_strategy(s), p->addr,
		p->name ? " (" : "", p->name ? p->name : "", p->name ? ")" : "");
}

static void on_down(struct fd_dsource *s, const struct fd_dpeer *p, void *arg)
{
	(void)arg;
	fd_info("discover %s: peer down %s%s%s%s", fd_dsource_strategy(s), p->addr,
		p->name ? " (" : "", p->name ? p->name : "", p->name ? ")" : "");
}

static void on_error(struct fd_dsource *s, const char *msg, void *arg)
{
	(void)arg;
	fd_warnlog("discover %s: %s (peers kept: %zu)", fd_dsource_strategy(s),
		   msg, fd_dsource_count(s));
}

int discover_init(struct node *n)
{
	struct discover *d;
	struct fd_err err;

	if (n->opts->ndiscover == 0)
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	n->discover = d;
	d->n = n;
	d->learned = json_object_new_object();
	d->inflight = json_object_new_object();
	if (!d->learned || !d->inflight)
		return -1;
	for (int i = 0; i < n->opts->ndiscover; i++) {
		struct dsrc *ds = &d->srcs[d->nsrc];
		struct fd_dsource_cbs cbs = {.up = on_up,
					     .down = on_down,
					     .polled = on_polled,
					     .error = on_error,
					     .arg = ds};

		ds->d = d;
		ds->src = fd_dsource_new(n->loop, n->opts->discover[i], &cbs, &err);
		if (!ds->src) {
			node_report(n, FD_EXIT_USAGE, "invalid --discover '%s': %s",
				    n->opts->discover[i], err.msg);
			fd_die(FD_EXIT_USAGE, "invalid --discover '%s': %s",
			       n->opts->discover[i], err.msg);
		}
		d->nsrc++;
		fd_info("discover: %s", n->opts->discover[i]);
	}
	return 0;
}

void discover_free(struct node *n)
{
	struct discover *d = n->discover;

	if (!d)
		return;
	for (int i = 0; i < d->nsrc; i++)
		fd_dsource_free(d->srcs[i].src);
	json_object_put(d->learned);
	json_object_put(d->inflight);
	/* Joins still in flight call back with NULL from members_free(),
	 * after d is gone. */
	for (struct djoin *j = d->joins; j; j = j->next)
		j->d = NULL;
	free(d);
	n->discover = NULL;
}

void discover_add_info(struct node *n, struct json_object *info)
{
	struct discover *d = n->discover;
	struct json_object *arr;
	char ts[FD_TS_LEN];

	if (!d)
		return;
	arr = json_object_new_array();
	for (int i = 0; arr && i < d->nsrc; i++) {
		struct dsrc *ds = &d->srcs[i];
		struct json_object *o = fd_dsource_info(ds->src);

		if (!o)
			continue;
		json_object_object_add(o, "joins", json_object_new_uint64(ds->joins));
		json_object_object_add(o, "joins_ok",
				       json_object_new_uint64(ds->join_ok));
		json_object_object_add(o, "joins_failed",
				       json_object_new_uint64(ds->join_failed));
		json_object_object_add(
			o, "last_join",
			ds->last_join_wall
				? json_object_new_string(fd_ts_format(
					  ds->last_join_wall, ts, sizeof(ts)))
				: NULL);
		json_object_object_add(o, "last_join_error",
				       ds->last_join_error[0]
					       ? json_object_new_string(ds->last_join_error)
					       : NULL);
		json_object_array_add(arr, o);
	}
	json_object_object_add(info, "discover", arr);
}
