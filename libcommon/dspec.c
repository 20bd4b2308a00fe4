#include "dspec.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const common_keys[] = {"interval", "down_after", NULL};

static int key_ok(const char *k, size_t len)
{
	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", k[i]))
			return 0;
	return 1;
}

static int strategy_ok(const char *s)
{
	return s[0] >= 'a' && s[0] <= 'z' && strlen(s) <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s);
}

void fd_dspec_release(struct fd_dspec *sp)
{
	free(sp->strategy);
	for (size_t i = 0; i < sp->n; i++) {
		free(sp->keys[i]);
		free(sp->vals[i]);
	}
	memset(sp, 0, sizeof(*sp));
}

int fd_dspec_set_strategy(struct fd_dspec *sp, const char *strategy)
{
	char *s = strdup(strategy);

	if (!s)
		return -1;
	free(sp->strategy);
	sp->strategy = s;
	return 0;
}

const char *fd_dspec_get(const struct fd_dspec *sp, const char *key)
{
	for (size_t i = 0; i < sp->n; i++)
		if (strcmp(sp->keys[i], key) == 0)
			return sp->vals[i];
	return NULL;
}

int fd_dspec_set(struct fd_dspec *sp, const char *key, const char *val)
{
	char *v = strdup(val), *k;

	if (!v)
		return -1;
	for (size_t i = 0; i < sp->n; i++)
		if (strcmp(sp->keys[i], key) == 0) {
			free(sp->vals[i]);
			sp->vals[i] = v;
			return 0;
		}
	if (sp->n == FD_DSPEC_MAX) {
		free(v);
		errno = ENOSPC;
		return -1;
	}
	k = strdup(key);
	if (!k) {
		free(v);
		return -1;
	}
	sp->keys[sp->n] = k;
	sp->vals[sp->n++] = v;
	return 0;
}

/* One word from *p: unquoted runs, "..." (with \" and \\) and '...' pieces
 * up to the next blank, into out (at least strlen(*p) + 1 bytes). Returns 1
 * with *p past the word, 0 at the end, -1 for an unclosed quote. */
static int next_word(const char **p, char *out)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (!*s) {
		*p = s;
		return 0;
	}
	while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
		if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				out[n++] = *s;
			}
			if (!*s)
				return -1;
			s++;
		} else if (*s == '\'') {
			for (s++; *s && *s != '\''; s++)
				out[n++] = *s;
			if (!*s)
				return -1;
			s++;
		} else {
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	*p = s;
	return 1;
}

int fd_dspec_parse(struct fd_dspec *sp, const char *s, struct fd_err *err)
{
	size_t len = strlen(s);
	char *word;
	const char *p = s;
	int rc, first = 1;

	memset(sp, 0, sizeof(*sp));
	if (len > FD_DSPEC_MAX_LEN)
		return fd_err_set(err, "invalid spec: longer than %d bytes",
				  FD_DSPEC_MAX_LEN);
	word = malloc(len + 1);
	if (!word)
		return fd_err_set(err, "out of memory");
	while ((rc = next_word(&p, word)) == 1) {
		char *eq = strchr(word, '=');

		if (first && !eq) {
			if (!strategy_ok(word)) {
				fd_err_set(err, "invalid spec: '%s' is not a strategy name",
					   word);
				goto fail;
			}
			if (fd_dspec_set_strategy(sp, word) < 0)
				goto oom;
			first = 0;
			continue;
		}
		first = 0;
		if (!eq || !key_ok(word, (size_t)(eq - word))) {
			fd_err_set(err, "invalid spec: '%s' is not key=value", word);
			goto fail;
		}
		*eq = '\0';
		if (strcmp(word, "provider") == 0 && !sp->strategy) {
			if (!strategy_ok(eq + 1)) {
				fd_err_set(err, "invalid spec: '%s' is not a strategy name",
					   eq + 1);
				goto fail;
			}
			if (fd_dspec_set_strategy(sp, eq + 1) < 0)
				goto oom;
			continue;
		}
		if (fd_dspec_get(sp, word)) {
			fd_err_set(err, "invalid spec: '%s' given twice", word);
			goto fail;
		}
		if (fd_dspec_set(sp, word, eq + 1) < 0) {
			if (errno == ENOSPC) {
				fd_err_set(err, "invalid spec: more than %d settings",
					   FD_DSPEC_MAX);
				goto fail;
			}
			goto oom;
		}
	}
	if (rc < 0) {
		fd_err_set(err, "invalid spec: unclosed quote");
		goto fail;
	}
	if (!sp->strategy) {
		fd_err_set(err, "invalid spec: no strategy (expected STRATEGY key=value ...)");
		goto fail;
	}
	free(word);
	return 0;
oom:
	fd_err_set(err, "out of memory");
fail:
	free(word);
	return -1;
}

