/* The fault gate: every node-to-node message passes the rules of the pure
 * fault table (fault.h) here, UDP and HTTP alike, and /v1/faults manages
 * them.
 *
 * Peers are identified by member name: outgoing traffic by the member at
 * the destination address, incoming datagrams by the sender record they
 * carry, incoming node-to-node HTTP (/v1/cluster/...) by the X-FD-From
 * header every node-to-node request carries. Traffic to or from an address
 * that is no known member (a first join) passes.
 *
 * A dropped datagram is not sent or not delivered; a delayed one waits in a
 * capped queue; a duplicate is sent / delivered twice (each direction
 * checked on its own: "out" rules on sending, "in" rules on receiving).
 * An HTTP request is an exchange, so both directions count for it: the
 * client fails it at once, as if unreachable, when a drop or loss rule
 * hits either its peer's "out" (the request) or "in" (the answer), and
 * starts it later by the sum of the delays drawn; the server answers 503
 * without running the handler when a drop or loss rule hits the sender's
 * "in" or "out", and holds the request (fd_http_hold) by the sum of the
 * delays drawn. Duplicate rules do not apply to HTTP (TCP never shows an
 * application a duplicated request).
 *
 * Changing the rules needs the admin scope and is audit-logged (the
 * routes' FD_HTTP_ADMIN flag, authz.c). */
#include "cli.h"
#include "clock.h"
#include "fault.h"
#include "metrics.h"
#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "member.h"
#include "node.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CLUSTER_PREFIX "/v1/cluster/"
#define MAX_HELD 4096 /* datagrams held back by delay / duplicate rules */

struct held {
	struct faults *f;
	struct fd_timer t;
	int in; /* 1: deliver to us; 0: send to addr */
	char addr[80];
	size_t len;
	struct held *prev, *next;
	uint8_t buf[];
};

struct faults {
	struct node *n;
	struct fd_fault_table tab;
	uint64_t rng;
	struct fd_timer expire_timer;
	struct held *held;
	size_t nheld;
	uint64_t held_dropped; /* the queue was full */
};

/* Expiry */

static void arm_expiry(struct faults *f)
{
	int64_t e = fd_fault_next_expiry(&f->tab);

	if (e == INT64_MAX)
		fd_timer_disarm(f->n->loop, &f->expire_timer);
	else
		fd_timer_arm_at(f->n->loop, &f->expire_timer, e);
}

static void on_expire(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct faults *f = arg;
	size_t k;

	(void)t;
	k = fd_fault_expire(&f->tab, fd_loop_now(loop));
	if (k)
		fd_info("faults: %zu rule%s expired, %zu left", k,
			k == 1 ? "" : "s", f->tab.n);
	arm_expiry(f);
}

/* Held datagrams */

static void send_now(struct faults *f, const char *addr, const void *buf, size_t len)
{
	keys_udp_send(f->n, addr, buf, len); /* keys.c seals it */
}

static void held_free(struct faults *f, struct held *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		f->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	f->nheld--;
	fd_timer_disarm(f->n->loop, &h->t);
	free(h);
}

static void on_held(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct held *h = arg;
	struct faults *f = h->f;

	(void)loop;
	(void)t;
	/* Unlink first: delivering may run the membership core, which may
	 * send (and so hold) more datagrams. */
	if (h->prev)
		h->prev->next = h->next;
	else
		f->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
	f->nheld--;
	if (h->in)
		members_udp_deliver(f->n, h->addr, h->buf, h->len);
	else
		send_now(f, h->addr, h->buf, h->len);
	free(h);
}

