/* register --batch and lookup --batch: stdin records go to the node in
 * chunks (REG_BATCH_LINES lines or REG_BATCH_BYTES bytes, and whenever stdin
 * has nothing more waiting) as one ndjson POST each; the node answers one
 * line per record, in order, which is printed as it arrives. Output is held
 * (not flushed per line) while more input is waiting. */
#include "buf.h"
#include "cli.h"
#include "jsonl.h"
#include "registry.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct batch {
	struct reg *r;
	const char *path; /* where chunks go */
	const char *what; /* "register", "look up": for messages */
	struct fd_buf body;
	unsigned long lineno[REG_BATCH_LINES]; /* stdin line of each record */
	size_t n;
	size_t answered; /* result lines of the current chunk */
	/* counts, for the exit status */
	unsigned long taken, bad, failed;
};

static _Noreturn void batch_die(struct batch *b, struct fd_jsonl_reader *rd,
				int code, const char *msg)
{
	fd_buf_release(&b->body);
	if (rd)
		fd_jsonl_reader_release(rd);
	fd_client_release(&b->r->client);
	fd_die(code, "%s", msg);
}

static void append(struct batch *b, const char *s, size_t len)
{
	if (fd_buf_append(&b->body, s, len) < 0)
		batch_die(b, NULL, FD_EXIT_RUNTIME, "out of memory");
}

/* An error result: the line number becomes stdin's; counted by status. */
static void result_error(struct batch *b, struct json_object *o)
{
	unsigned long lineno = b->lineno[b->answered];
	const char *msg = fd_json_get_str(o, "error");
	long long status = fd_json_get_int(o, "status", 0);

	if (status == 409)
		b->taken++;
	else if (status == 400 || status == 413)
		b->bad++;
	else
		b->failed++;
	fd_warn("stdin: line %lu: %s", lineno, msg ? msg : "failed");
	json_object_object_add(o, "line", json_object_new_int64((int64_t)lineno));
	if (!b->r->quiet)
		reg_emit(o);
}

static int result_line(const char *line, size_t len, void *arg)
{
	static const char entry[] = "{\"type\":\"entry\"";
	struct batch *b = arg;
	struct json_object *o;
	const char *type;

	if (b->answered >= b->n) {
		b->answered++;
		return 0; /* counted, and reported after the chunk */
	}
	if (len >= sizeof(entry) - 1 && memcmp(line, entry, sizeof(entry) - 1) == 0) {
		/* The common case, printed as it came. */
		if (!b->r->quiet)
			reg_print_entry(b->r, line, len, NULL);
		b->answered++;
		return 0;
	}
	o = fd_json_parse(line, len, NULL);
	type = fd_json_get_str(o, "type");
	if (type && strcmp(type, "error") == 0) {
		result_error(b, o);
	} else if (type && strcmp(type, "entry") == 0) {
		if (!b->r->quiet)
			reg_print_entry(b->r, NULL, 0, o);
	} else {
		fd_warn("stdin: line %lu: unexpected answer from the node: %.*s",
			b->lineno[b->answered], (int)(len > 200 ? 200 : len), line);
		b->failed++;
	}
	json_object_put(o);
	b->answered++;
	return 0;
}

/* Sends the queued records and prints the answers. */
static void batch_send(struct batch *b, struct fd_jsonl_reader *rd)
{
	struct fd_client_lines l = {
		.method = "POST",
		.path = b->path,
		.content_type = "application/x-ndjson",
		.on_line = result_line,
		.arg = b,
	};
	struct fd_err err;
	char msg[512];

	if (b->n == 0)
		return;
	b->answered = 0;
	l.body = b->body.data;
	l.len = b->body.len;
	if (fd_client_lines(&b->r->client, &l, &err) < 0) {
		int code = errno == ETIMEDOUT ? FD_EXIT_TIMEOUT : FD_EXIT_RUNTIME;

		if (l.status == 0 || l.timed_out)
			snprintf(msg, sizeof(msg), "%s", err.msg);
		else
			snprintf(msg, sizeof(msg), "unable to %s: %s", b->what,
				 err.msg);
		batch_die(b, rd, code, msg);
	}
	if (b->answered != b->n) {
		snprintf(msg, sizeof(msg),
			 "unexpected answer from the node: %zu results for %zu records",
			 b->answered, b->n);
		batch_die(b, rd, FD_EXIT_RUNTIME, msg);
	}
	b->n = 0;
	fd_buf_clear(&b->body);
}