static int in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

int fd_dspec_check(const struct fd_dspec *sp, const char *const *keys,
		   struct fd_err *err)
{
	for (size_t i = 0; i < sp->n; i++) {
		char known[512] = "";
		size_t n = 0;

		if (in_list(keys, sp->keys[i]) || in_list(common_keys, sp->keys[i]))
			continue;
		for (const char *const *k = keys; k && *k; k++)
			n += (size_t)snprintf(
				known + n, n < sizeof(known) ? sizeof(known) - n : 0,
				"%s, ", *k);
		for (const char *const *k = common_keys; *k; k++)
			n += (size_t)snprintf(
				known + n, n < sizeof(known) ? sizeof(known) - n : 0,
				"%s%s", *k, k[1] ? ", " : "");
		return fd_err_set(err, "unknown key '%s' for %s (known: %s)",
				  sp->keys[i], sp->strategy, known);
	}
	return 0;
}

int fd_dspec_duration(const struct fd_dspec *sp, const char *key, int64_t def,
		      int64_t min_ms, int64_t max_ms, int64_t *out,
		      struct fd_err *err)
{
	const char *v = fd_dspec_get(sp, key);

	*out = def;
	if (!v)
		return 0;
	if (fd_parse_duration(v, out) < 0 || *out < min_ms || *out > max_ms)
		return fd_err_set(
			err, "invalid %s '%s' (a duration from %lldms to %llds)",
			key, v, (long long)min_ms, (long long)(max_ms / 1000));
	return 0;
}

int fd_dspec_int(const struct fd_dspec *sp, const char *key, long long def,
		 long long min, long long max, long long *out, struct fd_err *err)
{
	const char *v = fd_dspec_get(sp, key);

	*out = def;
	if (!v)
		return 0;
	if (fd_parse_int(v, min, max, out) < 0)
		return fd_err_set(err, "invalid %s '%s' (%lld to %lld)", key, v,
				  min, max);
	return 0;
}

/* Appends s to buf at *n, in double quotes when it needs them. */
static int put_word(char *buf, size_t len, size_t *n, const char *s)
{
	int quote = !*s || strpbrk(s, " \t\r\n\"'\\") != NULL;

	if (quote) {
		if (*n + 1 >= len)
			return -1;
		buf[(*n)++] = '"';
	}
	for (; *s; s++) {
		if (quote && (*s == '"' || *s == '\\')) {
			if (*n + 1 >= len)
				return -1;
			buf[(*n)++] = '\\';
		}
		if (*n + 1 >= len)
			return -1;
		buf[(*n)++] = *s;
	}
	if (quote) {
		if (*n + 1 >= len)
			return -1;
		buf[(*n)++] = '"';
	}
	buf[*n] = '\0';
	return 0;
}

int fd_dspec_format(const struct fd_dspec *sp, char *buf, size_t len)
{
	size_t n = 0;

	errno = ENOSPC;
	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (put_word(buf, len, &n, sp->strategy ? sp->strategy : "") < 0)
		return -1;
	for (size_t i = 0; i < sp->n; i++) {
		size_t kl = strlen(sp->keys[i]);

		if (n + kl + 2 >= len)
			return -1;
		buf[n++] = ' ';
		memcpy(buf + n, sp->keys[i], kl);
		n += kl;
		buf[n++] = '=';
		buf[n] = '\0';
		if (put_word(buf, len, &n, sp->vals[i]) < 0)
			return -1;
	}
	return 0;
}

