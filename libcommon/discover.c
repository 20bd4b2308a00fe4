#include "discover.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_PEERS 65536

/* A host name or IPv4 address (letters, digits, '-', '_', '.'), or an IPv6
 * literal (hex digits, ':', '.', then an optional %zone). */
static int host_ok(const char *h)
{
	int v6 = strchr(h, ':') != NULL;

	for (const char *c = h; *c; c++) {
		if (v6 && *c == '%')
			return c[1] != '\0' &&
			       strspn(c + 1, "abcdefghijklmnopqrstuvwxyz"
					     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					     "0123456789-_.") == strlen(c + 1);
		if (v6 ? !strchr("0123456789abcdefABCDEF:.", *c)
		       : !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789-_.",
				 *c))
			return 0;
	}
	return 1;
}

int fd_peer_addr_norm(const char *s, char *out, size_t outlen, struct fd_err *err)
{
	char host[256];
	int port, n;

	if (fd_parse_hostport(s, host, sizeof(host), FD_DEFAULT_PORT, &port) < 0 ||
	    port == 0 || !host_ok(host) ||
	    (s[0] == '[') != (strchr(host, ':') != NULL))
		return fd_err_set(
			err, "invalid address '%s' (expected HOST[:PORT])", s);
	if (strchr(host, ':'))
		n = snprintf(out, outlen, "[%s]:%d", host, port);
	else
		n = snprintf(out, outlen, "%s:%d", host, port);
	if (n < 0 || (size_t)n >= outlen) {
		errno = EINVAL;
		return fd_err_set(err, "invalid address '%s' (too long)", s);
	}
	return 0;
}

int fd_peer_file_line(const char *line, size_t len, char *out, size_t outlen,
		      struct fd_err *err)
{
	const char *hash = memchr(line, '#', len);
	char addr[FD_PEER_ADDR_LEN];

	if (hash)
		len = (size_t)(hash - line);
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
			   line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if (len == 0)
		return 0;
	if (len >= sizeof(addr)) {
		errno = EINVAL;
		return fd_err_set(err, "invalid address (longer than %zu bytes)",
				  sizeof(addr) - 1);
	}
	memcpy(addr, line, len);
	addr[len] = '\0';
	if (memchr(addr, '\0', len) || strpbrk(addr, " \t")) {
		errno = EINVAL;
		return fd_err_set(
			err, "invalid address '%s' (one address per line)", addr);
	}
	if (fd_peer_addr_norm(addr, out, outlen, err) < 0)
		return -1;
	return 1;
}

int fd_peerset_init(struct fd_peerset *s, unsigned down_after, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->down_after = down_after ? down_after : 1;
	s->max = max ? max : DEFAULT_MAX_PEERS;
	s->peers = json_object_new_object();
	if (!s->peers) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void fd_peerset_release(struct fd_peerset *s)
{
	json_object_put(s->peers);
	json_object_put(s->seen);
	s->peers = s->seen = NULL;
}

int fd_peerset_begin(struct fd_peerset *s)
{
	json_object_put(s->seen);
	s->seen = json_object_new_object();
	if (!s->seen) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int fd_peerset_add(struct fd_peerset *s, const char *addr)
{
	struct json_object *v;

	if (!s->seen && fd_peerset_begin(s) < 0)
		return -1;
	if (json_object_object_get_ex(s->seen, addr, NULL))
		return 0;
	if (json_object_object_add(s->seen, addr, NULL) < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (json_object_object_get_ex(s->peers, addr, &v)) {
		json_object_set_int(v, 0);
		return 0;
	}
	if ((size_t)json_object_object_length(s->peers) >= s->max) {
		json_object_object_del(s->seen, addr);
		errno = ENOSPC;
		return -1;
	}
	v = json_object_new_int(0);
	if (!v || json_object_object_add(s->peers, addr, v) < 0) {
		json_object_put(v);
		json_object_object_del(s->seen, addr);
		errno = ENOMEM;
		return -1;
	}
	return 1;
}

size_t fd_peerset_end(struct fd_peerset *s,
		      void (*down)(const char *addr, void *arg), void *arg)
{
	struct json_object *gone;
	size_t n = 0;

	if (!s->seen || json_object_object_length(s->seen) == 0) {
		fd_peerset_abort(s);
		return 0;
	}
	gone = json_object_new_array();
	json_object_object_foreach(s->peers, addr, v)
	{
		int missed;

		if (json_object_object_get_ex(s->seen, addr, NULL))
			continue;
		missed = json_object_get_int(v) + 1;
		json_object_set_int(v, missed);
		if ((unsigned)missed >= s->down_after && gone)
			json_object_array_add(gone, json_object_new_string(addr));
	}
	for (size_t i = 0; gone && i < json_object_array_length(gone); i++) {
		const char *a =
			json_object_get_string(json_object_array_get_idx(gone, i));

		if (down)
			down(a, arg);
		json_object_object_del(s->peers, a);
		n++;
	}
	json_object_put(gone);
	fd_peerset_abort(s);
	return n;
}

void fd_peerset_abort(struct fd_peerset *s)
{
	json_object_put(s->seen);
	s->seen = NULL;
}

size_t fd_peerset_count(const struct fd_peerset *s)
{
	return (size_t)json_object_object_length(s->peers);
}
