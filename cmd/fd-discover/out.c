/* Output of fd-discover: every record is built as JSON, then written either
 * as one JSON line or as one table row, so the two cannot disagree. */
#include "cli.h"
#include "clock.h"
#include "strategy.h"
#include "jsonl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct {
	int table;
	const char *strategy;
} out;

void out_init(const struct dopts *o, const char *strategy)
{
	out.table = o->table;
	out.strategy = strategy;
}

static const char *str_or(struct json_object *o, const char *key, const char *def)
{
	const char *s = fd_json_get_str(o, key);

	return s ? s : def;
}

/* EVENT  ADDR  STRATEGY  TS [ERROR]: columns padded for the common case
 * (an IPv4 address and port), never cut. */
static int emit_row(struct json_object *o)
{
	char row[2048];
	int error = strcmp(str_or(o, "type", ""), "error") == 0;
	int n;

	n = snprintf(row, sizeof(row), "%-5s %-21s %-8s %s%s%s",
		     error ? "error" : str_or(o, "event", "-"),
		     str_or(o, error ? "source" : "addr", "-"),
		     str_or(o, "strategy", "-"), str_or(o, "ts", "-"),
		     error ? " " : "", error ? str_or(o, "error", "") : "");
	if (n < 0)
		return -1;
	return fd_emit_raw(row, (size_t)n < sizeof(row) ? (size_t)n
							: sizeof(row) - 1);
}

static void emit(struct json_object *o)
{
	int rc = out.table ? emit_row(o) : fd_emit(o);

	json_object_put(o);
	if (rc < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
}

static struct json_object *record(const char *type)
{
	struct json_object *o = fd_json_record(type);

	if (!o)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	return o;
}

static void add_ts(struct json_object *o)
{
	char ts[FD_TS_LEN];

	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
}

void out_peer_meta(const char *event, const char *addr, const char *name,
		   struct json_object *meta)
{
	struct json_object *o = record("peer");

	json_object_object_add(o, "event", json_object_new_string(event));
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "addr", json_object_new_string(addr));
	json_object_object_add(o, "strategy", json_object_new_string(out.strategy));
	if (meta)
		json_object_object_add(o, "meta", json_object_get(meta));
	add_ts(o);
	emit(o);
}

void out_peer(const char *event, const char *addr)
{
	out_peer_meta(event, addr, NULL, NULL);
}

void out_error(const char *source, const char *msg)
{
	struct json_object *o = record("error");

	fd_warn("%s", msg);
	json_object_object_add(o, "strategy", json_object_new_string(out.strategy));
	json_object_object_add(o, "source", json_object_new_string(source));
	json_object_object_add(o, "error", json_object_new_string(msg));
	add_ts(o);
	emit(o);
}

void out_down(const char *addr, void *arg)
{
	const char *name = NULL;
	struct json_object *meta = NULL;

	if (arg)
		fd_peerset_get(arg, addr, &name, &meta);
	out_peer_meta("down", addr, name, meta);
}

int peer_add(struct fd_peerset *set, const char *addr)
{
	return peer_add_meta(set, addr, NULL, NULL);
}

int peer_add_meta(struct fd_peerset *set, const char *addr, const char *name,
		  struct json_object *meta)
{
	int rc = fd_peerset_add_meta(set, addr, name, meta);

	if (rc == 1)
		out_peer_meta("up", addr, name, meta);
	if (rc < 0 && errno == ENOSPC) {
		fd_warn("too many peers (at most %zu): '%s' ignored", set->max, addr);
		return -1;
	}
	if (rc < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	return 0;
}

int expect_status(const struct dopts *o, size_t count)
{
	if (!o->expect || count >= o->expect)
		return FD_EXIT_OK;
	fd_warn("found %zu of %u peers within %s", count, o->expect, o->timeout_arg);
	return FD_EXIT_TIMEOUT;
}
