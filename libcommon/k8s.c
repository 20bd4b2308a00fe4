#include "k8s.h"
#include "cli.h"
#include "discover.h"
#include "jsonl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOKEN 16384

const char *const fd_k8s_keys[] = {
	"selector",   "namespace", "mode",   "port",	 "port_name", "api",
	"token_file", "ca_file",   "sa_dir", "basename", "cached",    NULL};

/* Reads a small file (trimmed of surrounding blanks) into buf. Returns 0,
 * or -1 with errno (EFBIG when it does not fit). */
static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, start = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
		n += (size_t)r;
	}
	if (n + 1 >= len) {
		char c;

		if (read(fd, &c, 1) == 1) {
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
		buf[--n] = '\0';
	while (buf[start] && strchr(" \t\r\n", buf[start]))
		start++;
	memmove(buf, buf + start, n - start + 1);
	return 0;
}

/* DNS-1123 label: what a namespace is. */
static int ns_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n &&
	       s[0] != '-' && s[n - 1] != '-';
}

static int copy(char *dst, size_t len, const char *src)
{
	int n = snprintf(dst, len, "%s", src);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int fd_k8s_config(struct fd_k8s *k, const struct fd_dspec *sp, struct fd_err *err)
{
	const char *v, *host, *port;
	char path[1200];
	long long n;
	struct stat st;

	memset(k, 0, sizeof(*k));
	if (copy(k->sa_dir, sizeof(k->sa_dir),
		 (v = fd_dspec_get(sp, "sa_dir")) ? v : FD_K8S_SA_DIR) < 0)
		return fd_err_set(err, "invalid sa_dir (too long)");
	v = fd_dspec_get(sp, "selector");
	if (!v || !*v)
		return fd_err_set(
			err, "kubernetes needs a label selector (selector=, e.g. app=fd)");
	if (copy(k->selector, sizeof(k->selector), v) < 0 || strpbrk(v, "\r\n"))
		return fd_err_set(err, "invalid selector '%s'", v);
	v = fd_dspec_get(sp, "mode");
	if (!v || strcmp(v, "endpoints") == 0)
		k->mode = FD_K8S_ENDPOINTS;
	else if (strcmp(v, "pods") == 0)
		k->mode = FD_K8S_PODS;
	else
		return fd_err_set(err, "invalid mode '%s' (endpoints, pods)", v);
	if (fd_dspec_int(sp, "port", 0, 1, 65535, &n, err) < 0)
		return -1;
	k->port = (int)n;
	v = fd_dspec_get(sp, "port_name");
	if (copy(k->port_name, sizeof(k->port_name), v ? v : "fd") < 0 ||
	    !k->port_name[0])
		return fd_err_set(err, "invalid port_name '%s'", v ? v : "");
	v = fd_dspec_get(sp, "basename");
	if (v && (copy(k->basename, sizeof(k->basename), v) < 0 || !*v))
		return fd_err_set(err, "invalid basename '%s'", v);
	v = fd_dspec_get(sp, "cached");
	if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
		return fd_err_set(err, "invalid cached '%s' (true, false)", v);
	k->cached = v && strcmp(v, "true") == 0;

	v = fd_dspec_get(sp, "namespace");
	if (v) {
		if (!ns_ok(v))
			return fd_err_set(err, "invalid namespace '%s'", v);
		snprintf(k->ns, sizeof(k->ns), "%s", v);
	} else {
		snprintf(path, sizeof(path), "%s/namespace", k->sa_dir);
		if (read_small(path, k->ns, sizeof(k->ns)) < 0)
			return fd_err_set(err, "no namespace= given and unable to read '%s': %s",
					  path, strerror(errno));
		if (!ns_ok(k->ns))
			return fd_err_set(err, "'%s' holds no valid namespace", path);
	}

	v = fd_dspec_get(sp, "api");
	if (v) {
		if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
		    copy(k->api, sizeof(k->api), v) < 0 || strpbrk(v, " \t\r\n"))
			return fd_err_set(err, "invalid api '%s' (expected http[s]://HOST[:PORT])",
					  v);
	} else {
		host = getenv("KUBERNETES_SERVICE_HOST");
		port = getenv("KUBERNETES_SERVICE_PORT");
		if (!host || !*host)
			return fd_err_set(
				err, "no api= given and KUBERNETES_SERVICE_HOST is not set");
		if (strpbrk(host, "/ \t\r\n@") ||
		    (port && strpbrk(port, "/ \t\r\n@")))
			return fd_err_set(err, "invalid KUBERNETES_SERVICE_HOST/PORT");
		snprintf(k->api, sizeof(k->api),
			 strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
			 host, port && *port ? port : "443");
	}
	{
		size_t l = strlen(k->api);

		while (l > 0 && k->api[l - 1] == '/')
			k->api[--l] = '\0';
	}

	v = fd_dspec_get(sp, "token_file");
	if (v) {
		if (copy(k->token_file, sizeof(k->token_file), v) < 0)
			return fd_err_set(err, "invalid token_file (too long)");
	} else {
		snprintf(path, sizeof(path), "%s/token", k->sa_dir);
		if (stat(path, &st) == 0 &&
		    copy(k->token_file, sizeof(k->token_file), path) < 0)
			return fd_err_set(err, "invalid sa_dir (too long)");
	}
	v = fd_dspec_get(sp, "ca_file");
	if (v) {
		if (copy(k->ca_file, sizeof(k->ca_file), v) < 0)
			return fd_err_set(err, "invalid ca_file (too long)");
		if (stat(v, &st) < 0)
			return fd_err_set(err, "unable to read ca_file '%s': %s",
					  v, strerror(errno));
	} else {
		snprintf(path, sizeof(path), "%s/ca.crt", k->sa_dir);
		if (stat(path, &st) == 0 &&
		    copy(k->ca_file, sizeof(k->ca_file), path) < 0)
			return fd_err_set(err, "invalid sa_dir (too long)");
	}
	return 0;
}

