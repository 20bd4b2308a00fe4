/* Choosing the strategy: --auto (the environment), --config (a libcluster
 * topology) and FD_DISCOVER (a spec), all ending in one spec (dspec.h)
 * that is checked like fd-node --discover's and then run as if its
 * settings had been given as options. Options given on the command line
 * win over the spec's.
 *
 * --explain prints every check as a JSON line on stderr:
 *   {"type":"check","check":NAME,"result":...,...}
 * and the decision last:
 *   {"type":"choice","strategy":...,"spec":...,"why":...}
 *
 * A strategy that another part of fd adds to fd-discover (mdns, gossip)
 * joins --auto by being in main.c's table (have_strategy) and in
 * spec_runners below (how its spec becomes arguments).
 */
#include "cli.h"
#include "clock.h"
#include "dsource.h"
#include "dspec.h"
#include "jsonl.h"
#include "k8s.h"
#include "strategy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG (1024 * 1024)

static int explaining;

/* Ends the list of explain()'s pairs (a typed null for variadic use). */
#define END ((const char *)0)

/* One explain line: key/value string pairs after type, NULL-terminated;
 * a NULL value is written as null. */
static void explain(const char *type, ...)
{
	struct json_object *o;
	char ts[FD_TS_LEN];
	va_list ap;
	const char *k;

	if (!explaining)
		return;
	o = fd_json_record(type);
	va_start(ap, type);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
	}
	va_end(ap);
	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
	fprintf(stderr, "%s\n",
		json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

void explain_given(const char *strategy)
{
	explaining = 1;
	explain("choice", "strategy", strategy, "why",
		"given on the command line: nothing to choose", END);
}

/* The command line's settings, as spec keys, into sp where the strategy
 * takes them (they win over the spec's). */
static int merge_cli(struct fd_dspec *sp, const struct dopts *o,
		     const char *const *keys)
{
	char num[32];
	const struct {
		const char *key, *val;
	} kv[] = {
		{"resolver", o->resolver},     {"basename", o->basename},
		{"selector", o->selector},     {"namespace", o->k8s_namespace},
		{"mode", o->k8s_mode},	       {"api", o->api},
		{"token_file", o->token_file}, {"ca_file", o->ca_file},
		{"sa_dir", o->sa_dir},	       {"port_name", o->port_name},
	};

	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		int takes = 0;

		for (const char *const *k = keys; k && *k; k++)
			takes |= strcmp(*k, kv[i].key) == 0;
		if (kv[i].val && takes && fd_dspec_set(sp, kv[i].key, kv[i].val) < 0)
			return -1;
	}
	for (const char *const *k = keys; k && *k; k++) {
		if (strcmp(*k, "port") == 0 && o->port_given) {
			snprintf(num, sizeof(num), "%d", o->port);
			if (fd_dspec_set(sp, "port", num) < 0)
				return -1;
		}
		if (strcmp(*k, "timeout") == 0 && o->exec_timeout_given) {
			snprintf(num, sizeof(num), "%lldms",
				 (long long)o->exec_timeout_ms);
			if (fd_dspec_set(sp, "timeout", num) < 0)
				return -1;
		}
	}
	if (o->interval_given) {
		snprintf(num, sizeof(num), "%lldms", (long long)o->interval_ms);
		if (fd_dspec_set(sp, "interval", num) < 0)
			return -1;
	}
	if (o->down_after_given) {
		snprintf(num, sizeof(num), "%u", o->down_after);
		if (fd_dspec_set(sp, "down_after", num) < 0)
			return -1;
	}
	return 0;
}

/* How a spec becomes fd-discover's arguments: sets o from sp and fills
 * argv (at most max; strings borrowed from sp or owned by *buf). Returns
 * argc, or -1 with err. */
typedef int (*spec_runner)(const struct fd_dspec *sp, struct dopts *o,
			   char **argv, int max, char **buf, struct fd_err *err);

static int common(const struct fd_dspec *sp, struct dopts *o, struct fd_err *err)
{
	int64_t ms;
	long long n;

	if (fd_dspec_duration(sp, "interval", o->interval_ms, 10, 86400000, &ms,
			      err) < 0 ||
	    fd_dspec_int(sp, "down_after", o->down_after, 1, 1000000, &n, err) < 0)
		return -1;
	o->interval_ms = ms;
	o->down_after = (unsigned)n;
	return 0;
}

