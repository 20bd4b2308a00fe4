#include "acl.h"
#include "topic.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define S(x) x, sizeof(x) - 1
#define TOK_CI "ci-secret-0123456789"
#define TOK_OPS "ops-secret-0123456789"

static struct fd_acl *parse(const char *text, struct fd_err *err)
{
	return fd_acl_parse(text, strlen(text), err);
}

TEST(parse_and_find)
{
	static const char text[] =
		"{\"tokens\":["
		"{\"id\":\"ci\",\"token\":\"" TOK_CI "\","
		"\"scopes\":[\"publish:orders.\",\"subscribe:orders.\",\"read\"]},"
		/* sha256("ops-secret-0123456789") */
		"{\"id\":\"ops\",\"token_sha256\":"
		"\"HASH\",\"scopes\":[\"admin\"]}]}";
	char buf[sizeof(text) + 64], hex[65];
	const struct fd_acl_token *t;
	struct fd_err err;
	struct fd_acl *acl;
	FILE *p;

	/* the hash of the ops token, from the openssl command */
	p = popen("printf %s '" TOK_OPS "' | openssl dgst -sha256 -r", "r");
	REQUIRE(p);
	REQUIRE(fscanf(p, "%64s", hex) == 1);
	pclose(p);
	{
		const char *h = strstr(text, "HASH");
		size_t pre = (size_t)(h - text);

		memcpy(buf, text, pre);
		memcpy(buf + pre, hex, 64);
		snprintf(buf + pre + 64, sizeof(buf) - pre - 64, "%s", h + 4);
	}
	acl = parse(buf, &err);
	REQUIRE(acl);
	CHECK_EQ(acl->n, 2);
	t = fd_acl_find(acl, S(TOK_CI));
	REQUIRE(t);
	CHECK_STR(t->id, "ci");
	CHECK_EQ(t->scopes.n, 3);
	CHECK(fd_scopes_allow(&t->scopes, FD_SCOPE_PUBLISH, S("orders.x")));
	CHECK(!fd_scopes_allow(&t->scopes, FD_SCOPE_PUBLISH, S("billing.x")));
	CHECK(!fd_scopes_allow(&t->scopes, FD_SCOPE_REGISTER, S("orders.x")));
	CHECK(fd_scopes_allow(&t->scopes, FD_SCOPE_READ, NULL, 0));
	CHECK(!fd_scopes_allow(&t->scopes, FD_SCOPE_ADMIN, NULL, 0));
	t = fd_acl_find(acl, S(TOK_OPS));
	REQUIRE(t);
	CHECK_STR(t->id, "ops");
	CHECK(fd_scopes_allow(&t->scopes, FD_SCOPE_ADMIN, NULL, 0));
	CHECK(!fd_scopes_allow(&t->scopes, FD_SCOPE_READ, NULL, 0));
	CHECK(!fd_acl_find(acl, S("ci-secret-012345678")));
	CHECK(!fd_acl_find(acl, S(TOK_CI "x")));
	CHECK(!fd_acl_find(acl, "", 0));
	CHECK(!fd_acl_find(NULL, S(TOK_CI)));
	CHECK(fd_acl_ref(acl) == acl);
	fd_acl_unref(acl);
	fd_acl_unref(acl);
	fd_acl_unref(NULL);
}

TEST(parse_empty_and_all)
{
	struct fd_err err;
	struct fd_acl *acl = parse("{\"tokens\":[]}", &err);

	REQUIRE(acl);
	CHECK_EQ(acl->n, 0);
	CHECK(!fd_acl_find(acl, S(TOK_CI)));
	fd_acl_unref(acl);
	acl = parse("{\"tokens\":[{\"id\":\"root\",\"token\":\"" TOK_CI
		    "\",\"scopes\":[\"all\"]}]}",
		    &err);
	REQUIRE(acl);
	CHECK_EQ(acl->tokens[0].scopes.n, FD_SCOPE_NKINDS);
	for (int k = 0; k < FD_SCOPE_NKINDS; k++)
		CHECK(fd_scopes_allow(&acl->tokens[0].scopes,
				      (enum fd_scope_kind)k, S("any.thing")));
	CHECK(fd_scopes_allow_pattern(&acl->tokens[0].scopes, S(">")));
	fd_acl_unref(acl);
}

