/* The registry CRDT: a delta-state add-wins observed-remove map
 * (Almeida, Shoker, Baquero, "Delta State Replicated Data Types").
 *
 * Pure: no I/O, no clocks, no printing. The caller passes timestamps (hlc.h)
 * in and moves encoded bytes between replicas.
 *
 * Model
 *   A replica is identified by a 64-bit node id, unique per incarnation of
 *   a node (a node that restarts without its persisted state, or that finds
 *   itself declared gone, must take a new id). Every local change creates a
 *   dot (node, counter) with counters 1, 2, 3, ... per node.
 *   The state maps a name to a set of entries, one per dot:
 *   {value (compact JSON text), owner = dot.node, hlc, persistent}. It also
 *   holds a causal context: every dot this replica has seen, added or
 *   removed, kept as a version vector (contiguous prefix per node) plus a
 *   dot cloud (the dots beyond a gap). The cloud is folded into the vector
 *   as gaps fill, so a converged replica keeps one counter per node and the
 *   memory stays proportional to the live entries plus the nodes.
 *
 *   register: adds a new dot and removes every dot of that name this
 *     replica has seen. "If absent" vs "replace" is the caller's decision
 *     (look the name up first). Concurrent registrations of one name on
 *     two replicas both survive a merge.
 *   unregister: removes the dots of the name this replica has seen; a
 *     concurrent registration it has not seen survives (add wins).
 *   merge: the join (least upper bound): commutative, associative,
 *     idempotent. Entries present on one side and covered by the other
 *     side's context without being present there were removed there.
 *
 *   Winner: among the entries of one name, the earliest hlc, then the
 *   lowest node id (then the lowest counter): the same on every replica.
 *   Entries are kept in that order, winner first.
 *
 *   Owner gone: when a node fails or leaves, fd_crdt_node_gone() adds its
 *   id to a grow-only set of gone nodes, which is part of the state and
 *   replicates with it. Ephemeral entries whose owner is in that set are
 *   filtered out of the state at every merge, including entries that
 *   arrive later from a replica that had not noticed yet, so every replica
 *   ends up with the same answer no matter the order in which it learns
 *   things. Persistent entries are untouched. A node id in the set is gone
 *   for good: if a live node sees its own id there (fd_crdt_is_gone on its
 *   self id, e.g. after a false failure detection) it must take a new id
 *   (fd_crdt_set_self) and re-register what it owns.
 *
 *   Deltas: every local operation can join its delta (a small state: the
 *   entries it added, the dots it saw, and the touched name even when
 *   empty) into a caller-owned delta group (fd_crdt_delta_new). Send the
 *   group, clear it, repeat: that is the batching. A delta group names
 *   every name whose dots its context removes; this lets merge touch only
 *   those names instead of scanning the state. (A peer that sends a delta
 *   group breaking that rule can only leave stale entries behind, which
 *   the next anti-entropy round removes.) A delta group's context is not
 *   folded into counters, so it stays a list of the dots it carries.
 *
 *   Anti-entropy: fd_crdt_digest() summarizes a replica per node: its
 *   context for that node plus the count and a 64-bit hash of its live
 *   dots of that node. Given a peer's digest, fd_crdt_repair() builds what
 *   the peer lacks: for each node where the two disagree, the entries the
 *   peer has not seen, our context, and the list of our live dots the peer
 *   has already seen ("keep": entries not resent). Merging that repair
 *   makes the peer equal to peer ⊔ us, removals included. Do it both ways
 *   (push-pull) and the two are equal. A converged pair exchanges only the
 *   digests. A repair may only be merged into the replica whose digest it
 *   answers (merge refuses it otherwise).
 *
 * Events: a state may have an event callback; each merge (local
 *   operations merge their own delta) reports, per name, after the change:
 *   REGISTERED (a name got its first entry), UPDATED (the winner changed),
 *   UNREGISTERED (the last entry went), CONFLICT (a name has several
 *   entries: one event per loser that is new, or for every loser when the
 *   winner changed). The node decides what to do with a conflict it loses
 *   (fd_crdt_remove_dot to yield, nothing to keep).
 *
 * Limits of this design, by choice
 *   The gone set and the per-node context grow by one item per node
 *   incarnation that ever wrote (about 50 bytes each), not per operation;
 *   pruning them needs cluster-wide agreement that no replica still holds
 *   such dots, which is not done here. A repair for a node where the two
 *   sides differ lists every live dot of that node the peer has seen (1-3
 *   bytes each): cheap next to a full state, but proportional to it.
 *
 * Memory and errors
 *   Every count is capped by struct fd_crdt_limits. Functions return 0 (or
 *   a count) or -1 with errno: EINVAL (bad argument), ENOSPC (a limit would
 *   be exceeded; nothing changed, except for FD_CRDT_MAX_PER_NAME, which is
 *   met name by name: then, as for ENOMEM, the state is still a valid state
 *   holding part of the merge), ENOMEM (allocation failed; valid state,
 *   part of the merge, which anti-entropy completes later). Pointers returned by lookups are borrowed and
 *   valid until the next change of that object.
 */