/* Ends the record just appended to the body. */
static void batch_add(struct batch *b, unsigned long lineno)
{
	b->lineno[b->n++] = lineno;
	append(b, "\n", 1);
}

/* True when stdin has nothing more waiting: time to send what is queued. */
static int input_idle(const struct fd_jsonl_reader *rd)
{
	struct pollfd p = {.fd = rd->fd, .events = POLLIN};

	if (fd_jsonl_pending(rd))
		return 0;
	return poll(&p, 1, 0) <= 0;
}

/* The JSON text of a string (quoted, escaped) appended to the body. */
static void append_json(struct batch *b, struct json_object *o)
{
	size_t len;
	const char *s = o ? fd_json_str(o, &len) : "null";

	append(b, s, o ? len : 4);
}

/* Makes room for a record of about len bytes. */
static void reserve(struct batch *b, struct fd_jsonl_reader *rd, size_t len)
{
	if (b->n == REG_BATCH_LINES ||
	    (b->n > 0 && b->body.len + len > REG_BATCH_BYTES))
		batch_send(b, rd);
}

static int get_bool(struct json_object *rec, const char *key, int def, int *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(rec, key, &v)) {
		*out = def;
		return 0;
	}
	if (!json_object_is_type(v, json_type_boolean))
		return -1;
	*out = json_object_get_boolean(v);
	return 0;
}

/* Checks a register record and queues it; -1 with err for a bad one. */
static int register_record(struct batch *b, struct fd_jsonl_reader *rd,
			   struct json_object *rec, struct fd_err *err)
{
	struct reg *r = b->r;
	struct json_object *name, *value = NULL, *oc;
	struct fd_err why;
	const char *on_conflict = r->on_conflict;
	size_t vlen = 4, nlen;
	int replace, persistent;

	if (!json_object_object_get_ex(rec, "name", &name) ||
	    !json_object_is_type(name, json_type_string))
		return fd_err_set(err, "no \"name\" string in the record");
	if (reg_name_check(json_object_get_string(name),
			   (size_t)json_object_get_string_len(name), 0, &why) < 0)
		return fd_err_set(err, "invalid name: %s", why.msg);
	if (json_object_object_get_ex(rec, "value", &value) && value)
		fd_json_str(value, &vlen);
	if (vlen > REG_VALUE_MAX)
		return fd_err_set(err, "value larger than %d bytes", REG_VALUE_MAX);
	if (get_bool(rec, "replace", r->replace, &replace) < 0)
		return fd_err_set(err, "\"replace\" is not a boolean");
	if (get_bool(rec, "persistent", r->persistent, &persistent) < 0)
		return fd_err_set(err, "\"persistent\" is not a boolean");
	if (json_object_object_get_ex(rec, "on_conflict", &oc)) {
		on_conflict = json_object_is_type(oc, json_type_string)
				      ? json_object_get_string(oc)
				      : "";
		if (strcmp(on_conflict, "yield") && strcmp(on_conflict, "keep"))
			return fd_err_set(
				err, "\"on_conflict\" is not \"yield\" or \"keep\"");
	}
	nlen = (size_t)json_object_get_string_len(name);
	reserve(b, rd, vlen + 2 * nlen + 80);
	append(b, "{\"name\":", 8);
	append_json(b, name);
	append(b, ",\"value\":", 9);
	append_json(b, value);
	if (replace)
		append(b, ",\"replace\":true", 15);
	if (persistent)
		append(b, ",\"persistent\":true", 18);
	if (on_conflict) {
		append(b, ",\"on_conflict\":\"", 16);
		append(b, on_conflict, strlen(on_conflict));
		append(b, "\"", 1);
	}
	append(b, "}", 1);
	batch_add(b, rd->lineno);
	return 0;
}