static void hold(struct faults *f, int in, const char *addr, const void *buf,
		 size_t len, int64_t delay)
{
	struct held *h;

	if (f->nheld >= MAX_HELD || !(h = malloc(sizeof(*h) + len))) {
		f->held_dropped++;
		return;
	}
	h->f = f;
	h->in = in;
	snprintf(h->addr, sizeof(h->addr), "%s", addr);
	h->len = len;
	memcpy(h->buf, buf, len);
	fd_timer_init(&h->t, on_held, h);
	h->prev = NULL;
	h->next = f->held;
	if (f->held)
		f->held->prev = h;
	f->held = h;
	f->nheld++;
	fd_timer_arm(f->n->loop, &h->t, delay);
}

/* Peers */

/* The name of the member at addr; NULL when none. */
static const char *name_at(struct faults *f, const char *addr)
{
	const struct fd_member *m;
	struct fd_member_info mi;

	if (!f->n->members)
		return NULL;
	m = members_core(f->n);
	for (size_t i = 1; fd_member_at(m, i, &mi) == 0; i++)
		if (strcmp(mi.addr, addr) == 0)
			return mi.name;
	return NULL;
}

/* The sender's name in a datagram: its node record follows the header
 * (state u8, incarnation u64, id[16], name u8 length + bytes). */
static int dgram_sender(const uint8_t *buf, size_t len,
			char name[FD_WIRE_NAME_MAX + 1])
{
	size_t off = FD_WIRE_HDR_LEN + 1 + 8 + FD_WIRE_ID_LEN, n;

	if (len <= off || buf[0] != FD_WIRE_MAGIC0 || buf[1] != FD_WIRE_MAGIC1)
		return -1;
	n = buf[off];
	if (n == 0 || off + 1 + n > len)
		return -1;
	memcpy(name, buf + off + 1, n);
	name[n] = 0;
	return 0;
}

static int check(struct faults *f, const char *peer, int dir,
		 struct fd_fault_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (f->tab.n == 0 || !peer)
		return 0;
	return fd_fault_check(&f->tab, fd_loop_now(f->n->loop), peer, dir,
			      &f->rng, v);
}

int faults_udp_out(struct node *n, const char *addr, const void *buf, size_t len)
{
	struct faults *f = n->faults;
	struct fd_fault_verdict v;

	if (!f || f->tab.n == 0 || !check(f, name_at(f, addr), FD_FAULT_OUT, &v))
		return 0;
	if (v.drop)
		return 1;
	if (v.duplicate)
		hold(f, 0, addr, buf, len, v.delay_ms);
	if (v.delay_ms <= 0)
		return 0;
	hold(f, 0, addr, buf, len, v.delay_ms);
	return 1;
}

int faults_udp_in(struct node *n, const char *from, const void *buf, size_t len)
{
	struct faults *f = n->faults;
	struct fd_fault_verdict v;
	char name[FD_WIRE_NAME_MAX + 1];

	if (!f || f->tab.n == 0 || dgram_sender(buf, len, name) < 0 ||
	    !check(f, name, FD_FAULT_IN, &v))
		return 0;
	if (v.drop)
		return 1;
	if (v.duplicate)
		hold(f, 1, from, buf, len, v.delay_ms);
	if (v.delay_ms <= 0)
		return 0;
	hold(f, 1, from, buf, len, v.delay_ms);
	return 1;
}

/* HTTP gates */

static int client_gate(const char *url, int64_t *delay_ms, void *arg)
{
	struct faults *f = arg;
	struct fd_fault_verdict v;
	const char *p = strstr(url, "://"), *e, *peer;
	char addr[80];

	if (f->tab.n == 0 || !p)
		return 0;
	p += 3;
	e = strchr(p, '/');
	if (!e || (size_t)(e - p) >= sizeof(addr))
		return 0;
	memcpy(addr, p, (size_t)(e - p));
	addr[e - p] = 0;
	peer = name_at(f, addr);
	/* A request is an exchange: it fails when the request cannot go out
	 * or the answer could not come back (a rule dropping what the peer
	 * sends us). */
	if (check(f, peer, FD_FAULT_OUT, &v) && v.drop)
		return -1;
	*delay_ms = v.delay_ms;
	if (check(f, peer, FD_FAULT_IN, &v) && v.drop)
		return -1;
	*delay_ms += v.delay_ms;
	return 0;
}

