/* Cluster membership: SWIM with the Lifeguard extensions, sans I/O.
 *
 * A struct fd_member is one node's view of the cluster. It never touches a
 * socket or a clock and never prints: the shell (fd-node, the simulator, a
 * test) feeds it the current time and the datagrams it receives, runs its
 * timers, and drains what it wants sent and what it wants told:
 *
 *	m = fd_member_new(&cfg, "n1", id, "10.0.0.1:4380", wall_ms, seed, now);
 *	fd_member_join(m, now, "10.0.0.2:4380");
 *	loop:
 *		fd_member_recv(m, now, from, buf, len);   (for each datagram)
 *		fd_member_tick(m, now);                   (when the deadline passed)
 *		while (fd_member_next_output(m, &out)) send out.buf to out.addr,
 *			or for FD_MEMBER_OUT_PUSHPULL do the push-pull exchange;
 *		while (fd_member_next_event(m, &ev)) report ev;
 *		sleep until fd_member_next_deadline(m) or input;
 *
 * Given the same inputs and seed, it produces the same outputs.
 *
 * Protocol. Every probe interval a member is probed (round-robin over a
 * list shuffled after each round): a ping, then after the probe timeout
 * ping-reqs to k helpers (who nack when they get no answer either), and at
 * the end of the interval, without any ack, the member is suspected. A
 * suspicion turns into "failed" after a timeout that starts at
 * suspicion_max_mult * min and shrinks towards min = suspicion_mult *
 * max(1, log10(n + 1)) * probe_interval as independent confirmations
 * arrive (suspicion_mult - 2 of them are wanted). A member that hears it is
 * suspected or failed refutes by raising its incarnation. Local health
 * awareness: missed acks and nacks and refutations raise a score s in
 * [0, awareness_max), successful probes lower it; probe interval and
 * timeout are multiplied by (s + 1). Every state change is piggybacked on
 * outgoing datagrams, and sent in gossip datagrams to gossip_fanout random
 * members (including members failed less than gossip_to_dead ago) every
 * gossip interval, each update retransmit_mult * ceil(log10(n + 1)) times,
 * least-sent and newest first; a newer update about a member replaces the
 * queued one. Every datagram carries its sender's own record, so any
 * contact introduces the sender, and a sender whose record is outranked by
 * ours (a member we hold failed that missed the news, or a second instance
 * under a held name) is told at once. A push-pull of the full state with a
 * random member runs every pushpull_interval (scaled up above 32 members;
 * the first ones come sooner: 5 probe intervals after start, doubling), and
 * one with a random failed member every reconnect_interval, which merges
 * the two sides of a healed partition; failed and left members are
 * forgotten after reap_timeout.
 *
 * Identity. Members are keyed by name. The 16-byte id tells instances
 * apart: an alive announcement under a known name with another id replaces
 * the entry when the entry is failed or left or has a lower incarnation (a
 * restarted node, possibly on a new address). When a running node hears its
 * own name announced with another id at an incarnation >= its own, it
 * refutes and emits FD_MEMBER_EV_CONFLICT. Pass the wall clock in ms as
 * incarnation_start so that a restarted node outranks its previous
 * instance; otherwise a restart before the old instance was declared
 * failed looks like a conflict until it is.
 *
 * Memory is bounded: at most cfg.max_members members (<= FD_MEMBER_MAX),
 * FD_MEMBER_OUT_MAX queued outputs (more are dropped and counted),
 * FD_MEMBER_EV_MAX queued events (the oldest are dropped and counted).
 */
#ifndef FD_MEMBER_H
#define FD_MEMBER_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define FD_MEMBER_ID_LEN FD_WIRE_ID_LEN
#define FD_MEMBER_NAME_MAX FD_WIRE_NAME_MAX
#define FD_MEMBER_ADDR_MAX FD_WIRE_ADDR_MAX
#define FD_MEMBER_MAX 65536
#define FD_MEMBER_OUT_MAX 4096
#define FD_MEMBER_EV_MAX 8192

enum fd_member_state {
	FD_MEMBER_ALIVE = FD_WIRE_ALIVE,
	FD_MEMBER_SUSPECT = FD_WIRE_SUSPECT,
	FD_MEMBER_FAILED = FD_WIRE_FAILED,
	FD_MEMBER_LEFT = FD_WIRE_LEFT,
	FD_MEMBER_NONE = 4, /* not in the table: before it was known, after reap */
};

