/* Fault rules: what the node's fault gate does to node-to-node traffic.
 *
 * Pure: no I/O, no clock, no allocation. A table holds up to FD_FAULT_MAX
 * rules; each rule says what happens to traffic to or from one peer (a
 * member name, or "*" for every peer): drop it, lose it with a probability,
 * delay it (with jitter), or duplicate it. Every rule is owned by a tag (the
 * controller that installed it, e.g. "fd-partition") and expires at a
 * monotonic time the caller chose: a crashed controller cannot leave a rule
 * behind forever.
 *
 * Times are the caller's monotonic milliseconds. Random draws come from a
 * caller-owned 64-bit state (xorshift64*), so a fixed seed replays exactly.
 */
#ifndef FD_FAULT_H
#define FD_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FD_FAULT_MAX 256	  /* rules in one table */
#define FD_FAULT_TAG_MAX 63	  /* bytes, without the NUL */
#define FD_FAULT_PEER_MAX 255	  /* a member name, without the NUL */
#define FD_FAULT_DELAY_MAX 600000 /* ms: delay_ms and jitter_ms caps */

enum fd_fault_dir {
	FD_FAULT_IN = 1,  /* traffic from the peer to us */
	FD_FAULT_OUT = 2, /* traffic from us to the peer */
	FD_FAULT_BOTH = 3,
};

enum fd_fault_action {
	FD_FAULT_DROP = 1,  /* always (probability is 1) */
	FD_FAULT_LOSS = 2,  /* drop with the rule's probability */
	FD_FAULT_DELAY = 3, /* delay_ms +- jitter_ms, with the probability */
	FD_FAULT_DUPLICATE = 4, /* send / deliver twice, with the probability */
};

struct fd_fault_rule {
	uint64_t id; /* set by fd_fault_add */
	char tag[FD_FAULT_TAG_MAX + 1];
	char peer[FD_FAULT_PEER_MAX + 1]; /* member name, or "*" */
	int dir;			  /* enum fd_fault_dir */
	int action;			  /* enum fd_fault_action */
	int64_t delay_ms, jitter_ms;
	double probability;		/* 0 < p <= 1 */
	int64_t created_at, expires_at; /* monotonic ms; expires_at > now */
	uint64_t matched;		/* messages the rule matched */
	uint64_t applied;		/* ... and acted on: */
	uint64_t dropped, delayed, duplicated; /* ... how */
};

struct fd_fault_table {
	struct fd_fault_rule rules[FD_FAULT_MAX];
	size_t n;
	uint64_t next_id;
	uint64_t checked, dropped, delayed, duplicated; /* totals */
};

/* What to do with one message. drop wins over the others; a delayed
 * message may also be duplicated. */
struct fd_fault_verdict {
	int drop;
	int duplicate;
	int64_t delay_ms; /* 0: at once */
};

void fd_fault_init(struct fd_fault_table *t);

/* Names of directions and actions ("in", "out", "both"; "drop", "loss",
 * "delay", "duplicate"), and back: parse returns the value or -1. */
const char *fd_fault_dir_name(int dir);
const char *fd_fault_action_name(int action);
int fd_fault_parse_dir(const char *s);
int fd_fault_parse_action(const char *s);

/* Checks a rule as given to add (tag, peer, dir, action, delays,
 * probability, expires_at > now). Returns 0, or -1 with err filled. */
int fd_fault_validate(const struct fd_fault_rule *r, int64_t now, struct fd_err *err);

/* Adds a copy of r (counters cleared, created_at = now, a new id). Returns
 * the id, or 0 with err filled: an invalid rule, or the table is full. */
uint64_t fd_fault_add(struct fd_fault_table *t, const struct fd_fault_rule *r,
		      int64_t now, struct fd_err *err);

/* Replaces every rule of tag by rules[0..n) (all of which get that tag),
 * all or nothing: when one rule is invalid or they do not fit, the table is
 * unchanged and -1 is returned with err filled. Returns 0. */
int fd_fault_replace_tag(struct fd_fault_table *t, const char *tag,
			 const struct fd_fault_rule *rules, size_t n,
			 int64_t now, struct fd_err *err);

/* Removes the rules of tag (NULL: every rule). Returns how many. */
size_t fd_fault_remove_tag(struct fd_fault_table *t, const char *tag);
/* Removes rule id. Returns 0, or -1 when there is none. */
int fd_fault_remove_id(struct fd_fault_table *t, uint64_t id);

/* Removes the rules expired at now. Returns how many. */
size_t fd_fault_expire(struct fd_fault_table *t, int64_t now);
/* The earliest expires_at of the table, or INT64_MAX when it is empty. */
int64_t fd_fault_next_expiry(const struct fd_fault_table *t);

/* Decides what happens to one message to (FD_FAULT_OUT) or from
 * (FD_FAULT_IN) peer. Rules expired at now never apply (they are not
 * removed: see fd_fault_expire). Counts the match and the outcome in the
 * rules and the table. Returns 1 when v says to do something, 0 to pass. */
int fd_fault_check(struct fd_fault_table *t, int64_t now, const char *peer,
		   int dir, uint64_t *rng, struct fd_fault_verdict *v);

/* A uniform draw in [0, 1) from the xorshift64* state *rng (0 is replaced
 * by a fixed non-zero seed). */
double fd_fault_rand(uint64_t *rng);

#endif
