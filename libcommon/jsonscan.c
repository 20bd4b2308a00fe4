#include "jsonscan.h"
#include "jsonl.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Skips the bytes a string can hold as they are (printable ASCII but for
 * '"' and '\\'), eight at a time: a payload is mostly those. */
static const unsigned char *skip_plain(const unsigned char *p,
				       const unsigned char *end)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;

#ifdef __SSE2__
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* signed: bytes >= 0x80 are below 0x20 too */
		__m128i m = _mm_or_si128(
			_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
			_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
				     _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
		int bits = _mm_movemask_epi8(m);

		if (bits)
			return p + __builtin_ctz((unsigned)bits);
		p += 16;
	}
#endif
	while (end - p >= 8) {
		uint64_t x, q, b;

		memcpy(&x, p, 8);
		q = x ^ (ones * '"');
		b = x ^ (ones * '\\');
		/* any byte < 0x20, >= 0x80, '"' or '\\' */
		if ((((x - ones * 0x20) & ~x) | x | ((q - ones) & ~q) |
		     ((b - ones) & ~b)) &
		    highs)
			break;
		p += 8;
	}
	while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
		p++;
	return p;
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

		p = skip_plain(p, end);
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

/* ---- the same, a piece at a time ---- */

enum {
	JS_VALUE,     /* a value is expected */
	JS_ARR_FIRST, /* after '[': a value or ']' */
	JS_OBJ_FIRST, /* after '{': a key or '}' */
	JS_OBJ_KEY,   /* after ',' in an object: a key */
	JS_COLON,     /* after a key */
	JS_AFTER,     /* after a value */
	JS_STR,
	JS_ESC,	 /* after '\' */
	JS_HEX,	 /* sub hex digits of \u left */
	JS_UTF8, /* sub continuation bytes left */
	JS_LIT,	 /* lit[sub] is next */
	JS_MINUS,
	JS_ZERO,
	JS_INT,
	JS_DOT,
	JS_FRAC,
	JS_EXP_START,
	JS_EXP_SIGN,
	JS_EXP,
};

void fd_json_stream_init(struct fd_json_stream *s)
{
	memset(s, 0, sizeof(*s));
	s->state = JS_VALUE;
}

static int js_fail(struct fd_json_stream *s, const char *why, size_t at,
		   struct fd_err *err)
{
	if (!s->why) {
		s->why = why;
		s->why_at = at;
	}
	return fd_err_set(err, "invalid JSON: %s at byte %zu", s->why, s->why_at + 1);
}

int fd_json_stream_feed(struct fd_json_stream *s, const char *str, size_t len,
			struct fd_err *err)
{
	const unsigned char *p = (const unsigned char *)str, *end = p + len;
	const unsigned char *start = p;
	size_t base = s->off;