static int server_gate(struct fd_http_req *req, void *arg)
{
	struct faults *f = arg;
	struct fd_fault_verdict v;
	const char *from;
	int64_t delay;

	/* keys.c: unsigned or badly signed /v1/cluster/ requests get 401 */
	if (keys_http_gate(f->n, req))
		return 1;
	if (f->tab.n == 0 ||
	    strncmp(fd_http_path(req), CLUSTER_PREFIX, strlen(CLUSTER_PREFIX)))
		return 0;
	from = fd_http_header(req, "X-FD-From");
	if (!from)
		return 0;
	/* Refused when the request could not come in, or the answer could not
	 * go back: the handler must not act on a request whose sender a real
	 * cut would have left waiting. */
	if (check(f, from, FD_FAULT_IN, &v) && v.drop)
		goto drop;
	delay = v.delay_ms;
	if (check(f, from, FD_FAULT_OUT, &v) && v.drop)
		goto drop;
	delay += v.delay_ms;
	if (delay <= 0)
		return 0;
	/* A delay on what comes in from the peer or goes back to it: the
	 * request is handled that much later (so its answer comes late) */
	fd_http_hold(req, delay);
	return 1;
drop:
	fd_http_reply_error(req, 503,
			    "fault injected: traffic with '%s' dropped", from);
	return 1;
}

/* /v1/faults */

static struct json_object *rule_json(struct faults *f, const struct fd_fault_rule *r)
{
	struct json_object *o = json_object_new_object();
	int64_t now = fd_loop_now(f->n->loop);
	char ts[FD_TS_LEN];

	json_object_object_add(o, "id", json_object_new_uint64(r->id));
	json_object_object_add(o, "tag", json_object_new_string(r->tag));
	json_object_object_add(o, "peer", json_object_new_string(r->peer));
	json_object_object_add(o, "direction",
			       json_object_new_string(fd_fault_dir_name(r->dir)));
	json_object_object_add(
		o, "action",
		json_object_new_string(fd_fault_action_name(r->action)));
	json_object_object_add(o, "probability",
			       json_object_new_double(r->probability));
	json_object_object_add(o, "delay_ms", json_object_new_int64(r->delay_ms));
	json_object_object_add(o, "jitter_ms", json_object_new_int64(r->jitter_ms));
	json_object_object_add(
		o, "expires_in",
		fd_json_seconds(r->expires_at > now ? r->expires_at - now : 0));
	json_object_object_add(
		o, "expires_at",
		json_object_new_string(fd_ts_format(
			node_wall_us(f->n, r->expires_at), ts, sizeof(ts))));
	json_object_object_add(o, "matched", json_object_new_uint64(r->matched));
	json_object_object_add(o, "applied", json_object_new_uint64(r->applied));
	json_object_object_add(o, "dropped", json_object_new_uint64(r->dropped));
	json_object_object_add(o, "delayed", json_object_new_uint64(r->delayed));
	json_object_object_add(o, "duplicated",
			       json_object_new_uint64(r->duplicated));
	return o;
}

static void h_get(struct fd_http_req *req, void *arg)
{
	struct faults *f = arg;
	struct json_object *o = json_object_new_object(),
			   *arr = json_object_new_array();

	fd_fault_expire(&f->tab, fd_loop_now(f->n->loop));
	for (size_t i = 0; i < f->tab.n; i++)
		json_object_array_add(arr, rule_json(f, &f->tab.rules[i]));
	json_object_object_add(o, "name", json_object_new_string(f->n->name));
	json_object_object_add(o, "rules", arr);
	json_object_object_add(o, "max_duration",
			       fd_json_seconds(f->n->opts->fault_max_ms));
	fd_http_reply_json(req, 200, o);
}

