/* The key ring, sealed datagrams and signed requests (see auth.h), on
 * OpenSSL 3: EVP, and its SHA-256 functions for the macs (see hmac_v).
 * Every comparison of secret-dependent bytes (tags, macs)
 * goes through CRYPTO_memcmp; key material on the stack is cleansed. */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: see hmac_v */
#include "auth.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_VERSION 1
#define NONCE_LEN 12  /* GCM iv of a sealed datagram */
#define TAG_LEN 16    /* GCM tag */
#define TS_LEN 8      /* sealed time stamp */
#define RNONCE_LEN 16 /* request nonce */
#define HDR_LEN (1 + 4 + NONCE_LEN)
#define MAC_LEN 32
#define LINE_MAX_LEN 256 /* longest key file line we look at */

/* Fills err, sets errno to e; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(struct fd_err *err, int e,
						      const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	errno = e;
	return -1;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Each digit's value with bit 4 set; 0 for anything else (lowercase
 * only: one spelling per value). A table, not comparisons: a node parses
 * several hundred hex digits per request, and branches on random digits
 * mispredict half the time. */
static const uint8_t hexval[256] = {
	['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13,
	['4'] = 0x14, ['5'] = 0x15, ['6'] = 0x16, ['7'] = 0x17,
	['8'] = 0x18, ['9'] = 0x19, ['a'] = 0x1a, ['b'] = 0x1b,
	['c'] = 0x1c, ['d'] = 0x1d, ['e'] = 0x1e, ['f'] = 0x1f};

/* Parses exactly 2n lowercase hex digits at s into b. 0 or -1. */
static int unhex(const char *s, uint8_t *b, size_t n)
{
	unsigned ok = 0x10;

	for (size_t i = 0; i < n; i++) {
		unsigned hi = hexval[(unsigned char)s[2 * i]];
		unsigned lo = hexval[(unsigned char)s[2 * i + 1]];

		ok &= hi & lo;
		b[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
	}
	return ok ? 0 : -1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Raw primitives */

/* SHA-256 and AES-256-GCM fetched once: OpenSSL 3 looks EVP_sha256() and
 * friends up again at every use, which costs more than hashing a small
 * request (measured: 1.6 against 0.6 us for 200 bytes). */
static EVP_MD *md_sha256;
static EVP_CIPHER *cipher_gcm;
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

static void fetch(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_MD *sha256_md(void)
{
	pthread_once(&fetched, fetch);
	return md_sha256 ? md_sha256 : EVP_sha256();
}

static const EVP_CIPHER *gcm_cipher(void)
{
	pthread_once(&fetched, fetch);
	return cipher_gcm ? cipher_gcm : EVP_aes_256_gcm();
}

static void tls_keep(void);

/* SHA-256 where speed does not matter (key ids, keys longer than a block) */
static int sha256(const void *data, size_t len, uint8_t out[32])
{
	return EVP_Digest(data, len, out, NULL, sha256_md(), NULL) == 1 ? 0 : -1;
}

/* Nonces: random bytes drawn from OpenSSL's generator a kilobyte at a
 * time (one RAND_bytes call costs 1.5 us, as much as the rest of a
 * signature). Per thread; a forked child starts with an empty pool, so two
 * processes never hand out the same bytes. */
static __thread struct {
	uint8_t buf[1024];
	size_t pos;
} pool = {.pos = sizeof(pool.buf)};
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
	OPENSSL_cleanse(pool.buf, sizeof(pool.buf));
	pool.pos = sizeof(pool.buf);
}

static void pool_atfork(void)
{
	pthread_atfork(NULL, NULL, pool_forget);
}

static int nonce_bytes(uint8_t *out, size_t n)
{
	pthread_once(&atfork_once, pool_atfork);
	if (n > sizeof(pool.buf))
		return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
	if (pool.pos + n > sizeof(pool.buf)) {
		if (RAND_bytes(pool.buf, sizeof(pool.buf)) != 1)
			return -1;
		pool.pos = 0;
	}
	memcpy(out, pool.buf + pool.pos, n);
	OPENSSL_cleanse(pool.buf + pool.pos, n); /* each byte used once */
	pool.pos += n;
	return 0;
}

/* HMAC-SHA256 (RFC 2104) on OpenSSL's SHA-256 functions (SHA256_Init and
 * the rest, deprecated since OpenSSL 3.0 but kept through 3.x), with the
 * states after the padded key blocks computed once per key and kept (per
 * thread, a few keys): a mac is then two struct copies and the message.
 * Not EVP, on purpose: in a node every exchange finds the caches cold, and
 * there the provider layers cost more than the hashing (measured, 300
 * bytes, caches flushed: 4.0 us a mac through EVP with kept states, 3.6
 * through EVP without, 1.4 here; warm: 0.5 and 0.4). The hashing itself is
 * the same code (SHA-NI where the CPU has it). */
#define PADS_MAX 8
static __thread struct pads {
	uint8_t key[64]; /* the key as given, padded with zeros */
	size_t keylen;
	int set;
	SHA256_CTX in, out; /* after key ^ ipad, key ^ opad */
} pads[PADS_MAX];
static __thread unsigned pads_next;

static void pads_drop(struct pads *p)
{
	OPENSSL_cleanse(p, sizeof(*p));
}

/* The kept states of this key, or NULL. */
static struct pads *pads_find(const void *key, size_t keylen)
{
	for (int i = 0; i < PADS_MAX; i++)
		if (pads[i].set && pads[i].keylen == keylen &&
		    CRYPTO_memcmp(pads[i].key, key, keylen) == 0)
			return &pads[i];
	return NULL;
}

static struct pads *pads_for(const void *key, size_t keylen)
{
	uint8_t pad[64];
	struct pads *p;

	if (keylen > sizeof(pad)) /* hmac_v hashes a longer key first */
		return NULL;
	if ((p = pads_find(key, keylen)))
		return p;
	p = &pads[pads_next++ % PADS_MAX];
	pads_drop(p);
	tls_keep();
	memcpy(p->key, key, keylen);
	for (int i = 0; i < 64; i++)
		pad[i] = p->key[i] ^ 0x36;
	SHA256_Init(&p->in);
	SHA256_Update(&p->in, pad, 64);
	for (int i = 0; i < 64; i++)
		pad[i] = p->key[i] ^ 0x5c;
	SHA256_Init(&p->out);
	SHA256_Update(&p->out, pad, 64);
	OPENSSL_cleanse(pad, sizeof(pad));
	p->keylen = keylen;
	p->set = 1;
	return p;
}

/* A thread's kept key states are wiped when it ends (a pthread key's
 * destructor). */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *unused)
{
	(void)unused;
	for (int i = 0; i < PADS_MAX; i++)
		pads_drop(&pads[i]);
}

static void tls_make_key(void)
{
	(void)pthread_key_create(&tls_key, tls_free);
}

static void tls_keep(void)
{
	pthread_once(&tls_once, tls_make_key);
	(void)pthread_setspecific(tls_key, &tls_key);
}

/* Forgets the kept states of a key (a key removed from the ring). */
static void pads_forget(const void *key, size_t keylen)
{
	struct pads *p = pads_find(key, keylen);

	if (p) /* a key is kept once */
		pads_drop(p);
}

/* HMAC-SHA256 of n pieces, no copy of them. A key longer than a block is
 * hashed first, as RFC 2104 says. */
static int hmac_v(const void *key, size_t keylen, const void *const *piece,
		  const size_t *len, size_t n, uint8_t out[32])
{
	uint8_t hk[32], inner[32];
	struct pads *p;
	SHA256_CTX c;

	if (keylen > 64) {
		if (sha256(key, keylen, hk) < 0)
			return -1;
		key = hk;
		keylen = sizeof(hk);
	}
	p = pads_for(key, keylen);
	OPENSSL_cleanse(hk, sizeof(hk));
	if (!p)
		return -1;
	c = p->in;
	for (size_t i = 0; i < n; i++)
		SHA256_Update(&c, piece[i], len[i]);
	SHA256_Final(inner, &c);
	c = p->out;
	SHA256_Update(&c, inner, 32);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(inner, sizeof(inner));
	OPENSSL_cleanse(&c, sizeof(c));
	return 0;
}

int fd_auth_hmac_raw(const void *key, size_t keylen, const void *data,
		     size_t len, uint8_t out[32])
{
	return hmac_v(key, keylen, &data, &len, 1, out);
}

/* AES-256-GCM over two pieces of input (a time stamp and a payload): one
 * pass, no copy. */
static int gcm2(int encrypt, const uint8_t key[32], const uint8_t iv[12],
		const void *aad, size_t aadlen, const void *in1, size_t len1,
		void *out1, const void *in2, size_t len2, void *out2,
		uint8_t tag[16])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int ok, l = 0;

	if (!ctx || aadlen > INT_MAX || len1 > INT_MAX || len2 > INT_MAX) {
		EVP_CIPHER_CTX_free(ctx);
		return -1;
	}
	ok = EVP_CipherInit_ex2(ctx, gcm_cipher(), key, iv, encrypt, NULL) == 1;
	if (ok && aadlen)
		ok = EVP_CipherUpdate(ctx, NULL, &l, aad, (int)aadlen) == 1;
	if (ok && len1)
		ok = EVP_CipherUpdate(ctx, out1, &l, in1, (int)len1) == 1;
	if (ok && len2)
		ok = EVP_CipherUpdate(ctx, out2, &l, in2, (int)len2) == 1;
	if (ok && !encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, NULL, &l) == 1;
	if (ok && encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int fd_auth_gcm_raw(int encrypt, const uint8_t key[32], const uint8_t iv[12],
		    const void *aad, size_t aadlen, const void *in, size_t len,
		    void *out, uint8_t tag[16])
{
	return gcm2(encrypt ? 1 : 0, key, iv, aad, aadlen, in, len, out, NULL,
		    0, NULL, tag);
}

int fd_auth_memcmp(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) != 0;
}

/* Keys */

static uint32_t key_id(const uint8_t bytes[FD_KEY_LEN])
{
	uint8_t buf[9 + FD_KEY_LEN], h[32];
	uint32_t id;

	memcpy(buf, "fd-key-id", 9);
	memcpy(buf + 9, bytes, FD_KEY_LEN);
	if (sha256(buf, sizeof(buf), h) < 0)
		abort(); /* SHA-256 does not fail short of a broken OpenSSL */
	OPENSSL_cleanse(buf, sizeof(buf));
	id = get_be32(h);
	OPENSSL_cleanse(h, sizeof(h));
	return id;
}

/* Fills k's id and its per-use keys from its bytes. */
static void key_derive(struct fd_key *k)
{
	k->id = key_id(k->bytes);
	if (fd_auth_hmac_raw(k->bytes, FD_KEY_LEN, "fd-seal-v1", 10, k->seal) < 0 ||
	    fd_auth_hmac_raw(k->bytes, FD_KEY_LEN, "fd-sign-v1", 10, k->sign) < 0)
		abort(); /* SHA-256 does not fail short of a broken OpenSSL */
}

int fd_key_generate(struct fd_key *k, struct fd_err *err)
{
	if (RAND_bytes(k->bytes, FD_KEY_LEN) != 1)
		return fail(err, EIO, "the random generator failed");
	key_derive(k);
	return 0;
}

void fd_key_format(const struct fd_key *k, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, k->bytes, FD_KEY_LEN);
	out[FD_KEY_B64_LEN] = '\0';
}

void fd_key_id_hex(uint32_t id, char *out)
{
	snprintf(out, 9, "%08x", id);
}

int fd_key_id_parse(const char *text, uint32_t *id)
{
	uint8_t b[4];

	if (!text || strlen(text) != 8 || unhex(text, b, 4) < 0)
		return -1;
	*id = get_be32(b);
	return 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* A key from exactly len bytes (no white space). 0 or -1. */
static int key_from(const char *s, size_t len, struct fd_key *k)
{
	unsigned char dec[FD_KEY_LEN + 4];
	char enc[FD_KEY_B64_LEN + 1];
	int ok;

	if (len != FD_KEY_B64_LEN)
		return -1;
	if (EVP_DecodeBlock(dec, (const unsigned char *)s, FD_KEY_B64_LEN) !=
	    FD_KEY_LEN + 1)
		return -1;
	/* The decoder is lenient (padding, stray bits): accept only the text
	 * the encoder writes, so a key has one spelling. */
	EVP_EncodeBlock((unsigned char *)enc, dec, FD_KEY_LEN);
	ok = memcmp(enc, s, FD_KEY_B64_LEN) == 0;
	if (ok) {
		memcpy(k->bytes, dec, FD_KEY_LEN);
		key_derive(k);
	}
	OPENSSL_cleanse(dec, sizeof(dec));
	OPENSSL_cleanse(enc, sizeof(enc));
	return ok ? 0 : -1;
}

int fd_key_parse(const char *text, struct fd_key *k, struct fd_err *err)
{
	const char *s = text, *e;

	if (!text)
		return fail(err, EINVAL, "no key");
	while (is_space(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_space(e[-1]))
		e--;
	if (key_from(s, (size_t)(e - s), k) < 0)
		return fail(err, EINVAL,
			    "not a key (expected %d base64 characters, as "
			    "fd-node keygen writes)",
			    FD_KEY_B64_LEN);
	return 0;
}

/* Key ring */

int fd_keyring_find(const struct fd_keyring *kr, uint32_t id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->keys[i].id == id)
			return (int)i;
	return -1;
}

static int find_bytes(const struct fd_keyring *kr, const struct fd_key *k)
{
	for (size_t i = 0; i < kr->n; i++)
		if (CRYPTO_memcmp(kr->keys[i].bytes, k->bytes, FD_KEY_LEN) == 0)
			return (int)i;
	return -1;
}

/* The mac states kept for a key's bytes and its sign key. */
static void forget_key(const struct fd_key *k)
{
	pads_forget(k->bytes, sizeof(k->bytes));
	pads_forget(k->sign, sizeof(k->sign));
}

void fd_keyring_clear(struct fd_keyring *kr)
{
	for (size_t i = 0; i < kr->n && i < FD_KEYRING_MAX; i++)
		forget_key(&kr->keys[i]);
	OPENSSL_cleanse(kr, sizeof(*kr));
	kr->n = 0;
	kr->primary = 0;
}

int fd_keyring_parse(const char *text, size_t len, struct fd_keyring *kr,
		     struct fd_err *err)
{
	size_t off = 0;
	int line = 0;
	struct fd_key k;

	memset(kr, 0, sizeof(*kr)); /* an output: what it held is not ours */
	while (off < len) {
		const char *s = text + off, *nl = memchr(s, '\n', len - off);
		size_t l = nl ? (size_t)(nl - s) : len - off;
		const char *b = s, *e = s + l;
		int dup;

		off += l + (nl ? 1 : 0);
		line++;
		if (memchr(s, '\0', l)) {
			fd_keyring_clear(kr);
			return fail(err, EINVAL, "line %d: a NUL byte", line);
		}
		while (b < e && is_space(*b))
			b++;
		while (e > b && is_space(e[-1]))
			e--;
		if (b == e || *b == '#')
			continue;
		if (key_from(b, (size_t)(e - b), &k) < 0) {
			fd_keyring_clear(kr);
			return fail(err, EINVAL,
				    "line %d: not a key (expected %d base64 "
				    "characters, as fd-node keygen writes)",
				    line, FD_KEY_B64_LEN);
		}
		dup = find_bytes(kr, &k);
		if (dup >= 0) {
			OPENSSL_cleanse(&k, sizeof(k));
			fd_keyring_clear(kr);
			return fail(err, EINVAL,
				    "line %d: the same key a second time", line);
		}
		if (kr->n == FD_KEYRING_MAX) {
			OPENSSL_cleanse(&k, sizeof(k));
			fd_keyring_clear(kr);
			return fail(err, EINVAL, "line %d: more than %d keys",
				    line, FD_KEYRING_MAX);
		}
		kr->keys[kr->n++] = k;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	if (kr->n == 0)
		return fail(err, EINVAL, "no key in the file");
	return 0;
}

char *fd_keyring_format(const struct fd_keyring *kr)
{
	static const char head[] =
		"# fd cluster keys: the first seals and signs, the others are "
		"accepted\n";
	size_t cap = sizeof(head) + kr->n * (FD_KEY_B64_LEN + 1) + 1, off;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	memcpy(out, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	for (size_t k = 0; k < kr->n; k++) {
		/* primary first, the others in their order */
		size_t i = k == 0 ? kr->primary : k <= kr->primary ? k - 1 : k;

		fd_key_format(&kr->keys[i], out + off);
		off += FD_KEY_B64_LEN;
		out[off++] = '\n';
	}
	out[off] = '\0';
	return out;
}

int fd_keyring_install(struct fd_keyring *kr, const struct fd_key *k,
		       struct fd_err *err)
{
	if (find_bytes(kr, k) >= 0)
		return 0;
	if (kr->n == FD_KEYRING_MAX)
		return fail(err, ENOSPC, "the key ring is full (%d keys)",
			    FD_KEYRING_MAX);
	kr->keys[kr->n++] = *k;
	return 0;
}

int fd_keyring_use(struct fd_keyring *kr, uint32_t id, struct fd_err *err)
{
	int i = fd_keyring_find(kr, id);

	if (i < 0)
		return fail(err, ENOENT, "no key %08x in the ring", id);
	kr->primary = (size_t)i;
	return 0;
}

int fd_keyring_remove(struct fd_keyring *kr, uint32_t id, struct fd_err *err)
{
	int i = fd_keyring_find(kr, id);

	if (i < 0)
		return fail(err, ENOENT, "no key %08x in the ring", id);
	if ((size_t)i == kr->primary)
		return fail(err, EBUSY,
			    "key %08x is the primary key (use another one first)",
			    id);
	forget_key(&kr->keys[i]);
	memmove(&kr->keys[i], &kr->keys[i + 1],
		(kr->n - (size_t)i - 1) * sizeof(kr->keys[0]));
	kr->n--;
	OPENSSL_cleanse(&kr->keys[kr->n], sizeof(kr->keys[0]));
	if (kr->primary > (size_t)i)
		kr->primary--;
	return 0;
}

/* Replay cache: a FIFO ring of (nonce, time) in arrival order and an
 * open-addressing index over it (linear probing, backward-shift deletion).
 * Entries leave from the front, when their time is out of the window or
 * when the ring is full; either way `floor` remembers the newest time that
 * left, and nothing at or below it is accepted again. */

struct rentry {
	uint8_t nonce[RNONCE_LEN];
	int64_t ts;
};

struct fd_replay {
	int64_t window, floor;
	size_t max, cap, head, n;
	struct rentry *e;
	uint32_t *slot; /* index + 1 into e; 0: empty */
	size_t mask;
};

static size_t rhash(const struct fd_replay *rc, const uint8_t *nonce)
{
	uint64_t h;

	memcpy(&h, nonce, sizeof(h));
	h ^= h >> 29;
	h *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 17) & rc->mask;
}

static int rc_alloc(struct fd_replay *rc, size_t cap)
{
	size_t hcap = 16;
	struct rentry *e;
	uint32_t *slot;

	while (hcap < 2 * cap)
		hcap *= 2;
	e = malloc(cap * sizeof(*e));
	slot = calloc(hcap, sizeof(*slot));
	if (!e || !slot) {
		free(e);
		free(slot);
		return -1;
	}
	/* the ring, linearized */
	for (size_t i = 0; i < rc->n; i++)
		e[i] = rc->e[(rc->head + i) % rc->cap];
	free(rc->e);
	free(rc->slot);
	rc->e = e;
	rc->slot = slot;
	rc->cap = cap;
	rc->head = 0;
	rc->mask = hcap - 1;
	for (size_t i = 0; i < rc->n; i++) {
		size_t h = rhash(rc, e[i].nonce);

		while (slot[h])
			h = (h + 1) & rc->mask;
		slot[h] = (uint32_t)(i + 1);
	}
	return 0;
}

struct fd_replay *fd_replay_new(int64_t window_ms, size_t max_entries)
{
	struct fd_replay *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return NULL;
	rc->window = window_ms > 0 ? window_ms : FD_AUTH_WINDOW_MS_DEFAULT;
	rc->floor = INT64_MIN;
	rc->max = max_entries < 16 ? 16 : max_entries;
	if (rc->max > UINT32_MAX / 4)
		rc->max = UINT32_MAX / 4;
	if (rc_alloc(rc, rc->max < 256 ? rc->max : 256) < 0) {
		free(rc);
		return NULL;
	}
	return rc;
}

void fd_replay_free(struct fd_replay *rc)
{
	if (!rc)
		return;
	free(rc->e);
	free(rc->slot);
	free(rc);
}

size_t fd_replay_size(const struct fd_replay *rc)
{
	return rc->n;
}

static void rc_pop(struct fd_replay *rc)
{
	size_t idx = rc->head, i = rhash(rc, rc->e[idx].nonce), j;

	while (rc->slot[i] != idx + 1)
		i = (i + 1) & rc->mask;
	/* backward-shift deletion keeps every probe chain unbroken */
	j = i;
	for (;;) {
		size_t k;

		j = (j + 1) & rc->mask;
		if (!rc->slot[j])
			break;
		k = rhash(rc, rc->e[rc->slot[j] - 1].nonce);
		/* move j back to i unless its home k lies cyclically in (i, j] */
		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			rc->slot[i] = rc->slot[j];
			i = j;
		}
	}
	rc->slot[i] = 0;
	if (rc->e[idx].ts > rc->floor)
		rc->floor = rc->e[idx].ts;
	rc->head = (rc->head + 1) % rc->cap;
	rc->n--;
}

/* 0 and the nonce recorded, or -1 (seen, or at/below the floor). */
static int rc_check_add(struct fd_replay *rc, const uint8_t *nonce, int64_t ts,
			int64_t now)
{
	size_t i;

	while (rc->n && rc->e[rc->head].ts < now - rc->window)
		rc_pop(rc);
	if (ts <= rc->floor)
		return -1;
	for (i = rhash(rc, nonce); rc->slot[i]; i = (i + 1) & rc->mask)
		if (memcmp(rc->e[rc->slot[i] - 1].nonce, nonce, RNONCE_LEN) == 0)
			return -1;
	if (rc->n == rc->cap) {
		size_t grown = rc->cap * 2 < rc->max ? rc->cap * 2 : rc->max;

		if (grown == rc->cap || rc_alloc(rc, grown) < 0)
			rc_pop(rc);
		/* new slots, or one freed: look for the insertion point again */
		for (i = rhash(rc, nonce); rc->slot[i]; i = (i + 1) & rc->mask)
			;
	}
	{
		size_t idx = (rc->head + rc->n) % rc->cap;

		memcpy(rc->e[idx].nonce, nonce, RNONCE_LEN);
		rc->e[idx].ts = ts;
		rc->slot[i] = (uint32_t)(idx + 1);
		rc->n++;
	}
	return 0;
}

static int check_time(int64_t ts, int64_t now, int64_t window, struct fd_err *err)
{
	int64_t skew;

	if (__builtin_sub_overflow(now, ts, &skew))
		return fail(err, ETIME, "stale (time stamp %lld ms)", (long long)ts);
	if (skew > window || skew < -window)
		return fail(err, ETIME, "stale (skew %lld ms)", (long long)skew);
	return 0;
}

/* Datagrams */

/* The associated data: version, key id, then context and cluster, each
 * after its length. Returns its length, or 0 when a name is too long. */
static size_t seal_aad(uint8_t *aad, const uint8_t *hdr, const char *context,
		       const char *cluster)
{
	size_t cl = strlen(context), nl = strlen(cluster), off = 5;

	if (cl > FD_AUTH_NAME_MAX || nl > FD_AUTH_NAME_MAX)
		return 0;
	memcpy(aad, hdr, 5);
	aad[off++] = (uint8_t)cl;
	memcpy(aad + off, context, cl);
	off += cl;
	aad[off++] = (uint8_t)nl;
	memcpy(aad + off, cluster, nl);
	return off + nl;
}

#define AAD_MAX (5 + 2 * (1 + FD_AUTH_NAME_MAX))

ssize_t fd_auth_seal(const struct fd_keyring *kr, const char *context,
		     const char *cluster, int64_t now_ms, const void *in,
		     size_t len, void *out, size_t cap)
{
	const struct fd_key *k;
	uint8_t *o = out, aad[AAD_MAX], ts[TS_LEN];
	size_t alen;

	if (!kr || kr->n == 0 || len > SSIZE_MAX - FD_SEAL_OVERHEAD ||
	    cap < len + FD_SEAL_OVERHEAD)
		return -1;
	k = &kr->keys[kr->primary];
	o[0] = SEAL_VERSION;
	put_be32(o + 1, k->id);
	if (nonce_bytes(o + 5, NONCE_LEN) < 0)
		return -1;
	alen = seal_aad(aad, o, context, cluster);
	if (!alen)
		return -1;
	for (int i = 0; i < TS_LEN; i++)
		ts[i] = (uint8_t)((uint64_t)now_ms >> (56 - 8 * i));
	if (gcm2(1, k->seal, o + 5, aad, alen, ts, TS_LEN, o + HDR_LEN, in, len,
		 o + HDR_LEN + TS_LEN, o + HDR_LEN + TS_LEN + len) < 0)
		return -1;
	return (ssize_t)(len + FD_SEAL_OVERHEAD);
}

int fd_auth_is_sealed(const void *buf, size_t len)
{
	return len >= FD_SEAL_OVERHEAD && ((const uint8_t *)buf)[0] == SEAL_VERSION;
}

ssize_t fd_auth_open(const struct fd_keyring *kr, struct fd_replay *rc,
		     const char *context, const char *cluster, int64_t now_ms,
		     const void *in, size_t len, void *out, size_t cap,
		     struct fd_err *err)
{
	const uint8_t *b = in;
	uint8_t aad[AAD_MAX], ts_b[TS_LEN], tag[TAG_LEN], nonce[RNONCE_LEN] = {0};
	size_t plen, alen;
	uint32_t kid;
	int tried = 0, opened = 0;
	int64_t ts = 0;

	if (!fd_auth_is_sealed(in, len))
		return fail(err, ENOMSG, "not sealed");
	plen = len - FD_SEAL_OVERHEAD;
	if (cap < plen)
		return fail(err, EMSGSIZE, "no room for the payload");
	kid = get_be32(b + 1);
	alen = seal_aad(aad, b, context, cluster);
	if (!alen)
		return fail(err, EINVAL, "context or cluster name too long");
	for (size_t i = 0; kr && i < kr->n && !opened; i++) {
		if (kr->keys[i].id != kid)
			continue;
		tried = 1;
		memcpy(tag, b + len - TAG_LEN, TAG_LEN);
		opened = gcm2(0, kr->keys[i].seal, b + 5, aad, alen,
			      b + HDR_LEN, TS_LEN, ts_b, b + HDR_LEN + TS_LEN,
			      plen, out, tag) == 0;
	}
	if (!tried)
		return fail(err, ENOKEY, "unknown key %08x", kid);
	if (!opened) {
		if (plen) /* no unauthenticated plaintext out */
			memset(out, 0, plen);
		return fail(err, EBADMSG, "authentication failed");
	}
	for (int i = 0; i < TS_LEN; i++)
		ts = (int64_t)((uint64_t)ts << 8 | ts_b[i]);
	if (check_time(ts, now_ms, rc ? rc->window : FD_AUTH_WINDOW_MS_DEFAULT,
		       err) < 0)
		return -1;
	memcpy(nonce, b + 5, NONCE_LEN);
	if (rc && rc_check_add(rc, nonce, ts, now_ms) < 0)
		return fail(err, EALREADY, "replayed");
	return (ssize_t)plen;
}

/* Requests */

/* The lines a mac covers, gathered in one buffer (short, bounded fields:
 * a few digest updates rather than two per field, and no printf). */
struct lines {
	char b[FD_AUTH_NAME_MAX + 160];
	size_t n;
	int over;
};

static void add(struct lines *l, const char *s, size_t n)
{
	if (n > sizeof(l->b) - l->n) {
		l->over = 1;
		return;
	}
	memcpy(l->b + l->n, s, n);
	l->n += n;
}

static void add_str(struct lines *l, const char *s)
{
	add(l, s, strlen(s));
}

/* Writes v in decimal at p; returns the end. */
static char *put_dec(char *p, uint64_t v)
{
	char t[20];
	int n = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = t[--n];
	return p;
}

static void add_dec(struct lines *l, uint64_t v)
{
	char t[20];

	add(l, t, (size_t)(put_dec(t, v) - t));
}

/* What a request's mac covers after its target: the cluster name, the
 * time, the nonce (hex) and the body's length or "stream", each after a
 * newline and the last followed by one. */
static int request_tail(struct lines *l, const char *cluster, int64_t ts,
			const char *nonce, int stream, size_t len)
{
	if (strlen(cluster) > FD_AUTH_NAME_MAX)
		return -1;
	l->n = 0;
	l->over = 0;
	add(l, "\n", 1);
	add_str(l, cluster);
	add(l, "\n", 1);
	add_dec(l, (uint64_t)ts);
	add(l, "\n", 1);
	add(l, nonce, 2 * RNONCE_LEN);
	add(l, "\n", 1);
	if (stream)
		add(l, "stream", 6);
	else
		add_dec(l, len);
	add(l, "\n", 1);
	return l->over ? -1 : 0;
}

/* The mac of "fd-http-v2\n", the method, "\n", the target, the tail, then
 * the body (none for a stream). */
static int request_mac(const struct fd_key *k, const char *method,
		       const char *target, const struct lines *tail,
		       const void *body, size_t blen, uint8_t out[MAC_LEN])
{
	const void *piece[] = {"fd-http-v2\n", method,	"\n",
			       target,	       tail->b, body};
	size_t len[] = {11, strlen(method), 1, strlen(target), tail->n, blen};

	return hmac_v(k->sign, sizeof(k->sign), piece, len, 6, out);
}

struct parsed {
	uint32_t kid;
	int64_t ts;
	char nonce[2 * RNONCE_LEN]; /* hex, as sent (not terminated) */
	int stream;
	size_t len; /* the body's length when not a stream */
	uint8_t mac[MAC_LEN];
};

static const char *expect(const char *s, const char *lit, size_t n)
{
	return s && strncmp(s, lit, n) == 0 ? s + n : NULL;
}

/* Exactly 2n lowercase hex digits into b; NULL when they are not there
 * (stops at the first byte that is not one, the terminator included). */
static const char *take_bytes(const char *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; s && i < n; i++) {
		unsigned hi = hexval[(unsigned char)s[2 * i]], lo;

		if (!hi || !(lo = hexval[(unsigned char)s[2 * i + 1]]))
			return NULL;
		b[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
	}
	return s ? s + 2 * n : NULL;
}

/* A decimal number of 1 to 15 digits (no sign, no leading zero). */
static const char *take_dec(const char *s, int64_t *v)
{
	size_t n = 0;

	if (!s)
		return NULL;
	*v = 0;
	while (s[n] >= '0' && s[n] <= '9' && n < 16)
		*v = *v * 10 + (s[n++] - '0');
	return n == 0 || n > 15 || (n > 1 && s[0] == '0') ? NULL : s + n;
}

static const char *take_kid(const char *s, uint32_t *kid)
{
	uint8_t b[4];

	s = take_bytes(expect(s, "v2 kid=", 7), b, 4);
	if (s)
		*kid = get_be32(b);
	return s;
}

/* "v2 kid=.. ts=.. nonce=.. body=.. mac=..". 0 or -1. */
static int parse_request(const char *h, struct parsed *p)
{
	uint8_t nb[RNONCE_LEN];
	int64_t len = 0;
	const char *s = take_dec(expect(take_kid(h, &p->kid), " ts=", 4), &p->ts);
	const char *nonce = expect(s, " nonce=", 7);

	s = take_bytes(nonce, nb, RNONCE_LEN);
	if (s)
		memcpy(p->nonce, nonce, sizeof(p->nonce));
	s = expect(s, " body=", 6);
	p->stream = expect(s, "stream", 6) != NULL;
	s = p->stream ? s + 6 : take_dec(s, &len);
	p->len = (size_t)len;
	s = take_bytes(expect(s, " mac=", 5), p->mac, MAC_LEN);
	return s && *s == '\0' ? 0 : -1;
}

/* "malformed": a header of another version says so. */
static int malformed(const char *h, const char *what, struct fd_err *err)
{
	if (h[0] == 'v' && h[1] >= '0' && h[1] <= '9' && h[2] == ' ' &&
	    strncmp(h, "v2 ", 3) != 0)
		return fail(err, ENOMSG,
			    "%s signed in version %c, this node speaks v2 "
			    "(upgrade every node to one release)",
			    what, h[1]);
	return fail(err, ENOMSG, "malformed %s header%s", FD_AUTH_HEADER,
		    strcmp(what, "answer") == 0 ? " in the answer" : "");
}

int fd_auth_header_kid(const char *header, uint32_t *kid)
{
	return take_kid(header, kid) ? 0 : -1;
}

/* "v2 kid=" and the id in 8 hex digits at p; returns the end. */
static char *put_kid(char *p, uint32_t id)
{
	uint8_t b[4];

	put_be32(b, id);
	memcpy(p, "v2 kid=", 7);
	hex(b, 4, p + 7);
	return p + 15;
}

int fd_auth_sign(const struct fd_keyring *kr, const char *method,
		 const char *path, const char *cluster, int64_t now_ms,
		 const void *body, size_t len, int stream, char *out)
{
	const struct fd_key *k;
	struct lines tail;
	uint8_t nb[RNONCE_LEN], mac[MAC_LEN];
	char nonce[2 * RNONCE_LEN + 1], *p;

	if (!kr || kr->n == 0 || now_ms < 0 || (stream && len))
		return -1;
	k = &kr->keys[kr->primary];
	if (nonce_bytes(nb, sizeof(nb)) < 0)
		return -1;
	hex(nb, sizeof(nb), nonce);
	if (request_tail(&tail, cluster, now_ms, nonce, stream, len) < 0 ||
	    request_mac(k, method, path, &tail, body, len, mac) < 0)
		return -1;
	/* At most 15 + 4 + 20 + 7 + 32 + 6 + 20 + 5 + 64 + 1 bytes. */
	p = put_kid(out, k->id);
	memcpy(p, " ts=", 4);
	p = put_dec(p + 4, (uint64_t)now_ms);
	memcpy(p, " nonce=", 7);
	memcpy(p + 7, nonce, 2 * RNONCE_LEN);
	p += 7 + 2 * RNONCE_LEN;
	memcpy(p, " body=", 6);
	if (stream) {
		memcpy(p + 6, "stream", 6);
		p += 12;
	} else {
		p = put_dec(p + 6, len);
	}
	memcpy(p, " mac=", 5);
	hex(mac, MAC_LEN, p + 5);
	return 0;
}

int fd_auth_verify(const struct fd_keyring *kr, struct fd_replay *rc,
		   const char *method, const char *path, const char *cluster,
		   int64_t now_ms, const void *body, size_t len, int stream,
		   const char *header, struct fd_err *err)
{
	struct parsed p;
	struct lines tail;
	uint8_t mac[MAC_LEN], nb[RNONCE_LEN];
	int tried = 0, ok = 0;

	if (!header)
		return fail(err, ENOMSG, "no %s header", FD_AUTH_HEADER);
	if (parse_request(header, &p) < 0)
		return malformed(header, "request", err);
	if (stream != p.stream)
		return fail(err, EBADMSG,
			    stream ? "a streamed body must be signed as a stream"
				   : "the body is not signed");
	if (!stream && len != p.len)
		return fail(err, EBADMSG,
			    "the body has %zu bytes, the signature covers %zu",
			    len, p.len);
	if (request_tail(&tail, cluster, p.ts, p.nonce, stream, len) < 0)
		return fail(err, EINVAL, "cluster name too long");
	for (size_t i = 0; kr && i < kr->n && !ok; i++) {
		if (kr->keys[i].id != p.kid)
			continue;
		tried = 1;
		ok = request_mac(&kr->keys[i], method, path, &tail, body,
				 stream ? 0 : len, mac) == 0 &&
		     CRYPTO_memcmp(mac, p.mac, MAC_LEN) == 0;
	}
	if (!tried)
		return fail(err, ENOKEY, "unknown key %08x", p.kid);
	if (!ok)
		return fail(err, EBADMSG, "bad signature");
	if (check_time(p.ts, now_ms,
		       rc ? rc->window : FD_AUTH_WINDOW_MS_DEFAULT, err) < 0)
		return -1;
	unhex(p.nonce, nb, RNONCE_LEN);
	if (rc && rc_check_add(rc, nb, p.ts, now_ms) < 0)
		return fail(err, EALREADY, "replayed");
	return 0;
}

/* Responses */

/* The mac of the lines "fd-http-resp-v2", the cluster name, the request's
 * nonce, the status and the body's length, each followed by a newline,
 * then of the body. */
static int response_mac(const struct fd_key *k, const char *cluster,
			const char *nonce, unsigned status, const void *body,
			size_t len, uint8_t mac[MAC_LEN])
{
	struct lines l = {.n = 0};
	const void *piece[2];
	size_t plen[2];

	if (strlen(cluster) > FD_AUTH_NAME_MAX)
		return -1;
	add(&l, "fd-http-resp-v2\n", 16);
	add_str(&l, cluster);
	add(&l, "\n", 1);
	add(&l, nonce, 2 * RNONCE_LEN);
	add(&l, "\n", 1);
	add_dec(&l, status);
	add(&l, "\n", 1);
	add_dec(&l, len);
	add(&l, "\n", 1);
	if (l.over)
		return -1;
	piece[0] = l.b;
	plen[0] = l.n;
	piece[1] = body;
	plen[1] = len;
	return hmac_v(k->sign, sizeof(k->sign), piece, plen, 2, mac);
}

int fd_auth_sign_response(const struct fd_keyring *kr, const char *cluster,
			  const char *request_header, unsigned status,
			  const void *body, size_t len, char *out)
{
	const struct fd_key *k;
	struct parsed p;
	uint8_t mac[MAC_LEN];
	char *s;

	if (!kr || kr->n == 0 || !request_header ||
	    parse_request(request_header, &p) < 0)
		return -1;
	k = &kr->keys[kr->primary];
	if (response_mac(k, cluster, p.nonce, status, body, len, mac) < 0)
		return -1;
	s = put_kid(out, k->id);
	memcpy(s, " mac=", 5);
	hex(mac, MAC_LEN, s + 5);
	return 0;
}

int fd_auth_verify_response(const struct fd_keyring *kr, const char *cluster,
			    const char *request_header, unsigned status,
			    const void *body, size_t len, const char *header,
			    struct fd_err *err)
{
	struct parsed req;
	uint32_t kid = 0;
	uint8_t mac[MAC_LEN], want[MAC_LEN];
	const char *s;
	int tried = 0, ok = 0;

	if (!request_header || parse_request(request_header, &req) < 0)
		return fail(err, EINVAL, "the request was not signed");
	if (!header)
		return fail(err, ENOMSG, "no %s header in the answer", FD_AUTH_HEADER);
	s = take_bytes(expect(take_kid(header, &kid), " mac=", 5), mac, MAC_LEN);
	if (!s || *s)
		return malformed(header, "answer", err);
	for (size_t i = 0; kr && i < kr->n && !ok; i++) {
		if (kr->keys[i].id != kid)
			continue;
		tried = 1;
		ok = response_mac(&kr->keys[i], cluster, req.nonce, status,
				  body, len, want) == 0 &&
		     CRYPTO_memcmp(want, mac, MAC_LEN) == 0;
	}
	if (!tried)
		return fail(err, ENOKEY, "unknown key %08x", kid);
	if (!ok)
		return fail(err, EBADMSG, "bad signature on the answer");
	return 0;
}
