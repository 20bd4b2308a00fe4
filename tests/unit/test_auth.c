#include "auth.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z in ms */

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void rand_bytes(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)unit_rand();
}

/* A key from the test's random stream (reproducible with FD_TEST_SEED). */
static void rand_key(struct fd_key *k)
{
	char b64[FD_KEY_B64_LEN + 1];

	rand_bytes(k->bytes, FD_KEY_LEN);
	fd_key_format(k, b64);
	CHECK_EQ(fd_key_parse(b64, k, NULL), 0); /* sets the id */
}

static void ring_of(struct fd_keyring *kr, const struct fd_key *k)
{
	memset(kr, 0, sizeof(*kr));
	kr->keys[0] = *k;
	kr->n = 1;
}

/* ---- Known answers ---- */

struct gcm_vec {
	const char *key, *iv, *aad, *pt, *ct, *tag;
};

/* The GCM specification's AES-256 test cases 13, 14 and 16 (McGrew &
 * Viega, as used by NIST's GCM validation). */
static const struct gcm_vec gcm_vecs[] = {
	{"0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
	{"0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "00000000000000000000000000000000",
	 "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
	{"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	 "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	 "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(gcm_known_answers)
{
	for (size_t v = 0; v < sizeof(gcm_vecs) / sizeof(gcm_vecs[0]); v++) {
		const struct gcm_vec *g = &gcm_vecs[v];
		uint8_t key[32], iv[12], aad[64], pt[64], ct[64], tag[16],
			want_tag[16], out[64];
		size_t alen = strlen(g->aad) / 2, plen = strlen(g->pt) / 2;

		unhex(g->key, key, 32);
		unhex(g->iv, iv, 12);
		unhex(g->aad, aad, alen);
		unhex(g->pt, pt, plen);
		unhex(g->ct, ct, plen);
		unhex(g->tag, want_tag, 16);
		CHECK_EQ(fd_auth_gcm_raw(1, key, iv, aad, alen, pt, plen, out, tag),
			 0);
		CHECK(memcmp(out, ct, plen) == 0);
		CHECK(memcmp(tag, want_tag, 16) == 0);
		CHECK_EQ(fd_auth_gcm_raw(0, key, iv, aad, alen, ct, plen, out, want_tag),
			 0);
		CHECK(memcmp(out, pt, plen) == 0);
		want_tag[15] ^= 1;
		CHECK_EQ(fd_auth_gcm_raw(0, key, iv, aad, alen, ct, plen, out, want_tag),
			 -1);
	}
}

struct hmac_vec {
	const char *key; /* hex */
	size_t keylen;
	const char *data; /* text, or hex when datalen is set */
	size_t datalen;
	const char *mac;
};

/* RFC 4231, test cases 1 to 7 (HMAC-SHA-256). */
TEST(hmac_rfc4231)
{
	static const struct hmac_vec v[] = {
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", 20, "Hi There", 0,
		 "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"4a656665", 4, "what do ya want for nothing?", 0,
		 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 20,
		 "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
		 "dddddddddddddddddddddddddddddddddddd",
		 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"0102030405060708090a0b0c0d0e0f10111213141516171819", 25,
		 "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
		 "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
		 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		/* test case 5: the first 128 bits */
		{"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", 20,
		 "Test With Truncation", 0, "a3b6167473100ee06e0c796c2955552b"},
		{NULL, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
		 0, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{NULL, 131,
		 "This is a test using a larger than block-size key and a larger "
		 "than block-size data. The key needs to be hashed before being "
		 "used by the HMAC algorithm.",
		 0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t key[131], data[64], mac[32], want[32];
		size_t wl = strlen(v[i].mac) / 2;
		const void *d = v[i].data;
		size_t dl = strlen(v[i].data);

		if (v[i].key)
			unhex(v[i].key, key, v[i].keylen);
		else
			memset(key, 0xaa, v[i].keylen);
		if (v[i].datalen) {
			unhex(v[i].data, data, v[i].datalen);
			d = data;
			dl = v[i].datalen;
		}
		unhex(v[i].mac, want, wl);
		CHECK_EQ(fd_auth_hmac_raw(key, v[i].keylen, d, dl, mac), 0);
		if (memcmp(mac, want, wl) != 0)
			unit_fail(__FILE__, __LINE__, "RFC 4231 case %zu", i + 1);
	}
}

/* The mac states kept per key (a few at a time) never mix keys up: many
 * keys in a random order, each mac again equal to its first, through
 * evictions and keys forgotten by a ring. */
TEST(hmac_kept_states)
{
	enum { NK = 20 };
	uint8_t key[NK][64], first[NK][32], mac[32];
	size_t klen[NK];
	const char msg[] = "fd-hmac-kept-states";

	printf("  seed %" PRIu64 "\n", unit_seed());
	for (int i = 0; i < NK; i++) {
		klen[i] = 1 + unit_rand_below(64);
		rand_bytes(key[i], klen[i]);
		REQUIRE(fd_auth_hmac_raw(key[i], klen[i], msg, sizeof(msg),
					 first[i]) == 0);
	}
	for (int step = 0; step < 2000; step++) {
		int i = (int)unit_rand_below(NK);

		if (step % 97 == 0) { /* a ring that held keys, cleared */
			struct fd_keyring kr;
			struct fd_key k;

			rand_key(&k);
			ring_of(&kr, &k);
			CHECK_EQ(fd_auth_hmac_raw(k.bytes, sizeof(k.bytes), msg,
						  sizeof(msg), mac),
				 0);
			fd_keyring_clear(&kr);
		}
		REQUIRE(fd_auth_hmac_raw(key[i], klen[i], msg, sizeof(msg), mac) == 0);
		if (memcmp(mac, first[i], 32) != 0) {
			unit_fail(__FILE__, __LINE__,
				  "key %d: mac changed at step %d", i, step);
			break;
		}
	}
}

/* ---- Keys ---- */

TEST(key_parse_format_id)
{
	struct fd_key k;
	struct fd_err err;
	char b64[FD_KEY_B64_LEN + 1], id[9];
	uint32_t parsed;

	/* bytes 0..31; id = SHA-256("fd-key-id" || key)[0..3] */
	CHECK_EQ(fd_key_parse("  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
			      &k, &err),
		 0);
	for (int i = 0; i < 32; i++)
		CHECK_EQ(k.bytes[i], i);
	fd_key_id_hex(k.id, id);
	CHECK_STR(id, "cd9b56cb");
	CHECK_EQ(fd_key_id_parse("cd9b56cb", &parsed), 0);
	CHECK_EQ(parsed, k.id);
	CHECK_EQ(fd_key_id_parse("CD9B56CB", &parsed), -1);
	CHECK_EQ(fd_key_id_parse("cd9b56c", &parsed), -1);
	CHECK_EQ(fd_key_id_parse("cd9b56cb0", &parsed), -1);
	fd_key_format(&k, b64);
	CHECK_STR(b64, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
	memset(k.bytes, 0, sizeof(k.bytes));
	CHECK_EQ(fd_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &k, NULL),
		 0);
	fd_key_id_hex(k.id, id);
	CHECK_STR(id, "2e51ceeb");

	static const char *const bad[] = {
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",	 /* no pad */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==", /* 45 */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", /* stray bits */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!=", /* not base64 */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGx wdHh8=", /* a space */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==",	 /* 31 bytes */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (fd_key_parse(bad[i], &k, &err) == 0)
			unit_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
		else
			CHECK(strstr(err.msg, "not a key") != NULL);
	}
	/* random keys survive format -> parse with the same id */
	for (int i = 0; i < 200; i++) {
		struct fd_key a, b;

		rand_key(&a);
		fd_key_format(&a, b64);
		CHECK_EQ(strlen(b64), FD_KEY_B64_LEN);
		REQUIRE(fd_key_parse(b64, &b, NULL) == 0);
		CHECK(memcmp(a.bytes, b.bytes, FD_KEY_LEN) == 0);
		CHECK_EQ(a.id, b.id);
	}
	/* generated keys differ */
	{
		struct fd_key a, b;

		CHECK_EQ(fd_key_generate(&a, NULL), 0);
		CHECK_EQ(fd_key_generate(&b, NULL), 0);
		CHECK(memcmp(a.bytes, b.bytes, FD_KEY_LEN) != 0);
	}
}

static int parse_err(const char *text, const char *want)
{
	struct fd_keyring kr;
	struct fd_err err;

	if (fd_keyring_parse(text, strlen(text), &kr, &err) == 0) {
		printf("  accepted: %s\n", text);
		return 0;
	}
	if (strcmp(err.msg, want) != 0) {
		printf("  got '%s', want '%s'\n", err.msg, want);
		return 0;
	}
	return kr.n == 0;
}

#define K0 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define K1 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

TEST(keyring_parse)
{
	struct fd_keyring kr, kr2;
	struct fd_err err;
	const char *text = "# cluster keys\n\n  " K1 "  \r\n# old one:\n" K0 "\n";
	char *out;

	REQUIRE(fd_keyring_parse(text, strlen(text), &kr, &err) == 0);
	CHECK_EQ(kr.n, 2);
	CHECK_EQ(kr.primary, 0);
	CHECK_EQ(kr.keys[1].bytes[31], 31);
	/* no trailing newline */
	CHECK_EQ(fd_keyring_parse(K0, strlen(K0), &kr2, NULL), 0);
	CHECK_EQ(kr2.n, 1);

	CHECK(parse_err("", "no key in the file"));
	CHECK(parse_err("# only\n\n   \n", "no key in the file"));
	CHECK(parse_err("# keys\n" K0 "\nsecret\n",
			"line 3: not a key (expected 44 base64 characters, as "
			"fd-node keygen writes)"));
	CHECK(parse_err(K0 "\n" K1 "\n\n" K0 "\n",
			"line 4: the same key a second time"));
	CHECK(parse_err(K0 " " K1 "\n", "line 1: not a key (expected 44 base64 characters, as "
					"fd-node keygen writes)"));
	{
		char t[64] = K0 "\n#\0x\n";

		CHECK_EQ(fd_keyring_parse(t, strlen(K0) + 5, &kr2, &err), -1);
		CHECK_STR(err.msg, "line 2: a NUL byte");
	}
	{
		/* 17 keys */
		char t[17 * (FD_KEY_B64_LEN + 1) + 1];
		size_t off = 0;

		for (int i = 0; i < 17; i++) {
			struct fd_key k;

			rand_key(&k);
			fd_key_format(&k, t + off);
			off += FD_KEY_B64_LEN;
			t[off++] = '\n';
		}
		t[off] = 0;
		CHECK(parse_err(t, "line 17: more than 16 keys"));
	}

	/* format -> parse keeps the keys, primary first */
	CHECK_EQ(fd_keyring_use(&kr, kr.keys[1].id, NULL), 0);
	out = fd_keyring_format(&kr);
	REQUIRE(out != NULL);
	CHECK(out[0] == '#');
	REQUIRE(fd_keyring_parse(out, strlen(out), &kr2, &err) == 0);
	CHECK_EQ(kr2.n, 2);
	CHECK_EQ(kr2.primary, 0);
	CHECK_EQ(kr2.keys[0].id, kr.keys[1].id);
	CHECK_EQ(kr2.keys[1].id, kr.keys[0].id);
	free(out);
}

TEST(keyring_rules)
{
	struct fd_keyring kr = {0};
	struct fd_key k[FD_KEYRING_MAX + 1];
	struct fd_err err;

	for (int i = 0; i <= FD_KEYRING_MAX; i++)
		rand_key(&k[i]);
	CHECK_EQ(fd_keyring_install(&kr, &k[0], &err), 0);
	CHECK_EQ(fd_keyring_install(&kr, &k[0], &err), 0); /* no-op */
	CHECK_EQ(kr.n, 1);
	CHECK_EQ(fd_keyring_install(&kr, &k[1], &err), 0);
	CHECK_EQ(fd_keyring_install(&kr, &k[2], &err), 0);
	CHECK_EQ(kr.n, 3);
	CHECK_EQ(kr.primary, 0);
	/* use: only installed keys */
	CHECK_EQ(fd_keyring_use(&kr, k[5].id, &err), -1);
	CHECK(strstr(err.msg, "no key") != NULL);
	CHECK_EQ(fd_keyring_use(&kr, k[2].id, &err), 0);
	CHECK_EQ(kr.keys[kr.primary].id, k[2].id);
	/* remove: not the primary, not an absent one */
	CHECK_EQ(fd_keyring_remove(&kr, k[2].id, &err), -1);
	CHECK(strstr(err.msg, "primary") != NULL);
	CHECK_EQ(fd_keyring_remove(&kr, k[5].id, &err), -1);
	CHECK_EQ(fd_keyring_remove(&kr, k[0].id, &err), 0);
	CHECK_EQ(kr.n, 2);
	CHECK_EQ(kr.keys[kr.primary].id, k[2].id); /* still the primary */
	CHECK_EQ(fd_keyring_find(&kr, k[0].id), -1);
	CHECK(fd_keyring_find(&kr, k[1].id) >= 0);
	/* full */
	for (int i = 3; i < FD_KEYRING_MAX + 1; i++)
		fd_keyring_install(&kr, &k[i], NULL);
	CHECK_EQ(kr.n, FD_KEYRING_MAX);
	CHECK_EQ(fd_keyring_install(&kr, &k[0], &err), -1);
	CHECK(strstr(err.msg, "full") != NULL);
	CHECK_EQ(kr.keys[kr.primary].id, k[2].id);
	fd_keyring_clear(&kr);
	CHECK_EQ(kr.n, 0);
	CHECK_EQ(kr.keys[0].bytes[0] | kr.keys[0].bytes[31], 0);
}

/* ---- Sealed datagrams ---- */

TEST(seal_round_trip)
{
	struct fd_replay *rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, 1 << 16);
	static uint8_t in[1400], sealed[1400 + FD_SEAL_OVERHEAD], out[1400];
	struct fd_err err;

	printf("  seed %" PRIu64 "\n", unit_seed());
	REQUIRE(rc != NULL);
	for (int i = 0; i < 2000; i++) {
		struct fd_keyring kr;
		struct fd_key k;
		size_t len = unit_rand_below(sizeof(in) + 1);
		int64_t now = NOW + i * 500 + (int64_t)unit_rand_below(400);
		ssize_t s, o;

		rand_key(&k);
		ring_of(&kr, &k);
		rand_bytes(in, len);
		s = fd_auth_seal(&kr, "udp", "fd", now, in, len, sealed,
				 sizeof(sealed));
		REQUIRE(s == (ssize_t)(len + FD_SEAL_OVERHEAD));
		CHECK(fd_auth_is_sealed(sealed, (size_t)s));
		o = fd_auth_open(&kr, rc, "udp", "fd", now + 5, sealed,
				 (size_t)s, out, sizeof(out), &err);
		if (o != (ssize_t)len) {
			unit_fail(__FILE__, __LINE__, "open: %s", err.msg);
			break;
		}
		CHECK(memcmp(in, out, len) == 0);
	}
	fd_replay_free(rc);
	{
		struct fd_keyring empty = {0};
		struct fd_key k;

		CHECK_EQ(fd_auth_seal(&empty, "udp", "fd", NOW, in, 1, sealed,
				      sizeof(sealed)),
			 -1);
		rand_key(&k);
		ring_of(&empty, &k);
		/* no room */
		CHECK_EQ(fd_auth_seal(&empty, "udp", "fd", NOW, in, 10, sealed,
				      10 + FD_SEAL_OVERHEAD - 1),
			 -1);
	}
}

TEST(seal_tamper_every_bit)
{
	struct fd_keyring kr;
	struct fd_key k;
	uint8_t in[100], sealed[100 + FD_SEAL_OVERHEAD], out[100];
	struct fd_err err;
	ssize_t s;

	rand_key(&k);
	ring_of(&kr, &k);
	rand_bytes(in, sizeof(in));
	s = fd_auth_seal(&kr, "udp", "fd", NOW, in, sizeof(in), sealed,
			 sizeof(sealed));
	REQUIRE(s == (ssize_t)sizeof(sealed));
	for (size_t bit = 0; bit < 8 * sizeof(sealed); bit++) {
		int want;

		sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		errno = 0;
		if (fd_auth_open(&kr, NULL, "udp", "fd", NOW, sealed,
				 sizeof(sealed), out, sizeof(out), &err) >= 0) {
			unit_fail(__FILE__, __LINE__, "bit %zu flipped: opened", bit);
			break;
		}
		want = bit < 8 ? ENOMSG : bit < 40 ? ENOKEY : EBADMSG;
		if (errno != want) {
			unit_fail(__FILE__, __LINE__, "bit %zu: errno %d (%s)",
				  bit, errno, err.msg);
			break;
		}
		sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* truncated or extended */
	CHECK(fd_auth_open(&kr, NULL, "udp", "fd", NOW, sealed,
			   sizeof(sealed) - 1, out, sizeof(out), &err) < 0);
	CHECK(fd_auth_open(&kr, NULL, "udp", "fd", NOW, sealed,
			   FD_SEAL_OVERHEAD - 1, out, sizeof(out), &err) < 0);
	CHECK_STR(err.msg, "not sealed");
	/* intact: opens */
	CHECK_EQ(fd_auth_open(&kr, NULL, "udp", "fd", NOW, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 (ssize_t)sizeof(in));
}

TEST(seal_wrong_key_context_cluster)
{
	struct fd_keyring kr, other, both;
	struct fd_key k, k2;
	uint8_t sealed[10 + FD_SEAL_OVERHEAD], out[10];
	struct fd_err err;
	char id[9], want[64];

	rand_key(&k);
	rand_key(&k2);
	ring_of(&kr, &k);
	ring_of(&other, &k2);
	REQUIRE(fd_auth_seal(&kr, "udp", "fd", NOW, "0123456789", 10, sealed,
			     sizeof(sealed)) > 0);
	CHECK_EQ(fd_auth_open(&other, NULL, "udp", "fd", NOW, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	CHECK_EQ(errno, ENOKEY);
	fd_key_id_hex(k.id, id);
	snprintf(want, sizeof(want), "unknown key %s", id);
	CHECK_STR(err.msg, want);
	CHECK_EQ(fd_auth_open(&kr, NULL, "gossip", "fd", NOW, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	CHECK_EQ(errno, EBADMSG);
	CHECK_STR(err.msg, "authentication failed");
	CHECK_EQ(fd_auth_open(&kr, NULL, "udp", "fd2", NOW, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	CHECK_EQ(errno, EBADMSG);
	/* context and cluster are delimited: "udp"+"fd" is not "udpf"+"d" */
	CHECK_EQ(fd_auth_open(&kr, NULL, "udpf", "d", NOW, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	/* a key sharing the id (forced here) is tried too */
	ring_of(&both, &k2);
	both.keys[0].id = k.id;
	both.keys[1] = k;
	both.n = 2;
	CHECK_EQ(fd_auth_open(&both, NULL, "udp", "fd", NOW, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 10);
	CHECK(memcmp(out, "0123456789", 10) == 0);
}

TEST(seal_stale_and_replayed)
{
	struct fd_replay *rc = fd_replay_new(1000, 1024);
	struct fd_keyring kr;
	struct fd_key k;
	uint8_t sealed[4 + FD_SEAL_OVERHEAD], out[4];
	struct fd_err err;

	REQUIRE(rc != NULL);
	rand_key(&k);
	ring_of(&kr, &k);
	REQUIRE(fd_auth_seal(&kr, "udp", "fd", NOW, "ping", 4, sealed,
			     sizeof(sealed)) > 0);
	/* outside the window, either way */
	CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW + 1001, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	CHECK_EQ(errno, ETIME);
	CHECK_STR(err.msg, "stale (skew 1001 ms)");
	CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW - 1001, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	CHECK_STR(err.msg, "stale (skew -1001 ms)");
	/* at the edge: opens once, then is a replay */
	CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW + 1000, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 4);
	CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW + 1000, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	CHECK_EQ(errno, EALREADY);
	CHECK_STR(err.msg, "replayed");
	/* later still: stale, not accepted again */
	CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW + 5000, sealed,
			      sizeof(sealed), out, sizeof(out), &err),
		 -1);
	/* and once the cache has let it go (a newer datagram pushed it out),
	 * a clock stepped back does not make it new again */
	{
		uint8_t later[4 + FD_SEAL_OVERHEAD];

		REQUIRE(fd_auth_seal(&kr, "udp", "fd", NOW + 5000, "pong", 4,
				     later, sizeof(later)) > 0);
		CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW + 5000, later,
				      sizeof(later), out, sizeof(out), &err),
			 4);
		CHECK_EQ(fd_replay_size(rc), 1);
	}
	CHECK_EQ(fd_auth_open(&kr, rc, "udp", "fd", NOW, sealed, sizeof(sealed),
			      out, sizeof(out), &err),
		 -1);
	CHECK_EQ(errno, EALREADY);
	fd_replay_free(rc);
}

/* ---- Replay cache ---- */

TEST(replay_cache_never_accepts_twice)
{
	/* A small cache under a flood: whatever it evicts, a nonce that was
	 * accepted is never accepted again, and with room everything fresh
	 * is. Driven through fd_auth_open with sealed datagrams. */
	struct fd_keyring kr;
	struct fd_key k;
	enum { N = 3000, MAXE = 64 };
	static uint8_t sealed[N][FD_SEAL_OVERHEAD];
	static int64_t when[N];
	static char accepted[N];
	struct fd_replay *small = fd_replay_new(60000, MAXE),
			 *big = fd_replay_new(60000, 1 << 20);
	uint8_t out[1];
	size_t fresh_ok = 0;

	printf("  seed %" PRIu64 "\n", unit_seed());
	REQUIRE(small && big);
	rand_key(&k);
	ring_of(&kr, &k);
	for (int i = 0; i < N; i++) {
		when[i] = NOW + i * 10 + (int64_t)unit_rand_below(30000);
		REQUIRE(fd_auth_seal(&kr, "udp", "fd", when[i], "", 0,
				     sealed[i], sizeof(sealed[i])) > 0);
	}
	for (int step = 0; step < 4 * N; step++) {
		int i = (int)unit_rand_below(N);
		int64_t now = NOW + step * 5;
		ssize_t s = fd_auth_open(&kr, small, "udp", "fd", now, sealed[i],
					 sizeof(sealed[i]), out, 0, NULL);

		if (s == 0 && accepted[i]) {
			unit_fail(__FILE__, __LINE__,
				  "datagram %d accepted twice", i);
			break;
		}
		if (s == 0)
			accepted[i] = 1;
		CHECK(fd_replay_size(small) <= MAXE);
	}
	/* with room: each fresh one once, each repeat refused */
	for (int i = 0; i < N; i++) {
		int64_t now = when[i];

		if (fd_auth_open(&kr, big, "udp", "fd", now, sealed[i],
				 sizeof(sealed[i]), out, 0, NULL) == 0)
			fresh_ok++;
		CHECK(fd_auth_open(&kr, big, "udp", "fd", now, sealed[i],
				   sizeof(sealed[i]), out, 0, NULL) < 0);
	}
	CHECK_EQ(fresh_ok, N);
	fd_replay_free(small);
	fd_replay_free(big);
}

/* ---- Signed requests ---- */

static int verify(const struct fd_keyring *kr, struct fd_replay *rc,
		  const char *method, const char *path, const char *cluster,
		  int64_t now, const char *body, int stream, const char *hdr,
		  struct fd_err *err)
{
	return fd_auth_verify(kr, rc, method, path, cluster, now, body,
			      body ? strlen(body) : 0, stream, hdr, err);
}

TEST(sign_verify_round_trip)
{
	struct fd_replay *rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, 1 << 16);
	char hdr[FD_AUTH_HEADER_MAX], body[512];
	struct fd_err err;

	printf("  seed %" PRIu64 "\n", unit_seed());
	REQUIRE(rc != NULL);
	for (int i = 0; i < 500; i++) {
		struct fd_keyring kr;
		struct fd_key k;
		size_t len = unit_rand_below(sizeof(body));
		int stream = unit_rand_below(4) == 0;
		int64_t now = NOW + i * 500 + (int64_t)unit_rand_below(400);

		rand_key(&k);
		ring_of(&kr, &k);
		rand_bytes((uint8_t *)body, len);
		REQUIRE(fd_auth_sign(&kr, "POST", "/v1/cluster/pubsub?from=a&id=b",
				     "fd", now, stream ? NULL : body,
				     stream ? 0 : len, stream, hdr) == 0);
		CHECK(strlen(hdr) < FD_AUTH_HEADER_MAX);
		if (fd_auth_verify(&kr, rc, "POST", "/v1/cluster/pubsub?from=a&id=b",
				   "fd", now + 10, stream ? NULL : body,
				   stream ? 0 : len, stream, hdr, &err) < 0) {
			unit_fail(__FILE__, __LINE__, "verify: %s (%s)",
				  err.msg, hdr);
			break;
		}
	}
	fd_replay_free(rc);
}

TEST(sign_tamper)
{
	struct fd_replay *rc = fd_replay_new(FD_AUTH_WINDOW_MS_DEFAULT, 4096);
	struct fd_keyring kr, other;
	struct fd_key k, k2;
	char hdr[FD_AUTH_HEADER_MAX], body[] = "{\"op\":\"install\"}";
	struct fd_err err;
	size_t hl;

	REQUIRE(rc != NULL);
	rand_key(&k);
	rand_key(&k2);
	ring_of(&kr, &k);
	ring_of(&other, &k2);
	REQUIRE(fd_auth_sign(&kr, "POST", "/v1/cluster/keys", "fd", NOW, body,
			     strlen(body), 0, hdr) == 0);
	hl = strlen(hdr);
	/* every bit of the header (rc NULL: the same header again and again) */
	for (size_t bit = 0; bit < 8 * hl; bit++) {
		hdr[bit / 8] ^= (char)(1u << (bit % 8));
		if (verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd", NOW,
			   body, 0, hdr, &err) == 0) {
			unit_fail(__FILE__, __LINE__,
				  "header bit %zu: accepted", bit);
			break;
		}
		hdr[bit / 8] ^= (char)(1u << (bit % 8));
	}
	/* every bit of the body */
	for (size_t bit = 0; bit < 8 * strlen(body); bit++) {
		body[bit / 8] ^= (char)(1u << (bit % 8));
		if (fd_auth_verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd", NOW,
				   body, sizeof(body) - 1, 0, hdr, &err) == 0) {
			unit_fail(__FILE__, __LINE__, "body bit %zu: accepted", bit);
			break;
		}
		CHECK_EQ(errno, EBADMSG);
		body[bit / 8] ^= (char)(1u << (bit % 8));
	}
	/* method, path, cluster, stream flag, key */
	CHECK_EQ(verify(&kr, NULL, "PUT", "/v1/cluster/keys", "fd", NOW, body,
			0, hdr, &err),
		 -1);
	CHECK_STR(err.msg, "bad signature");
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keyz", "fd", NOW, body,
			0, hdr, &err),
		 -1);
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys?x=1", "fd", NOW,
			body, 0, hdr, &err),
		 -1);
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd2", NOW, body,
			0, hdr, &err),
		 -1);
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd", NOW, NULL,
			1, hdr, &err),
		 -1);
	CHECK_STR(err.msg, "a streamed body must be signed as a stream");
	CHECK_EQ(verify(&other, NULL, "POST", "/v1/cluster/keys", "fd", NOW,
			body, 0, hdr, &err),
		 -1);
	CHECK_EQ(errno, ENOKEY);
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd", NOW, body,
			0, NULL, &err),
		 -1);
	CHECK_EQ(errno, ENOMSG);
	CHECK_STR(err.msg, "no X-FD-Auth header");
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd", NOW, body,
			0, "v2 kid=00000000", &err),
		 -1);
	CHECK_STR(err.msg, "malformed X-FD-Auth header");
	/* a node of the release before: told, not just refused */
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd", NOW, body,
			0, "v1 kid=00000000 ts=1", &err),
		 -1);
	CHECK_EQ(errno, ENOMSG);
	CHECK_STR(err.msg, "request signed in version 1, this node speaks v2 "
			   "(upgrade every node to one release)");
	/* a body cut short or grown is named before the mac */
	CHECK_EQ(fd_auth_verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd",
				NOW, body, sizeof(body) - 2, 0, hdr, &err),
		 -1);
	CHECK_EQ(errno, EBADMSG);
	CHECK_STR(err.msg, "the body has 15 bytes, the signature covers 16");
	/* a trailing byte */
	{
		char longer[FD_AUTH_HEADER_MAX + 2];

		snprintf(longer, sizeof(longer), "%s ", hdr);
		CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/keys", "fd",
				NOW, body, 0, longer, &err),
			 -1);
	}
	/* stale, then the real one once, then replayed */
	CHECK_EQ(verify(&kr, rc, "POST", "/v1/cluster/keys", "fd",
			NOW + FD_AUTH_WINDOW_MS_DEFAULT + 1, body, 0, hdr, &err),
		 -1);
	CHECK_EQ(errno, ETIME);
	CHECK_EQ(verify(&kr, rc, "POST", "/v1/cluster/keys", "fd", NOW, body, 0,
			hdr, &err),
		 0);
	CHECK_EQ(verify(&kr, rc, "POST", "/v1/cluster/keys", "fd", NOW + 1,
			body, 0, hdr, &err),
		 -1);
	CHECK_EQ(errno, EALREADY);
	/* a streamed body must be verified as one */
	REQUIRE(fd_auth_sign(&kr, "POST", "/v1/cluster/pubsub", "fd", NOW, NULL,
			     0, 1, hdr) == 0);
	CHECK(strstr(hdr, " body=stream ") != NULL);
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/pubsub", "fd", NOW, "",
			0, hdr, &err),
		 -1);
	CHECK_STR(err.msg, "the body is not signed");
	CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/pubsub", "fd", NOW,
			NULL, 1, hdr, &err),
		 0);
	{
		uint32_t kid;

		CHECK_EQ(fd_auth_header_kid(hdr, &kid), 0);
		CHECK_EQ(kid, k.id);
		CHECK_EQ(fd_auth_header_kid("v2 kid=12345678", &kid), 0);
		CHECK_EQ(kid, 0x12345678u);
		CHECK_EQ(fd_auth_header_kid("v1 kid=12345678", &kid), -1);
		CHECK_EQ(fd_auth_header_kid("v2 kid=1234567", &kid), -1);
	}
	fd_replay_free(rc);
}

