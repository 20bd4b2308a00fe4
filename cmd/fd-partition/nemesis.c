/* fd-partition: the nemeses (split, isolate, halves, bridge, ring, grudge,
 * slow, flaky). Each checks everything it was given, computes a plan (the
 * rules of every node) and installs it on every node, all or nothing. */
#include "buf.h"
#include "cli.h"
#include "fault.h"
#include "jsonl.h"
#include "nemesis.h"
#include "partition.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Plans */

static void add_rule(struct plan *p, int i, int peer, int dir, int action,
		     int64_t delay_ms, int64_t jitter_ms, double probability)
{
	struct prule *r = &p->rules[i][p->nrules[i]++];

	r->peer = peer;
	r->dir = dir;
	r->action = action;
	r->delay_ms = delay_ms;
	r->jitter_ms = jitter_ms;
	r->probability = probability;
}

void plan_grudge(struct plan *p, const struct fd_grudge *g)
{
	memset(p->nrules, 0, sizeof(p->nrules));
	for (int i = 0; i < g->n; i++)
		for (int j = 0; j < g->n; j++)
			if (i != j && g->drop[i][j])
				add_rule(p, i, j,
					 g->drop[j][i] ? FD_FAULT_BOTH : FD_FAULT_IN,
					 FD_FAULT_DROP, 0, 0, 1);
}

void plan_links(struct plan *p, const uint8_t *sel, int action,
		int64_t delay_ms, int64_t jitter_ms, double probability)
{
	memset(p->nrules, 0, sizeof(p->nrules));
	for (int i = 0; i < ntargets; i++) {
		if (sel[i]) {
			add_rule(p, i, -1, FD_FAULT_OUT, action, delay_ms,
				 jitter_ms, probability);
			continue;
		}
		for (int j = 0; j < ntargets; j++)
			if (sel[j])
				add_rule(p, i, j, FD_FAULT_OUT, action,
					 delay_ms, jitter_ms, probability);
	}
}

static struct json_object *plan_json(const struct plan *p)
{
	struct json_object *o = json_object_new_object();

	for (int i = 0; i < ntargets; i++) {
		struct json_object *arr = json_object_new_array();

		for (int k = 0; k < p->nrules[i]; k++) {
			const struct prule *pr = &p->rules[i][k];
			struct json_object *r = json_object_new_object();

			json_object_object_add(
				r, "peer",
				json_object_new_string(
					pr->peer < 0 ? "*" : targets[pr->peer].name));
			json_object_object_add(
				r, "direction",
				json_object_new_string(fd_fault_dir_name(pr->dir)));
			json_object_object_add(
				r, "action",
				json_object_new_string(
					fd_fault_action_name(pr->action)));
			if (pr->action == FD_FAULT_LOSS)
				json_object_object_add(
					r, "probability",
					json_object_new_double(pr->probability));
			if (pr->action == FD_FAULT_DELAY) {
				json_object_object_add(
					r, "delay_ms",
					json_object_new_int64(pr->delay_ms));
				json_object_object_add(
					r, "jitter_ms",
					json_object_new_int64(pr->jitter_ms));
			}
			json_object_array_add(arr, r);
		}
		json_object_object_add(o, targets[i].name, arr);
	}
	return o;
}

struct json_object *grudge_json(const struct fd_grudge *g)
{
	struct json_object *o = json_object_new_object();

	for (int i = 0; i < g->n; i++) {
		struct json_object *arr = json_object_new_array();

		for (int j = 0; j < g->n; j++)
			if (g->drop[i][j])
				json_object_array_add(
					arr, json_object_new_string(targets[j].name));
		if (json_object_array_length(arr))
			json_object_object_add(o, targets[i].name, arr);
		else
			json_object_put(arr);
	}
	return o;
}