/* libcluster */

enum lc_kind {
	LC_STR,	   /* a string (a number is written in decimal) */
	LC_MS,	   /* milliseconds as a number, or a duration string */
	LC_BOOL,   /* true / false */
	LC_HOSTS,  /* a list of "name@host[:port]" or "host[:port]" */
	LC_API,	   /* a host name, or a URL */
	LC_MODE,   /* libcluster's node-name mode: only ip makes sense here */
	LC_PASS,   /* kept under its own name (for the strategy to check) */
	LC_SERVICE /* Kubernetes.DNSSRV: service and namespace make the name */
};

struct lc_opt {
	const char *lc;
	const char *key;
	enum lc_kind kind;
};

struct lc_strategy {
	const char *name; /* libcluster's, without "Cluster.Strategy." */
	const char *fd;	  /* fd's strategy, NULL: none */
	const char *why;  /* for a strategy without an fd equivalent */
	struct lc_opt opts[12];
};

static const struct lc_strategy lc_strategies[] = {
	{"Kubernetes",
	 "kubernetes",
	 NULL,
	 {{"kubernetes_selector", "selector", LC_STR},
	  {"kubernetes_namespace", "namespace", LC_STR},
	  {"kubernetes_node_basename", "basename", LC_STR},
	  {"kubernetes_ip_lookup_mode", "mode", LC_STR},
	  {"kubernetes_master", "api", LC_API},
	  {"kubernetes_service_account_path", "sa_dir", LC_STR},
	  {"kubernetes_use_cached_resources", "cached", LC_BOOL},
	  {"mode", NULL, LC_MODE},
	  {"polling_interval", "interval", LC_MS},
	  {0}}},
	{"Kubernetes.DNS",
	 "dns",
	 NULL,
	 {{"service", "name", LC_STR},
	  {"application_name", "basename", LC_STR},
	  {"polling_interval", "interval", LC_MS},
	  {0}}},
	{"Kubernetes.DNSSRV",
	 "dns-srv",
	 NULL,
	 {{"service", NULL, LC_SERVICE},
	  {"namespace", NULL, LC_SERVICE},
	  {"application_name", "basename", LC_STR},
	  {"polling_interval", "interval", LC_MS},
	  {0}}},
	{"DNSPoll",
	 "dns",
	 NULL,
	 {{"query", "name", LC_STR},
	  {"node_basename", "basename", LC_STR},
	  {"polling_interval", "interval", LC_MS},
	  {"poll_interval", "interval", LC_MS},
	  {0}}},
	{"Epmd", "static", NULL, {{"hosts", "addrs", LC_HOSTS}, {0}}},
	{"Gossip",
	 "gossip",
	 NULL,
	 {{"port", "port", LC_PASS},
	  {"if_addr", "if_addr", LC_PASS},
	  {"multicast_if", "multicast_if", LC_PASS},
	  {"multicast_addr", "multicast_addr", LC_PASS},
	  {"multicast_ttl", "multicast_ttl", LC_PASS},
	  {"secret", "secret", LC_PASS},
	  {0}}},
	{"LocalEpmd",
	 NULL,
	 "it asks the local epmd for Erlang node names; use static or mdns",
	 {{0}}},
	{"ErlangHosts", NULL, "it reads .hosts.erlang; use file", {{0}}},
	{"Rancher", NULL, "Rancher's metadata service is not supported", {{0}}},
};

/* fd's own strategy names take the options of the libcluster strategy they
 * stand for (so polling_interval works everywhere). */
