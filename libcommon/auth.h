/* auth: the cluster key ring, sealed datagrams (AES-256-GCM) and signed
 * node-to-node HTTP requests (HMAC-SHA256), on OpenSSL EVP.
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
 *
 * Sealed datagram (both UDP membership and gossip discovery):
 *   version(1) = 1 | key id(4) | nonce(12) | ciphertext | tag(16)
 * the plaintext is a big-endian wall-clock time in ms (8) followed by the
 * payload; the associated data is the version byte, the key id, the context
 * ("udp", "gossip", ...) and the cluster name, so a datagram sealed for one
 * use or cluster never opens for another. Opening checks the tag with every
 * key of that id, then the time against the replay window (now ± window) and
 * the nonce against a replay cache covering that window: a captured datagram
 * replayed later is rejected.
 *
 * Signed request: header X-FD-Auth: "v1 kid=XXXXXXXX ts=MS nonce=HEX32
 * body=HEX64|stream mac=HEX64", mac = HMAC-SHA256(key, "fd-http-v1\n" method
 * "\n" path "\n" cluster "\n" ts "\n" nonce "\n" bodyhash). "stream" stands
 * for a body sent as it is produced (its hash is not known up front).
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

struct fd_key {
	uint8_t bytes[FD_KEY_LEN];
	uint32_t id;
};

struct fd_keyring {
	struct fd_key keys[FD_KEYRING_MAX];
	size_t n;	/* 0: no key (plaintext cluster) */
	size_t primary; /* index of the key that seals and signs */
};

/* Keys */
int fd_key_generate(struct fd_key *k, struct fd_err *err);
/* Parses a base64 key (surrounding white space allowed). 0 or -1. */
int fd_key_parse(const char *text, struct fd_key *k, struct fd_err *err);
/* Writes the base64 form and a NUL into out (at least FD_KEY_B64_LEN + 1). */
void fd_key_format(const struct fd_key *k, char *out);
/* "%08x" of k->id into out (at least 9 bytes). */
void fd_key_id_hex(uint32_t id, char *out);

/* Key ring */
/* Parses a key file's text; errors name the line. 0 or -1. An empty file
 * is an error (a key file must hold a key). */
int fd_keyring_parse(const char *text, size_t len, struct fd_keyring *kr,
		     struct fd_err *err);
/* The key file text for kr (primary first), into a malloc'd string. */
char *fd_keyring_format(const struct fd_keyring *kr);
/* Adds k as an accepted key (no-op if present). 0, or -1 if full. */
int fd_keyring_install(struct fd_keyring *kr, const struct fd_key *k,
		       struct fd_err *err);
/* Makes the installed key with this id the primary. 0, or -1 if absent. */
int fd_keyring_use(struct fd_keyring *kr, uint32_t id, struct fd_err *err);
/* Removes the key with this id. -1 if absent or if it is the primary. */
int fd_keyring_remove(struct fd_keyring *kr, uint32_t id, struct fd_err *err);
/* Wipes the key bytes. */
void fd_keyring_clear(struct fd_keyring *kr);

/* Replay cache: nonces seen within the window. */
struct fd_replay;
struct fd_replay *fd_replay_new(int64_t window_ms, size_t max_entries);
void fd_replay_free(struct fd_replay *rc);

/* Datagrams */
/* Seals len bytes of in with kr's primary key into out (cap at least len +
 * FD_SEAL_OVERHEAD). Returns the sealed length, or -1 (no key, no room). */
ssize_t fd_auth_seal(const struct fd_keyring *kr, const char *context,
		     const char *cluster, int64_t now_ms, const void *in,
		     size_t len, void *out, size_t cap);
/* Opens a sealed datagram into out (cap at least len - FD_SEAL_OVERHEAD).
 * Returns the payload length, or -1 with the reason in err: "not sealed",
 * "unknown key XXXXXXXX", "authentication failed", "stale (skew N ms)",
 * "replayed". rc may be NULL (no replay check: tests only). */
ssize_t fd_auth_open(const struct fd_keyring *kr, struct fd_replay *rc,
		     const char *context, const char *cluster, int64_t now_ms,
		     const void *in, size_t len, void *out, size_t cap,
		     struct fd_err *err);
/* 1 if buf looks like a sealed datagram (version byte), else 0: lets a
 * node in rollout mode tell sealed from plaintext. */
int fd_auth_is_sealed(const void *buf, size_t len);

/* Requests */
#define FD_AUTH_HEADER_MAX 200
/* Writes the X-FD-Auth value (without the name) for a request into out
 * (at least FD_AUTH_HEADER_MAX). body NULL with len 0 and stream 1: a
 * streamed body. Returns 0, or -1 (no key). */
int fd_auth_sign(const struct fd_keyring *kr, const char *method,
		 const char *path, const char *cluster, int64_t now_ms,
		 const void *body, size_t len, int stream, char *out);
/* Checks a request's X-FD-Auth value (NULL: missing). For a streamed body
 * pass stream 1 (the header must say "stream"). Returns 0, or -1 with the
 * reason in err. */
int fd_auth_verify(const struct fd_keyring *kr, struct fd_replay *rc,
		   const char *method, const char *path, const char *cluster,
		   int64_t now_ms, const void *body, size_t len, int stream,
		   const char *header, struct fd_err *err);

/* Constant-time comparison: 0 when equal. */
int fd_auth_memcmp(const void *a, const void *b, size_t len);

#endif
