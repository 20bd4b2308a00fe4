#include "jsonl.h"
#include "buf.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536

void fd_jsonl_reader_init(struct fd_jsonl_reader *r, int fd, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->max_line = max_line ? max_line : FD_JSONL_MAX_LINE;
}

void fd_jsonl_reader_release(struct fd_jsonl_reader *r)
{
	free(r->buf);
	if (r->tok)
		json_tokener_free(r->tok);
	r->buf = NULL;
	r->tok = NULL;
}

/* Parses one value: 0 and *out (NULL for a JSON null), or -1 with err. */
static int parse_with(json_tokener *tok, const char *buf, size_t len,
		      struct json_object **out, struct fd_err *err)
{
	struct json_object *o;
	enum json_tokener_error jerr;
	size_t used;

	*out = NULL;
	if (!fd_utf8_valid(buf, len))
		return fd_err_set(err, "invalid UTF-8");
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		/* json-c waits for more input after a bare number; end it. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_continue) {
			json_object_put(o);
			return fd_err_set(err, "invalid JSON: unexpected end of input");
		}
		used = len;
	} else {
		used = json_tokener_get_parse_end(tok);
	}
	if (jerr != json_tokener_success) {
		json_object_put(o);
		return fd_err_set(err, "invalid JSON: %s",
				  json_tokener_error_desc(jerr));
	}
	for (; used < len; used++) {
		if (buf[used] != ' ' && buf[used] != '\t' &&
		    buf[used] != '\r' && buf[used] != '\n') {
			json_object_put(o);
			return fd_err_set(err, "invalid JSON: trailing data after "
					       "the value");
		}
	}
	*out = o;
	return 0;
}

static json_tokener *new_tokener(void)
{
	json_tokener *tok = json_tokener_new_ex(FD_JSON_MAX_DEPTH);

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	return tok;
}

int fd_json_parse_value(const char *buf, size_t len, struct json_object **out,
			struct fd_err *err)
{
	json_tokener *tok = new_tokener();
	int rc;

	*out = NULL;
	if (!tok)
		return fd_err_set(err, "out of memory");
	rc = parse_with(tok, buf, len, out, err);
	json_tokener_free(tok);
	return rc;
}

struct json_object *fd_json_parse(const char *buf, size_t len, struct fd_err *err)
{
	struct json_object *o;

	if (fd_json_parse_value(buf, len, &o, err) == 0 && !o)
		fd_err_set(err, "expected a value other than null");
	return o;
}

/* Makes room for at least one more chunk. Returns -1 on ENOMEM. */
static int reader_grow(struct fd_jsonl_reader *r)
{
	size_t want;
	char *nb;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end >= READ_CHUNK / 2)
		return 0;
	want = r->cap ? r->cap * 2 : READ_CHUNK;
	if (want > r->max_line + 2 * READ_CHUNK)
		want = r->max_line + 2 * READ_CHUNK;
	if (want <= r->cap)
		return 0;
	nb = realloc(r->buf, want);
	if (!nb)
		return -1;
	r->buf = nb;
	r->cap = want;
	return 0;
}

/* Reads more input; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t reader_fill(struct fd_jsonl_reader *r)
{
	ssize_t n;

	if (reader_grow(r) < 0)
		return -1;
	if (r->cap == r->end)
		return -2; /* full: the caller handles an over-long line */
	do
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		r->end += (size_t)n;
	return n;
}

int fd_jsonl_pending(const struct fd_jsonl_reader *r)
{
	return r->buf && memchr(r->buf + r->start, '\n', r->end - r->start) != NULL;
}

/* Returns the next line in *line and *len (without the newline), 1; 0 at EOF;
 * FD_JSONL_BAD for an over-long line (skipped); FD_JSONL_IOERR. */
static int next_line(struct fd_jsonl_reader *r, char **line, size_t *len)
{
	size_t scanned = 0;
	int skipping = 0;

	if (!r->buf && reader_grow(r) < 0) {
		r->eof = 1;
		return FD_JSONL_IOERR;
	}
	for (;;) {
		char *base = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = memchr(base + scanned, '\n', avail - scanned);
		ssize_t n;

		if (nl) {
			r->lineno++;
			r->start += (size_t)(nl - base) + 1;
			if (skipping || (size_t)(nl - base) > r->max_line)
				return FD_JSONL_BAD;
			*line = base;
			*len = (size_t)(nl - base);
			return 1;
		}
		if (avail > r->max_line) {
			/* Too long: drop what we have, remember to skip the rest. */
			skipping = 1;
			r->start = r->end = 0;
			avail = 0;
		}
		scanned = avail;
		if (r->eof) {
			if (avail == 0 && !skipping)
				return 0;
			r->lineno++;
			r->start = r->end;
			if (skipping)
				return FD_JSONL_BAD;
			*line = base;
			*len = avail;
			return 1;
		}
		n = reader_fill(r);
		if (n == 0)
			r->eof = 1;
		else if (n < 0) {
			r->eof = 1;
			return FD_JSONL_IOERR;
		}
	}
}

