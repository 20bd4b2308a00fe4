/* fd-join internals shared by the files of cmd/fd-join. */
#ifndef FD_JOIN_JOIN_H
#define FD_JOIN_JOIN_H

#include <json-c/json.h>
#include <stdint.h>

#include "client.h"

/* Addresses sent to the node in one request, at most. */
#define JOIN_BATCH 128

struct join {
	/* options */
	int quiet;
	int strict;
	long long expect; /* 0: do not wait */
	int64_t timeout_ms;
	const char *timeout_arg; /* as given, for messages */
	/* state */
	struct fd_client client;
	struct json_object *batch; /* addresses not yet sent */
	unsigned long sent;	   /* addresses sent */
	unsigned long failed;	   /* joins that failed */
	unsigned long bad;	   /* input lines skipped */
	int64_t deadline; /* --expect's end (0: --timeout from the wait) */
};

/* Prepares j for the node at addr; a malformed addr is a usage error. */
void join_init(struct join *j, const char *node);
void join_release(struct join *j);

/* Queues addr (normalized) and sends the batch when it is full. */
void join_add(struct join *j, const char *addr);
/* Sends the queued addresses, prints one "join" line for each. A node that
 * cannot be reached ends the program (exit 1, or 5 on a timeout). */
void join_flush(struct join *j);

/* Reads addresses from stdin (plain or JSON lines) and joins them,
 * sending a batch whenever the input is idle. With --expect, an idle input
 * is also the time to count the members: once enough are alive, reading
 * stops (the input may be an endless stream, "fd-discover --watch"), and so
 * it does when --timeout has passed. */
void join_stdin(struct join *j);

/* Waits until j->expect members are alive; prints the "result" line.
 * Returns FD_EXIT_OK or FD_EXIT_TIMEOUT. */
int join_wait(struct join *j);

#endif
