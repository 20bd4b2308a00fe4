/* Discovery sources: the driver (poll timer, answers into a peer set,
 * reports from the loop), the registry of strategies, and the two that
 * need no waiting: static and file. */
#include "dsource.h"
#include "clock.h"
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_MS 5000
#define DEFAULT_DOWN_AFTER 3
#define MAX_PEERS 4096 /* per answer and per source */
#define MAX_REGISTERED 16
#define MAX_FILE (8 * 1024 * 1024)

/* Registry */

static const struct fd_dsource_ops *const builtin[] = {
	&fd_dsource_static, &fd_dsource_file,	 &fd_dsource_exec,
	&fd_dsource_dns,    &fd_dsource_dns_srv, &fd_dsource_kubernetes,
};
#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

static const struct fd_dsource_ops *registered[MAX_REGISTERED];
static size_t nregistered;

const struct fd_dsource_ops *fd_dsource_at(size_t i)
{
	if (i < NBUILTIN)
		return builtin[i];
	i -= NBUILTIN;
	return i < nregistered ? registered[i] : NULL;
}

const struct fd_dsource_ops *fd_dsource_find(const char *name)
{
	const struct fd_dsource_ops *ops;

	for (size_t i = 0; (ops = fd_dsource_at(i)); i++)
		if (strcmp(ops->name, name) == 0)
			return ops;
	return NULL;
}

int fd_dsource_register(const struct fd_dsource_ops *ops)
{
	if (fd_dsource_find(ops->name)) {
		errno = EEXIST;
		return -1;
	}
	if (nregistered == MAX_REGISTERED) {
		errno = ENOSPC;
		return -1;
	}
	registered[nregistered++] = ops;
	return 0;
}

/* Spec */

static int known_list(char *buf, size_t len)
{
	const struct fd_dsource_ops *ops;
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; (ops = fd_dsource_at(i)); i++) {
		int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", ops->name);

		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return 0;
}

/* Parses and checks spec into sp; ops, interval and down_after from it. */
static int spec_load(const char *spec, struct fd_dspec *sp,
		     const struct fd_dsource_ops **ops, int64_t *interval,
		     unsigned *down_after, struct fd_err *err)
{
	long long da;
	char known[256];

	if (fd_dspec_parse(sp, spec, err) < 0)
		return -1;
	*ops = fd_dsource_find(sp->strategy);
	if (!*ops) {
		known_list(known, sizeof(known));
		return fd_err_set(err, "unknown strategy '%s' (known: %s)",
				  sp->strategy, known);
	}
	if (fd_dspec_check(sp, (*ops)->keys, err) < 0 ||
	    fd_dspec_duration(sp, "interval", DEFAULT_INTERVAL_MS, 10, 86400000,
			      interval, err) < 0 ||
	    fd_dspec_int(sp, "down_after", DEFAULT_DOWN_AFTER, 1, 1000000, &da,
			 err) < 0)
		return -1;
	*down_after = (unsigned)da;
	return 0;
}

int fd_dsource_check(const char *spec, struct fd_err *err)
{
	struct fd_dspec sp;
	const struct fd_dsource_ops *ops;
	int64_t interval;
	unsigned da;
	int rc = spec_load(spec, &sp, &ops, &interval, &da, err);

	if (rc == 0) { /* a dry start: the values are the strategy's to judge */
		struct fd_dsource tmp = {.interval_ms = interval, .ops = ops};

		rc = ops->start(&tmp, &sp, err);
		ops->stop(&tmp);
	}
	fd_dspec_release(&sp);
	return rc;
}

/* Driver */

static void on_poll(struct fd_loop *loop, struct fd_timer *t, void *arg);
static void on_report(struct fd_loop *loop, struct fd_timer *t, void *arg);

struct fd_dsource *fd_dsource_new(struct fd_loop *loop, const char *spec,
				  const struct fd_dsource_cbs *cbs,
				  struct fd_err *err)
{
	struct fd_dsource *s = calloc(1, sizeof(*s));
	struct fd_dspec sp;
	unsigned down_after;