/* Checks a lookup record (a plain name or {"name":...}) and queues it. */
static int lookup_record(struct batch *b, struct fd_jsonl_reader *rd,
			 struct json_object *rec, struct fd_err *err)
{
	struct json_object *name = rec;
	struct fd_err why;

	if (!json_object_is_type(rec, json_type_string) &&
	    (!json_object_object_get_ex(rec, "name", &name) ||
	     !json_object_is_type(name, json_type_string)))
		return fd_err_set(err, "no \"name\" string in the record");
	if (reg_name_check(json_object_get_string(name),
			   (size_t)json_object_get_string_len(name), 0, &why) < 0)
		return fd_err_set(err, "invalid name: %s", why.msg);
	reserve(b, rd, 2 * (size_t)json_object_get_string_len(name) + 16);
	append(b, "{\"name\":", 8);
	append_json(b, name);
	append(b, "}", 1);
	batch_add(b, rd->lineno);
	return 0;
}

static int run(struct reg *r, struct batch *b,
	       int (*record)(struct batch *, struct fd_jsonl_reader *,
			     struct json_object *, struct fd_err *),
	       int plain_ok)
{
	struct fd_jsonl_reader rd;
	struct json_object *rec;
	struct fd_err err;
	int rc;

	b->r = r;
	b->body = (struct fd_buf)FD_BUF_INIT(REG_BATCH_BYTES +
					     2 * REG_VALUE_MAX + 2048);
	fd_jsonl_reader_init(&rd, STDIN_FILENO, 0);
	rd.plain_ok = plain_ok;
	fd_emit_hold(1);
	if (r->table && !r->quiet)
		reg_print_header(r);
	for (;;) {
		rc = fd_jsonl_read(&rd, &rec, &err);
		if (rc == FD_JSONL_OK) {
			rc = record(b, &rd, rec, &err);
			json_object_put(rec);
			if (rc < 0) {
				fd_warn("stdin: line %lu: %s", rd.lineno, err.msg);
				rd.bad++;
				rc = FD_JSONL_BAD;
			}
		} else if (rc == FD_JSONL_BAD) {
			fd_warn("stdin: %s", err.msg);
		} else if (rc == FD_JSONL_IOERR) {
			fd_warn("unable to read stdin: %s", strerror(errno));
			b->failed++;
			break;
		} else {
			break;
		}
		if (rc == FD_JSONL_BAD && r->strict) {
			fd_emit_hold(0);
			batch_die(b, &rd, FD_EXIT_DATA,
				  "stopping at the first bad line (--strict)");
		}
		if (input_idle(&rd)) {
			batch_send(b, &rd);
			fd_emit_flush();
		}
	}
	batch_send(b, &rd);
	fd_emit_hold(0);
	b->bad += rd.bad;
	fd_jsonl_reader_release(&rd);
	fd_buf_release(&b->body);
	if (b->failed)
		return FD_EXIT_RUNTIME;
	if (b->taken)
		return FD_EXIT_CONFLICT;
	return b->bad ? FD_EXIT_DATA : FD_EXIT_OK;
}

int reg_register_batch(struct reg *r)
{
	static struct batch b = {.path = "/v1/registry/batch", .what = "register"};

	return run(r, &b, register_record, 0);
}

int reg_lookup_batch(struct reg *r)
{
	static struct batch b = {.path = "/v1/registry/lookup", .what = "look up"};

	return run(r, &b, lookup_record, 1);
}
