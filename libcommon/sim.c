#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKED 256

enum ev_kind { EV_TIMER, EV_DGRAM, EV_PP_REQ, EV_PP_RESP, EV_STOP };

struct sim_ev {
	int64_t t;
	uint64_t order; /* FIFO among equal times: determinism */
	uint8_t kind;
	uint32_t dst, dst_gen;
	uint32_t src, src_gen;
	uint32_t len;
	uint8_t *buf;
};

struct sim_node {
	struct fd_member *m;
	uint32_t gen;
	unsigned group;
	int leaving;
	int started;
	int64_t timer_at;
	int64_t stalled_until;
	uint8_t id[FD_MEMBER_ID_LEN];
	char name[16];
	char addr[32];
};

struct fd_sim {
	struct fd_sim_config cfg;
	uint64_t rng;
	int64_t now;
	uint64_t order;
	struct sim_node *nodes;
	struct sim_ev *heap;
	size_t hlen, hcap;
	uint32_t blocked[MAX_BLOCKED][2];
	unsigned nblocked;
	fd_sim_event_fn on_event;
	void *arg;
	struct fd_sim_stats stats;
	struct fd_member_out out;
	struct fd_member_event ev;
};

static uint64_t rnd(struct fd_sim *s)
{
	/* splitmix64 */
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double rnd_unit(struct fd_sim *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

/* ---- the event heap ---- */

static int ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static int heap_push(struct fd_sim *s, struct sim_ev *e)
{
	size_t i;

	if (s->hlen == s->hcap) {
		size_t cap = s->hcap ? s->hcap * 2 : 1024;
		struct sim_ev *p;

		if (s->hcap >= FD_SIM_MAX_QUEUE)
			goto full;
		if (cap > FD_SIM_MAX_QUEUE)
			cap = FD_SIM_MAX_QUEUE;
		p = realloc(s->heap, cap * sizeof(*p));
		if (!p)
			goto full;
		s->heap = p;
		s->hcap = cap;
	}
	e->order = s->order++;
	i = s->hlen++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!ev_less(e, &s->heap[parent]))
			break;
		s->heap[i] = s->heap[parent];
		i = parent;
	}
	s->heap[i] = *e;
	return 0;
full:
	s->stats.queue_full++;
	free(e->buf);
	return -1;
}