	if (!s) {
		fd_err_set(err, "out of memory");
		return NULL;
	}
	if (spec_load(spec, &sp, &s->ops, &s->interval_ms, &down_after, err) < 0) {
		fd_dspec_release(&sp);
		free(s);
		return NULL;
	}
	s->loop = loop;
	if (cbs)
		s->cbs = *cbs;
	s->spec = strdup(spec);
	if (!s->spec || fd_peerset_init(&s->set, down_after, MAX_PEERS) < 0) {
		fd_err_set(err, "out of memory");
		goto fail;
	}
	fd_timer_init(&s->timer, on_poll, s);
	fd_timer_init(&s->report, on_report, s);
	if (s->ops->start(s, &sp, err) < 0) {
		s->ops->stop(s);
		goto fail;
	}
	fd_dspec_release(&sp);
	if (fd_timer_arm(loop, &s->timer, 0) < 0) {
		s->ops->stop(s);
		fd_err_set(err, "out of memory");
		fd_peerset_release(&s->set);
		free(s->spec);
		free(s);
		return NULL;
	}
	return s;
fail:
	fd_dspec_release(&sp);
	fd_peerset_release(&s->set);
	free(s->spec);
	free(s);
	return NULL;
}

static void dsource_free(struct fd_dsource *s)
{
	s->ops->stop(s);
	fd_timer_disarm(s->loop, &s->timer);
	fd_timer_disarm(s->loop, &s->report);
	json_object_put(s->pending);
	fd_peerset_release(&s->set);
	free(s->spec);
	free(s);
}

void fd_dsource_free(struct fd_dsource *s)
{
	if (!s)
		return;
	if (s->alive) { /* from a callback of on_report: it frees s after */
		*s->alive = 0;
		return;
	}
	dsource_free(s);
}

static void on_poll(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct fd_dsource *s = arg;

	(void)t;
	if (s->polling)
		return;
	json_object_put(s->pending);
	s->pending = json_object_new_array();
	if (!s->pending) {
		fd_timer_arm(loop, &s->timer, s->interval_ms);
		return;
	}
	s->polling = 1;
	s->failed = 0;
	s->full = 0;
	s->kicked = 0;
	s->polls++;
	s->last_poll_ms = fd_loop_now(loop);
	s->last_poll_wall = fd_wall_us();
	s->ops->poll(s);
}

void fd_dsource_kick(struct fd_dsource *s)
{
	if (s->polling)
		s->kicked = 1;
	else
		fd_timer_arm(s->loop, &s->timer, 0);
}

int fd_dsource_add(struct fd_dsource *s, const char *addr, const char *name,
		   struct json_object *meta, struct fd_err *err)
{
	char norm[FD_PEER_ADDR_LEN];
	struct json_object *p;

	if (!s->polling || !s->pending)
		return fd_err_set(err, "no poll in progress");
	if (fd_peer_addr_norm(addr, norm, sizeof(norm), err) < 0)
		return -1;
	if (json_object_array_length(s->pending) >= MAX_PEERS) {
		s->full = 1;
		return fd_err_set(err, "more than %d peers", MAX_PEERS);
	}
	p = json_object_new_object();
	if (!p || json_object_array_add(s->pending, p) < 0) {
		json_object_put(p);
		return fd_err_set(err, "out of memory");
	}
	json_object_object_add(p, "addr", json_object_new_string(norm));
	if (name)
		json_object_object_add(p, "name", json_object_new_string(name));
	if (meta)
		json_object_object_add(p, "meta", json_object_get(meta));
	return 0;
}

void fd_dsource_done(struct fd_dsource *s)
{
	if (!s->polling)
		return;
	s->polling = 0;
	fd_timer_arm(s->loop, &s->report, 0);
}

void fd_dsource_fail(struct fd_dsource *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->polling)
		return;
	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->failed = 1;
	s->polling = 0;
	fd_timer_arm(s->loop, &s->report, 0);
}

struct down_ctx {
	struct fd_dsource *s;
	int *alive;
};

static void on_down(const char *addr, void *arg)
{
	struct down_ctx *c = arg;
	struct fd_dpeer p = {.addr = addr};

	if (!*c->alive || !c->s->cbs.down)
		return;
	fd_peerset_get(&c->s->set, addr, &p.name, &p.meta);
	c->s->cbs.down(c->s, &p, c->s->cbs.arg);
}

/* The answer of the poll that ended: peer changes, then the owner's
 * callbacks, then the next poll. The owner may free s in any callback. */