static const struct {
	const char *fd, *lc;
} fd_names[] = {
	{"kubernetes", "Kubernetes"},
	{"dns", "DNSPoll"},
	{"dns-srv", "Kubernetes.DNSSRV"},
	{"static", "Epmd"},
	{"gossip", "Gossip"},
	{"file", NULL},
	{"exec", NULL},
	{"mdns", NULL},
};

static const struct lc_strategy *lc_find(const char *name)
{
	for (size_t i = 0; i < sizeof(lc_strategies) / sizeof(lc_strategies[0]); i++)
		if (strcmp(lc_strategies[i].name, name) == 0)
			return &lc_strategies[i];
	return NULL;
}

/* A JSON scalar as text into buf. Returns 0, or -1 for a list/object/null. */
static int scalar(struct json_object *v, char *buf, size_t len)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		snprintf(buf, len, "%s", json_object_get_string(v));
		return 0;
	case json_type_int:
		snprintf(buf, len, "%lld", (long long)json_object_get_int64(v));
		return 0;
	case json_type_boolean:
		snprintf(buf, len, "%s",
			 json_object_get_boolean(v) ? "true" : "false");
		return 0;
	case json_type_double:
		snprintf(buf, len, "%s", json_object_to_json_string(v));
		return 0;
	default: return -1;
	}
}

static int put(struct fd_dspec *sp, const char *key, const char *val,
	       struct fd_err *err)
{
	if (fd_dspec_set(sp, key, val) == 0)
		return 0;
	return fd_err_set(err, errno == ENOSPC ? "too many options" : "out of memory");
}

static int lc_value(struct fd_dspec *sp, const char *sname, const struct lc_opt *opt,
		    const char *name, struct json_object *v, char *svc,
		    char *ns, size_t svclen, struct fd_err *err)
{
	char buf[2048];
	size_t n = 0;

	switch (opt ? opt->kind : LC_PASS) {
	case LC_HOSTS:
		if (!json_object_is_type(v, json_type_array))
			return fd_err_set(err, "option '%s' of %s must be a list of hosts",
					  name, sname);
		buf[0] = '\0';
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *h = json_object_array_get_idx(v, i);
			const char *s = json_object_get_string(h), *at;
			int w;

			if (!json_object_is_type(h, json_type_string) || !*s)
				return fd_err_set(err, "option '%s' of %s must be a list of hosts",
						  name, sname);
			at = strchr(s, '@'); /* Erlang node names: name@host */
			w = snprintf(buf + n, sizeof(buf) - n, "%s%s",
				     n ? "," : "", at ? at + 1 : s);
			if (w < 0 || (size_t)w >= sizeof(buf) - n)
				return fd_err_set(err, "option '%s' of %s: too long",
						  name, sname);
			n += (size_t)w;
		}
		if (!n)
			return fd_err_set(err, "option '%s' of %s is empty",
					  name, sname);
		return put(sp, opt->key, buf, err);
	case LC_MS:
		if (json_object_is_type(v, json_type_int)) {
			snprintf(buf, sizeof(buf), "%lldms",
				 (long long)json_object_get_int64(v));
			return put(sp, opt->key, buf, err);
		}
		break;
	case LC_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return fd_err_set(err, "option '%s' of %s must be true or false",
					  name, sname);
		break;
	default: break;
	}
	if (scalar(v, buf, sizeof(buf)) < 0)
		return fd_err_set(err, "option '%s' of %s must be a string or a number",
				  name, sname);
	/* Atoms written as strings may keep their colon: ":pods". */
	if (buf[0] == ':' && opt && opt->kind != LC_PASS && opt->kind != LC_API)
		memmove(buf, buf + 1, strlen(buf));
	if (!opt)
		return put(sp, name, buf, err);
	switch (opt->kind) {
	case LC_MODE:
		if (strcmp(buf, "ip") != 0)
			return fd_err_set(
				err,
				"option 'mode' of %s: '%s' is not supported (only ip: "
				"fd peers are addresses, not Erlang host names)",
				sname, buf);
		return 0;
	case LC_API:
		if (!strstr(buf, "://")) {
			char url[2100];

			snprintf(url, sizeof(url), "https://%s", buf);
			return put(sp, opt->key, url, err);
		}
		return put(sp, opt->key, buf, err);
	case LC_SERVICE:
		if (strlen(buf) >= svclen)
			return fd_err_set(err, "option '%s' of %s: too long",
					  name, sname);
		memcpy(strcmp(name, "service") == 0 ? svc : ns, buf, strlen(buf) + 1);
		return 0;
	default: return put(sp, opt->key, buf, err);
	}
}

