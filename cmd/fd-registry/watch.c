/* watch: GET /v1/registry/watch streams event lines; each is printed and
 * flushed as it arrives. */
#include "cli.h"
#include "jsonl.h"
#include "registry.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct watch {
	struct reg *r;
	long long events;
	int stdout_gone;
};

static int is_event(const char *line, size_t len)
{
	static const char prefix[] = "{\"type\":\"event\"";
	struct json_object *o;
	const char *type;
	int yes;

	if (len >= sizeof(prefix) - 1 && memcmp(line, prefix, sizeof(prefix) - 1) == 0)
		return 1;
	o = fd_json_parse(line, len, NULL);
	type = fd_json_get_str(o, "type");
	yes = type && strcmp(type, "event") == 0;
	json_object_put(o);
	return yes;
}

static int on_line(const char *line, size_t len, void *arg)
{
	struct watch *w = arg;

	reg_emit_raw(line, len);
	if (fd_emit_flush() < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
	if (is_event(line, len))
		w->events++;
	return w->r->count && w->events >= w->r->count;
}

/* While no event comes: has the reader of stdout gone away ("| head -1")? */
static int on_tick(void *arg)
{
	struct watch *w = arg;
	struct pollfd p = {.fd = STDOUT_FILENO, .events = 0};

	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) {
		w->stdout_gone = 1;
		return 1;
	}
	return 0;
}

int reg_watch(struct reg *r)
{
	struct watch w = {.r = r};
	struct fd_client_lines l = {
		.method = "GET",
		.on_line = on_line,
		.on_tick = on_tick,
		.arg = &w,
	};
	struct fd_err err;
	char *path = reg_path(r, "/v1/registry/watch", "prefix",
			      r->prefix && *r->prefix ? r->prefix : NULL, NULL,
			      NULL);
	int rc;

	l.path = path;
	rc = fd_client_lines(&r->client, &l, &err);
	free(path);
	if (rc > 0)
		return FD_EXIT_OK; /* --count reached, or stdout is gone */
	if (rc == 0) {
		fd_warn("'%s' ended the watch", r->client.addr);
		return FD_EXIT_RUNTIME;
	}
	if (l.timed_out && l.status >= 200 && l.status < 300) {
		if (r->count && w.events < r->count) {
			fd_warn("only %lld of %lld events within %s", w.events,
				r->count, r->timeout_arg);
			return FD_EXIT_TIMEOUT;
		}
		return FD_EXIT_OK;
	}
	if (l.timed_out) {
		fd_warn("no answer from '%s' within %s", r->client.addr,
			r->timeout_arg);
		return FD_EXIT_TIMEOUT;
	}
	if (l.status == 0 || (l.status >= 200 && l.status < 300))
		fd_warn("%s", err.msg);
	else
		fd_warn("unable to watch: %s", err.msg);
	return FD_EXIT_RUNTIME;
}