static const struct {
	const char *text, *msg;
} bad_files[] = {
	{"", "invalid JSON"},
	{"[]", "not a JSON object"},
	{"{}", "no \"tokens\" array"},
	{"{\"tokens\":{}}", "no \"tokens\" array"},
	{"{\"tokens\":[],\"x\":1}", "unknown field 'x' (tokens)"},
	{"{\"tokens\":[1]}", "token 1: not an object"},
	{"{\"tokens\":[{\"token\":\"" TOK_CI "\",\"scopes\":[]}]}",
	 "token 1: no \"id\" string"},
	{"{\"tokens\":[{\"id\":\"\",\"token\":\"" TOK_CI "\",\"scopes\":[]}]}",
	 "token 1: \"id\" must be 1 to 64 bytes"},
	{"{\"tokens\":[{\"id\":\"a\\\"b\",\"token\":\"" TOK_CI "\",\"scopes\":[]}]}",
	 "token 1: \"id\" must be printable ASCII without quotes"},
	{"{\"tokens\":[{\"id\":\"ci\",\"scopes\":[]}]}",
	 "token 1 (\"ci\"): give one of \"token\" and \"token_sha256\""},
	{"{\"tokens\":[{\"id\":\"ci\",\"token\":\"short\",\"scopes\":[]}]}",
	 "token 1 (\"ci\"): \"token\" must be 16 to 1024 visible ASCII characters"},
	{"{\"tokens\":[{\"id\":\"ci\",\"token\":\"with space 0123456789\",\"scopes\":[]}]}",
	 "token 1 (\"ci\"): \"token\" must be 16 to 1024 visible ASCII characters"},
	{"{\"tokens\":[{\"id\":\"ci\",\"token_sha256\":\"abc\",\"scopes\":[]}]}",
	 "token 1 (\"ci\"): \"token_sha256\" must be 64 hex digits"},
	{"{\"tokens\":[{\"id\":\"ci\",\"token\":\"" TOK_CI "\"}]}",
	 "token 1 (\"ci\"): no \"scopes\" array"},
	{"{\"tokens\":[{\"id\":\"ci\",\"token\":\"" TOK_CI "\",\"scope\":[]}]}",
	 "token 1: unknown field 'scope' (id, token, token_sha256, scopes)"},
	{"{\"tokens\":[{\"id\":\"ci\",\"token\":\"" TOK_CI
	 "\",\"scopes\":[\"pubish:x\"]}]}",
	 "token 1 (\"ci\"): unknown scope 'pubish:x' (read, register[:PREFIX], "
	 "publish[:PREFIX], subscribe[:PREFIX], admin, all)"},
	{"{\"tokens\":[{\"id\":\"ci\",\"token\":\"" TOK_CI "\",\"scopes\":[7]}]}",
	 "token 1 (\"ci\"): scope 1 is not a string"},
	{"{\"tokens\":[{\"id\":\"a\",\"token\":\"" TOK_CI "\",\"scopes\":[]},"
	 "{\"id\":\"a\",\"token\":\"" TOK_OPS "\",\"scopes\":[]}]}",
	 "token 2: id \"a\" given twice"},
	{"{\"tokens\":[{\"id\":\"a\",\"token\":\"" TOK_CI "\",\"scopes\":[]},"
	 "{\"id\":\"b\",\"token\":\"" TOK_CI "\",\"scopes\":[]}]}",
	 "token 2 (\"b\"): the same secret as \"a\""},
};

