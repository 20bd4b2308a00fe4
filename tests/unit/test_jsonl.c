#include "buf.h"
#include "jsonl.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Feeds data through a pipe-backed reader; returns the statuses in order. */
struct result {
	int st[64];
	unsigned long line[64];
	int n;
	char first_err[256];
};

static void feed(const char *data, size_t len, size_t max_line, int plain,
		 struct result *res)
{
	FILE *f = tmpfile();
	struct fd_jsonl_reader r;
	struct json_object *o;
	struct fd_err err;

	fwrite(data, 1, len, f);
	fflush(f);
	rewind(f);
	fd_jsonl_reader_init(&r, fileno(f), max_line);
	r.plain_ok = plain;
	memset(res, 0, sizeof(*res));
	while (res->n < 64) {
		int st = fd_jsonl_read(&r, &o, &err);

		res->st[res->n] = st;
		res->line[res->n++] = r.lineno;
		if (st == FD_JSONL_BAD && !res->first_err[0])
			snprintf(res->first_err, sizeof(res->first_err), "%s",
				 err.msg);
		json_object_put(o);
		if (st == FD_JSONL_EOF || st == FD_JSONL_IOERR)
			break;
	}
	fd_jsonl_reader_release(&r);
	fclose(f);
}

TEST(good_bad_and_line_numbers)
{
	const char in[] =
		"{\"a\":1}\n\n{\"b\":\n[1,2]\n{\"c\":\"x\"} tail\n  {\"d\":true}  \r\n{\"e\":1}";
	struct result res;

	feed(in, sizeof(in) - 1, 0, 0, &res);
	REQUIRE(res.n == 7);
	CHECK_EQ(res.st[0], FD_JSONL_OK);
	CHECK_EQ(res.line[0], 1);
	CHECK_EQ(res.st[1], FD_JSONL_BAD); /* truncated object, line 3 */
	CHECK_EQ(res.line[1], 3);
	CHECK_EQ(res.st[2], FD_JSONL_BAD); /* array, not an object */
	CHECK_EQ(res.line[2], 4);
	CHECK_EQ(res.st[3], FD_JSONL_BAD); /* trailing data */
	CHECK_EQ(res.st[4], FD_JSONL_OK);
	CHECK_EQ(res.line[4], 6);
	CHECK_EQ(res.st[5], FD_JSONL_OK); /* last line without newline */
	CHECK_EQ(res.line[5], 7);
	CHECK_EQ(res.st[6], FD_JSONL_EOF);
	CHECK(strncmp(res.first_err, "line 3: invalid JSON", 20) == 0);
}

TEST(invalid_utf8)
{
	const char in[] =
		"{\"a\":\"\xc3\x28\"}\n{\"a\":\"\xed\xa0\x80\"}\n{\"a\":\"\xc3\xa9\"}\n";
	struct result res;

	feed(in, sizeof(in) - 1, 0, 0, &res);
	REQUIRE(res.n == 4);
	CHECK_EQ(res.st[0], FD_JSONL_BAD);
	CHECK_EQ(res.st[1], FD_JSONL_BAD);
	CHECK_EQ(res.st[2], FD_JSONL_OK);
	CHECK_STR(res.first_err, "line 1: invalid UTF-8");
}

TEST(long_line_skipped_rest_read)
{
	size_t big = 10 << 20;
	char *in = malloc(big + 64);
	struct result res;
	size_t n = 0;

	n += (size_t)sprintf(in, "{\"a\":1}\n{\"x\":\"");
	memset(in + n, 'x', big);
	n += big;
	n += (size_t)sprintf(in + n, "\"}\n{\"b\":2}\n");
	feed(in, n, 0, 0, &res);
	free(in);
	REQUIRE(res.n == 4);
	CHECK_EQ(res.st[0], FD_JSONL_OK);
	CHECK_EQ(res.st[1], FD_JSONL_BAD);
	CHECK_EQ(res.line[1], 2);
	CHECK_EQ(res.st[2], FD_JSONL_OK);
	CHECK_EQ(res.line[2], 3);
	CHECK(strstr(res.first_err, "longer than") != NULL);
}

