#include "gossip.h"
#include "jsonl.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PEERS 4096
#define META_MAX_DEPTH 8

static const char *kind_name[] = {"heartbeat", "leave", "query"};

void fd_gossip_msg_release(struct fd_gossip_msg *m)
{
	json_object_put(m->meta);
	memset(m, 0, sizeof(*m));
}

static int name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255 || !fd_utf8_valid(s, len))
		return 0;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x21 || *c == 0x7f)
			return 0;
	return 1;
}

static int id_ok(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static int depth(struct json_object *o)
{
	int d = 0;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			int c = depth(v);

			(void)k;
			if (c > d)
				d = c;
		}
		return d + 1;
	}
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			int c = depth(json_object_array_get_idx(o, i));

			if (c > d)
				d = c;
		}
		return d + 1;
	}
	return 0;
}

ssize_t fd_gossip_encode(const struct fd_gossip_msg *m, uint8_t *out,
			 size_t cap, struct fd_err *err)
{
	struct json_object *o;
	const char *s;
	size_t len;

	if (m->kind != FD_GOSSIP_QUERY &&
	    (!name_ok(m->name) || !id_ok(m->id) ||
	     fd_peer_addr_norm(m->addr, (char[FD_PEER_ADDR_LEN]){0},
			       FD_PEER_ADDR_LEN, NULL) < 0))
		return fd_err_set(err, "invalid name, id or address");
	if (m->meta && (!json_object_is_type(m->meta, json_type_object) ||
			depth(m->meta) > META_MAX_DEPTH))
		return fd_err_set(err, "meta must be an object nested at most %d deep",
				  META_MAX_DEPTH);
	o = json_object_new_object();
	if (!o)
		return fd_err_set(err, "out of memory");
	json_object_object_add(o, "v", json_object_new_int(1));
	json_object_object_add(o, "type",
			       json_object_new_string(kind_name[m->kind]));
	if (m->kind != FD_GOSSIP_QUERY) {
		json_object_object_add(o, "name", json_object_new_string(m->name));
		json_object_object_add(o, "addr", json_object_new_string(m->addr));
		json_object_object_add(o, "id", json_object_new_string(m->id));
	}
	if (m->kind == FD_GOSSIP_HEARTBEAT) {
		json_object_object_add(o, "meta",
				       m->meta ? json_object_get(m->meta)
					       : json_object_new_object());
		json_object_object_add(o, "interval",
				       fd_json_seconds(m->interval_ms));
	}
	s = fd_json_str(o, &len);
	if (!s || len > cap || len > FD_GOSSIP_PLAIN_MAX) {
		json_object_put(o);
		return fd_err_set(err, "message longer than %d bytes (a smaller meta?)",
				  FD_GOSSIP_PLAIN_MAX);
	}
	memcpy(out, s, len);
	json_object_put(o);
	return (ssize_t)len;
}

