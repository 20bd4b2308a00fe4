#include "discover.h"
#include "jsonl.h"
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

TEST(addr_norm)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{"127.0.0.1:4001", "127.0.0.1:4001"},
		{"127.0.0.1", "127.0.0.1:4380"},
		{"db1.example", "db1.example:4380"},
		{"db1.example:1", "db1.example:1"},
		{"[::1]", "[::1]:4380"},
		{"[::1]:65535", "[::1]:65535"},
		{"[fe80::1%eth0]:5", "[fe80::1%eth0]:5"},
		{"node_1.svc-x", "node_1.svc-x:4380"},
	};
	static const char *bad[] = {
		"",	    ":4001",	 "a:0",		 "a:65536", "a:x",
		"::1",	    "[::1",	 "a b:1",	 "a:1 ",    "a/b:1",
		"[]:1",	    "[\"a:1\"]", "[a.b]:1",	 "\"a\":1", "a;b",
		"[::1%]:1", "[::1%e/0]", "caf\xc3\xa9:1"};
	char out[FD_PEER_ADDR_LEN];
	struct fd_err err;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK_EQ(fd_peer_addr_norm(ok[i].in, out, sizeof(out), &err), 0);
		CHECK_STR(out, ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (fd_peer_addr_norm(bad[i], out, sizeof(out), &err) != -1)
			unit_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
	}
	CHECK_EQ(fd_peer_addr_norm("a:0", out, sizeof(out), &err), -1);
	CHECK_STR(err.msg, "invalid address 'a:0' (expected HOST[:PORT])");
}

TEST(file_lines)
{
	char out[FD_PEER_ADDR_LEN];
	struct fd_err err;

	CHECK_EQ(fd_peer_file_line("", 0, out, sizeof(out), &err), 0);
	CHECK_EQ(fd_peer_file_line(" \t\r", 3, out, sizeof(out), &err), 0);
	CHECK_EQ(fd_peer_file_line("# all comment", 13, out, sizeof(out), &err), 0);
	CHECK_EQ(fd_peer_file_line("  10.0.0.1:5 # db", 17, out, sizeof(out), &err),
		 1);
	CHECK_STR(out, "10.0.0.1:5");
	CHECK_EQ(fd_peer_file_line("\t10.0.0.1\r", 10, out, sizeof(out), &err), 1);
	CHECK_STR(out, "10.0.0.1:4380");
	CHECK_EQ(fd_peer_file_line("a:1 b:2", 7, out, sizeof(out), &err), -1);
	CHECK_STR(err.msg, "invalid address 'a:1 b:2' (one address per line)");
	CHECK_EQ(fd_peer_file_line("a:1\0b", 5, out, sizeof(out), &err), -1);
	CHECK_EQ(fd_peer_file_line("nope:x", 6, out, sizeof(out), &err), -1);
	CHECK_STR(err.msg, "invalid address 'nope:x' (expected HOST[:PORT])");
}

static char downs[256];

static void on_down(const char *addr, void *arg)
{
	size_t n = strlen(downs);

	(void)arg;
	snprintf(downs + n, sizeof(downs) - n, "%s%s", n ? " " : "", addr);
}

static size_t answer(struct fd_peerset *s, const char *const *addrs, int *ups)
{
	*ups = 0;
	downs[0] = '\0';
	fd_peerset_begin(s);
	for (; *addrs; addrs++)
		*ups += fd_peerset_add(s, *addrs) == 1;
	return fd_peerset_end(s, on_down, NULL);
}

TEST(peer_lines)
{
	char out[FD_PEER_ADDR_LEN];
	struct json_object *o;
	struct fd_err err;
	const char *l;

	/* A plain line is a file line. */
	CHECK_EQ(fd_peer_line(" 127.0.0.1 # c", 14, out, sizeof(out), &o, &err), 1);
	CHECK_STR(out, "127.0.0.1:4380");
	CHECK(o == NULL);
	CHECK_EQ(fd_peer_line("", 0, out, sizeof(out), &o, &err), 0);
	/* A JSON peer, with what fd-discover prints around it. */
	l = "{\"type\":\"peer\",\"event\":\"up\",\"name\":\"n\",\"addr\":\"[::1]:7\","
	    "\"meta\":{\"a\":1}}\r";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), 1);
	CHECK_STR(out, "[::1]:7");
	CHECK(o != NULL);
	CHECK_STR(fd_json_get_str(o, "name"), "n");
	json_object_put(o);
	l = "{\"addr\":\"h\"}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), NULL, &err), 1);
	CHECK_STR(out, "h:4380");
	/* Skipped: other records, down events. */
	l = "{\"type\":\"error\",\"addr\":\"h\"}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), 0);
	l = "{\"event\":\"down\",\"addr\":\"h\"}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), 0);
	/* Errors. */
	l = "{\"addr\":\"h\"} x";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), -1);
	CHECK_STR(err.msg, "invalid JSON object");
	l = "{\"addr\":1}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), -1);
	CHECK_STR(err.msg, "no \"addr\" string");
	l = "{\"addr\":\"h:0\"}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), -1);
	l = "{\"addr\":\"h\",\"meta\":[]}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), -1);
	l = "{\"type\":5,\"addr\":\"h\"}";
	CHECK_EQ(fd_peer_line(l, strlen(l), out, sizeof(out), &o, &err), -1);
	CHECK_EQ(fd_peer_line("{", 1, out, sizeof(out), &o, &err), -1);
	CHECK(o == NULL);
}