TEST(parse_errors)
{
	struct fd_err err;

	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		struct fd_acl *acl = parse(bad_files[i].text, &err);

		CHECK(acl == NULL);
		fd_acl_unref(acl);
		if (strncmp(err.msg, bad_files[i].msg, strlen(bad_files[i].msg)))
			unit_fail(__FILE__, __LINE__, "%s: got \"%s\", want \"%s\"",
				  bad_files[i].text, err.msg, bad_files[i].msg);
	}
}

TEST(scope_syntax)
{
	static const struct {
		const char *s, *msg; /* msg NULL: valid */
	} cases[] = {
		{"read", NULL},
		{"admin", NULL},
		{"publish", NULL},
		{"publish:orders.", NULL},
		{"register:svc/", NULL},
		{"subscribe:a", NULL},
		{"all", NULL},
		{"read:x", "scope 'read:x': read takes no prefix"},
		{"admin:x", "scope 'admin:x': admin takes no prefix"},
		{"publish:",
		 "scope 'publish:': empty prefix (write 'publish' for every name)"},
		{"publish:orders.*",
		 "scope 'publish:orders.*': a prefix is a plain string"},
		{"subscribe:a.>", "scope 'subscribe:a.>': a prefix is a plain string"},
		{"publish:a b", "scope 'publish:a b': whitespace or control character"},
		{"all:x", "unknown scope 'all:x'"},
		{"", "unknown scope ''"},
		{"Read", "unknown scope 'Read'"},
	};
	struct fd_scopes s = {0};
	struct fd_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = fd_scopes_add(&s, cases[i].s, &err);

		if (!cases[i].msg) {
			if (rc != 0)
				unit_fail(__FILE__, __LINE__, "%s: %s",
					  cases[i].s, err.msg);
		} else if (rc == 0 ||
			   strncmp(err.msg, cases[i].msg, strlen(cases[i].msg))) {
			unit_fail(__FILE__, __LINE__, "%s: got %d \"%s\"",
				  cases[i].s, rc, rc ? err.msg : "");
		}
	}
	fd_scopes_release(&s);
	CHECK_EQ(s.n, 0);
	{
		char long_prefix[300];

		memset(long_prefix, 'a', sizeof(long_prefix));
		memcpy(long_prefix, "publish:", 8);
		long_prefix[sizeof(long_prefix) - 1] = '\0';
		CHECK_EQ(fd_scopes_add(&s, long_prefix, &err), -1);
		CHECK(strstr(err.msg, "longer than 255 bytes"));
	}
	for (int i = 0; i < FD_ACL_MAX_SCOPES; i++)
		CHECK_EQ(fd_scopes_add(&s, "read", &err), 0);
	CHECK_EQ(fd_scopes_add(&s, "read", &err), -1);
	CHECK_STR(err.msg, "more than 64 scopes");
	fd_scopes_release(&s);
}

TEST(scope_lists)
{
	struct fd_scopes s = {0};
	struct fd_err err;

	CHECK_EQ(fd_scopes_parse_list(&s, "none", &err), 0);
	CHECK_EQ(s.n, 0);
	CHECK(!fd_scopes_allow(&s, FD_SCOPE_READ, NULL, 0));
	CHECK_EQ(fd_scopes_parse_list(&s, "all", &err), 0);
	CHECK_EQ(s.n, FD_SCOPE_NKINDS);
	CHECK_EQ(fd_scopes_parse_list(&s, "read,publish:a.", &err), 0);
	CHECK_EQ(s.n, 2);
	CHECK(fd_scopes_allow(&s, FD_SCOPE_READ, NULL, 0));
	CHECK(fd_scopes_allow(&s, FD_SCOPE_PUBLISH, S("a.b")));
	CHECK(!fd_scopes_allow(&s, FD_SCOPE_PUBLISH, S("b")));
	CHECK(!fd_scopes_allow(&s, FD_SCOPE_ADMIN, NULL, 0));
	CHECK_EQ(fd_scopes_parse_list(&s, "read,", &err), -1);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(fd_scopes_parse_list(&s, ",read", &err), -1);
	CHECK_EQ(fd_scopes_parse_list(&s, "read,,admin", &err), -1);
	CHECK_EQ(fd_scopes_parse_list(&s, "", &err), -1);
	CHECK_STR(err.msg, "empty scope list (use 'none' for no scope)");
	CHECK_EQ(fd_scopes_parse_list(&s, "read,bogus", &err), -1);
	CHECK(strstr(err.msg, "unknown scope 'bogus'"));
	CHECK_EQ(s.n, 0);
	fd_scopes_release(&s);
}