static int copy_str(struct json_object *o, const char *key, char *out, size_t outlen)
{
	const char *s = fd_json_get_str(o, key);

	if (!s || strlen(s) >= outlen)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int fd_gossip_decode(const uint8_t *buf, size_t len, struct fd_gossip_msg *m,
		     struct fd_err *err)
{
	struct json_object *o, *v;
	const char *type;
	char addr[FD_PEER_ADDR_LEN];
	int k;

	memset(m, 0, sizeof(*m));
	if (len > FD_GOSSIP_PLAIN_MAX)
		return fd_err_set(err, "longer than %d bytes", FD_GOSSIP_PLAIN_MAX);
	o = fd_json_parse((const char *)buf, len, err);
	if (!o)
		return -1;
	if (!json_object_is_type(o, json_type_object) ||
	    fd_json_get_int(o, "v", 0) != 1 ||
	    !json_object_is_type(json_object_object_get(o, "v"), json_type_int)) {
		json_object_put(o);
		return fd_err_set(err, "not a version 1 message");
	}
	type = fd_json_get_str(o, "type");
	for (k = 0; k < 3; k++)
		if (type && strcmp(type, kind_name[k]) == 0)
			break;
	if (k == 3) {
		json_object_put(o);
		return fd_err_set(err, "unknown message type");
	}
	m->kind = (enum fd_gossip_kind)k;
	if (m->kind == FD_GOSSIP_QUERY) {
		json_object_put(o);
		return 0;
	}
	if (copy_str(o, "name", m->name, sizeof(m->name)) < 0 ||
	    !name_ok(m->name) || copy_str(o, "id", m->id, sizeof(m->id)) < 0 ||
	    !id_ok(m->id) || copy_str(o, "addr", addr, sizeof(addr)) < 0 ||
	    fd_peer_addr_norm(addr, m->addr, sizeof(m->addr), NULL) < 0) {
		json_object_put(o);
		memset(m, 0, sizeof(*m));
		return fd_err_set(err, "bad or missing name, id or addr");
	}
	if (m->kind == FD_GOSSIP_HEARTBEAT) {
		double secs;

		if (!json_object_object_get_ex(o, "interval", &v) ||
		    !(json_object_is_type(v, json_type_int) ||
		      json_object_is_type(v, json_type_double)) ||
		    !isfinite(secs = json_object_get_double(v)) ||
		    secs < 0.01 || secs > 3600) {
			json_object_put(o);
			memset(m, 0, sizeof(*m));
			return fd_err_set(err, "bad or missing interval");
		}
		m->interval_ms = (int64_t)llround(secs * 1000);
		if (json_object_object_get_ex(o, "meta", &v)) {
			if (!json_object_is_type(v, json_type_object) ||
			    depth(v) > META_MAX_DEPTH) {
				json_object_put(o);
				memset(m, 0, sizeof(*m));
				return fd_err_set(err, "meta is not an object");
			}
			m->meta = json_object_get(v);
		}
	}
	json_object_put(o);
	return 0;
}

static int have_key(const struct fd_keyring *kr)
{
	return kr && kr->n > 0;
}

ssize_t fd_gossip_pack(const struct fd_keyring *kr, const char *cluster,
		       int64_t now_ms, const struct fd_gossip_msg *m,
		       uint8_t *out, size_t cap, struct fd_err *err)
{
	uint8_t plain[FD_GOSSIP_PLAIN_MAX];
	ssize_t len = fd_gossip_encode(m, plain, sizeof(plain), err), sealed;

	if (len < 0)
		return -1;
	if (!have_key(kr)) {
		if ((size_t)len > cap)
			return fd_err_set(err, "no room");
		memcpy(out, plain, (size_t)len);
		return len;
	}
	sealed = fd_auth_seal(kr, FD_GOSSIP_CONTEXT, cluster, now_ms, plain,
			      (size_t)len, out, cap);
	if (sealed < 0)
		return fd_err_set(err, "unable to seal the message");
	return sealed;
}

static enum fd_gossip_verdict count(struct fd_gossip_stats *st,
				    enum fd_gossip_verdict v)
{
	if (!st)
		return v;
	switch (v) {
	case FD_GOSSIP_OK: st->accepted++; break;
	case FD_GOSSIP_BAD_KEY: st->bad_key++; break;
	case FD_GOSSIP_REPLAYED: st->replayed++; break;
	case FD_GOSSIP_UNSEALED: st->unsealed++; break;
	case FD_GOSSIP_SEALED: st->sealed++; break;
	case FD_GOSSIP_MALFORMED: st->malformed++; break;
	}
	return v;
}

enum fd_gossip_verdict fd_gossip_unpack(const struct fd_keyring *kr,
					struct fd_replay *rc, const char *cluster,
					int64_t now_ms, const uint8_t *buf,
					size_t len, struct fd_gossip_msg *m,
					struct fd_gossip_stats *st,
					struct fd_err *err)
{
	uint8_t plain[FD_GOSSIP_MAX];
	int sealed = fd_auth_is_sealed(buf, len);
	struct fd_err local;
	ssize_t n;

	if (!err)
		err = &local;
	memset(m, 0, sizeof(*m));
	if (st)
		st->received++;
	if (!have_key(kr)) {
		if (sealed) {
			fd_err_set(err, "sealed, and we have no key");
			return count(st, FD_GOSSIP_SEALED);
		}
		if (fd_gossip_decode(buf, len, m, err) < 0)
			return count(st, FD_GOSSIP_MALFORMED);
		return count(st, FD_GOSSIP_OK);
	}
	if (!sealed) {
		fd_err_set(err, "not sealed");
		return count(st, buf && len && buf[0] == '{' ? FD_GOSSIP_UNSEALED
							     : FD_GOSSIP_MALFORMED);
	}
	if (len > FD_GOSSIP_MAX) {
		fd_err_set(err, "longer than %d bytes", FD_GOSSIP_MAX);
		return count(st, FD_GOSSIP_MALFORMED);
	}
	errno = 0;
	n = fd_auth_open(kr, rc, FD_GOSSIP_CONTEXT, cluster, now_ms, buf, len,
			 plain, sizeof(plain), err);
	if (n < 0) {
		/* auth.h's kinds of failure: time (replayed, stale) or key
		 * (unknown, forged); by errno, else by its messages. */
		int e = errno;

		if (e == EALREADY || e == ETIME ||
		    strncmp(err->msg, "replayed", 8) == 0 ||
		    strncmp(err->msg, "stale", 5) == 0)
			return count(st, FD_GOSSIP_REPLAYED);
		if (e == ENOKEY || e == EBADMSG ||
		    strncmp(err->msg, "unknown key", 11) == 0 ||
		    strncmp(err->msg, "authentication failed", 21) == 0)
			return count(st, FD_GOSSIP_BAD_KEY);
		return count(st, FD_GOSSIP_MALFORMED);
	}
	if (fd_gossip_decode(plain, (size_t)n, m, err) < 0)
		return count(st, FD_GOSSIP_MALFORMED);
	return count(st, FD_GOSSIP_OK);
}

uint64_t fd_gossip_ignored(const struct fd_gossip_stats *st)
{
	return st->bad_key + st->replayed + st->unsealed + st->sealed + st->malformed;
}

struct json_object *fd_gossip_stats_json(const struct fd_gossip_stats *st)
{
	struct json_object *o = json_object_new_object(),
			   *ig = json_object_new_object();

	if (!o || !ig) {
		json_object_put(o);
		json_object_put(ig);
		return NULL;
	}
	json_object_object_add(o, "received",
			       json_object_new_int64((int64_t)st->received));
	json_object_object_add(o, "accepted",
			       json_object_new_int64((int64_t)st->accepted));
	json_object_object_add(ig, "bad_key",
			       json_object_new_int64((int64_t)st->bad_key));
	json_object_object_add(ig, "replayed",
			       json_object_new_int64((int64_t)st->replayed));
	json_object_object_add(ig, "unsealed",
			       json_object_new_int64((int64_t)st->unsealed));
	json_object_object_add(ig, "sealed",
			       json_object_new_int64((int64_t)st->sealed));
	json_object_object_add(ig, "malformed",
			       json_object_new_int64((int64_t)st->malformed));
	json_object_object_add(o, "ignored", ig);
	return o;
}

#define KEY_FILE_MAX 65536

int fd_gossip_load_keyring(const char *path, struct fd_keyring *kr, int *usage,
			   struct fd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char text[KEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int rc;

	*usage = 0;
	if (fd < 0)
		return fd_err_set(err, "unable to open key file '%s': %s", path,
				  strerror(errno));
	*usage = 1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fd_err_set(err, "key file '%s' is not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return fd_err_set(err, "key file '%s' is accessible to group or others (mode %04o): chmod 600 it",
				  path, (unsigned)(st.st_mode & 07777));
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0) {
		*usage = 0;
		return fd_err_set(err, "unable to read key file '%s': %s", path,
				  strerror(errno));
	}
	if (n > KEY_FILE_MAX)
		return fd_err_set(err, "key file '%s' is too large", path);
	rc = fd_keyring_parse(text, (size_t)n, kr, err);
	explicit_bzero(text, sizeof(text));
	if (rc < 0) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		return fd_err_set(err, "key file '%s': %s", path, why);
	}
	*usage = 0;
	return 0;
}

