/* fd-discover internals shared by the files of cmd/fd-discover. */
#ifndef FD_DISCOVER_STRATEGY_H
#define FD_DISCOVER_STRATEGY_H

#include <stdint.h>

#include "discover.h"

struct dopts {
	int watch;
	int64_t interval_ms;
	unsigned down_after;
	int strict;
	int table;
};

/* Output: one record per line, JSON or a table row, from the same record. */
void out_init(const struct dopts *o, const char *strategy);
/* A peer event ("up" or "down"). */
void out_peer(const char *event, const char *addr);
/* A source that failed: an "error" record and the message on stderr. */
void out_error(const char *source, const char *msg);
/* fd_peerset_end() callback: prints "down" for addr. */
void out_down(const char *addr, void *arg);

/* Adds addr to the answer being built and prints "up" when it is new.
 * Returns 0, or -1 after a message when the set is full. */
int peer_add(struct fd_peerset *set, const char *addr);

/* Runs until SIGINT or SIGTERM, doing nothing else (a --watch without a
 * source that can change). Returns 0, or -1 with errno set. */
int wait_for_signal(void);

/* Strategies: each returns the exit status. */
int strategy_static(int argc, char **argv, const struct dopts *o);
int strategy_file(int argc, char **argv, const struct dopts *o);

#endif
