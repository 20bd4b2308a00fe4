/* Joining: POST /v1/join in batches, one "join" line per address; waiting:
 * GET /v1/members until enough members are alive. */
#include "join.h"
#include "cli.h"
#include "clock.h"
#include "discover.h"
#include "jsonl.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 100

static void oom(void)
{
	fd_die(FD_EXIT_RUNTIME, "out of memory");
}

void join_init(struct join *j, const char *node)
{
	struct fd_err err;

	if (fd_client_init(&j->client, node, j->timeout_ms, &err) < 0) {
		fd_client_release(&j->client);
		fd_usage_die("%s", err.msg);
	}
	j->batch = json_object_new_array();
	if (!j->batch)
		oom();
}

void join_release(struct join *j)
{
	json_object_put(j->batch);
	j->batch = NULL;
	fd_client_release(&j->client);
}

/* A transport failure: the node is not there (or too slow). */
static void die_unreachable(struct join *j, const struct fd_err *err)
{
	int code = errno == ETIMEDOUT ? FD_EXIT_TIMEOUT : FD_EXIT_RUNTIME;

	fd_warn("%s", err->msg);
	join_release(j);
	exit(fd_finish_stdout(code));
}

static void emit(struct json_object *o)
{
	if (fd_emit(o) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write to stdout: %s",
		       strerror(errno));
	json_object_put(o);
}

/* One "join" line for addr from the node's result r (NULL: none, why says
 * what went wrong). */
static void report(struct join *j, const char *addr, struct json_object *r,
		   const char *why)
{
	struct json_object *o = fd_json_record("join"), *v;
	int ok = 0;
	const char *name = NULL, *id = NULL, *error = why;

	if (r && json_object_object_get_ex(r, "ok", &v) &&
	    json_object_is_type(v, json_type_boolean)) {
		ok = json_object_get_boolean(v);
		name = fd_json_get_str(r, "name");
		id = fd_json_get_str(r, "id");
		error = fd_json_get_str(r, "error");
		if (!ok && !error)
			error = "no reason given";
	} else if (!error) {
		error = "no result for this address in the node's answer";
	}
	json_object_object_add(o, "addr", json_object_new_string(addr));
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (ok && name)
		json_object_object_add(o, "name", json_object_new_string(name));
	if (ok && id)
		json_object_object_add(o, "id", json_object_new_string(id));
	if (!ok) {
		json_object_object_add(o, "error", json_object_new_string(error));
		fd_warn("unable to join '%s': %s", addr, error);
		j->failed++;
	}
	if (j->quiet)
		json_object_put(o);
	else
		emit(o);
}

void join_flush(struct join *j)
{
	struct json_object *body, *resp = NULL, *results = NULL;
	struct fd_err err;
	const char *why = NULL;
	size_t n = json_object_array_length(j->batch);
	long status;

	if (n == 0)
		return;
	body = json_object_new_object();
	if (!body ||
	    json_object_object_add(body, "addrs", json_object_get(j->batch)) < 0)
		oom();
	j->client.timeout_ms = j->timeout_ms;
	if (fd_client_call_ok(&j->client, "POST", "/v1/join", body, &status,
			      &resp, &err) < 0) {
		json_object_put(resp);
		resp = NULL;
		if (status == 0) {
			json_object_put(body);
			die_unreachable(j, &err);
		}
		why = err.msg;
	}
	json_object_put(body);
	if (!why && (!json_object_object_get_ex(resp, "results", &results) ||
		     !json_object_is_type(results, json_type_array)))
		why = "unexpected answer from the node: no \"results\" array";
	for (size_t i = 0; i < n; i++) {
		const char *addr = json_object_get_string(
			json_object_array_get_idx(j->batch, i));
		struct json_object *r =
			why ? NULL : json_object_array_get_idx(results, i);

		report(j, addr,
		       r && json_object_is_type(r, json_type_object) ? r : NULL,
		       why);
	}
	json_object_put(resp);
	j->sent += n;
	json_object_put(j->batch);
	j->batch = json_object_new_array();
	if (!j->batch)
		oom();
}

void join_add(struct join *j, const char *addr)
{
	if (json_object_array_add(j->batch, json_object_new_string(addr)) < 0)
		oom();
	if (json_object_array_length(j->batch) >= JOIN_BATCH)
		join_flush(j);
}

/* The address a stdin record names: 1 with out filled, 0 for a record to
 * ignore (a "down" event, an "error" record), -1 with err. */
static int record_addr(struct json_object *rec, char *out, size_t len,
		       struct fd_err *err)
{
	const char *s, *type;

	if (json_object_is_type(rec, json_type_string)) {
		s = json_object_get_string(rec);
	} else {
		type = fd_json_get_str(rec, "type");
		s = fd_json_get_str(rec, "event");
		if ((type && strcmp(type, "error") == 0) ||
		    (s && strcmp(s, "down") == 0))
			return 0;
		s = fd_json_get_str(rec, "addr");
		if (!s)
			return fd_err_set(err, "no \"addr\" string in the record");
	}
	return fd_peer_addr_norm(s, out, len, err) < 0 ? -1 : 1;
}

static long count_alive(struct join *j, int64_t budget_ms,
			struct json_object **members);

/* With --expect, while stdin is idle: 1 when enough members are alive or
 * the time is up (stop reading), 0 when a line came in, -1 to wait again. */
