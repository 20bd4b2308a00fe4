/* fd-partition chaos: a schedule of faults drawn from a seed, applied one
 * at a time and healed in turn.
 *
 * Step k starts at k * 2 * interval: its fault is applied, held for one
 * interval, healed, and the cluster gets one quiet interval before the
 * next. The faults come from fd_chaos_draw (nemesis.h) fed by our own
 * PRNG, so the same seed, node list and nemeses give the same schedule,
 * byte for byte without the "ts" fields (--dry-run prints it whole without
 * touching a node). Every rule chaos installs expires one interval (at
 * most 10 s) after its planned heal, so a chaos killed with SIGKILL leaves
 * nothing behind for long; SIGINT and SIGTERM heal at once (restarting a
 * killed node) and end the run. */
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "fault.h"
#include "jsonl.h"
#include "nemesis.h"
#include "partition.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_MASK                                                           \
	((1u << FD_NEM_SPLIT) | (1u << FD_NEM_ISOLATE) |                       \
	 (1u << FD_NEM_BRIDGE) | (1u << FD_NEM_RING) | (1u << FD_NEM_HALVES) | \
	 (1u << FD_NEM_SLOW) | (1u << FD_NEM_FLAKY))

enum { OPT_SEED = 600, OPT_INTERVAL, OPT_NEMESIS, OPT_KILL, OPT_RESTART };

static const struct option chaos_opts[] = {
	{"seed", required_argument, NULL, OPT_SEED},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"nemesis", required_argument, NULL, OPT_NEMESIS},
	{"kill", required_argument, NULL, OPT_KILL},
	{"restart", required_argument, NULL, OPT_RESTART},
	{0},
};

static uint64_t seed;
static int seed_set;
static int64_t interval_ms = 10000;
static unsigned mask = DEFAULT_MASK;
static const char *kill_cmd, *restart_cmd;
static volatile sig_atomic_t stop;

static void on_chaos_opt(int c, const char *arg)
{
	switch (c) {
	case OPT_SEED:
		if (parse_seed(arg, &seed) < 0)
			fd_usage_die("invalid --seed '%s' (0 to %lld)", arg,
				     LLONG_MAX);
		seed_set = 1;
		break;
	case OPT_INTERVAL:
		if (fd_parse_duration(arg, &interval_ms) < 0 || interval_ms < 100)
			fd_usage_die("invalid --interval '%s' (at least 100ms)", arg);
		break;
	case OPT_NEMESIS: {
		char *copy = strdup(arg), *save = NULL;

		if (!copy)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		mask = 0;
		for (char *t = strtok_r(copy, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			int k = fd_nemesis_parse(t);

			if (k < 0)
				fd_usage_die("unknown nemesis '%s' (split, isolate, bridge, ring, halves, slow, flaky, kill)",
					     t);
			mask |= 1u << (k < 0 ? 0 : k); /* k >= 0: fd_usage_die exits */
		}
		free(copy);
		if (!mask)
			fd_usage_die("--nemesis names no nemesis");
		break;
	}
	case OPT_KILL: kill_cmd = arg; break;
	case OPT_RESTART: restart_cmd = arg; break;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Sleeps until the monotonic time t, or a signal. */
static void sleep_until(int64_t t)
{
	int64_t now;

	while (!stop && (now = fd_mono_ms()) < t)
		poll(NULL, 0, (int)(t - now > 200 ? 200 : t - now));
}

/* Commands: {name} and {addr} become the node's, quoted for sh. */
static char *expand(const char *tmpl, const struct target *t)
{
	struct fd_buf b = FD_BUF_INIT(64 * 1024);
	char *out;

	for (const char *p = tmpl; *p; p++) {
		const char *v = NULL;
		size_t skip = 0;

		if (strncmp(p, "{name}", 6) == 0)
			v = t->name, skip = 6;
		else if (strncmp(p, "{addr}", 6) == 0)
			v = t->addr, skip = 6;
		if (!v) {
			if (fd_buf_append(&b, p, 1) < 0)
				fd_die(FD_EXIT_RUNTIME, "command too long");
			continue;
		}
		fd_buf_append(&b, "'", 1);
		for (; *v; v++)
			if (*v == '\'')
				fd_buf_append(&b, "'\\''", 4);
			else
				fd_buf_append(&b, v, 1);
		if (fd_buf_append(&b, "'", 1) < 0)
			fd_die(FD_EXIT_RUNTIME, "command too long");
		p += skip - 1;
	}
	out = strdup(fd_buf_str(&b));
	fd_buf_release(&b);
	if (!out)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	return out;
}

/* Runs sh -c cmd with stdin and stdout on /dev/null (stdout is ours for
 * JSON lines). wait: waits and returns the exit status; otherwise the
 * command runs on by itself (double fork: no zombie) and 0 is returned. */
static int run_sh(const char *cmd, int wait)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			if (!wait)
				dup2(null, STDERR_FILENO);
		}
		if (!wait) {
			setsid();
			if (fork() != 0)
				_exit(0);
		}
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return wait ? (WIFEXITED(st) ? WEXITSTATUS(st) : 128) : 0;
}

static int loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "[::1]:", 6) == 0;
}

