/* Membership in the node: drives the pure SWIM/Lifeguard core (member.h)
 * with the UDP socket, the loop's clock and node-to-node HTTP push-pull, and
 * serves /v1/members, /v1/join, /v1/leave and /v1/events. */
#include "auth.h"
#include "cli.h"
#include "clock.h"
#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "member.h"
#include "metrics.h"
#include "node.h"
#include "announce.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUSHPULL_PATH "/v1/cluster/pushpull"
#define MAX_EVENT_STREAMS 256
#define EVENT_QUEUE_MAX (1024 * 1024)
#define JOIN_RETRY_MAX_MS 30000

/* How often each member was seen failing, by name (for false-positive
 * accounting): an open-addressing table that only grows, capped like the
 * member table. */
struct fail_count {
	char *name;
	uint64_t failures;
};

struct join_req; /* one POST /v1/join */

struct members {
	struct node *n;
	struct fd_member *m;
	struct fd_member_config cfg;
	struct fd_timer timer, leave_timer, join_timer;
	struct fd_http_req *streams[MAX_EVENT_STREAMS];
	int nstreams;
	struct fail_count *fails;
	size_t nfails, capfails;
	int64_t join_backoff;
	int joined; /* a start-up join succeeded (or none was asked) */
	int leaving;
	int64_t leave_deadline;
	uint64_t udp_tx_err;
	struct pp_call *calls;	/* periodic push-pulls in flight */
	struct join_req *joins; /* joins in flight */
};

/* Failure counts */

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct fail_count *fail_slot(struct members *ms, const char *name, int create)
{
	size_t i;

	if (ms->capfails == 0 || (create && (ms->nfails + 1) * 2 > ms->capfails)) {
		size_t cap = ms->capfails ? ms->capfails * 2 : 64;
		struct fail_count *t;

		if (!create)
			return NULL;
		if (cap > 2 * FD_MEMBER_MAX)
			return NULL;
		t = calloc(cap, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t k = 0; k < ms->capfails; k++) {
			if (!ms->fails[k].name)
				continue;
			i = hash_name(ms->fails[k].name) & (cap - 1);
			while (t[i].name)
				i = (i + 1) & (cap - 1);
			t[i] = ms->fails[k];
		}
		free(ms->fails);
		ms->fails = t;
		ms->capfails = cap;
	}
	i = hash_name(name) & (ms->capfails - 1);
	while (ms->fails[i].name) {
		if (strcmp(ms->fails[i].name, name) == 0)
			return &ms->fails[i];
		i = (i + 1) & (ms->capfails - 1);
	}
	if (!create)
		return NULL;
	ms->fails[i].name = strdup(name);
	if (!ms->fails[i].name)
		return NULL;
	ms->nfails++;
	return &ms->fails[i];
}

/* JSON */

static void hex_id(const uint8_t *id, char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static struct json_object *member_json(struct members *ms,
				       const struct fd_member_info *mi)
{
	struct json_object *o = fd_json_record("member");
	struct fail_count *fc = fail_slot(ms, mi->name, 0);
	char id[33], ts[FD_TS_LEN];

	hex_id(mi->id, id);
	json_object_object_add(o, "name", json_object_new_string(mi->name));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "addr", json_object_new_string(mi->addr));
	json_object_object_add(
		o, "state", json_object_new_string(fd_member_state_name(mi->state)));
	json_object_object_add(o, "incarnation",
			       json_object_new_uint64(mi->incarnation));
	json_object_object_add(
		o, "since",
		json_object_new_string(fd_ts_format(node_wall_us(ms->n, mi->since),
						    ts, sizeof(ts))));
	json_object_object_add(o, "failures",
			       json_object_new_uint64(fc ? fc->failures : 0));
	return o;
}

static const char *event_name(const struct fd_member_event *ev)
{
	if (ev->type == FD_MEMBER_EV_CONFLICT)
		return "name_conflict";
	if (ev->new_state == FD_MEMBER_NONE)
		return "reaped";
	if (ev->old_state == FD_MEMBER_NONE)
		return "joined";
	return fd_member_state_name(ev->new_state);
}