static int url_escape(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-_.~", c)) {
			if (n + 1 >= len)
				return -1;
			out[n++] = (char)c;
		} else {
			if (n + 3 >= len)
				return -1;
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	if (n >= len)
		return -1;
	out[n] = '\0';
	return 0;
}

int fd_k8s_url(const struct fd_k8s *k, char *buf, size_t len)
{
	char sel[3 * sizeof(k->selector)];
	int n;

	if (url_escape(k->selector, sel, sizeof(sel)) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	n = snprintf(buf, len, "%s/api/v1/namespaces/%s/%s?labelSelector=%s%s",
		     k->api, k->ns, k->mode == FD_K8S_PODS ? "pods" : "endpoints",
		     sel, k->cached ? "&resourceVersion=0" : "");
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int fd_k8s_auth(const struct fd_k8s *k, char *buf, size_t len, struct fd_err *err)
{
	char *tok;
	int n;

	buf[0] = '\0';
	if (!k->token_file[0])
		return 0;
	tok = malloc(MAX_TOKEN);
	if (!tok)
		return fd_err_set(err, "out of memory");
	if (read_small(k->token_file, tok, MAX_TOKEN) < 0) {
		fd_err_set(err, "unable to read the token '%s': %s", k->token_file,
			   errno == EFBIG ? "too large" : strerror(errno));
		free(tok);
		return -1;
	}
	if (!tok[0] || strpbrk(tok, "\r\n")) {
		fd_err_set(err, "the token '%s' is %s", k->token_file,
			   tok[0] ? "not one line" : "empty");
		free(tok);
		return -1;
	}
	n = snprintf(buf, len, "Authorization: Bearer %s", tok);
	free(tok);
	if (n < 0 || (size_t)n >= len)
		return fd_err_set(err, "the token '%s' is too large", k->token_file);
	return 0;
}

/* JSON helpers: members of the expected type, else NULL. */
static struct json_object *get(struct json_object *o, const char *key,
			       enum json_type type)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, type))
		return NULL;
	return v;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}