/* All times in milliseconds. */
struct fd_member_config {
	int64_t probe_interval;
	int64_t probe_timeout;	  /* direct ping, before ping-reqs; keep it
				    * <= probe_interval / 2 so helpers' nacks
				    * (sent 0.8 probe_timeout after they ask)
				    * arrive before the probe ends */
	unsigned indirect_checks; /* k helpers asked to ping-req */
	double suspicion_mult;	  /* may be fractional (lan: 1.5) */
	unsigned suspicion_max_mult;
	unsigned retransmit_mult; /* lambda */
	int64_t gossip_interval;
	unsigned gossip_fanout;
	int64_t gossip_to_dead; /* keep gossiping to a failed member this long */
	int64_t pushpull_interval;  /* 0: no periodic push-pull */
	int64_t reconnect_interval; /* 0: never retry failed members */
	int64_t reap_timeout;	/* forget failed / left members after this */
	unsigned awareness_max; /* Lifeguard multiplier cap (>= 1) */
	unsigned max_members;	/* table cap, <= FD_MEMBER_MAX */
};

/* Fills cfg for "local" (one host, ~5x faster than lan), "lan" (memberlist
 * defaults) or "wan". Returns 0, or -1 (errno EINVAL) for another name. */
int fd_member_config_profile(struct fd_member_config *cfg, const char *profile);
/* Returns 0 when cfg is usable, else -1 (EINVAL): positive intervals,
 * probe_timeout < probe_interval, caps within bounds. */
int fd_member_config_check(const struct fd_member_config *cfg);

struct fd_member;

/* Creates a node's view holding only itself, alive at incarnation_start.
 * name and addr must pass fd_wire_name_ok / fd_wire_addr_ok. Returns NULL
 * with errno EINVAL (bad argument or config) or ENOMEM. Free with
 * fd_member_free (NULL is fine). */
struct fd_member *fd_member_new(const struct fd_member_config *cfg, const char *name,
				const uint8_t id[FD_MEMBER_ID_LEN],
				const char *addr, uint64_t incarnation_start,
				uint64_t rng_seed, int64_t now);
void fd_member_free(struct fd_member *m);

/* Handles one datagram received from from_addr (the socket's view, used to
 * answer). Returns 0, or -1 when it could not be decoded (counted in
 * stats: rx_version for another protocol version, rx_bad otherwise). */
int fd_member_recv(struct fd_member *m, int64_t now, const char *from_addr,
		   const void *buf, size_t len);

/* Runs the timers due at now. Calling it early or often is harmless. */
void fd_member_tick(struct fd_member *m, int64_t now);

/* The time tick must next be called at (absolute ms; may be <= now when
 * work is already due). Input may make it earlier: ask again after recv. */
int64_t fd_member_next_deadline(const struct fd_member *m);

/* Queues a push-pull (join) request to addr. Returns 0, or -1 (EINVAL bad
 * addr, ENOBUFS output queue full). */
int fd_member_join(struct fd_member *m, int64_t now, const char *addr);

/* Announces that this node leaves: it is "left" from now on, stops probing
 * and push-pulling, keeps answering pings and gossiping so the news spreads
 * (a first gossip round goes out at once). The shell stops after a short
 * drain (e.g. a few gossip intervals, or when fd_member_pending_broadcasts
 * reaches 0). Idempotent. */
void fd_member_leave(struct fd_member *m, int64_t now);
/* Number of updates still queued for retransmission. */
size_t fd_member_pending_broadcasts(const struct fd_member *m);

/* The full state for a push-pull: a new buffer in *out (caller free()s it)
 * of *len bytes, at most FD_WIRE_PP_MAX members. join marks a joiner's
 * request. Returns 0, or -1 (ENOMEM). The side that receives a push-pull
 * calls fd_member_pushpull_merge first, then encodes its answer, so the
 * answer carries any refutation the merge caused. */
int fd_member_pushpull_encode(struct fd_member *m, int join, uint8_t **out,
			      size_t *len);
/* Merges a remote state. Returns 0, or -1 (errno as fd_wire_pp_open) when
 * it could not be decoded (counted in stats.pushpull_bad). */
int fd_member_pushpull_merge(struct fd_member *m, int64_t now, const void *buf,
			     size_t len);

enum fd_member_out_kind {
	FD_MEMBER_OUT_DGRAM = 1,    /* send buf[0..len) to addr over UDP */
	FD_MEMBER_OUT_PUSHPULL = 2, /* push-pull with addr (join: first contact) */
};

struct fd_member_out {
	enum fd_member_out_kind kind;
	char addr[FD_MEMBER_ADDR_MAX + 1];
	int join;
	size_t len;
	uint8_t buf[FD_WIRE_MTU];
};