TEST(long_last_line_without_newline)
{
	char in[300];
	struct result res;

	memset(in, 'x', sizeof(in));
	feed(in, sizeof(in), 100, 0, &res);
	REQUIRE(res.n == 2);
	CHECK_EQ(res.st[0], FD_JSONL_BAD);
	CHECK_EQ(res.line[0], 1);
	CHECK_EQ(res.st[1], FD_JSONL_EOF);
}

TEST(empty_stream)
{
	struct result res;

	feed("", 0, 0, 0, &res);
	CHECK_EQ(res.n, 1);
	CHECK_EQ(res.st[0], FD_JSONL_EOF);
}

TEST(plain_lines)
{
	const char in[] = "127.0.0.1:4380\n{\"addr\":\"x:1\"}\n# not json either\n";
	struct result res;

	feed(in, sizeof(in) - 1, 0, 1, &res);
	REQUIRE(res.n == 4);
	CHECK_EQ(res.st[0], FD_JSONL_OK);
	CHECK_EQ(res.st[1], FD_JSONL_OK);
	CHECK_EQ(res.st[2], FD_JSONL_OK);
}

TEST(depth_limit)
{
	char in[512];
	size_t n = 0;
	struct fd_err err;
	struct json_object *o;

	for (int i = 0; i < 100; i++)
		in[n++] = '[';
	for (int i = 0; i < 100; i++)
		in[n++] = ']';
	o = fd_json_parse(in, n, &err);
	CHECK(o == NULL);
	o = fd_json_parse(in + 40, n - 80, &err);
	CHECK(o != NULL);
	json_object_put(o);
}

TEST(parse_scalars)
{
	struct json_object *o = fd_json_parse("42", 2, NULL);

	REQUIRE(o != NULL);
	CHECK_EQ(json_object_get_int(o), 42);
	json_object_put(o);
	CHECK(fd_json_parse("4 2", 3, NULL) == NULL);
	CHECK(fd_json_parse("", 0, NULL) == NULL);
	CHECK(fd_json_parse("'a'", 3, NULL) == NULL);
}

/* Property: random valid UTF-8 code points validate; random bytes validate
 * exactly when a reference decoder agrees. */
static int ref_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned cp, n;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return 0;
		if (i + n >= len)
			return 0;
		for (unsigned k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

TEST(utf8_random_against_reference)
{
	unsigned char buf[16];

	for (int i = 0; i < 200000; i++) {
		size_t len = unit_rand_below(sizeof(buf)) + 1;

		for (size_t k = 0; k < len; k++) {
			uint64_t r = unit_rand();
			/* bias towards interesting bytes */
			buf[k] = (r & 3) ? (unsigned char)(0x80 + (r >> 8) % 0x78)
					 : (unsigned char)(r >> 8);
		}
		if (fd_utf8_valid((const char *)buf, len) != ref_valid(buf, len)) {
			unit_fail(__FILE__, __LINE__,
				  "disagree at case %d (len %zu)", i, len);
			return;
		}
	}
}

/* Property: fd_json_append_str output parses back (json-c) to the same
 * string, for random strings of ASCII, control characters and UTF-8. */
TEST(append_str_roundtrip_random)
{
	static const char *const pieces[] = {
		"a",	    "\"", "\\", "\n", "\x01",	      "\x1f",
		"\xc3\xa9", "/",  " ",	"\t", "\xe2\x82\xac", "\x7f"};
	char s[256];

	for (int i = 0; i < 5000; i++) {
		struct fd_buf b = FD_BUF_INIT(4096);
		struct json_object *o;
		size_t len = 0;
		int n = (int)unit_rand_below(30);

		for (int k = 0; k < n; k++) {
			const char *p = pieces[unit_rand_below(12)];

			memcpy(s + len, p, strlen(p));
			len += strlen(p);
		}
		REQUIRE(fd_json_append_str(&b, s, len) == 0);
		o = fd_json_parse(b.data, b.len, NULL);
		REQUIRE(o != NULL);
		CHECK_EQ(json_object_get_string_len(o), len);
		CHECK(memcmp(json_object_get_string(o), s, len) == 0);
		json_object_put(o);
		fd_buf_release(&b);
	}
}
