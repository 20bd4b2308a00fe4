/* gossip: discovery by UDP multicast heartbeats, as libcluster's Gossip
 * strategy, but authenticated. Sans I/O: message format, sealing, and the
 * cache of peers heard; the caller owns the socket (mcast.h) and clocks.
 *
 * Defaults (never changed silently, see fd-discover(1)): group
 * 233.252.1.32, port 45892 (libcluster's since 3.3, in the MCAST-TEST-NET
 * 233.252.0.0/24 of RFC 6676), IP TTL 1 (the local link), one heartbeat a
 * second.
 *
 * A message is one JSON object (at most FD_GOSSIP_PLAIN_MAX bytes):
 *   {"v":1,"type":"heartbeat","name":N,"addr":"HOST:PORT","id":HEX32,
 *    "meta":{…},"interval":SECONDS}
 *   {"v":1,"type":"leave","name":N,"addr":…,"id":…}      a node stopping
 *   {"v":1,"type":"query"}                               "who is there?"
 * sealed with the cluster key (auth.h, context "gossip": AES-256-GCM, key
 * id, time and a replay cache) unless the cluster runs without a key
 * (--insecure): then it goes as plain JSON. A node answers a query with a
 * heartbeat at once (within 100 ms), so a browser need not wait for the
 * next round.
 */
#ifndef FD_GOSSIP_H
#define FD_GOSSIP_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth.h"
#include "discover.h"
#include "err.h"

#define FD_GOSSIP_GROUP "233.252.1.32"
#define FD_GOSSIP_PORT 45892
#define FD_GOSSIP_TTL 1
#define FD_GOSSIP_INTERVAL_MS 1000
#define FD_GOSSIP_CONTEXT "gossip"
#define FD_GOSSIP_MAX 1400 /* a datagram, sealed: one Ethernet frame */
#define FD_GOSSIP_PLAIN_MAX (FD_GOSSIP_MAX - FD_SEAL_OVERHEAD)
/* A peer is gone when nothing came from it for this many of its
 * intervals (plus FD_GOSSIP_GRACE_MS), or at once when it said leave. */
#define FD_GOSSIP_MISSED 3
#define FD_GOSSIP_GRACE_MS 500

enum fd_gossip_kind {
	FD_GOSSIP_HEARTBEAT,
	FD_GOSSIP_LEAVE,
	FD_GOSSIP_QUERY,
};

struct fd_gossip_msg {
	enum fd_gossip_kind kind;
	char name[256];
	char addr[FD_PEER_ADDR_LEN]; /* normalized */
	char id[33];
	struct json_object *meta; /* owned: fd_gossip_msg_release(); NULL: {} */
	int64_t interval_ms;	  /* heartbeat: the sender's period */
};

void fd_gossip_msg_release(struct fd_gossip_msg *m);

/* The JSON text of m into out. Returns its length, or -1 with err (a field
 * invalid, or longer than cap). */
ssize_t fd_gossip_encode(const struct fd_gossip_msg *m, uint8_t *out,
			 size_t cap, struct fd_err *err);
/* Parses and checks a message (name: 1..255 bytes of UTF-8 without spaces
 * or control characters; addr: HOST:PORT; id: 32 hex digits; meta: an
 * object; interval: 0.01..3600 s; unknown fields ignored). 0, or -1 with
 * err; m is empty on error. */
int fd_gossip_decode(const uint8_t *buf, size_t len, struct fd_gossip_msg *m,
		     struct fd_err *err);

/* What became of a datagram. */
enum fd_gossip_verdict {
	FD_GOSSIP_OK,
	FD_GOSSIP_BAD_KEY,   /* sealed with a key we do not have, or forged */
	FD_GOSSIP_REPLAYED,  /* seen before, or outside the time window */
	FD_GOSSIP_UNSEALED,  /* plain, and we have a key */
	FD_GOSSIP_SEALED,    /* sealed, and we run without a key */
	FD_GOSSIP_MALFORMED, /* not a message */
};

struct fd_gossip_stats {
	uint64_t received, accepted, bad_key, replayed, unsealed, sealed, malformed;
};

/* Seals (kr with a key) or encodes as plain JSON (kr NULL or empty) into
 * out (cap at least FD_GOSSIP_MAX). now_ms: wall clock. Returns the
 * length, or -1 with err. */
ssize_t fd_gossip_pack(const struct fd_keyring *kr, const char *cluster,
		       int64_t now_ms, const struct fd_gossip_msg *m,
		       uint8_t *out, size_t cap, struct fd_err *err);
/* Opens and decodes a datagram into m: FD_GOSSIP_OK, or another verdict
 * with the reason in err (m empty). Counts it into st (may be NULL). */
enum fd_gossip_verdict fd_gossip_unpack(const struct fd_keyring *kr,
					struct fd_replay *rc, const char *cluster,
					int64_t now_ms, const uint8_t *buf,
					size_t len, struct fd_gossip_msg *m,
					struct fd_gossip_stats *st,
					struct fd_err *err);
/* The counters as {"received":…,"accepted":…,"ignored":{"bad_key":…,
 * "replayed":…,"unsealed":…,"sealed":…,"malformed":…}}: a new object. */
struct json_object *fd_gossip_stats_json(const struct fd_gossip_stats *st);
/* Packets ignored in all. */
uint64_t fd_gossip_ignored(const struct fd_gossip_stats *st);

/* Reads a key file as fd-node does (one base64 key per line, the first the
 * primary; auth.h's format): a regular file of at most 64 KiB, not
 * readable by group or others. The one function here that does I/O.
 * Returns 0, or -1 with err and *usage set when the fault is the file's
 * (its mode, its contents) rather than the system's. */
int fd_gossip_load_keyring(const char *path, struct fd_keyring *kr, int *usage,
			   struct fd_err *err);

/* Peers heard, by address */

struct fd_gossip_peers;

/* At most max peers (0: 4096). NULL with errno = ENOMEM. */
struct fd_gossip_peers *fd_gossip_peers_new(size_t max);
void fd_gossip_peers_free(struct fd_gossip_peers *p);
/* Takes a heartbeat (the peer lives until FD_GOSSIP_MISSED of its
 * intervals pass without another) or a leave (it is gone). now: a
 * monotonic clock in ms. Returns 1 when a peer is new (or its name, id or
 * meta changed), 0 otherwise, -1 with errno = ENOSPC when full. */
int fd_gossip_peers_update(struct fd_gossip_peers *p, int64_t now,
			   const struct fd_gossip_msg *m);
/* Calls cb for each live peer, by address; returns the count. */
size_t fd_gossip_peers_each(struct fd_gossip_peers *p, int64_t now,
			    void (*cb)(const char *name, const char *addr,
				       struct json_object *meta, void *arg),
			    void *arg);
/* When the next live peer expires (INT64_MAX: none). */
int64_t fd_gossip_peers_next_expiry(const struct fd_gossip_peers *p, int64_t now);

#endif
