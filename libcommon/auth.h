/* auth: the cluster key ring, sealed datagrams (AES-256-GCM) and signed
 * node-to-node HTTP requests and responses (HMAC-SHA256), on OpenSSL EVP.
 *
 * Pure apart from OpenSSL's random generator (fd_key_generate, the nonces of
 * fd_auth_seal / fd_auth_sign): no files, no sockets, time passed in. The
 * node reads key files, libcommon parses them.
 *
 * Keys: 32 random bytes, written as standard base64 (44 characters). A key
 * file holds one key per line ('#' comments and blank lines ignored); the
 * first key is the primary (used to seal and sign), the others are accepted
 * (rotation without downtime: install everywhere, use everywhere, remove the
 * old one). A key's id is the first 4 bytes of SHA-256("fd-key-id" || key),
 * so two nodes name the same key the same way without ever sending it.
 * A key is never used directly: sealing uses HMAC-SHA256(key, "fd-seal-v1")
 * as its AES-256 key and signing HMAC-SHA256(key, "fd-sign-v1") as its HMAC
 * key, so the two uses never share key material.
 *
 * Sealed datagram (both UDP membership and gossip discovery):
 *   version(1) = 1 | key id(4, big-endian) | nonce(12) | ciphertext | tag(16)
 * the plaintext is a big-endian wall-clock time in ms (8) followed by the
 * payload; the associated data is the version byte, the key id, then the
 * context ("udp", "gossip", ...) and the cluster name, each preceded by its
 * length (one byte), so a datagram sealed for one use or cluster never opens
 * for another. Opening checks the tag with every key of that id, then the
 * time against the replay window (now +- window) and the nonce against a
 * replay cache covering that window: a captured datagram replayed later is
 * rejected. Nonces are random (96 bits): keep a key below 2^32 seals.
 *
 * Signed request: header X-FD-Auth: "v2 kid=HEX8 ts=MS nonce=HEX32
 * body=LEN|stream mac=HEX64", mac = HMAC-SHA256(sign key, "fd-http-v2\n"
 * method "\n" target "\n" cluster "\n" ts "\n" nonce "\n" LEN "\n" body)
 * where target is the request target as sent (path and query), ts and LEN
 * (the body's length in bytes) decimal text; "stream" stands for a body
 * sent as it is produced (not known up front: such a body is not covered by
 * the mac, and the mac input ends with "stream\n"). The body is hashed
 * inside the mac, not apart: one pass, the cheapest a node's cold caches
 * allow. A signature names no destination, so one request sent to several
 * nodes may carry one signature (each node's replay cache takes it once).
 *
 * Signed response: header X-FD-Auth: "v2 kid=HEX8 mac=HEX64",
 * mac = HMAC-SHA256(sign key, "fd-http-resp-v2\n" cluster "\n" nonce "\n"
 * status "\n" LEN "\n" body) with the nonce of the request it answers: a
 * response cannot be forged, nor replayed to another request.
 *
 * A header of another version ("v1 ...") is refused as malformed with a
 * message naming both versions.
 *
 * Errors: the functions that check (fd_auth_open, fd_auth_verify,
 * fd_auth_verify_response) fill err with a message and set errno to the
 * kind of failure, for counters:
 *   ENOMSG    not sealed / no or malformed header
 *   ENOKEY    unknown key id ("unknown key 1a2b3c4d")
 *   EBADMSG   authentication failed (tag, mac, or a body of another
 *             length than the signed one)
 *   ETIME     stale: outside the window ("stale (skew N ms)")
 *   EALREADY  replayed (or older than what the replay cache still holds)
 */
#ifndef FD_AUTH_H
#define FD_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define FD_KEY_LEN 32
#define FD_KEY_B64_LEN 44 /* base64 of FD_KEY_LEN bytes, without NUL */
#define FD_KEYRING_MAX 16
#define FD_SEAL_OVERHEAD (1 + 4 + 12 + 8 + 16)
#define FD_AUTH_HEADER "X-FD-Auth"
#define FD_AUTH_WINDOW_MS_DEFAULT 60000 /* replay window and clock skew */
#define FD_AUTH_NAME_MAX 255		/* longest context or cluster name */

/* A key comes from fd_key_generate, fd_key_parse or fd_keyring_parse,
 * which fill its id and its two per-use keys (copying the struct is fine). */
struct fd_key {
	uint8_t bytes[FD_KEY_LEN];
	uint32_t id;
	uint8_t seal[32], sign[32]; /* derived from bytes, see above */
};

struct fd_keyring {
	struct fd_key keys[FD_KEYRING_MAX];
	size_t n;	/* 0: no key (plaintext cluster) */
	size_t primary; /* index of the key that seals and signs */
};

/* Keys */
int fd_key_generate(struct fd_key *k, struct fd_err *err);
/* Parses a base64 key (surrounding white space allowed; the canonical
 * encoding only). 0 or -1. */
int fd_key_parse(const char *text, struct fd_key *k, struct fd_err *err);
/* Writes the base64 form and a NUL into out (at least FD_KEY_B64_LEN + 1). */
void fd_key_format(const struct fd_key *k, char *out);
/* "%08x" of k->id into out (at least 9 bytes). */
void fd_key_id_hex(uint32_t id, char *out);
/* Parses "%08x" (exactly 8 hex digits). 0 or -1. */
int fd_key_id_parse(const char *text, uint32_t *id);

/* Key ring */
/* Parses a key file's text; errors name the line. 0 or -1. An empty file
 * is an error (a key file must hold a key). */
int fd_keyring_parse(const char *text, size_t len, struct fd_keyring *kr,
		     struct fd_err *err);
