#include "buf.h"
#include "jsonl.h"
#include "jsonscan.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#define S(x) x, sizeof(x) - 1

/* ---- a random JSON generator ---- */

static void put(struct fd_buf *b, const char *s)
{
	fd_buf_append(b, s, strlen(s));
}

static void ws(struct fd_buf *b)
{
	static const char *const w[] = {"", "", "", " ", "\n", "\t", "\r\n  "};

	put(b, w[unit_rand_below(7)]);
}

/* A code point as UTF-8, any plane, no surrogates. */
static void put_utf8(struct fd_buf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	fd_buf_append(b, u, n);
}

static unsigned rand_cp(void)
{
	unsigned cp;

	switch (unit_rand_below(6)) {
	case 0: return 0x80 + (unsigned)unit_rand_below(0x780);
	case 1:
		do
			cp = 0x800 + (unsigned)unit_rand_below(0xf800);
		while (cp >= 0xd800 && cp <= 0xdfff);
		return cp;
	case 2: return 0x10000 + (unsigned)unit_rand_below(0x100000);
	default: return 0x20 + (unsigned)unit_rand_below(0x5f);
	}
}

static void gen_string(struct fd_buf *b)
{
	size_t n = unit_rand_below(12);

	put(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned cp = rand_cp();
		char esc[16];

		if (cp == '"' || cp == '\\') {
			put(b, cp == '"' ? "\\\"" : "\\\\");
			continue;
		}
		switch (unit_rand_below(8)) {
		case 0: {
			static const char *const e[] = {"\\n",	"\\t", "\\/",
							"\\b",	"\\f", "\\r",
							"\\\"", "\\\\"};

			put(b, e[unit_rand_below(8)]);
			break;
		}
		case 1:
			if (cp < 0x10000) {
				snprintf(esc, sizeof(esc), "\\u%04X", cp);
			} else {
				unsigned v = cp - 0x10000;

				snprintf(esc, sizeof(esc), "\\u%04x",
					 0xd800 + (v >> 10));
				put(b, esc);
				snprintf(esc, sizeof(esc), "\\u%04x",
					 0xdc00 + (v & 0x3ff));
			}
			put(b, esc);
			break;
		default: put_utf8(b, cp);
		}
	}
	put(b, "\"");
}

static void gen_number(struct fd_buf *b)
{
	char num[64];
	size_t n = 0;

	if (unit_rand_below(3) == 0)
		num[n++] = '-';
	if (unit_rand_below(4) == 0) {
		num[n++] = '0';
	} else {
		num[n++] = (char)('1' + unit_rand_below(9));
		for (size_t k = unit_rand_below(6); k > 0; k--)
			num[n++] = (char)('0' + unit_rand_below(10));
	}
	if (unit_rand_below(3) == 0) {
		num[n++] = '.';
		for (size_t k = 1 + unit_rand_below(4); k > 0; k--)
			num[n++] = (char)('0' + unit_rand_below(10));
	}
	if (unit_rand_below(4) == 0) {
		num[n++] = unit_rand_below(2) ? 'e' : 'E';
		if (unit_rand_below(2))
			num[n++] = unit_rand_below(2) ? '+' : '-';
		for (size_t k = 1 + unit_rand_below(2); k > 0; k--)
			num[n++] = (char)('0' + unit_rand_below(10));
	}
	fd_buf_append(b, num, n);
}

static void gen_value(struct fd_buf *b, int depth)
{
	int kind = (int)unit_rand_below(depth > 6 ? 6 : 8);

	switch (kind) {
	case 0: put(b, "true"); break;
	case 1: put(b, "false"); break;
	case 2: put(b, "null"); break;
	case 3:
	case 4: gen_number(b); break;
	case 5: gen_string(b); break;
	case 6: {
		size_t n = unit_rand_below(5);

		put(b, "[");
		ws(b);
		for (size_t i = 0; i < n; i++) {
			if (i) {
				put(b, ",");
				ws(b);
			}
			gen_value(b, depth + 1);
			ws(b);
		}
		put(b, "]");
		break;
	}
	default: {
		size_t n = unit_rand_below(5);

		put(b, "{");
		ws(b);
		for (size_t i = 0; i < n; i++) {
			if (i) {
				put(b, ",");
				ws(b);
			}
			gen_string(b);
			ws(b);
			put(b, ":");
			ws(b);
			gen_value(b, depth + 1);
			ws(b);
		}
		put(b, "}");
	}
	}
}

