/* fd-discover: the driver of the listening strategies (live.c) and the
 * multicast options they share. */
#ifndef FD_DISCOVER_LIVE_H
#define FD_DISCOVER_LIVE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "strategy.h"

struct fd_loop;

struct live {
	const struct dopts *o;
	struct fd_loop *loop;
	struct fd_peerset set;
	/* The strategy: calls cb for each peer its cache holds at now. */
	size_t (*each)(struct live *l, int64_t now,
		       void (*cb)(const char *name, const char *addr,
				  struct json_object *meta, void *arg),
		       void *arg);
	void *ctx;
	int full;    /* a peer did not fit the set */
	int stopped; /* SIGINT or SIGTERM */
};

/* A loop with SIGINT/SIGTERM handled and an empty set. 0, or -1 (errno). */
int live_init(struct live *l, const struct dopts *o);
/* The strategy saw its cache grow: --watch prints the new peers now;
 * one-shot with --expect stops when enough are there. */
void live_changed(struct live *l);
/* Runs the loop (the strategy has added its socket and timers) as o asks
 * and prints the one-shot set at the end. Returns the exit status, or -1
 * with errno set. */
int live_run(struct live *l);
void live_release(struct live *l);

#endif