static void on_report(struct fd_loop *loop, struct fd_timer *t, void *arg)
{
	struct fd_dsource *s = arg;
	struct json_object *pending = s->pending;
	size_t n = pending ? json_object_array_length(pending) : 0;
	int alive = 1;
	int64_t next;

	(void)t;
	s->pending = NULL;
	s->alive = &alive;
	if (!s->failed && n == 0) {
		s->failed = 1;
		snprintf(s->error, sizeof(s->error), "no peers found");
	}
	if (s->failed) {
		s->errors++;
		if (strcmp(s->error, s->last_error) != 0) {
			snprintf(s->last_error, sizeof(s->last_error), "%s", s->error);
			if (s->cbs.error)
				s->cbs.error(s, s->error, s->cbs.arg);
		}
	} else if (fd_peerset_begin(&s->set) == 0) {
		struct down_ctx dc = {s, &alive};

		s->last_ok_wall = fd_wall_us();
		s->last_error[0] = '\0';
		for (size_t i = 0; i < n && alive; i++) {
			struct json_object *o = json_object_array_get_idx(pending, i),
					   *meta = NULL;
			struct fd_dpeer p = {.addr = fd_json_get_str(o, "addr"),
					     .name = fd_json_get_str(o, "name")};

			json_object_object_get_ex(o, "meta", &meta);
			p.meta = meta;
			if (fd_peerset_add_meta(&s->set, p.addr, p.name, meta) == 1 &&
			    s->cbs.up)
				s->cbs.up(s, &p, s->cbs.arg);
		}
		if (alive)
			fd_peerset_end(&s->set, on_down, &dc);
	}
	if (alive && s->cbs.polled)
		s->cbs.polled(s, !s->failed, s->cbs.arg);
	json_object_put(pending);
	s->alive = NULL;
	if (!alive) {
		dsource_free(s);
		return;
	}
	next = s->kicked ? fd_loop_now(loop) : s->last_poll_ms + s->interval_ms;
	fd_timer_arm_at(loop, &s->timer, next);
}

struct each_ctx {
	struct fd_dsource *s;
	void (*fn)(struct fd_dsource *s, const struct fd_dpeer *p, void *arg);
	void *arg;
};

static void each_one(const char *addr, const char *name,
		     struct json_object *meta, void *arg)
{
	struct each_ctx *c = arg;
	struct fd_dpeer p = {addr, name, meta};

	c->fn(c->s, &p, c->arg);
}

void fd_dsource_each(struct fd_dsource *s,
		     void (*fn)(struct fd_dsource *s, const struct fd_dpeer *p,
				void *arg),
		     void *arg)
{
	struct each_ctx c = {s, fn, arg};

	fd_peerset_each(&s->set, each_one, &c);
}

size_t fd_dsource_count(const struct fd_dsource *s)
{
	return fd_peerset_count(&s->set);
}

int fd_dsource_has(const struct fd_dsource *s, const char *addr)
{
	return fd_peerset_get(&s->set, addr, NULL, NULL) == 0;
}

const char *fd_dsource_spec(const struct fd_dsource *s)
{
	return s->spec;
}

const char *fd_dsource_strategy(const struct fd_dsource *s)
{
	return s->ops->name;
}

static struct json_object *ts_or_null(int64_t wall_us)
{
	char ts[FD_TS_LEN];

	return wall_us ? json_object_new_string(fd_ts_format(wall_us, ts, sizeof(ts)))
		       : NULL;
}

static void add_up(const char *addr, const char *name, struct json_object *meta,
		   void *arg)
{
	(void)name;
	(void)meta;
	json_object_array_add(arg, json_object_new_string(addr));
}

struct json_object *fd_dsource_info(const struct fd_dsource *s)
{
	struct json_object *o = json_object_new_object(), *up;

	if (!o)
		return NULL;
	up = json_object_new_array();
	json_object_object_add(o, "spec", json_object_new_string(s->spec));
	json_object_object_add(o, "strategy", json_object_new_string(s->ops->name));
	json_object_object_add(o, "interval", fd_json_seconds(s->interval_ms));
	json_object_object_add(o, "polls", json_object_new_uint64(s->polls));
	json_object_object_add(o, "errors", json_object_new_uint64(s->errors));
	json_object_object_add(o, "last_poll", ts_or_null(s->last_poll_wall));
	json_object_object_add(o, "last_ok", ts_or_null(s->last_ok_wall));
	json_object_object_add(
		o, "last_error",
		s->last_error[0] ? json_object_new_string(s->last_error) : NULL);
	json_object_object_add(
		o, "peers", json_object_new_int((int)fd_peerset_count(&s->set)));
	if (up)
		fd_peerset_each(&s->set, add_up, up);
	json_object_object_add(o, "up", up);
	return o;
}

