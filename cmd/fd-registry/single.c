/* One name per run: register, lookup, unregister; and list. */
#include "buf.h"
#include "cli.h"
#include "jsonl.h"
#include "registry.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Raw input read for "-" at most: a value in pretty-printed JSON may be
 * larger than its compact form, which is what the limit applies to. */
#define STDIN_VALUE_MAX (1024 * 1024)

static _Noreturn void die(struct reg *r, int code, const char *msg)
{
	fd_client_release(&r->client);
	fd_die(code, "%s", msg);
}

static _Noreturn void die_data(struct reg *r, const char *msg)
{
	fd_client_release(&r->client);
	fd_die(FD_EXIT_DATA, "%s", msg);
}

/* The value of "register NAME VALUE": JSON when it parses, else a string. */
static struct json_object *value_of(struct reg *r, const char *s, size_t len)
{
	struct json_object *v;

	if (!fd_utf8_valid(s, len))
		die_data(r, "value is not valid UTF-8");
	v = fd_json_parse(s, len, NULL);
	if (v)
		return v;
	v = json_object_new_string_len(s, (int)len);
	if (!v)
		die(r, FD_EXIT_RUNTIME, "out of memory");
	return v;
}

static struct json_object *value_from_stdin(struct reg *r)
{
	struct fd_buf b = FD_BUF_INIT(STDIN_VALUE_MAX);
	struct json_object *v;
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fd_buf_release(&b);
			fd_client_release(&r->client);
			fd_die(FD_EXIT_RUNTIME, "unable to read stdin: %s",
			       strerror(errno));
		}
		if (n == 0)
			break;
		if (fd_buf_append(&b, chunk, (size_t)n) < 0) {
			fd_buf_release(&b);
			if (errno == EMSGSIZE)
				die_data(r, "value larger than 65536 bytes");
			die(r, FD_EXIT_RUNTIME, "out of memory");
		}
	}
	if (b.len > 0 && b.data[b.len - 1] == '\n')
		b.len--;
	v = value_of(r, fd_buf_str(&b), b.len);
	fd_buf_release(&b);
	return v;
}

/* One request with a JSON answer; a transport failure ends the program. */
static long call(struct reg *r, const char *method, const char *path,
		 struct json_object *body, struct json_object **resp)
{
	struct fd_err err;
	long status;

	if (fd_client_call(&r->client, method, path, body, &status, resp, &err) < 0)
		reg_die_transport(r, &err);
	return status;
}

/* The node's error message, or a generic one. */
static const char *error_of(struct json_object *resp, long status, char *buf,
			    size_t len)
{
	const char *msg = fd_json_get_str(resp, "error");

	if (msg)
		return msg;
	snprintf(buf, len, "the node answered HTTP %ld", status);
	return buf;
}

int reg_register(struct reg *r, const char *name, const char *arg)
{
	struct json_object *body = json_object_new_object(), *value,
			   *resp = NULL, *entry;
	char *path, buf[64];
	const char *owner;
	size_t vlen;
	long status;

	if (!arg)
		value = NULL;
	else if (strcmp(arg, "-") == 0)
		value = value_from_stdin(r);
	else
		value = value_of(r, arg, strlen(arg));
	if (value && (fd_json_str(value, &vlen), vlen > REG_VALUE_MAX)) {
		json_object_put(value);
		json_object_put(body);
		die_data(r, "value larger than 65536 bytes");
	}
	json_object_object_add(body, "value", value);
	json_object_object_add(body, "replace", json_object_new_boolean(r->replace));
	json_object_object_add(body, "persistent",
			       json_object_new_boolean(r->persistent));
	if (r->on_conflict)
		json_object_object_add(body, "on_conflict",
				       json_object_new_string(r->on_conflict));
	path = reg_path(r, "/v1/registry", "name", name, NULL, NULL);
	status = call(r, "PUT", path, body, &resp);
	free(path);
	json_object_put(body);
	if (status == 200 || status == 201) {
		if (!r->quiet)
			reg_emit(resp);
		json_object_put(resp);
		return FD_EXIT_OK;
	}
	if (status == 409) {
		json_object_object_get_ex(resp, "entry", &entry);
		owner = fd_json_get_str(entry, "owner");
		if (owner)
			fd_warn("name '%s' is already registered by node '%s' "
				"(use --replace)",
				name, owner);
		else
			fd_warn("name '%s' is already registered (use --replace)",
				name);
		json_object_put(resp);
		return FD_EXIT_CONFLICT;
	}
	fd_warn("unable to register '%s': %s", name,
		error_of(resp, status, buf, sizeof(buf)));
	json_object_put(resp);
	if (status == 413)
		return FD_EXIT_DATA;
	return status == 400 ? FD_EXIT_USAGE : FD_EXIT_RUNTIME;
}