int apply(const struct plan *p, struct json_object *rec)
{
	const char *action = fd_json_get_str(rec, "action");

	if (popt.duration_ms)
		json_object_object_add(rec, "duration",
				       fd_json_seconds(popt.duration_ms));
	if (popt.netns) {
		struct fd_err err;

		if (netns_check(p, &err) < 0) {
			json_object_put(rec);
			fd_usage_die("%s: nothing changed", err.msg);
		}
		json_object_object_add(rec, "backend",
				       json_object_new_string("netns"));
	}
	if (popt.dry_run) {
		json_object_object_add(rec, "dry_run", json_object_new_boolean(1));
		json_object_object_add(rec, "rules", plan_json(p));
		if (popt.netns)
			json_object_object_add(
				rec, "nft", netns_rulesets(p, popt.duration_ms));
		emit(rec);
		return FD_EXIT_OK;
	}
	if (install_all(p, popt.duration_ms) < 0) {
		fd_warn("%s undone on every node", action ? action : "fault");
		json_object_put(rec);
		return FD_EXIT_RUNTIME;
	}
	emit(rec);
	return FD_EXIT_OK;
}

/* Shared pieces */

struct json_object *names_json(const int *idx, int n)
{
	struct json_object *arr = json_object_new_array();

	for (int k = 0; k < n; k++)
		json_object_array_add(
			arr, json_object_new_string(targets[idx[k]].name));
	return arr;
}

struct json_object *sides_json(const int *side, int nsides)
{
	struct json_object *groups = json_object_new_array();

	for (int g = 0; g < nsides; g++) {
		int idx[MAX_NODES], n = 0;

		for (int i = 0; i < ntargets; i++)
			if (side[i] == g)
				idx[n++] = i;
		if (n)
			json_object_array_add(groups, names_json(idx, n));
	}
	return groups;
}

/* --random and --seed, for halves and ring */
static int opt_random, opt_seed_set;
static uint64_t opt_seed;

enum { OPT_RANDOM = 512, OPT_SEED, OPT_DELAY, OPT_JITTER, OPT_LOSS };

static const struct option random_opts[] = {
	{"random", no_argument, NULL, OPT_RANDOM},
	{"seed", required_argument, NULL, OPT_SEED},
	{0},
};

int parse_seed(const char *s, uint64_t *seed)
{
	long long v;

	if (fd_parse_int(s, 0, LLONG_MAX, &v) < 0)
		return -1;
	*seed = (uint64_t)v;
	return 0;
}

uint64_t random_seed(void)
{
	uint64_t s;

	if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
		s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* below 2^53: JSON tools read it back exactly, --seed takes it */
	return s & ((1ULL << 53) - 1);
}

static void on_random_opt(int c, const char *arg)
{
	if (c == OPT_RANDOM) {
		opt_random = 1;
	} else if (c == OPT_SEED) {
		if (parse_seed(arg, &opt_seed) < 0)
			fd_usage_die("invalid --seed '%s' (0 to %lld)", arg,
				     LLONG_MAX);
		opt_seed_set = 1;
	}
}

/* The targets in order, shuffled for --random; the seed goes into rec. */
static void node_order(int *order, struct json_object *rec)
{
	for (int i = 0; i < ntargets; i++)
		order[i] = i;
	if (!opt_random)
		return;
	if (!opt_seed_set)
		opt_seed = random_seed();
	json_object_object_add(rec, "seed", json_object_new_uint64(opt_seed));
	{
		uint64_t state = opt_seed;

		fd_prng_shuffle(&state, order, ntargets);
	}
}

static void no_operands(int argc, char **argv, int first)
{
	if (first < argc)
		fd_usage_die("unexpected argument '%s'", argv[first]);
}

static void need_nodes(const char *what, int min)
{
	if (ntargets < min)
		fd_usage_die("%s needs at least %d nodes, not %d", what, min,
			     ntargets);
}

/* split, isolate, halves */

