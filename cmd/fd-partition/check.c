/* fd-partition check: reads the history of a run (JSON lines from files or
 * stdin, see history.h), optionally takes the final state from the nodes
 * themselves (-n, polled until they agree or --wait runs out), and prints
 * one {"type":"check",...} verdict. Exit 0 valid, 1 invalid, 7 when some
 * history lines were malformed (each reported with its line number). */
#include "check.h"
#include "cli.h"
#include "client.h"
#include "clock.h"
#include "discover.h"
#include "history.h"
#include "jsonl.h"
#include "partition.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHECK_NODES 64
#define MAX_INPUTS 1024
#define POLL_MS 100

struct input {
	const char *path; /* "-": stdin */
	const char *sub;  /* --sub NAME=FILE: the subscriber of its lines */
};

struct cnode {
	char addr[FD_PEER_ADDR_LEN];
	char name[256];
	struct fd_client c;
};

struct check {
	struct fd_history *h;
	struct cnode nodes[MAX_CHECK_NODES];
	int nnodes;
	int64_t timeout_ms, wait_ms;
	unsigned long malformed;
};

static void read_input(struct check *k, const struct input *in)
{
	struct fd_jsonl_reader r;
	struct json_object *rec;
	struct fd_err err;
	const char *shown = strcmp(in->path, "-") == 0 ? "stdin" : in->path;
	int fd = STDIN_FILENO, rc;

	if (strcmp(in->path, "-") != 0) {
		fd = open(in->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fd_die(FD_EXIT_RUNTIME, "unable to open '%s': %s",
			       in->path, strerror(errno));
	}
	fd_jsonl_reader_init(&r, fd, 0);
	while ((rc = fd_jsonl_read(&r, &rec, &err)) != FD_JSONL_EOF) {
		if (rc == FD_JSONL_IOERR)
			fd_die(FD_EXIT_RUNTIME, "unable to read '%s': %s",
			       shown, strerror(errno));
		if (rc == FD_JSONL_BAD) {
			fd_warn("%s: %s", shown, err.msg);
			k->malformed++;
			continue;
		}
		if (fd_history_add(k->h, rec, in->sub, &err) < 0) {
			if (errno == ENOMEM)
				fd_die(FD_EXIT_RUNTIME, "out of memory");
			fd_warn("%s: line %lu: %s", shown, r.lineno, err.msg);
			k->malformed++;
		}
		json_object_put(rec);
	}
	fd_jsonl_reader_release(&r);
	if (fd != STDIN_FILENO)
		close(fd);
}

static void add_node(struct check *k, const char *s)
{
	char addr[FD_PEER_ADDR_LEN];
	struct fd_err err;

	if (fd_peer_addr_norm(s, addr, sizeof(addr), &err) < 0)
		fd_usage_die("%s", err.msg);
	for (int i = 0; i < k->nnodes; i++)
		if (strcmp(k->nodes[i].addr, addr) == 0)
			return;
	if (k->nnodes == MAX_CHECK_NODES)
		fd_usage_die("too many nodes (at most %d)", MAX_CHECK_NODES);
	memcpy(k->nodes[k->nnodes++].addr, addr, sizeof(addr));
}

/* Connects to every node and learns its name. */
static void resolve(struct check *k)
{
	for (int i = 0; i < k->nnodes; i++) {
		struct cnode *n = &k->nodes[i];
		struct json_object *info = NULL;
		struct fd_err err;
		const char *name;
		long status;

		if (fd_client_init(&n->c, n->addr, k->timeout_ms, &err) < 0 ||
		    fd_client_call_ok(&n->c, "GET", "/v1/info", NULL, &status,
				      &info, &err) < 0)
			fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
		name = fd_json_get_str(info, "name");
		if (!name)
			fd_die(FD_EXIT_RUNTIME, "'%s' is not an fd node", n->addr);
		snprintf(n->name, sizeof(n->name), "%s", name ? name : "");
		json_object_put(info);
		for (int j = 0; j < i; j++)
			if (strcmp(k->nodes[j].name, n->name) == 0)
				fd_usage_die("'%s' and '%s' are the same node '%s'",
					     k->nodes[j].addr, n->addr, n->name);
	}
}

struct list_arg {
	struct check *k;
	const char *node;
	int bad;
};

static int list_line(const char *line, size_t len, void *arg)
{
	struct list_arg *a = arg;
	struct json_object *o = fd_json_parse(line, len, NULL);
	struct fd_err err;

	if (!o || fd_history_snapshot(a->k->h, a->node, o, &err) < 0) {
		if (errno == ENOMEM)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		a->bad = 1;
	}
	json_object_put(o);
	return 0;
}

/* Takes every node's registry as the final state. Returns 0, or -1 with
 * err (a node did not answer). */
static int snapshot(struct check *k, struct fd_err *err)
{
	fd_history_clear_snapshots(k->h);
	for (int i = 0; i < k->nnodes; i++) {
		struct list_arg a = {k, k->nodes[i].name, 0};
		struct fd_client_lines l = {
			.method = "GET",
			.path = "/v1/registry",
			.on_line = list_line,
			.arg = &a,
		};

		if (fd_history_snapshot(k->h, k->nodes[i].name, NULL, err) < 0 ||
		    fd_client_lines(&k->nodes[i].c, &l, err) < 0)
			return -1;
		if (a.bad)
			return fd_err_set(err, "'%s' listed an entry without a name or value",
					  k->nodes[i].name);
	}
	return 0;
}

/* Whether every node sees every other one alive. why gets the first
 * exception. */
static int members_agree(struct check *k, char *why, size_t len)
{
	for (int i = 0; i < k->nnodes; i++) {
		struct json_object *resp = NULL, *arr;
		struct fd_err err;
		long status;
		int seen = 0;

		if (fd_client_call_ok(&k->nodes[i].c, "GET", "/v1/members",
				      NULL, &status, &resp, &err) < 0 ||
		    !json_object_object_get_ex(resp, "members", &arr) ||
		    !json_object_is_type(arr, json_type_array)) {
			snprintf(why, len, "no members from '%s'", k->nodes[i].name);
			json_object_put(resp);
			return 0;
		}
		for (int j = 0; j < k->nnodes; j++) {
			const char *state = NULL;

			for (size_t m = 0; m < json_object_array_length(arr); m++) {
				struct json_object *mo =
					json_object_array_get_idx(arr, m);
				const char *name = fd_json_get_str(mo, "name");

				if (name && strcmp(name, k->nodes[j].name) == 0)
					state = fd_json_get_str(mo, "state");
			}
			if (state && strcmp(state, "alive") == 0) {
				seen++;
				continue;
			}
			snprintf(why, len, "'%s' sees '%s' %s", k->nodes[i].name,
				 k->nodes[j].name, state ? state : "nowhere");
			break;
		}
		json_object_put(resp);
		if (seen < k->nnodes)
			return 0;
	}
	return 1;
}

static long long counter(struct json_object *v, const char *part, const char *key)
{
	struct json_object *p;

	if (!json_object_object_get_ex(v, part, &p))
		return 0;
	return fd_json_get_int(p, key, 0);
}

static int subs_none(struct json_object *v)
{
	return counter(v, "publishes", "subscribers") == 0;
}

/* The registrations agree: nothing lost or divergent. */
static int settled(struct json_object *v)
{
	return counter(v, "registrations", "lost") == 0 &&
	       counter(v, "registrations", "divergent") == 0;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Polls the nodes until they agree or the wait is over; returns the last
 * verdict with "membership" and "converged_after" added. */
static struct json_object *check_nodes(struct check *k)
{
	int64_t start = fd_mono_ms(), deadline = start + k->wait_ms;
	int64_t last_heal = fd_history_last_heal(k->h), at_us = 0;
	struct json_object *v = NULL, *m;
	char why[512] = "";
	int members = 0;

	for (;;) {
		struct fd_err err;

		json_object_put(v);
		if (snapshot(k, &err) < 0)
			fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
		v = fd_history_check(k->h);
		if (!v)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		at_us = fd_wall_us();
		members = members_agree(k, why, sizeof(why));
		if ((members && settled(v)) || fd_mono_ms() >= deadline)
			break;
		sleep_ms(POLL_MS);
	}
	m = json_object_new_object();
	json_object_object_add(m, "converged", json_object_new_boolean(members));
	if (!members)
		json_object_object_add(m, "reason", json_object_new_string(why));
	json_object_object_add(v, "membership", m);
	if (!members)
		json_object_object_add(v, "valid", json_object_new_boolean(0));
	json_object_object_add(v, "waited", fd_json_seconds(fd_mono_ms() - start));
	if (members && settled(v) && last_heal != INT64_MIN)
		json_object_object_add(
			v, "converged_after",
			fd_json_seconds(at_us > last_heal ? (at_us - last_heal) / 1000
							  : 0));
	return v;
}

int cmd_check(int argc, char **argv)
{
	return partition_check(argc, argv, popt.nodes, popt.nnodes, popt.timeout_ms);
}

int partition_check(int argc, char **argv, const char *const *nodes, int nnodes,
		    int64_t timeout_ms)
{
	enum { OPT_SUB = 256 };
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"wait", required_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"sub", required_argument, NULL, OPT_SUB},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static struct input inputs[MAX_INPUTS];
	struct check k = {.timeout_ms = timeout_ms};
	struct json_object *v;
	int ninputs = 0, c, rc, stdin_used = 0;
	long long pubs, subs;

	fd_usage = CHECK_USAGE;
	for (int i = 0; i < nnodes; i++)
		add_node(&k, nodes[i]);
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:w:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': add_node(&k, optarg); break;
		case 'w':
			if (fd_parse_duration(optarg, &k.wait_ms) < 0)
				fd_usage_die("invalid --wait '%s'", optarg);
			break;
		case 't':
			if (fd_parse_duration(optarg, &k.timeout_ms) < 0 ||
			    k.timeout_ms == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case OPT_SUB: {
			char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg || !eq[1])
				fd_usage_die("invalid --sub '%s' (expected NAME=FILE)",
					     optarg);
			if (ninputs == MAX_INPUTS)
				fd_usage_die("too many files (at most %d)",
					     MAX_INPUTS);
			*eq = '\0';
			/* (the modulo keeps cppcheck quiet: fd_usage_die guards) */
			inputs[ninputs % MAX_INPUTS].sub = optarg;
			inputs[ninputs++ % MAX_INPUTS].path = eq + 1;
			break;
		}
		case 'h':
			fd_help_exit(
				"\n"
				"Checks the history of a run (JSON lines; see fd-partition(1)):\n"
				"every acknowledged registration on every node, every\n"
				"acknowledged publish at every subscriber or reported by a gap.\n"
				"\n"
				"  -n, --node HOST:PORT  take the final registry of this node\n"
				"  -w, --wait T          with -n: poll until the nodes agree, up to T\n"
				"      --sub NAME=FILE   FILE holds subscriber NAME's fd-sub output\n"
				"  -t, --timeout T       longest wait for each node's answer\n");
		default: fd_usage_getopt(c, argv);
		}
	}
	for (int i = optind; i < argc; i++) {
		if (ninputs == MAX_INPUTS)
			fd_usage_die("too many files (at most %d)", MAX_INPUTS);
		inputs[ninputs % MAX_INPUTS].sub = NULL;
		inputs[ninputs++ % MAX_INPUTS].path = argv[i];
	}
	if (ninputs == 0)
		inputs[ninputs++].path = "-";
	for (int i = 0; i < ninputs; i++)
		if (strcmp(inputs[i].path, "-") == 0 && stdin_used++)
			fd_usage_die("stdin ('-') given twice");
	if (k.wait_ms && k.nnodes == 0)
		fd_usage_die("--wait needs nodes (-n)");
	k.h = fd_history_new();
	if (!k.h)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	for (int i = 0; i < ninputs; i++)
		read_input(&k, &inputs[i]);
	if (k.nnodes) {
		resolve(&k);
		v = check_nodes(&k);
	} else {
		v = fd_history_check(k.h);
		if (!v)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
	}
	if (counter(v, "registrations", "nodes") == 0 && subs_none(v))
		fd_die(FD_EXIT_USAGE,
		       "nothing to check: no subscriber output and "
		       "no final state (-n, or \"snapshot\" entries)");
	pubs = counter(v, "publishes", "acknowledged");
	subs = counter(v, "publishes", "subscribers");
	if (pubs && !subs)
		fd_warn("%lld acknowledged publishes but no subscriber: not checked",
			pubs);
	if (counter(v, "registrations", "acknowledged") +
			    counter(v, "registrations", "unregistered") >
		    0 &&
	    counter(v, "registrations", "nodes") == 0)
		fd_warn("acknowledged registrations but no final state "
			"(-n, or entry lines with \"snapshot\"): not checked");
	json_object_object_add(v, "malformed",
			       json_object_new_int64((int64_t)k.malformed));
	if (fd_emit(v) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to write stdout: %s",
		       strerror(errno));
	rc = k.malformed	   ? FD_EXIT_DATA
	     : fd_history_valid(v) ? FD_EXIT_OK
				   : FD_EXIT_RUNTIME;
	if (k.malformed)
		fd_warn("%lu malformed history line%s", k.malformed,
			k.malformed == 1 ? "" : "s");
	json_object_put(v);
	fd_history_free(k.h);
	for (int i = 0; i < k.nnodes; i++)
		fd_client_release(&k.nodes[i].c);
	return rc;
}