static void heap_pop(struct fd_sim *s, struct sim_ev *out)
{
	struct sim_ev last;
	size_t i = 0;

	*out = s->heap[0];
	last = s->heap[--s->hlen];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->hlen)
			break;
		if (c + 1 < s->hlen && ev_less(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_less(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->hlen)
		s->heap[i] = last;
}

/* ---- addresses ---- */

static void format_addr(char *buf, size_t len, uint32_t i, uint32_t gen)
{
	snprintf(buf, len, "10.%u.%u.%u:%u", (i >> 16) & 0xff, (i >> 8) & 0xff,
		 i & 0xff, 4380 + gen % 60000);
}

/* Returns 0 and the node index and generation, or -1 for a foreign addr. */
static int parse_addr(const struct fd_sim *s, const char *addr, uint32_t *i,
		      uint32_t *gen)
{
	unsigned a, b, c, port;
	char tail;

	if (sscanf(addr, "10.%u.%u.%u:%u%c", &a, &b, &c, &port, &tail) != 4 ||
	    a > 255 || b > 255 || c > 255 || port < 4380)
		return -1;
	*i = a << 16 | b << 8 | c;
	if (*i >= s->cfg.nodes)
		return -1;
	*gen = port - 4380;
	return 0;
}

static int blocked(const struct fd_sim *s, uint32_t a, uint32_t b)
{
	if (s->nodes[a].group != s->nodes[b].group)
		return 1;
	for (unsigned k = 0; k < s->nblocked; k++)
		if ((s->blocked[k][0] == a && s->blocked[k][1] == b) ||
		    (s->blocked[k][0] == b && s->blocked[k][1] == a))
			return 1;
	return 0;
}

static int alive_gen(const struct fd_sim *s, uint32_t i, uint32_t gen)
{
	return s->nodes[i].m && s->nodes[i].gen % 60000 == gen % 60000;
}

static int64_t latency(struct fd_sim *s)
{
	int64_t lo = s->cfg.latency_min, hi = s->cfg.latency_max;

	return lo + (hi > lo ? (int64_t)(rnd(s) % (uint64_t)(hi - lo + 1)) : 0);
}

/* ---- driving one node ---- */

static void schedule_timer(struct fd_sim *s, uint32_t i)
{
	struct sim_node *nd = &s->nodes[i];
	int64_t d;
	struct sim_ev e;

	if (!nd->m)
		return;
	d = fd_member_next_deadline(nd->m);
	if (d < s->now)
		d = s->now;
	if (d == nd->timer_at)
		return;
	nd->timer_at = d;
	memset(&e, 0, sizeof(e));
	e.t = d;
	e.kind = EV_TIMER;
	e.dst = i;
	e.dst_gen = nd->gen;
	heap_push(s, &e);
}

static void route_pushpull(struct fd_sim *s, uint32_t src, const char *addr, int join)
{
	struct sim_node *a = &s->nodes[src];
	struct sim_ev e;
	uint32_t dst, gen;
	uint8_t *buf;
	size_t len;

	if (parse_addr(s, addr, &dst, &gen) < 0 || !alive_gen(s, dst, gen) ||
	    blocked(s, src, dst) || dst == src) {
		s->stats.pushpull_failed++;
		return;
	}
	if (fd_member_pushpull_encode(a->m, join, &buf, &len) < 0) {
		s->stats.pushpull_failed++;
		return;
	}
	memset(&e, 0, sizeof(e));
	e.t = s->now + latency(s);
	e.kind = EV_PP_REQ;
	e.dst = dst;
	e.dst_gen = gen;
	e.src = src;
	e.src_gen = a->gen;
	e.buf = buf;
	e.len = (uint32_t)len;
	heap_push(s, &e);
}

static void route_dgram(struct fd_sim *s, uint32_t src, const struct fd_member_out *o)
{
	struct sim_ev e;
	uint32_t dst, gen;

	s->stats.sent++;
	if (parse_addr(s, o->addr, &dst, &gen) < 0 || blocked(s, src, dst)) {
		s->stats.blocked++;
		return;
	}
	if (s->cfg.loss > 0 && rnd_unit(s) < s->cfg.loss) {
		s->stats.lost++;
		return;
	}
	memset(&e, 0, sizeof(e));
	e.buf = malloc(o->len ? o->len : 1);
	if (!e.buf)
		return;
	memcpy(e.buf, o->buf, o->len);
	e.len = (uint32_t)o->len;
	e.t = s->now + latency(s);
	e.kind = EV_DGRAM;
	e.dst = dst;
	e.dst_gen = gen;
	e.src = src;
	e.src_gen = s->nodes[src].gen;
	heap_push(s, &e);
}

/* Hands out what node i queued: outputs to the network, events to the
 * callback; then reschedules its timer. */
static void drain(struct fd_sim *s, uint32_t i)
{
	struct sim_node *nd = &s->nodes[i];

	if (!nd->m)
		return;
	while (fd_member_next_output(nd->m, &s->out)) {
		if (s->out.kind == FD_MEMBER_OUT_DGRAM)
			route_dgram(s, i, &s->out);
		else
			route_pushpull(s, i, s->out.addr, s->out.join);
	}
	while (fd_member_next_event(nd->m, &s->ev)) {
		s->stats.events++;
		if (s->on_event)
			s->on_event(s->arg, i, &s->ev, s->now);
	}
	schedule_timer(s, i);
}

static void stop(struct fd_sim *s, uint32_t i)
{
	struct sim_node *nd = &s->nodes[i];

	fd_member_free(nd->m);
	nd->m = NULL;
	nd->leaving = 0;
	nd->timer_at = INT64_MIN;
}

static void handle(struct fd_sim *s, struct sim_ev *e)
{
	struct sim_node *nd = &s->nodes[e->dst];
	char from[32];

	if (!alive_gen(s, e->dst, e->dst_gen)) {
		if (e->kind == EV_DGRAM)
			s->stats.blocked++;
		if (e->kind == EV_PP_REQ || e->kind == EV_PP_RESP)
			s->stats.pushpull_failed++;
		return;
	}
	if (nd->stalled_until > s->now && e->kind != EV_STOP) {
		/* The process is not scheduled: everything waits. */
		struct sim_ev later = *e;

		later.t = nd->stalled_until;
		if (e->kind == EV_TIMER)
			nd->timer_at = later.t;
		e->buf = NULL;
		heap_push(s, &later);
		return;
	}
	switch (e->kind) {
	case EV_TIMER:
		if (e->t != nd->timer_at)
			return; /* superseded */
		nd->timer_at = INT64_MIN;
		fd_member_tick(nd->m, s->now);
		break;
	case EV_DGRAM:
		s->stats.delivered++;
		format_addr(from, sizeof(from), e->src, e->src_gen);
		fd_member_recv(nd->m, s->now, from, e->buf, e->len);
		break;
	case EV_PP_REQ: {
		struct sim_ev r;
		uint8_t *buf;
		size_t len;

		if (blocked(s, e->src, e->dst)) {
			s->stats.pushpull_failed++;
			return;
		}
		fd_member_pushpull_merge(nd->m, s->now, e->buf, e->len);
		if (fd_member_pushpull_encode(nd->m, 0, &buf, &len) == 0) {
			memset(&r, 0, sizeof(r));
			r.t = s->now + latency(s);
			r.kind = EV_PP_RESP;
			r.dst = e->src;
			r.dst_gen = e->src_gen;
			r.src = e->dst;
			r.src_gen = nd->gen;
			r.buf = buf;
			r.len = (uint32_t)len;
			heap_push(s, &r);
		}
		break;
	}
	case EV_PP_RESP:
		if (blocked(s, e->src, e->dst)) {
			s->stats.pushpull_failed++;
			return;
		}
		s->stats.pushpulls++;
		fd_member_pushpull_merge(nd->m, s->now, e->buf, e->len);
		break;
	case EV_STOP:
		if (nd->leaving)
			stop(s, e->dst);
		return;
	}
	drain(s, e->dst);
}

/* ---- public ---- */

struct fd_sim *fd_sim_new(const struct fd_sim_config *cfg)
{
	struct fd_sim *s;

	if (!cfg || cfg->nodes < 1 || cfg->nodes > FD_SIM_MAX_NODES ||
	    cfg->latency_min < 0 || cfg->latency_max < cfg->latency_min ||
	    !(cfg->loss >= 0 && cfg->loss <= 1) ||
	    fd_member_config_check(&cfg->member) < 0) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->rng = cfg->seed;
	s->nodes = calloc(cfg->nodes, sizeof(*s->nodes));
	if (!s->nodes) {
		free(s);
		return NULL;
	}
	for (unsigned i = 0; i < cfg->nodes; i++) {
		snprintf(s->nodes[i].name, sizeof(s->nodes[i].name), "n%u", i);
		format_addr(s->nodes[i].addr, sizeof(s->nodes[i].addr), i, 0);
		s->nodes[i].timer_at = INT64_MIN;
	}
	return s;
}

void fd_sim_free(struct fd_sim *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->hlen; i++)
		free(s->heap[i].buf);
	for (unsigned i = 0; i < s->cfg.nodes; i++)
		fd_member_free(s->nodes[i].m);
	free(s->heap);
	free(s->nodes);
	free(s);
}