static void gen_text(struct fd_buf *b)
{
	b->len = 0;
	ws(b);
	gen_value(b, 0);
	ws(b);
}

/* Mutations: a byte changed, removed, inserted or duplicated; a piece cut
 * off; a byte from the JSON alphabet put somewhere. */
static void mutate(struct fd_buf *b)
{
	static const char alphabet[] = "{}[]\",:\\/0123456789.eE+-tfnrlu \t\n"
				       "\x01\x1f\x7f\x80\xbf\xc0\xc2\xe0\xed\xf0"
				       "\xf4\xf5\xff";
	int n = 1 + (int)unit_rand_below(3);

	for (int i = 0; i < n; i++) {
		size_t at = b->len ? unit_rand_below(b->len) : 0;
		char c = unit_rand_below(3)
				 ? alphabet[unit_rand_below(sizeof(alphabet) - 1)]
				 : (char)unit_rand();

		switch (unit_rand_below(5)) {
		case 0:
			if (b->len)
				b->data[at] = c;
			break;
		case 1:
			if (b->len) {
				memmove(b->data + at, b->data + at + 1,
					b->len - at - 1);
				b->len--;
			}
			break;
		case 2:
			if (fd_buf_grow(b, 1)) {
				memmove(b->data + at + 1, b->data + at,
					b->len - 1 - at);
				b->data[at] = c;
			}
			break;
		case 3: b->len = at; break;
		default:
			if (b->len && fd_buf_grow(b, 1)) {
				memmove(b->data + at + 1, b->data + at,
					b->len - 1 - at);
			}
		}
	}
}

/* json-c's verdict, with the reader's rules (strict, UTF-8, depth). */
static int jsonc_ok(const char *s, size_t len)
{
	struct json_object *o;
	int ok = fd_json_parse_value(s, len, &o, NULL) == 0;

	json_object_put(o);
	return ok;
}

static char *exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	if (len)
		memcpy(p, s, len);
	return p;
}

static int scan_ok(const char *s, size_t len)
{
	char *e = exact(s, len);
	int ok = fd_json_scan(e, len, NULL, NULL, NULL) == 0;

	free(e);
	return ok;
}

/* Where json-c (strict mode) is laxer than RFC 8259, and fd_json_scan is
 * not: a raw control character inside a string, a number with a leading
 * zero ("00", "-01"), a '.' without digits after it ("1.") or before it
 * ("-.5"). An independent look at the text: does it hold one of those? */
static int has_jsonc_laxness(const char *s, size_t len)
{
	int in_str = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			else if (c < 0x20)
				return 1;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '.' &&
			   (i + 1 == len || s[i + 1] < '0' || s[i + 1] > '9')) {
			return 1;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '.') {
			return 1;
		} else if (c == '0' && i + 1 < len && s[i + 1] >= '0' &&
			   s[i + 1] <= '9' &&
			   (i == 0 || s[i - 1] < '0' || s[i - 1] > '9') &&
			   (i == 0 || s[i - 1] != '.')) {
			return 1;
		}
	}
	return 0;
}

static void show(const char *what, const char *s, size_t len)
{
	char out[512];
	size_t n = 0;

	for (size_t k = 0; k < len && n + 5 < sizeof(out); k++) {
		unsigned char c = (unsigned char)s[k];

		if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(out + n, sizeof(out) - n, "\\x%02x", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	unit_fail(__FILE__, __LINE__, "%s: %s", what, out);
}

/* Valid texts: both accept, every one. */
TEST(agrees_with_jsonc_on_valid_texts)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);

	for (int i = 0; i < 20000 && !unit_failed; i++) {
		gen_text(&b);
		if (!scan_ok(b.data, b.len))
			show("fd_json_scan refused a valid text", b.data, b.len);
		if (!jsonc_ok(b.data, b.len))
			show("json-c refused a generated text", b.data, b.len);
	}
	fd_buf_release(&b);
}

/* Mutated texts: what fd_json_scan accepts json-c accepts; what it refuses
 * json-c refuses too, but where json-c is known to be lax. */
