#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *fd_buf_grow(struct fd_buf *b, size_t n)
{
	void *at;

	if (n > b->max - b->len) {
		errno = EMSGSIZE;
		return NULL;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			errno = ENOMEM;
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	at = b->data + b->len;
	b->len += n;
	b->data[b->len] = '\0';
	return at;
}

int fd_buf_append(struct fd_buf *b, const void *data, size_t n)
{
	void *at = fd_buf_grow(b, n);

	if (!at)
		return -1;
	if (n)
		memcpy(at, data, n);
	return 0;
}

void fd_buf_consume(struct fd_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

const char *fd_buf_str(const struct fd_buf *b)
{
	return b->data ? b->data : "";
}

void fd_buf_clear(struct fd_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void fd_buf_release(struct fd_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int fd_buf_reserve(struct fd_buf *b, size_t n)
{
	char *p;

	if (n > b->max - b->len) {
		errno = EMSGSIZE;
		return -1;
	}
	if (b->len + n + 1 <= b->cap)
		return 0;
	p = realloc(b->data, b->len + n + 1);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	if (!b->data)
		p[0] = '\0';
	b->data = p;
	b->cap = b->len + n + 1;
	return 0;
}