/* static: addrs=HOST:PORT,... */

static const char *const static_keys[] = {"addrs", NULL};

static int static_start(struct fd_dsource *s, const struct fd_dspec *sp,
			struct fd_err *err)
{
	const char *addrs = fd_dspec_get(sp, "addrs");
	char *list, *save = NULL;
	char norm[FD_PEER_ADDR_LEN];

	if (!addrs || !*addrs)
		return fd_err_set(err, "static needs addrs=HOST:PORT,...");
	list = strdup(addrs);
	if (!list)
		return fd_err_set(err, "out of memory");
	/* All or nothing, like the CLI: a typo is a usage error. */
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save))
		if (fd_peer_addr_norm(a, norm, sizeof(norm), err) < 0) {
			free(list);
			return -1;
		}
	free(list);
	s->priv = strdup(addrs);
	if (!s->priv)
		return fd_err_set(err, "out of memory");
	return 0;
}

static void static_poll(struct fd_dsource *s)
{
	char *list = strdup(s->priv), *save = NULL;

	if (!list) {
		fd_dsource_fail(s, "out of memory");
		return;
	}
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save))
		fd_dsource_add(s, a, NULL, NULL, NULL);
	free(list);
	fd_dsource_done(s);
}

static void free_priv(struct fd_dsource *s)
{
	free(s->priv);
	s->priv = NULL;
}

const struct fd_dsource_ops fd_dsource_static = {
	.name = "static",
	.keys = static_keys,
	.start = static_start,
	.poll = static_poll,
	.stop = free_priv,
};

/* file: path=FILE, read at every poll (a local file: reading it does not
 * wait on anything that matters to the loop). */

static const char *const file_keys[] = {"path", NULL};

static int file_start(struct fd_dsource *s, const struct fd_dspec *sp,
		      struct fd_err *err)
{
	const char *path = fd_dspec_get(sp, "path");

	if (!path || !*path)
		return fd_err_set(err, "file needs path=FILE");
	s->priv = strdup(path);
	if (!s->priv)
		return fd_err_set(err, "out of memory");
	return 0;
}

static void file_poll(struct fd_dsource *s)
{
	const char *path = s->priv;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char *buf = NULL, addr[FD_PEER_ADDR_LEN];
	size_t n = 0, cap = 0;
	unsigned long lineno = 0, bad = 0;
	struct fd_err err;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fd_dsource_fail(s, "unable to read '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		fd_dsource_fail(s, "unable to read '%s': not a regular file", path);
		return;
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap >= MAX_FILE) {
				free(buf);
				close(fd);
				fd_dsource_fail(s, "unable to read '%s': larger than %d MiB",
						path, MAX_FILE / (1024 * 1024));
				return;
			}
			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				close(fd);
				fd_dsource_fail(s, "unable to read '%s': out of memory",
						path);
				return;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			close(fd);
			fd_dsource_fail(s, "unable to read '%s': %s", path,
					strerror(errno));
			return;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	for (size_t pos = 0; pos < n;) {
		const char *line = buf + pos, *nl = memchr(line, '\n', n - pos);
		size_t l = nl ? (size_t)(nl - line) : n - pos;

		pos += l + 1;
		lineno++;
		int rc = fd_peer_file_line(line, l, addr, sizeof(addr), &err);

		if (rc == 1)
			fd_dsource_add(s, addr, NULL, NULL, NULL);
		else if (rc < 0)
			bad++;
	}
	free(buf);
	/* Bad lines are skipped (the CLI names them); an answer with only bad
	 * lines is a failed poll, which removes nothing. */
	if (bad && json_object_array_length(s->pending) == 0) {
		fd_dsource_fail(s, "'%s': no valid address (%lu bad lines)",
				path, bad);
		return;
	}
	fd_dsource_done(s);
}

const struct fd_dsource_ops fd_dsource_file = {
	.name = "file",
	.keys = file_keys,
	.start = file_start,
	.poll = file_poll,
	.stop = free_priv,
};
