/* The history of a run and its checker (fd-partition check), in the spirit
 * of Jepsen's set-full checker: what was acknowledged must be there in the
 * end, or its absence must have been reported.
 *
 * Pure: no I/O, no clock, no printing. The caller feeds records (parsed
 * JSON lines) in the order they were written, then asks for a verdict.
 *
 * Records (by "type"; other types are ignored and counted):
 *   entry      without "snapshot": an acknowledged registration, as
 *              `fd-registry register` prints it ({"name", "value", ...}),
 *              or with "unregistered": true an acknowledged unregistration.
 *              With "snapshot": NODE, one entry of NODE's final state, as
 *              `fd-registry list` prints it (tagged by the caller).
 *   event      "event": "conflict" ({"name", "winner", "loser"}, from
 *              `fd-registry watch`): a registration that lost a conflict.
 *   published  an acknowledged publish, as `fd-pub --confirm` prints it:
 *              {"topic", "stream", "seq"[, "node"]}. Without "node" it
 *              matches a message of any node (one publishing node only).
 *   message    a message a subscriber received, as fd-sub prints it:
 *              {"topic", "from", "stream", "seq"}.
 *   gap        a subscriber's report of missed messages: {"topic",
 *              "missed": N|null[, "reason"]}.
 *   subscriber {"sub", "patterns": [...]}: the patterns of a subscriber
 *              (without one, a subscriber is expected to get every publish).
 *   fault      a fault applied or healed (fd-partition): its "ts" dates the
 *              last heal ("action": "heal", "event": "heal" as chaos
 *              prints, or "healed": true).
 * message, gap and subscriber records belong to a subscriber: the record's
 * "sub" field, else the sub argument of fd_history_add (one file per
 * subscriber).
 *
 * Verdict rules:
 *   registrations  the last acknowledged operation on each name decides
 *     what every snapshot node must hold: the acknowledged value, or no
 *     entry after an unregistration. A name holding another value, or
 *     none, is explained when the acknowledged value lost a conflict: a
 *     conflict event names it as loser, the entry lists it among its
 *     "conflicts", or the winner is another acknowledged registration of
 *     the name. Otherwise it is lost. Nodes that disagree about a name are
 *     divergent. Entries nobody acknowledged are unexpected (counted only:
 *     a registration may succeed and its acknowledgement be lost).
 *   publishes  every acknowledged publish whose topic a subscriber's
 *     patterns match must reach it once. One that did not is covered by a
 *     gap line of that subscriber whose topic matches it (the topic, or a
 *     pattern), placed between the messages of the same publisher stream
 *     received before and after it; a gap covers at most "missed" messages
 *     (any number when missed is null or the gap has a reason). Otherwise
 *     it is lost. Received twice: duplicated; received out of stream order:
 *     reordered; received without an acknowledgement: unexpected (counted
 *     only). Valid: nothing lost, duplicated, reordered or divergent.
 */
#ifndef FD_HISTORY_H
#define FD_HISTORY_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FD_HISTORY_SUB_MAX 255	   /* bytes of a subscriber's name */
#define FD_HISTORY_SUBS_MAX 1024   /* subscribers in one history */
#define FD_HISTORY_NODES_MAX 1024  /* snapshot nodes */
#define FD_HISTORY_LOST_SHOWN 10   /* lost items listed in the verdict */
#define FD_HISTORY_PATTERNS_MAX 64 /* patterns of one subscriber */

struct fd_history;

/* A new empty history, or NULL (ENOMEM). */
struct fd_history *fd_history_new(void);
/* fd_history_free(NULL) does nothing. */
void fd_history_free(struct fd_history *h);

/* Adds one record (borrowed; nothing of it is kept). sub names the
 * subscriber of message/gap/subscriber records without a "sub" field
 * (NULL: none). Returns 1 when the record was taken, 0 when its type is
 * not one the checker uses, -1 with err saying why it is malformed (a
 * known type with a missing or ill-typed field, a message without a
 * subscriber, too many subscribers) or ENOMEM. */
int fd_history_add(struct fd_history *h, struct json_object *rec,
		   const char *sub, struct fd_err *err);

/* The final state of node: one entry record (as `fd-registry list` prints
 * it), or, with rec NULL, a node whose registry is empty (so that a node
 * with no entries still counts). Returns 0, or -1 with err. */
int fd_history_snapshot(struct fd_history *h, const char *node,
			struct json_object *rec, struct fd_err *err);
/* Forgets every snapshot (to take new ones and check again). */
void fd_history_clear_snapshots(struct fd_history *h);

/* The wall-clock time (microseconds) of the last heal in the history, or
 * INT64_MIN when there is none. */
int64_t fd_history_last_heal(const struct fd_history *h);

/* The verdict: a new {"type":"check","valid":…,"registrations":{…},
 * "publishes":{…},"lost":[…],"faults":N,"last_heal":TS,"ignored":N}
 * object the caller must json_object_put(), or NULL (ENOMEM). Without any
 * snapshot the registrations are not checked ("checked": false). May be
 * called again after more records or snapshots. */
struct json_object *fd_history_check(struct fd_history *h);

/* Whether a verdict says valid. */
int fd_history_valid(struct json_object *verdict);

#endif
