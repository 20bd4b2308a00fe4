#include "unit.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static struct fd_wire_msg msg_a, msg_b;

static void rand_str(char *dst, size_t maxlen, size_t minlen, int addr)
{
	size_t n = minlen + unit_rand_below(maxlen - minlen + 1);

	/* Mostly short strings, sometimes the longest allowed. */
	if (unit_rand_below(4) != 0 && n > 12)
		n = minlen + unit_rand_below(12 - minlen + 1);
	for (size_t i = 0; i < n; i++) {
		if (addr) {
			dst[i] = (char)(0x21 + unit_rand_below(0x7e - 0x21));
		} else if (i + 1 < n && unit_rand_below(4) == 0) {
			/* names are UTF-8: some two-byte characters (U+00C0..U+00FF) */
			dst[i++] = (char)0xc3;
			dst[i] = (char)(0x80 + unit_rand_below(0x40));
		} else {
			dst[i] = (char)(0x20 + unit_rand_below(0x7f - 0x20));
		}
	}
	dst[n] = '\0';
}

static void rand_node(struct fd_wire_node *n)
{
	memset(n, 0, sizeof(*n));
	n->state = (uint8_t)unit_rand_below(4);
	n->incarnation = unit_rand();
	for (int i = 0; i < FD_WIRE_ID_LEN; i++)
		n->id[i] = (uint8_t)unit_rand();
	rand_str(n->name, FD_WIRE_NAME_MAX, 1, 0);
	rand_str(n->addr, FD_WIRE_ADDR_MAX, 0, 1);
}

/* A random message; updates are added while they fit. Returns its length. */
static int rand_msg(struct fd_wire_msg *m, uint8_t *buf)
{
	struct fd_wire_enc e;
	unsigned want = (unsigned)unit_rand_below(FD_WIRE_MAX_UPDATES + 1);

	memset(m, 0, sizeof(*m));
	m->type = (uint8_t)(1 + unit_rand_below(FD_WIRE_GOSSIP));
	rand_node(&m->sender);
	if (m->type != FD_WIRE_GOSSIP)
		m->seq = (uint32_t)unit_rand();
	if (m->type == FD_WIRE_PING)
		for (int i = 0; i < FD_WIRE_ID_LEN; i++)
			m->target.id[i] = (uint8_t)unit_rand();
	if (m->type == FD_WIRE_PING_REQ) {
		m->flags = (uint8_t)unit_rand();
		rand_node(&m->target);
	}
	if (fd_wire_enc_begin(&e, buf, FD_WIRE_MTU, m) < 0)
		return -1;
	for (unsigned i = 0; i < want; i++) {
		struct fd_wire_update *u = &m->updates[m->nupdates];

		rand_node(&u->node);
		if (unit_rand_below(2))
			rand_str(u->from, FD_WIRE_NAME_MAX, 1, 0);
		else
			u->from[0] = '\0';
		if (fd_wire_enc_add(&e, u) == 0)
			m->nupdates++;
	}
	return (int)fd_wire_enc_finish(&e);
}

static int node_eq(const struct fd_wire_node *a, const struct fd_wire_node *b)
{
	return a->state == b->state && a->incarnation == b->incarnation &&
	       memcmp(a->id, b->id, FD_WIRE_ID_LEN) == 0 &&
	       strcmp(a->name, b->name) == 0 && strcmp(a->addr, b->addr) == 0;
}

static int msg_eq(const struct fd_wire_msg *a, const struct fd_wire_msg *b)
{
	if (a->type != b->type || !node_eq(&a->sender, &b->sender) ||
	    a->seq != b->seq || a->nupdates != b->nupdates)
		return 0;
	if (a->type == FD_WIRE_PING &&
	    memcmp(a->target.id, b->target.id, FD_WIRE_ID_LEN) != 0)
		return 0;
	if (a->type == FD_WIRE_PING_REQ &&
	    (a->flags != b->flags || !node_eq(&a->target, &b->target)))
		return 0;
	for (unsigned i = 0; i < a->nupdates; i++)
		if (!node_eq(&a->updates[i].node, &b->updates[i].node) ||
		    strcmp(a->updates[i].from, b->updates[i].from) != 0)
			return 0;
	return 1;
}