/* Kills target i: --kill CMD, else SIGKILL to the pid its /v1/info gives
 * (only on this host: a loopback address and a process named fd-node). */
static int kill_node(int i)
{
	struct target *t = &targets[i];
	struct json_object *info = NULL, *v;
	struct fd_err err;
	char path[64], comm[64] = "";
	long status;
	pid_t pid;
	FILE *fp;

	if (kill_cmd) {
		char *cmd = expand(kill_cmd, t);
		int rc = run_sh(cmd, 1);

		if (rc != 0)
			fd_warn("kill '%s': `%s` exited with %d", t->name, cmd, rc);
		free(cmd);
		return rc == 0 ? 0 : -1;
	}
	if (fd_client_call_ok(&t->c, "GET", "/v1/info", NULL, &status, &info,
			      &err) < 0) {
		fd_warn("kill '%s': %s", t->name, err.msg);
		return -1;
	}
	pid = json_object_object_get_ex(info, "pid", &v) ? json_object_get_int(v)
							 : 0;
	json_object_put(info);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (pid > 1 && (fp = fopen(path, "r"))) {
		if (!fgets(comm, sizeof(comm), fp))
			comm[0] = 0;
		fclose(fp);
	}
	if (pid <= 1 || strncmp(comm, "fd-node", 7) != 0) {
		fd_warn("kill '%s': its pid %d is no fd-node of this host (use --kill CMD)",
			t->name, (int)pid);
		return -1;
	}
	if (kill(pid, SIGKILL) < 0) {
		fd_warn("kill '%s': pid %d: %s", t->name, (int)pid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Waits (up to the monotonic time until) for target i to answer again. */
static int wait_back(int i, int64_t until)
{
	struct target *t = &targets[i];

	while (!stop) {
		struct json_object *info = NULL;
		struct fd_err err;
		long status;

		if (fd_client_call_ok(&t->c, "GET", "/v1/info", NULL, &status,
				      &info, &err) == 0) {
			json_object_put(info);
			return 0;
		}
		if (fd_mono_ms() >= until)
			return -1;
		poll(NULL, 0, 100);
	}
	return -1;
}

static struct json_object *fault_line(const struct fd_chaos_fault *f,
				      const char *event, int step, int64_t at)
{
	struct json_object *o = record(fd_nemesis_name(f->kind)), *groups;
	int side[MAX_NODES], idx[MAX_NODES], n = f->n;
	struct fd_grudge g;

	if (popt.dry_run)
		json_object_object_del(o, "ts");
	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "step", json_object_new_int(step));
	json_object_object_add(o, "at", fd_json_seconds(at));
	fd_chaos_grudge(f, &g);
	switch (f->kind) {
	case FD_NEM_SPLIT:
	case FD_NEM_HALVES:
		for (int k = 0; k < n; k++)
			side[f->order[k]] = k >= f->cut;
		groups = sides_json(side, 2);
		break;
	case FD_NEM_ISOLATE:
		for (int i = 0; i < n; i++)
			side[i] = i != f->node;
		groups = sides_json(side, 2);
		break;
	case FD_NEM_BRIDGE:
		groups = json_object_new_array();
		json_object_array_add(groups, names_json(f->order, n / 2 + 1));
		json_object_array_add(groups,
				      names_json(f->order + n / 2, n - n / 2));
		json_object_object_add(
			o, "bridge", json_object_new_string(targets[f->node].name));
		break;
	case FD_NEM_RING:
		groups = json_object_new_array();
		for (int k = 0; k < n; k++) {
			int m = 0;

			for (int w = 0; w < n; w++)
				if (!g.drop[f->order[k]][f->order[w]])
					idx[m++] = f->order[w];
			json_object_array_add(groups, names_json(idx, m));
		}
		break;
	case FD_NEM_SLOW:
	case FD_NEM_FLAKY:
		for (int k = 0; k < f->nsel; k++)
			idx[k] = f->order[k];
		/* in target order, as everywhere else */
		for (int a = 1; a < f->nsel; a++)
			for (int b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
				int x = idx[b];

				idx[b] = idx[b - 1];
				idx[b - 1] = x;
			}
		groups = json_object_new_array();
		json_object_array_add(groups, names_json(idx, f->nsel));
		if (f->kind == FD_NEM_SLOW) {
			json_object_object_add(o, "delay_ms",
					       json_object_new_int64(f->delay_ms));
			json_object_object_add(o, "jitter_ms",
					       json_object_new_int64(f->jitter_ms));
		} else {
			json_object_object_add(o, "loss_pct",
					       json_object_new_int(f->loss_pct));
		}
		break;
	default: /* kill */
		groups = json_object_new_array();
		json_object_array_add(groups, names_json(&f->node, 1));
	}
	json_object_object_add(o, "groups", groups);
	if (f->kind <= FD_NEM_HALVES)
		json_object_object_add(o, "grudge", grudge_json(&g));
	return o;
}

static void plan_of(const struct fd_chaos_fault *f, struct plan *p)
{
	uint8_t sel[MAX_NODES] = {0};
	struct fd_grudge g;

	for (int k = 0; k < f->nsel; k++)
		sel[f->order[k]] = 1;
	switch (f->kind) {
	case FD_NEM_SLOW:
		plan_links(p, sel, FD_FAULT_DELAY, f->delay_ms, f->jitter_ms, 1);
		break;
	case FD_NEM_FLAKY:
		plan_links(p, sel, FD_FAULT_LOSS, 0, 0, f->loss_pct / 100.0);
		break;
	default: fd_chaos_grudge(f, &g); plan_grudge(p, &g);
	}
}

/* Applies f; rules live for life_ms. Returns 0, or -1 (undone, warned). */
static int apply_fault(const struct fd_chaos_fault *f, int64_t life_ms)
{
	static struct plan plan;

	if (f->kind == FD_NEM_KILL)
		return kill_node(f->node);
	plan_of(f, &plan);
	if (install_all(&plan, life_ms) == 0)
		return 0;
	heal_all();
	return -1;
}

/* Heals f; a killed node is restarted. Returns 0 or -1 (warned). */
static int heal_fault(const struct fd_chaos_fault *f)
{
	if (f->kind == FD_NEM_KILL) {
		char *cmd = expand(restart_cmd, &targets[f->node]);
		int rc = run_sh(cmd, 0);

		if (rc != 0)
			fd_warn("restart '%s': unable to run `%s`",
				targets[f->node].name, cmd);
		free(cmd);
		return rc == 0 ? 0 : -1;
	}
	return heal_all();
}

int cmd_chaos(int argc, char **argv)
{
	int first = part_getopt(argc, argv, NULL, chaos_opts, on_chaos_opt);
	int64_t total = popt.duration_ms, t0, life;
	struct json_object *hdr, *arr;
	struct sigaction sa;
	uint64_t state;
	int rc = FD_EXIT_OK;

	if (first < argc)
		fd_usage_die("unexpected argument '%s'", argv[first]);
	if (popt.dry_run && !total)
		fd_usage_die("chaos --dry-run needs --duration (the schedule's length)");
	if ((mask & (1u << FD_NEM_KILL)) && !restart_cmd)
		fd_usage_die("the kill nemesis needs --restart CMD");
	if (popt.netns && (mask & (1u << FD_NEM_SLOW)))
		fd_usage_die("the netns backend cannot slow nodes: leave slow out of --nemesis");
	if (!seed_set)
		seed = random_seed();
	targets_load();
	if ((mask & (1u << FD_NEM_KILL)) && !kill_cmd)
		for (int i = 0; i < ntargets; i++)
			if (!loopback(targets[i].addr))
				fd_usage_die("node '%s' is not on this host: the kill nemesis needs --kill CMD",
					     targets[i].addr);
	targets_resolve();
	{
		struct fd_chaos_fault f;
		struct fd_err err;
		uint64_t s = seed;

		if (fd_chaos_draw(&s, ntargets, mask, &f, &err) < 0)
			fd_usage_die("%s", err.msg);
	}
	/* rules outlive their planned heal by an interval, at most 10 s */
	life = interval_ms < 10000 ? interval_ms : 10000;

	hdr = fd_json_record("chaos");
	json_object_object_add(hdr, "seed", json_object_new_uint64(seed));
	{
		int idx[MAX_NODES];

		for (int i = 0; i < ntargets; i++)
			idx[i] = i;
		json_object_object_add(hdr, "nodes", names_json(idx, ntargets));
	}
	arr = json_object_new_array();
	for (int k = 0; k < FD_NEM_COUNT; k++)
		if (mask & (1u << k))
			json_object_array_add(
				arr, json_object_new_string(fd_nemesis_name(k)));
	json_object_object_add(hdr, "nemesis", arr);
	json_object_object_add(hdr, "interval", fd_json_seconds(interval_ms));
	if (total)
		json_object_object_add(hdr, "duration", fd_json_seconds(total));
	json_object_object_add(hdr, "tag", json_object_new_string(popt.tag));
	if (popt.dry_run)
		json_object_object_add(hdr, "dry_run", json_object_new_boolean(1));
	emit(hdr);
	fd_emit_flush();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: sleeps end at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	state = seed;
	t0 = fd_mono_ms();
	for (int step = 0; !stop; step++) {
		int64_t at = (int64_t)step * 2 * interval_ms, heal_at;
		struct fd_chaos_fault f;
		struct fd_err err;
		int failed;

		if (total && at >= total)
			break;
		heal_at = at + interval_ms;
		if (total && heal_at > total)
			heal_at = total;
		fd_chaos_draw(&state, ntargets, mask, &f, &err);
		if (!popt.dry_run) {
			sleep_until(t0 + at);
			if (stop)
				break;
		}
		failed = !popt.dry_run && apply_fault(&f, life + heal_at - at) < 0;
		if (failed) {
			rc = FD_EXIT_RUNTIME;
			break;
		}
		emit(fault_line(&f, "apply", step, at));
		fd_emit_flush();
		if (popt.dry_run) {
			emit(fault_line(&f, "heal", step, heal_at));
			continue;
		}
		sleep_until(t0 + heal_at);
		{
			struct json_object *o = fault_line(&f, "heal", step, heal_at);

			if (stop)
				json_object_object_add(o, "interrupted",
						       json_object_new_boolean(1));
			if (heal_fault(&f) < 0)
				rc = FD_EXIT_RUNTIME;
			emit(o);
			fd_emit_flush();
		}
		/* a restarted node must answer before the next fault */
		if (f.kind == FD_NEM_KILL && !stop &&
		    wait_back(f.node, t0 + heal_at + interval_ms) < 0) {
			fd_warn("'%s' did not come back after its restart",
				targets[f.node].name);
			rc = FD_EXIT_RUNTIME;
			break;
		}
	}
	if (stop && !popt.dry_run && heal_all() < 0)
		rc = FD_EXIT_RUNTIME;
	return rc;
}