TEST(agrees_with_jsonc_on_mutated_texts)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);
	int refused = 0, lax = 0;

	for (int i = 0; i < 50000 && !unit_failed; i++) {
		int a, j;

		gen_text(&b);
		mutate(&b);
		a = scan_ok(b.data, b.len);
		j = jsonc_ok(b.data, b.len);
		if (a && !j)
			show("fd_json_scan accepted what json-c refuses",
			     b.data, b.len);
		else if (!a && j && !has_jsonc_laxness(b.data, b.len))
			show("fd_json_scan refused what json-c accepts", b.data,
			     b.len);
		refused += !a;
		lax += !a && j;
	}
	/* the mutations do reach both sides */
	CHECK(refused > 10000);
	CHECK(lax < refused / 4);
	fd_buf_release(&b);
}

TEST(examples)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{"0", 1},
		{"-0", 1},
		{"-0.0e+0", 1},
		{"1E5", 1},
		{"[]", 1},
		{"{}", 1},
		{" \t\r\n\"\" ", 1},
		{"\"\\ud83d\\ude00\"", 1},
		{"\"\xf0\x9f\x98\x80\"", 1},
		{"\"\xed\xa0\x80\"", 0},     /* a surrogate in UTF-8 */
		{"\"\xc0\xaf\"", 0},	     /* overlong */
		{"\"\xf4\x90\x80\x80\"", 0}, /* past U+10FFFF */
		{"\"\xe2\x82\"", 0},	     /* cut short */
		{"\"\x01\"", 0},
		{"\"\\x\"", 0},
		{"\"\\u12\"", 0},
		{"01", 0},
		{"1.", 0},
		{".5", 0},
		{"-", 0},
		{"+1", 0},
		{"1e", 0},
		{"[1,]", 0},
		{"{\"a\":1,}", 0},
		{"{\"a\" 1}", 0},
		{"{1:1}", 0},
		{"tru", 0},
		{"nul", 0},
		{"[1] [2]", 0},
		{"", 0},
		{" ", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].s);

		if (scan_ok(cases[i].s, len) != cases[i].ok)
			show(cases[i].ok ? "refused" : "accepted", cases[i].s, len);
	}
}

/* ---- a piece at a time ---- */

/* The stream validator, fed in random pieces (each its own allocation),
 * gives fd_json_scan's verdict and error. */
static int stream_ok(const char *s, size_t len, char *why, size_t cap)
{
	struct fd_json_stream st;
	struct fd_err err;
	size_t off = 0;
	int rc = 0;

	fd_json_stream_init(&st);
	while (off < len) {
		size_t k = 1 + unit_rand_below(unit_rand_below(2) ? 4 : len - off);
		char *e;

		if (k > len - off)
			k = len - off;
		e = exact(s + off, k);
		if (fd_json_stream_feed(&st, e, k, &err) < 0)
			rc = -1;
		free(e);
		off += k;
	}
	if (fd_json_stream_end(&st, &err) < 0) {
		rc = -1;
		snprintf(why, cap, "%s", err.msg);
	}
	return rc == 0;
}

static size_t newlines_outside_strings(const char *s, size_t len)
{
	size_t n = 0;
	int in_str = 0;

	for (size_t i = 0; i < len; i++) {
		if (in_str && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			in_str = !in_str;
		else if (!in_str && (s[i] == '\n' || s[i] == '\r'))
			n++;
	}
	return n;
}

TEST(stream_agrees_with_scan)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);

	for (int i = 0; i < 60000 && !unit_failed; i++) {
		char why[256] = "";
		struct fd_err err;
		char *e;
		int a, st;

		gen_text(&b);
		if (i % 4)
			mutate(&b);
		e = exact(b.data, b.len);
		a = fd_json_scan(e, b.len, NULL, NULL, &err) == 0;
		free(e);
		st = stream_ok(b.data, b.len, why, sizeof(why));
		if (a != st)
			show(a ? "the stream refused what fd_json_scan accepts"
			       : "the stream accepted what fd_json_scan refuses",
			     b.data, b.len);
		else if (!a && strcmp(why, err.msg) != 0)
			unit_fail(__FILE__, __LINE__, "'%s' vs '%s'", why, err.msg);
		if (a && i % 4 == 0) {
			struct fd_json_stream s;

			fd_json_stream_init(&s);
			fd_json_stream_feed(&s, b.data, b.len, NULL);
			CHECK_EQ(s.newlines, newlines_outside_strings(b.data, b.len));
		}
	}
	fd_buf_release(&b);
}