static int run_static(const struct fd_dspec *sp, struct dopts *o, char **argv,
		      int max, char **buf, struct fd_err *err)
{
	const char *addrs = fd_dspec_get(sp, "addrs");
	char *save = NULL;
	int n = 0;

	(void)o;
	if (!addrs)
		return fd_err_set(err, "static needs addrs=HOST:PORT,...");
	*buf = strdup(addrs);
	if (!*buf)
		return fd_err_set(err, "out of memory");
	for (char *a = strtok_r(*buf, ",", &save); a;
	     a = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return fd_err_set(err, "static: more than %d addresses", max);
		argv[n++] = a;
	}
	return n;
}

static int one_arg(const struct fd_dspec *sp, const char *key, char **argv,
		   struct fd_err *err)
{
	const char *v = fd_dspec_get(sp, key);

	if (!v)
		return fd_err_set(err, "%s needs %s=", sp->strategy, key);
	argv[0] = (char *)v;
	return 1;
}

static int run_file(const struct fd_dspec *sp, struct dopts *o, char **argv,
		    int max, char **buf, struct fd_err *err)
{
	(void)o;
	(void)max;
	(void)buf;
	return one_arg(sp, "path", argv, err);
}

static int run_exec(const struct fd_dspec *sp, struct dopts *o, char **argv,
		    int max, char **buf, struct fd_err *err)
{
	(void)max;
	(void)buf;
	if (fd_dspec_duration(sp, "timeout", o->exec_timeout_ms, 1, 86400000,
			      &o->exec_timeout_ms, err) < 0)
		return -1;
	return one_arg(sp, "cmd", argv, err);
}

static int run_dns(const struct fd_dspec *sp, struct dopts *o, char **argv,
		   int max, char **buf, struct fd_err *err)
{
	static char resolver[300];
	const char *r = fd_dspec_get(sp, "resolver");
	long long port;

	(void)max;
	(void)buf;
	if (fd_dspec_int(sp, "port", o->port, 1, 65535, &port, err) < 0)
		return -1;
	o->port = (int)port;
	if (r && !(o->resolver = resolver_arg(r, resolver, sizeof(resolver))))
		return fd_err_set(err,
				  "invalid resolver '%s' (expected IP[:PORT])", r);
	o->basename = fd_dspec_get(sp, "basename");
	return one_arg(sp, "name", argv, err);
}

static int run_k8s(const struct fd_dspec *sp, struct dopts *o, char **argv,
		   int max, char **buf, struct fd_err *err)
{
	long long port;

	(void)argv;
	(void)max;
	(void)buf;
	o->selector = fd_dspec_get(sp, "selector");
	o->k8s_namespace = fd_dspec_get(sp, "namespace");
	o->k8s_mode = fd_dspec_get(sp, "mode");
	o->api = fd_dspec_get(sp, "api");
	o->token_file = fd_dspec_get(sp, "token_file");
	o->ca_file = fd_dspec_get(sp, "ca_file");
	o->sa_dir = fd_dspec_get(sp, "sa_dir");
	o->port_name = fd_dspec_get(sp, "port_name");
	o->basename = fd_dspec_get(sp, "basename");
	if (fd_dspec_get(sp, "cached"))
		return fd_err_set(err, "cached= is for fd-node --discover only");
	if (fd_dspec_get(sp, "port")) {
		if (fd_dspec_int(sp, "port", 0, 1, 65535, &port, err) < 0)
			return -1;
		o->port = (int)port;
		o->port_given = 1;
	}
	return 0;
}

static const struct {
	const char *name;
	spec_runner run;
} spec_runners[] = {
	{"static", run_static}, {"file", run_file},   {"exec", run_exec},
	{"dns", run_dns},	{"dns-srv", run_dns}, {"kubernetes", run_k8s},
};

/* Checks sp (after the command line's settings are merged in) and runs it.
 * bad: the exit status for a spec that is wrong (2 for FD_DISCOVER, 7 for
 * a --config file); what names where it came from in messages. */