void fd_sim_on_event(struct fd_sim *s, fd_sim_event_fn fn, void *arg)
{
	s->on_event = fn;
	s->arg = arg;
}

int fd_sim_start(struct fd_sim *s, unsigned i, const unsigned *seeds, unsigned nseeds)
{
	struct sim_node *nd;

	if (i >= s->cfg.nodes) {
		errno = EINVAL;
		return -1;
	}
	nd = &s->nodes[i];
	if (nd->m) {
		errno = EBUSY;
		return -1;
	}
	if (nd->started)
		nd->gen++;
	nd->started = 1;
	for (int k = 0; k < FD_MEMBER_ID_LEN; k++)
		nd->id[k] = (uint8_t)rnd(s);
	format_addr(nd->addr, sizeof(nd->addr), i, nd->gen);
	/* The clock stands in for the wall clock: a restart outranks. */
	nd->m = fd_member_new(&s->cfg.member, nd->name, nd->id, nd->addr,
			      (uint64_t)s->now + 1, rnd(s), s->now);
	if (!nd->m)
		return -1;
	nd->leaving = 0;
	nd->stalled_until = 0;
	nd->timer_at = INT64_MIN;
	for (unsigned k = 0; k < nseeds; k++)
		if (seeds[k] < s->cfg.nodes && seeds[k] != i &&
		    s->nodes[seeds[k]].m)
			fd_member_join(nd->m, s->now, s->nodes[seeds[k]].addr);
	drain(s, i);
	return 0;
}