static void publish_event(struct members *ms, const struct fd_member_event *ev)
{
	struct json_object *o = fd_json_record("member");
	char id[33], ts[FD_TS_LEN];
	const char *line;
	size_t len;

	hex_id(ev->id, id);
	json_object_object_add(o, "event", json_object_new_string(event_name(ev)));
	json_object_object_add(o, "name", json_object_new_string(ev->name));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "addr", json_object_new_string(ev->addr));
	json_object_object_add(
		o, "state",
		json_object_new_string(fd_member_state_name(ev->new_state)));
	json_object_object_add(
		o, "old_state",
		json_object_new_string(fd_member_state_name(ev->old_state)));
	json_object_object_add(o, "incarnation",
			       json_object_new_uint64(ev->incarnation));
	if (ev->restarted)
		json_object_object_add(o, "restarted", json_object_new_boolean(1));
	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(node_wall_us(ms->n, ev->time),
						    ts, sizeof(ts))));
	line = fd_json_str(o, &len);
	for (int i = 0; i < ms->nstreams; i++) {
		struct fd_http_req *s = ms->streams[i];

		/* A watcher too slow to keep up is cut off rather than
		 * silently missing events. */
		if (fd_http_stream_write(s, line, len) < 0 ||
		    fd_http_stream_write(s, "\n", 1) < 0) {
			fd_warnlog("events: dropping a watcher that fell %zu bytes behind",
				   fd_http_stream_queued(s));
			fd_http_stream_end(s);
			ms->streams[i--] = ms->streams[--ms->nstreams];
		}
	}
	json_object_put(o);
}

/* Driving the core */

static void pump(struct members *ms);

static void on_member_timer(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct members *ms = arg;

	(void)t;
	fd_member_tick(ms->m, fd_loop_now(loop));
	pump(ms);
}

struct pp_call {
	struct members *ms;
	struct join_req *join; /* NULL: periodic push-pull or reconnect */
	int slot;
	char addr[FD_MEMBER_ADDR_MAX + 1];
	struct pp_call *prev, *next; /* in members.calls, when join is NULL */
};

static void pushpull_done(const struct fd_http_resp *r, void *arg);

/* Starts a push-pull with addr; cb gets the outcome through pushpull_done. */
static int pushpull_start(struct members *ms, const char *addr, int join,
			  struct pp_call *call, struct fd_err *err)
{
	char url[160];
	uint8_t *state;
	size_t len;
	static const char *const hdrs[] = {
		"Content-Type: application/octet-stream", NULL};
	uint64_t h;

	if (fd_http_url(url, sizeof(url), addr, PUSHPULL_PATH) < 0)
		return fd_err_set(err, "address too long");
	if (fd_member_pushpull_encode(ms->m, join, &state, &len) < 0)
		return fd_err_set(err, "out of memory");
	h = fd_http_request(ms->n->client, "POST", url, (const char *)state,
			    len, hdrs, 3000, pushpull_done, call, err);
	free(state);
	return h ? 0 : -1;
}

static void pump(struct members *ms)
{
	struct fd_member_out *out = malloc(sizeof(*out));
	struct fd_member_event ev;
	int64_t deadline;

	while (out && fd_member_next_output(ms->m, out)) {
		if (out->kind == FD_MEMBER_OUT_DGRAM) {
			if (faults_udp_out(ms->n, out->addr, out->buf, out->len))
				continue; /* faults.c: dropped or delayed */
			if (keys_udp_send(ms->n, out->addr, out->buf, out->len) < 0)
				ms->udp_tx_err++; /* keys.c seals it */
		} else {
			struct pp_call *call = calloc(1, sizeof(*call));
			struct fd_err err;

			if (!call)
				continue;
			call->ms = ms;
			snprintf(call->addr, sizeof(call->addr), "%s", out->addr);
			if (pushpull_start(ms, out->addr, out->join, call, &err) < 0) {
				fd_debug("push-pull with %s: %s", out->addr, err.msg);
				free(call);
				continue;
			}
			call->next = ms->calls;
			if (ms->calls)
				ms->calls->prev = call;
			ms->calls = call;
		}
	}
	free(out);
	while (fd_member_next_event(ms->m, &ev)) {
		if (ev.type == FD_MEMBER_EV_CONFLICT) {
			fd_errlog("another node (%s) announces our name '%s'",
				  ev.addr, ev.name);
			if (ev.newcomer) {
				fd_errlog("name '%s' is already in use by the node at %s: stopping",
					  ev.name, ev.addr);
				node_report(ms->n, FD_EXIT_CONFLICT,
					    "name '%s' is already in use by the node at %s",
					    ev.name, ev.addr);
				node_stop(ms->n, FD_EXIT_CONFLICT);
			}
		} else {
			if (ev.new_state == FD_MEMBER_FAILED) {
				struct fail_count *fc = fail_slot(ms, ev.name, 1);

				if (fc)
					fc->failures++;
			}
			node_member_changed(ms->n, &ev);
			if (ev.new_state != FD_MEMBER_ALIVE ||
			    ev.old_state != FD_MEMBER_ALIVE)
				fd_info("member %s (%s) %s -> %s", ev.name, ev.addr,
					fd_member_state_name(ev.old_state),
					fd_member_state_name(ev.new_state));
		}
		publish_event(ms, &ev);
	}
	deadline = fd_member_next_deadline(ms->m);
	fd_timer_arm_at(ms->n->loop, &ms->timer, deadline);
}

