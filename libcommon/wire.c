#include "wire.h"
#include "utf8.h"

#include <errno.h>
#include <string.h>

void fd_wire_cur_init(struct fd_wire_cur *c, void *buf, size_t len)
{
	c->p = buf;
	c->len = buf ? len : 0;
	c->off = 0;
	c->err = 0;
}

static int room(struct fd_wire_cur *c, size_t n)
{
	if (c->err || n > c->len - c->off) {
		c->err = 1;
		return 0;
	}
	return 1;
}

void fd_wire_put_u8(struct fd_wire_cur *c, uint8_t v)
{
	if (room(c, 1))
		c->p[c->off++] = v;
}

static void put_be(struct fd_wire_cur *c, uint64_t v, size_t n)
{
	if (!room(c, n))
		return;
	for (size_t i = n; i-- > 0; v >>= 8)
		c->p[c->off + i] = (uint8_t)v;
	c->off += n;
}

static uint64_t get_be(struct fd_wire_cur *c, size_t n)
{
	uint64_t v = 0;

	if (!room(c, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | c->p[c->off + i];
	c->off += n;
	return v;
}

void fd_wire_put_u16(struct fd_wire_cur *c, uint16_t v)
{
	put_be(c, v, 2);
}

void fd_wire_put_u32(struct fd_wire_cur *c, uint32_t v)
{
	put_be(c, v, 4);
}

void fd_wire_put_u64(struct fd_wire_cur *c, uint64_t v)
{
	put_be(c, v, 8);
}

void fd_wire_put_bytes(struct fd_wire_cur *c, const void *src, size_t n)
{
	if (n && room(c, n)) {
		memcpy(c->p + c->off, src, n);
		c->off += n;
	}
}

void fd_wire_put_str(struct fd_wire_cur *c, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max || n > 255) {
		c->err = 1;
		return;
	}
	fd_wire_put_u8(c, (uint8_t)n);
	fd_wire_put_bytes(c, s, n);
}

uint8_t fd_wire_get_u8(struct fd_wire_cur *c)
{
	return room(c, 1) ? c->p[c->off++] : 0;
}

uint16_t fd_wire_get_u16(struct fd_wire_cur *c)
{
	return (uint16_t)get_be(c, 2);
}

uint32_t fd_wire_get_u32(struct fd_wire_cur *c)
{
	return (uint32_t)get_be(c, 4);
}

uint64_t fd_wire_get_u64(struct fd_wire_cur *c)
{
	return get_be(c, 8);
}

void fd_wire_get_bytes(struct fd_wire_cur *c, void *dst, size_t n)
{
	if (room(c, n)) {
		memcpy(dst, c->p + c->off, n);
		c->off += n;
	} else {
		memset(dst, 0, n);
	}
}

static int name_byte_ok(uint8_t b)
{
	return b >= 0x20 && b != 0x7f;
}

static int addr_byte_ok(uint8_t b)
{
	return b > 0x20 && b < 0x7f;
}

/* Length of s if it is at most max bytes of the kind's characters, else
 * -1. One pass. */
static int str_check(const char *s, size_t max, int addr)
{
	size_t i;

	for (i = 0; i <= max && s[i]; i++) {
		uint8_t b = (uint8_t)s[i];

		if (addr ? !addr_byte_ok(b) : !name_byte_ok(b))
			return -1;
	}
	return i > max ? -1 : (int)i;
}

static void get_str(struct fd_wire_cur *c, char *dst, size_t min, size_t max, int addr)
{
	size_t n = fd_wire_get_u8(c);
	const uint8_t *p;

	dst[0] = '\0';
	if (n < min || n > max || !room(c, n)) {
		c->err = 1;
		return;
	}
	p = c->p + c->off;
	for (size_t i = 0; i < n; i++) {
		if (addr ? !addr_byte_ok(p[i]) : !name_byte_ok(p[i])) {
			c->err = 1;
			return;
		}
	}
	/* Names end up in JSON output: they must be text. */
	if (!addr && !fd_utf8_valid((const char *)p, n)) {
		c->err = 1;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
	c->off += n;
}

void fd_wire_get_name(struct fd_wire_cur *c, char *dst, size_t min)
{
	get_str(c, dst, min, FD_WIRE_NAME_MAX, 0);
}

void fd_wire_get_addr(struct fd_wire_cur *c, char *dst)
{
	get_str(c, dst, 0, FD_WIRE_ADDR_MAX, 1);
}

int fd_wire_name_ok(const char *name)
{
	int n = str_check(name, FD_WIRE_NAME_MAX, 0);

	return n >= 1 && fd_utf8_valid(name, (size_t)n);
}

int fd_wire_addr_ok(const char *addr)
{
	return str_check(addr, FD_WIRE_ADDR_MAX, 1) >= 0;
}

size_t fd_wire_node_size(const struct fd_wire_node *n)
{
	return 1 + 8 + FD_WIRE_ID_LEN + 1 + strnlen(n->name, sizeof(n->name)) +
	       1 + strnlen(n->addr, sizeof(n->addr));
}

size_t fd_wire_update_size(const struct fd_wire_update *u)
{
	return fd_wire_node_size(&u->node) + 1 + strnlen(u->from, sizeof(u->from));
}

static void put_checked(struct fd_wire_cur *c, const char *s, size_t max,
			int addr, size_t min)
{
	int n = str_check(s, max, addr);

	if (n < (int)min) {
		c->err = 1;
		return;
	}
	fd_wire_put_u8(c, (uint8_t)n);
	fd_wire_put_bytes(c, s, (size_t)n);
}

void fd_wire_put_node(struct fd_wire_cur *c, const struct fd_wire_node *n)
{
	if (n->state > FD_WIRE_LEFT) {
		c->err = 1;
		return;
	}
	fd_wire_put_u8(c, n->state);
	fd_wire_put_u64(c, n->incarnation);
	fd_wire_put_bytes(c, n->id, FD_WIRE_ID_LEN);
	put_checked(c, n->name, FD_WIRE_NAME_MAX, 0, 1);
	put_checked(c, n->addr, FD_WIRE_ADDR_MAX, 1, 0);
}

void fd_wire_get_node(struct fd_wire_cur *c, struct fd_wire_node *n)
{
	n->state = fd_wire_get_u8(c);
	if (n->state > FD_WIRE_LEFT)
		c->err = 1;
	n->incarnation = fd_wire_get_u64(c);
	fd_wire_get_bytes(c, n->id, FD_WIRE_ID_LEN);
	fd_wire_get_name(c, n->name, 1);
	fd_wire_get_addr(c, n->addr);
}

static void put_update(struct fd_wire_cur *c, const struct fd_wire_update *u)
{
	fd_wire_put_node(c, &u->node);
	put_checked(c, u->from, FD_WIRE_NAME_MAX, 0, 0);
}

static void put_head(struct fd_wire_cur *c, uint8_t type)
{
	fd_wire_put_u8(c, FD_WIRE_MAGIC0);
	fd_wire_put_u8(c, FD_WIRE_MAGIC1);
	fd_wire_put_u8(c, FD_WIRE_VERSION);
	fd_wire_put_u8(c, type);
}

/* Returns the type, or -1 with errno set. */
static int get_head(struct fd_wire_cur *c)
{
	uint8_t m0 = fd_wire_get_u8(c), m1 = fd_wire_get_u8(c);
	uint8_t v = fd_wire_get_u8(c), t = fd_wire_get_u8(c);

	if (c->err || m0 != FD_WIRE_MAGIC0 || m1 != FD_WIRE_MAGIC1) {
		errno = EBADMSG;
		return -1;
	}
	if (v != FD_WIRE_VERSION) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	return t;
}

int fd_wire_enc_begin(struct fd_wire_enc *e, void *buf, size_t cap,
		      const struct fd_wire_msg *msg)
{
	struct fd_wire_cur *c = &e->cur;

	fd_wire_cur_init(c, buf, cap < FD_WIRE_MTU ? cap : FD_WIRE_MTU);
	e->n = 0;
	put_head(c, msg->type);
	fd_wire_put_node(c, &msg->sender);
	switch (msg->type) {
	case FD_WIRE_PING:
		fd_wire_put_u32(c, msg->seq);
		fd_wire_put_bytes(c, msg->target.id, FD_WIRE_ID_LEN);
		break;
	case FD_WIRE_ACK:
	case FD_WIRE_NACK: fd_wire_put_u32(c, msg->seq); break;
	case FD_WIRE_PING_REQ:
		fd_wire_put_u32(c, msg->seq);
		fd_wire_put_u8(c, msg->flags);
		fd_wire_put_node(c, &msg->target);
		break;
	case FD_WIRE_GOSSIP: break;
	default: c->err = 1;
	}
	e->count_off = c->off;
	fd_wire_put_u8(c, 0);
	if (c->err) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

size_t fd_wire_enc_room(const struct fd_wire_enc *e)
{
	return e->cur.err ? 0 : e->cur.len - e->cur.off;
}

int fd_wire_enc_add(struct fd_wire_enc *e, const struct fd_wire_update *u)
{
	struct fd_wire_cur *c = &e->cur;
	size_t off = c->off;
	int bad;

	if (c->err || e->n >= FD_WIRE_MAX_UPDATES) {
		errno = EMSGSIZE;
		return -1;
	}
	/* Write, and roll back if it did not fit or was malformed. */
	put_update(c, u);
	if (c->err) {
		bad = str_check(u->node.name, FD_WIRE_NAME_MAX, 0) < 1 ||
		      str_check(u->node.addr, FD_WIRE_ADDR_MAX, 1) < 0 ||
		      str_check(u->from, FD_WIRE_NAME_MAX, 0) < 0 ||
		      u->node.state > FD_WIRE_LEFT;
		c->err = 0;
		c->off = off;
		errno = bad ? EINVAL : EMSGSIZE;
		return -1;
	}
	e->n++;
	c->p[e->count_off] = (uint8_t)e->n;
	return 0;
}

size_t fd_wire_enc_finish(struct fd_wire_enc *e)
{
	return e->cur.err ? 0 : e->cur.off;
}

int fd_wire_encode(void *buf, size_t cap, const struct fd_wire_msg *msg)
{
	struct fd_wire_enc e;

	if (fd_wire_enc_begin(&e, buf, cap, msg) < 0)
		return -1;
	if (msg->nupdates > FD_WIRE_MAX_UPDATES) {
		errno = EMSGSIZE;
		return -1;
	}
	for (unsigned i = 0; i < msg->nupdates; i++)
		if (fd_wire_enc_add(&e, &msg->updates[i]) < 0)
			return -1;
	return (int)fd_wire_enc_finish(&e);
}

int fd_wire_decode(const void *buf, size_t len, struct fd_wire_msg *msg)
{
	struct fd_wire_cur c;
	int t;

	if (!buf || len > FD_WIRE_MTU) {
		errno = EBADMSG;
		return -1;
	}
	/* The cursor only reads through p. */
	fd_wire_cur_init(&c, (void *)(uintptr_t)buf, len);
	t = get_head(&c);
	if (t < 0)
		return -1;
	memset(&msg->target, 0, sizeof(msg->target));
	msg->type = (uint8_t)t;
	msg->seq = 0;
	msg->flags = 0;
	msg->nupdates = 0;
	fd_wire_get_node(&c, &msg->sender);
	switch (t) {
	case FD_WIRE_PING:
		msg->seq = fd_wire_get_u32(&c);
		fd_wire_get_bytes(&c, msg->target.id, FD_WIRE_ID_LEN);
		break;
	case FD_WIRE_ACK:
	case FD_WIRE_NACK: msg->seq = fd_wire_get_u32(&c); break;
	case FD_WIRE_PING_REQ:
		msg->seq = fd_wire_get_u32(&c);
		msg->flags = fd_wire_get_u8(&c);
		fd_wire_get_node(&c, &msg->target);
		break;
	case FD_WIRE_GOSSIP: break;
	default: c.err = 1;
	}
	msg->nupdates = fd_wire_get_u8(&c);
	if (msg->nupdates > FD_WIRE_MAX_UPDATES)
		c.err = 1;
	for (unsigned i = 0; !c.err && i < msg->nupdates; i++) {
		fd_wire_get_node(&c, &msg->updates[i].node);
		fd_wire_get_name(&c, msg->updates[i].from, 0);
	}
	if (c.err || c.off != len) {
		msg->nupdates = 0;
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

void fd_wire_pp_begin(struct fd_wire_cur *c, uint8_t flags,
		      const struct fd_wire_node *sender, uint32_t count)
{
	put_head(c, FD_WIRE_PUSHPULL);
	fd_wire_put_u8(c, flags);
	fd_wire_put_node(c, sender);
	if (count > FD_WIRE_PP_MAX)
		c->err = 1;
	fd_wire_put_u32(c, count);
}

int fd_wire_pp_open(struct fd_wire_pp_reader *r, const void *buf, size_t len)
{
	struct fd_wire_cur *c = &r->cur;
	struct fd_wire_node n;
	size_t start;
	int t;

	fd_wire_cur_init(c, (void *)(uintptr_t)buf, len);
	r->count = 0;
	r->done = 0;
	t = get_head(c);
	if (t < 0)
		return -1;
	if (t != FD_WIRE_PUSHPULL) {
		errno = EBADMSG;
		return -1;
	}
	r->flags = fd_wire_get_u8(c);
	fd_wire_get_node(c, &r->sender);
	r->count = fd_wire_get_u32(c);
	if (r->count > FD_WIRE_PP_MAX)
		c->err = 1;
	start = c->off;
	for (uint32_t i = 0; !c->err && i < r->count; i++)
		fd_wire_get_node(c, &n);
	if (c->err || c->off != len) {
		r->count = 0;
		errno = EBADMSG;
		return -1;
	}
	c->off = start;
	return 0;
}

int fd_wire_pp_next(struct fd_wire_pp_reader *r, struct fd_wire_node *n)
{
	if (r->done >= r->count || r->cur.err)
		return 0;
	fd_wire_get_node(&r->cur, n);
	if (r->cur.err)
		return 0;
	r->done++;
	return 1;
}

const char *fd_wire_type_name(int type)
{
	static const char *const names[] = {
		"?", "ping", "ack", "nack", "ping-req", "gossip", "push-pull"};

	return type > 0 && type <= FD_WIRE_PUSHPULL ? names[type] : "?";
}

const char *fd_wire_state_name(int state)
{
	static const char *const names[] = {"alive", "suspect", "failed", "left"};

	return state >= 0 && state <= FD_WIRE_LEFT ? names[state] : "?";
}