TEST(cursor_bounds)
{
	uint8_t buf[8];
	struct fd_wire_cur c;

	fd_wire_cur_init(&c, buf, sizeof(buf));
	fd_wire_put_u64(&c, 0x0102030405060708ULL);
	CHECK_EQ(c.err, 0);
	CHECK_EQ(buf[0], 1);
	CHECK_EQ(buf[7], 8);
	fd_wire_put_u8(&c, 9);
	CHECK_EQ(c.err, 1);
	CHECK_EQ(c.off, 8);

	fd_wire_cur_init(&c, buf, sizeof(buf));
	CHECK(fd_wire_get_u32(&c) == 0x01020304u);
	CHECK(fd_wire_get_u16(&c) == 0x0506u);
	CHECK(fd_wire_get_u32(&c) == 0);
	CHECK_EQ(c.err, 1);
}

TEST(roundtrip_random)
{
	uint8_t buf[FD_WIRE_MTU];
	unsigned maxed = 0;

	for (int i = 0; i < 3000; i++) {
		int len = rand_msg(&msg_a, buf);

		REQUIRE(len > 0);
		CHECK_INT(len, <=, FD_WIRE_MTU);
		REQUIRE(fd_wire_decode(buf, (size_t)len, &msg_b) == 0);
		if (!msg_eq(&msg_a, &msg_b)) {
			unit_fail(__FILE__, __LINE__, "round trip %d differs", i);
			return;
		}
		if (len > FD_WIRE_MTU - 40)
			maxed++;
		/* fd_wire_encode gives the same bytes. */
		{
			uint8_t again[FD_WIRE_MTU];

			CHECK_EQ(fd_wire_encode(again, sizeof(again), &msg_b), len);
			CHECK(memcmp(again, buf, (size_t)len) == 0);
		}
	}
	CHECK_INT(maxed, >, 100);
}

TEST(every_truncation_rejected)
{
	uint8_t buf[FD_WIRE_MTU];

	for (int i = 0; i < 60; i++) {
		int len = rand_msg(&msg_a, buf);

		REQUIRE(len > 0);
		for (int cut = 0; cut < len; cut++) {
			errno = 0;
			if (fd_wire_decode(buf, (size_t)cut, &msg_b) != -1) {
				unit_fail(__FILE__, __LINE__,
					  "accepted %d of %d", cut, len);
				return;
			}
			CHECK(errno == EBADMSG || errno == EPROTONOSUPPORT);
		}
		/* One trailing byte too many is rejected too. */
		if (len < FD_WIRE_MTU) {
			buf[len] = 0;
			CHECK_EQ(fd_wire_decode(buf, (size_t)len + 1, &msg_b), -1);
		}
	}
}

TEST(unknown_version_and_type)
{
	uint8_t buf[FD_WIRE_MTU];
	int len = rand_msg(&msg_a, buf);

	REQUIRE(len > 0);
	buf[2] = 2;
	errno = 0;
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	CHECK_EQ(errno, EPROTONOSUPPORT);
	buf[2] = FD_WIRE_VERSION;
	buf[0] = 'G';
	errno = 0;
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	CHECK_EQ(errno, EBADMSG);
	buf[0] = FD_WIRE_MAGIC0;
	buf[3] = 99;
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	buf[3] = FD_WIRE_PUSHPULL; /* not a datagram type */
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	CHECK_EQ(fd_wire_decode(buf, FD_WIRE_MTU + 1, &msg_b), -1);
	CHECK_EQ(fd_wire_decode(NULL, 0, &msg_b), -1);
}