TEST(stream_limits)
{
	struct fd_json_stream s;
	struct fd_err err;
	size_t n = 8 << 20;
	char *big = malloc(n);

	/* depth as fd_json_scan */
	for (int depth = 1; depth <= FD_JSON_MAX_DEPTH + 1; depth++) {
		fd_json_stream_init(&s);
		for (int i = 0; i < depth; i++)
			fd_json_stream_feed(&s, "[", 1, NULL);
		for (int i = 0; i < depth; i++)
			fd_json_stream_feed(&s, "]", 1, NULL);
		CHECK_EQ(fd_json_stream_end(&s, NULL) == 0, depth < FD_JSON_MAX_DEPTH);
	}
	/* 8 MiB in 64 KiB pieces; a failure sticks */
	memset(big, 'x', n);
	big[0] = '"';
	big[n - 1] = '"';
	fd_json_stream_init(&s);
	for (size_t off = 0; off < n; off += 65536)
		CHECK_EQ(fd_json_stream_feed(&s, big + off, 65536, NULL), 0);
	CHECK_EQ(fd_json_stream_end(&s, NULL), 0);
	CHECK_EQ(fd_json_stream_feed(&s, "x", 1, &err), -1);
	CHECK_STR(err.msg, "invalid JSON: trailing characters at byte 8388609");
	CHECK_EQ(fd_json_stream_feed(&s, "", 0, &err), -1);
	CHECK_EQ(fd_json_stream_end(&s, &err), -1);
	fd_json_stream_init(&s);
	CHECK_EQ(fd_json_stream_end(&s, &err), -1);
	CHECK_STR(err.msg, "invalid JSON: expected a value at byte 1");
	free(big);
}

/* Every byte value at every place in a long plain string (the scanners
 * skip plain bytes eight at a time): the same verdict from fd_json_scan,
 * the stream and json-c (but where json-c is lax). */
TEST(special_bytes_in_long_strings)
{
	char s[48];

	for (int c = 0; c < 256 && !unit_failed; c++) {
		for (size_t at = 1; at < sizeof(s) - 1; at++) {
			char why[256];
			int a, j;

			memset(s, 'a', sizeof(s));
			s[0] = '"';
			s[sizeof(s) - 1] = '"';
			s[at] = (char)c;
			a = scan_ok(s, sizeof(s));
			j = jsonc_ok(s, sizeof(s));
			CHECK_EQ(a, stream_ok(s, sizeof(s), why, sizeof(why)));
			CHECK_EQ(a, (c >= 0x20 && c < 0x80 && c != '"' && c != '\\'));
			if (a != j && !(c < 0x20 && j))
				unit_fail(__FILE__, __LINE__,
					  "byte 0x%02x at %zu", c, at);
		}
	}
}

/* ---- limits ---- */

TEST(depth_limit_as_jsonc)
{
	for (int depth = 1; depth <= FD_JSON_MAX_DEPTH + 3; depth++) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);

		for (int i = 0; i < depth; i++)
			put(&b, i % 2 ? "{\"k\":" : "[");
		put(&b, "1");
		for (int i = depth - 1; i >= 0; i--)
			put(&b, i % 2 ? "}" : "]");
		CHECK_EQ(scan_ok(b.data, b.len), depth < FD_JSON_MAX_DEPTH);
		CHECK_EQ(scan_ok(b.data, b.len), jsonc_ok(b.data, b.len));
		/* unclosed: never valid, at any depth */
		CHECK(!scan_ok(b.data, b.len - 1));
		fd_buf_release(&b);
	}
	/* deep garbage does not recurse without bound */
	{
		size_t n = 1 << 20;
		char *deep = malloc(n);

		memset(deep, '[', n);
		CHECK(!scan_ok(deep, n));
		free(deep);
	}
}

TEST(large_texts)
{
	size_t n = 8 << 20;
	char *s = malloc(n);
	struct fd_err err;

	/* an 8 MiB string, read to its last byte and no further */
	memset(s, 'x', n);
	s[0] = '"';
	s[n - 1] = '"';
	CHECK_EQ(fd_json_scan(s, n, NULL, NULL, &err), 0);
	s[n - 1] = 'x';
	CHECK_EQ(fd_json_scan(s, n, NULL, NULL, &err), -1);
	CHECK_STR(err.msg, "invalid JSON: unterminated string at byte 8388609");
	/* a long array of numbers */
	s[0] = '[';
	for (size_t i = 1; i + 1 < n; i += 2) {
		s[i] = (char)('0' + i % 10);
		s[i + 1] = ',';
	}
	s[n - 2] = '1';
	s[n - 1] = ']';
	CHECK_EQ(fd_json_scan(s, n, NULL, NULL, &err), 0);
	free(s);
}

/* ---- field slicing ---- */