int reg_lookup(struct reg *r, const char *name)
{
	struct json_object *resp = NULL;
	char *path, wait[32], buf[64];
	long status;

	if (r->wait_ms >= 0) {
		snprintf(wait, sizeof(wait), "%lld", (long long)r->wait_ms);
		r->client.timeout_ms = r->timeout_ms + r->wait_ms;
	}
	path = reg_path(r, "/v1/registry", "name", name, "wait",
			r->wait_ms >= 0 ? wait : NULL);
	status = call(r, "GET", path, NULL, &resp);
	free(path);
	if (status == 200) {
		reg_print_entry(r, NULL, 0, resp);
		json_object_put(resp);
		return FD_EXIT_OK;
	}
	if (status == 404) {
		json_object_put(resp);
		if (r->wait_ms > 0) {
			fd_warn("'%s' was not registered within %s", name,
				r->wait_arg);
			return FD_EXIT_TIMEOUT;
		}
		fd_warn("'%s' is not registered", name);
		return FD_EXIT_NOTFOUND;
	}
	fd_warn("unable to look up '%s': %s", name,
		error_of(resp, status, buf, sizeof(buf)));
	json_object_put(resp);
	return status == 400 ? FD_EXIT_USAGE : FD_EXIT_RUNTIME;
}

int reg_unregister(struct reg *r, const char *name)
{
	struct json_object *resp = NULL;
	char *path, buf[64];
	long status;

	path = reg_path(r, "/v1/registry", "name", name, "force",
			r->force ? "1" : NULL);
	status = call(r, "DELETE", path, NULL, &resp);
	free(path);
	if (status == 200) {
		if (!r->quiet)
			reg_emit(resp);
		json_object_put(resp);
		return FD_EXIT_OK;
	}
	if (status == 404) {
		json_object_put(resp);
		fd_warn("'%s' is not registered", name);
		return FD_EXIT_NOTFOUND;
	}
	fd_warn("unable to unregister '%s': %s", name,
		error_of(resp, status, buf, sizeof(buf)));
	json_object_put(resp);
	return status == 400 ? FD_EXIT_USAGE : FD_EXIT_RUNTIME;
}

static int list_line(const char *line, size_t len, void *arg)
{
	reg_print_entry(arg, line, len, NULL);
	return 0;
}

int reg_list(struct reg *r)
{
	struct fd_client_lines l = {
		.method = "GET",
		.on_line = list_line,
		.arg = r,
	};
	struct fd_err err;
	char *path = reg_path(r, "/v1/registry", "prefix",
			      r->prefix && *r->prefix ? r->prefix : NULL, NULL,
			      NULL);
	int rc;

	l.path = path;
	reg_print_header(r);
	rc = fd_client_lines(&r->client, &l, &err);
	free(path);
	if (rc < 0 && (l.status == 0 || l.timed_out))
		reg_die_transport(r, &err);
	if (rc < 0) {
		fd_warn("unable to list the registry: %s", err.msg);
		return FD_EXIT_RUNTIME;
	}
	return FD_EXIT_OK;
}
