/* fd-registry internals shared by the files of cmd/fd-registry. */
#ifndef FD_REGISTRY_REGISTRY_H
#define FD_REGISTRY_REGISTRY_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "err.h"

/* The limits of the registry (the node enforces them too). */
#define REG_NAME_MAX 255
#define REG_VALUE_MAX 65536

/* Batches: lines per request, and bytes per request body (the node takes
 * bodies up to 1 MiB). */
#define REG_BATCH_LINES 1000
#define REG_BATCH_BYTES 1000000

enum reg_cmd { REG_REGISTER, REG_LOOKUP, REG_UNREGISTER, REG_LIST, REG_WATCH };

struct reg {
	/* options */
	enum reg_cmd cmd;
	const char *node;
	int64_t timeout_ms; /* per request; watch: how long to watch (0: ever) */
	const char *timeout_arg;
	int64_t wait_ms; /* lookup --wait; -1: none */
	const char *wait_arg;
	long long count; /* watch --count; 0: none */
	const char *prefix;
	const char *on_conflict; /* NULL: the node's default */
	int quiet, table, batch, strict, replace, persistent, force;
	/* state */
	struct fd_client client;
	int header_done; /* the table header is printed */
};

/* Checks a registry name (or, with prefix set, a prefix, which may be
 * empty): 1 to 255 bytes of valid UTF-8 without control characters.
 * Returns 0, or -1 with err saying why. */
int reg_name_check(const char *s, size_t len, int prefix, struct fd_err *err);

/* The node's path for a request: base followed by "?key=value" pairs (value
 * URL-encoded; a NULL value leaves the pair out). Returns a new string the
 * caller must free(); dies when out of memory or too long. */
char *reg_path(struct reg *r, const char *base, const char *key1,
	       const char *val1, const char *key2, const char *val2);

/* Prints one entry record (a line from the node, len bytes; o its parsed
 * form or NULL) as JSON or, with --format table, as a row of the table. */
void reg_print_entry(struct reg *r, const char *line, size_t len,
		     struct json_object *o);
/* The table's header (once), for commands that print one even when empty. */
void reg_print_header(struct reg *r);

/* Prints o as one JSON line; dies when stdout cannot be written. */
void reg_emit(struct json_object *o);
void reg_emit_raw(const char *line, size_t len);

/* Dies with the exit status a failed transport deserves: 5 on a timeout,
 * else 1. */
_Noreturn void reg_die_transport(struct reg *r, const struct fd_err *err);

/* The subcommands; each returns the exit status. */
int reg_register(struct reg *r, const char *name, const char *value);
int reg_lookup(struct reg *r, const char *name);
int reg_unregister(struct reg *r, const char *name);
int reg_list(struct reg *r);
int reg_register_batch(struct reg *r);
int reg_lookup_batch(struct reg *r);
int reg_watch(struct reg *r);

#endif