TEST(addr_ip_and_srv_sort)
{
	unsigned char v4[4] = {10, 0, 0, 5}, v6[16];
	char out[FD_PEER_ADDR_LEN];
	struct fd_srv v[] = {
		{20, 0, 1, "c"}, {10, 1, 2, "b"}, {10, 9, 3, "z"}, {10, 1, 1, "b"}};

	CHECK_EQ(fd_peer_addr_ip(AF_INET, v4, 4380, out, sizeof(out)), 0);
	CHECK_STR(out, "10.0.0.5:4380");
	inet_pton(AF_INET6, "fe80::1", v6);
	CHECK_EQ(fd_peer_addr_ip(AF_INET6, v6, 1, out, sizeof(out)), 0);
	CHECK_STR(out, "[fe80::1]:1");
	CHECK_EQ(fd_peer_addr_ip(AF_INET, v4, 0, out, sizeof(out)), -1);
	CHECK_EQ(fd_peer_addr_ip(AF_INET, v4, 1, out, 5), -1);
	CHECK_EQ(fd_peer_addr_ip(AF_UNIX, v4, 1, out, sizeof(out)), -1);
	fd_srv_sort(v, 4);
	CHECK_STR(v[0].target, "z");
	CHECK_EQ(v[1].port, 1);
	CHECK_EQ(v[2].port, 2);
	CHECK_STR(v[3].target, "c");
}

TEST(peerset_up_down)
{
	static const char *const a[] = {"a:1", "b:1", "a:1", NULL};
	static const char *const b[] = {"b:1", "c:1", NULL};
	static const char *const none[] = {NULL};
	struct fd_peerset s;
	int ups;

	REQUIRE(fd_peerset_init(&s, 1, 0) == 0);
	CHECK_EQ(answer(&s, a, &ups), 0);
	CHECK_EQ(ups, 2);
	CHECK_EQ(fd_peerset_count(&s), 2);
	CHECK_EQ(answer(&s, b, &ups), 1);
	CHECK_EQ(ups, 1);
	CHECK_STR(downs, "a:1");
	/* An empty answer removes nothing. */
	CHECK_EQ(answer(&s, none, &ups), 0);
	CHECK_EQ(fd_peerset_count(&s), 2);
	/* Nor does an aborted one. */
	fd_peerset_begin(&s);
	fd_peerset_abort(&s);
	CHECK_EQ(fd_peerset_end(&s, on_down, NULL), 0);
	CHECK_EQ(fd_peerset_count(&s), 2);
	fd_peerset_release(&s);
}

TEST(peerset_down_after)
{
	static const char *const ab[] = {"a:1", "b:1", NULL};
	static const char *const b[] = {"b:1", NULL};
	static const char *const none[] = {NULL};
	struct fd_peerset s;
	int ups;

	REQUIRE(fd_peerset_init(&s, 3, 0) == 0);
	answer(&s, ab, &ups);
	CHECK_EQ(answer(&s, b, &ups), 0);
	CHECK_EQ(answer(&s, b, &ups), 0);
	/* Back in time: the count starts again. */
	CHECK_EQ(answer(&s, ab, &ups), 0);
	CHECK_EQ(ups, 0);
	CHECK_EQ(answer(&s, b, &ups), 0);
	CHECK_EQ(answer(&s, none, &ups), 0); /* does not count */
	CHECK_EQ(answer(&s, b, &ups), 0);
	CHECK_EQ(answer(&s, b, &ups), 1);
	CHECK_STR(downs, "a:1");
	CHECK_EQ(fd_peerset_count(&s), 1);
	/* Gone and back: up again. */
	CHECK_EQ(answer(&s, ab, &ups), 0);
	CHECK_EQ(ups, 1);
	fd_peerset_release(&s);
}

