/* Pub/sub subjects, patterns and the interest tree (DESIGN.md §3 "Pub/sub").
 *
 * Pure: no I/O, no clock, no printing. Everything here is single-threaded
 * (the node's event loop owns its trees).
 *
 * Subjects and patterns (NATS rules):
 *   - 1 to FD_TOPIC_MAX_LEN (255) bytes of valid UTF-8, split by '.' into
 *     tokens; no empty token (so no leading, trailing or doubled dot);
 *   - no control characters (C0, DEL, C1) and no whitespace (ASCII and the
 *     Unicode White_Space code points);
 *   - a subject (what is published) contains no '*' and no '>' at all;
 *   - in a pattern (what is subscribed) '*' matches exactly one token and
 *     '>' one or more trailing tokens; each must be a whole token, and '>'
 *     only the last one. Elsewhere '*' and '>' are not allowed.
 * So a subject has at most FD_TOPIC_MAX_TOKENS (128) tokens.
 *
 * Queue groups: an entry may carry a group name (validated like a subject).
 * Among the matches of one publish that share a group, exactly one should
 * receive the message: fd_topic_select() picks it.
 *
 * Strings are (pointer, length) pairs and need no NUL terminator, except
 * group names, which are NUL-terminated. Nothing here keeps a caller's
 * pointer: the tree copies what it stores.
 */
#ifndef FD_TOPIC_H
#define FD_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FD_TOPIC_MAX_LEN 255
#define FD_TOPIC_MAX_TOKENS 128

/* Return 0 when s[0..len) is a valid subject / pattern, else -1 with err
 * saying why and where ("empty token at byte 4"). err may be NULL. */
int fd_topic_valid_subject(const char *s, size_t len, struct fd_err *err);
int fd_topic_valid_pattern(const char *s, size_t len, struct fd_err *err);
/* A group name follows the subject rules. */
int fd_topic_valid_group(const char *group, struct fd_err *err);

/* Reference matcher: 1 when pattern matches subject, else 0. Both must be
 * valid (behaviour on invalid input is defined but meaningless). Time is
 * linear in the lengths; it looks at one pattern, so use the tree to match
 * many. */
int fd_topic_match(const char *pattern, size_t plen, const char *subject, size_t slen);

/* ---- Interest tree ----
 *
 * A set of entries (pattern, group, value): value is the caller's opaque
 * pointer (a subscriber, a peer), never dereferenced or freed here; group is
 * NULL or a queue group name. One value may have many patterns and one
 * pattern many values. Matching a subject visits every entry whose pattern
 * matches, each exactly once, in time proportional to the subject's tokens
 * and the number of matches, not to the number of entries; it never
 * allocates.
 *
 * Reference counts: each distinct pattern, and each distinct (pattern,
 * group) pair ("interest"), counts its entries. add() and remove() report
 * when one appears or disappears, which is when a node sends an interest
 * delta to its peers.
 *
 * Limits: max_entries bounds the entries and max_nodes the trie nodes
 * (about one per distinct pattern prefix), so input from outside cannot grow
 * a tree without bound; a full tree refuses add() with ENOSPC.
 */
struct fd_topic_tree;

/* What a match hands out. Pointers are borrowed from the tree: valid until
 * the entry is removed or the tree freed. pattern and group are
 * NUL-terminated; group is NULL outside a queue group. */
struct fd_topic_match {
	const char *pattern;
	size_t pattern_len;
	const char *group;
	void *value;
};

#define FD_TOPIC_DEFAULT_MAX_ENTRIES (1u << 20)

/* Returns a new empty tree the caller frees with fd_topic_tree_free(), or
 * NULL (errno ENOMEM). max_entries 0 takes FD_TOPIC_DEFAULT_MAX_ENTRIES;
 * max_nodes 0 takes 8 * max_entries. seed keys the token hash (pass a random
 * number so remote peers cannot aim for hash collisions). */
struct fd_topic_tree *fd_topic_tree_new(size_t max_entries, size_t max_nodes,
					uint64_t seed);
/* Frees the tree and all it stores (not the values). NULL does nothing. */
void fd_topic_tree_free(struct fd_topic_tree *t);

/* Flags returned by add() and remove(). */
enum {
	/* the pattern got its first entry (add) / lost its last one (remove) */
	FD_TOPIC_PATTERN_CHANGE = 1,
	/* the same for the (pattern, group) pair; implied by PATTERN_CHANGE */
	FD_TOPIC_INTEREST_CHANGE = 2,
};

/* Adds the entry (pattern, group, value); group may be NULL. Returns the
 * flags above (0 when pattern and interest already existed), or -1 with err
 * filled and errno EINVAL (invalid pattern or group), EEXIST (the same entry
 * is already there), ENOSPC (a limit reached) or ENOMEM. A failed add changes
 * nothing. */
int fd_topic_tree_add(struct fd_topic_tree *t, const char *pattern, size_t len,
		      const char *group, void *value, struct fd_err *err);
/* Removes the entry. Returns the flags above, or -1 with errno ENOENT when
 * there is no such entry (or the pattern is invalid). */
int fd_topic_tree_remove(struct fd_topic_tree *t, const char *pattern,
			 size_t len, const char *group, void *value);

/* Called for each entry removed by fd_topic_tree_remove_value(), after the
 * removal, with the flags remove() would have returned; the pattern and
 * group pointers are valid only during the call. */
typedef void (*fd_topic_removed_fn)(void *arg, const char *pattern, size_t len,
				    const char *group, int flags);
/* Removes every entry of value (a subscriber going away, a peer failing).
 * fn may be NULL. Returns how many were removed. Time is linear in the
 * number of entries in the tree. */
size_t fd_topic_tree_remove_value(struct fd_topic_tree *t, void *value,
				  fd_topic_removed_fn fn, void *arg);

