/* Discovery specs: one string names a strategy and its settings, as
 * go-discover and Serf's -discover do:
 *
 *   STRATEGY key=value key="a value with spaces" key='single quoted' ...
 *
 * e.g. "dns name=fd.test port=7946 resolver=127.0.0.1:5353 interval=2s".
 * "provider=STRATEGY" may stand in for the first word (go-discover's form).
 * In double quotes, \" and \\ stand for " and \; single quotes take
 * everything up to the next ' as it is. Keys are [a-z0-9_-] and unique.
 *
 * The same struct carries a libcluster topology translated into fd's terms
 * (fd_dspec_from_libcluster), so fd-discover --config, the FD_DISCOVER
 * variable and fd-node --discover all end in one form. Pure: no I/O.
 */
#ifndef FD_DSPEC_H
#define FD_DSPEC_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FD_DSPEC_MAX 32	      /* settings in one spec */
#define FD_DSPEC_MAX_LEN 4096 /* longest spec string */

struct fd_dspec {
	char *strategy;
	size_t n;
	char *keys[FD_DSPEC_MAX];
	char *vals[FD_DSPEC_MAX];
};

/* Parses s into sp (which the caller releases with fd_dspec_release, also
 * after an error). Returns 0, or -1 with err naming the problem, e.g.
 * "invalid spec: 'x' is not key=value". */
int fd_dspec_parse(struct fd_dspec *sp, const char *s, struct fd_err *err);
void fd_dspec_release(struct fd_dspec *sp);

/* Sets the strategy (copied). Returns 0, or -1 (ENOMEM). */
int fd_dspec_set_strategy(struct fd_dspec *sp, const char *strategy);
/* Sets key to val (both copied), replacing a value the key has. Returns 0,
 * or -1 with errno ENOSPC (FD_DSPEC_MAX settings) or ENOMEM. */
int fd_dspec_set(struct fd_dspec *sp, const char *key, const char *val);
/* The value of key (borrowed), or NULL when it is not set. */
const char *fd_dspec_get(const struct fd_dspec *sp, const char *key);

/* Checks that every key is one of keys (NULL-terminated) or a key every
 * strategy takes (interval, down_after). Returns 0, or -1 with err
 * "unknown key 'K' for STRATEGY (known: ...)". */
int fd_dspec_check(const struct fd_dspec *sp, const char *const *keys,
		   struct fd_err *err);

/* Typed values. Each returns 0 with *out set (def when the key is not
 * set), or -1 with err "invalid KEY 'V' (...)". */
int fd_dspec_duration(const struct fd_dspec *sp, const char *key, int64_t def,
		      int64_t min_ms, int64_t max_ms, int64_t *out,
		      struct fd_err *err);
int fd_dspec_int(const struct fd_dspec *sp, const char *key, long long def,
		 long long min, long long max, long long *out, struct fd_err *err);

/* Writes the spec back as one string (values quoted when they need it) into
 * buf. Returns 0, or -1 (ENOSPC) when it does not fit. */
int fd_dspec_format(const struct fd_dspec *sp, char *buf, size_t len);

/* libcluster topologies.
 *
 * A topology is {"strategy": NAME, "config": {...}} as in libcluster's
 * config, in JSON. NAME is a libcluster module ("Cluster.Strategy.
 * Kubernetes", with or without "Elixir.") or its last part ("Kubernetes",
 * "DNSPoll", ...), or one of fd's strategy names. Options keep libcluster's
 * names (kubernetes_selector, polling_interval, query, hosts,
 * multicast_addr, ...) and may also be fd's spec keys; values are strings,
 * numbers, booleans, or lists of strings (hosts).
 *
 * Fills sp (released by the caller, also after an error) and returns 0, or
 * returns -1 with err: an unknown strategy ("unknown strategy 'X'"), an
 * unknown option ("unknown option 'X' for Kubernetes"), an option fd does
 * not support, or a value of the wrong kind. note, when not NULL, gets a
 * short text saying what was translated, for --explain. */
int fd_dspec_from_libcluster(struct fd_dspec *sp, struct json_object *topology,
			     char *note, size_t notelen, struct fd_err *err);

#endif