static int run_spec(struct fd_dspec *sp, const struct dopts *o, int bad,
		    const char *what, const char *why)
{
	const struct fd_dsource_ops *ops = fd_dsource_find(sp->strategy);
	spec_runner runner = NULL;
	struct dopts ro = *o;
	char text[FD_DSPEC_MAX_LEN + 1], *argv[256], *buf = NULL;
	struct fd_err err;
	int argc, rc;

	for (size_t i = 0; i < sizeof(spec_runners) / sizeof(spec_runners[0]); i++)
		if (strcmp(spec_runners[i].name, sp->strategy) == 0)
			runner = spec_runners[i].run;
	if (!ops || !runner || !have_strategy(sp->strategy)) {
		explain("check", "check", "strategy", "strategy", sp->strategy,
			"result", "unavailable", END);
		fd_warn("%s: strategy '%s' is not available in this fd-discover",
			what, sp->strategy);
		return FD_EXIT_NOTFOUND;
	}
	if (fd_dspec_check(sp, ops->keys, &err) < 0) {
		fd_warn("%s: %s", what, err.msg);
		return bad;
	}
	if (merge_cli(sp, o, ops->keys) < 0 ||
	    fd_dspec_format(sp, text, sizeof(text)) < 0)
		fd_die(FD_EXIT_RUNTIME, "%s: the spec is too long", what);
	if (fd_dsource_check(text, &err) < 0) {
		fd_warn("%s: %s", what, err.msg);
		return bad;
	}
	explain("choice", "strategy", sp->strategy, "spec", text, "why", why, END);
	if (common(sp, &ro, &err) < 0 ||
	    (argc = runner(sp, &ro, argv, 256, &buf, &err)) < 0) {
		free(buf);
		fd_warn("%s: %s", what, err.msg);
		return bad;
	}
	rc = run_strategy(sp->strategy, argc, argv, &ro);
	free(buf);
	return rc;
}

/* --config FILE */

static int run_config(const struct dopts *o)
{
	FILE *f = fopen(o->config, "r");
	char *text, names[512] = "", what[600], why[700], note[256];
	struct json_object *root, *tops, *top = NULL;
	struct fd_dspec sp;
	struct fd_err err;
	const char *chosen = NULL;
	size_t n, count = 0;
	int rc;

	if (!f)
		fd_die(FD_EXIT_RUNTIME, "unable to read '%s': %s", o->config,
		       strerror(errno));
	text = malloc(MAX_CONFIG + 1);
	n = text ? fread(text, 1, MAX_CONFIG + 1, f) : 0;
	if (!text)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	if (ferror(f))
		fd_die(FD_EXIT_RUNTIME, "unable to read '%s': %s", o->config,
		       strerror(errno));
	fclose(f);
	if (n > MAX_CONFIG)
		fd_die(FD_EXIT_DATA, "%s: larger than 1 MiB", o->config);
	root = fd_json_parse(text, n, &err);
	free(text);
	if (!root)
		fd_die(FD_EXIT_DATA, "%s: %s", o->config, err.msg);
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "topologies", &tops) ||
	    !json_object_is_type(tops, json_type_object))
		fd_die(FD_EXIT_DATA,
		       "%s: expected {\"topologies\": {\"NAME\": {...}}}",
		       o->config);
	json_object_object_foreach(root, rk, rv)
	{
		(void)rv;
		if (strcmp(rk, "topologies") != 0)
			fd_die(FD_EXIT_DATA, "%s: unknown field '%s' (topologies)",
			       o->config, rk);
	}
	json_object_object_foreach(tops, name, t)
	{
		size_t l = strlen(names);

		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", name);
		count++;
		if (o->topology ? strcmp(name, o->topology) == 0 : count == 1) {
			chosen = name;
			top = t;
		}
	}
	explain("check", "check", "config", "file", o->config, "result", "read",
		"topologies", names, END);
	if (count == 0)
		fd_die(FD_EXIT_DATA, "%s: no topologies", o->config);
	if (o->topology && !top)
		fd_usage_die("no topology '%s' in '%s' (it has: %s)",
			     o->topology, o->config, names);
	if (!o->topology && count > 1)
		fd_usage_die("'%s' has %zu topologies (%s): choose one with --topology",
			     o->config, count, names);
	snprintf(what, sizeof(what), "%s: topology '%s'", o->config, chosen);
	if (fd_dspec_from_libcluster(&sp, top, note, sizeof(note), &err) < 0) {
		explain("check", "check", "topology", "name", chosen, "result",
			"refused", "why", err.msg, END);
		fd_warn("%s: %s", what, err.msg);
		fd_dspec_release(&sp);
		json_object_put(root);
		return FD_EXIT_DATA;
	}
	explain("check", "check", "topology", "name", chosen, "result",
		"translated", "why", note, END);
	/* fd's spec keys say "key"; a libcluster file has options. */
	{
		const struct fd_dsource_ops *ops = fd_dsource_find(sp.strategy);

		if (ops && fd_dspec_check(&sp, ops->keys, &err) < 0 &&
		    strncmp(err.msg, "unknown key ", 12) == 0) {
			fd_warn("%s: unknown option %s", what, err.msg + 12);
			fd_dspec_release(&sp);
			json_object_put(root);
			return FD_EXIT_DATA;
		}
	}
	snprintf(why, sizeof(why), "topology '%s' of %s (%s)", chosen,
		 o->config, note);
	rc = run_spec(&sp, o, FD_EXIT_DATA, what, why);
	fd_dspec_release(&sp);
	json_object_put(root);
	return rc;
}

