/* fd-node pub/sub (DESIGN.md §3 "Pub/sub"): local delivery, interest-based
 * forwarding between nodes, priority channels, chunking, bounded subscriber
 * queues with gap lines.
 *
 * Client API
 *   POST /v1/publish[/TOPIC][?priority=high|normal|bulk]
 *	body: JSON lines {"topic": T, "data": V} (topic from the path when
 *	absent; a line without "data" is itself the data), or with
 *	Content-Type application/x-fd-pub the PUB frames of psframe.h (what
 *	fd-pub sends). The body may stream for as long as the client likes;
 *	each request is one publisher stream, numbered per node, whose
 *	messages get seq 1, 2, 3… (stream=S&seq=N continues stream S after
 *	seq N: fd-pub --confirm sends batches that way). When the forwarding
 *	queue to a peer is full the node stops reading the body (the
 *	publisher is slowed down; nothing is dropped). Answer: {"stream": S,
 *	"first_seq": A, "last_seq": B, "published": N, "rejected": K,
 *	"errors": [{"line"|"frame": i, "error": why}, … at most 20]};
 *	400 when K > 0 (the good ones are published all the same).
 *   GET /v1/subscribe?pattern=P[%20P2…][&group=G][&overflow=drop-oldest|
 *	drop-new|disconnect][&queue=N][&queue_bytes=SIZE][&format=jsonl|sse]
 *	streams {"type":"message","topic":T,"seq":N,"from":NODE,"stream":S,
 *	"ts":RFC3339,"data":V} lines (Server-Sent Events "data: LINE" with
 *	format=sse or Accept: text/event-stream). A full queue applies the
 *	overflow policy and the loss is reported in order by a
 *	{"type":"gap","topic":T,"missed":N} line (topic: the missed messages'
 *	topic, or the subscription's first pattern when they differ); with
 *	disconnect the gap line has "reason" and the stream ends.
 *
 * Between nodes
 *   POST /v1/cluster/interest?from=NAME&id=ID  body: a topic set
 *	(topic.h), full or delta, versioned per (sender, receiver): a delta
 *	that does not follow the last version gets 409 and the sender sends
 *	its full set. Full sets go to a member when it becomes alive (joined,
 *	restarted, back after a partition); deltas when a (pattern, group)
 *	appears or disappears. A left or forgotten (reaped) member's
 *	interest is dropped, and so is a restarted one's. A failed member's
 *	is kept: it may only be cut off (a partition), and what it misses
 *	meanwhile is owed to it (below).
 *   POST /v1/cluster/pubsub?from=NAME&id=ID&ch=C  body: MSG/MORE frames.
 *	Per peer and channel one batch request is in flight; whatever queues
 *	meanwhile goes in the next one (at most 1 MiB of frames). With
 *	--channels separate (default) high, normal and bulk each have their
 *	own queue and connection; with shared, one FIFO queue carries all.
 *	Payloads over --chunk-size travel as a MSG and MORE frames, so a
 *	batch never holds more than one chunk of a message at a time past
 *	the first. A message is forwarded once to each peer with a matching
 *	subscriber; the receiver delivers locally and never forwards.
 *	Payloads of at least --compress-min bytes are zstd-compressed (level
 *	1) when that makes them smaller.
 *	Loss between nodes is not silent either: messages a peer does not get
 *	(a failed batch, its queue dropped when it failed, publishes matching
 *	its interest while it is failed) are owed to it, counted per channel
 *	and topic (">" past 16 topics), and sent as GAP frames (psframe.h)
 *	ahead of anything else on that channel once it can be reached again;
 *	the receiver gives each local subscriber those topics match a gap
 *	line, queued after what it holds. A failed report is retried after
 *	250 ms, and nothing else goes on that channel before it.
 */
#ifndef FD_NODE_PUBSUB_H
#define FD_NODE_PUBSUB_H

#include <json-c/json.h>
#include <stddef.h>

struct node;
struct fd_member_event;

struct pubsub_opts {
	size_t max_payload;	/* --max-payload (8 MiB) */
	size_t sub_queue;	/* --sub-queue: messages per subscriber */
	size_t sub_queue_bytes; /* --sub-queue-bytes */
	int overflow;		/* --overflow: PS_DROP_OLDEST… */
	size_t chunk;		/* --chunk-size (64 KiB) */
	size_t compress_min;	/* --compress-min (0: never) */
	int shared_channel;	/* --channels shared */
	size_t peer_queue;	/* bytes queued per peer channel before
				* publishers are paused */
};

enum { PS_DROP_OLDEST, PS_DROP_NEW, PS_DISCONNECT };

void pubsub_opts_default(struct pubsub_opts *o);
/* Parses "drop-oldest"… Returns the PS_* value or -1. */
int pubsub_parse_overflow(const char *s);

int pubsub_init(struct node *n);
void pubsub_free(struct node *n);
void pubsub_add_routes(struct node *n);
void pubsub_add_info(struct node *n, struct json_object *info);
struct fd_metrics;
void pubsub_add_metrics(struct node *n, struct fd_metrics *m);
void pubsub_member_changed(struct node *n, const struct fd_member_event *ev);

#endif
