#include "member.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TX_BUCKETS 64	  /* retransmit counts tracked; the limit is below */
#define INDIRECT_MAX 64	  /* ping-reqs we serve at once */
#define CONFIRM_MAX 8	  /* Lifeguard confirmations tracked per suspicion */
#define PICK_TRIES 64	  /* random draws when choosing gossip targets */
#define BC_SCAN_MAX 512	  /* queued updates examined per datagram */
#define MIN_UPDATE_LEN 29 /* smallest encoded update */

struct node {
	char *name;
	uint64_t hash;
	uint8_t id[FD_MEMBER_ID_LEN];
	char addr[FD_MEMBER_ADDR_MAX + 1];
	uint64_t inc;
	int64_t since;
	int64_t nudged; /* last time we told it that we hold it failed */
	int32_t bc;	/* queued broadcast, or -1 */
	int32_t susp;	/* suspicion, or -1 */
	uint8_t state;
	uint8_t name_len, addr_len;
};

/* A queued update: always the current record of its node (so a newer
 * update replaces an older one by construction), plus who suspects it. */
struct bcast {
	int32_t node; /* -1 when free */
	int32_t prev, next;
	uint8_t tx;
	uint8_t from_len;
	char *from;
};

struct susp {
	int32_t node;
	int64_t start, deadline, min, max;
	uint64_t from_hash;
	unsigned k, n;
	uint64_t confirm[CONFIRM_MAX];
};

struct indirect {
	int used;
	int want_nack;
	uint32_t seq;	   /* of our ping to the target */
	uint32_t orig_seq; /* of the requester's probe */
	int64_t nack_at;
	char requester[FD_MEMBER_ADDR_MAX + 1];
};

struct outq {
	uint8_t kind;
	uint8_t join;
	uint16_t len;
	char addr[FD_MEMBER_ADDR_MAX + 1];
	uint8_t *buf;
};

struct probe {
	int active;
	int indirect_sent;
	uint32_t seq;
	unsigned nacks_expected, nacks;
	int64_t timeout_at, end_at;
	uint8_t id[FD_MEMBER_ID_LEN];
	char name[FD_MEMBER_NAME_MAX + 1];
};

struct fd_member {
	struct fd_member_config cfg;
	uint64_t rng;

	struct node *nodes; /* nodes[0] is this node */
	uint32_t n, cap;
	int32_t *slots; /* name -> index, linear probing, -1 empty */
	uint32_t nslots;
	unsigned counts[4];

	struct probe probe;
	uint32_t probe_idx;
	uint32_t seq;
	unsigned awareness;
	int64_t next_probe, next_gossip, next_pushpull, next_reconnect, next_reap;
	int leaving;
	int outranked_twin; /* we saw an older instance under our name */
	int conflict_role;  /* 0 no conflict yet, 1 newcomer, 2 incumbent */
	int64_t pp_backoff; /* current push-pull period while ramping up */

	struct bcast *bc;
	uint32_t bc_cap;
	int32_t bc_free;
	size_t bc_count;
	int32_t bq_head[TX_BUCKETS];

	struct susp *susp;
	uint32_t nsusp, susp_cap;

	struct indirect ind[INDIRECT_MAX];
	unsigned nind;

	struct outq *outq;
	size_t out_head, out_len, out_cap;
	struct fd_member_event *evq;
	size_t ev_head, ev_len, ev_cap;

	struct fd_member_stats stats;
	struct fd_wire_msg rx, tx;
	struct fd_wire_update upd;
	uint8_t txbuf[FD_WIRE_MTU];
};

/* ---- configuration ---- */

int fd_member_config_profile(struct fd_member_config *cfg, const char *profile)
{
	struct fd_member_config c = {
		.indirect_checks = 3,
		.suspicion_mult = 4,
		.suspicion_max_mult = 6,
		.retransmit_mult = 4,
		.gossip_fanout = 3,
		.awareness_max = 8,
		.max_members = FD_MEMBER_MAX,
	};

	if (strcmp(profile, "local") == 0) {
		c.probe_interval = 150;
		c.probe_timeout = 75;
		c.suspicion_mult = 3;
		c.gossip_interval = 40;
		c.gossip_to_dead = 6000;
		c.pushpull_interval = 6000;
		c.reconnect_interval = 3000;
		c.reap_timeout = 3600 * 1000;
	} else if (strcmp(profile, "lan") == 0) {
		/* memberlist's LAN timings, but suspicion mult 1.5 instead of
		 * 4: with 4 the suspicion timeout alone is 6 s at 32 members,
		 * and finding the dead node takes 1-2 s more, which rules out
		 * detecting it in under 5 s. A suspected node still has 2.3 s
		 * (at 32 members) to refute, and the buddy system tells it
		 * first. */
		c.probe_interval = 1000;
		c.probe_timeout = 500;
		c.suspicion_mult = 1.5;
		c.gossip_interval = 200;
		c.gossip_to_dead = 30000;
		c.pushpull_interval = 30000;
		c.reconnect_interval = 15000;
		c.reap_timeout = 24 * 3600 * 1000;
	} else if (strcmp(profile, "wan") == 0) {
		c.probe_interval = 5000;
		c.probe_timeout = 3000;
		c.suspicion_mult = 6;
		c.gossip_interval = 500;
		c.gossip_fanout = 4;
		c.gossip_to_dead = 60000;
		c.pushpull_interval = 60000;
		c.reconnect_interval = 30000;
		c.reap_timeout = 24 * 3600 * 1000;
	} else {
		errno = EINVAL;
		return -1;
	}
	*cfg = c;
	return 0;
}