	if (s->why)
		return js_fail(s, s->why, s->why_at, err);
	s->off += len;
#define AT ((size_t)(p - start) + base)
#define FAIL(why) return js_fail(s, why, AT, err)
	while (p < end) {
		unsigned c = *p;

		switch (s->state) {
		case JS_STR:
			p = skip_plain(p, end);
			if (p == end)
				continue;
			c = *p;
			if (c == '"') {
				s->state = s->in_key ? JS_COLON : JS_AFTER;
				p++;
				continue;
			}
			if (c < 0x20)
				FAIL("control character in a string");
			s->seq_at = AT;
			if (c == '\\') {
				s->state = JS_ESC;
			} else if (c >= 0xc2 && c <= 0xdf) {
				s->state = JS_UTF8;
				s->sub = 1;
				s->lo = 0x80;
				s->hi = 0xbf;
			} else if (c >= 0xe0 && c <= 0xef) {
				s->state = JS_UTF8;
				s->sub = 2;
				s->lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
				s->hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
			} else if (c >= 0xf0 && c <= 0xf4) {
				s->state = JS_UTF8;
				s->sub = 3;
				s->lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
				s->hi = c == 0xf4 ? 0x8f : 0xbf; /* > U+10FFFF */
			} else {
				FAIL("invalid UTF-8");
			}
			p++;
			continue;
		case JS_UTF8:
			if (c < s->lo || c > s->hi)
				return js_fail(s, "invalid UTF-8", s->seq_at, err);
			s->lo = 0x80;
			s->hi = 0xbf;
			if (--s->sub == 0)
				s->state = JS_STR;
			p++;
			continue;
		case JS_ESC:
			if (c == 'u') {
				s->state = JS_HEX;
				s->sub = 4;
			} else if (c && strchr("\"\\/bfnrt", (int)c)) {
				s->state = JS_STR;
			} else {
				return js_fail(s, "bad escape", s->seq_at, err);
			}
			p++;
			continue;
		case JS_HEX:
			if (hex((int)c) < 0)
				return js_fail(s, "bad \\u escape", s->seq_at, err);
			if (--s->sub == 0)
				s->state = JS_STR;
			p++;
			continue;
		case JS_LIT:
			if (c != (unsigned char)s->lit[s->sub])
				return js_fail(s, "invalid literal", s->seq_at, err);
			p++;
			if (s->lit[++s->sub] == '\0')
				s->state = JS_AFTER;
			continue;
		case JS_MINUS:
			if (c == '0')
				s->state = JS_ZERO;
			else if (c >= '1' && c <= '9')
				s->state = JS_INT;
			else
				FAIL("bad number");
			p++;
			continue;
		case JS_INT:
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p == end)
				continue;
			c = *p;
			/* fall through */
		case JS_ZERO:
			if (c == '.') {
				s->state = JS_DOT;
				p++;
			} else if (c == 'e' || c == 'E') {
				s->state = JS_EXP_START;
				p++;
			} else {
				s->state = JS_AFTER; /* c comes again */
			}
			continue;
		case JS_DOT:
			if (c < '0' || c > '9')
				FAIL("bad number");
			s->state = JS_FRAC;
			p++;
			continue;
		case JS_FRAC:
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p == end)
				continue;
			if (*p == 'e' || *p == 'E') {
				s->state = JS_EXP_START;
				p++;
			} else {
				s->state = JS_AFTER;
			}
			continue;
		case JS_EXP_START:
			if (c == '+' || c == '-') {
				s->state = JS_EXP_SIGN;
				p++;
				continue;
			}
			/* fall through */
		case JS_EXP_SIGN:
			if (c < '0' || c > '9')
				FAIL("bad number");
			s->state = JS_EXP;
			p++;
			continue;
		case JS_EXP:
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p < end)
				s->state = JS_AFTER;
			continue;
		default: break;
		}
		/* the structural states: whitespace first */
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (c == '\n' || c == '\r')
				s->newlines++;
			p++;
			continue;
		}
		switch (s->state) {
		case JS_ARR_FIRST:
			if (c == ']') {
				s->depth--;
				s->state = JS_AFTER;
				p++;
				continue;
			}
			/* fall through */
		case JS_VALUE:
			s->in_key = 0;
			switch (c) {
			case '{':
			case '[':
				if (s->depth + 1 >= FD_JSON_MAX_DEPTH)
					FAIL("nested too deep");
				s->stack[s->depth++] = (unsigned char)c;
				s->state = c == '{' ? JS_OBJ_FIRST : JS_ARR_FIRST;
				break;
			case '"': s->state = JS_STR; break;
			case 't':
			case 'f':
			case 'n':
				s->lit = c == 't'   ? "true"
					 : c == 'f' ? "false"
						    : "null";
				s->sub = 1;
				s->seq_at = AT;
				s->state = JS_LIT;
				break;
			case '-': s->state = JS_MINUS; break;
			case '0': s->state = JS_ZERO; break;
			default:
				if (c >= '1' && c <= '9') {
					s->state = JS_INT;
					break;
				}
				FAIL("unexpected character");
			}
			p++;
			continue;
		case JS_OBJ_FIRST:
			if (c == '}') {
				s->depth--;
				s->state = JS_AFTER;
				p++;
				continue;
			}
			/* fall through */
		case JS_OBJ_KEY:
			if (c != '"')
				FAIL("expected a key");
			s->in_key = 1;
			s->state = JS_STR;
			p++;
			continue;
		case JS_COLON:
			if (c != ':')
				FAIL("expected ':'");
			s->state = JS_VALUE;
			p++;
			continue;
		case JS_AFTER:
			if (s->depth == 0)
				FAIL("trailing characters");
			if (c == ',') {
				s->state = s->stack[s->depth - 1] == '{'
						   ? JS_OBJ_KEY
						   : JS_VALUE;
			} else if (s->stack[s->depth - 1] == '[' && c == ']') {
				s->depth--;
				s->state = JS_AFTER;
			} else if (s->stack[s->depth - 1] == '{' && c == '}') {
				s->depth--;
				s->state = JS_AFTER;
			} else {
				FAIL(s->stack[s->depth - 1] == '['
					     ? "expected ',' or ']'"
					     : "expected ',' or '}'");
			}
			p++;
			continue;
		default: FAIL("bad state");
		}
	}
#undef FAIL
#undef AT
	return 0;
}

int fd_json_stream_end(struct fd_json_stream *s, struct fd_err *err)
{
	const char *why;

	if (s->why)
		return js_fail(s, s->why, s->why_at, err);
	switch (s->state) {
	case JS_ZERO:
	case JS_INT:
	case JS_FRAC:
	case JS_EXP:
	case JS_AFTER:
		if (s->depth == 0)
			return 0;
		why = s->stack[s->depth - 1] == '[' ? "expected ',' or ']'"
						    : "expected ',' or '}'";
		break;
	case JS_STR:
	case JS_ESC: why = "unterminated string"; break;
	case JS_HEX: why = "bad \\u escape"; break;
	case JS_UTF8: why = "invalid UTF-8"; break;
	case JS_LIT: why = "invalid literal"; break;
	case JS_OBJ_FIRST:
	case JS_OBJ_KEY: why = "expected a key"; break;
	case JS_COLON: why = "expected ':'"; break;
	case JS_VALUE:
	case JS_ARR_FIRST: why = "expected a value"; break;
	default: why = "bad number"; break;
	}
	return js_fail(s, why,
		       s->state == JS_LIT || s->state == JS_ESC ||
				       s->state == JS_HEX || s->state == JS_UTF8
			       ? s->seq_at
			       : s->off,
		       err);
}