/* The key file text for kr (primary first), into a malloc'd string; NULL
 * when out of memory. */
char *fd_keyring_format(const struct fd_keyring *kr);
/* Adds k as an accepted key (no-op if present). 0, or -1 if full. */
int fd_keyring_install(struct fd_keyring *kr, const struct fd_key *k,
		       struct fd_err *err);
/* Makes the installed key with this id the primary. 0, or -1 if absent. */
int fd_keyring_use(struct fd_keyring *kr, uint32_t id, struct fd_err *err);
/* Removes the key with this id. -1 if absent or if it is the primary. */
int fd_keyring_remove(struct fd_keyring *kr, uint32_t id, struct fd_err *err);
/* Index of the key with this id in kr, or -1. */
int fd_keyring_find(const struct fd_keyring *kr, uint32_t id);
/* Wipes the key bytes. */
void fd_keyring_clear(struct fd_keyring *kr);

/* Replay cache: nonces seen within the window, at most max_entries of them
 * (the cache grows up to that). When it is full the oldest entry goes and
 * anything not newer than it is refused from then on (as "replayed"): a
 * flood can make late messages fail, never let a replay through. */
struct fd_replay;
/* NULL when out of memory. */
struct fd_replay *fd_replay_new(int64_t window_ms, size_t max_entries);
/* NULL does nothing. */
void fd_replay_free(struct fd_replay *rc);
/* Nonces held now. */
size_t fd_replay_size(const struct fd_replay *rc);

/* Datagrams */
/* Seals len bytes of in with kr's primary key into out (cap at least len +
 * FD_SEAL_OVERHEAD). Returns the sealed length, or -1 (no key, no room,
 * a context or cluster name longer than FD_AUTH_NAME_MAX). */
ssize_t fd_auth_seal(const struct fd_keyring *kr, const char *context,
		     const char *cluster, int64_t now_ms, const void *in,
		     size_t len, void *out, size_t cap);
/* Opens a sealed datagram into out (cap at least len - FD_SEAL_OVERHEAD).
 * Returns the payload length, or -1 with the reason in err (and errno, see
 * above): "not sealed", "unknown key XXXXXXXX", "authentication failed",
 * "stale (skew N ms)", "replayed". The window is the replay cache's (or
 * FD_AUTH_WINDOW_MS_DEFAULT when rc is NULL). rc may be NULL (no replay
 * check: tests only). */
ssize_t fd_auth_open(const struct fd_keyring *kr, struct fd_replay *rc,
		     const char *context, const char *cluster, int64_t now_ms,
		     const void *in, size_t len, void *out, size_t cap,
		     struct fd_err *err);
/* 1 if buf looks like a sealed datagram (version byte and length), else 0:
 * lets a node in rollout mode tell sealed from plaintext. */
int fd_auth_is_sealed(const void *buf, size_t len);

/* Requests */
#define FD_AUTH_HEADER_MAX 256
/* Writes the X-FD-Auth value (without the name) for a request into out
 * (at least FD_AUTH_HEADER_MAX). path: the request target (path and
 * query). body NULL with len 0 and stream 1: a streamed body. Returns 0,
 * or -1 (no key, a cluster name too long). */
int fd_auth_sign(const struct fd_keyring *kr, const char *method,
		 const char *path, const char *cluster, int64_t now_ms,
		 const void *body, size_t len, int stream, char *out);
/* Checks a request's X-FD-Auth value (NULL: missing). For a streamed body
 * pass stream 1 (the header must say "stream"). The window is the replay
 * cache's (FD_AUTH_WINDOW_MS_DEFAULT when rc is NULL). Returns 0, or -1
 * with the reason in err and errno. */
int fd_auth_verify(const struct fd_keyring *kr, struct fd_replay *rc,
		   const char *method, const char *path, const char *cluster,
		   int64_t now_ms, const void *body, size_t len, int stream,
		   const char *header, struct fd_err *err);
/* Signs a response with status and body to the request whose X-FD-Auth
 * value is request_header, into out (at least FD_AUTH_HEADER_MAX). Returns
 * 0, or -1 (no key, no nonce in request_header). */
int fd_auth_sign_response(const struct fd_keyring *kr, const char *cluster,
			  const char *request_header, unsigned status,
			  const void *body, size_t len, char *out);
/* Checks a response's X-FD-Auth value (NULL: missing) against the request
 * header it answers. Returns 0, or -1 with the reason in err and errno. */
int fd_auth_verify_response(const struct fd_keyring *kr, const char *cluster,
			    const char *request_header, unsigned status,
			    const void *body, size_t len, const char *header,
			    struct fd_err *err);
/* The key id named by an X-FD-Auth value. 0, or -1 (malformed). */
int fd_auth_header_kid(const char *header, uint32_t *kid);

/* Constant-time comparison: 0 when equal. */
int fd_auth_memcmp(const void *a, const void *b, size_t len);

/* Raw primitives, exposed for known-answer tests (NIST GCM, RFC 4231). */
/* AES-256-GCM of len bytes with a 12-byte iv: encrypt (tag written) or
 * decrypt (tag checked). 0, or -1 (tag mismatch, OpenSSL failure). */
int fd_auth_gcm_raw(int encrypt, const uint8_t key[32], const uint8_t iv[12],
		    const void *aad, size_t aadlen, const void *in, size_t len,
		    void *out, uint8_t tag[16]);
/* HMAC-SHA256. 0, or -1 (OpenSSL failure). */
int fd_auth_hmac_raw(const void *key, size_t keylen, const void *data,
		     size_t len, uint8_t out[32]);

#endif