TEST(bad_fields_rejected)
{
	uint8_t buf[FD_WIRE_MTU];
	struct fd_wire_msg *m = &msg_a;
	size_t name_off;
	int len;

	memset(m, 0, sizeof(*m));
	m->type = FD_WIRE_GOSSIP;
	snprintf(m->sender.name, sizeof(m->sender.name), "n1");
	snprintf(m->sender.addr, sizeof(m->sender.addr), "127.0.0.1:4380");
	len = fd_wire_encode(buf, sizeof(buf), m);
	REQUIRE(len > 0);
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), 0);
	/* state byte out of range */
	buf[4] = 4;
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	buf[4] = 0;
	/* a control character in the name */
	name_off = 4 + 1 + 8 + 16 + 1;
	buf[name_off] = '\n';
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	/* a byte that is not UTF-8 in the name (names end up in JSON) */
	buf[name_off] = (char)0xff;
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
	buf[name_off] = 'n';
	/* an empty name */
	m->sender.name[0] = '\0';
	CHECK_EQ(fd_wire_encode(buf, sizeof(buf), m), -1);
	/* a space in the address, an overlong address */
	snprintf(m->sender.name, sizeof(m->sender.name), "n1");
	snprintf(m->sender.addr, sizeof(m->sender.addr), "a b:1");
	CHECK_EQ(fd_wire_encode(buf, sizeof(buf), m), -1);
	memset(m->sender.addr, 'a', FD_WIRE_ADDR_MAX);
	m->sender.addr[FD_WIRE_ADDR_MAX] = '\0';
	CHECK(fd_wire_encode(buf, sizeof(buf), m) > 0);
	CHECK(fd_wire_addr_ok(m->sender.addr));
	CHECK(!fd_wire_name_ok(""));
	CHECK(fd_wire_name_ok("node 1"));
	CHECK(fd_wire_name_ok("n\xc3\xa9ud"));
	CHECK(!fd_wire_name_ok("n\xc3"));
	CHECK(!fd_wire_addr_ok("node 1"));
	/* too many updates claimed */
	m->sender.addr[0] = '\0';
	len = fd_wire_encode(buf, sizeof(buf), m);
	REQUIRE(len > 0);
	buf[len - 1] = FD_WIRE_MAX_UPDATES + 1;
	CHECK_EQ(fd_wire_decode(buf, (size_t)len, &msg_b), -1);
}

/* Garbage never crashes; flipped bytes of valid datagrams either decode to
 * something that re-encodes to the same bytes or are rejected. */
TEST(garbage_and_mutations)
{
	uint8_t buf[FD_WIRE_MTU], again[FD_WIRE_MTU];
	unsigned ok = 0;

	for (int i = 0; i < 20000; i++) {
		size_t len = unit_rand_below(FD_WIRE_MTU + 1);

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)unit_rand();
		if (len >= 4 && unit_rand_below(2)) {
			buf[0] = FD_WIRE_MAGIC0;
			buf[1] = FD_WIRE_MAGIC1;
			buf[2] = FD_WIRE_VERSION;
			buf[3] = (uint8_t)(1 + unit_rand_below(6));
		}
		(void)fd_wire_decode(buf, len, &msg_b);
	}
	for (int i = 0; i < 3000; i++) {
		int len = rand_msg(&msg_a, buf);
		int flips = 1 + (int)unit_rand_below(3);

		REQUIRE(len > 0);
		for (int f = 0; f < flips; f++)
			buf[unit_rand_below((uint64_t)len)] ^=
				(uint8_t)(1u << unit_rand_below(8));
		if (fd_wire_decode(buf, (size_t)len, &msg_b) == 0) {
			ok++;
			CHECK_EQ(fd_wire_encode(again, sizeof(again), &msg_b), len);
			CHECK(memcmp(again, buf, (size_t)len) == 0);
		}
	}
	CHECK_INT(ok, >, 0);
}

