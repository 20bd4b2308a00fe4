/* fd-node --announce mdns|gossip: the node makes itself known on the local
 * link, for fd-discover mdns|gossip (and other browsers) to find.
 *
 *   mdns (mdns.c): a DNS-SD responder for "<node name>._fd._tcp.local"
 *	(libcommon/mdns.h): probes the name at start (a name another node
 *	holds becomes "<name> (2)", RFC 6762 §9, with a warning in the log),
 *	announces twice a second apart, answers queries, says goodbye (TTL 0)
 *	when the node leaves or stops. SRV port: the node's port; A/AAAA: its
 *	advertised address; TXT: id=, version= and the --meta pairs.
 *   gossip (gossip.c): a heartbeat {name, addr, id, meta, interval} to the
 *	group every --gossip-interval (at once at start, and within 100 ms
 *	of a query), sealed with the cluster key (--key-file) or plain with
 *	--insecure; a leave message when the node leaves or stops.
 *	Datagrams from the group that do not open are counted (/v1/info
 *	"announce"."gossip") and logged, at most once per kind every 10 s.
 *
 * Both: IPv4 multicast only; the interface by --multicast-if (default: the
 * routing table's pick). /v1/info has an "announce" object with the state
 * and counters of each.
 */
#ifndef FD_NODE_ANNOUNCE_H
#define FD_NODE_ANNOUNCE_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "mcast.h"

#define ANNOUNCE_MDNS 1
#define ANNOUNCE_GOSSIP 2
#define ANNOUNCE_MAX_META 32

struct announce_opts {
	unsigned what;		    /* ANNOUNCE_* bits */
	struct fd_mcast_opts mcast; /* gossip's group, port, TTL; the interface */
	int64_t gossip_interval_ms;
	const char *meta[ANNOUNCE_MAX_META]; /* "KEY=VALUE" */
	int nmeta;
};

struct node;
struct mdns_announcer;
struct gossip_announcer;

void announce_opts_default(struct announce_opts *o);
/* Option parsing for main.c: each returns 0, or -1 with a message in why. */
int announce_parse_what(struct announce_opts *o, const char *arg, char *why,
			size_t len);
int announce_parse_meta(struct announce_opts *o, const char *arg, char *why,
			size_t len);

/* Starts what --announce asks (after the node is bound). Dies on a bad
 * setup (exit 2: a name or meta that cannot be announced; 1: no socket). */
void announce_start(struct node *n);
/* The node leaves: goodbyes now (later calls do nothing). */
void announce_leave(struct node *n);
/* Goodbyes if not said yet; frees everything. */
void announce_free(struct node *n);
void announce_add_info(struct node *n, struct json_object *info);
/* Start-up failed: tells a --detach parent, then exits with code. */
noreturn void announce_die(struct node *n, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* mdns.c, gossip.c: _start returns NULL when out of memory and dies with
 * a message on any other failure. */
struct mdns_announcer *mdns_announce_start(struct node *n);
void mdns_announce_leave(struct mdns_announcer *a);
void mdns_announce_free(struct mdns_announcer *a);
struct json_object *mdns_announce_info(struct mdns_announcer *a);

/* gossip.c */
struct gossip_announcer *gossip_announce_start(struct node *n);
void gossip_announce_leave(struct gossip_announcer *a);
void gossip_announce_free(struct gossip_announcer *a);
struct json_object *gossip_announce_info(struct gossip_announcer *a);

#endif
