/* fd-partition: the records it prints, and heal and status through the
 * nodes' /v1/faults. */
#include "cli.h"
#include "clock.h"
#include "fault.h"
#include "jsonl.h"
#include "partition.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct json_object *record(const char *action)
{
	struct json_object *o = fd_json_record("fault");
	char ts[FD_TS_LEN];

	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "tag", json_object_new_string(popt.tag));
	json_object_object_add(
		o, "ts",
		json_object_new_string(fd_ts_format(fd_wall_us(), ts, sizeof(ts))));
	return o;
}

void emit(struct json_object *o)
{
	if (fd_emit(o) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write stdout: %s",
		       strerror(errno));
	json_object_put(o);
}

int gate_remove(struct target *t, struct fd_err *err)
{
	struct json_object *resp = NULL;
	char path[128];
	long status;
	int rc;

	snprintf(path, sizeof(path), "/v1/faults?tag=%s", popt.tag);
	rc = fd_client_call_ok(&t->c, "DELETE", path, NULL, &status, &resp, err);
	json_object_put(resp);
	return rc;
}

int gate_install(const struct plan *p, int i, int64_t duration_ms, long *status,
		 struct fd_err *err)
{
	struct json_object *body = json_object_new_object(),
			   *rules = json_object_new_array(), *resp = NULL;
	int rc;

	json_object_object_add(body, "tag", json_object_new_string(popt.tag));
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
			json_object_new_string(fd_fault_action_name(pr->action)));
		if (pr->action == FD_FAULT_LOSS)
			json_object_object_add(
				r, "probability",
				json_object_new_double(pr->probability));
		if (pr->delay_ms)
			json_object_object_add(r, "delay_ms",
					       json_object_new_int64(pr->delay_ms));
		if (pr->jitter_ms)
			json_object_object_add(r, "jitter_ms",
					       json_object_new_int64(pr->jitter_ms));
		if (duration_ms)
			json_object_object_add(r, "duration",
					       fd_json_seconds(duration_ms));
		json_object_array_add(rules, r);
	}
	json_object_object_add(body, "rules", rules);
	*status = 0;
	rc = fd_client_call_ok(&targets[i].c, "PUT", "/v1/faults", body, status,
			       &resp, err);
	json_object_put(body);
	json_object_put(resp);
	return rc;
}

int install_all(const struct plan *p, int64_t duration_ms)
{
	if (popt.netns)
		return netns_install(p, duration_ms);
	for (int i = 0; i < ntargets; i++) {
		struct fd_err err;
		long status;

		/* a node refusing the rules (400: e.g. a duration past its
		 * --max-duration) fails the whole install as well */
		if (gate_install(p, i, duration_ms, &status, &err) == 0)
			continue;
		fd_warn("unable to install the rules on '%s' (%s): %s",
			targets[i].name, targets[i].addr, err.msg);
		for (int k = 0; k <= i; k++)
			if (gate_remove(&targets[k], &err) < 0)
				fd_warn("unable to undo the rules on '%s': %s (they expire by themselves)",
					targets[k].name, err.msg);
		return -1;
	}
	return 0;
}

int heal_all(void)
{
	int rc = 0;

	if (popt.netns)
		return netns_heal();

	for (int i = 0; i < ntargets; i++) {
		struct fd_err err;

		if (gate_remove(&targets[i], &err) < 0) {
			fd_warn("unable to heal '%s': %s", targets[i].name, err.msg);
			rc = -1;
		}
	}
	return rc;
}

static void no_operands(int argc, char **argv)
{
	int i = part_getopt(argc, argv, NULL, NULL, NULL);

	if (i < argc)
		fd_usage_die("unexpected argument '%s'", argv[i]);
}

int cmd_heal(int argc, char **argv)
{
	struct json_object *o, *nodes;
	int rc = FD_EXIT_OK;

	no_operands(argc, argv);
	targets_load();
	targets_resolve();
	o = record("heal");
	nodes = json_object_new_array();
	for (int i = 0; i < ntargets; i++)
		json_object_array_add(nodes, json_object_new_string(targets[i].name));
	if (!popt.dry_run && heal_all() < 0)
		rc = FD_EXIT_RUNTIME;
	json_object_object_add(o, "nodes", nodes);
	if (popt.dry_run)
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
	emit(o);
	return rc;
}

int cmd_status(int argc, char **argv)
{
	no_operands(argc, argv);
	targets_load();
	targets_resolve();
	for (int i = 0; i < ntargets; i++) {
		struct json_object *o = record("status"), *resp = NULL, *rules;
		struct fd_err err;
		long st;

		if (popt.netns) {
			if (!(rules = netns_status(i, &err)))
				fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
			json_object_object_del(o, "tag");
			json_object_object_add(
				o, "node", json_object_new_string(targets[i].name));
			json_object_object_add(
				o, "addr", json_object_new_string(targets[i].addr));
			json_object_object_add(
				o, "netns", json_object_new_string(targets[i].netns));
			json_object_object_add(o, "rules", rules);
			emit(o);
			continue;
		}
		if (fd_client_call_ok(&targets[i].c, "GET", "/v1/faults", NULL,
				      &st, &resp, &err) < 0) {
			json_object_put(o);
			fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
		}
		json_object_object_del(o, "tag");
		json_object_object_add(o, "node",
				       json_object_new_string(targets[i].name));
		json_object_object_add(o, "addr",
				       json_object_new_string(targets[i].addr));
		if (!json_object_object_get_ex(resp, "rules", &rules))
			rules = NULL;
		json_object_object_add(o, "rules",
				       rules ? json_object_get(rules)
					     : json_object_new_array());
		json_object_put(resp);
		emit(o);
	}
	return FD_EXIT_OK;
}