static void on_udp(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct members *ms = arg;
	/* a sealed datagram is larger by its overhead (keys.c) */
	uint8_t buf[FD_WIRE_MTU + FD_SEAL_OVERHEAD + 1], plain[FD_WIRE_MTU + 1];
	int got = 0;

	(void)events;
	for (int i = 0; i < 256; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char host[INET6_ADDRSTRLEN], from[80];
		ssize_t len = recvfrom(fd, buf, sizeof(buf), 0,
				       (struct sockaddr *)&ss, &sl);
		const void *p;
		size_t plen;

		if (len < 0)
			break;
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
				  host, sizeof(host));
			snprintf(from, sizeof(from), "[%s]:%d", host,
				 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
				  host, sizeof(host));
			snprintf(from, sizeof(from), "%s:%d", host,
				 ntohs(((struct sockaddr_in *)&ss)->sin_port));
		}
		/* keys.c: sealed ones opened, bad ones dropped */
		p = keys_udp_open(ms->n, from, buf, (size_t)len, plain,
				  sizeof(plain), &plen);
		if (!p)
			continue;
		if (faults_udp_in(ms->n, from, p, plen))
			continue; /* faults.c: dropped or delayed */
		/* Oversized datagrams arrive truncated: the core rejects them
		 * by length. */
		fd_member_recv(ms->m, fd_loop_now(loop), from, p,
			       plen > FD_WIRE_MTU + 1 ? FD_WIRE_MTU + 1 : plen);
		got = 1;
	}
	if (got)
		pump(ms);
}

/* A datagram the fault gate held back (faults.c). */
void members_udp_deliver(struct node *n, const char *from, const void *buf, size_t len)
{
	struct members *ms = n->members;

	if (!ms)
		return;
	fd_member_recv(ms->m, fd_loop_now(n->loop), from, buf, len);
	pump(ms);
}

/* Push-pull and join */

struct join_req {
	struct members *ms;
	struct fd_http_req *req; /* the POST /v1/join, while its client waits */
	int startup;		 /* the --join at start */
	int check_name; /* make sure no live node has our name (see pushpull_done) */
	members_join_cb done; /* members_join(): the owner's callback */
	void *done_arg;
	struct json_object *results; /* array, one per address */
	struct pp_call *calls;
	int ncalls, pending;
	struct join_req *prev, *next; /* in members.joins */
};

static void join_free(struct join_req *j)
{
	struct members *ms = j->ms;

	if (j->done) /* not finished: the node is stopping */
		j->done(NULL, j->done_arg);
	if (j->prev)
		j->prev->next = j->next;
	else
		ms->joins = j->next;
	if (j->next)
		j->next->prev = j->prev;
	json_object_put(j->results);
	free(j->calls);
	free(j);
}

static void join_finish(struct join_req *j);

static void call_unlink(struct members *ms, struct pp_call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		ms->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
}

/* A node starting under a name the cluster already knows alive, at another
 * address, under another id: either our own previous instance (restarted
 * before it was declared failed) or another node using our name. Only
 * asking that address tells which. Returns 1 and fills addr/id when there
 * is such an entry in the state. */
static int name_taken_candidate(struct members *ms, const void *buf, size_t len,
				char addr[FD_MEMBER_ADDR_MAX + 1], char id[33])
{
	struct fd_wire_pp_reader rd;
	struct fd_wire_node wn;

	if (fd_wire_pp_open(&rd, buf, len) < 0)
		return 0;
	while (fd_wire_pp_next(&rd, &wn) == 1) {
		if (strcmp(wn.name, ms->n->name) != 0 ||
		    memcmp(wn.id, ms->n->id_raw, FD_MEMBER_ID_LEN) == 0 ||
		    strcmp(wn.addr, ms->n->addr) == 0 ||
		    (wn.state != FD_WIRE_ALIVE && wn.state != FD_WIRE_SUSPECT))
			continue;
		snprintf(addr, FD_MEMBER_ADDR_MAX + 1, "%s", wn.addr);
		hex_id(wn.id, id);
		return 1;
	}
	return 0;
}

struct name_check {
	struct pp_call *call;
	char *state; /* the push-pull answer, merged once the name is ours */
	size_t len;
	char id[33];
};

static void pushpull_finish(struct pp_call *call, const struct fd_http_resp *r);