TEST(pattern_examples)
{
	static const struct {
		const char *prefix, *pattern;
		int ok;
	} cases[] = {
		{"orders.", "orders.x", 1},
		{"orders.", "orders.*", 1},
		{"orders.", "orders.>", 1},
		{"orders.", "orders.*.eu", 1},
		{"orders.", "orders", 0},
		{"orders.", "*.x", 0},
		{"orders.", ">", 0},
		{"orders.", "billing.x", 0},
		{"orders", "orders.>", 1},
		{"orders", "ordersx.*", 1},
		{"orders.eu", "orders.*", 0},
		{"orders.eu", "orders.eu.>", 1},
		{"orders.eu", "orders.eux", 1},
		{"a.b.", "a.b.c.*.>", 1},
	};
	struct fd_scopes s = {0};
	struct fd_err err;
	char scope[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(scope, sizeof(scope), "subscribe:%s", cases[i].prefix);
		REQUIRE(fd_scopes_parse_list(&s, scope, &err) == 0);
		if (fd_scopes_allow_pattern(&s, cases[i].pattern,
					    strlen(cases[i].pattern)) !=
		    cases[i].ok)
			unit_fail(__FILE__, __LINE__, "%s on %s: want %d",
				  cases[i].pattern, cases[i].prefix, cases[i].ok);
	}
	/* publish scopes do not allow subscribing, nor the other way round */
	REQUIRE(fd_scopes_parse_list(&s, "publish,register,read,admin", &err) == 0);
	CHECK(!fd_scopes_allow_pattern(&s, S("x")));
	REQUIRE(fd_scopes_parse_list(&s, "subscribe", &err) == 0);
	CHECK(fd_scopes_allow_pattern(&s, S(">")));
	CHECK(!fd_scopes_allow(&s, FD_SCOPE_PUBLISH, S("x")));
	fd_scopes_release(&s);
}

/* ---- Randomized properties ---- */

static const char *const toks[] = {"a", "b", "ab", "ba", "orders", "o"};
#define NTOKS (sizeof(toks) / sizeof(toks[0]))

/* A random subject of 1 to 4 tokens from a small alphabet (collisions). */
static void rand_subject(char *out, size_t cap)
{
	size_t n = 1 + unit_rand_below(4), len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "." : "",
					toks[unit_rand_below(NTOKS)]);
}

/* A random pattern: a subject with some tokens made '*' and maybe a '>'. */
static void rand_pattern(char *out, size_t cap)
{
	size_t n = 1 + unit_rand_below(4), len = 0;

	for (size_t i = 0; i < n; i++) {
		const char *t = toks[unit_rand_below(NTOKS)];

		if (i == n - 1 && unit_rand_below(4) == 0)
			t = ">";
		else if (unit_rand_below(4) == 0)
			t = "*";
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
					i ? "." : "", t);
	}
}

/* A random prefix: the start of a random subject (cut anywhere). */
static void rand_prefix(char *out, size_t cap)
{
	size_t len;

	rand_subject(out, cap);
	len = strlen(out);
	out[1 + unit_rand_below(len)] = '\0';
}

