/* libFuzzer harness for psframe and jsonscan: the frame reader and decoder
 * on arbitrary byte streams fed in arbitrary pieces, and the JSON scanner.
 *
 * Properties checked on every input (a failure traps):
 *   - feeding the input whole or split at every 7th byte yields the same
 *     frames, and every frame the decoder accepts re-encodes to itself;
 *   - what fd_json_scan accepts, json-c (strict mode) accepts too, for inputs
 *     without \u escapes (json-c is laxer: control characters in strings).
 */
#include "jsonl.h"
#include "jsonscan.h"
#include "psframe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

struct seen {
	struct fd_buf all;
	size_t frames;
};

static int on_frame(void *arg, const char *body, size_t len, struct fd_err *err)
{
	struct seen *s = arg;
	struct fd_psf f;

	(void)err;
	s->frames++;
	if (!body)
		return 0;
	fd_buf_append(&s->all, body, len);
	if (fd_psf_parse(body, len, &f, NULL) == 0 && f.type == FD_PSF_PUB) {
		struct fd_buf b = FD_BUF_INIT(1 << 20);

		ASSERT(fd_psf_put_pub(&b, f.prio, f.topic, f.topic_len, f.data,
				      f.len) == 0);
		ASSERT(b.len == len + 4 && memcmp(b.data + 4, body, len) == 0);
		fd_buf_release(&b);
	}
	if (fd_psf_parse(body, len, &f, NULL) == 0 && f.type == FD_PSF_MSG) {
		size_t off = 0, glen;
		const char *g;
		unsigned n = 0;

		while (fd_psf_group_next(&f, &off, &g, &glen))
			n++;
		ASSERT(n == f.ngroups);
	}
	return 0;
}

static void feed(const uint8_t *data, size_t size, size_t step, struct seen *s)
{
	struct fd_psf_reader r;
	size_t off = 0;

	fd_psf_reader_init(&r, 2048);
	while (off < size) {
		size_t k = size - off < step ? size - off : step;
		ssize_t n = fd_psf_feed(&r, (const char *)data + off, k,
					on_frame, s, NULL);

		ASSERT(n == (ssize_t)k);
		off += k;
	}
	fd_psf_reader_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a = {FD_BUF_INIT(1 << 20), 0}, b = {FD_BUF_INIT(1 << 20), 0};

	feed(data, size, size ? size : 1, &a);
	feed(data, size, 7, &b);
	ASSERT(a.frames == b.frames && a.all.len == b.all.len);
	ASSERT(a.all.len == 0 || memcmp(a.all.data, b.all.data, a.all.len) == 0);
	fd_buf_release(&a.all);
	fd_buf_release(&b.all);

	if (!memmem(data, size, "\\u", 2) && !memchr(data, 0, size)) {
		struct fd_err err = {""};
		struct json_object *o =
			fd_json_parse((const char *)data, size, &err);
		int ok = fd_json_scan((const char *)data, size, NULL, NULL, NULL) == 0;

		/* json-c's null is a NULL object */
		ASSERT(!ok || o != NULL || memmem(data, size, "null", 4));
		json_object_put(o);
	}
	return 0;
}