static void name_check_done(const struct fd_http_resp *r, void *arg)
{
	struct name_check *nc = arg;
	struct members *ms = nc->call->ms;
	struct json_object *info =
		r->status == 200 ? fd_json_parse(r->body, r->len, NULL) : NULL;
	const char *id = fd_json_get_str(info, "id");
	struct fd_http_resp saved = {.status = 200, .body = nc->state, .len = nc->len};

	if (id && strcmp(id, nc->id) == 0) {
		fd_errlog("name '%s' is already in use by the node at %s: stopping",
			  ms->n->name, fd_json_get_str(info, "addr"));
		node_report(ms->n, FD_EXIT_CONFLICT,
			    "name '%s' is already in use by the node at %s",
			    ms->n->name, fd_json_get_str(info, "addr"));
		node_stop(ms->n, FD_EXIT_CONFLICT);
		saved.status = 409;
		saved.error = "name already in use";
	}
	json_object_put(info);
	pushpull_finish(nc->call, &saved);
	free(nc->state);
	free(nc);
}

static void pushpull_done(const struct fd_http_resp *r, void *arg)
{
	struct pp_call *call = arg;
	struct members *ms = call->ms;
	char addr[FD_MEMBER_ADDR_MAX + 1], url[160], id[33];
	struct name_check *nc;

	if (call->join && call->join->check_name && !r->error && r->status == 200 &&
	    name_taken_candidate(ms, r->body, r->len, addr, id) &&
	    (nc = calloc(1, sizeof(*nc))) != NULL) {
		nc->call = call;
		memcpy(nc->id, id, sizeof(id));
		nc->state = malloc(r->len ? r->len : 1);
		nc->len = r->len;
		if (nc->state &&
		    fd_http_url(url, sizeof(url), addr, "/healthz") == 0) {
			memcpy(nc->state, r->body, r->len);
			fd_info("the cluster knows another '%s' at %s: checking whether it is us",
				ms->n->name, addr);
			if (fd_http_request(ms->n->client, "GET", url, NULL, 0,
					    NULL, 1000, name_check_done, nc, NULL))
				return;
		}
		free(nc->state);
		free(nc);
	}
	pushpull_finish(call, r);
}

static void pushpull_finish(struct pp_call *call, const struct fd_http_resp *r)
{
	struct members *ms = call->ms;
	struct json_object *res = NULL;
	struct fd_wire_pp_reader rd;

	if (call->join)
		res = json_object_array_get_idx(call->join->results,
						(size_t)call->slot);
	if (r->error || r->status != 200) {
		char why[256];
		struct json_object *body =
			r->error ? NULL : fd_json_parse(r->body, r->len, NULL);
		const char *msg = fd_json_get_str(body, "error");

		snprintf(why, sizeof(why), "%s",
			 r->error ? r->error
			 : msg	  ? msg
				  : "unexpected answer");
		json_object_put(body);
		fd_debug("push-pull with %s failed: %s", call->addr, why);
		if (res) {
			json_object_object_add(res, "ok",
					       json_object_new_boolean(0));
			json_object_object_add(res, "error",
					       json_object_new_string(why));
		}
	} else if (fd_member_pushpull_merge(ms->m, fd_loop_now(ms->n->loop),
					    r->body, r->len) < 0) {
		fd_warnlog("push-pull with %s: undecodable answer", call->addr);
		if (res) {
			json_object_object_add(res, "ok",
					       json_object_new_boolean(0));
			json_object_object_add(
				res, "error",
				json_object_new_string(
					"not an fd node (undecodable answer)"));
		}
	} else if (res && fd_wire_pp_open(&rd, r->body, r->len) == 0) {
		char id[33];

		hex_id(rd.sender.id, id);
		json_object_object_add(res, "ok", json_object_new_boolean(1));
		json_object_object_add(res, "name",
				       json_object_new_string(rd.sender.name));
		json_object_object_add(res, "id", json_object_new_string(id));
	}
	pump(ms);
	if (call->join) {
		if (--call->join->pending == 0)
			join_finish(call->join);
	} else {
		call_unlink(ms, call);
		free(call);
	}
}

static void h_pushpull(struct fd_http_req *req, void *arg)
{
	struct members *ms = arg;
	struct fd_wire_pp_reader rd;
	struct fd_member_info mi;
	const char *body;
	size_t len;
	uint8_t *state;
	size_t slen;

	body = fd_http_body(req, &len);
	if (fd_wire_pp_open(&rd, body, len) < 0) {
		fd_http_reply_error(req, 400, "undecodable push-pull state");
		return;
	}
	/* A joiner under the name of a live member at another address may be
	 * that member restarted, or another node taking its name: answer
	 * without merging, so the joiner can check (see pushpull_done) before
	 * the cluster takes it for the one it knows. */
	if (!(rd.flags & FD_WIRE_F_JOIN) ||
	    fd_member_find(ms->m, rd.sender.name, &mi) < 0 ||
	    (mi.state != FD_MEMBER_ALIVE && mi.state != FD_MEMBER_SUSPECT) ||
	    memcmp(mi.id, rd.sender.id, FD_MEMBER_ID_LEN) == 0 ||
	    strcmp(mi.addr, rd.sender.addr) == 0)
		fd_member_pushpull_merge(ms->m, fd_loop_now(ms->n->loop), body, len);
	if (fd_member_pushpull_encode(ms->m, 0, &state, &slen) < 0) {
		fd_http_reply_error(req, 500, "out of memory");
		return;
	}
	fd_http_reply(req, 200, "application/octet-stream", (const char *)state, slen);
	free(state);
	pump(ms);
}

