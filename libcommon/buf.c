#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fd_buf_append(struct fd_buf *b, const void *data, size_t n)
{
	if (n > b->max - b->len) {
		errno = EMSGSIZE;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
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