/* --auto */

/* The label that names the app of this pod (app.kubernetes.io/name, app,
 * k8s-app), as a selector, from the API server. */
static int own_selector(const struct dopts *o, char *sel, size_t len)
{
	struct dopts ko = *o;
	struct fd_dspec sp;
	struct fd_k8s k;
	struct fd_err err;
	char host[256], url[2048], *body = NULL;
	const char *pod = getenv("HOSTNAME");
	struct json_object *obj = NULL, *md, *labels;
	static const char *const keys[] = {"app.kubernetes.io/name", "app", "k8s-app"};
	size_t blen = 0;
	long status = 0;
	int rc;

	if (!pod || !*pod) {
		if (gethostname(host, sizeof(host)) < 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		pod = host;
	}
	ko.selector = "x"; /* the lookup needs none; the config wants one */
	if (k8s_spec(&ko, &sp) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	rc = fd_k8s_config(&k, &sp, &err);
	fd_dspec_release(&sp);
	if (rc < 0) {
		explain("check", "check", "pod_labels", "pod", pod, "result",
			"failed", "why", err.msg, END);
		fd_warn("--auto: kubernetes: %s", err.msg);
		return -1;
	}
	snprintf(url, sizeof(url), "%s/api/v1/namespaces/%s/pods/%s", k.api,
		 k.ns, pod);
	if (k8s_get(&k, url, &body, &blen, &status, &err) < 0) {
		explain("check", "check", "pod_labels", "pod", pod, "result",
			"failed", "why", err.msg, END);
		fd_warn("--auto: kubernetes: no --selector given, and asking for the labels of pod '%s' failed: %s",
			pod, err.msg);
		return -1;
	}
	if (status == 200)
		obj = fd_json_parse(body, blen, NULL);
	if (!obj || status != 200) {
		fd_k8s_status_error(status, body, blen, err.msg, sizeof(err.msg));
		free(body);
		json_object_put(obj);
		explain("check", "check", "pod_labels", "pod", pod, "result",
			"failed", "why", err.msg, END);
		fd_warn("--auto: kubernetes: no --selector given, and asking for the labels of pod '%s' failed: %s",
			pod, err.msg);
		return -1;
	}
	free(body);
	if (json_object_object_get_ex(obj, "metadata", &md) &&
	    json_object_object_get_ex(md, "labels", &labels))
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			const char *v = fd_json_get_str(labels, keys[i]);

			if (v && *v) {
				snprintf(sel, len, "%s=%s", keys[i], v);
				explain("check", "check", "pod_labels", "pod",
					pod, "result", sel, "why",
					"the label naming the pod's app", END);
				json_object_put(obj);
				return 0;
			}
		}
	json_object_put(obj);
	explain("check", "check", "pod_labels", "pod", pod, "result", "none",
		"why", "no app.kubernetes.io/name, app or k8s-app label", END);
	fd_warn("--auto: kubernetes: no --selector given, and pod '%s' has no app.kubernetes.io/name, app or k8s-app label",
		pod);
	return -1;
}

static int run_env_spec(const char *env, const struct dopts *o)
{
	struct fd_dspec sp;
	struct fd_err err;
	char what[64];
	int rc;

	if (fd_dspec_parse(&sp, env, &err) < 0) {
		fd_dspec_release(&sp);
		fd_usage_die("invalid FD_DISCOVER '%s': %s", env, err.msg);
	}
	snprintf(what, sizeof(what), "FD_DISCOVER");
	rc = run_spec(&sp, o, FD_EXIT_USAGE, what,
		      "FD_DISCOVER is set: an explicit spec comes before any guess");
	fd_dspec_release(&sp);
	return rc;
}

static int run_k8s_auto(const struct dopts *o, const char *why)
{
	struct fd_dspec sp = {0};
	char sel[600];
	int rc;

	if (!o->selector) {
		if (own_selector(o, sel, sizeof(sel)) < 0)
			return FD_EXIT_USAGE;
	} else {
		snprintf(sel, sizeof(sel), "%s", o->selector);
		explain("check", "check", "selector", "result", sel, "why",
			"given with --selector", END);
	}
	if (fd_dspec_set_strategy(&sp, "kubernetes") < 0 ||
	    fd_dspec_set(&sp, "selector", sel) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	rc = run_spec(&sp, o, FD_EXIT_USAGE, "--auto", why);
	fd_dspec_release(&sp);
	return rc;
}

int run_auto(const struct dopts *o)
{
	const char *env = getenv("FD_DISCOVER"),
		   *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *sa = o->sa_dir ? o->sa_dir : FD_K8S_SA_DIR;
	char token[1100], why[1300];
	struct stat st;
	int have_token;

	explaining = o->explain;
	if (o->config)
		return run_config(o);
	if (env && *env) {
		explain("check", "check", "FD_DISCOVER", "result", "set",
			"value", env, END);
		return run_env_spec(env, o);
	}
	explain("check", "check", "FD_DISCOVER", "result", "unset", END);
	snprintf(token, sizeof(token), "%s/token", sa);
	have_token = stat(token, &st) == 0;
	explain("check", "check", "service_account", "path", sa, "result",
		have_token ? "found" : "absent", "why",
		have_token ? "it has a token" : strerror(errno), END);
	explain("check", "check", "KUBERNETES_SERVICE_HOST", "result",
		host && *host ? "set" : "unset", "value",
		host && *host ? host : NULL, END);
	if (have_token || (host && *host)) {
		snprintf(why, sizeof(why), "running in Kubernetes: %s",
			 have_token ? "a service account token is mounted"
				    : "KUBERNETES_SERVICE_HOST is set");
		return run_k8s_auto(o, why);
	}
	for (const char *const *s = (const char *const[]){"mdns", "gossip", NULL};
	     *s; s++) {
		int have = have_strategy(*s);

		explain("check", "check", "strategy", "strategy", *s, "result",
			have ? "available" : "unavailable", "why",
			have ? "built into this fd-discover"
			     : "not built into this fd-discover",
			END);
		if (have) {
			struct fd_dspec sp = {0};
			int rc;

			if (fd_dspec_set_strategy(&sp, *s) < 0)
				fd_die(FD_EXIT_RUNTIME, "out of memory");
			rc = run_spec(&sp, o, FD_EXIT_USAGE, "--auto",
				      "not in Kubernetes and no FD_DISCOVER: peers "
				      "on this network announce themselves");
			fd_dspec_release(&sp);
			return rc;
		}
	}
	explain("choice", "strategy", (const char *)NULL, "why",
		"no strategy available", END);
	fd_warn("no strategy available: FD_DISCOVER is unset, no Kubernetes service "
		"account in '%s' and KUBERNETES_SERVICE_HOST is unset, and this "
		"fd-discover has neither mdns nor gossip",
		sa);
	return FD_EXIT_NOTFOUND;
}