static void join_closed(struct fd_http_req *req, void *arg)
{
	struct join_req *j = arg;

	(void)req;
	j->req = NULL; /* the client left: finish quietly */
}

static void join_retry(struct fd_loop *loop, struct fd_timer *t, void *arg);

static struct join_req *join_start(struct members *ms, struct fd_http_req *req,
				   const char *const *addrs, int n,
				   members_join_cb done, void *done_arg);

/* Starts a join of the given addresses. */
static struct join_req *join_begin(struct members *ms, struct fd_http_req *req,
				   const char *const *addrs, int n)
{
	return join_start(ms, req, addrs, n, NULL, NULL);
}

/* A join for members_join(): no HTTP request, not the start-up one; the
 * name is checked while this node is alone (a node that starts with
 * --discover only). */
static struct join_req *join_begin_cb(struct members *ms, const char *const *addrs,
				      int n, members_join_cb done, void *arg)
{
	return join_start(ms, NULL, addrs, n, done, arg);
}

static struct join_req *join_start(struct members *ms, struct fd_http_req *req,
				   const char *const *addrs, int n,
				   members_join_cb done, void *done_arg)
{
	struct join_req *j = calloc(1, sizeof(*j));

	if (!j) {
		if (req)
			fd_http_reply_error(req, 500, "out of memory");
		return NULL;
	}
	j->ms = ms;
	j->req = req;
	j->startup = req == NULL && !done;
	j->check_name =
		j->startup ||
		(done && fd_member_count(ms->m, FD_MEMBER_ALIVE) +
					 fd_member_count(ms->m, FD_MEMBER_SUSPECT) <=
				 1);
	j->done = done;
	j->done_arg = done_arg;
	j->results = json_object_new_array();
	j->calls = calloc((size_t)n, sizeof(*j->calls));
	j->ncalls = n;
	j->next = ms->joins;
	if (ms->joins)
		ms->joins->prev = j;
	ms->joins = j;
	if (!j->calls) {
		if (req)
			fd_http_reply_error(req, 500, "out of memory");
		join_free(j);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		struct json_object *res = fd_json_record("join");
		struct fd_err err;
		char host[256], full[300];
		int port;

		j->calls[i] = (struct pp_call){.ms = ms, .join = j, .slot = i};
		json_object_array_add(j->results, res);
		if (fd_parse_hostport(addrs[i], host, sizeof(host),
				      FD_DEFAULT_PORT, &port) < 0 ||
		    port == 0 ||
		    (size_t)snprintf(full, sizeof(full), "%s%s%s:%d",
				     strchr(host, ':') ? "[" : "", host,
				     strchr(host, ':') ? "]" : "",
				     port) > FD_MEMBER_ADDR_MAX) {
			json_object_object_add(res, "addr",
					       json_object_new_string(addrs[i]));
			json_object_object_add(res, "ok",
					       json_object_new_boolean(0));
			json_object_object_add(
				res, "error",
				json_object_new_string(
					"invalid address (expected HOST:PORT)"));
			continue;
		}
		/* The address as it will be used: the default port made explicit. */
		memcpy(j->calls[i].addr, full, strlen(full) + 1);
		json_object_object_add(res, "addr",
				       json_object_new_string(j->calls[i].addr));
		if (pushpull_start(ms, j->calls[i].addr, 1, &j->calls[i], &err) < 0) {
			json_object_object_add(res, "ok",
					       json_object_new_boolean(0));
			json_object_object_add(res, "error",
					       json_object_new_string(err.msg));
			continue;
		}
		j->pending++;
	}
	if (j->pending == 0) {
		join_finish(j);
		return NULL;
	}
	return j;
}

