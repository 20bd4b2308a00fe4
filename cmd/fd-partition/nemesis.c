/* fd-partition: the partitions (split, isolate), installed on every node
 * through /v1/faults, all or nothing. */
#include "cli.h"
#include "jsonl.h"
#include "partition.h"

#include <stdio.h>
#include <string.h>

static int split(int ngroups, const char *action)
{
	struct json_object *o = record(action), *groups = json_object_new_array();

	for (int g = 0; g < ngroups; g++) {
		struct json_object *arr = json_object_new_array();

		for (int i = 0; i < ntargets; i++)
			if (targets[i].group == g)
				json_object_array_add(
					arr, json_object_new_string(targets[i].name));
		json_object_array_add(groups, arr);
	}
	json_object_object_add(o, "groups", groups);
	if (popt.duration_ms)
		json_object_object_add(o, "duration",
				       fd_json_seconds(popt.duration_ms));
	if (popt.dry_run) {
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
		emit(o);
		return FD_EXIT_OK;
	}
	for (int i = 0; i < ntargets; i++) {
		struct json_object *body = json_object_new_object(),
				   *rules = json_object_new_array(), *resp = NULL;
		struct fd_err err;
		long status;
		int rc;

		json_object_object_add(body, "tag", json_object_new_string(popt.tag));
		for (int k = 0; k < ntargets; k++) {
			struct json_object *r;

			if (targets[k].group == targets[i].group)
				continue;
			r = json_object_new_object();
			json_object_object_add(
				r, "peer", json_object_new_string(targets[k].name));
			json_object_object_add(r, "direction",
					       json_object_new_string("both"));
			json_object_object_add(r, "action",
					       json_object_new_string("drop"));
			if (popt.duration_ms)
				json_object_object_add(
					r, "duration",
					fd_json_seconds(popt.duration_ms));
			json_object_array_add(rules, r);
		}
		json_object_object_add(body, "rules", rules);
		rc = fd_client_call_ok(&targets[i].c, "PUT", "/v1/faults", body,
				       &status, &resp, &err);
		json_object_put(body);
		json_object_put(resp);
		if (rc < 0) {
			fd_warn("unable to install the rules on '%s' (%s): %s",
				targets[i].name, targets[i].addr, err.msg);
			for (int k = 0; k <= i; k++)
				if (gate_remove(&targets[k], &err) < 0)
					fd_warn("unable to undo the rules on '%s': %s (they expire by themselves)",
						targets[k].name, err.msg);
			json_object_put(o);
			fd_die(status == 400 ? FD_EXIT_USAGE : FD_EXIT_RUNTIME,
			       "split undone on every node");
		}
	}
	emit(o);
	return FD_EXIT_OK;
}

int cmd_split(int argc, char **argv)
{
	const char *cmd = argv[0];
	int first = part_getopt(argc, argv, NULL, NULL, NULL), ngroups;

	argc -= first;
	argv += first;
	if (strcmp(cmd, "split") == 0) {
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
	ngroups = groups_assign(argc, argv);
	if (ngroups < 2)
		fd_usage_die("a split needs at least two sides");
	return split(ngroups, cmd);
}
