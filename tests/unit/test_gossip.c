#include "gossip.h"
#include "jsonl.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char id1[] = "00112233445566778899aabbccddeeff";
static const char id2[] = "ffeeddccbbaa99887766554433221100";

static void hb(struct fd_gossip_msg *m, const char *name, const char *addr,
	       const char *id, int64_t interval_ms)
{
	memset(m, 0, sizeof(*m));
	m->kind = FD_GOSSIP_HEARTBEAT;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->addr, sizeof(m->addr), "%s", addr);
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->interval_ms = interval_ms;
}

static void key(struct fd_keyring *kr, uint8_t fill)
{
	memset(kr, 0, sizeof(*kr));
	memset(kr->keys[0].bytes, fill, FD_KEY_LEN);
	kr->keys[0].id = 0x01020300u | fill;
	kr->n = 1;
}

TEST(encode_decode_exact)
{
	struct fd_gossip_msg m, d;
	uint8_t buf[FD_GOSSIP_MAX];
	struct fd_err err;
	ssize_t len;

	hb(&m, "n1", "127.0.0.1:4001", id1, 1500);
	m.meta = json_object_new_object();
	json_object_object_add(m.meta, "zone", json_object_new_string("a"));
	len = fd_gossip_encode(&m, buf, sizeof(buf), &err);
	REQUIRE(len > 0);
	buf[len] = '\0';
	CHECK_STR((char *)buf,
		  "{\"v\":1,\"type\":\"heartbeat\",\"name\":\"n1\",\"addr\":\"127.0.0.1:4001\",\"id\":\"00112233445566778899aabbccddeeff\",\"meta\":{\"zone\":\"a\"},\"interval\":1.500}");
	REQUIRE(fd_gossip_decode(buf, (size_t)len, &d, &err) == 0);
	CHECK_EQ(d.kind, FD_GOSSIP_HEARTBEAT);
	CHECK_STR(d.name, "n1");
	CHECK_STR(d.addr, "127.0.0.1:4001");
	CHECK_STR(d.id, id1);
	CHECK_EQ(d.interval_ms, 1500);
	CHECK(json_object_equal(d.meta, m.meta));
	fd_gossip_msg_release(&d);
	fd_gossip_msg_release(&m);

	m.kind = FD_GOSSIP_QUERY;
	len = fd_gossip_encode(&m, buf, sizeof(buf), &err);
	REQUIRE(len > 0);
	buf[len] = '\0';
	CHECK_STR((char *)buf, "{\"v\":1,\"type\":\"query\"}");
	/* addresses are normalized on the way in */
	{
		static const char in[] =
			"{\"v\":1,\"type\":\"leave\",\"name\":\"n\",\"addr\":\"h\",\"id\":\"00112233445566778899aabbccddeeff\",\"x\":[1]}";

		REQUIRE(fd_gossip_decode((const uint8_t *)in, strlen(in), &d,
					 &err) == 0);
		CHECK_EQ(d.kind, FD_GOSSIP_LEAVE);
		CHECK_STR(d.addr, "h:4380");
		fd_gossip_msg_release(&d);
	}
}