/* Peers */

struct gpeer {
	char addr[FD_PEER_ADDR_LEN];
	char name[256];
	char id[33];
	struct json_object *meta;
	int64_t expires;
};

struct fd_gossip_peers {
	struct gpeer *v;
	size_t n, max;
};

struct fd_gossip_peers *fd_gossip_peers_new(size_t max)
{
	struct fd_gossip_peers *p = calloc(1, sizeof(*p));

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->max = max ? max : MAX_PEERS;
	return p;
}

static void peer_drop(struct fd_gossip_peers *p, size_t i)
{
	json_object_put(p->v[i].meta);
	p->v[i] = p->v[--p->n];
}

void fd_gossip_peers_free(struct fd_gossip_peers *p)
{
	if (!p)
		return;
	while (p->n)
		peer_drop(p, 0);
	free(p->v);
	free(p);
}

static void expire(struct fd_gossip_peers *p, int64_t now)
{
	for (size_t i = 0; i < p->n;)
		if (p->v[i].expires <= now)
			peer_drop(p, i);
		else
			i++;
}

int fd_gossip_peers_update(struct fd_gossip_peers *p, int64_t now,
			   const struct fd_gossip_msg *m)
{
	struct gpeer *g = NULL;
	int changed;

	if (m->kind == FD_GOSSIP_QUERY)
		return 0;
	expire(p, now);
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].addr, m->addr) == 0)
			g = &p->v[i];
	if (m->kind == FD_GOSSIP_LEAVE) {
		/* Only the instance at that address now may say it leaves. */
		if (g && strcmp(g->id, m->id) == 0)
			peer_drop(p, (size_t)(g - p->v));
		return 0;
	}
	if (!g) {
		if (p->n == p->max) {
			errno = ENOSPC;
			return -1;
		}
		if (p->n % 64 == 0) {
			struct gpeer *nv = realloc(p->v, (p->n + 64) * sizeof(*nv));

			if (!nv) {
				errno = ENOMEM;
				return -1;
			}
			p->v = nv;
		}
		g = &p->v[p->n++];
		memset(g, 0, sizeof(*g));
		snprintf(g->addr, sizeof(g->addr), "%s", m->addr);
		changed = 1;
	} else {
		changed = strcmp(g->name, m->name) != 0 ||
			  strcmp(g->id, m->id) != 0 ||
			  (m->meta ? !json_object_equal(g->meta, m->meta)
				   : json_object_object_length(g->meta) != 0);
	}
	snprintf(g->name, sizeof(g->name), "%s", m->name);
	snprintf(g->id, sizeof(g->id), "%s", m->id);
	json_object_put(g->meta);
	g->meta = m->meta ? json_object_get(m->meta) : json_object_new_object();
	g->expires = now + FD_GOSSIP_MISSED * m->interval_ms + FD_GOSSIP_GRACE_MS;
	return changed;
}

static int peer_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gpeer *)a)->addr,
		      ((const struct gpeer *)b)->addr);
}

size_t fd_gossip_peers_each(struct fd_gossip_peers *p, int64_t now,
			    void (*cb)(const char *name, const char *addr,
				       struct json_object *meta, void *arg),
			    void *arg)
{
	expire(p, now);
	if (p->n > 1)
		qsort(p->v, p->n, sizeof(p->v[0]), peer_cmp);
	for (size_t i = 0; i < p->n; i++)
		cb(p->v[i].name, p->v[i].addr, p->v[i].meta, arg);
	return p->n;
}

int64_t fd_gossip_peers_next_expiry(const struct fd_gossip_peers *p, int64_t now)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].expires > now && p->v[i].expires < next)
			next = p->v[i].expires;
	return next;
}