int fd_member_config_check(const struct fd_member_config *c)
{
	if (c->probe_interval <= 0 || c->probe_timeout <= 0 ||
	    c->probe_timeout >= c->probe_interval || c->indirect_checks > 16 ||
	    !(c->suspicion_mult >= 1 && c->suspicion_mult <= 100) ||
	    c->suspicion_max_mult < 1 || c->suspicion_max_mult > 100 ||
	    c->retransmit_mult < 1 || c->retransmit_mult > 10 ||
	    c->gossip_interval <= 0 || c->gossip_fanout < 1 ||
	    c->gossip_fanout > 16 || c->gossip_to_dead < 0 ||
	    c->pushpull_interval < 0 || c->reconnect_interval < 0 ||
	    c->reap_timeout <= 0 || c->awareness_max < 1 || c->awareness_max > 64 ||
	    c->max_members < 1 || c->max_members > FD_MEMBER_MAX) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

const char *fd_member_state_name(enum fd_member_state s)
{
	return s == FD_MEMBER_NONE ? "none" : fd_wire_state_name((int)s);
}

/* ---- small helpers ---- */

static uint64_t rnd(struct fd_member *m)
{
	uint64_t x = m->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	m->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_below(struct fd_member *m, uint64_t n)
{
	return n ? rnd(m) % n : 0;
}

static uint64_t hash_name(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static unsigned alive_n(const struct fd_member *m)
{
	return m->counts[FD_MEMBER_ALIVE] + m->counts[FD_MEMBER_SUSPECT];
}

static int64_t scaled(const struct fd_member *m, int64_t t)
{
	return t * (int64_t)(m->awareness + 1);
}

static void awareness_add(struct fd_member *m, int delta)
{
	int s = (int)m->awareness + delta;

	if (s < 0)
		s = 0;
	if (s > (int)m->cfg.awareness_max - 1)
		s = (int)m->cfg.awareness_max - 1;
	m->awareness = (unsigned)s;
}

static int live(uint8_t state)
{
	return state == FD_MEMBER_ALIVE || state == FD_MEMBER_SUSPECT;
}

/* ---- the table: nodes[] and the name -> index map ---- */

static int32_t *slot_for(const struct fd_member *m, const char *name, uint64_t h)
{
	uint32_t mask = m->nslots - 1;

	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		int32_t v = m->slots[i];

		if (v < 0 ||
		    (m->nodes[v].hash == h && strcmp(m->nodes[v].name, name) == 0))
			return &m->slots[i];
	}
}

static int32_t find(const struct fd_member *m, const char *name)
{
	return *slot_for(m, name, hash_name(name));
}

static void slots_rebuild(struct fd_member *m)
{
	for (uint32_t i = 0; i < m->nslots; i++)
		m->slots[i] = -1;
	for (uint32_t i = 0; i < m->n; i++)
		*slot_for(m, m->nodes[i].name, m->nodes[i].hash) = (int32_t)i;
}

/* Backward-shift deletion keeps probe sequences intact without tombstones. */
static void slot_delete(struct fd_member *m, int32_t *slot)
{
	uint32_t mask = m->nslots - 1;
	uint32_t i = (uint32_t)(slot - m->slots), j = i;

	for (;;) {
		uint32_t k;

		j = (j + 1) & mask;
		if (m->slots[j] < 0)
			break;
		k = (uint32_t)m->nodes[m->slots[j]].hash & mask;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	m->slots[i] = -1;
}

static void set_addr(struct node *nd, const char *addr)
{
	copy_str(nd->addr, sizeof(nd->addr), addr);
	nd->addr_len = (uint8_t)strlen(nd->addr);
}

static void fix_backrefs(struct fd_member *m, uint32_t i)
{
	if (m->nodes[i].bc >= 0)
		m->bc[m->nodes[i].bc].node = (int32_t)i;
	if (m->nodes[i].susp >= 0)
		m->susp[m->nodes[i].susp].node = (int32_t)i;
}

static void swap_nodes(struct fd_member *m, uint32_t i, uint32_t j)
{
	struct node t;
	int32_t *si, *sj;

	if (i == j)
		return;
	si = slot_for(m, m->nodes[i].name, m->nodes[i].hash);
	sj = slot_for(m, m->nodes[j].name, m->nodes[j].hash);
	*si = (int32_t)j;
	*sj = (int32_t)i;
	t = m->nodes[i];
	m->nodes[i] = m->nodes[j];
	m->nodes[j] = t;
	fix_backrefs(m, i);
	fix_backrefs(m, j);
}

static int grow_table(struct fd_member *m)
{
	if (m->n == m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 16;
		struct node *p;

		if (cap > m->cfg.max_members)
			cap = m->cfg.max_members;
		p = realloc(m->nodes, cap * sizeof(*p));
		if (!p)
			return -1;
		m->nodes = p;
		m->cap = cap;
	}
	if ((m->n + 1) * 2 > m->nslots) {
		uint32_t ns = m->nslots ? m->nslots * 2 : 32;
		int32_t *s = malloc(ns * sizeof(*s));

		if (!s)
			return -1;
		free(m->slots);
		m->slots = s;
		m->nslots = ns;
		slots_rebuild(m);
	}
	return 0;
}

/* Adds a member (not yet in the table) at a random place in the probe
 * order, as memberlist does, so a newcomer is not probed by everyone at
 * once. Returns its index or -1 (table full / out of memory). */
static int32_t add_node(struct fd_member *m, const struct fd_wire_node *w,
			const char *addr, int64_t now)
{
	struct node *nd;
	uint32_t i, r;

	if (m->n >= m->cfg.max_members || grow_table(m) < 0) {
		m->stats.members_dropped++;
		return -1;
	}
	i = m->n;
	nd = &m->nodes[i];
	memset(nd, 0, sizeof(*nd));
	nd->name = strdup(w->name);
	if (!nd->name) {
		m->stats.members_dropped++;
		return -1;
	}
	nd->hash = hash_name(w->name);
	nd->name_len = (uint8_t)strlen(nd->name);
	memcpy(nd->id, w->id, FD_MEMBER_ID_LEN);
	set_addr(nd, addr);
	nd->inc = w->incarnation;
	nd->state = w->state;
	nd->since = now;
	nd->nudged = INT64_MIN / 2;
	nd->bc = -1;
	nd->susp = -1;
	*slot_for(m, nd->name, nd->hash) = (int32_t)i;
	m->n++;
	m->counts[nd->state]++;
	if (i < 2)
		return (int32_t)i;
	r = 1 + (uint32_t)rnd_below(m, i);
	swap_nodes(m, i, r);
	return (int32_t)r;
}

static void bc_drop(struct fd_member *m, int32_t b);
static void susp_remove(struct fd_member *m, int32_t s);

static void remove_node(struct fd_member *m, uint32_t i)
{
	struct node *nd = &m->nodes[i];
	uint32_t last = m->n - 1;

	if (nd->bc >= 0)
		bc_drop(m, nd->bc);
	if (nd->susp >= 0)
		susp_remove(m, nd->susp);
	slot_delete(m, slot_for(m, nd->name, nd->hash));
	m->counts[nd->state]--;
	free(nd->name);
	if (i != last) {
		*slot_for(m, m->nodes[last].name, m->nodes[last].hash) = (int32_t)i;
		m->nodes[i] = m->nodes[last];
		fix_backrefs(m, i);
	}
	m->n--;
}

static void shuffle(struct fd_member *m)
{
	for (uint32_t i = m->n - 1; i > 1; i--) {
		uint32_t j = 1 + (uint32_t)rnd_below(m, i);
		struct node t = m->nodes[i];

		m->nodes[i] = m->nodes[j];
		m->nodes[j] = t;
	}
	for (uint32_t i = 1; i < m->n; i++)
		fix_backrefs(m, i);
	slots_rebuild(m);
}

static void node_to_wire(const struct node *nd, struct fd_wire_node *w)
{
	w->state = nd->state;
	w->incarnation = nd->inc;
	memcpy(w->id, nd->id, FD_MEMBER_ID_LEN);
	copy_str(w->name, sizeof(w->name), nd->name);
	copy_str(w->addr, sizeof(w->addr), nd->addr);
}

/* ---- output and event queues ---- */

static int ring_grow(void **arr, size_t *cap, size_t head, size_t len,
		     size_t elem, size_t max)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	char *p;

	if (*cap >= max)
		return -1;
	if (ncap > max)
		ncap = max;
	p = malloc(ncap * elem);
	if (!p)
		return -1;
	for (size_t i = 0; i < len; i++)
		memcpy(p + i * elem, (char *)*arr + ((head + i) % *cap) * elem, elem);
	free(*arr);
	*arr = p;
	*cap = ncap;
	return 0;
}

static struct outq *out_push(struct fd_member *m)
{
	if (m->out_len == m->out_cap) {
		if (ring_grow((void **)&m->outq, &m->out_cap, m->out_head,
			      m->out_len, sizeof(*m->outq), FD_MEMBER_OUT_MAX) < 0) {
			m->stats.tx_dropped++;
			return NULL;
		}
		m->out_head = 0;
	}
	return &m->outq[(m->out_head + m->out_len++) % m->out_cap];
}

static void out_dgram(struct fd_member *m, const char *addr, const uint8_t *buf,
		      size_t len)
{
	struct outq *o;
	uint8_t *copy;

	if (!addr[0])
		return;
	copy = malloc(len);
	if (!copy) {
		m->stats.tx_dropped++;
		return;
	}
	o = out_push(m);
	if (!o) {
		free(copy);
		return;
	}
	memcpy(copy, buf, len);
	o->kind = FD_MEMBER_OUT_DGRAM;
	o->join = 0;
	o->len = (uint16_t)len;
	o->buf = copy;
	copy_str(o->addr, sizeof(o->addr), addr);
	m->stats.tx++;
	m->stats.tx_bytes += len;
}

static int out_pushpull(struct fd_member *m, const char *addr, int join)
{
	struct outq *o = out_push(m);

	if (!o) {
		errno = ENOBUFS;
		return -1;
	}
	o->kind = FD_MEMBER_OUT_PUSHPULL;
	o->join = (uint8_t)join;
	o->len = 0;
	o->buf = NULL;
	copy_str(o->addr, sizeof(o->addr), addr);
	m->stats.pushpull_tx++;
	return 0;
}

int fd_member_next_output(struct fd_member *m, struct fd_member_out *out)
{
	struct outq *o;

	if (!m->out_len)
		return 0;
	o = &m->outq[m->out_head];
	m->out_head = (m->out_head + 1) % m->out_cap;
	m->out_len--;
	out->kind = (enum fd_member_out_kind)o->kind;
	out->join = o->join;
	out->len = o->len;
	copy_str(out->addr, sizeof(out->addr), o->addr);
	if (o->buf)
		memcpy(out->buf, o->buf, o->len);
	free(o->buf);
	return 1;
}

static struct fd_member_event *ev_push(struct fd_member *m)
{
	struct fd_member_event *ev;

	if (m->ev_len == m->ev_cap) {
		if (ring_grow((void **)&m->evq, &m->ev_cap, m->ev_head, m->ev_len,
			      sizeof(*m->evq), FD_MEMBER_EV_MAX) == 0) {
			m->ev_head = 0;
		} else if (m->ev_cap) {
			m->ev_head = (m->ev_head + 1) % m->ev_cap;
			m->ev_len--;
			m->stats.ev_dropped++;
		} else {
			m->stats.ev_dropped++;
			return NULL;
		}
	}
	ev = &m->evq[(m->ev_head + m->ev_len++) % m->ev_cap];
	memset(ev, 0, sizeof(*ev));
	return ev;
}

int fd_member_next_event(struct fd_member *m, struct fd_member_event *ev)
{
	if (!m->ev_len)
		return 0;
	*ev = m->evq[m->ev_head];
	m->ev_head = (m->ev_head + 1) % m->ev_cap;
	m->ev_len--;
	return 1;
}

static void emit_state(struct fd_member *m, uint32_t i, uint8_t old,
		       uint8_t new_state, int restarted, int64_t now)
{
	struct fd_member_event *ev = ev_push(m);
	const struct node *nd = &m->nodes[i];

	if (!ev)
		return;
	ev->type = FD_MEMBER_EV_STATE;
	copy_str(ev->name, sizeof(ev->name), nd->name);
	memcpy(ev->id, nd->id, FD_MEMBER_ID_LEN);
	copy_str(ev->addr, sizeof(ev->addr), nd->addr);
	ev->old_state = (enum fd_member_state)old;
	ev->new_state = (enum fd_member_state)new_state;
	ev->incarnation = nd->inc;
	ev->time = now;
	ev->restarted = restarted;
}

/* ---- broadcast queue ---- */

static unsigned retransmit_limit(const struct fd_member *m)
{
	unsigned lim = m->cfg.retransmit_mult *
		       (unsigned)ceil(log10((double)alive_n(m) + 1.0));

	if (lim < 1)
		lim = 1;
	return lim < TX_BUCKETS ? lim : TX_BUCKETS;
}

static void bq_unlink(struct fd_member *m, int32_t b)
{
	struct bcast *x = &m->bc[b];

	if (x->prev >= 0)
		m->bc[x->prev].next = x->next;
	else
		m->bq_head[x->tx] = x->next;
	if (x->next >= 0)
		m->bc[x->next].prev = x->prev;
	x->prev = x->next = -1;
}

static void bq_push(struct fd_member *m, int32_t b)
{
	struct bcast *x = &m->bc[b];

	x->prev = -1;
	x->next = m->bq_head[x->tx];
	if (x->next >= 0)
		m->bc[x->next].prev = b;
	m->bq_head[x->tx] = b;
}

/* Frees an entry already unlinked from its bucket. */
static void bc_release(struct fd_member *m, int32_t b)
{
	struct bcast *x = &m->bc[b];

	free(x->from);
	x->from = NULL;
	m->nodes[x->node].bc = -1;
	x->node = -1;
	x->next = m->bc_free;
	m->bc_free = b;
	m->bc_count--;
}

static void bc_drop(struct fd_member *m, int32_t b)
{
	bq_unlink(m, b);
	bc_release(m, b);
}

/* Queues (or requeues, with a fresh retransmit count) the current record
 * of node i. from names the suspecter for a suspicion. */
static void queue_bcast(struct fd_member *m, uint32_t i, const char *from)
{
	struct node *nd = &m->nodes[i];
	int32_t b = nd->bc;

	if (b >= 0) {
		bq_unlink(m, b);
		free(m->bc[b].from);
	} else {
		if (m->bc_free < 0) {
			uint32_t cap = m->bc_cap ? m->bc_cap * 2 : 16;
			struct bcast *p;

			if (cap > m->cfg.max_members)
				cap = m->cfg.max_members;
			if (cap <= m->bc_cap)
				return;
			p = realloc(m->bc, cap * sizeof(*p));
			if (!p)
				return;
			m->bc = p;
			for (uint32_t k = cap; k-- > m->bc_cap;) {
				p[k].node = -1;
				p[k].from = NULL;
				p[k].next = m->bc_free;
				m->bc_free = (int32_t)k;
			}
			m->bc_cap = cap;
		}
		b = m->bc_free;
		m->bc_free = m->bc[b].next;
		m->bc[b].node = (int32_t)i;
		nd->bc = b;
		m->bc_count++;
	}
	m->bc[b].tx = 0;
	m->bc[b].from = from && from[0] ? strdup(from) : NULL;
	m->bc[b].from_len = m->bc[b].from ? (uint8_t)strlen(m->bc[b].from) : 0;
	bq_push(m, b);
}

static void fill_update(const struct fd_member *m, const struct bcast *x,
			struct fd_wire_update *u)
{
	node_to_wire(&m->nodes[x->node], &u->node);
	copy_str(u->from, sizeof(u->from), x->from ? x->from : "");
}

static size_t node_len(const struct node *nd)
{
	return 1 + 8 + FD_MEMBER_ID_LEN + 1 + (size_t)nd->name_len + 1 + nd->addr_len;
}

/* Piggybacks queued updates, least sent and newest first, while they fit.
 * Returns how many were added. */
static unsigned add_broadcasts(struct fd_member *m, struct fd_wire_enc *e)
{
	int32_t chosen[FD_WIRE_MAX_UPDATES];
	unsigned lim = retransmit_limit(m), nch = 0, seen = 0, misses = 0;
	struct fd_wire_update *u = &m->upd;

	for (unsigned t = 0; t < lim; t++) {
		for (int32_t b = m->bq_head[t]; b >= 0; b = m->bc[b].next) {
			const struct bcast *x = &m->bc[b];
			size_t need = node_len(&m->nodes[x->node]) + 1 + x->from_len;

			if (seen++ >= BC_SCAN_MAX || e->n >= FD_WIRE_MAX_UPDATES ||
			    fd_wire_enc_room(e) < MIN_UPDATE_LEN || misses >= 8)
				goto done;
			if (need > fd_wire_enc_room(e)) {
				misses++;
				continue;
			}
			fill_update(m, x, u);
			if (fd_wire_enc_add(e, u) == 0)
				chosen[nch++] = b;
		}
	}
done:
	for (unsigned i = 0; i < nch; i++) {
		int32_t b = chosen[i];

		bq_unlink(m, b);
		if (++m->bc[b].tx >= lim)
			bc_release(m, b);
		else
			bq_push(m, b);
	}
	return nch;
}

/* Drops updates whose retransmit count is above a limit that shrank. */
static void bc_purge(struct fd_member *m)
{
	for (unsigned t = retransmit_limit(m); t < TX_BUCKETS; t++)
		while (m->bq_head[t] >= 0)
			bc_drop(m, m->bq_head[t]);
}

size_t fd_member_pending_broadcasts(const struct fd_member *m)
{
	return m->bc_count;
}

/* ---- sending ---- */

static void self_to_wire(const struct fd_member *m, struct fd_wire_node *w)
{
	node_to_wire(&m->nodes[0], w);
}

/* Builds and queues a datagram: first (if any) goes first, then queued
 * updates. With need_updates, nothing is sent unless an update fits. */
static void send_msg(struct fd_member *m, const char *addr, uint8_t type,
		     uint32_t seq, uint8_t flags, const struct node *target,
		     const struct fd_wire_update *first, int need_updates)
{
	struct fd_wire_msg *t = &m->tx;
	struct fd_wire_enc e;
	unsigned n = 0;

	t->type = type;
	self_to_wire(m, &t->sender);
	t->seq = seq;
	t->flags = flags;
	if (target)
		node_to_wire(target, &t->target);
	if (fd_wire_enc_begin(&e, m->txbuf, sizeof(m->txbuf), t) < 0)
		return;
	if (first && fd_wire_enc_add(&e, first) == 0)
		n++;
	n += add_broadcasts(m, &e);
	if (need_updates && !n)
		return;
	out_dgram(m, addr, m->txbuf, fd_wire_enc_finish(&e));
}

/* ---- suspicion (Lifeguard) ---- */

static int64_t susp_timeout(const struct susp *s)
{
	double frac, raw;

	if (s->k == 0)
		return s->min;
	frac = log((double)s->n + 1.0) / log((double)s->k + 1.0);
	raw = (double)s->max - frac * (double)(s->max - s->min);
	return raw < (double)s->min ? s->min : (int64_t)raw;
}

static void susp_start(struct fd_member *m, uint32_t i, const char *from, int64_t now)
{
	unsigned n = alive_n(m), k;
	double scale = log10((double)n + 1.0);
	struct susp *s;

	if (m->nsusp == m->susp_cap) {
		uint32_t cap = m->susp_cap ? m->susp_cap * 2 : 8;
		struct susp *p = realloc(m->susp, cap * sizeof(*p));

		if (!p)
			return;
		m->susp = p;
		m->susp_cap = cap;
	}
	k = m->cfg.suspicion_mult > 2 ? (unsigned)(m->cfg.suspicion_mult - 2) : 0;
	if (n < k + 2)
		k = 0;
	if (k > CONFIRM_MAX)
		k = CONFIRM_MAX;
	if (scale < 1.0)
		scale = 1.0;
	s = &m->susp[m->nsusp];
	memset(s, 0, sizeof(*s));
	s->node = (int32_t)i;
	s->start = now;
	s->min = (int64_t)((double)m->cfg.suspicion_mult * scale *
			   (double)m->cfg.probe_interval);
	s->max = s->min * (int64_t)m->cfg.suspicion_max_mult;
	s->k = k;
	s->from_hash = hash_name(from);
	s->deadline = now + susp_timeout(s);
	m->nodes[i].susp = (int32_t)m->nsusp++;
}

/* Returns 1 when from is a new independent confirmation. */
static int susp_confirm(struct susp *s, const char *from)
{
	uint64_t h = hash_name(from);

	if (s->n >= s->k || h == s->from_hash)
		return 0;
	for (unsigned i = 0; i < s->n; i++)
		if (s->confirm[i] == h)
			return 0;
	s->confirm[s->n++] = h;
	s->deadline = s->start + susp_timeout(s);
	return 1;
}

static void susp_remove(struct fd_member *m, int32_t si)
{
	uint32_t last = m->nsusp - 1;

	m->nodes[m->susp[si].node].susp = -1;
	if ((uint32_t)si != last) {
		m->susp[si] = m->susp[last];
		m->nodes[m->susp[si].node].susp = si;
	}
	m->nsusp--;
}

static void set_state(struct fd_member *m, uint32_t i, uint8_t state, int64_t now)
{
	struct node *nd = &m->nodes[i];

	if (nd->state != state) {
		m->counts[nd->state]--;
		m->counts[state]++;
		nd->state = state;
		nd->since = now;
	}
	if (state != FD_MEMBER_SUSPECT && nd->susp >= 0)
		susp_remove(m, nd->susp);
}

/* ---- applying what we hear ---- */

static void refute(struct fd_member *m, uint64_t inc)
{
	struct node *self = &m->nodes[0];
	uint64_t top = inc > self->inc ? inc : self->inc;

	/* Saturate: a hostile UINT64_MAX must not wrap us back to 0. */
	self->inc = top == UINT64_MAX ? top : top + 1;
	queue_bcast(m, 0, NULL);
	awareness_add(m, 1);
	m->stats.refutes++;
}

static int is_self(const struct fd_member *m, const char *name)
{
	return m->nodes[0].name[0] == name[0] && strcmp(m->nodes[0].name, name) == 0;
}

static int same_id(const struct node *nd, const struct fd_wire_node *w)
{
	return memcmp(nd->id, w->id, FD_MEMBER_ID_LEN) == 0;
}

static void on_alive(struct fd_member *m, int64_t now,
		     const struct fd_wire_node *w, const char *from_addr)
{
	const char *addr = w->addr[0] || !from_addr ? w->addr : from_addr;
	struct node *nd;
	int32_t i;

	if (is_self(m, w->name)) {
		struct node *self = &m->nodes[0];

		if (same_id(self, w)) {
			if (w->incarnation > self->inc && !m->leaving)
				refute(m, w->incarnation);
			return;
		}
		if (w->incarnation < self->inc) {
			/* An older instance under our name: ours wins. */
			m->outranked_twin = 1;
			return;
		}
		if (m->leaving)
			return;
		/* The first claim decides who we are: a refutation of our own
		 * claim (exactly our incarnation + 1) means the name was taken
		 * before we came; any other means another node came after us. */
		if (!m->conflict_role)
			m->conflict_role =
				m->outranked_twin || w->incarnation == self->inc + 1
					? 1
					: 2;
		refute(m, w->incarnation);
		m->stats.conflicts++;
		{
			struct fd_member_event *ev = ev_push(m);

			if (ev) {
				ev->type = FD_MEMBER_EV_CONFLICT;
				copy_str(ev->name, sizeof(ev->name), w->name);
				memcpy(ev->id, w->id, FD_MEMBER_ID_LEN);
				copy_str(ev->addr, sizeof(ev->addr), addr);
				ev->old_state = ev->new_state = FD_MEMBER_ALIVE;
				ev->incarnation = w->incarnation;
				ev->time = now;
				ev->newcomer = m->conflict_role == 1;
			}
		}
		return;
	}
	i = find(m, w->name);
	if (i < 0) {
		struct fd_wire_node a = *w;

		a.state = FD_MEMBER_ALIVE;
		i = add_node(m, &a, addr, now);
		if (i < 0)
			return;
		emit_state(m, (uint32_t)i, FD_MEMBER_NONE, FD_MEMBER_ALIVE, 0, now);
		queue_bcast(m, (uint32_t)i, NULL);
		return;
	}
	nd = &m->nodes[i];
	if (same_id(nd, w)) {
		uint8_t old = nd->state;
		int moved;

		if (w->incarnation <= nd->inc)
			return;
		moved = addr[0] && strcmp(addr, nd->addr) != 0;
		nd->inc = w->incarnation;
		if (moved)
			set_addr(nd, addr);
		set_state(m, (uint32_t)i, FD_MEMBER_ALIVE, now);
		if (old != FD_MEMBER_ALIVE || moved)
			emit_state(m, (uint32_t)i, old, FD_MEMBER_ALIVE, 0, now);
		queue_bcast(m, (uint32_t)i, NULL);
		return;
	}
	/* Another instance of that name: a restart when ours is gone or older. */
	if (live(nd->state) && w->incarnation <= nd->inc)
		return;
	{
		uint8_t old = nd->state;

		memcpy(nd->id, w->id, FD_MEMBER_ID_LEN);
		set_addr(nd, addr);
		nd->inc = w->incarnation;
		nd->since = now;
		set_state(m, (uint32_t)i, FD_MEMBER_ALIVE, now);
		emit_state(m, (uint32_t)i, old, FD_MEMBER_ALIVE, 1, now);
		queue_bcast(m, (uint32_t)i, NULL);
	}
}

/* For a suspect / failed / left claim: refutes it when it is about us, and
 * returns the member it is about when it concerns the instance we know at
 * an incarnation we have not passed; else -1. */
static int32_t claim_target(struct fd_member *m, const struct fd_wire_node *w)
{
	int32_t i;

	if (is_self(m, w->name)) {
		if (same_id(&m->nodes[0], w) && !m->leaving &&
		    w->incarnation >= m->nodes[0].inc)
			refute(m, w->incarnation);
		return -1;
	}
	i = find(m, w->name);
	if (i < 0 || !same_id(&m->nodes[i], w) || w->incarnation < m->nodes[i].inc)
		return -1;
	return i;
}

static void on_suspect(struct fd_member *m, int64_t now,
		       const struct fd_wire_node *w, const char *from)
{
	struct node *nd;
	int32_t i;
	uint8_t old;

	i = claim_target(m, w);
	if (i < 0)
		return;
	nd = &m->nodes[i];
	if (nd->state == FD_MEMBER_SUSPECT) {
		if (w->incarnation > nd->inc)
			nd->inc = w->incarnation;
		if (nd->susp >= 0 && susp_confirm(&m->susp[nd->susp], from))
			queue_bcast(m, (uint32_t)i, from);
		return;
	}
	if (nd->state != FD_MEMBER_ALIVE)
		return;
	old = nd->state;
	nd->inc = w->incarnation;
	set_state(m, (uint32_t)i, FD_MEMBER_SUSPECT, now);
	susp_start(m, (uint32_t)i, from, now);
	emit_state(m, (uint32_t)i, old, FD_MEMBER_SUSPECT, 0, now);
	queue_bcast(m, (uint32_t)i, from);
}

static void on_dead(struct fd_member *m, int64_t now,
		    const struct fd_wire_node *w, uint8_t state, const char *from)
{
	struct node *nd;
	int32_t i;
	uint8_t old;

	i = claim_target(m, w);
	if (i < 0)
		return;
	nd = &m->nodes[i];
	/* Dead stays dead; only a late "left" may correct a "failed". */
	if (nd->state == FD_MEMBER_LEFT ||
	    (nd->state == FD_MEMBER_FAILED && state != FD_MEMBER_LEFT))
		return;
	old = nd->state;
	nd->inc = w->incarnation;
	set_state(m, (uint32_t)i, state, now);
	emit_state(m, (uint32_t)i, old, state, 0, now);
	queue_bcast(m, (uint32_t)i, from);
}

static void apply_update(struct fd_member *m, int64_t now,
			 const struct fd_wire_node *w, const char *from)
{
	switch (w->state) {
	case FD_WIRE_ALIVE: on_alive(m, now, w, NULL); break;
	case FD_WIRE_SUSPECT: on_suspect(m, now, w, from); break;
	default: on_dead(m, now, w, w->state, from);
	}
}

/* The sender's own record, from a datagram header or a push-pull state. */
static void apply_sender(struct fd_member *m, int64_t now,
			 const struct fd_wire_node *w, const char *from_addr)
{
	if (w->state == FD_WIRE_ALIVE)
		on_alive(m, now, w, from_addr);
	else if (w->state == FD_WIRE_LEFT)
		on_dead(m, now, w, FD_MEMBER_LEFT, w->name);
}

/* The sender's own record lost against ours: it is a member we hold
 * failed that missed the news, or another instance under a name whose
 * current holder outranks it. Tell it (at most once per probe interval per
 * name), so it refutes or learns of the conflict now rather than at the
 * next push-pull. */
static void maybe_nudge(struct fd_member *m, int64_t now,
			const struct fd_wire_node *w, const char *from_addr)
{
	struct node *nd;
	int32_t i;

	if (w->state != FD_WIRE_ALIVE || !from_addr[0] || is_self(m, w->name))
		return;
	i = find(m, w->name);
	if (i < 0)
		return;
	nd = &m->nodes[i];
	if (same_id(nd, w) ? nd->state != FD_MEMBER_FAILED || w->incarnation > nd->inc
			   : !live(nd->state) || w->incarnation > nd->inc)
		return;
	if (now - nd->nudged < m->cfg.probe_interval)
		return;
	nd->nudged = now;
	{
		struct fd_wire_update u;

		node_to_wire(nd, &u.node);
		copy_str(u.from, sizeof(u.from),
			 nd->state == FD_MEMBER_FAILED ? m->nodes[0].name : "");
		send_msg(m, from_addr, FD_WIRE_GOSSIP, 0, 0, NULL, &u, 0);
	}
}

/* ---- probing ---- */

static void probe_ok(struct fd_member *m)
{
	m->probe.active = 0;
	awareness_add(m, -1);
}

static void handle_ack(struct fd_member *m, uint32_t seq)
{
	if (m->probe.active && seq == m->probe.seq) {
		probe_ok(m);
		return;
	}
	for (int i = 0; i < INDIRECT_MAX && m->nind; i++) {
		struct indirect *x = &m->ind[i];

		if (x->used && x->seq == seq) {
			x->used = 0;
			m->nind--;
			send_msg(m, x->requester, FD_WIRE_ACK, x->orig_seq, 0,
				 NULL, NULL, 0);
			return;
		}
	}
	m->stats.rx_stale++;
}

static void handle_ping_req(struct fd_member *m, int64_t now,
			    const struct fd_wire_msg *msg, const char *from)
{
	struct indirect *x = NULL;

	if (!msg->target.addr[0])
		return;
	for (int i = 0; i < INDIRECT_MAX && !x; i++)
		if (!m->ind[i].used)
			x = &m->ind[i];
	if (!x) {
		m->stats.indirect_dropped++;
		return;
	}
	x->used = 1;
	m->nind++;
	x->seq = ++m->seq;
	x->orig_seq = msg->seq;
	x->want_nack = (msg->flags & FD_WIRE_F_NACK) != 0;
	/* Early enough for the nack to reach the requester before its probe
	 * interval ends (it asked us a probe timeout into that interval). */
	x->nack_at = now + m->cfg.probe_timeout * 4 / 5;
	copy_str(x->requester, sizeof(x->requester), from);
	{
		/* The ping only needs the target's id. */
		struct fd_wire_msg *t = &m->tx;
		struct fd_wire_enc e;

		t->type = FD_WIRE_PING;
		self_to_wire(m, &t->sender);
		t->seq = x->seq;
		t->flags = 0;
		memcpy(t->target.id, msg->target.id, FD_MEMBER_ID_LEN);
		if (fd_wire_enc_begin(&e, m->txbuf, sizeof(m->txbuf), t) < 0)
			return;
		add_broadcasts(m, &e);
		out_dgram(m, msg->target.addr, m->txbuf, fd_wire_enc_finish(&e));
	}
}

static void handle_ping(struct fd_member *m, const struct fd_wire_msg *msg,
			const char *from)
{
	if (memcmp(msg->target.id, m->nodes[0].id, FD_MEMBER_ID_LEN) != 0) {
		m->stats.rx_not_me++;
		return;
	}
	send_msg(m, from, FD_WIRE_ACK, msg->seq, 0, NULL, NULL, 0);
}

int fd_member_recv(struct fd_member *m, int64_t now, const char *from_addr,
		   const void *buf, size_t len)
{
	struct fd_wire_msg *msg = &m->rx;

	m->stats.rx++;
	if (fd_wire_decode(buf, len, msg) < 0) {
		if (errno == EPROTONOSUPPORT)
			m->stats.rx_version++;
		else
			m->stats.rx_bad++;
		return -1;
	}
	if (!from_addr)
		from_addr = "";
	apply_sender(m, now, &msg->sender, from_addr);
	/* Updates before the body: a refutation then rides on our answer. */
	for (unsigned i = 0; i < msg->nupdates; i++)
		apply_update(m, now, &msg->updates[i].node, msg->updates[i].from);
	switch (msg->type) {
	case FD_WIRE_PING: handle_ping(m, msg, from_addr); break;
	case FD_WIRE_ACK: handle_ack(m, msg->seq); break;
	case FD_WIRE_NACK:
		if (m->probe.active && msg->seq == m->probe.seq) {
			m->probe.nacks++;
			m->stats.nacks++;
		} else {
			m->stats.rx_stale++;
		}
		break;
	case FD_WIRE_PING_REQ: handle_ping_req(m, now, msg, from_addr); break;
	default: break;
	}
	maybe_nudge(m, now, &msg->sender, from_addr);
	return 0;
}

static int next_probe_target(struct fd_member *m)
{
	for (uint32_t tries = 0; tries <= m->n; tries++) {
		uint32_t i;

		if (m->probe_idx < 1 || m->probe_idx >= m->n) {
			shuffle(m);
			bc_purge(m);
			m->probe_idx = 1;
			if (m->n < 2)
				return -1;
		}
		i = m->probe_idx++;
		if (live(m->nodes[i].state) && m->nodes[i].addr[0])
			return (int)i;
	}
	return -1;
}

static void probe_start(struct fd_member *m, int64_t now)
{
	int64_t interval = scaled(m, m->cfg.probe_interval);
	struct fd_wire_update buddy;
	struct node *nd;
	int i;

	m->next_probe = now + interval;
	if (m->leaving)
		return;
	i = next_probe_target(m);
	if (i < 0)
		return;
	nd = &m->nodes[i];
	m->probe.active = 1;
	m->probe.indirect_sent = 0;
	m->probe.seq = ++m->seq;
	m->probe.nacks = m->probe.nacks_expected = 0;
	m->probe.timeout_at = now + scaled(m, m->cfg.probe_timeout);
	m->probe.end_at = now + interval;
	memcpy(m->probe.id, nd->id, FD_MEMBER_ID_LEN);
	copy_str(m->probe.name, sizeof(m->probe.name), nd->name);
	m->stats.probes++;
	if (nd->state == FD_MEMBER_SUSPECT) {
		/* Buddy system: tell the suspect first, so it can refute. */
		node_to_wire(nd, &buddy.node);
		copy_str(buddy.from, sizeof(buddy.from), m->nodes[0].name);
		send_msg(m, nd->addr, FD_WIRE_PING, m->probe.seq, 0, nd, &buddy, 0);
	} else {
		send_msg(m, nd->addr, FD_WIRE_PING, m->probe.seq, 0, nd, NULL, 0);
	}
}

static int eligible_helper(const struct fd_member *m, uint32_t i, int32_t skip,
			   int64_t now)
{
	(void)now;
	return (int32_t)i != skip && m->nodes[i].state == FD_MEMBER_ALIVE &&
	       m->nodes[i].addr[0];
}

static int eligible_gossip(const struct fd_member *m, uint32_t i, int32_t skip,
			   int64_t now)
{
	const struct node *nd = &m->nodes[i];

	(void)skip;
	if (!nd->addr[0])
		return 0;
	return live(nd->state) || (nd->state == FD_MEMBER_FAILED &&
				   now - nd->since < m->cfg.gossip_to_dead);
}

/* Up to k distinct random members passing ok(). */
static unsigned pick(struct fd_member *m, uint32_t *out, unsigned k,
		     int (*ok)(const struct fd_member *, uint32_t, int32_t, int64_t),
		     int32_t skip, int64_t now)
{
	unsigned got = 0;

	if (m->n < 2)
		return 0;
	for (unsigned t = 0; t < PICK_TRIES && got < k; t++) {
		uint32_t i = 1 + (uint32_t)rnd_below(m, m->n - 1);
		unsigned j;

		if (!ok(m, i, skip, now))
			continue;
		for (j = 0; j < got && out[j] != i; j++)
			;
		if (j == got)
			out[got++] = i;
	}
	return got;
}

/* One uniformly chosen member in a state, by a scan (rarely called). */
static int pick_state(struct fd_member *m, uint8_t state)
{
	int found = -1;
	uint64_t seen = 0;

	for (uint32_t i = 1; i < m->n; i++)
		if (m->nodes[i].state == state && m->nodes[i].addr[0] &&
		    rnd_below(m, ++seen) == 0)
			found = (int)i;
	return found;
}

static void probe_indirect(struct fd_member *m, int64_t now)
{
	uint32_t helpers[16];
	int32_t t = find(m, m->probe.name);
	unsigned k;

	m->probe.indirect_sent = 1;
	if (t < 0 || memcmp(m->nodes[t].id, m->probe.id, FD_MEMBER_ID_LEN) != 0) {
		m->probe.active = 0; /* gone or replaced meanwhile: no verdict */
		return;
	}
	k = pick(m, helpers, m->cfg.indirect_checks, eligible_helper, t, now);
	for (unsigned i = 0; i < k; i++)
		send_msg(m, m->nodes[helpers[i]].addr, FD_WIRE_PING_REQ,
			 m->probe.seq, FD_WIRE_F_NACK, &m->nodes[t], NULL, 0);
	m->probe.nacks_expected = k;
	m->stats.ping_reqs += k;
}

static void probe_fail(struct fd_member *m, int64_t now)
{
	struct fd_wire_node w;
	int32_t t = find(m, m->probe.name);
	int delta = 1;

	/* Lifeguard: helpers that did not even nack suggest the problem is
	 * ours; with no helpers a failed probe counts against us. */
	if (m->probe.nacks_expected)
		delta = (int)m->probe.nacks_expected - (int)m->probe.nacks;
	m->probe.active = 0;
	awareness_add(m, delta > 0 ? delta : 0);
	m->stats.probe_failed++;
	if (t < 0 || memcmp(m->nodes[t].id, m->probe.id, FD_MEMBER_ID_LEN) != 0 ||
	    !live(m->nodes[t].state))
		return;
	node_to_wire(&m->nodes[t], &w);
	w.state = FD_WIRE_SUSPECT;
	on_suspect(m, now, &w, m->nodes[0].name);
}

/* ---- timers ---- */

static void gossip(struct fd_member *m, int64_t now)
{
	uint32_t to[16];
	unsigned k;

	if (!m->bc_count)
		return;
	k = pick(m, to, m->cfg.gossip_fanout, eligible_gossip, -1, now);
	for (unsigned i = 0; i < k && m->bc_count; i++)
		send_msg(m, m->nodes[to[i]].addr, FD_WIRE_GOSSIP, 0, 0, NULL,
			 NULL, 1);
}

static int64_t pushpull_every(const struct fd_member *m)
{
	unsigned n = alive_n(m);
	int64_t t = m->cfg.pushpull_interval;

	/* memberlist's scaling: fewer full syncs per node in big clusters. */
	if (n > 32)
		t *= (int64_t)ceil(log2((double)n) - log2(32.0)) + 1;
	return t;
}

static void reap(struct fd_member *m, int64_t now)
{
	for (uint32_t i = m->n; i-- > 1;) {
		struct node *nd = &m->nodes[i];

		if (live(nd->state) || now - nd->since < m->cfg.reap_timeout)
			continue;
		emit_state(m, i, nd->state, FD_MEMBER_NONE, 0, now);
		remove_node(m, i);
	}
}

static int64_t reap_every(const struct fd_member *m)
{
	int64_t t = m->cfg.reap_timeout / 10;

	if (t < m->cfg.probe_interval)
		t = m->cfg.probe_interval;
	return t > 10000 ? 10000 : t;
}

void fd_member_tick(struct fd_member *m, int64_t now)
{
	for (uint32_t i = m->nsusp; i-- > 0;) {
		if (i < m->nsusp && m->susp[i].deadline <= now) {
			uint32_t n = (uint32_t)m->susp[i].node;
			uint8_t old = m->nodes[n].state;

			set_state(m, n, FD_MEMBER_FAILED, now);
			emit_state(m, n, old, FD_MEMBER_FAILED, 0, now);
			queue_bcast(m, n, m->nodes[0].name);
		}
	}
	for (int i = 0; i < INDIRECT_MAX && m->nind; i++) {
		struct indirect *x = &m->ind[i];

		if (x->used && x->nack_at <= now) {
			x->used = 0;
			m->nind--;
			if (x->want_nack)
				send_msg(m, x->requester, FD_WIRE_NACK,
					 x->orig_seq, 0, NULL, NULL, 0);
		}
	}
	if (m->probe.active && !m->probe.indirect_sent && now >= m->probe.timeout_at)
		probe_indirect(m, now);
	if (m->probe.active && now >= m->probe.end_at)
		probe_fail(m, now);
	if (!m->probe.active && now >= m->next_probe)
		probe_start(m, now);
	if (now >= m->next_gossip) {
		m->next_gossip += m->cfg.gossip_interval;
		if (m->next_gossip <= now)
			m->next_gossip = now + m->cfg.gossip_interval;
		gossip(m, now);
	}
	if (m->cfg.pushpull_interval && !m->leaving && now >= m->next_pushpull) {
		int i = pick_state(m, FD_MEMBER_ALIVE);

		m->next_pushpull = now + pushpull_every(m);
		/* Early on, sync again soon: what a join taught us may have
		 * missed nodes that joined at the same time. */
		if (m->pp_backoff < pushpull_every(m)) {
			m->next_pushpull = now + m->pp_backoff;
			m->pp_backoff *= 2;
		}
		if (i > 0)
			out_pushpull(m, m->nodes[i].addr, 0);
	}
	if (m->cfg.reconnect_interval && !m->leaving && now >= m->next_reconnect) {
		int i = pick_state(m, FD_MEMBER_FAILED);

		m->next_reconnect = now + m->cfg.reconnect_interval;
		if (i > 0)
			out_pushpull(m, m->nodes[i].addr, 0);
	}
	if (now >= m->next_reap) {
		m->next_reap = now + reap_every(m);
		reap(m, now);
	}
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t fd_member_next_deadline(const struct fd_member *m)
{
	int64_t t = min64(m->next_gossip, m->next_reap);

	if (m->probe.active) {
		if (!m->probe.indirect_sent)
			t = min64(t, m->probe.timeout_at);
		t = min64(t, m->probe.end_at);
	} else {
		t = min64(t, m->next_probe);
	}
	if (m->cfg.pushpull_interval && !m->leaving)
		t = min64(t, m->next_pushpull);
	if (m->cfg.reconnect_interval && !m->leaving)
		t = min64(t, m->next_reconnect);
	for (uint32_t i = 0; i < m->nsusp; i++)
		t = min64(t, m->susp[i].deadline);
	for (int i = 0; i < INDIRECT_MAX && m->nind; i++)
		if (m->ind[i].used)
			t = min64(t, m->ind[i].nack_at);
	return t;
}

/* ---- life cycle ---- */

struct fd_member *fd_member_new(const struct fd_member_config *cfg, const char *name,
				const uint8_t id[FD_MEMBER_ID_LEN],
				const char *addr, uint64_t incarnation_start,
				uint64_t rng_seed, int64_t now)
{
	struct fd_member *m;
	struct fd_wire_node self;

	if (!cfg || !name || !id || !addr || fd_member_config_check(cfg) < 0 ||
	    !fd_wire_name_ok(name) || !fd_wire_addr_ok(addr)) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = *cfg;
	m->rng = rng_seed ? rng_seed : 0x9E3779B97F4A7C15ULL;
	m->bc_free = -1;
	for (int t = 0; t < TX_BUCKETS; t++)
		m->bq_head[t] = -1;
	memset(&self, 0, sizeof(self));
	copy_str(self.name, sizeof(self.name), name);
	memcpy(self.id, id, FD_MEMBER_ID_LEN);
	self.incarnation = incarnation_start;
	self.state = FD_WIRE_ALIVE;
	if (add_node(m, &self, addr, now) != 0) {
		fd_member_free(m);
		errno = ENOMEM;
		return NULL;
	}
	/* Spread the timers so nodes started together do not beat in step. */
	m->next_probe = now + (int64_t)rnd_below(m, (uint64_t)cfg->probe_interval);
	m->next_gossip = now + (int64_t)rnd_below(m, (uint64_t)cfg->gossip_interval);
	m->pp_backoff = 5 * cfg->probe_interval;
	m->next_pushpull = now + m->pp_backoff / 2 +
			   (int64_t)rnd_below(m, (uint64_t)m->pp_backoff / 2 + 1);
	m->next_reconnect =
		now + cfg->reconnect_interval / 2 +
		(int64_t)rnd_below(m, (uint64_t)cfg->reconnect_interval / 2 + 1);
	m->next_reap = now + reap_every(m);
	m->probe_idx = 1;
	return m;
}

void fd_member_free(struct fd_member *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n; i++)
		free(m->nodes[i].name);
	for (uint32_t i = 0; i < m->bc_cap; i++)
		free(m->bc[i].from);
	for (size_t i = 0; i < m->out_len; i++)
		free(m->outq[(m->out_head + i) % m->out_cap].buf);
	free(m->nodes);
	free(m->slots);
	free(m->bc);
	free(m->susp);
	free(m->outq);
	free(m->evq);
	free(m);
}

int fd_member_join(struct fd_member *m, int64_t now, const char *addr)
{
	(void)now;
	if (!addr || !addr[0] || !fd_wire_addr_ok(addr)) {
		errno = EINVAL;
		return -1;
	}
	return out_pushpull(m, addr, 1);
}

void fd_member_leave(struct fd_member *m, int64_t now)
{
	if (m->leaving)
		return;
	m->leaving = 1;
	m->probe.active = 0;
	set_state(m, 0, FD_MEMBER_LEFT, now);
	emit_state(m, 0, FD_MEMBER_ALIVE, FD_MEMBER_LEFT, 0, now);
	queue_bcast(m, 0, m->nodes[0].name);
	gossip(m, now);
}

/* ---- push-pull ---- */

int fd_member_pushpull_encode(struct fd_member *m, int join, uint8_t **out,
			      size_t *len)
{
	uint32_t count = m->n < FD_WIRE_PP_MAX ? m->n : FD_WIRE_PP_MAX;
	struct fd_wire_node *w = &m->tx.target;
	struct fd_wire_cur c;
	size_t size = FD_WIRE_HDR_LEN + 1 + node_len(&m->nodes[0]) + 4;
	uint8_t *buf;

	for (uint32_t i = 0; i < count; i++)
		size += node_len(&m->nodes[i]);
	buf = malloc(size);
	if (!buf)
		return -1;
	fd_wire_cur_init(&c, buf, size);
	self_to_wire(m, w);
	fd_wire_pp_begin(&c, join ? FD_WIRE_F_JOIN : 0, w, count);
	for (uint32_t i = 0; i < count; i++) {
		node_to_wire(&m->nodes[i], w);
		fd_wire_put_node(&c, w);
	}
	if (c.err || c.off != size) {
		free(buf);
		errno = EINVAL;
		return -1;
	}
	*out = buf;
	*len = size;
	return 0;
}

int fd_member_pushpull_merge(struct fd_member *m, int64_t now, const void *buf,
			     size_t len)
{
	struct fd_wire_pp_reader r;
	struct fd_wire_node *w = &m->rx.target;

	if (fd_wire_pp_open(&r, buf, len) < 0) {
		m->stats.pushpull_bad++;
		return -1;
	}
	m->stats.pushpull_rx++;
	apply_sender(m, now, &r.sender, NULL);
	while (fd_wire_pp_next(&r, w)) {
		/* As memberlist does: a remote "failed" only makes us suspect,
		 * which the member can still refute. */
		if (w->state == FD_WIRE_ALIVE)
			on_alive(m, now, w, NULL);
		else if (w->state == FD_WIRE_LEFT)
			on_dead(m, now, w, FD_MEMBER_LEFT, r.sender.name);
		else
			on_suspect(m, now, w, r.sender.name);
	}
	return 0;
}

/* ---- queries ---- */

size_t fd_member_size(const struct fd_member *m)
{
	return m->n;
}

static void info_of(const struct node *nd, struct fd_member_info *out)
{
	out->name = nd->name;
	out->id = nd->id;
	out->addr = nd->addr;
	out->state = (enum fd_member_state)nd->state;
	out->incarnation = nd->inc;
	out->since = nd->since;
}

int fd_member_at(const struct fd_member *m, size_t i, struct fd_member_info *out)
{
	if (i >= m->n)
		return -1;
	info_of(&m->nodes[i], out);
	return 0;
}

int fd_member_find(const struct fd_member *m, const char *name,
		   struct fd_member_info *out)
{
	int32_t i = find(m, name);

	if (i < 0)
		return -1;
	info_of(&m->nodes[i], out);
	return 0;
}

unsigned fd_member_count(const struct fd_member *m, enum fd_member_state s)
{
	return (unsigned)s < 4 ? m->counts[s] : 0;
}

uint64_t fd_member_incarnation(const struct fd_member *m)
{
	return m->nodes[0].inc;
}

unsigned fd_member_health(const struct fd_member *m)
{
	return m->awareness;
}

int64_t fd_member_probe_interval(const struct fd_member *m)
{
	return scaled(m, m->cfg.probe_interval);
}

void fd_member_quorum(const struct fd_member *m, struct fd_member_quorum *q)
{
	q->alive = alive_n(m);
	q->expected = q->alive + m->counts[FD_MEMBER_FAILED];
	q->partitioned = q->alive * 2 <= q->expected;
}

const struct fd_member_stats *fd_member_stats(const struct fd_member *m)
{
	return &m->stats;
}