TEST(decode_rejects)
{
	static const char *bad[] = {
		"",
		"[]",
		"{\"v\":2,\"type\":\"query\"}",
		"{\"v\":\"1\",\"type\":\"query\"}",
		"{\"v\":1,\"type\":\"hello\"}",
		"{\"v\":1,\"type\":\"leave\",\"name\":\"n\",\"addr\":\"h:0\",\"id\":\"00112233445566778899aabbccddeeff\"}",
		"{\"v\":1,\"type\":\"leave\",\"name\":\"a b\",\"addr\":\"h\",\"id\":\"00112233445566778899aabbccddeeff\"}",
		"{\"v\":1,\"type\":\"leave\",\"name\":\"n\",\"addr\":\"h\",\"id\":\"0011\"}",
		"{\"v\":1,\"type\":\"leave\",\"name\":\"n\",\"addr\":\"h\",\"id\":\"00112233445566778899AABBCCDDEEFF\"}",
		"{\"v\":1,\"type\":\"heartbeat\",\"name\":\"n\",\"addr\":\"h\",\"id\":\"00112233445566778899aabbccddeeff\"}",
		"{\"v\":1,\"type\":\"heartbeat\",\"name\":\"n\",\"addr\":\"h\",\"id\":\"00112233445566778899aabbccddeeff\",\"interval\":0}",
		"{\"v\":1,\"type\":\"heartbeat\",\"name\":\"n\",\"addr\":\"h\",\"id\":\"00112233445566778899aabbccddeeff\",\"interval\":1,\"meta\":[]}",
		"{\"v\":1,\"type\":\"query\"} x",
	};
	struct fd_gossip_msg d;
	struct fd_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fd_gossip_decode((const uint8_t *)bad[i], strlen(bad[i]),
				     &d, &err) == 0) {
			unit_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
			fd_gossip_msg_release(&d);
		}
}

TEST(sealed_with_our_key_other_key_replay_plain)
{
	struct fd_keyring k1, k2;
	struct fd_replay *rc = fd_replay_new(60000, 1024);
	struct fd_gossip_stats st = {0};
	struct fd_gossip_msg m, d;
	uint8_t buf[FD_GOSSIP_MAX];
	struct fd_err err;
	ssize_t len;

	key(&k1, 1);
	key(&k2, 2);
	hb(&m, "n1", "127.0.0.1:4001", id1, 1000);
	len = fd_gossip_pack(&k1, "fd", 1000000, &m, buf, sizeof(buf), &err);
	REQUIRE(len > 0);
	CHECK(fd_auth_is_sealed(buf, (size_t)len));
	CHECK(memmem(buf, (size_t)len, "n1", 2) == NULL); /* encrypted */
	CHECK_EQ(fd_gossip_unpack(&k1, rc, "fd", 1000100, buf, (size_t)len, &d,
				  &st, &err),
		 FD_GOSSIP_OK);
	CHECK_STR(d.name, "n1");
	fd_gossip_msg_release(&d);
	/* the same datagram again */
	CHECK_EQ(fd_gossip_unpack(&k1, rc, "fd", 1000200, buf, (size_t)len, &d,
				  &st, &err),
		 FD_GOSSIP_REPLAYED);
	/* another key, another cluster name */
	CHECK_EQ(fd_gossip_unpack(&k2, rc, "fd", 1000200, buf, (size_t)len, &d,
				  &st, &err),
		 FD_GOSSIP_BAD_KEY);
	len = fd_gossip_pack(&k1, "other", 1000000, &m, buf, sizeof(buf), &err);
	CHECK_EQ(fd_gossip_unpack(&k1, rc, "fd", 1000200, buf, (size_t)len, &d,
				  &st, &err),
		 FD_GOSSIP_BAD_KEY);
	/* a flipped bit */
	len = fd_gossip_pack(&k1, "fd", 1000000, &m, buf, sizeof(buf), &err);
	buf[len - 3] ^= 1;
	CHECK_EQ(fd_gossip_unpack(&k1, rc, "fd", 1000200, buf, (size_t)len, &d,
				  &st, &err),
		 FD_GOSSIP_BAD_KEY);
	/* too old */
	len = fd_gossip_pack(&k1, "fd", 1000000, &m, buf, sizeof(buf), &err);
	CHECK_EQ(fd_gossip_unpack(&k1, rc, "fd", 1000000 + 120000, buf,
				  (size_t)len, &d, &st, &err),
		 FD_GOSSIP_REPLAYED);
	/* plain JSON to a keyed receiver; sealed to a keyless one */
	len = fd_gossip_pack(NULL, "fd", 1000000, &m, buf, sizeof(buf), &err);
	CHECK(buf[0] == '{');
	CHECK_EQ(fd_gossip_unpack(&k1, rc, "fd", 1000200, buf, (size_t)len, &d,
				  &st, &err),
		 FD_GOSSIP_UNSEALED);
	CHECK_EQ(fd_gossip_unpack(NULL, NULL, "fd", 1000200, buf, (size_t)len,
				  &d, &st, &err),
		 FD_GOSSIP_OK);
	fd_gossip_msg_release(&d);
	len = fd_gossip_pack(&k1, "fd", 1000000, &m, buf, sizeof(buf), &err);
	CHECK_EQ(fd_gossip_unpack(NULL, NULL, "fd", 1000200, buf, (size_t)len,
				  &d, &st, &err),
		 FD_GOSSIP_SEALED);
	CHECK_EQ(fd_gossip_unpack(NULL, NULL, "fd", 1000200,
				  (const uint8_t *)"junk", 4, &d, &st, &err),
		 FD_GOSSIP_MALFORMED);
	CHECK_EQ(st.received, 10);
	CHECK_EQ(st.accepted, 2);
	CHECK_EQ(st.replayed, 2);
	CHECK_EQ(st.bad_key, 3);
	CHECK_EQ(st.unsealed, 1);
	CHECK_EQ(st.sealed, 1);
	CHECK_EQ(st.malformed, 1);
	CHECK_EQ(fd_gossip_ignored(&st), 8);
	{
		struct json_object *o = fd_gossip_stats_json(&st);

		CHECK_STR(fd_json_str(o, NULL),
			  "{\"received\":10,\"accepted\":2,\"ignored\":{\"bad_key\":3,\"replayed\":2,\"unsealed\":1,\"sealed\":1,\"malformed\":1}}");
		json_object_put(o);
	}
	fd_replay_free(rc);
}

