/* libFuzzer harness for the JSON-lines reader (jsonl.h) and the other
 * decoders of what clients send in request bodies: one JSON value
 * (fd_json_parse_value, every FD_HTTP_JSON route), and address lines
 * (fd_peer_line: fd-join's stdin and POST /v1/join).
 *
 * The first byte picks the reader's options (plain lines accepted or not,
 * and a small or large line limit); the rest is the stream.
 *
 * Properties checked on every input (a failure traps):
 *   - the reader returns objects (or, with plain lines on, strings), line
 *     numbers only grow, good + bad counts match what it returned, and it
 *     ends with EOF;
 *   - a value fd_json_parse_value accepts serializes to text that it accepts
 *     again, unchanged by a second round;
 *   - an address fd_peer_line accepts is normalized: normalizing it again
 *     gives the same text.
 */
#include "discover.h"
#include "jsonl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

static int memfd = -1;

static void check_value(const char *s, size_t len)
{
	struct json_object *o = NULL, *o2 = NULL;
	struct fd_err err;

	if (fd_json_parse_value(s, len, &o, &err) < 0)
		return;
	{
		const char *t = json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		char *copy = strdup(t);

		ASSERT(copy);
		ASSERT(fd_json_parse_value(copy, strlen(copy), &o2, &err) == 0);
		ASSERT(strcmp(copy, json_object_to_json_string_ext(
					    o2, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE)) ==
		       0);
		free(copy);
	}
	json_object_put(o);
	json_object_put(o2);
}

static void check_addr_lines(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char out[FD_PEER_ADDR_LEN], again[FD_PEER_ADDR_LEN];
		struct json_object *obj = NULL;
		struct fd_err err;

		if (fd_peer_line(p, l, out, sizeof(out), &obj, &err) == 1) {
			ASSERT(fd_peer_addr_norm(out, again, sizeof(again),
						 &err) == 0);
			ASSERT(strcmp(out, again) == 0);
		}
		json_object_put(obj);
		p += nl ? l + 1 : l;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fd_jsonl_reader r;
	struct json_object *o;
	struct fd_err err;
	unsigned long good = 0, bad = 0, last = 0;
	int rc;

	if (size < 1)
		return 0;
	if (memfd < 0)
		memfd = memfd_create("fuzz_jsonl", 0);
	ASSERT(memfd >= 0);
	ASSERT(ftruncate(memfd, 0) == 0);
	ASSERT(pwrite(memfd, data + 1, size - 1, 0) == (ssize_t)(size - 1));
	ASSERT(lseek(memfd, 0, SEEK_SET) == 0);
	fd_jsonl_reader_init(&r, memfd, data[0] & 1 ? 64 : 0);
	r.plain_ok = data[0] & 2;
	while ((rc = fd_jsonl_read(&r, &o, &err)) != FD_JSONL_EOF) {
		ASSERT(rc != FD_JSONL_IOERR);
		ASSERT(r.lineno >= last);
		last = r.lineno;
		if (rc == FD_JSONL_OK) {
			good++;
			ASSERT(json_object_is_type(o, json_type_object) ||
			       (r.plain_ok &&
				json_object_is_type(o, json_type_string)));
			json_object_put(o);
		} else {
			bad++;
			ASSERT(err.msg[0]);
		}
	}
	ASSERT(r.records == good && r.bad == bad);
	fd_jsonl_reader_release(&r);
	check_value((const char *)data + 1, size - 1);
	check_addr_lines((const char *)data + 1, size - 1);
	return 0;
}