static int get_num(struct json_object *o, const char *key, double *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return -1;
	*out = json_object_get_double(v);
	return isfinite(*out) ? 1 : -1;
}

static const char *const rule_keys[] = {"peer",	       "direction", "action",
					"probability", "delay_ms",  "jitter_ms",
					"duration",    NULL};

/* Fills r from a rule object; 0, or -1 with why filled. */
static int parse_rule(struct faults *f, struct json_object *o,
		      struct fd_fault_rule *r, char *why, size_t len)
{
	int64_t now = fd_loop_now(f->n->loop), max = f->n->opts->fault_max_ms;
	const char *s;
	double d;

	memset(r, 0, sizeof(*r));
	if (!json_object_is_type(o, json_type_object))
		return snprintf(why, len, "a rule must be an object"), -1;
	json_object_object_foreach(o, key, val)
	{
		int known = 0;

		(void)val;
		for (int i = 0; rule_keys[i]; i++)
			known |= strcmp(key, rule_keys[i]) == 0;
		known |= strcmp(key, "tag") == 0; /* a single rule's body */
		if (!known)
			return snprintf(why, len, "unknown field '%s'", key), -1;
	}
	s = fd_json_get_str(o, "peer");
	if (!s || strlen(s) > FD_FAULT_PEER_MAX)
		return snprintf(why, len,
				"\"peer\" (a member name or \"*\") is required"),
		       -1;
	snprintf(r->peer, sizeof(r->peer), "%s", s);
	s = fd_json_get_str(o, "direction");
	r->dir = s ? fd_fault_parse_dir(s) : FD_FAULT_BOTH;
	if (r->dir < 0)
		return snprintf(why, len, "invalid direction (in, out, both)"), -1;
	s = fd_json_get_str(o, "action");
	r->action = s ? fd_fault_parse_action(s) : FD_FAULT_DROP;
	if (r->action < 0)
		return snprintf(why, len,
				"invalid action (drop, loss, delay, duplicate)"),
		       -1;
	r->probability = 1;
	switch (get_num(o, "probability", &r->probability)) {
	case -1: return snprintf(why, len, "probability must be a number"), -1;
	case 0:
		if (r->action == FD_FAULT_LOSS)
			return snprintf(why, len, "a loss needs a probability"), -1;
	}
	d = 0;
	if (get_num(o, "delay_ms", &d) < 0 || d < 0 || d > FD_FAULT_DELAY_MAX)
		return snprintf(why, len, "delay_ms must be 0 to %d",
				FD_FAULT_DELAY_MAX),
		       -1;
	r->delay_ms = (int64_t)d;
	d = 0;
	if (get_num(o, "jitter_ms", &d) < 0 || d < 0 || d > FD_FAULT_DELAY_MAX)
		return snprintf(why, len, "jitter_ms must be 0 to %d",
				FD_FAULT_DELAY_MAX),
		       -1;
	r->jitter_ms = (int64_t)d;
	d = (double)max / 1000;
	if (get_num(o, "duration", &d) < 0 || !(d > 0))
		return snprintf(why, len,
				"duration must be a positive number of seconds"),
		       -1;
	if (d * 1000 > (double)max)
		return snprintf(why, len,
				"duration %gs is longer than --max-duration (%gs)",
				d, (double)max / 1000),
		       -1;
	r->expires_at = now + (int64_t)ceil(d * 1000);
	return 0;
}