TEST(sign_rotation)
{
	/* a request signed with the old key verifies while it is accepted,
	 * not once it is removed */
	struct fd_keyring a, ab;
	struct fd_key k1, k2;
	char hdr[FD_AUTH_HEADER_MAX];
	struct fd_err err;

	rand_key(&k1);
	rand_key(&k2);
	ring_of(&a, &k1);
	ring_of(&ab, &k1);
	CHECK_EQ(fd_keyring_install(&ab, &k2, NULL), 0);
	CHECK_EQ(fd_keyring_use(&ab, k2.id, NULL), 0);
	REQUIRE(fd_auth_sign(&a, "GET", "/v1/cluster/keys", "fd", NOW, "", 0, 0,
			     hdr) == 0);
	CHECK_EQ(verify(&ab, NULL, "GET", "/v1/cluster/keys", "fd", NOW, "", 0,
			hdr, &err),
		 0);
	CHECK_EQ(fd_keyring_remove(&ab, k1.id, NULL), 0);
	CHECK_EQ(verify(&ab, NULL, "GET", "/v1/cluster/keys", "fd", NOW, "", 0,
			hdr, &err),
		 -1);
	CHECK_EQ(errno, ENOKEY);
}

/* ---- Signed responses ---- */

TEST(response_sign_verify)
{
	struct fd_keyring kr, other;
	struct fd_key k, k2;
	char req[FD_AUTH_HEADER_MAX], req2[FD_AUTH_HEADER_MAX],
		resp[FD_AUTH_HEADER_MAX], body[] = "state bytes";
	struct fd_err err;

	rand_key(&k);
	rand_key(&k2);
	ring_of(&kr, &k);
	ring_of(&other, &k2);
	REQUIRE(fd_auth_sign(&kr, "POST", "/v1/cluster/pushpull", "fd", NOW,
			     "x", 1, 0, req) == 0);
	REQUIRE(fd_auth_sign(&kr, "POST", "/v1/cluster/pushpull", "fd", NOW,
			     "x", 1, 0, req2) == 0);
	REQUIRE(fd_auth_sign_response(&kr, "fd", req, 200, body, strlen(body),
				      resp) == 0);
	CHECK_EQ(fd_auth_verify_response(&kr, "fd", req, 200, body,
					 strlen(body), resp, &err),
		 0);
	/* another status, request, cluster, key; no header */
	CHECK_EQ(fd_auth_verify_response(&kr, "fd", req, 201, body,
					 strlen(body), resp, &err),
		 -1);
	CHECK_EQ(fd_auth_verify_response(&kr, "fd", req2, 200, body,
					 strlen(body), resp, &err),
		 -1);
	CHECK_EQ(fd_auth_verify_response(&kr, "fd2", req, 200, body,
					 strlen(body), resp, &err),
		 -1);
	CHECK_EQ(fd_auth_verify_response(&other, "fd", req, 200, body,
					 strlen(body), resp, &err),
		 -1);
	CHECK_EQ(errno, ENOKEY);
	CHECK_EQ(fd_auth_verify_response(&kr, "fd", req, 200, body,
					 strlen(body), NULL, &err),
		 -1);
	CHECK_EQ(errno, ENOMSG);
	/* every bit of the body and of the header */
	for (size_t bit = 0; bit < 8 * strlen(body); bit++) {
		body[bit / 8] ^= (char)(1u << (bit % 8));
		if (fd_auth_verify_response(&kr, "fd", req, 200, body,
					    sizeof(body) - 1, resp, &err) == 0) {
			unit_fail(__FILE__, __LINE__, "body bit %zu", bit);
			break;
		}
		body[bit / 8] ^= (char)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < 8 * strlen(resp); bit++) {
		resp[bit / 8] ^= (char)(1u << (bit % 8));
		if (fd_auth_verify_response(&kr, "fd", req, 200, body,
					    strlen(body), resp, &err) == 0) {
			unit_fail(__FILE__, __LINE__, "header bit %zu", bit);
			break;
		}
		resp[bit / 8] ^= (char)(1u << (bit % 8));
	}
	CHECK_EQ(fd_auth_sign_response(&kr, "fd", "junk", 200, body, 1, resp), -1);
}