TEST(meta_too_large_is_refused)
{
	struct fd_gossip_msg m;
	uint8_t buf[FD_GOSSIP_MAX];
	char big[2000];
	struct fd_err err;

	hb(&m, "n1", "127.0.0.1:4001", id1, 1000);
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	m.meta = json_object_new_object();
	json_object_object_add(m.meta, "k", json_object_new_string(big));
	CHECK_EQ(fd_gossip_pack(NULL, "fd", 0, &m, buf, sizeof(buf), &err), -1);
	CHECK_STR(err.msg, "message longer than 1359 bytes (a smaller meta?)");
	fd_gossip_msg_release(&m);
}

static char seen[1024];

static void collect(const char *name, const char *addr,
		    struct json_object *meta, void *arg)
{
	size_t l = strlen(seen);

	(void)arg;
	snprintf(seen + l, sizeof(seen) - l, "%s %s %s\n", name, addr,
		 fd_json_str(meta, NULL));
}

static const char *list(struct fd_gossip_peers *p, int64_t now)
{
	seen[0] = '\0';
	fd_gossip_peers_each(p, now, collect, NULL);
	return seen;
}

TEST(peers_expire_leave_and_restart)
{
	struct fd_gossip_peers *p = fd_gossip_peers_new(2);
	struct fd_gossip_msg a, b, c;

	hb(&a, "n1", "127.0.0.1:4001", id1, 1000);
	hb(&b, "n2", "127.0.0.1:4002", id2, 2000);
	hb(&c, "n3", "127.0.0.1:4003", id2, 1000);
	CHECK_EQ(fd_gossip_peers_update(p, 0, &b), 1);
	CHECK_EQ(fd_gossip_peers_update(p, 0, &a), 1);
	CHECK_EQ(fd_gossip_peers_update(p, 100, &a), 0);
	CHECK_EQ(fd_gossip_peers_update(p, 100, &c), -1); /* full */
	CHECK_STR(list(p, 100), "n1 127.0.0.1:4001 {}\nn2 127.0.0.1:4002 {}\n");
	/* 3 intervals and the grace after its last heartbeat */
	CHECK_EQ(fd_gossip_peers_next_expiry(p, 100), 3600);
	CHECK_STR(list(p, 3599), "n1 127.0.0.1:4001 {}\nn2 127.0.0.1:4002 {}\n");
	CHECK_STR(list(p, 3600), "n2 127.0.0.1:4002 {}\n");
	/* a leave from another instance at that address is not its own */
	a.kind = FD_GOSSIP_LEAVE;
	snprintf(a.addr, sizeof(a.addr), "127.0.0.1:4002");
	CHECK_EQ(fd_gossip_peers_update(p, 3700, &a), 0);
	CHECK_STR(list(p, 3700), "n2 127.0.0.1:4002 {}\n");
	/* restarted (new id, new meta): changed */
	snprintf(b.id, sizeof(b.id), "%s", id1);
	b.meta = json_object_new_object();
	json_object_object_add(b.meta, "v", json_object_new_int(2));
	CHECK_EQ(fd_gossip_peers_update(p, 3800, &b), 1);
	CHECK_EQ(fd_gossip_peers_update(p, 3900, &b), 0);
	CHECK_STR(list(p, 3900), "n2 127.0.0.1:4002 {\"v\":2}\n");
	/* its own leave: gone at once */
	b.kind = FD_GOSSIP_LEAVE;
	CHECK_EQ(fd_gossip_peers_update(p, 4000, &b), 0);
	CHECK_STR(list(p, 4000), "");
	CHECK_EQ(fd_gossip_peers_next_expiry(p, 4000), INT64_MAX);
	fd_gossip_msg_release(&b);
	fd_gossip_peers_free(p);
}

