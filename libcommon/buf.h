/* A growable byte buffer with a maximum size (every buffer that grows from
 * outside input has one). The data stays NUL-terminated, so text can be
 * used as a string; binary data may contain NULs too.
 *
 *	struct fd_buf b = FD_BUF_INIT(1 << 20);
 *	if (fd_buf_append(&b, data, n) < 0) ... errno: EMSGSIZE or ENOMEM
 *	...
 *	fd_buf_release(&b);
 */
#ifndef FD_BUF_H
#define FD_BUF_H

#include <stddef.h>

struct fd_buf {
	char *data; /* NULL until the first append */
	size_t len, cap, max;
};

#define FD_BUF_INIT(maxlen)          \
	{                            \
		NULL, 0, 0, (maxlen) \
	}

/* Appends n bytes. Returns 0, or -1 with errno EMSGSIZE (len would pass max;
 * nothing appended) or ENOMEM. */
int fd_buf_append(struct fd_buf *b, const void *data, size_t n);
/* Appends n bytes left for the caller to fill: returns a pointer to them,
 * or NULL with errno as fd_buf_append (nothing appended). The pointer is
 * valid until the next change to b. */
void *fd_buf_grow(struct fd_buf *b, size_t n);
/* Makes room for n more bytes at once (len unchanged), so that appending
 * them later moves nothing. Returns 0, or -1 as fd_buf_append. */
int fd_buf_reserve(struct fd_buf *b, size_t n);
/* Drops the first n bytes (all of them when n >= len); keeps the memory. */
void fd_buf_consume(struct fd_buf *b, size_t n);
/* The data as a string ("" when empty); borrowed. */
const char *fd_buf_str(const struct fd_buf *b);
/* Empties the buffer, keeping its memory for the next appends. */
void fd_buf_clear(struct fd_buf *b);
/* Frees the data; the buffer can be used again (same max). */
void fd_buf_release(struct fd_buf *b);

#endif