/* The signed lines as fd(7) writes them, put together here by hand and
 * macced with the RFC 4231-checked primitive: the header a node accepts
 * and the answer it gives are pinned, not only self-consistent. Numbers
 * are spelt one way only: a leading zero or an uppercase digit is
 * malformed, not another spelling of the same signature. */
TEST(sign_format_pinned)
{
	static const struct {
		const char *ts, *nonce, *body, *error;
	} spelt[] = {
		{"0", NULL, "5", "malformed X-FD-Auth header"},
		{"", NULL, "05", "malformed X-FD-Auth header"},
		{"", "00112233445566778899AABBCCDDEEFF", "5",
		 "malformed X-FD-Auth header"},
		{"1", NULL, "5", "bad signature"},
		{"100", NULL, "5", "malformed X-FD-Auth header"},
	};
	const char *nonce = "00112233445566778899aabbccddeeff";
	char lines[256], hdr[FD_AUTH_HEADER_MAX], bad[FD_AUTH_HEADER_MAX + 8],
		want[FD_AUTH_HEADER_MAX], got[FD_AUTH_HEADER_MAX], mh[65];
	struct fd_keyring kr;
	struct fd_key k;
	struct fd_err err;
	uint8_t mac[32];
	int n;

	rand_key(&k);
	ring_of(&kr, &k);
	n = snprintf(lines, sizeof(lines),
		     "fd-http-v2\nPOST\n/v1/cluster/registry?x=1\nfd\n%lld\n%s\n5\nhello",
		     NOW, nonce);
	REQUIRE(fd_auth_hmac_raw(k.sign, sizeof(k.sign), lines, (size_t)n, mac) == 0);
	for (int i = 0; i < 32; i++)
		snprintf(mh + 2 * i, 3, "%02x", mac[i]);
	snprintf(hdr, sizeof(hdr), "v2 kid=%08x ts=%lld nonce=%s body=5 mac=%s",
		 k.id, NOW, nonce, mh);
	CHECK_EQ(fd_auth_verify(&kr, NULL, "POST", "/v1/cluster/registry?x=1",
				"fd", NOW, "hello", 5, 0, hdr, &err),
		 0);
	n = snprintf(lines, sizeof(lines),
		     "fd-http-resp-v2\nfd\n%s\n200\n3\n{}\n", nonce);
	REQUIRE(fd_auth_hmac_raw(k.sign, sizeof(k.sign), lines, (size_t)n, mac) == 0);
	for (int i = 0; i < 32; i++)
		snprintf(mh + 2 * i, 3, "%02x", mac[i]);
	snprintf(want, sizeof(want), "v2 kid=%08x mac=%s", k.id, mh);
	REQUIRE(fd_auth_sign_response(&kr, "fd", hdr, 200, "{}\n", 3, got) == 0);
	CHECK_STR(got, want);
	/* one spelling: a leading zero, an uppercase digit, a number too long
	 * are malformed; 14 digits are still a number (another time) */
	for (size_t i = 0; i < sizeof(spelt) / sizeof(spelt[0]); i++) {
		snprintf(bad, sizeof(bad),
			 "v2 kid=%08x ts=%s%lld nonce=%s body=%s mac=%s", k.id,
			 spelt[i].ts, NOW, spelt[i].nonce ? spelt[i].nonce : nonce,
			 spelt[i].body, mh);
		CHECK_EQ(verify(&kr, NULL, "POST", "/v1/cluster/registry?x=1",
				"fd", NOW, "hello", 0, bad, &err),
			 -1);
		CHECK_STR(err.msg, spelt[i].error);
	}
}