static void h_put(struct fd_http_req *req, void *arg)
{
	static struct fd_fault_rule rules[FD_FAULT_MAX];
	struct faults *f = arg;
	struct json_object *body = fd_http_json(req), *list, *o, *arr;
	const char *tag = fd_json_get_str(body, "tag");
	int64_t now = fd_loop_now(f->n->loop);
	size_t n = 0;
	struct fd_err err;
	char why[200];

	if (!json_object_is_type(body, json_type_object) || !tag) {
		fd_http_reply_error(req, 400,
				    "expected {\"tag\": T, \"rules\": [...]} or "
				    "{\"tag\": T, \"peer\": P, ...}");
		return;
	}
	if (json_object_object_get_ex(body, "rules", &list)) {
		if (!json_object_is_type(list, json_type_array)) {
			fd_http_reply_error(req, 400, "\"rules\" must be an array");
			return;
		}
		n = json_object_array_length(list);
		if (n > FD_FAULT_MAX) {
			fd_http_reply_error(req, 400, "too many rules (at most %d)",
					    FD_FAULT_MAX);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			if (parse_rule(f, json_object_array_get_idx(list, i),
				       &rules[i], why, sizeof(why)) < 0) {
				fd_http_reply_error(req, 400, "rule %zu: %s", i, why);
				return;
			}
		}
	} else {
		if (parse_rule(f, body, &rules[0], why, sizeof(why)) < 0) {
			fd_http_reply_error(req, 400, "%s", why);
			return;
		}
		n = 1;
	}
	fd_fault_expire(&f->tab, now);
	if (fd_fault_replace_tag(&f->tab, tag, rules, n, now, &err) < 0) {
		fd_http_reply_error(req, errno == ENOSPC ? 507 : 400, "%s", err.msg);
		return;
	}
	arm_expiry(f);
	fd_info("faults: %zu rule%s installed under tag '%s' by %s", n,
		n == 1 ? "" : "s", tag, fd_http_peer(req));
	o = json_object_new_object();
	arr = json_object_new_array();
	for (size_t i = 0; i < f->tab.n; i++)
		if (strcmp(f->tab.rules[i].tag, tag) == 0)
			json_object_array_add(arr, rule_json(f, &f->tab.rules[i]));
	json_object_object_add(o, "tag", json_object_new_string(tag));
	json_object_object_add(o, "rules", arr);
	fd_http_reply_json(req, 200, o);
}

static void h_delete(struct fd_http_req *req, void *arg)
{
	struct faults *f = arg;
	const char *tag = fd_http_query(req, "tag");
	struct json_object *o = json_object_new_object();
	size_t k = fd_fault_remove_tag(&f->tab, tag);

	arm_expiry(f);
	fd_info("faults: %zu rule%s removed (tag %s) by %s", k,
		k == 1 ? "" : "s", tag ? tag : "any", fd_http_peer(req));
	json_object_object_add(o, "removed", json_object_new_int((int)k));
	fd_http_reply_json(req, 200, o);
}

/* Setup */

int faults_init(struct node *n)
{
	struct faults *f = calloc(1, sizeof(*f));
	char hdr[FD_WIRE_NAME_MAX + 16];

	if (!f)
		return -1;
	f->n = n;
	n->faults = f;
	fd_fault_init(&f->tab);
	memcpy(&f->rng, n->id_raw, sizeof(f->rng));
	f->rng |= 1;
	fd_timer_init(&f->expire_timer, on_expire, f);
	snprintf(hdr, sizeof(hdr), "X-FD-From: %s", n->name);
	if (fd_http_client_set_header(n->client, hdr) < 0)
		return -1;
	fd_http_client_set_gate(n->client, client_gate, f);
	return 0;
}

void faults_add_routes(struct node *n)
{
	fd_http_server_set_gate(n->http, server_gate, n->faults);
	fd_http_route(n->http, "GET", "/v1/faults", 0, h_get, n->faults);
	fd_http_route(n->http, "PUT", "/v1/faults",
		      FD_HTTP_JSON | FD_HTTP_ADMIN, h_put, n->faults);
	fd_http_route(n->http, "DELETE", "/v1/faults", FD_HTTP_ADMIN, h_delete,
		      n->faults);
}