static int idle_wait(struct join *j)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	struct json_object *members = NULL;
	int64_t now = fd_mono_ms();
	long alive;
	int rc;

	if (now >= j->deadline)
		return 1;
	rc = poll(&p, 1,
		  j->deadline - now < POLL_MS ? (int)(j->deadline - now) : POLL_MS);
	if (rc != 0)
		return 0; /* input (or EOF, or an error the read will see) */
	join_flush(j);
	alive = count_alive(
		j, j->deadline - fd_mono_ms() > 0 ? j->deadline - fd_mono_ms() : 1,
		&members);
	json_object_put(members);
	return alive >= j->expect ? 1 : -1;
}

void join_stdin(struct join *j)
{
	struct fd_jsonl_reader r;
	struct json_object *rec;
	struct fd_err err;
	char addr[FD_PEER_ADDR_LEN];
	int rc;

	fd_jsonl_reader_init(&r, STDIN_FILENO, 0);
	r.plain_ok = 1;
	if (j->expect)
		j->deadline = fd_mono_ms() + j->timeout_ms;
	for (;;) {
		if (j->expect && !fd_jsonl_pending(&r)) {
			int w;

			do
				w = idle_wait(j);
			while (w < 0);
			if (w > 0)
				break;
		}
		rc = fd_jsonl_read(&r, &rec, &err);
		if (rc == FD_JSONL_OK) {
			rc = record_addr(rec, addr, sizeof(addr), &err);
			json_object_put(rec);
			if (rc > 0)
				join_add(j, addr);
			if (rc < 0) {
				fd_warn("stdin: line %lu: %s", r.lineno, err.msg);
				rc = FD_JSONL_BAD;
				r.bad++;
			}
		} else if (rc == FD_JSONL_BAD) {
			fd_warn("stdin: %s", err.msg);
		} else if (rc == FD_JSONL_IOERR) {
			fd_warn("unable to read stdin: %s", strerror(errno));
			j->bad++;
			break;
		} else {
			break;
		}
		if (rc == FD_JSONL_BAD && j->strict) {
			j->bad = r.bad;
			fd_jsonl_reader_release(&r);
			join_release(j);
			exit(fd_finish_stdout(FD_EXIT_DATA));
		}
		/* Input idle: send what we have rather than wait for more. */
		if (!fd_jsonl_pending(&r))
			join_flush(j);
	}
	j->bad += r.bad;
	fd_jsonl_reader_release(&r);
	join_flush(j);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The members' names, addresses and states, for a failed wait. */
static struct json_object *member_list(struct json_object *members)
{
	struct json_object *list = json_object_new_array();
	size_t n = members ? json_object_array_length(members) : 0;

	for (size_t i = 0; list && i < n; i++) {
		struct json_object *m = json_object_array_get_idx(members, i);
		struct json_object *o = json_object_new_object();
		const char *keys[] = {"name", "addr", "state"};

		for (size_t k = 0; o && k < sizeof(keys) / sizeof(keys[0]); k++) {
			const char *v = fd_json_get_str(m, keys[k]);

			if (v)
				json_object_object_add(o, keys[k],
						       json_object_new_string(v));
		}
		json_object_array_add(list, o);
	}
	return list;
}

/* Asks for the members once: the number alive, or -1 on a timeout. *members
 * takes the answer's list (replacing the previous one). */
static long count_alive(struct join *j, int64_t budget_ms, struct json_object **members)
{
	struct json_object *resp = NULL, *list;
	struct fd_err err;
	long status, alive = 0;

	j->client.timeout_ms = budget_ms;
	if (fd_client_call_ok(&j->client, "GET", "/v1/members", NULL, &status,
			      &resp, &err) < 0) {
		json_object_put(resp);
		if (status == 0 && errno == ETIMEDOUT)
			return -1;
		if (status == 0)
			die_unreachable(j, &err);
		json_object_put(*members);
		join_release(j);
		fd_die(FD_EXIT_RUNTIME, "unable to list the members: %s", err.msg);
	}
	if (!json_object_object_get_ex(resp, "members", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		json_object_put(resp);
		json_object_put(*members);
		join_release(j);
		fd_die(FD_EXIT_RUNTIME,
		       "unable to list the members: no \"members\" array in the answer");
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		const char *state = fd_json_get_str(
			json_object_array_get_idx(list, i), "state");

		alive += state && strcmp(state, "alive") == 0;
	}
	json_object_put(*members);
	*members = json_object_get(list);
	json_object_put(resp);
	return alive;
}

int join_wait(struct join *j)
{
	struct json_object *members = NULL, *o;
	int64_t start = fd_mono_ms(), now = start;
	int64_t deadline = j->deadline ? j->deadline : start + j->timeout_ms;
	long alive = 0, k;
	int ok = 0;

	for (;;) {
		k = count_alive(j, deadline - now > 0 ? deadline - now : 1, &members);
		if (k >= 0)
			alive = k;
		if (k >= j->expect) {
			ok = 1;
			break;
		}
		now = fd_mono_ms();
		if (now >= deadline)
			break;
		sleep_ms(deadline - now < POLL_MS ? deadline - now : POLL_MS);
		now = fd_mono_ms();
	}
	o = fd_json_record("result");
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "expect", json_object_new_int64(j->expect));
	json_object_object_add(o, "alive", json_object_new_int64(alive));
	json_object_object_add(o, "elapsed", fd_json_seconds(fd_mono_ms() - start));
	if (!ok)
		json_object_object_add(o, "members", member_list(members));
	json_object_put(members);
	emit(o);
	if (ok)
		return FD_EXIT_OK;
	fd_warn("only %ld of %lld members alive after %s", alive, j->expect,
		j->timeout_arg);
	return FD_EXIT_TIMEOUT;
}
