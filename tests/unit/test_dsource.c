/* Discovery sources in a real loop: static, file and exec (the network
 * ones run against real servers in the bats tests), the rules a poll
 * follows, and a strategy registered from outside. */
#include "clock.h"
#include "dsource.h"
#include "jsonl.h"
#include "loop.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rec {
	char log[4096];
	int polls, oks, errors;
	int stop_after; /* run() returns after this many polls */
	int free_in_cb; /* free the source from its first callback, stop the loop */
	struct fd_dsource **self;
	struct fd_loop *loop;
};

static void logf_(struct rec *r, const char *what, const char *a, const char *b)
{
	size_t n = strlen(r->log);

	if (b)
		snprintf(r->log + n, sizeof(r->log) - n, "%s %s %s\n", what, a, b);
	else
		snprintf(r->log + n, sizeof(r->log) - n, "%s %s\n", what, a);
}

static void on_up(struct fd_dsource *s, const struct fd_dpeer *p, void *arg)
{
	(void)s;
	logf_(arg, "up", p->addr, p->name ? p->name : "-");
}

static void on_down(struct fd_dsource *s, const struct fd_dpeer *p, void *arg)
{
	(void)s;
	logf_(arg, "down", p->addr, p->name ? p->name : "-");
}

static void on_error(struct fd_dsource *s, const char *msg, void *arg)
{
	struct rec *r = arg;

	(void)s;
	r->errors++;
	logf_(r, "error", msg, NULL);
}

static void on_polled(struct fd_dsource *s, int ok, void *arg)
{
	struct rec *r = arg;

	(void)s;
	r->polls++;
	r->oks += ok;
	if (r->free_in_cb) {
		fd_dsource_free(*r->self);
		*r->self = NULL;
		fd_loop_stop(r->loop);
	}
}

static struct fd_dsource *start(struct fd_loop *loop, const char *spec,
				struct rec *r, struct fd_err *err)
{
	struct fd_dsource_cbs cbs = {on_up, on_down, on_polled, on_error, r};

	r->loop = loop;
	return fd_dsource_new(loop, spec, &cbs, err);
}

/* Runs until r->stop_after polls (or 10 s). */
static void run(struct fd_loop *loop, struct rec *r, int polls)
{
	int64_t deadline = fd_mono_ms() + 10000;

	r->stop_after = r->polls + polls;
	while (r->polls < r->stop_after && fd_mono_ms() < deadline)
		fd_loop_run_once(loop, 100);
}

TEST(static_source)
{
	struct fd_loop *loop = fd_loop_new();
	struct rec r = {0};
	struct fd_err err;
	struct fd_dsource *s;
	struct json_object *info;

	REQUIRE(loop != NULL);
	s = start(loop, "static addrs=b:2,a,[::1]:3,b:2 interval=20ms", &r, &err);
	REQUIRE(s != NULL);
	run(loop, &r, 3);
	CHECK_STR(r.log, "up b:2 -\nup a:4380 -\nup [::1]:3 -\n");
	CHECK_EQ(r.oks, 3);
	CHECK_EQ(fd_dsource_count(s), 3);
	CHECK(fd_dsource_has(s, "a:4380"));
	CHECK(!fd_dsource_has(s, "a:1"));
	CHECK_STR(fd_dsource_strategy(s), "static");
	info = fd_dsource_info(s);
	CHECK_EQ(fd_json_get_int(info, "polls", 0), 3);
	CHECK_EQ(fd_json_get_int(info, "peers", 0), 3);
	CHECK(fd_json_get_str(info, "last_ok") != NULL);
	json_object_put(info);
	fd_dsource_free(s);
	fd_loop_free(loop);
}