/* A subject the pattern matches, wildcards filled with random tokens. */
static void instantiate(const char *pattern, char *out, size_t cap)
{
	size_t len = 0;
	const char *p = pattern;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t tl = dot ? (size_t)(dot - p) : strlen(p);

		if (tl == 1 && *p == '*') {
			len += (size_t)snprintf(out + len, cap - len, "%s",
						toks[unit_rand_below(NTOKS)]);
		} else if (tl == 1 && *p == '>') {
			size_t k = 1 + unit_rand_below(2);

			for (size_t i = 0; i < k; i++)
				len += (size_t)snprintf(
					out + len, cap - len, "%s%s", i ? "." : "",
					toks[unit_rand_below(NTOKS)]);
		} else {
			len += (size_t)snprintf(out + len, cap - len, "%.*s",
						(int)tl, p);
		}
		p += tl;
		if (*p == '.') {
			len += (size_t)snprintf(out + len, cap - len, ".");
			p++;
		}
	}
}

TEST(prop_publish_is_string_prefix)
{
	struct fd_scopes s = {0};
	struct fd_err err;
	char prefix[128], scope[160], subject[128];

	printf("  seed %" PRIu64 "\n", unit_seed());
	for (int i = 0; i < 20000 && !unit_failed; i++) {
		size_t plen;

		rand_prefix(prefix, sizeof(prefix));
		rand_subject(subject, sizeof(subject));
		plen = strlen(prefix);
		snprintf(scope, sizeof(scope), "%s:%s",
			 i & 1 ? "publish" : "register", prefix);
		REQUIRE(fd_scopes_parse_list(&s, scope, &err) == 0);
		if (fd_scopes_allow(&s, i & 1 ? FD_SCOPE_PUBLISH : FD_SCOPE_REGISTER,
				    subject, strlen(subject)) !=
		    (strncmp(prefix, subject, plen) == 0))
			unit_fail(__FILE__, __LINE__, "%s on %s", scope, subject);
		/* the other kind never */
		CHECK(!fd_scopes_allow(&s, i & 1 ? FD_SCOPE_REGISTER : FD_SCOPE_PUBLISH,
				       subject, strlen(subject)));
	}
	fd_scopes_release(&s);
}

/* Soundness: an allowed pattern only matches subjects under the prefix.
 * Completeness: a refused one matches some subject outside it (found by
 * filling its wildcards at random). */
TEST(prop_subscribe_pattern_cover)
{
	struct fd_scopes s = {0};
	struct fd_err err;
	char prefix[128], scope[160], pattern[128], subject[256];
	int allowed = 0, refused = 0;

	printf("  seed %" PRIu64 "\n", unit_seed());
	for (int i = 0; i < 5000 && !unit_failed; i++) {
		size_t plen;
		int ok, outside = 0;

		rand_prefix(prefix, sizeof(prefix));
		rand_pattern(pattern, sizeof(pattern));
		REQUIRE(fd_topic_valid_pattern(pattern, strlen(pattern), NULL) == 0);
		plen = strlen(prefix);
		snprintf(scope, sizeof(scope), "subscribe:%s", prefix);
		REQUIRE(fd_scopes_parse_list(&s, scope, &err) == 0);
		ok = fd_scopes_allow_pattern(&s, pattern, strlen(pattern));
		for (int j = 0; j < 64; j++) {
			instantiate(pattern, subject, sizeof(subject));
			if (!fd_topic_match(pattern, strlen(pattern), subject,
					    strlen(subject)))
				unit_fail(__FILE__, __LINE__,
					  "test bug: %s does not match %s",
					  pattern, subject);
			if (strncmp(prefix, subject, plen) != 0)
				outside = 1;
		}
		if (ok && outside)
			unit_fail(__FILE__, __LINE__,
				  "%s allowed under '%s' but matches %s",
				  pattern, prefix, subject);
		if (!ok && !outside)
			unit_fail(__FILE__, __LINE__,
				  "%s refused under '%s' but no match outside found",
				  pattern, prefix);
		ok ? allowed++ : refused++;
	}
	printf("  %d allowed, %d refused\n", allowed, refused);
	CHECK_INT(allowed, >, 500);
	CHECK_INT(refused, >, 500);
	fd_scopes_release(&s);
}