int cmd_split(int argc, char **argv)
{
	const char *cmd = argv[0];
	int halves = strcmp(cmd, "halves") == 0;
	int first = part_getopt(argc, argv, NULL, halves ? random_opts : NULL,
				halves ? on_random_opt : NULL);
	int side[MAX_NODES], ngroups;
	static struct plan plan;
	struct fd_grudge g;
	struct json_object *rec;

	if (opt_seed_set && !opt_random)
		fd_usage_die("--seed goes with --random");
	argc -= first;
	argv += first;
	if (halves) {
		no_operands(argc, argv, 0);
	} else if (strcmp(cmd, "split") == 0) {
		if (argc < 1)
			fd_usage_die("split needs at least one group");
		groups_check(argc, argv);
	} else {
		if (argc != 1)
			fd_usage_die("isolate needs exactly one node");
		groups_check(1, argv);
		if (strchr(argv[0], ','))
			fd_usage_die("isolate takes one node, not a group");
	}
	targets_load();
	targets_resolve();
	rec = record(cmd);
	if (halves) {
		int order[MAX_NODES];

		need_nodes("halves", 2);
		node_order(order, rec);
		for (int k = 0; k < ntargets; k++)
			side[order[k]] = k >= ntargets / 2;
		ngroups = 2;
	} else {
		ngroups = groups_assign(argc, argv);
		if (ngroups < 2)
			fd_usage_die("a split needs at least two sides");
		for (int i = 0; i < ntargets; i++)
			side[i] = targets[i].group;
	}
	fd_grudge_sides(&g, ntargets, side);
	json_object_object_add(rec, "groups", sides_json(side, ngroups));
	plan_grudge(&plan, &g);
	return apply(&plan, rec);
}

/* bridge [NODE] */

int cmd_bridge(int argc, char **argv)
{
	int first = part_getopt(argc, argv, NULL, NULL, NULL), order[MAX_NODES],
	    n = 0, b, half;
	static struct plan plan;
	struct json_object *rec, *groups;
	struct fd_grudge g;
	struct fd_err err;

	argc -= first;
	argv += first;
	if (argc > 1)
		fd_usage_die("bridge takes at most one node (the bridge)");
	if (argc == 1)
		groups_check(1, argv);
	if (argc == 1 && strchr(argv[0], ','))
		fd_usage_die("bridge takes one node, not a group");
	targets_load();
	targets_resolve();
	need_nodes("bridge", 3);
	half = ntargets / 2;
	if (argc == 1) {
		b = target_find(argv[0]);
		if (b < 0)
			fd_usage_die("unknown node '%s' (not among the %d nodes given)",
				     argv[0], ntargets);
	} else {
		b = half;
	}
	/* The others in order, the bridge first in the second half. */
	for (int i = 0; i < ntargets; i++) {
		if (n == half)
			order[n++] = b;
		if (i != b)
			order[n++] = i;
	}
	if (n == half)
		order[n++] = b;
	if (fd_grudge_bridge(&g, ntargets, order, &err) < 0)
		fd_die(FD_EXIT_RUNTIME, "bridge: %s", err.msg);
	rec = record("bridge");
	groups = json_object_new_array();
	/* the bridge last in the first group, first in the second */
	json_object_array_add(groups, names_json(order, half + 1));
	json_object_array_add(groups, names_json(order + half, ntargets - half));
	json_object_object_add(rec, "groups", groups);
	json_object_object_add(rec, "bridge",
			       json_object_new_string(targets[b].name));
	plan_grudge(&plan, &g);
	return apply(&plan, rec);
}

/* ring [--random [--seed S]] */

int cmd_ring(int argc, char **argv)
{
	int first = part_getopt(argc, argv, NULL, random_opts, on_random_opt),
	    order[MAX_NODES];
	static struct plan plan;
	struct json_object *rec, *groups;
	struct fd_grudge g;
	struct fd_err err;

	if (opt_seed_set && !opt_random)
		fd_usage_die("--seed goes with --random");
	no_operands(argc, argv, first);
	targets_load();
	targets_resolve();
	need_nodes("ring", 3);
	rec = record("ring");
	node_order(order, rec);
	if (fd_grudge_ring(&g, ntargets, order, &err) < 0)
		fd_die(FD_EXIT_RUNTIME, "ring: %s", err.msg);
	json_object_object_add(rec, "ring", names_json(order, ntargets));
	/* groups: what each node hears, in ring order */
	groups = json_object_new_array();
	for (int k = 0; k < ntargets; k++) {
		int idx[MAX_NODES], n = 0;

		for (int w = 0; w < ntargets; w++)
			if (!g.drop[order[k]][order[w]])
				idx[n++] = order[w];
		json_object_array_add(groups, names_json(idx, n));
	}
	json_object_object_add(rec, "groups", groups);
	json_object_object_add(rec, "grudge", grudge_json(&g));
	plan_grudge(&plan, &g);
	return apply(&plan, rec);
}