TEST(update_never_overflows_mtu)
{
	uint8_t buf[FD_WIRE_MTU];
	struct fd_wire_enc e;
	struct fd_wire_update u;

	/* The biggest possible PING_REQ still leaves room for the biggest update. */
	memset(&msg_a, 0, sizeof(msg_a));
	msg_a.type = FD_WIRE_PING_REQ;
	memset(msg_a.sender.name, 'n', FD_WIRE_NAME_MAX);
	memset(msg_a.sender.addr, 'a', FD_WIRE_ADDR_MAX);
	msg_a.target = msg_a.sender;
	memset(&u, 0, sizeof(u));
	memset(u.node.name, 'u', FD_WIRE_NAME_MAX);
	memset(u.node.addr, 'b', FD_WIRE_ADDR_MAX);
	memset(u.from, 'f', FD_WIRE_NAME_MAX);
	REQUIRE(fd_wire_enc_begin(&e, buf, sizeof(buf), &msg_a) == 0);
	CHECK_EQ(fd_wire_enc_add(&e, &u), 0);
	CHECK_EQ(fd_wire_enc_add(&e, &u), -1);
	CHECK_INT(fd_wire_enc_finish(&e), <=, FD_WIRE_MTU);
	CHECK_EQ(fd_wire_decode(buf, fd_wire_enc_finish(&e), &msg_b), 0);
	CHECK_EQ(msg_b.nupdates, 1);
	/* A small buffer caps the datagram too. */
	REQUIRE(fd_wire_enc_begin(&e, buf, 700, &msg_a) == 0);
	CHECK_EQ(fd_wire_enc_add(&e, &u), -1);
	CHECK_EQ(fd_wire_enc_begin(&e, buf, 100, &msg_a), -1);
}

static size_t pp_build(uint8_t *buf, size_t cap, struct fd_wire_node *nodes,
		       uint32_t count, struct fd_wire_node *sender)
{
	struct fd_wire_cur c;

	fd_wire_cur_init(&c, buf, cap);
	fd_wire_pp_begin(&c, FD_WIRE_F_JOIN, sender, count);
	for (uint32_t i = 0; i < count; i++)
		fd_wire_put_node(&c, &nodes[i]);
	return c.err ? 0 : c.off;
}

TEST(pushpull_roundtrip_and_truncation)
{
	enum { N = 50 };
	static struct fd_wire_node nodes[N], got;
	struct fd_wire_node sender;
	struct fd_wire_pp_reader r;
	size_t need, len;
	uint8_t *buf;
	uint32_t i;

	rand_node(&sender);
	need = FD_WIRE_HDR_LEN + 1 + fd_wire_node_size(&sender) + 4;
	for (i = 0; i < N; i++) {
		rand_node(&nodes[i]);
		need += fd_wire_node_size(&nodes[i]);
	}
	buf = malloc(need);
	REQUIRE(buf);
	CHECK_EQ(pp_build(buf, need - 1, nodes, N, &sender), 0);
	len = pp_build(buf, need, nodes, N, &sender);
	CHECK_EQ(len, need);
	REQUIRE(fd_wire_pp_open(&r, buf, len) == 0);
	CHECK_EQ(r.count, N);
	CHECK_EQ(r.flags, FD_WIRE_F_JOIN);
	CHECK(node_eq(&r.sender, &sender));
	for (i = 0; fd_wire_pp_next(&r, &got); i++)
		CHECK(node_eq(&got, &nodes[i]));
	CHECK_EQ(i, N);
	for (size_t cut = 0; cut < len; cut++)
		if (fd_wire_pp_open(&r, buf, cut) != -1) {
			unit_fail(__FILE__, __LINE__, "accepted %zu of %zu",
				  cut, len);
			break;
		}
	/* a datagram is not a push-pull state */
	CHECK_EQ(fd_wire_pp_open(&r, "\xfd\x4d\x01\x05", 4), -1);
	/* a count above the cap */
	{
		uint8_t small[512];
		struct fd_wire_cur c;

		fd_wire_cur_init(&c, small, sizeof(small));
		fd_wire_pp_begin(&c, 0, &sender, FD_WIRE_PP_MAX + 1);
		CHECK_EQ(c.err, 1);
	}
	free(buf);
}

TEST(names)
{
	CHECK_STR(fd_wire_type_name(FD_WIRE_PING_REQ), "ping-req");
	CHECK_STR(fd_wire_type_name(0), "?");
	CHECK_STR(fd_wire_state_name(FD_WIRE_LEFT), "left");
	CHECK_STR(fd_wire_state_name(7), "?");
}
