/* What the subcommands share: name checks, request paths, the one print
 * path for JSON and table output, dying. */
#include "buf.h"
#include "cli.h"
#include "jsonl.h"
#include "registry.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int reg_name_check(const char *s, size_t len, int prefix, struct fd_err *err)
{
	if (len == 0 && !prefix)
		return fd_err_set(err, "empty");
	if (len > REG_NAME_MAX)
		return fd_err_set(err, "longer than %d bytes", REG_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fd_err_set(err, "control character at byte %zu",
					  i + 1);
	if (!fd_utf8_valid(s, len))
		return fd_err_set(err, "invalid UTF-8");
	return 0;
}

static void oom(struct reg *r)
{
	fd_client_release(&r->client);
	fd_die(FD_EXIT_RUNTIME, "out of memory");
}

static void add_param(struct reg *r, struct fd_buf *b, const char *key,
		      const char *val)
{
	char *e;
	int ok;

	if (!val)
		return;
	e = fd_client_escape(&r->client, val);
	ok = e && fd_buf_append(b, strchr(b->data, '?') ? "&" : "?", 1) == 0 &&
	     fd_buf_append(b, key, strlen(key)) == 0 &&
	     fd_buf_append(b, "=", 1) == 0 && fd_buf_append(b, e, strlen(e)) == 0;
	free(e);
	if (!ok) {
		fd_buf_release(b);
		oom(r);
	}
}

char *reg_path(struct reg *r, const char *base, const char *key1,
	       const char *val1, const char *key2, const char *val2)
{
	struct fd_buf b = FD_BUF_INIT(4096);

	if (fd_buf_append(&b, base, strlen(base)) < 0)
		oom(r);
	add_param(r, &b, key1, val1);
	add_param(r, &b, key2, val2);
	return b.data;
}

void reg_emit_raw(const char *line, size_t len)
{
	if (fd_emit_raw(line, len) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
}

void reg_emit(struct json_object *o)
{
	size_t len;
	const char *s = fd_json_str(o, &len);

	reg_emit_raw(s, len);
}

#define TABLE_ROW "%-32s %-16s %-10s %s"
#define TABLE_VALUE_MAX 80

void reg_print_header(struct reg *r)
{
	char row[256];
	int n;

	if (!r->table || r->header_done)
		return;
	r->header_done = 1;
	n = snprintf(row, sizeof(row), TABLE_ROW, "NAME", "OWNER", "PERSISTENT",
		     "VALUE");
	reg_emit_raw(row, (size_t)n);
}

/* A value for a table cell: compact JSON, cut at a character boundary. */
static void cell_value(struct json_object *v, char *out, size_t outlen)
{
	size_t len;
	const char *s = v ? fd_json_str(v, &len) : "null";

	if (!v)
		len = 4;
	if (len <= TABLE_VALUE_MAX) {
		snprintf(out, outlen, "%s", s);
		return;
	}
	len = TABLE_VALUE_MAX - 3;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	snprintf(out, outlen, "%.*s...", (int)len, s);
}

void reg_print_entry(struct reg *r, const char *line, size_t len,
		     struct json_object *o)
{
	struct json_object *parsed = NULL, *v = NULL, *found;
	char value[TABLE_VALUE_MAX + 8], *row;
	const char *name, *owner, *persistent;
	int n;

	if (!r->table) {
		if (line)
			reg_emit_raw(line, len);
		else
			reg_emit(o);
		return;
	}
	if (!o) {
		parsed = fd_json_parse(line, len, NULL);
		o = parsed;
	}
	reg_print_header(r);
	name = fd_json_get_str(o, "name");
	owner = fd_json_get_str(o, "owner");
	if (json_object_object_get_ex(o, "found", &found) &&
	    !json_object_get_boolean(found)) {
		owner = "-";
		persistent = "-";
		snprintf(value, sizeof(value), "(not found)");
	} else {
		json_object_object_get_ex(o, "value", &v);
		json_object_object_get_ex(o, "persistent", &found);
		persistent = found && json_object_get_boolean(found) ? "yes" : "no";
		cell_value(v, value, sizeof(value));
	}
	n = asprintf(&row, TABLE_ROW, name ? name : "?", owner ? owner : "?",
		     persistent, value);
	if (n < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	reg_emit_raw(row, (size_t)n);
	free(row);
	json_object_put(parsed);
}

void reg_die_transport(struct reg *r, const struct fd_err *err)
{
	int code = errno == ETIMEDOUT ? FD_EXIT_TIMEOUT : FD_EXIT_RUNTIME;

	fd_client_release(&r->client);
	fd_die(code, "%s", err->msg);
}