/* The port named k->port_name in an array of {name, port|containerPort}. */
static int named_port(const struct fd_k8s *k, struct json_object *ports,
		      const char *field)
{
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		struct json_object *p = json_object_array_get_idx(ports, i),
				   *num = get(p, field, json_type_int);
		const char *name = str(p, "name");

		if (name && num && strcmp(name, k->port_name) == 0) {
			int64_t v = json_object_get_int64(num);

			if (v >= 1 && v <= 65535)
				return (int)v;
		}
	}
	return 0;
}

struct emit {
	const struct fd_k8s *k;
	fd_k8s_peer_cb peer;
	void *arg;
	int count;
};

/* One ready address. Returns 0, 1 when skipped (a bad IP), -1 to stop. */
static int emit_peer(struct emit *e, const char *ip, int port, const char *pod,
		     const char *ns, const char *node, const char *service)
{
	unsigned char bin[16];
	int v6 = strchr(ip, ':') != NULL;
	char addr[FD_PEER_ADDR_LEN], name[300];
	struct json_object *meta;
	int rc;

	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, bin) != 1 ||
	    fd_peer_addr_ip(v6 ? AF_INET6 : AF_INET, bin, port, addr,
			    sizeof(addr)) < 0)
		return 1;
	meta = json_object_new_object();
	if (!meta)
		return -1;
	if (ns)
		json_object_object_add(meta, "namespace",
				       json_object_new_string(ns));
	if (pod)
		json_object_object_add(meta, "pod", json_object_new_string(pod));
	if (node)
		json_object_object_add(meta, "node", json_object_new_string(node));
	json_object_object_add(meta, "ip", json_object_new_string(ip));
	if (service)
		json_object_object_add(meta, "service",
				       json_object_new_string(service));
	if (e->k->basename[0])
		snprintf(name, sizeof(name), "%s@%s", e->k->basename, ip);
	rc = e->peer(addr, e->k->basename[0] ? name : pod, meta, e->arg);
	json_object_put(meta);
	if (rc < 0)
		return -1;
	e->count++;
	return 0;
}

static int ready_condition(struct json_object *status)
{
	struct json_object *conds = get(status, "conditions", json_type_array);

	for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
		struct json_object *c = json_object_array_get_idx(conds, i);
		const char *type = str(c, "type"), *st = str(c, "status");

		if (type && st && strcmp(type, "Ready") == 0)
			return strcmp(st, "True") == 0;
	}
	return 0;
}

static int parse_pods(struct emit *e, struct json_object *items,
		      struct fd_k8s_stats *st)
{
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *pod = json_object_array_get_idx(items, i),
				   *md = get(pod, "metadata", json_type_object),
				   *spec = get(pod, "spec", json_type_object),
				   *status = get(pod, "status", json_type_object),
				   *containers = get(spec, "containers",
						     json_type_array);
		const char *ip = str(status, "podIP"), *phase = str(status, "phase");
		int port = e->k->port, rc;

		st->items++;
		if (get(md, "deletionTimestamp", json_type_string)) {
			st->terminating++;
			continue;
		}
		if (!phase || strcmp(phase, "Running") != 0 ||
		    !ready_condition(status)) {
			st->not_ready++;
			continue;
		}
		if (!ip || !*ip) {
			st->no_ip++;
			continue;
		}
		for (size_t c = 0; !port && containers &&
				   c < json_object_array_length(containers);
		     c++)
			port = named_port(e->k,
					  get(json_object_array_get_idx(containers, c),
					      "ports", json_type_array),
					  "containerPort");
		if (!port)
			port = FD_DEFAULT_PORT;
		rc = emit_peer(e, ip, port, str(md, "name"),
			       str(md, "namespace"), str(spec, "nodeName"), NULL);
		if (rc < 0)
			return -1;
		st->bad_ip += (unsigned)rc;
	}
	return 0;
}

/* One subset of an Endpoints object: its ready addresses, on its port. */
static int parse_subset(struct emit *e, struct json_object *md,
			struct json_object *sub, struct fd_k8s_stats *st)
{
	struct json_object *addrs = get(sub, "addresses", json_type_array),
			   *nr = get(sub, "notReadyAddresses", json_type_array);
	int port = e->k->port;