static void join_finish(struct join_req *j)
{
	struct members *ms = j->ms;
	const char *last = NULL; /* why the last address failed */
	int ok = 0;

	for (size_t i = 0; i < json_object_array_length(j->results); i++) {
		struct json_object *res = json_object_array_get_idx(j->results, i),
				   *v;

		if (json_object_object_get_ex(res, "ok", &v) &&
		    json_object_get_boolean(v)) {
			ok++;
		} else if (j->startup && !ms->n->stopping) {
			fd_warnlog("unable to join '%s': %s",
				   fd_json_get_str(res, "addr"),
				   fd_json_get_str(res, "error"));
			last = fd_json_get_str(res, "error");
		}
	}
	if (j->done) {
		members_join_cb done = j->done;

		j->done = NULL;
		done(j->results, j->done_arg);
	} else if (j->req) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "results", json_object_get(j->results));
		fd_http_on_close(j->req, NULL, NULL);
		fd_http_reply_json(j->req, 200, o);
	} else if (!j->startup || ms->n->stopping) {
		/* the client went away before the answer, or we are stopping */
	} else if (ok > 0) {
		ms->joined = 1;
		fd_info("joined the cluster through %d of %d addresses", ok,
			j->ncalls);
		node_report(ms->n, FD_EXIT_OK, NULL);
	} else if (ms->n->opts->retry_join) {
		ms->join_backoff = ms->join_backoff ? ms->join_backoff * 2 : 500;
		if (ms->join_backoff > JOIN_RETRY_MAX_MS)
			ms->join_backoff = JOIN_RETRY_MAX_MS;
		fd_info("no --join address answered; retrying in %lld ms",
			(long long)ms->join_backoff);
		node_report(ms->n, FD_EXIT_OK, NULL);
		fd_timer_arm(ms->n->loop, &ms->join_timer, ms->join_backoff);
	} else {
		fd_errlog("unable to join any --join address (use --retry-join to keep trying)");
		node_report(ms->n, FD_EXIT_RUNTIME,
			    "unable to join any --join address%s%s",
			    last ? ": " : "", last ? last : "");
		node_stop(ms->n, FD_EXIT_RUNTIME);
	}
	join_free(j);
}

static void join_retry(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct members *ms = arg;

	(void)loop;
	(void)t;
	if (!ms->joined && !ms->leaving)
		join_begin(ms, NULL, ms->n->opts->join, ms->n->opts->njoin);
}

void members_join(struct node *n, const char *const *addrs, int count,
		  members_join_cb done, void *arg)
{
	struct members *ms = n->members;

	if (ms->leaving || count <= 0) {
		done(NULL, arg);
		return;
	}
	join_begin_cb(ms, addrs, count, done, arg);
}

static void h_join(struct fd_http_req *req, void *arg)
{
	struct members *ms = arg;
	struct json_object *addrs;
	const char *list[256];
	struct join_req *j;
	size_t n;

	if (!json_object_object_get_ex(fd_http_json(req), "addrs", &addrs) ||
	    !json_object_is_type(addrs, json_type_array) ||
	    (n = json_object_array_length(addrs)) == 0 || n > 256) {
		fd_http_reply_error(
			req, 400,
			"expected {\"addrs\": [\"host:port\", ...]} (1 to 256)");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(addrs, i);

		if (!json_object_is_type(a, json_type_string)) {
			fd_http_reply_error(req, 400,
					    "addrs[%zu] is not a string", i);
			return;
		}
		list[i] = json_object_get_string(a);
	}
	if (ms->leaving) {
		fd_http_reply_error(req, 503, "this node is leaving the cluster");
		return;
	}
	fd_http_defer(req);
	j = join_begin(ms, req, list, (int)n);
	if (j)
		fd_http_on_close(req, join_closed, j);
}

static void h_members(struct fd_http_req *req, void *arg)
{
	struct members *ms = arg;
	struct json_object *o = json_object_new_object(),
			   *arr = json_object_new_array();
	struct fd_member_info mi;

	for (size_t i = 0; fd_member_at(ms->m, i, &mi) == 0; i++)
		json_object_array_add(arr, member_json(ms, &mi));
	json_object_object_add(o, "members", arr);
	fd_http_reply_json(req, 200, o);
}

static void stream_closed(struct fd_http_req *req, void *arg)
{
	struct members *ms = arg;

	for (int i = 0; i < ms->nstreams; i++)
		if (ms->streams[i] == req) {
			ms->streams[i] = ms->streams[--ms->nstreams];
			return;
		}
}

static void h_events(struct fd_http_req *req, void *arg)
{
	struct members *ms = arg;

	if (ms->nstreams == MAX_EVENT_STREAMS) {
		fd_http_reply_error(req, 503, "too many event streams (%d)",
				    MAX_EVENT_STREAMS);
		return;
	}
	if (fd_http_stream_begin(req, "application/x-ndjson", EVENT_QUEUE_MAX) < 0) {
		fd_http_reply_error(req, 500, "unable to start the stream");
		return;
	}
	fd_http_on_close(req, stream_closed, ms);
	ms->streams[ms->nstreams++] = req;
}

