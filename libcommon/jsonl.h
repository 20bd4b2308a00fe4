/* JSON lines: reading records with line numbers, writing them to stdout.
 *
 * Reading (DESIGN.md §4): each line is one JSON object. A bad line (invalid
 * JSON or UTF-8, not an object, trailing garbage, too deep, too long) is
 * reported with its line number and skipped; the caller counts it and exits
 * FD_EXIT_DATA at the end, or stops at once in --strict mode. Blank lines are
 * ignored. Where an address is all that is needed the reader can also accept
 * plain lines ("host:port"), handed back as JSON strings.
 *
 * Writing: fd_emit() writes one compact object per line to stdout. stdout is
 * block-buffered; when it is not a regular file each line is flushed unless
 * the program holds output because more input is already waiting
 * (fd_emit_hold), so a pipe sees lines promptly when idle and large writes
 * under load. A write that fails with EPIPE (the reader went away, as with
 * "| head -1") ends the program quietly with exit status 0.
 */
#ifndef FD_JSONL_H
#define FD_JSONL_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "utf8.h"

#define FD_JSONL_MAX_LINE (1024 * 1024)
#define FD_JSON_MAX_DEPTH 64

enum fd_jsonl_status {
	FD_JSONL_IOERR = -2, /* read error, errno set; the reader is at EOF */
	FD_JSONL_BAD = -1,   /* a bad line, skipped; err says which and why */
	FD_JSONL_EOF = 0,
	FD_JSONL_OK = 1,
};

struct fd_jsonl_reader {
	int fd;
	size_t max_line;       /* longest accepted line, without newline */
	int plain_ok;	       /* hand non-JSON lines back as strings */
	unsigned long lineno;  /* line number of the last line read */
	unsigned long records; /* good records returned */
	unsigned long bad;     /* bad lines skipped */
	/* private */
	char *buf;
	size_t cap, start, end;
	int eof;
	json_tokener *tok;
};

/* Reads from fd (not owned: the caller closes it). max_line 0 takes
 * FD_JSONL_MAX_LINE. */
void fd_jsonl_reader_init(struct fd_jsonl_reader *r, int fd, size_t max_line);
void fd_jsonl_reader_release(struct fd_jsonl_reader *r);

/* Reads the next record. FD_JSONL_OK: *out is a new object (or, with plain_ok,
 * a string) the caller must json_object_put(). FD_JSONL_BAD: err holds
 * "line N: why". FD_JSONL_EOF at the end; FD_JSONL_IOERR on a read error. */
int fd_jsonl_read(struct fd_jsonl_reader *r, struct json_object **out,
		  struct fd_err *err);

/* True when a complete line is already buffered (more input is waiting
 * without blocking), so output may be held until the reader catches up. */
int fd_jsonl_pending(const struct fd_jsonl_reader *r);

/* Parses one JSON value from buf[0..len) with the reader's rules (strict,
 * valid UTF-8, depth limit, nothing after the value). Returns 0 and *out, a
 * new object the caller must json_object_put() (NULL for a JSON null, as
 * json-c represents it), or -1 with err filled. */
int fd_json_parse_value(const char *buf, size_t len, struct json_object **out,
			struct fd_err *err);
/* The same where null is not wanted: a new object, or NULL with err filled
 * (a JSON null included). */
struct json_object *fd_json_parse(const char *buf, size_t len, struct fd_err *err);

/* Writes o as one compact line to stdout. Returns 0, or -1 with errno set on
 * a write error other than EPIPE (EPIPE exits 0, see above). */
int fd_emit(struct json_object *o);
/* Writes an already-serialized record (len bytes, no newline) the same way. */
int fd_emit_raw(const char *line, size_t len);
/* While held, lines are not flushed one by one. Releasing flushes. */
int fd_emit_hold(int hold);
int fd_emit_flush(void);

/* Ends the program's output: flush and close stdout. Returns rc, or
 * FD_EXIT_RUNTIME with a message when stdout could not be written (EPIPE
 * counts as success). Use as "return fd_finish_stdout(rc);". */
int fd_finish_stdout(int rc);

/* Appends s[0..len) as a JSON string (quotes and escapes added) to out, for
 * hot paths that write records without building json-c objects. s must be
 * valid UTF-8. Returns 0, or -1 as fd_buf_append. */
struct fd_buf;
int fd_json_append_str(struct fd_buf *out, const char *s, size_t len);

/* A new object {"type": type}. */
struct json_object *fd_json_record(const char *type);
/* Compact serialization, valid until o changes or is freed. */
const char *fd_json_str(struct json_object *o, size_t *len);

/* A JSON number of seconds with millisecond precision, printed as such
 * ("1.5", not "1.5000000000000002"). */
struct json_object *fd_json_seconds(int64_t ms);

/* Borrowed accessors: NULL / def when the key is absent or of another type. */
const char *fd_json_get_str(struct json_object *o, const char *key);
long long fd_json_get_int(struct json_object *o, const char *key, long long def);

#endif