struct sliced {
	struct json_object *rebuilt;
	int bad;
};

static int on_member(void *arg, const struct fd_json_member *m)
{
	struct sliced *sl = arg;
	struct fd_buf k = FD_BUF_INIT(1 << 20);
	struct json_object *key, *val;

	/* the key's bytes, between its quotes; the flag says if escaped */
	CHECK_EQ(m->key_escaped, memchr(m->key, '\\', m->key_len) != NULL);
	put(&k, "\"");
	fd_buf_append(&k, m->key, m->key_len);
	put(&k, "\"");
	/* the value's exact text: no space around it, valid on its own */
	CHECK(m->value_len > 0);
	CHECK(m->value[0] != ' ' && m->value[m->value_len - 1] != ' ' &&
	      m->value[0] != '\n' && m->value[m->value_len - 1] != '\n');
	if (m->value[0] == '"')
		CHECK_EQ(m->value_escaped,
			 memchr(m->value, '\\', m->value_len) != NULL);
	else
		CHECK_EQ(m->value_escaped, 0);
	if (fd_json_parse_value(k.data, k.len, &key, NULL) < 0 ||
	    fd_json_parse_value(m->value, m->value_len, &val, NULL) < 0) {
		sl->bad = 1;
		fd_buf_release(&k);
		return 0;
	}
	json_object_object_add(sl->rebuilt, json_object_get_string(key), val);
	json_object_put(key);
	fd_buf_release(&k);
	return 0;
}

/* The members fd_json_scan slices out of an object, parsed one by one by
 * json-c, make the object json-c parses from the whole text. */
TEST(field_slices_are_exact)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);
	int objects = 0;

	for (int i = 0; i < 20000 && !unit_failed; i++) {
		struct sliced sl = {json_object_new_object(), 0};
		struct json_object *whole;

		gen_text(&b);
		if (fd_json_parse_value(b.data, b.len, &whole, NULL) < 0) {
			show("json-c refused a generated text", b.data, b.len);
			break;
		}
		if (json_object_get_type(whole) == json_type_object) {
			objects++;
			CHECK_EQ(fd_json_scan(b.data, b.len, on_member, &sl, NULL), 0);
			CHECK(!sl.bad);
			if (!json_object_equal(whole, sl.rebuilt))
				show("the slices differ from json-c's object",
				     b.data, b.len);
		} else {
			struct fd_err err;

			/* slicing wants an object */
			CHECK_EQ(fd_json_scan(b.data, b.len, on_member, &sl, &err),
				 -1);
		}
		json_object_put(whole);
		json_object_put(sl.rebuilt);
	}
	CHECK(objects > 1000);
	fd_buf_release(&b);
}

static int reject_b(void *arg, const struct fd_json_member *m)
{
	(void)arg;
	return m->key_len == 1 && m->key[0] == 'b';
}

TEST(caller_can_reject)
{
	struct fd_err err;

	CHECK_EQ(fd_json_scan(S("{\"a\":1,\"b\":2}"), reject_b, NULL, &err), -1);
	CHECK_STR(err.msg, "invalid JSON: rejected by caller at byte 12");
	CHECK_EQ(fd_json_scan(S("{\"a\":1,\"c\":2}"), reject_b, NULL, &err), 0);
}

/* ---- quoting ---- */

/* fd_json_quote writes a literal json-c reads back as the same string. */
TEST(quote_round_trip)
{
	struct fd_buf b = FD_BUF_INIT(1 << 20);

	for (int i = 0; i < 5000 && !unit_failed; i++) {
		char out[1024];
		size_t n, need;
		struct json_object *o;

		b.len = 0;
		for (size_t k = unit_rand_below(20); k > 0; k--)
			put_utf8(&b, unit_rand_below(4)
					     ? rand_cp()
					     : (unsigned)unit_rand_below(0x80));
		need = fd_json_quote(NULL, 0, b.data ? b.data : "", b.len);
		n = fd_json_quote(out, sizeof(out), b.data ? b.data : "", b.len);
		REQUIRE(n == need && n <= sizeof(out));
		CHECK(scan_ok(out, n));
		REQUIRE(fd_json_parse_value(out, n, &o, NULL) == 0);
		CHECK_EQ((size_t)json_object_get_string_len(o), b.len);
		CHECK(b.len == 0 ||
		      memcmp(json_object_get_string(o), b.data, b.len) == 0);
		json_object_put(o);
	}
	fd_buf_release(&b);
}