/* Leaving */

static void leave_check(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct members *ms = arg;

	if (fd_member_pending_broadcasts(ms->m) == 0 ||
	    fd_loop_now(loop) >= ms->leave_deadline) {
		fd_info("left the cluster");
		node_stop(ms->n, FD_EXIT_OK);
		return;
	}
	fd_timer_arm(loop, t, ms->cfg.gossip_interval);
}

void members_leave(struct node *n)
{
	struct members *ms = n->members;
	int64_t drain;

	if (ms->leaving)
		return;
	ms->leaving = 1;
	announce_leave(n); /* goodbyes first: browsers drop us at once */
	fd_member_leave(ms->m, fd_loop_now(n->loop));
	pump(ms);
	/* Alone: nobody to tell. Else give the news a few gossip rounds. */
	if (fd_member_size(ms->m) <= 1) {
		node_stop(n, FD_EXIT_OK);
		return;
	}
	drain = ms->cfg.gossip_interval * 10;
	if (drain > 2000)
		drain = 2000;
	ms->leave_deadline = fd_loop_now(n->loop) + drain;
	fd_timer_arm(n->loop, &ms->leave_timer, ms->cfg.gossip_interval);
}

static void h_leave(struct fd_http_req *req, void *arg)
{
	struct members *ms = arg;
	struct json_object *o = json_object_new_object();

	fd_info("leave requested by %s", fd_http_peer(req));
	json_object_object_add(o, "left", json_object_new_boolean(1));
	json_object_object_add(o, "name", json_object_new_string(ms->n->name));
	fd_http_reply_json(req, 200, o);
	members_leave(ms->n);
}

/* Setup */

int members_init(struct node *n)
{
	struct members *ms = calloc(1, sizeof(*ms));
	uint64_t seed;

	if (!ms)
		return -1;
	ms->n = n;
	n->members = ms;
	if (fd_member_config_profile(&ms->cfg, n->opts->profile) < 0)
		return -1;
	memcpy(&seed, n->id_raw, sizeof(seed));
	ms->m = fd_member_new(&ms->cfg, n->name, n->id_raw, n->addr,
			      (uint64_t)(fd_wall_us() / 1000), seed,
			      fd_loop_now(n->loop));
	if (!ms->m)
		return -1;
	fd_timer_init(&ms->timer, on_member_timer, ms);
	fd_timer_init(&ms->leave_timer, leave_check, ms);
	fd_timer_init(&ms->join_timer, join_retry, ms);
	if (fd_loop_watch(n->loop, n->udp_fd, EPOLLIN, on_udp, ms) < 0)
		return -1;
	return 0;
}

const struct fd_member *members_core(const struct node *n)
{
	return n->members->m;
}

void members_add_routes(struct node *n)
{
	struct members *ms = n->members;

	fd_http_route(n->http, "POST", PUSHPULL_PATH, FD_HTTP_LARGE, h_pushpull, ms);
	fd_http_route(n->http, "POST", "/v1/join", FD_HTTP_JSON | FD_HTTP_ADMIN,
		      h_join, ms);
	fd_http_route(n->http, "GET", "/v1/members", 0, h_members, ms);
	fd_http_route(n->http, "POST", "/v1/leave", FD_HTTP_ADMIN, h_leave, ms);
	fd_http_route(n->http, "GET", "/v1/events", 0, h_events, ms);
}

void members_start(struct node *n)
{
	struct members *ms = n->members;

	if (n->opts->njoin == 0) {
		ms->joined = 1;
		node_report(n, FD_EXIT_OK, NULL);
	} else {
		join_begin(ms, NULL, n->opts->join, n->opts->njoin);
	}
	pump(ms);
}

void members_add_info(struct node *n, struct json_object *info)
{
	struct members *ms = n->members;
	const struct fd_member_stats *st = fd_member_stats(ms->m);
	struct fd_member_quorum q;
	struct json_object *counts = json_object_new_object(),
			   *udp = json_object_new_object();

	fd_member_quorum(ms->m, &q);
	json_object_object_add(info, "profile",
			       json_object_new_string(n->opts->profile));
	json_object_object_add(
		counts, "alive",
		json_object_new_int((int)fd_member_count(ms->m, FD_MEMBER_ALIVE)));
	json_object_object_add(counts, "suspect",
			       json_object_new_int((int)fd_member_count(
				       ms->m, FD_MEMBER_SUSPECT)));
	json_object_object_add(
		counts, "failed",
		json_object_new_int((int)fd_member_count(ms->m, FD_MEMBER_FAILED)));
	json_object_object_add(
		counts, "left",
		json_object_new_int((int)fd_member_count(ms->m, FD_MEMBER_LEFT)));
	json_object_object_add(info, "members", counts);
	json_object_object_add(info, "partitioned",
			       json_object_new_boolean(q.partitioned));
	json_object_object_add(info, "quorum_expected",
			       json_object_new_int((int)q.expected));
	json_object_object_add(info, "health",
			       json_object_new_int((int)fd_member_health(ms->m)));
	json_object_object_add(info, "incarnation",
			       json_object_new_uint64(fd_member_incarnation(ms->m)));
	json_object_object_add(udp, "rx", json_object_new_uint64(st->rx));
	json_object_object_add(udp, "rx_bad", json_object_new_uint64(st->rx_bad));
	json_object_object_add(udp, "rx_version",
			       json_object_new_uint64(st->rx_version));
	json_object_object_add(udp, "tx", json_object_new_uint64(st->tx));
	json_object_object_add(udp, "tx_errors",
			       json_object_new_uint64(ms->udp_tx_err));
	json_object_object_add(info, "udp", udp);
}