int fd_dspec_from_libcluster(struct fd_dspec *sp, struct json_object *topology,
			     char *note, size_t notelen, struct fd_err *err)
{
	struct json_object *cfg = NULL, *sv;
	const struct lc_strategy *lc = NULL;
	const char *name, *fd = NULL;
	char svc[256] = "", ns[256] = "";

	memset(sp, 0, sizeof(*sp));
	if (note && notelen)
		note[0] = '\0';
	if (!json_object_is_type(topology, json_type_object) ||
	    !json_object_object_get_ex(topology, "strategy", &sv) ||
	    !json_object_is_type(sv, json_type_string))
		return fd_err_set(err, "a topology needs a \"strategy\" string");
	name = json_object_get_string(sv);
	if (json_object_object_get_ex(topology, "config", &cfg) &&
	    !json_object_is_type(cfg, json_type_object))
		return fd_err_set(err, "\"config\" must be an object");
	json_object_object_foreach(topology, tk, tv)
	{
		(void)tv;
		if (strcmp(tk, "strategy") != 0 && strcmp(tk, "config") != 0)
			return fd_err_set(err, "unknown topology field '%s' (strategy, config)",
					  tk);
	}
	{
		const char *s = name;

		if (strncmp(s, "Elixir.", 7) == 0)
			s += 7;
		if (strncmp(s, "Cluster.Strategy.", 17) == 0)
			s += 17;
		lc = lc_find(s);
		if (lc && !lc->fd)
			return fd_err_set(err, "strategy '%s' has no fd equivalent: %s",
					  name, lc->why);
		if (lc) {
			fd = lc->fd;
		} else {
			for (size_t i = 0;
			     i < sizeof(fd_names) / sizeof(fd_names[0]); i++)
				if (strcmp(fd_names[i].fd, name) == 0) {
					fd = name;
					lc = fd_names[i].lc
						     ? lc_find(fd_names[i].lc)
						     : NULL;
				}
		}
		if (!fd)
			return fd_err_set(err, "unknown strategy '%s'", name);
	}
	if (fd_dspec_set_strategy(sp, fd) < 0)
		return fd_err_set(err, "out of memory");
	if (cfg) {
		json_object_object_foreach(cfg, k, v)
		{
			const struct lc_opt *opt = NULL;

			for (size_t i = 0; lc && lc->opts[i].lc; i++)
				if (strcmp(lc->opts[i].lc, k) == 0)
					opt = &lc->opts[i];
			if (!opt && strcmp(k, "polling_interval") == 0) {
				static const struct lc_opt pi = {
					"polling_interval", "interval", LC_MS};
				opt = &pi;
			}
			if (!opt && !key_ok(k, strlen(k)))
				return fd_err_set(err, "unknown option '%s' for %s",
						  k, name);
			if (lc_value(sp, name, opt, k, v, svc, ns, sizeof(svc),
				     err) < 0)
				return -1;
		}
	}
	if (svc[0] || ns[0]) {
		char full[600];

		if (!svc[0])
			return fd_err_set(
				err, "%s needs 'service' with 'namespace'", name);
		if (ns[0])
			snprintf(full, sizeof(full), "%s.%s.svc.cluster.local",
				 svc, ns);
		else
			snprintf(full, sizeof(full), "%s", svc);
		if (put(sp, "name", full, err) < 0)
			return -1;
	}
	if (note && notelen)
		snprintf(note, notelen, "%s is fd's %s", name, fd);
	return 0;
}
