/* Nemeses: who stops hearing whom, for fd-partition, and a reproducible
 * schedule of faults for its chaos mode.
 *
 * Pure: no I/O, no clock, no allocation. A grudge (as in Jepsen) says, for
 * each node i of n, which nodes j it drops the traffic of: drop[i][j]. The
 * builders below fill one from a permutation of the nodes (the order), so
 * that a caller who shuffles with fd_prng gets a reproducible fault.
 *
 * The PRNG is ours (splitmix64), not rand(): the same seed gives the same
 * numbers on every libc, which is what makes a chaos schedule replayable.
 */
#ifndef FD_NEMESIS_H
#define FD_NEMESIS_H

#include <stdint.h>

#include "err.h"

#define FD_NEMESIS_MAX 64 /* nodes */

/* splitmix64: the next 64 random bits from *state (any value works). */
uint64_t fd_prng_next(uint64_t *state);
/* A uniform draw in [0, n) (n > 0), without modulo bias. */
uint64_t fd_prng_below(uint64_t *state, uint64_t n);
/* Shuffles a[0..n) (Fisher-Yates). */
void fd_prng_shuffle(uint64_t *state, int *a, int n);

struct fd_grudge {
	int n;
	uint8_t drop[FD_NEMESIS_MAX][FD_NEMESIS_MAX]; /* i drops traffic from j */
};

/* No one drops anyone. n is 0 to FD_NEMESIS_MAX. */
void fd_grudge_init(struct fd_grudge *g, int n);
/* Nodes on different sides (side[i], any int) drop each other. */
void fd_grudge_sides(struct fd_grudge *g, int n, const int *side);
/* Two halves of order (the first n/2 and the rest) cut apart, except the
 * first node of the second half, order[n/2], the bridge: it keeps seeing
 * everyone and everyone sees it. n >= 3. */
int fd_grudge_bridge(struct fd_grudge *g, int n, const int *order,
		     struct fd_err *err);
/* Majorities ring (Jepsen's majorities-ring): the nodes in a ring in
 * order; each node hears exactly a majority, m = n/2 + 1 nodes (itself
 * included) in a window of the ring centred on it, and drops the rest, so
 * that every node sees a majority but no two see the same one. For odd m
 * the grudge is symmetric; otherwise a node may drop a peer that does not
 * drop it. n >= 3. */
int fd_grudge_ring(struct fd_grudge *g, int n, const int *order, struct fd_err *err);
/* 1 when i and j drop each other, or neither does. */
int fd_grudge_symmetric(const struct fd_grudge *g, int i, int j);
/* How many nodes i hears (itself included). */
int fd_grudge_heard(const struct fd_grudge *g, int i);

/* Chaos */

enum fd_nemesis {
	FD_NEM_SPLIT,	/* two random sides of random sizes */
	FD_NEM_ISOLATE, /* one random node alone */
	FD_NEM_BRIDGE,	/* random halves with a random bridge */
	FD_NEM_RING,	/* a random majorities ring */
	FD_NEM_HALVES,	/* random halves (n/2 and the rest) */
	FD_NEM_SLOW,	/* a random non-empty set of nodes slowed */
	FD_NEM_FLAKY,	/* a random non-empty set of nodes losing messages */
	FD_NEM_KILL,	/* one random node killed, restarted at the heal */
	FD_NEM_COUNT,
};

/* "split", "isolate", ...; parse returns the value or -1. */
const char *fd_nemesis_name(int kind);
int fd_nemesis_parse(const char *s);
/* The fewest nodes a nemesis needs (2 for the partitions, 3 for bridge and
 * ring, 1 for the others). */
int fd_nemesis_min_nodes(int kind);

/* One fault of a schedule. The nodes are indexes 0..n-1. */
struct fd_chaos_fault {
	int kind;
	int n;
	int order[FD_NEMESIS_MAX]; /* a permutation: the draw the fault uses */
	int cut;		   /* split: order[0..cut) against the rest */
	int node;		   /* isolate, bridge, kill: the node */
	int nsel;		   /* slow, flaky: the nodes order[0..nsel) */
	int64_t delay_ms;	   /* slow */
	int64_t jitter_ms;
	int loss_pct; /* flaky: 1 to 100 */
};

/* Draws the next fault for n nodes (1 <= n <= FD_NEMESIS_MAX) among the
 * kinds set in mask (bit 1 << kind) that n nodes allow. Everything comes
 * from *state: the same state, n and mask give the same fault. Returns 0,
 * or -1 with err filled when no kind of mask fits n nodes. */
int fd_chaos_draw(uint64_t *state, int n, unsigned mask,
		  struct fd_chaos_fault *f, struct fd_err *err);
/* The grudge of a partition fault (split, isolate, bridge, ring, halves);
 * for the others, nobody drops anybody. */
void fd_chaos_grudge(const struct fd_chaos_fault *f, struct fd_grudge *g);

#endif