static void write_file(const char *path, const char *text)
{
	char tmp[256];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

/* Up at once; down only after down_after answers without; an unreadable
 * file, an empty one, or one with only bad lines removes nothing. */
TEST(file_source_rules)
{
	char dir[] = "/tmp/fd-dsource-XXXXXX", path[128], spec[256];
	struct fd_loop *loop = fd_loop_new();
	struct rec r = {0};
	struct fd_err err;
	struct fd_dsource *s;

	REQUIRE(loop != NULL && mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/peers", dir);
	write_file(path, "a:1\nb:2 # two\n");
	snprintf(spec, sizeof(spec), "file path=%s interval=10ms down_after=2", path);
	s = start(loop, spec, &r, &err);
	REQUIRE(s != NULL);
	run(loop, &r, 1);
	CHECK_STR(r.log, "up a:1 -\nup b:2 -\n");
	r.log[0] = '\0';
	unlink(path);
	run(loop, &r, 3);
	CHECK_EQ(r.errors, 1); /* reported once */
	CHECK(strstr(r.log, "error unable to read '") == r.log);
	write_file(path, "");
	run(loop, &r, 3);
	write_file(path, "not an address\n");
	run(loop, &r, 3);
	CHECK(strstr(r.log, "down") == NULL);
	CHECK_EQ(fd_dsource_count(s), 2);
	r.log[0] = '\0';
	write_file(path, "b:2\nc:3\n");
	run(loop, &r, 1);
	CHECK_STR(r.log, "up c:3 -\n");
	run(loop, &r, 1);
	CHECK_STR(r.log, "up c:3 -\ndown a:1 -\n");
	fd_dsource_free(s);
	unlink(path);
	rmdir(dir);
	fd_loop_free(loop);
}

TEST(exec_source)
{
	struct fd_loop *loop = fd_loop_new();
	struct rec r = {0};
	struct fd_err err;
	struct fd_dsource *s;
	int64_t t0;

	REQUIRE(loop != NULL);
	s = start(loop,
		  "exec cmd='echo a:1; echo \"{\\\"addr\\\":\\\"b:2\\\",\\\"name\\\":\\\"n2\\\"}\"; "
		  "echo not an address' interval=10ms",
		  &r, &err);
	REQUIRE(s != NULL);
	run(loop, &r, 2);
	CHECK_STR(r.log, "up a:1 -\nup b:2 n2\n");
	CHECK_EQ(r.oks, 2);
	fd_dsource_free(s);

	/* A failing command is a failed poll, said once. */
	memset(&r, 0, sizeof(r));
	s = start(loop, "exec cmd='echo a:1; exit 3' interval=10ms", &r, &err);
	REQUIRE(s != NULL);
	run(loop, &r, 3);
	CHECK_STR(r.log, "error 'echo a:1; exit 3': exited with status 3\n");
	CHECK_EQ(r.oks, 0);
	fd_dsource_free(s);

	/* A command that outlives its timeout is killed with what it
	 * started; the loop never waits for it. */
	memset(&r, 0, sizeof(r));
	t0 = fd_mono_ms();
	s = start(loop, "exec cmd='sleep 30 & sleep 30' timeout=200ms", &r, &err);
	REQUIRE(s != NULL);
	run(loop, &r, 1);
	CHECK_STR(r.log, "error 'sleep 30 & sleep 30': timed out after 200 ms\n");
	CHECK(fd_mono_ms() - t0 < 5000);
	fd_dsource_free(s);

	/* Stopped while the command runs: killed and reaped. */
	memset(&r, 0, sizeof(r));
	s = start(loop, "exec cmd='sleep 30'", &r, &err);
	REQUIRE(s != NULL);
	fd_loop_run_once(loop, 50);
	fd_dsource_free(s);
	fd_loop_free(loop);
}

TEST(free_from_callback)
{
	struct fd_loop *loop = fd_loop_new();
	struct rec r = {.free_in_cb = 1};
	struct fd_err err;
	struct fd_dsource *s;

	REQUIRE(loop != NULL);
	r.self = &s;
	s = start(loop, "static addrs=a:1", &r, &err);
	REQUIRE(s != NULL);
	fd_loop_run(loop);
	CHECK(s == NULL);
	CHECK_EQ(r.polls, 1);
	fd_loop_free(loop);
}

TEST(bad_specs)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{"nope", "unknown strategy 'nope' (known: static, file, exec, dns, "
			 "dns-srv, kubernetes)"},
		{"static", "static needs addrs=HOST:PORT,..."},
		{"static addrs=a:1 pth=x", "unknown key 'pth' for static (known: addrs, "
					   "interval, down_after)"},
		{"static addrs=a:99999",
		 "invalid address 'a:99999' (expected HOST[:PORT])"},
		{"file", "file needs path=FILE"},
		{"exec cmd=x timeout=0",
		 "invalid timeout '0' (a duration from 1ms to 86400s)"},
		{"dns", "dns needs name=NAME (a DNS name)"},
		{"dns name=x resolver=dns.example",
		 "invalid resolver 'dns.example' (expected IP[:PORT])"},
		{"dns-srv name=x down_after=0", "invalid down_after '0' (1 to 1000000)"},
		{"dns name=x interval=5ms",
		 "invalid interval '5ms' (a duration from 10ms to 86400s)"},
	};
	struct fd_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(fd_dsource_check(bad[i].spec, &err), -1);
		CHECK_STR(err.msg, bad[i].msg);
	}
	CHECK_EQ(fd_dsource_check("dns name=fd.test port=7946 resolver=127.0.0.1:5353",
				  &err),
		 0);
	CHECK_EQ(fd_dsource_check("exec cmd=true", &err), 0);
}

/* A strategy from outside, answering from what it holds and kicking a poll
 * when something arrives (what an mdns or gossip browser does). */
static const char *push_peer;

static int push_start(struct fd_dsource *s, const struct fd_dspec *sp,
		      struct fd_err *err)
{
	(void)sp;
	(void)err;
	s->priv = &push_peer;
	return 0;
}

static void push_poll(struct fd_dsource *s)
{
	if (push_peer)
		fd_dsource_add(s, push_peer, "pushed", NULL, NULL);
	fd_dsource_done(s);
}

static void push_stop(struct fd_dsource *s)
{
	s->priv = NULL;
}

static const char *const push_keys[] = {NULL};
static const struct fd_dsource_ops push_ops = {"test-push", push_keys,
					       push_start, push_poll, push_stop};

TEST(registered_strategy)
{
	struct fd_loop *loop = fd_loop_new();
	struct rec r = {0};
	struct fd_err err;
	struct fd_dsource *s;
	int64_t t0;

	REQUIRE(loop != NULL);
	CHECK_EQ(fd_dsource_register(&push_ops), 0);
	CHECK_EQ(fd_dsource_register(&push_ops), -1);
	CHECK_EQ(errno, EEXIST);
	CHECK(fd_dsource_find("test-push") == &push_ops);
	s = start(loop, "test-push interval=1h", &r, &err);
	REQUIRE(s != NULL);
	run(loop, &r, 1);
	CHECK_STR(r.log, "error no peers found\n");
	/* Something arrives: a kick polls at once, not in an hour. */
	push_peer = "10.0.0.9:4380";
	t0 = fd_mono_ms();
	fd_dsource_kick(s);
	run(loop, &r, 1);
	CHECK(fd_mono_ms() - t0 < 2000);
	CHECK_STR(r.log, "error no peers found\nup 10.0.0.9:4380 pushed\n");
	fd_dsource_free(s);
	fd_loop_free(loop);
}