/* Lookups find exactly the entry whose secret was given. */
TEST(prop_find)
{
	struct fd_err err;
	char text[64 * 1024], secret[40][33];
	size_t len = 0;
	struct fd_acl *acl;

	printf("  seed %" PRIu64 "\n", unit_seed());
	len += (size_t)snprintf(text + len, sizeof(text) - len, "{\"tokens\":[");
	for (int i = 0; i < 40; i++) {
		for (int j = 0; j < 32; j++)
			secret[i][j] = "abcdef0123456789"[unit_rand_below(16)];
		secret[i][32] = '\0';
		len += (size_t)snprintf(
			text + len, sizeof(text) - len,
			"%s{\"id\":\"t%d\",\"token\":\"%s\",\"scopes\":[\"read\"]}",
			i ? "," : "", i, secret[i]);
	}
	snprintf(text + len, sizeof(text) - len, "]}");
	acl = parse(text, &err);
	REQUIRE(acl);
	for (int i = 0; i < 40; i++) {
		const struct fd_acl_token *t = fd_acl_find(acl, secret[i], 32);
		char id[16], wrong[33];

		snprintf(id, sizeof(id), "t%d", i);
		CHECK(t && strcmp(t->id, id) == 0);
		memcpy(wrong, secret[i], 33);
		wrong[unit_rand_below(32)] ^= 0x01;
		CHECK(fd_acl_find(acl, wrong, 32) == NULL);
		CHECK(fd_acl_find(acl, secret[i], 31) == NULL);
	}
	fd_acl_unref(acl);
}

TEST(file_size_limit)
{
	size_t n = FD_ACL_MAX_FILE + 1;
	char *big = malloc(n);
	struct fd_err err;

	REQUIRE(big);
	memset(big, ' ', n);
	memcpy(big, "{\"tokens\":[]}", 13);
	CHECK(fd_acl_parse(big, n, &err) == NULL);
	CHECK_STR(err.msg, "larger than 1048576 bytes");
	{
		struct fd_acl *acl = fd_acl_parse(big, n - 1, &err);

		CHECK(acl != NULL); /* exactly the limit: fine */
		fd_acl_unref(acl);
	}
	free(big);
}

TEST(token_valid)
{
	CHECK(fd_acl_token_valid(S("abc")));
	CHECK(!fd_acl_token_valid(S("")));
	CHECK(!fd_acl_token_valid(S("a b")));
	CHECK(!fd_acl_token_valid(S("a\r\nX-Evil: 1")));
	CHECK(!fd_acl_token_valid(S("caf\xc3\xa9")));
}

TEST(load_file)
{
	char dir[] = "/tmp/test_acl.XXXXXX", path[64];
	struct fd_err err;
	struct fd_acl *acl;
	int fd;

	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/acl.json", dir);
	acl = fd_acl_load(path, &err);
	CHECK(acl == NULL);
	CHECK(strstr(err.msg, "unable to open") && strstr(err.msg, "No such file"));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, S("{\"tokens\":[]}")) > 0);
	close(fd);
	acl = fd_acl_load(path, &err);
	CHECK(acl != NULL);
	fd_acl_unref(acl);
	chmod(path, 0620);
	acl = fd_acl_load(path, &err);
	CHECK(acl == NULL);
	CHECK(strstr(err.msg, "is writable by group or others (mode 620)"));
	chmod(path, 0644); /* readable is fine (token_sha256 files) */
	acl = fd_acl_load(path, &err);
	CHECK(acl != NULL);
	fd_acl_unref(acl);
	fd = open(path, O_WRONLY | O_TRUNC);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, S("{\"tokens\":[1]}")) > 0);
	close(fd);
	acl = fd_acl_load(path, &err);
	CHECK(acl == NULL);
	CHECK(strstr(err.msg, "acl.json': token 1: not an object"));
	acl = fd_acl_load(dir, &err);
	CHECK(acl == NULL);
	CHECK(strstr(err.msg, "is not a regular file"));
	unlink(path);
	rmdir(dir);
}