static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

int fd_jsonl_read(struct fd_jsonl_reader *r, struct json_object **out,
		  struct fd_err *err)
{
	struct fd_err perr;
	char *line;
	size_t len;
	int rc;

	*out = NULL;
	if (!r->tok) {
		r->tok = new_tokener();
		if (!r->tok) {
			errno = ENOMEM;
			return FD_JSONL_IOERR;
		}
	}
	for (;;) {
		rc = next_line(r, &line, &len);
		if (rc == FD_JSONL_BAD) {
			r->bad++;
			fd_err_set(err, "line %lu: longer than %zu bytes",
				   r->lineno, r->max_line);
			return rc;
		}
		if (rc <= 0)
			return rc;
		if (!blank(line, len))
			break;
	}
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (r->plain_ok && *line != '{') {
		if (!fd_utf8_valid(line, len)) {
			r->bad++;
			fd_err_set(err, "line %lu: invalid UTF-8", r->lineno);
			return FD_JSONL_BAD;
		}
		*out = json_object_new_string_len(line, (int)len);
		r->records++;
		return FD_JSONL_OK;
	}
	if (parse_with(r->tok, line, len, out, &perr) == 0 &&
	    !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		fd_err_set(&perr, "expected a JSON object");
	}
	if (!*out) {
		r->bad++;
		fd_err_set(err, "line %lu: %s", r->lineno, perr.msg);
		return FD_JSONL_BAD;
	}
	r->records++;
	return FD_JSONL_OK;
}

/* Output */

static struct {
	int init;
	int regular; /* stdout is a regular file: never flush per line */
	int hold;
} out;

static char out_buf[1 << 16];

static void out_init(void)
{
	struct stat st;

	if (out.init)
		return;
	out.init = 1;
	out.regular = fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode);
	setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
}

static int out_check(int rc)
{
	if (rc == 0)
		return 0;
	if (errno == EPIPE)
		_exit(FD_EXIT_OK); /* the reader is gone: end quietly */
	return -1;
}

int fd_emit_flush(void)
{
	out_init();
	return out_check(fflush(stdout) == EOF ? -1 : 0);
}

int fd_emit_raw(const char *line, size_t len)
{
	out_init();
	if (fwrite(line, 1, len, stdout) != len || putc('\n', stdout) == EOF)
		return out_check(-1);
	if (!out.regular && !out.hold)
		return fd_emit_flush();
	return 0;
}

int fd_emit(struct json_object *o)
{
	size_t len;
	const char *s = fd_json_str(o, &len);

	return fd_emit_raw(s, len);
}

int fd_emit_hold(int hold)
{
	out.hold = hold;
	if (!hold)
		return fd_emit_flush();
	return 0;
}

int fd_finish_stdout(int rc)
{
	out_init();
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (errno == EPIPE)
			return rc;
		fd_warn("unable to write to stdout: %s", strerror(errno));
		return FD_EXIT_RUNTIME;
	}
	if (fclose(stdout) == EOF && errno != EPIPE) {
		fd_warn("unable to write to stdout: %s", strerror(errno));
		return FD_EXIT_RUNTIME;
	}
	return rc;
}

struct json_object *fd_json_record(const char *type)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(type));
	return o;
}

const char *fd_json_str(struct json_object *o, size_t *len)
{
	return json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

const char *fd_json_get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

long long fd_json_get_int(struct json_object *o, const char *key, long long def)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

struct json_object *fd_json_seconds(int64_t ms)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%s%lld.%03lld", ms < 0 ? "-" : "",
		 (long long)(ms < 0 ? -ms : ms) / 1000,
		 (long long)(ms < 0 ? -ms : ms) % 1000);
	return json_object_new_double_s((double)ms / 1000.0, buf);
}

int fd_json_append_str(struct fd_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	if (fd_buf_append(b, "\"", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 0, 0, 0, 0, 0};
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (fd_buf_append(b, s + run, i - run) < 0)
			return -1;
		run = i + 1;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if (fd_buf_append(b, esc, n) < 0)
			return -1;
	}
	if (fd_buf_append(b, s + run, len - run) < 0)
		return -1;
	return fd_buf_append(b, "\"", 1);
}