/* Called once per matching entry; return 0 to go on, nonzero to stop. */
typedef int (*fd_topic_visit_fn)(void *arg, const struct fd_topic_match *m);
/* Visits every entry matching the subject. Returns the number of entries
 * visited, or -1 with errno EINVAL when subject is not shaped like a subject
 * (empty, too long, empty token, too many tokens); for speed it does not
 * check UTF-8 or characters: validate subjects where they enter the node.
 * The tree must not be changed from inside fn. */
long fd_topic_tree_match(const struct fd_topic_tree *t, const char *subject,
			 size_t len, fd_topic_visit_fn fn, void *arg);
/* Stores up to cap matches in out and returns the total number of matches
 * (which may be more than cap: call again with a larger array), or -1 as
 * above. */
long fd_topic_tree_collect(const struct fd_topic_tree *t, const char *subject,
			   size_t len, struct fd_topic_match *out, size_t cap);

size_t fd_topic_tree_entries(const struct fd_topic_tree *t);
size_t fd_topic_tree_patterns(const struct fd_topic_tree *t);

/* Called once per distinct (pattern, group) pair with its entry count; group
 * is NULL for the entries without a group. Return nonzero to stop. */
typedef int (*fd_topic_interest_fn)(void *arg, const char *pattern, size_t len,
				    const char *group, size_t count);
/* Visits the tree's interest (in no particular order; sort it with
 * fd_topic_item_cmp() to encode a full set). Returns fn's nonzero value, or
 * 0. The tree must not be changed from inside fn. */
int fd_topic_tree_each_interest(const struct fd_topic_tree *t,
				fd_topic_interest_fn fn, void *arg);

/* ---- Delivery selection ---- */

enum {
	/* deliver at most once per value among the ungrouped matches (one
	 * subscriber with overlapping patterns; "which peers" questions) */
	FD_TOPIC_ONCE_PER_VALUE = 1,
};

/* Reorders m[0..n) so that m[0..k) are the matches to deliver, and returns
 * k: every match without a group (once per value with
 * FD_TOPIC_ONCE_PER_VALUE) and exactly one member of each queue group.
 * Members of a group are put in a canonical order (by value address, then
 * pattern) and the one at (pick + hash of the group name) modulo the group's
 * size is chosen: pass a counter to go round-robin, a random number to
 * spread randomly, a constant to be sticky. The result does not depend on
 * the order of m. m[k..n) is left unspecified. Never allocates. */
size_t fd_topic_select(struct fd_topic_match *m, size_t n, uint64_t pick,
		       unsigned flags);

/* ---- Interest sets on the wire ----
 *
 * A node advertises its interest to its peers as a full set (on join and
 * for repair) and then as deltas (adds and removes, applied in order), each
 * tagged with a version the node increments per message: a peer applies a
 * delta only when its version follows the last one it has, and otherwise
 * asks for a full set.
 *
 * Encoding (version and count are LEB128 varints of at most 10 bytes; the
 * other fields one byte each):
 *   header   0xfd 'T' 0x01 kind(0 full, 1 delta) version count
 *   item     [op (0 add, 1 remove): deltas only] shared suffix_len
 *            suffix[suffix_len] group_len group[group_len]
 * where a pattern is the first `shared` bytes of the previous item's pattern
 * followed by the suffix, and shared is always the longest common prefix
 * (front coding). A full set lists distinct (pattern, group) pairs in
 * strictly ascending fd_topic_item_cmp() order, with no group sorting
 * first. Every set has exactly one encoding; the decoder rejects anything
 * else: bad header, count beyond the data, trailing bytes, invalid pattern
 * or group, non-canonical prefix, unsorted or repeated items.
 */
enum fd_topic_set_kind {
	FD_TOPIC_SET_FULL = 0,
	FD_TOPIC_SET_DELTA = 1,
};
enum fd_topic_op {
	FD_TOPIC_ADD = 0,
	FD_TOPIC_REMOVE = 1,
};

struct fd_topic_item {
	enum fd_topic_op op; /* FD_TOPIC_ADD in a full set */
	const char *pattern;
	size_t len;
	const char *group; /* NULL or NUL-terminated */
};

/* Orders by pattern bytes, then group (none first, then bytes). */
int fd_topic_item_cmp(const struct fd_topic_item *a, const struct fd_topic_item *b);

/* Encodes items[0..n) into buf[0..cap). Returns 0 and sets *outlen to the
 * encoded length; or -1 with err filled and errno ENOSPC (buffer too small;
 * *outlen is then the length needed) or EINVAL (invalid pattern or group,
 * bad op, a full set not strictly sorted). Never allocates. */
int fd_topic_set_encode(void *buf, size_t cap, enum fd_topic_set_kind kind,
			uint64_t version, const struct fd_topic_item *items,
			size_t n, size_t *outlen, struct fd_err *err);

struct fd_topic_set_info {
	enum fd_topic_set_kind kind;
	uint64_t version;
	uint64_t count;
};

/* Called per decoded item; the item's strings live only during the call.
 * Return 0 to go on, nonzero to stop. */
typedef int (*fd_topic_item_fn)(void *arg, const struct fd_topic_item *it);

/* Checks the whole of buf[0..len) first, so nothing is delivered from a bad
 * message; then, when fn is not NULL, calls it for each item in order.
 * Returns 0 (info filled when not NULL), fn's nonzero value if it stopped,
 * or -1 with err saying what is wrong and at which byte (errno EBADMSG).
 * Never allocates; reads no byte outside buf. */
int fd_topic_set_decode(const void *buf, size_t len, struct fd_topic_set_info *info,
			fd_topic_item_fn fn, void *arg, struct fd_err *err);

#endif
