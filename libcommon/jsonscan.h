/* A JSON validator that builds nothing: for the hot paths that must check
 * or slice JSON text at millions of values per second (a node checking
 * published payloads, fd-pub splitting stdin lines), where building json-c
 * objects would cost more than everything else. Everything else uses json-c
 * (jsonl.h).
 *
 * Accepts exactly RFC 8259 JSON text: one value with optional whitespace
 * around it, valid UTF-8 (no surrogates, no overlongs), strings without
 * control characters, numbers in the strict grammar, fewer than
 * FD_JSON_MAX_DEPTH nested containers (as json-c with that depth). Pure, no allocation; reads nothing outside s[0..len).
 */
#ifndef FD_JSONSCAN_H
#define FD_JSONSCAN_H

#include <stddef.h>

#include "err.h"
#include "jsonl.h"

/* Called for each member of the top-level object, in order: the key as it
 * appears between its quotes (escapes not decoded; *key_escaped says whether
 * there are any) and the value's exact text. Return nonzero to fail the
 * scan (fd_json_scan then returns -1 with err "rejected by caller"). */
struct fd_json_member {
	const char *key;
	size_t key_len;
	int key_escaped;
	const char *value;
	size_t value_len;
	int value_escaped; /* a string value with escapes */
};
typedef int (*fd_json_member_fn)(void *arg, const struct fd_json_member *m);

/* Returns 0 when s[0..len) is valid JSON, else -1 with err saying what and
 * at which byte (err may be NULL). When fn is not NULL, the text must be an
 * object and fn sees its members. */
int fd_json_scan(const char *s, size_t len, fd_json_member_fn fn, void *arg,
		 struct fd_err *err);

/* The same validation for a text that comes in pieces: the state between
 * pieces is this struct, so a large payload can be checked a piece at a
 * time as it arrives (a bounded amount of work per piece). It accepts
 * exactly what fd_json_scan accepts. */
struct fd_json_stream {
	size_t off; /* bytes fed so far */
	int state, sub, in_key;
	unsigned char lo, hi; /* range of the next UTF-8 continuation byte */
	const char *lit;      /* the literal being matched */
	size_t seq_at; /* where that literal, escape or UTF-8 sequence began */
	unsigned depth;
	unsigned char stack[FD_JSON_MAX_DEPTH]; /* '{' or '[' */
	size_t newlines; /* '\n' and '\r' outside strings (whitespace) */
	const char *why; /* set once the text cannot be valid any more */
	size_t why_at;
};
void fd_json_stream_init(struct fd_json_stream *s);
/* Feeds the next piece. Returns 0 while the text may still be valid, or -1
 * with err filled (err may be NULL) once it cannot be; a failed stream
 * stays failed. */
int fd_json_stream_feed(struct fd_json_stream *s, const char *p, size_t len,
			struct fd_err *err);
/* Ends the text: 0 when what was fed is valid JSON text, else -1 with err
 * filled ("invalid JSON: WHY at byte N", as fd_json_scan). */
int fd_json_stream_end(struct fd_json_stream *s, struct fd_err *err);

/* Appends to out (cap bytes) the JSON string literal for s[0..len), which
 * must be valid UTF-8, quotes included. Returns the length written, or the
 * length needed when it is more than cap (nothing useful written then). */
size_t fd_json_quote(char *out, size_t cap, const char *s, size_t len);

#endif
