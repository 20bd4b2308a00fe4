/* Discovery sources: fd-discover's strategies run continuously inside an
 * event loop (fd-node --discover), never blocking it.
 *
 * A source is made from a spec (dspec.h): "dns name=fd.test port=7946
 * interval=2s". It polls its strategy every interval (the first poll at
 * once) and turns the answers into peer changes with struct fd_peerset
 * (discover.h), so the rules are the CLI's: a peer is up when an answer
 * names it, down after down_after answers in a row without it; a failed
 * poll or an empty answer removes nothing.
 *
 * Keys every strategy takes: interval (default 5s, libcluster's) and
 * down_after (default 3 answers).
 *
 * Built-in strategies (keys):
 *   static      addrs=HOST:PORT,...
 *   file        path=FILE                  one address per line, '#' comments
 *   exec        cmd=CMD timeout=DURATION   /bin/sh -c CMD; address or JSON
 *                                          peer lines (fd_peer_line)
 *   dns         name=NAME port=PORT resolver=IP[:PORT] basename=B
 *                                          A and AAAA through c-ares
 *   dns-srv     name=NAME resolver=IP[:PORT]  SRV, then the targets' A/AAAA
 *   kubernetes  selector= namespace= mode=endpoints|pods port= port_name=
 *               api=URL token_file= ca_file= sa_dir= basename= cached=
 *                                          the API server (k8s.h)
 *   mdns        multicast_if=IF            DNS-SD _fd._tcp.local (mdns.h)
 *   gossip      multicast_addr= port= multicast_if= multicast_ttl=
 *               key_file= cluster= insecure=true
 *                                          sealed heartbeats (gossip.h)
 *
 * Writing a strategy (how mdns or gossip browsers plug in): fill a struct
 * fd_dsource_ops and fd_dsource_register() it before the first
 * fd_dsource_new() naming it (e.g. at the start of main, or in the
 * subsystem's init). The contract:
 *
 * - start(s, spec, err): check the spec's own keys' values, set up
 *   (s->priv), no blocking I/O, and no use of s->loop yet:
 *   fd_dsource_check() starts and stops a strategy with no loop to judge a
 *   spec. Returns 0, or -1 with err (the spec is then refused: a usage
 *   error). fd_dspec_check() has already refused keys not in ops->keys.
 * - poll(s): begin one answer. The strategy reports each peer it finds with
 *   fd_dsource_add() and ends with fd_dsource_done(), or gives up with
 *   fd_dsource_fail(), exactly once per poll, at once or later from a loop
 *   callback. poll is not called again before that. A strategy that learns
 *   about peers by itself (announcements, a multicast browser) answers a
 *   poll from what it holds (what has not expired) and may call
 *   fd_dsource_kick() when something new arrives, to be polled at once.
 * - stop(s): cancel whatever is in flight (no report afterwards), free
 *   s->priv. Called once, from fd_dsource_free(), or after a start() that
 *   failed (so start may set s->priv early and leave the rest to stop).
 *
 * Sources are single-threaded, like the loop: every callback runs in it.
 */
#ifndef FD_DSOURCE_H
#define FD_DSOURCE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "discover.h"
#include "dspec.h"
#include "err.h"
#include "loop.h"

struct fd_dsource;

/* One peer as a strategy reports it and a source hands it on. */
struct fd_dpeer {
	const char *addr;	  /* normalized "host:port" / "[v6]:port" */
	const char *name;	  /* NULL: not known */
	struct json_object *meta; /* borrowed; NULL: none */
};

struct fd_dsource_ops {
	const char *name;	 /* the spec's strategy word */
	const char *const *keys; /* its own keys, NULL-terminated */
	int (*start)(struct fd_dsource *s, const struct fd_dspec *spec,
		     struct fd_err *err);
	void (*poll)(struct fd_dsource *s);
	void (*stop)(struct fd_dsource *s);
};

/* What a source tells its owner. Any callback may be NULL. */
struct fd_dsource_cbs {
	void (*up)(struct fd_dsource *s, const struct fd_dpeer *p, void *arg);
	void (*down)(struct fd_dsource *s, const struct fd_dpeer *p, void *arg);
	/* After every poll, answered (ok 1; the set may be unchanged) or not
	 * (ok 0; the set is kept as it was): the time to compare the whole set
	 * (fd_dsource_each) with reality. */
	void (*polled)(struct fd_dsource *s, int ok, void *arg);
	/* A failed poll; msg repeats only when it changed or a poll worked in
	 * between (fd_dsource_info counts them all). */
	void (*error)(struct fd_dsource *s, const char *msg, void *arg);
	void *arg;
};