TEST(peerset_cap)
{
	struct fd_peerset s;

	REQUIRE(fd_peerset_init(&s, 1, 2) == 0);
	fd_peerset_begin(&s);
	CHECK_EQ(fd_peerset_add(&s, "a:1"), 1);
	CHECK_EQ(fd_peerset_add(&s, "b:1"), 1);
	errno = 0;
	CHECK_EQ(fd_peerset_add(&s, "c:1"), -1);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(fd_peerset_add(&s, "a:1"), 0);
	CHECK_EQ(fd_peerset_end(&s, NULL, NULL), 0);
	CHECK_EQ(fd_peerset_count(&s), 2);
	fd_peerset_release(&s);
}

/* Randomized: the set always equals a model that counts misses itself. */
TEST(peerset_model)
{
	enum { N = 8, ROUNDS = 2000 };
	struct fd_peerset s;
	int up[N] = {0}, missed[N] = {0};
	unsigned down_after = 1 + (unsigned)unit_rand_below(3);
	char addr[16];

	REQUIRE(fd_peerset_init(&s, down_after, 0) == 0);
	for (int r = 0; r < ROUNDS && !unit_failed; r++) {
		int in[N], any = 0, count = 0;

		fd_peerset_begin(&s);
		for (int i = 0; i < N; i++) {
			in[i] = unit_rand_below(3) == 0;
			any |= in[i];
			if (!in[i])
				continue;
			snprintf(addr, sizeof(addr), "p%d:1", i);
			CHECK_EQ(fd_peerset_add(&s, addr), !up[i]);
		}
		fd_peerset_end(&s, NULL, NULL);
		for (int i = 0; i < N; i++) {
			if (in[i]) {
				up[i] = 1;
				missed[i] = 0;
			} else if (any && up[i] &&
				   (unsigned)++missed[i] >= down_after) {
				up[i] = 0;
				missed[i] = 0;
			}
			count += up[i];
		}
		CHECK_EQ(fd_peerset_count(&s), count);
	}
	fd_peerset_release(&s);
}

static char down_desc[256];

static void on_down_desc(const char *addr, void *arg)
{
	const char *name = NULL;
	struct json_object *meta = NULL;

	CHECK_EQ(fd_peerset_get(arg, addr, &name, &meta), 0);
	snprintf(down_desc, sizeof(down_desc), "%s %s %s", addr, name ? name : "-",
		 meta ? json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN)
		      : "-");
}

static void count_each(const char *addr, const char *name,
		       struct json_object *meta, void *arg)
{
	(void)addr;
	(void)meta;
	*(int *)arg += name != NULL;
}

/* Name and meta are kept per peer (the latest answer's win) and still known
 * when the peer goes down. */
TEST(peerset_describe)
{
	struct fd_peerset s;
	struct json_object *m1 = json_object_new_object(),
			   *m2 = json_object_new_object();
	const char *name;
	struct json_object *meta;
	int named = 0;

	json_object_object_add(m1, "zone", json_object_new_string("a"));
	json_object_object_add(m2, "zone", json_object_new_string("b"));
	REQUIRE(fd_peerset_init(&s, 1, 0) == 0);
	fd_peerset_begin(&s);
	CHECK_EQ(fd_peerset_add_meta(&s, "a:1", "n1", m1), 1);
	CHECK_EQ(fd_peerset_add(&s, "b:1"), 1);
	fd_peerset_end(&s, NULL, NULL);
	json_object_put(m1);
	CHECK_EQ(fd_peerset_get(&s, "a:1", &name, &meta), 0);
	CHECK_STR(name, "n1");
	CHECK_STR(fd_json_get_str(meta, "zone"), "a");
	CHECK_EQ(fd_peerset_get(&s, "b:1", &name, &meta), 0);
	CHECK(name == NULL && meta == NULL);
	CHECK_EQ(fd_peerset_get(&s, "c:1", &name, &meta), -1);
	fd_peerset_each(&s, count_each, &named);
	CHECK_EQ(named, 1);
	/* A later answer updates the description; NULL keeps it. */
	fd_peerset_begin(&s);
	CHECK_EQ(fd_peerset_add_meta(&s, "a:1", NULL, m2), 0);
	CHECK_EQ(fd_peerset_add(&s, "b:1"), 0);
	fd_peerset_end(&s, on_down_desc, &s);
	json_object_put(m2);
	CHECK_EQ(fd_peerset_get(&s, "a:1", &name, &meta), 0);
	CHECK_STR(name, "n1");
	CHECK_STR(fd_json_get_str(meta, "zone"), "b");
	/* Down: described in the callback, forgotten after. */
	fd_peerset_begin(&s);
	fd_peerset_add(&s, "b:1");
	down_desc[0] = '\0';
	CHECK_EQ(fd_peerset_end(&s, on_down_desc, &s), 1);
	CHECK_STR(down_desc, "a:1 n1 {\"zone\":\"b\"}");
	CHECK_EQ(fd_peerset_get(&s, "a:1", NULL, NULL), -1);
	fd_peerset_release(&s);
}