void faults_add_info(struct node *n, struct json_object *info)
{
	struct faults *f = n->faults;
	struct json_object *o = json_object_new_object(),
			   *tags = json_object_new_array(),
			   *per_rule = json_object_new_array();

	fd_fault_expire(&f->tab, fd_loop_now(n->loop));
	for (size_t i = 0; i < f->tab.n; i++) {
		int seen = 0;

		json_object_array_add(per_rule, rule_json(f, &f->tab.rules[i]));
		for (size_t k = 0; k < i; k++)
			seen |= strcmp(f->tab.rules[k].tag, f->tab.rules[i].tag) == 0;
		if (!seen)
			json_object_array_add(
				tags, json_object_new_string(f->tab.rules[i].tag));
	}
	json_object_object_add(o, "rules", json_object_new_int((int)f->tab.n));
	json_object_object_add(o, "tags", tags);
	json_object_object_add(o, "checked", json_object_new_uint64(f->tab.checked));
	json_object_object_add(o, "dropped", json_object_new_uint64(f->tab.dropped));
	json_object_object_add(o, "delayed", json_object_new_uint64(f->tab.delayed));
	json_object_object_add(o, "duplicated",
			       json_object_new_uint64(f->tab.duplicated));
	json_object_object_add(o, "per_rule", per_rule);
	json_object_object_add(o, "held", json_object_new_uint64(f->nheld));
	json_object_object_add(o, "held_dropped",
			       json_object_new_uint64(f->held_dropped));
	json_object_object_add(info, "faults", o);
}

void faults_add_metrics(struct node *n, struct fd_metrics *m)
{
	struct faults *f = n->faults;
	static const struct {
		const char *name, *help;
		size_t off;
	} per[] = {
		{"fd_fault_rule_matched_total", "Messages a fault rule matched.",
		 offsetof(struct fd_fault_rule, matched)},
		{"fd_fault_rule_dropped_total", "Messages a fault rule dropped.",
		 offsetof(struct fd_fault_rule, dropped)},
		{"fd_fault_rule_delayed_total", "Messages a fault rule delayed.",
		 offsetof(struct fd_fault_rule, delayed)},
		{"fd_fault_rule_duplicated_total", "Messages a fault rule duplicated.",
		 offsetof(struct fd_fault_rule, duplicated)},
	};

	fd_fault_expire(&f->tab, fd_loop_now(n->loop));
	fd_metrics_gauge(m, "fd_fault_rules", "Fault rules in force.",
			 (double)f->tab.n);
	fd_metrics_counter(m, "fd_fault_checked_total",
			   "Node-to-node messages that went through the fault gate.",
			   f->tab.checked);
	fd_metrics_counter(m, "fd_fault_dropped_total",
			   "Messages the fault gate dropped.", f->tab.dropped);
	fd_metrics_counter(m, "fd_fault_delayed_total",
			   "Messages the fault gate delayed.", f->tab.delayed);
	fd_metrics_counter(m, "fd_fault_duplicated_total",
			   "Messages the fault gate duplicated.", f->tab.duplicated);
	fd_metrics_gauge(m, "fd_fault_held", "Messages held back for a delay.",
			 (double)f->nheld);
	for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
		fd_metrics_family(m, per[k].name, "counter", per[k].help);
		for (size_t i = 0; i < f->tab.n; i++) {
			const struct fd_fault_rule *r = &f->tab.rules[i];
			char id[24];
			const char *l[] = {
				"rule",	     id,
				"tag",	     r->tag,
				"peer",	     r->peer,
				"direction", fd_fault_dir_name(r->dir),
				"action",    fd_fault_action_name(r->action),
				NULL};

			snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
			fd_metrics_sample_u64(
				m, per[k].name, l,
				*(const uint64_t *)((const char *)r + per[k].off));
		}
	}
}

void faults_free(struct node *n)
{
	struct faults *f = n->faults;

	if (!f)
		return;
	while (f->held)
		held_free(f, f->held);
	fd_timer_disarm(n->loop, &f->expire_timer);
	free(f);
	n->faults = NULL;
}