/* Random heartbeats through pack and unpack with random keys: what opens
 * is exactly what was sealed with our key, the rest is counted. */
TEST(random_roundtrip)
{
	struct fd_keyring k1, k2;
	struct fd_replay *rc = fd_replay_new(60000, 100000);
	struct fd_gossip_stats st = {0};
	uint64_t want_ok = 0, want_bad = 0;

	printf("# seed %" PRIu64 "\n", unit_seed());
	key(&k1, 7);
	key(&k2, 9);
	for (int i = 0; i < 500 && !unit_failed; i++) {
		struct fd_gossip_msg m, d;
		uint8_t buf[FD_GOSSIP_MAX];
		char name[32], addr[64], id[33];
		int mine = (int)unit_rand_below(2);
		ssize_t len;

		snprintf(name, sizeof(name), "n%u", (unsigned)unit_rand_below(1000));
		snprintf(addr, sizeof(addr), "10.%u.%u.%u:%u",
			 (unsigned)unit_rand_below(256),
			 (unsigned)unit_rand_below(256),
			 (unsigned)unit_rand_below(256),
			 1 + (unsigned)unit_rand_below(65535));
		for (int k = 0; k < 32; k++)
			id[k] = "0123456789abcdef"[unit_rand_below(16)];
		id[32] = '\0';
		hb(&m, name, addr, id, 10 + (int64_t)unit_rand_below(100000));
		len = fd_gossip_pack(mine ? &k1 : &k2, "fd", 5000000, &m, buf,
				     sizeof(buf), NULL);
		REQUIRE(len > 0);
		if (fd_gossip_unpack(&k1, rc, "fd", 5000000, buf, (size_t)len,
				     &d, &st, NULL) == FD_GOSSIP_OK) {
			CHECK(mine);
			CHECK_STR(d.name, name);
			CHECK_STR(d.addr, addr);
			CHECK_STR(d.id, id);
			CHECK_EQ(d.interval_ms, m.interval_ms);
			fd_gossip_msg_release(&d);
		}
		if (mine)
			want_ok++;
		else
			want_bad++;
	}
	CHECK_EQ(st.accepted, want_ok);
	CHECK_EQ(st.bad_key, want_bad);
	fd_replay_free(rc);
}