/* Moves the oldest queued output into *out. Returns 1, or 0 when none. */
int fd_member_next_output(struct fd_member *m, struct fd_member_out *out);

enum fd_member_event_type {
	/* A member's state, id or address changed. old_state is
	 * FD_MEMBER_NONE for a new member, new_state FD_MEMBER_NONE when it was
	 * reaped. restarted: the id changed (a new instance of that name). */
	FD_MEMBER_EV_STATE = 1,
	/* Another instance (id, addr, incarnation) announces our name while we
	 * run. We refuted. newcomer is 1 when we are most likely the newer of
	 * the two (the first claim we saw refuted ours: it carried exactly our
	 * incarnation + 1, or we had outranked that name's older record): the
	 * shell should then exit with "name already in use". The incumbent
	 * gets newcomer 0 and keeps refuting, so it keeps its name. */
	FD_MEMBER_EV_CONFLICT = 2,
};

struct fd_member_event {
	enum fd_member_event_type type;
	char name[FD_MEMBER_NAME_MAX + 1];
	uint8_t id[FD_MEMBER_ID_LEN];
	char addr[FD_MEMBER_ADDR_MAX + 1];
	enum fd_member_state old_state, new_state;
	uint64_t incarnation;
	int64_t time;
	int restarted;
	int newcomer;
};

/* Moves the oldest queued event into *ev. Returns 1, or 0 when none. */
int fd_member_next_event(struct fd_member *m, struct fd_member_event *ev);

/* A member as seen now. name and addr are borrowed: valid until the next
 * call that takes a time (recv, tick, join, leave, merge). */
struct fd_member_info {
	const char *name;
	const uint8_t *id;
	const char *addr;
	enum fd_member_state state;
	uint64_t incarnation;
	int64_t since; /* when it entered this state */
};

/* Members in the table, this node included. */
size_t fd_member_size(const struct fd_member *m);
/* The i-th member (0 <= i < size; 0 is this node). The order changes with
 * every call that takes a time. Returns 0, or -1 when i is out of range. */
int fd_member_at(const struct fd_member *m, size_t i, struct fd_member_info *out);
/* Looks a member up by name. Returns 0, or -1 when unknown. */
int fd_member_find(const struct fd_member *m, const char *name,
		   struct fd_member_info *out);
/* Members in a state (this node included when it is in that state). */
unsigned fd_member_count(const struct fd_member *m, enum fd_member_state s);
/* This node's incarnation and Lifeguard health score (0 = healthy, up to
 * awareness_max - 1). */
uint64_t fd_member_incarnation(const struct fd_member *m);
unsigned fd_member_health(const struct fd_member *m);
/* The probe interval / timeout currently used (scaled by health). */
int64_t fd_member_probe_interval(const struct fd_member *m);

/* Quorum: alive counts alive and suspect members (this node included);
 * expected adds the failed ones (left members are not expected back,
 * reaped ones are forgotten). partitioned = alive is not a majority of
 * expected. The shell decides what to do with it. */
struct fd_member_quorum {
	unsigned alive;
	unsigned expected;
	int partitioned;
};
void fd_member_quorum(const struct fd_member *m, struct fd_member_quorum *q);

struct fd_member_stats {
	uint64_t rx;	     /* datagrams handed to recv */
	uint64_t rx_bad;     /* undecodable */
	uint64_t rx_version; /* another protocol version */
	uint64_t rx_stale;   /* acks / nacks for nothing we wait for */
	uint64_t rx_not_me;  /* pings for another instance */
	uint64_t tx;	     /* datagrams queued */
	uint64_t tx_bytes;
	uint64_t tx_dropped; /* outputs dropped: queue full */
	uint64_t probes;
	uint64_t probe_failed; /* no ack at all: target suspected */
	uint64_t ping_reqs;    /* ping-reqs we sent */
	uint64_t nacks;	       /* nacks we received */
	uint64_t refutes;
	uint64_t conflicts;
	uint64_t pushpull_tx; /* push-pull requests queued */
	uint64_t pushpull_rx; /* states merged */
	uint64_t pushpull_bad;
	uint64_t ev_dropped;
	uint64_t members_dropped;  /* announcements ignored: table full */
	uint64_t indirect_dropped; /* ping-reqs ignored: too many in flight */
};
const struct fd_member_stats *fd_member_stats(const struct fd_member *m);

/* Name of a state: "alive", "suspect", "failed", "left", "none". */
const char *fd_member_state_name(enum fd_member_state s);

#endif