void members_add_metrics(struct node *n, struct fd_metrics *m)
{
	struct members *ms = n->members;
	const struct fd_member_stats *st = fd_member_stats(ms->m);
	struct fd_member_quorum q;
	static const enum fd_member_state states[] = {
		FD_MEMBER_ALIVE, FD_MEMBER_SUSPECT, FD_MEMBER_FAILED, FD_MEMBER_LEFT};

	fd_member_quorum(ms->m, &q);
	fd_metrics_family(m, "fd_members", "gauge",
			  "Members this node knows, by state (itself included).");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		const char *l[] = {"state", fd_member_state_name(states[i]), NULL};

		fd_metrics_sample(m, "fd_members", l,
				  fd_member_count(ms->m, states[i]));
	}
	fd_metrics_gauge(m, "fd_partitioned",
			 "1 when this node sees fewer than a majority of the last "
			 "stable membership.",
			 q.partitioned);
	fd_metrics_gauge(m, "fd_member_health",
			 "Local health (Lifeguard): 0 is healthy, higher slows "
			 "probing down.",
			 fd_member_health(ms->m));
	fd_metrics_counter(m, "fd_member_probes_total", "Probes sent.", st->probes);
	fd_metrics_counter(m, "fd_member_suspicions_total",
			   "Probes that got no ack at all: the target was "
			   "suspected.",
			   st->probe_failed);
	fd_metrics_counter(m, "fd_member_ping_reqs_total",
			   "Indirect probe requests sent.", st->ping_reqs);
	fd_metrics_counter(m, "fd_member_refutes_total",
			   "Suspicions of this node it refuted.", st->refutes);
	fd_metrics_counter(m, "fd_member_pushpull_total",
			   "Push-pull state exchanges merged.", st->pushpull_rx);
	fd_metrics_counter(m, "fd_udp_rx_datagrams_total",
			   "Datagrams received.", st->rx);
	fd_metrics_counter(m, "fd_udp_rx_bad_total",
			   "Datagrams received that could not be decoded.",
			   st->rx_bad);
	fd_metrics_counter(m, "fd_udp_tx_datagrams_total", "Datagrams sent.", st->tx);
}

int members_ready(struct node *n, char *why, size_t len)
{
	struct members *ms = n->members;
	struct fd_member_quorum q;
	unsigned alive = fd_member_count(ms->m, FD_MEMBER_ALIVE);

	if (ms->leaving) {
		snprintf(why, len, "leaving the cluster");
		return 0;
	}
	fd_member_quorum(ms->m, &q);
	if (n->opts->ready_quorum && q.partitioned) {
		snprintf(why, len, "no quorum: %u of %u members reachable",
			 q.alive, q.expected);
		return 0;
	}
	if (n->opts->ready_expect > 0 && alive < (unsigned)n->opts->ready_expect) {
		snprintf(why, len, "%u of %d expected members alive", alive,
			 n->opts->ready_expect);
		return 0;
	}
	return 1;
}

void members_free(struct node *n)
{
	struct members *ms = n->members;

	if (!ms)
		return;
	fd_timer_disarm(n->loop, &ms->timer);
	fd_timer_disarm(n->loop, &ms->leave_timer);
	fd_timer_disarm(n->loop, &ms->join_timer);
	fd_loop_unwatch(n->loop, n->udp_fd);
	/* The HTTP client is gone by now: nothing will call back. */
	while (ms->calls) {
		struct pp_call *c = ms->calls;

		call_unlink(ms, c);
		free(c);
	}
	while (ms->joins)
		join_free(ms->joins);
	fd_member_free(ms->m);
	for (size_t i = 0; i < ms->capfails; i++)
		free(ms->fails[i].name);
	free(ms->fails);
	free(ms);
	n->members = NULL;
}