#ifndef FD_CRDT_H
#define FD_CRDT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FD_CRDT_NAME_MAX 255
#define FD_CRDT_VALUE_MAX 65536
/* Most concurrent entries one name can hold. */
#define FD_CRDT_MAX_PER_NAME 64

struct fd_crdt_limits {
	size_t max_names;   /* names, default 1,000,000 */
	size_t max_entries; /* entries, default 2,000,000 */
	size_t max_bytes;   /* name + value bytes, default 1 GiB */
	size_t max_nodes; /* nodes in the context, and gone nodes, default 65536 */
	size_t max_cloud; /* dots beyond a gap in the context, default 1,000,000 */
};

struct fd_crdt_dot {
	uint64_t node;
	uint64_t counter;
};

/* One entry. Read-only for callers. value is compact JSON text, NUL
 * terminated, value_len bytes without the NUL. The owner is dot.node. */
struct fd_crdt_entry {
	struct fd_crdt_dot dot;
	uint64_t hlc;
	char *value;
	uint32_t value_len;
	uint8_t persistent;
};

/* One name and its entries, winner first. Read-only for callers. */
struct fd_crdt_name {
	uint64_t hash;
	struct fd_crdt_entry *entries;
	uint16_t n;   /* number of entries; 0 only in delta groups */
	uint16_t len; /* name length in bytes */
	uint16_t cap; /* private */
	char name[];  /* NUL terminated */
};

enum fd_crdt_event_type {
	FD_CRDT_REGISTERED,
	FD_CRDT_UPDATED,
	FD_CRDT_UNREGISTERED,
	FD_CRDT_CONFLICT,
};

/* Everything is borrowed for the duration of the callback.
 *   REGISTERED:   entry = the winner
 *   UPDATED:      entry = the new winner, other = the previous winner
 *   UNREGISTERED: entry = the previous winner (now gone)
 *   CONFLICT:     entry = the winner, other = a loser (still present) */
struct fd_crdt_event {
	enum fd_crdt_event_type type;
	const char *name;
	size_t name_len;
	const struct fd_crdt_entry *entry;
	const struct fd_crdt_entry *other;
};

/* Must not call back into the crdt it is reporting on. */
typedef void (*fd_crdt_event_fn)(void *arg, const struct fd_crdt_event *ev);

enum fd_crdt_kind {
	FD_CRDT_STATE = 1,  /* a replica's state */
	FD_CRDT_DELTA = 2,  /* a delta group */
	FD_CRDT_REPAIR = 3, /* an anti-entropy answer (fd_crdt_repair) */
	FD_CRDT_DIGEST = 4, /* a digest (fd_crdt_digest); not mergeable */
};

struct fd_crdt;

/* Fills lim with the defaults. */
void fd_crdt_limits_default(struct fd_crdt_limits *lim);

/* A new empty state for replica self (non-zero). lim NULL: defaults (copied).
 * Returns NULL with errno set (EINVAL, ENOMEM). Free with fd_crdt_free. */
struct fd_crdt *fd_crdt_new(uint64_t self, const struct fd_crdt_limits *lim);
/* A new empty delta group. */
struct fd_crdt *fd_crdt_delta_new(const struct fd_crdt_limits *lim);
/* Frees c and everything in it. fd_crdt_free(NULL) does nothing. */
void fd_crdt_free(struct fd_crdt *c);
/* Empties c (keeps kind, self, limits, callback): a sent delta group is
 * cleared for the next batch. */
void fd_crdt_clear(struct fd_crdt *c);

enum fd_crdt_kind fd_crdt_kind(const struct fd_crdt *c);
uint64_t fd_crdt_self(const struct fd_crdt *c);
/* Takes a new replica id: refused (EINVAL) when id is 0, gone, or already
 * has dots in the context (reusing an id would reuse dots). */
int fd_crdt_set_self(struct fd_crdt *c, uint64_t id);
void fd_crdt_set_events(struct fd_crdt *c, fd_crdt_event_fn fn, void *arg);

/* True when c has no names, no context and no gone nodes (an empty delta
 * group need not be sent). */
