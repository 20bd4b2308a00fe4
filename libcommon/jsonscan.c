#include "jsonscan.h"
#include "jsonl.h"

#include <string.h>

struct scan {
	const unsigned char *p, *end, *start;
	const char *why;
};

static int fail(struct scan *s, const char *why)
{
	if (!s->why)
		s->why = why;
	return -1;
}

static void ws(struct scan *s)
{
	while (s->p < s->end &&
	       (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* At the opening quote. Sets *escaped. */
static int string(struct scan *s, int *escaped)
{
	const unsigned char *p = s->p + 1, *end = s->end;

	*escaped = 0;
	for (;;) {
		unsigned c;

		/* fast path over plain ASCII */
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p >= end) {
			s->p = p;
			return fail(s, "unterminated string");
		}
		c = *p;
		if (c == '"') {
			s->p = p + 1;
			return 0;
		}
		if (c < 0x20) {
			s->p = p;
			return fail(s, "control character in a string");
		}
		if (c == '\\') {
			*escaped = 1;
			if (p + 1 >= end) {
				s->p = p;
				return fail(s, "unterminated string");
			}
			c = p[1];
			if (c == 'u') {
				int v = 0;

				if (end - p < 6) {
					s->p = p;
					return fail(s, "bad \\u escape");
				}
				for (int i = 2; i < 6; i++) {
					int h = hex(p[i]);

					if (h < 0) {
						s->p = p;
						return fail(s, "bad \\u escape");
					}
					v = v * 16 + h;
				}
				p += 6;
				(void)v; /* lone surrogates are accepted, as json-c does */
				continue;
			}
			if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
				s->p = p;
				return fail(s, "bad escape");
			}
			p += 2;
			continue;
		}
		/* UTF-8 sequence */
		{
			unsigned n, min, cp;

			if (c >= 0xc2 && c <= 0xdf) {
				n = 1;
				min = 0x80;
				cp = c & 0x1f;
			} else if (c >= 0xe0 && c <= 0xef) {
				n = 2;
				min = 0x800;
				cp = c & 0x0f;
			} else if (c >= 0xf0 && c <= 0xf4) {
				n = 3;
				min = 0x10000;
				cp = c & 0x07;
			} else {
				s->p = p;
				return fail(s, "invalid UTF-8");
			}
			if ((size_t)(end - p) <= n) {
				s->p = p;
				return fail(s, "invalid UTF-8");
			}
			for (unsigned i = 1; i <= n; i++) {
				if ((p[i] & 0xc0) != 0x80) {
					s->p = p;
					return fail(s, "invalid UTF-8");
				}
				cp = cp << 6 | (p[i] & 0x3f);
			}
			if (cp < min || cp > 0x10ffff ||
			    (cp >= 0xd800 && cp <= 0xdfff)) {
				s->p = p;
				return fail(s, "invalid UTF-8");
			}
			p += n + 1;
		}
	}
}

static int digits(struct scan *s)
{
	const unsigned char *b = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > b ? 0 : fail(s, "bad number");
}

static int number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return fail(s, "bad number");
	if (*s->p == '0') {
		s->p++;
	} else if (digits(s) < 0) {
		return -1;
	}
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s) < 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) < 0)
			return -1;
	}
	return 0;
}

static int literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, "invalid literal");
	s->p += n;
	return 0;
}

static int value(struct scan *s, int depth, fd_json_member_fn fn, void *arg);

static int object(struct scan *s, int depth, fd_json_member_fn fn, void *arg)
{
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		struct fd_json_member m;
		const unsigned char *v;

		if (s->p >= s->end || *s->p != '"')
			return fail(s, "expected a key");
		m.key = (const char *)s->p + 1;
		if (string(s, &m.key_escaped) < 0)
			return -1;
		m.key_len = (size_t)((const char *)s->p - 1 - m.key);
		ws(s);
		if (s->p >= s->end || *s->p != ':')
			return fail(s, "expected ':'");
		s->p++;
		ws(s);
		v = s->p;
		m.value_escaped = 0;
		if (s->p < s->end && *s->p == '"') {
			if (string(s, &m.value_escaped) < 0)
				return -1;
		} else if (value(s, depth + 1, NULL, NULL) < 0) {
			return -1;
		}
		if (fn) {
			m.value = (const char *)v;
			m.value_len = (size_t)(s->p - v);
			if (fn(arg, &m) != 0) {
				s->p = v;
				return fail(s, "rejected by caller");
			}
		}
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return 0;
		}
		return fail(s, "expected ',' or '}'");
	}
}

static int array(struct scan *s, int depth)
{
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (value(s, depth + 1, NULL, NULL) < 0)
			return -1;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return fail(s, "expected ',' or ']'");
	}
}

static int value(struct scan *s, int depth, fd_json_member_fn fn, void *arg)
{
	int esc;

	if (s->p >= s->end)
		return fail(s, "expected a value");
	/* json-c's tokener of depth FD_JSON_MAX_DEPTH takes one level less */
	if (depth >= FD_JSON_MAX_DEPTH && (*s->p == '{' || *s->p == '['))
		return fail(s, "nested too deep");
	switch (*s->p) {
	case '{': return object(s, depth, fn, arg);
	case '[': return fn ? fail(s, "not an object") : array(s, depth);
	case '"': return fn ? fail(s, "not an object") : string(s, &esc);
	case 't': return fn ? fail(s, "not an object") : literal(s, "true");
	case 'f': return fn ? fail(s, "not an object") : literal(s, "false");
	case 'n': return fn ? fail(s, "not an object") : literal(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return fn ? fail(s, "not an object") : number(s);
		return fail(s, "unexpected character");
	}
}

int fd_json_scan(const char *str, size_t len, fd_json_member_fn fn, void *arg,
		 struct fd_err *err)
{
	struct scan s = {(const unsigned char *)str, (const unsigned char *)str + len,
			 (const unsigned char *)str, NULL};

	ws(&s);
	if (value(&s, 1, fn, arg) < 0)
		goto bad;
	ws(&s);
	if (s.p != s.end) {
		fail(&s, "trailing characters");
		goto bad;
	}
	return 0;
bad:
	return fd_err_set(err, "invalid JSON: %s at byte %zu", s.why,
			  (size_t)(s.p - s.start) + 1);
}

size_t fd_json_quote(char *out, size_t cap, const char *str, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	size_t n = 0;

#define PUT(c)                        \
	do {                          \
		if (n < cap)          \
			out[n] = (c); \
		n++;                  \
	} while (0)
	PUT('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c == '"' || c == '\\') {
			PUT('\\');
			PUT((char)c);
		} else if (c < 0x20 || c == 0x7f) {
			PUT('\\');
			PUT('u');
			PUT('0');
			PUT('0');
			PUT(hexd[c >> 4]);
			PUT(hexd[c & 15]);
		} else {
			PUT((char)c);
		}
	}
	PUT('"');
#undef PUT
	return n;
}