/* grudge FILE|- */

static noreturn void bad_grudge(const char *src, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static noreturn void bad_grudge(const char *src, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fd_die(FD_EXIT_DATA, "grudge %s: %s: nothing changed", src, msg);
}

static struct json_object *read_grudge(const char *path)
{
	struct json_object *o;
	struct fd_buf b = FD_BUF_INIT(1 << 20);
	struct fd_err err;
	char chunk[4096];
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY);
	ssize_t k;

	if (fd < 0)
		fd_die(errno == ENOENT ? FD_EXIT_NOTFOUND : FD_EXIT_RUNTIME,
		       "unable to open '%s': %s", path, strerror(errno));
	while ((k = read(fd, chunk, sizeof(chunk))) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			fd_die(FD_EXIT_RUNTIME, "unable to read '%s': %s", path,
			       strerror(errno));
		if (fd_buf_append(&b, chunk, (size_t)k) < 0)
			bad_grudge(path, "larger than 1 MiB");
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (fd_json_parse_value(fd_buf_str(&b), b.len, &o, &err) < 0)
		bad_grudge(path, "%s", err.msg);
	fd_buf_release(&b);
	return o;
}

int cmd_grudge(int argc, char **argv)
{
	int first = part_getopt(argc, argv, NULL, NULL, NULL);
	static struct plan plan;
	struct json_object *rec, *o;
	struct fd_grudge g;
	const char *src;

	argc -= first;
	argv += first;
	if (argc != 1)
		fd_usage_die("grudge needs one FILE (- for stdin)");
	src = argv[0];
	if (strcmp(src, "-") == 0 && popt.nnodes == 0)
		fd_usage_die("grudge -: the grudge is on stdin, so the nodes must be -n");
	targets_load();
	o = read_grudge(src);
	targets_resolve();
	if (!json_object_is_type(o, json_type_object))
		bad_grudge(src, "expected an object {\"NODE\": [\"PEER\", ...], ...}");
	fd_grudge_init(&g, ntargets);
	json_object_object_foreach(o, key, val)
	{
		int i = target_find(key);
		size_t n;

		if (i < 0)
			bad_grudge(src, "unknown node '%s' (not among the %d nodes given)",
				   key, ntargets);
		if (!json_object_is_type(val, json_type_array))
			bad_grudge(src, "'%s': expected an array of node names", key);
		n = json_object_array_length(val);
		for (size_t k = 0; k < n; k++) {
			struct json_object *e = json_object_array_get_idx(val, k);
			const char *peer;
			int j;

			if (!json_object_is_type(e, json_type_string))
				bad_grudge(src, "'%s': expected an array of node names",
					   key);
			peer = json_object_get_string(e);
			j = target_find(peer);
			if (j < 0)
				bad_grudge(src, "'%s': unknown node '%s' (not among the %d nodes given)",
					   key, peer, ntargets);
			if (j == i)
				bad_grudge(src, "'%s' holds a grudge against itself",
					   key);
			if (g.drop[i][j])
				bad_grudge(src, "'%s' names '%s' twice", key, peer);
			g.drop[i][j] = 1;
		}
	}
	json_object_put(o);
	rec = record("grudge");
	{
		struct json_object *groups = json_object_new_array();

		for (int i = 0; i < ntargets; i++) {
			int idx[MAX_NODES], n = 0;

			for (int j = 0; j < ntargets; j++)
				if (!g.drop[i][j])
					idx[n++] = j;
			json_object_array_add(groups, names_json(idx, n));
		}
		json_object_object_add(rec, "groups", groups);
	}
	json_object_object_add(rec, "grudge", grudge_json(&g));
	plan_grudge(&plan, &g);
	return apply(&plan, rec);
}

/* slow --delay D [--jitter J] [NODE...], flaky --loss P [NODE...] */

static int64_t opt_delay = -1, opt_jitter;
static double opt_loss = -1;

static const struct option link_opts[] = {
	{"delay", required_argument, NULL, OPT_DELAY},
	{"jitter", required_argument, NULL, OPT_JITTER},
	{"loss", required_argument, NULL, OPT_LOSS},
	{0},
};

/* "20%", "20" (percent) or "12.5%" into a probability in (0, 1]. */
int parse_loss(const char *s, double *p)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v))
		return -1;
	if (*end == '%')
		end++;
	if (*end || !(v > 0) || v > 100)
		return -1;
	*p = v / 100;
	return 0;
}