int fd_sim_set_name(struct fd_sim *s, unsigned i, const char *name)
{
	if (i >= s->cfg.nodes || !name || !name[0] ||
	    strlen(name) >= sizeof(s->nodes[i].name) || !fd_wire_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(s->nodes[i].name, name, strlen(name) + 1);
	return 0;
}

int fd_sim_join(struct fd_sim *s, unsigned i, unsigned j)
{
	if (i >= s->cfg.nodes || j >= s->cfg.nodes || !s->nodes[i].m) {
		errno = EINVAL;
		return -1;
	}
	if (fd_member_join(s->nodes[i].m, s->now, s->nodes[j].addr) < 0)
		return -1;
	drain(s, i);
	return 0;
}

void fd_sim_kill(struct fd_sim *s, unsigned i)
{
	if (i < s->cfg.nodes && s->nodes[i].m)
		stop(s, i);
}

void fd_sim_leave(struct fd_sim *s, unsigned i, int64_t drain_ms)
{
	struct sim_ev e;

	if (i >= s->cfg.nodes || !s->nodes[i].m || s->nodes[i].leaving)
		return;
	s->nodes[i].leaving = 1;
	fd_member_leave(s->nodes[i].m, s->now);
	drain(s, i);
	memset(&e, 0, sizeof(e));
	e.t = s->now + drain_ms;
	e.kind = EV_STOP;
	e.dst = i;
	e.dst_gen = s->nodes[i].gen;
	heap_push(s, &e);
}

void fd_sim_set_group(struct fd_sim *s, unsigned i, unsigned group)
{
	if (i < s->cfg.nodes)
		s->nodes[i].group = group;
}

void fd_sim_heal(struct fd_sim *s)
{
	for (unsigned i = 0; i < s->cfg.nodes; i++)
		s->nodes[i].group = 0;
}

int fd_sim_block(struct fd_sim *s, unsigned a, unsigned b, int on)
{
	for (unsigned k = 0; k < s->nblocked; k++) {
		if ((s->blocked[k][0] == a && s->blocked[k][1] == b) ||
		    (s->blocked[k][0] == b && s->blocked[k][1] == a)) {
			if (!on)
				s->blocked[k][0] = s->blocked[k][1] = UINT32_MAX;
			return 0;
		}
	}
	if (!on)
		return 0;
	if (s->nblocked == MAX_BLOCKED) {
		errno = ENOBUFS;
		return -1;
	}
	s->blocked[s->nblocked][0] = a;
	s->blocked[s->nblocked][1] = b;
	s->nblocked++;
	return 0;
}

void fd_sim_set_loss(struct fd_sim *s, double loss)
{
	s->cfg.loss = loss;
}

void fd_sim_stall(struct fd_sim *s, unsigned i, int64_t until)
{
	if (i < s->cfg.nodes)
		s->nodes[i].stalled_until = until;
}

void fd_sim_run_until(struct fd_sim *s, int64_t t)
{
	struct sim_ev e;

	while (s->hlen && s->heap[0].t <= t) {
		heap_pop(s, &e);
		if (e.t > s->now)
			s->now = e.t;
		handle(s, &e);
		free(e.buf);
	}
	if (t > s->now)
		s->now = t;
}

int64_t fd_sim_now(const struct fd_sim *s)
{
	return s->now;
}

struct fd_member *fd_sim_member(struct fd_sim *s, unsigned i)
{
	return i < s->cfg.nodes ? s->nodes[i].m : NULL;
}

unsigned fd_sim_nodes(const struct fd_sim *s)
{
	return s->cfg.nodes;
}

int fd_sim_running(const struct fd_sim *s, unsigned i)
{
	return i < s->cfg.nodes && s->nodes[i].m;
}

static int live_node(const struct fd_sim *s, unsigned i)
{
	return s->nodes[i].m && !s->nodes[i].leaving;
}

unsigned fd_sim_live(const struct fd_sim *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->cfg.nodes; i++)
		n += live_node(s, i) ? 1u : 0u;
	return n;
}

int fd_sim_converged(const struct fd_sim *s)
{
	unsigned live = fd_sim_live(s);
	struct fd_member_info info;

	for (unsigned i = 0; i < s->cfg.nodes; i++) {
		const struct fd_member *m = s->nodes[i].m;

		if (!live_node(s, i))
			continue;
		if (fd_member_count(m, FD_MEMBER_ALIVE) != live ||
		    fd_member_count(m, FD_MEMBER_SUSPECT) != 0)
			return 0;
		for (unsigned j = 0; j < s->cfg.nodes; j++) {
			if (!live_node(s, j))
				continue;
			if (fd_member_find(m, s->nodes[j].name, &info) < 0 ||
			    info.state != FD_MEMBER_ALIVE ||
			    memcmp(info.id, s->nodes[j].id, FD_MEMBER_ID_LEN) != 0)
				return 0;
		}
	}
	return 1;
}

unsigned fd_sim_seen_as(const struct fd_sim *s, unsigned i, enum fd_member_state st)
{
	struct fd_member_info info;
	unsigned n = 0;

	for (unsigned j = 0; j < s->cfg.nodes; j++) {
		if (j == i || !live_node(s, j))
			continue;
		if (fd_member_find(s->nodes[j].m, s->nodes[i].name, &info) == 0 &&
		    info.state == st &&
		    memcmp(info.id, s->nodes[i].id, FD_MEMBER_ID_LEN) == 0)
			n++;
	}
	return n;
}

const struct fd_sim_stats *fd_sim_stats(const struct fd_sim *s)
{
	return &s->stats;
}

const char *fd_sim_name(const struct fd_sim *s, unsigned i)
{
	return i < s->cfg.nodes ? s->nodes[i].name : "";
}

const char *fd_sim_addr(const struct fd_sim *s, unsigned i)
{
	return i < s->cfg.nodes ? s->nodes[i].addr : "";
}