	if (nr)
		st->not_ready += (unsigned)json_object_array_length(nr);
	if (!port)
		port = named_port(e->k, get(sub, "ports", json_type_array), "port");
	if (!port)
		port = FD_DEFAULT_PORT;
	for (size_t a = 0; addrs && a < json_object_array_length(addrs); a++) {
		struct json_object *ad = json_object_array_get_idx(addrs, a),
				   *ref = get(ad, "targetRef", json_type_object);
		const char *ip = str(ad, "ip"), *kind = str(ref, "kind"),
			   *ns = str(ref, "namespace"), *pod = NULL;
		int rc;

		if (!ip) {
			st->bad_ip++;
			continue;
		}
		if (kind && strcmp(kind, "Pod") == 0)
			pod = str(ref, "name");
		if (!pod)
			pod = str(ad, "hostname");
		rc = emit_peer(e, ip, port, pod, ns ? ns : str(md, "namespace"),
			       str(ad, "nodeName"), str(md, "name"));
		if (rc < 0)
			return -1;
		st->bad_ip += (unsigned)rc;
	}
	return 0;
}

static int parse_endpoints(struct emit *e, struct json_object *items,
			   struct fd_k8s_stats *st)
{
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *ep = json_object_array_get_idx(items, i),
				   *md = get(ep, "metadata", json_type_object),
				   *subs = get(ep, "subsets", json_type_array);

		st->items++;
		for (size_t j = 0; subs && j < json_object_array_length(subs); j++)
			if (parse_subset(e, md, json_object_array_get_idx(subs, j),
					 st) < 0)
				return -1;
	}
	return 0;
}

int fd_k8s_parse(const struct fd_k8s *k, const char *body, size_t len,
		 fd_k8s_peer_cb peer, void *arg, struct fd_k8s_stats *st,
		 struct fd_err *err)
{
	struct fd_err perr;
	struct json_object *o = fd_json_parse(body, len, &perr), *items;
	struct emit e = {k, peer, arg, 0};
	const char *kind;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!o)
		return fd_err_set(err, "unexpected answer from the kubernetes API: %s",
				  perr.msg);
	kind = str(o, "kind");
	items = get(o, "items", json_type_array);
	if (!json_object_is_type(o, json_type_object) || !items ||
	    (kind && strcmp(kind, k->mode == FD_K8S_PODS ? "PodList"
							 : "EndpointsList") != 0)) {
		fd_err_set(err, "unexpected answer from the kubernetes API: not %s",
			   k->mode == FD_K8S_PODS ? "a PodList" : "an EndpointsList");
		json_object_put(o);
		return -1;
	}
	rc = k->mode == FD_K8S_PODS ? parse_pods(&e, items, st)
				    : parse_endpoints(&e, items, st);
	json_object_put(o);
	if (rc < 0)
		return fd_err_set(err, "stopped");
	return e.count;
}

void fd_k8s_status_error(long status, const char *body, size_t len, char *out,
			 size_t outlen)
{
	struct json_object *o = body && len ? fd_json_parse(body, len, NULL) : NULL;
	const char *msg = str(o, "message");

	if (msg && *msg)
		snprintf(out, outlen, "kubernetes API answered %ld: %.200s",
			 status, msg);
	else
		snprintf(out, outlen, "kubernetes API answered %ld", status);
	json_object_put(o);
}

void fd_k8s_empty_error(const struct fd_k8s *k, const struct fd_k8s_stats *st,
			char *out, size_t outlen)
{
	const char *what = k->mode == FD_K8S_PODS ? "pods" : "endpoints";

	if (st->items == 0)
		snprintf(out, outlen, "no %s match '%s' in namespace '%s'",
			 what, k->selector, k->ns);
	else if (k->mode == FD_K8S_PODS)
		snprintf(out, outlen,
			 "no ready pods match '%s' in namespace '%s' (%u pods: %u not "
			 "ready, %u terminating, %u without an IP)",
			 k->selector, k->ns, st->items, st->not_ready,
			 st->terminating, st->no_ip);
	else
		snprintf(out, outlen,
			 "no ready addresses in the endpoints matching '%s' in namespace "
			 "'%s' (%u not ready)",
			 k->selector, k->ns, st->not_ready);
}