static void on_link_opt(int c, const char *arg)
{
	int64_t ms;

	switch (c) {
	case OPT_DELAY:
	case OPT_JITTER:
		if (fd_parse_duration(arg, &ms) < 0 || ms > FD_FAULT_DELAY_MAX)
			fd_usage_die("invalid --%s '%s' (0 to %ds)",
				     c == OPT_DELAY ? "delay" : "jitter", arg,
				     FD_FAULT_DELAY_MAX / 1000);
		if (c == OPT_DELAY)
			opt_delay = ms;
		else
			opt_jitter = ms;
		break;
	case OPT_LOSS:
		if (parse_loss(arg, &opt_loss) < 0)
			fd_usage_die("invalid --loss '%s' (above 0%% and at most 100%%)",
				     arg);
		break;
	}
}

int cmd_slow(int argc, char **argv)
{
	const char *cmd = argv[0];
	int slow = strcmp(cmd, "slow") == 0;
	int first = part_getopt(argc, argv, NULL, link_opts, on_link_opt),
	    n = 0, idx[MAX_NODES];
	uint8_t sel[MAX_NODES] = {0};
	static struct plan plan;
	struct json_object *rec;

	argc -= first;
	argv += first;
	if (slow) {
		if (opt_loss >= 0)
			fd_usage_die("slow takes --delay and --jitter, not --loss");
		if (opt_delay < 0)
			fd_usage_die("slow needs --delay");
		if (opt_delay == 0 && opt_jitter == 0)
			fd_usage_die("slow needs a --delay or a --jitter above 0");
	} else {
		if (opt_delay >= 0 || opt_jitter)
			fd_usage_die("flaky takes --loss, not --delay or --jitter");
		if (opt_loss < 0)
			fd_usage_die("flaky needs --loss");
	}
	if (argc)
		groups_check(argc, argv);
	targets_load();
	targets_resolve();
	if (argc) {
		groups_assign(argc, argv);
		for (int i = 0; i < ntargets; i++)
			sel[i] = targets[i].group < argc;
	} else {
		memset(sel, 1, sizeof(sel));
	}
	for (int i = 0; i < ntargets; i++)
		if (sel[i])
			idx[n++] = i;
	rec = record(cmd);
	json_object_object_add(rec, "groups", json_object_new_array());
	json_object_array_add(json_object_object_get(rec, "groups"),
			      names_json(idx, n));
	if (slow) {
		json_object_object_add(rec, "delay_ms",
				       json_object_new_int64(opt_delay));
		json_object_object_add(rec, "jitter_ms",
				       json_object_new_int64(opt_jitter));
		plan_links(&plan, sel, FD_FAULT_DELAY, opt_delay, opt_jitter, 1);
	} else {
		char pct[32];

		/* as given: 0.2 would print as 0.20000000000000001 */
		snprintf(pct, sizeof(pct), "%g", opt_loss);
		json_object_object_add(rec, "loss",
				       json_object_new_double_s(opt_loss, pct));
		plan_links(&plan, sel, FD_FAULT_LOSS, 0, 0, opt_loss);
	}
	return apply(&plan, rec);
}