struct fd_dsource {
	/* for strategies */
	struct fd_loop *loop;
	void *priv;
	int64_t interval_ms;
	/* private */
	const struct fd_dsource_ops *ops;
	struct fd_dsource_cbs cbs;
	char *spec;
	struct fd_peerset set;
	struct fd_timer timer, report;
	struct json_object *pending; /* the answer being built: [{addr,...}] */
	int polling, failed, kicked, full;
	int *alive; /* cleared when the owner frees s from a callback */
	uint64_t polls, errors;
	int64_t last_poll_wall, last_ok_wall, last_poll_ms;
	char error[256];      /* the failed poll's reason */
	char last_error[256]; /* the last reason reported ("" after a good poll) */
};

/* Adds ops to the strategies fd_dsource_new() knows (ops is borrowed and
 * must outlive every source). Returns 0, or -1 with errno EEXIST (the name
 * is taken) or ENOSPC. */
int fd_dsource_register(const struct fd_dsource_ops *ops);
/* The strategy of that name (built-in or registered), or NULL. */
const struct fd_dsource_ops *fd_dsource_find(const char *name);
/* The i-th known strategy (i from 0), or NULL past the last. */
const struct fd_dsource_ops *fd_dsource_at(size_t i);

/* Checks spec: the strategy exists, takes those keys, and its start()
 * accepts the values (it is started and stopped again, without a loop).
 * Returns 0, or -1 with err. */
int fd_dsource_check(const char *spec, struct fd_err *err);

/* Starts a source from spec in loop; its first poll runs from the loop at
 * once. cbs is copied. Returns the source, or NULL with err (a bad spec,
 * or the strategy refused to start). */
struct fd_dsource *fd_dsource_new(struct fd_loop *loop, const char *spec,
				  const struct fd_dsource_cbs *cbs,
				  struct fd_err *err);
/* Stops the source and frees it (NULL does nothing). Safe from inside its
 * own callbacks. */
void fd_dsource_free(struct fd_dsource *s);

/* Polls now if no poll is in flight, else right after the one in flight. */
void fd_dsource_kick(struct fd_dsource *s);

/* Calls fn for each peer up (the desired set). */
void fd_dsource_each(struct fd_dsource *s,
		     void (*fn)(struct fd_dsource *s, const struct fd_dpeer *p,
				void *arg),
		     void *arg);
size_t fd_dsource_count(const struct fd_dsource *s);
/* Whether addr (normalized) is in the desired set. */
int fd_dsource_has(const struct fd_dsource *s, const char *addr);
const char *fd_dsource_spec(const struct fd_dsource *s);
const char *fd_dsource_strategy(const struct fd_dsource *s);

/* Its state as a new JSON object: spec, strategy, interval, polls, errors,
 * last_poll, last_ok (RFC 3339 or null), last_error (or null), peers (the
 * count) and up (the addresses). */
struct json_object *fd_dsource_info(const struct fd_dsource *s);

/* For strategies, during a poll. fd_dsource_add() takes addr in any form
 * fd_peer_addr_norm() accepts; a bad one is skipped and returns -1 with
 * err. fd_dsource_done() ends the answer (an answer without peers counts
 * as a failed poll: "no peers found"). fd_dsource_fail() formats the
 * reason. After done or fail the poll is over for the strategy. The owner
 * hears of it from the loop afterwards (a timer), never from inside these
 * calls, so a strategy is never freed under its own feet. */
int fd_dsource_add(struct fd_dsource *s, const char *addr, const char *name,
		   struct json_object *meta, struct fd_err *err);
void fd_dsource_done(struct fd_dsource *s);
void fd_dsource_fail(struct fd_dsource *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Built-in strategies (dsource_*.c). */
extern const struct fd_dsource_ops fd_dsource_static, fd_dsource_file,
	fd_dsource_exec, fd_dsource_dns, fd_dsource_dns_srv,
	fd_dsource_kubernetes, fd_dsource_mdns, fd_dsource_gossip;

/* gossip sources started later without key_file= open heartbeats with kr
 * (borrowed: it must outlive them; a node passes its own ring, which a key
 * reload updates in place) and cluster (NULL: "fd"). kr NULL or empty:
 * none. */
struct fd_keyring;
void fd_dsource_gossip_key(const struct fd_keyring *kr, const char *cluster);
/* Says that fd_dsource_gossip_key() will be called with a key before any
 * source starts: fd_dsource_check() then accepts a gossip spec without
 * key_file= (a node checks its --discover specs before it reads its key). */
void fd_dsource_gossip_key_expected(void);

#endif