int fd_crdt_empty(const struct fd_crdt *c);
size_t fd_crdt_names(const struct fd_crdt *c);
size_t fd_crdt_entries(const struct fd_crdt *c);
/* Dots held beyond the contiguous prefixes (0 once converged). */
size_t fd_crdt_cloud(const struct fd_crdt *c);
/* Bytes held, counting each allocation's size plus 16 bytes of allocator
 * overhead. */
size_t fd_crdt_mem(const struct fd_crdt *c);

/* Checks a name: 1..255 bytes of UTF-8 without control characters.
 * Returns 1 or 0. */
int fd_crdt_name_valid(const char *name, size_t len);

/* Local operations on a state. delta, when not NULL, is a delta group the
 * operation's delta is joined into. Names are validated (EINVAL); value is
 * copied, len 1..FD_CRDT_VALUE_MAX, and must be JSON (not checked here: the
 * API edge parses it; fd_crdt_decode does check).
 *
 * register: returns 0 and the new dot in *dot (may be NULL). */
int fd_crdt_register(struct fd_crdt *c, const char *name, size_t len,
		     const char *value, size_t value_len, uint64_t hlc,
		     int persistent, struct fd_crdt *delta, struct fd_crdt_dot *dot);
/* Like register, but the entries of other replicas stay: the new entry is
 * concurrent with them (a conflict, if any, is decided as after a merge).
 * For a replica that had to take a new id and puts back what it owned. */
int fd_crdt_add(struct fd_crdt *c, const char *name, size_t len,
		const char *value, size_t value_len, uint64_t hlc,
		int persistent, struct fd_crdt *delta, struct fd_crdt_dot *dot);
/* Removes every entry of name. Returns how many were removed (0 when the
 * name is absent: nothing changes, no delta). */
int fd_crdt_unregister(struct fd_crdt *c, const char *name, size_t len,
		       struct fd_crdt *delta);
/* Removes one entry (a conflict loser yielding). Returns 1, or 0 when that
 * dot is not an entry of name. */
int fd_crdt_remove_dot(struct fd_crdt *c, const char *name, size_t len,
		       struct fd_crdt_dot dot, struct fd_crdt *delta);
/* Marks node gone (failed or left) and drops its ephemeral entries.
 * Returns how many entries were dropped. */
int fd_crdt_node_gone(struct fd_crdt *c, uint64_t node, struct fd_crdt *delta);
int fd_crdt_is_gone(const struct fd_crdt *c, uint64_t node);

/* c := c ⊔ d. c is a state (d: a state, delta group or repair) or a delta
 * group (d: a delta group only). Events fire on states. Merging a delta
 * group touches only the names it carries; merging a state or a repair, or
 * learning of a gone node, walks every name. Returns 0 or -1 (EINVAL: d is
 * a digest, a repair for another replica, or not a delta group for a delta
 * group; ENOSPC; ENOMEM, see above). */
int fd_crdt_merge(struct fd_crdt *c, const struct fd_crdt *d);

/* The entries of name, or NULL. Borrowed. */
const struct fd_crdt_name *fd_crdt_lookup(const struct fd_crdt *c,
					  const char *name, size_t len);
/* Names starting with prefix (plen 0: all), sorted by bytes. On success
 * returns 0, *out a new array of *n borrowed pointers the caller free()s
 * (NULL when *n is 0). -1 with errno ENOMEM. */
int fd_crdt_list(const struct fd_crdt *c, const char *prefix, size_t plen,
		 const struct fd_crdt_name ***out, size_t *n);

/* A new digest of c (kind FD_CRDT_DIGEST), or NULL with errno. */
struct fd_crdt *fd_crdt_digest(const struct fd_crdt *c);
/* A new repair: what the replica that sent digest lacks from c. It is
 * empty (fd_crdt_empty) when that replica already has all of c. NULL with
 * errno on error (EINVAL when digest is not a digest). */
struct fd_crdt *fd_crdt_repair(const struct fd_crdt *c, const struct fd_crdt *digest);

/* Binary encoding of any kind. Canonical: two objects with the same
 * content encode to the same bytes (so tests compare encodings). On
 * success returns 0 and *out a new buffer of *len bytes the caller
 * free()s. -1 with errno ENOMEM, or E2BIG over 2 GiB. */
int fd_crdt_encode(const struct fd_crdt *c, unsigned char **out, size_t *len);
/* Decodes buf. Rejects anything but a canonical, complete, well-formed
 * encoding within lim (NULL: defaults): truncation, trailing bytes,
 * unsorted or duplicate items, entries outside the context, invalid
 * names or JSON values. Returns a new object (state objects get self id
 * 0: merge them, do not operate on them), or NULL with err filled. */
struct fd_crdt *fd_crdt_decode(const void *buf, size_t len,
			       const struct fd_crdt_limits *lim, struct fd_err *err);

#endif