TEST(memcmp_const_time_api)
{
	CHECK_EQ(fd_auth_memcmp("abc", "abc", 3), 0);
	CHECK(fd_auth_memcmp("abc", "abd", 3) != 0);
	CHECK_EQ(fd_auth_memcmp("", "", 0), 0);
}

TEST(nonces_differ_across_fork)
{
	/* the nonce pool is per process: a child must not repeat the
	 * parent's next nonces (GCM with a repeated nonce leaks) */
	struct fd_keyring kr;
	struct fd_key k;
	uint8_t a[FD_SEAL_OVERHEAD], b[FD_SEAL_OVERHEAD];
	int p[2], status;
	pid_t pid;

	rand_key(&k);
	ring_of(&kr, &k);
	REQUIRE(fd_auth_seal(&kr, "udp", "fd", NOW, "", 0, a, sizeof(a)) > 0);
	REQUIRE(pipe(p) == 0);
	fflush(stdout);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		ssize_t n = fd_auth_seal(&kr, "udp", "fd", NOW, "", 0, b, sizeof(b));

		_exit(n > 0 && write(p[1], b, sizeof(b)) == (ssize_t)sizeof(b) ? 0 : 1);
	}
	close(p[1]);
	REQUIRE(fd_auth_seal(&kr, "udp", "fd", NOW, "", 0, a, sizeof(a)) > 0);
	REQUIRE(read(p[0], b, sizeof(b)) == (ssize_t)sizeof(b));
	close(p[0]);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(memcmp(a + 5, b + 5, 12) != 0);
}
