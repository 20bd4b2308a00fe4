/* Client authorization: bearer tokens and what they may do (DESIGN.md §3
 * "Security"). A pure core: parsing and checks, no I/O except
 * fd_acl_load() reading the file it is given.
 *
 * Scopes:
 *   read                 reads: info, members, events, registry lookup,
 *                        list and watch
 *   register[:PREFIX]    register and unregister names starting with PREFIX
 *   publish[:PREFIX]     publish to subjects starting with PREFIX
 *   subscribe[:PREFIX]   subscribe to patterns all of whose subjects start
 *                        with PREFIX ("orders.*" is under "orders.";
 *                        "*.x" is not)
 *   admin                faults, leave, log level, forced unregister, keys
 *   all                  every scope above, every name
 * Without ":PREFIX" a scope covers every name. A PREFIX is a plain string
 * prefix, no wildcards: "orders." covers "orders.eu" but not "orders";
 * "orders" also covers "ordersx". A scope gives only what it names: admin
 * does not include read.
 *
 * The ACL file is JSON:
 *   {"tokens": [
 *     {"id": "ci", "token": "…", "scopes": ["publish:orders.", "read"]},
 *     {"id": "ops", "token_sha256": "<64 hex digits>", "scopes": ["admin"]}
 *   ]}
 * "id" names the token in logs and answers (1 to 64 printable ASCII
 * characters, no quotes, unique); the secret is given as "token" (16 to
 * 1024 visible ASCII characters) or as the hex SHA-256 of it, so the file
 * need not hold the secret. Unknown fields are errors (a misspelt "scope"
 * must not silently grant nothing). Limits: FD_ACL_MAX_FILE bytes,
 * FD_ACL_MAX_TOKENS tokens, FD_ACL_MAX_SCOPES scopes per token, JSON depth
 * FD_JSON_MAX_DEPTH.
 *
 * Lookups hash the presented token with SHA-256 and compare it with every
 * entry in constant time (CRYPTO_memcmp), so the time taken says nothing
 * about how much of a guess was right.
 */
#ifndef FD_ACL_H
#define FD_ACL_H

#include <stddef.h>

#include "err.h"

#define FD_ACL_MAX_FILE (1024 * 1024)
#define FD_ACL_MAX_TOKENS 10000
#define FD_ACL_MAX_SCOPES 64
#define FD_ACL_MAX_PREFIX 255
#define FD_ACL_MAX_ID 64
#define FD_ACL_MIN_TOKEN 16
#define FD_ACL_MAX_TOKEN 1024

enum fd_scope_kind {
	FD_SCOPE_READ,
	FD_SCOPE_REGISTER,
	FD_SCOPE_PUBLISH,
	FD_SCOPE_SUBSCRIBE,
	FD_SCOPE_ADMIN,
	FD_SCOPE_NKINDS,
};

struct fd_scope {
	enum fd_scope_kind kind;
	char *prefix; /* NULL: every name */
};

/* A set of scopes (what one token, or a client without one, may do). */
struct fd_scopes {
	struct fd_scope *v;
	size_t n;
};

/* "read", "publish", … */
const char *fd_scope_name(enum fd_scope_kind kind);

/* Parses one scope ("publish:orders.") and adds it to s ("all" adds one of
 * each kind). Returns 0, or -1 with err filled (unknown scope, a prefix on
 * read/admin, an empty prefix, a prefix with wildcards, whitespace or
 * control characters, too long, too many scopes, out of memory). */
int fd_scopes_add(struct fd_scopes *s, const char *scope, struct fd_err *err);
/* Parses a comma-separated list ("read,publish:orders."), or "all", or
 * "none" (no scope at all) into s (emptied first). Returns 0 or -1 with
 * err filled. */
int fd_scopes_parse_list(struct fd_scopes *s, const char *list, struct fd_err *err);
/* Frees what s holds; s is empty afterwards. */
void fd_scopes_release(struct fd_scopes *s);

/* 1 when s allows kind on name[0..len) (a registry name, a subject), else
 * 0. read and admin take no name (pass NULL, 0). */
int fd_scopes_allow(const struct fd_scopes *s, enum fd_scope_kind kind,
		    const char *name, size_t len);
/* 1 when s allows subscribing to pattern[0..len) (a valid topic pattern):
 * some subscribe scope's prefix starts every subject the pattern can
 * match. Else 0. */
int fd_scopes_allow_pattern(const struct fd_scopes *s, const char *pattern,
			    size_t len);

struct fd_acl_token {
	char *id;
	unsigned char hash[32]; /* SHA-256 of the secret */
	struct fd_scopes scopes;
};

/* A parsed ACL file; immutable once made, shared by reference count (a
 * request that began under one ACL may outlive a reload). */
struct fd_acl {
	struct fd_acl_token *tokens;
	size_t n;
	unsigned refs;
};

/* Parses an ACL file's text. Returns a new ACL (one reference), or NULL with
 * err filled: "token 2 ("ci"): unknown scope 'pubish:x'". */
struct fd_acl *fd_acl_parse(const char *text, size_t len, struct fd_err *err);
/* Reads and parses path. A file that group or others may write is refused
 * (whoever can write it can grant themselves anything). Returns as
 * fd_acl_parse; err names the file. */
struct fd_acl *fd_acl_load(const char *path, struct fd_err *err);
/* Takes one more reference; returns acl. */
struct fd_acl *fd_acl_ref(struct fd_acl *acl);
/* Drops one reference; the last frees. NULL does nothing. */
void fd_acl_unref(struct fd_acl *acl);

/* The entry whose secret is token[0..len), or NULL. Constant time in the
 * content of the token (every entry is compared). */
const struct fd_acl_token *fd_acl_find(const struct fd_acl *acl,
				       const char *token, size_t len);

/* 1 when token[0..len) may be sent as a bearer token (visible ASCII, 1 to
 * FD_ACL_MAX_TOKEN bytes: no header injection), else 0. */
int fd_acl_token_valid(const char *token, size_t len);

#endif
