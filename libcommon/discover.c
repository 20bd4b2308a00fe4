#include "discover.h"
#include "cli.h"
#include "jsonl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

int fd_peer_line(const char *line, size_t len, char *out, size_t outlen,
		 struct json_object **obj, struct fd_err *err)
{
	struct json_tokener *tok;
	struct json_object *o, *v;
	const char *type, *event, *addr;
	size_t skip = 0;

	if (obj)
		*obj = NULL;
	while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
		skip++;
	if (skip == len || line[skip] != '{')
		return fd_peer_file_line(line, len, out, outlen, err);
	tok = json_tokener_new();
	if (!tok) {
		errno = ENOMEM;
		return fd_err_set(err, "out of memory");
	}
	o = json_tokener_parse_ex(tok, line + skip, (int)(len - skip));
	if (o && (int)json_tokener_get_parse_end(tok) < (int)(len - skip) &&
	    strspn(line + skip + (int)json_tokener_get_parse_end(tok), " \t\r\n") !=
		    len - skip - (size_t)(int)json_tokener_get_parse_end(tok)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	errno = EINVAL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fd_err_set(err, "invalid JSON object");
	}
	type = fd_json_get_str(o, "type");
	event = fd_json_get_str(o, "event");
	if ((json_object_object_get_ex(o, "type", NULL) && !type) ||
	    (json_object_object_get_ex(o, "event", NULL) && !event)) {
		json_object_put(o);
		return fd_err_set(err, "\"type\" and \"event\" must be strings");
	}
	if ((type && strcmp(type, "peer") != 0) ||
	    (event && strcmp(event, "up") != 0)) {
		json_object_put(o);
		return 0;
	}
	addr = fd_json_get_str(o, "addr");
	if (!addr) {
		json_object_put(o);
		return fd_err_set(err, "no \"addr\" string");
	}
	if ((json_object_object_get_ex(o, "name", &v) &&
	     !json_object_is_type(v, json_type_string)) ||
	    (json_object_object_get_ex(o, "meta", &v) &&
	     !json_object_is_type(v, json_type_object))) {
		json_object_put(o);
		return fd_err_set(err, "\"name\" must be a string, \"meta\" an object");
	}
	if (fd_peer_addr_norm(addr, out, outlen, err) < 0) {
		json_object_put(o);
		return -1;
	}
	if (obj)
		*obj = o;
	else
		json_object_put(o);
	return 1;
}

int fd_peer_addr_ip(int family, const void *ip, int port, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];
	int n;

	if ((family != AF_INET && family != AF_INET6) || port < 1 ||
	    port > 65535 || !inet_ntop(family, ip, host, sizeof(host))) {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(out, outlen, family == AF_INET6 ? "[%s]:%d" : "%s:%d",
		     host, port);
	if (n < 0 || (size_t)n >= outlen) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int srv_cmp(const void *a, const void *b)
{
	const struct fd_srv *x = a, *y = b;
	int c;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	c = strcmp(x->target, y->target);
	if (c)
		return c;
	return (int)x->port - (int)y->port;
}

void fd_srv_sort(struct fd_srv *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), srv_cmp);
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

/* A known peer's record: {"missed": N, "name": "...", "meta": {...}}. */
static struct json_object *peer_new(void)
{
	struct json_object *p = json_object_new_object(),
			   *m = json_object_new_int(0);

	if (!p || !m || json_object_object_add(p, "missed", m) < 0) {
		json_object_put(p);
		json_object_put(m);
		return NULL;
	}
	return p;
}

static void peer_set_missed(struct json_object *p, int missed)
{
	struct json_object *m;

	if (json_object_object_get_ex(p, "missed", &m))
		json_object_set_int(m, missed);
}

static int peer_missed(struct json_object *p)
{
	struct json_object *m;

	return json_object_object_get_ex(p, "missed", &m) ? json_object_get_int(m)
							  : 0;
}

/* Records name and meta (the latest answer's win; NULL keeps what is known). */
static int peer_describe(struct json_object *p, const char *name,
			 struct json_object *meta)
{
	if (name) {
		struct json_object *v = json_object_new_string(name);

		if (!v || json_object_object_add(p, "name", v) < 0) {
			json_object_put(v);
			return -1;
		}
	}
	if (meta && json_object_object_add(p, "meta", json_object_get(meta)) < 0) {
		json_object_put(meta);
		return -1;
	}
	return 0;
}

int fd_peerset_add(struct fd_peerset *s, const char *addr)
{
	return fd_peerset_add_meta(s, addr, NULL, NULL);
}

int fd_peerset_add_meta(struct fd_peerset *s, const char *addr,
			const char *name, struct json_object *meta)
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
		peer_set_missed(v, 0);
		if (peer_describe(v, name, meta) < 0) {
			errno = ENOMEM;
			return -1;
		}
		return 0;
	}
	if ((size_t)json_object_object_length(s->peers) >= s->max) {
		json_object_object_del(s->seen, addr);
		errno = ENOSPC;
		return -1;
	}
	v = peer_new();
	if (!v || peer_describe(v, name, meta) < 0 ||
	    json_object_object_add(s->peers, addr, v) < 0) {
		json_object_put(v);
		json_object_object_del(s->seen, addr);
		errno = ENOMEM;
		return -1;
	}
	return 1;
}

int fd_peerset_get(const struct fd_peerset *s, const char *addr,
		   const char **name, struct json_object **meta)
{
	struct json_object *p, *v;

	if (!json_object_object_get_ex(s->peers, addr, &p))
		return -1;
	if (name)
		*name = json_object_object_get_ex(p, "name", &v)
				? json_object_get_string(v)
				: NULL;
	if (meta)
		*meta = json_object_object_get_ex(p, "meta", &v) ? v : NULL;
	return 0;
}

void fd_peerset_each(const struct fd_peerset *s,
		     void (*fn)(const char *addr, const char *name,
				struct json_object *meta, void *arg),
		     void *arg)
{
	json_object_object_foreach(s->peers, addr, p)
	{
		const char *name;
		struct json_object *meta;

		fd_peerset_get(s, addr, &name, &meta);
		(void)p;
		fn(addr, name, meta, arg);
	}
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
		missed = peer_missed(v) + 1;
		peer_set_missed(v, missed);
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
