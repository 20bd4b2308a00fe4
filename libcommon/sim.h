/* An in-process, deterministic network simulator for the membership core.
 *
 * N node slots, each running a struct fd_member on one virtual clock (ms).
 * Datagrams travel through an event queue with a random latency in
 * [latency_min, latency_max] and are lost with probability loss; nodes in
 * different partition groups cannot reach each other (datagrams and
 * push-pulls); single links can be blocked. Push-pull requests are carried
 * out as the node shell would over TCP: the requester's state reaches the
 * peer after one latency, the peer merges it and answers with its own
 * state, which the requester merges one latency later; they are not lost,
 * but fail when the peer is unreachable.
 *
 * Node i is named "n<i>" and listens on "10.a.b.c:p", where a.b.c encodes
 * i and the port its generation: a restarted node gets a new id, a higher
 * incarnation (the virtual clock) and a new address. Everything is driven
 * by the seed: the same calls give the same run. No I/O, no clocks.
 */
#ifndef FD_SIM_H
#define FD_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "member.h"

#define FD_SIM_MAX_NODES 65536
#define FD_SIM_MAX_QUEUE (1u << 24) /* events in flight; more are dropped */

struct fd_sim_config {
	unsigned nodes; /* slots, 1..FD_SIM_MAX_NODES */
	uint64_t seed;
	struct fd_member_config member;
	int64_t latency_min, latency_max; /* one way, ms */
	double loss;			  /* datagram loss probability */
};

struct fd_sim_stats {
	uint64_t sent; /* datagrams handed to the network */
	uint64_t delivered;
	uint64_t lost;	    /* random loss */
	uint64_t blocked;   /* partition, blocked link, dead or moved node */
	uint64_t pushpulls; /* completed exchanges */
	uint64_t pushpull_failed;
	uint64_t events; /* member events seen */
	uint64_t queue_full;
};

/* Called for every event of every node, in order. */
typedef void (*fd_sim_event_fn)(void *arg, unsigned node,
				const struct fd_member_event *ev, int64_t now);

struct fd_sim;

/* Returns a new simulator at time 0 with no node running, or NULL (errno
 * EINVAL for a bad config, ENOMEM). */
struct fd_sim *fd_sim_new(const struct fd_sim_config *cfg);
void fd_sim_free(struct fd_sim *s);

void fd_sim_on_event(struct fd_sim *s, fd_sim_event_fn fn, void *arg);

/* Starts node i now (a new instance if it ran before: new id, address and
 * incarnation) and makes it join the nodes listed in seeds (those running;
 * none: it starts alone). Returns 0, or -1 (EINVAL: bad index, EBUSY:
 * already running, ENOMEM). */
int fd_sim_start(struct fd_sim *s, unsigned i, const unsigned *seeds, unsigned nseeds);
/* Gives slot i another name for its next start (at most 15 bytes), e.g.
 * to start two nodes under one name. Returns 0, or -1 (EINVAL). */
int fd_sim_set_name(struct fd_sim *s, unsigned i, const char *name);
/* Makes running node i join node j now (a push-pull). */
int fd_sim_join(struct fd_sim *s, unsigned i, unsigned j);
/* Crashes node i (no goodbye); its in-flight traffic is dropped. */
void fd_sim_kill(struct fd_sim *s, unsigned i);
/* Node i leaves gracefully and stops drain_ms later. */
void fd_sim_leave(struct fd_sim *s, unsigned i, int64_t drain_ms);

/* Partitions: nodes reach each other only within the same group (all start
 * in group 0). heal puts every node back into group 0. */
void fd_sim_set_group(struct fd_sim *s, unsigned i, unsigned group);
void fd_sim_heal(struct fd_sim *s);
/* Blocks (on = 1) or unblocks the link between a and b, both directions.
 * At most 256 blocked links; returns -1 (ENOBUFS) beyond. */
int fd_sim_block(struct fd_sim *s, unsigned a, unsigned b, int on);
void fd_sim_set_loss(struct fd_sim *s, double loss);
/* Stalls node i until time t (a CPU-starved process): it handles nothing,
 * its input waits, then it catches up. */
void fd_sim_stall(struct fd_sim *s, unsigned i, int64_t until);

/* Runs everything due up to time t (>= now); now becomes t. */
void fd_sim_run_until(struct fd_sim *s, int64_t t);
int64_t fd_sim_now(const struct fd_sim *s);

/* Node i's core (borrowed), or NULL when it does not run. */
struct fd_member *fd_sim_member(struct fd_sim *s, unsigned i);
unsigned fd_sim_nodes(const struct fd_sim *s);
int fd_sim_running(const struct fd_sim *s, unsigned i);
/* Number of running nodes that have not left. */
unsigned fd_sim_live(const struct fd_sim *s);
/* 1 when every live node sees every live node (current instance) alive and
 * no other member alive or suspect. O(n^2): call it sparingly. */
int fd_sim_converged(const struct fd_sim *s);
/* How many live nodes other than i see node i's current instance in state
 * st. */
unsigned fd_sim_seen_as(const struct fd_sim *s, unsigned i, enum fd_member_state st);
const struct fd_sim_stats *fd_sim_stats(const struct fd_sim *s);

/* Name and address of node i's current (or last) instance. */
const char *fd_sim_name(const struct fd_sim *s, unsigned i);
const char *fd_sim_addr(const struct fd_sim *s, unsigned i);

#endif
