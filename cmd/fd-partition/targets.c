/* fd-partition: the nodes (from -n or stdin), their names, and groups of
 * them as the subcommands name them. */
#include "cli.h"
#include "jsonl.h"
#include "partition.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct target targets[MAX_NODES];
int ntargets;

/* ADDR or ADDR@NETNS (ns, when not NULL, is a namespace given apart). */
static void add_target(const char *arg, const char *ns, int lineno)
{
	char addr[FD_PEER_ADDR_LEN], s[FD_PEER_ADDR_LEN + 64];
	const char *at, *scheme = "";
	struct fd_err err;

	if (strncmp(arg, "https://", 8) == 0 || strncmp(arg, "http://", 7) == 0) {
		scheme = arg[4] == 's' ? "https://" : "http://";
		arg += strlen(scheme);
	}
	snprintf(s, sizeof(s), "%s", arg);
	if (!ns && (at = strrchr(arg, '@'))) {
		s[at - arg < (long)sizeof(s) ? at - arg : 0] = 0;
		ns = at + 1;
	}
	if (ns && !netns_name_ok(ns)) {
		if (lineno)
			fd_die(FD_EXIT_DATA, "line %d: invalid namespace '%s'",
			       lineno, ns);
		fd_usage_die("invalid namespace '%s' in '%s'", ns, arg);
	}
	if (fd_peer_addr_norm(s, addr, sizeof(addr), &err) < 0) {
		if (lineno)
			fd_die(FD_EXIT_DATA, "line %d: %s", lineno, err.msg);
		fd_usage_die("%s", err.msg);
	}
	for (int i = 0; i < ntargets; i++)
		if (strcmp(targets[i].addr, addr) == 0)
			return;
	if (ntargets == MAX_NODES)
		fd_usage_die("too many nodes (at most %d)", MAX_NODES);
	memcpy(targets[ntargets].addr, addr, sizeof(addr));
	targets[ntargets].scheme = scheme;
	snprintf(targets[ntargets].netns, sizeof(targets[ntargets].netns), "%s",
		 ns ? ns : "");
	ntargets++;
}

/* Nodes from stdin; any bad line stops before anything is changed. */
static void read_stdin(void)
{
	struct fd_jsonl_reader r;
	struct json_object *rec;
	struct fd_err err;
	int rc, bad = 0;

	fd_jsonl_reader_init(&r, STDIN_FILENO, 0);
	r.plain_ok = 1;
	while ((rc = fd_jsonl_read(&r, &rec, &err)) != FD_JSONL_EOF) {
		const char *addr;

		if (rc == FD_JSONL_IOERR)
			fd_die(FD_EXIT_RUNTIME, "unable to read stdin: %s",
			       strerror(errno));
		if (rc == FD_JSONL_BAD) {
			fd_warn("%s", err.msg);
			bad++;
			continue;
		}
		addr = json_object_is_type(rec, json_type_string)
			       ? json_object_get_string(rec)
			       : fd_json_get_str(rec, "addr");
		if (!addr) {
			fd_warn("line %lu: no \"addr\"", r.lineno);
			bad++;
		} else {
			add_target(addr,
				   json_object_is_type(rec, json_type_string)
					   ? NULL
					   : fd_json_get_str(rec, "netns"),
				   (int)r.lineno);
		}
		json_object_put(rec);
	}
	fd_jsonl_reader_release(&r);
	if (bad)
		fd_die(FD_EXIT_DATA, "%d bad input line%s: nothing changed",
		       bad, bad == 1 ? "" : "s");
}

void targets_load(void)
{
	const char *tag = popt.tag;

	if (strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789._:-") != strlen(tag) ||
	    !*tag || strlen(tag) > 63)
		fd_usage_die("invalid --tag '%s'", tag);
	for (int i = 0; i < popt.nnodes; i++)
		add_target(popt.nodes[i], NULL, 0);
	if (popt.nnodes == 0 && !isatty(STDIN_FILENO))
		read_stdin();
	if (ntargets == 0)
		fd_usage_die("no nodes given (-n, or lines on stdin)");
	if (!popt.netns)
		return;
	for (int i = 0; i < ntargets; i++)
		if (!targets[i].netns[0])
			fd_usage_die("--backend netns: node '%s' has no namespace (ADDR@NETNS, or \"netns\" on stdin)",
				     targets[i].addr);
	if (geteuid() != 0)
		fd_die(FD_EXIT_RUNTIME,
		       "--backend netns needs root (it enters namespaces and runs nft): nothing changed");
}

/* A node in a namespace is asked from its own address: the namespace's
 * cuts (--backend netns) are address pairs and never cut an address from
 * itself, so a node stays reachable for heal and status while cut off. */
static int from_itself(struct target *t, struct fd_err *err)
{
	char host[FD_PEER_ADDR_LEN];
	int port;

	if (fd_parse_hostport(t->addr, host, sizeof(host), -1, &port) < 0 ||
	    fd_client_send_from(&t->c, host) < 0)
		return fd_err_set(err, "invalid address '%s'", t->addr);
	return 0;
}

void targets_resolve(void)
{
	for (int i = 0; i < ntargets; i++) {
		struct target *t = &targets[i];
		struct json_object *info = NULL;
		struct fd_err err;
		const char *name;
		long status;
		char url[FD_PEER_ADDR_LEN + 16];
		int rc;

		/* a node in a namespace is reached from inside it */
		if (t->netns[0] && netns_enter(t->netns, &err) < 0)
			fd_die(FD_EXIT_RUNTIME, "%s: nothing changed", err.msg);
		snprintf(url, sizeof(url), "%.8s%.*s", t->scheme,
			 (int)sizeof(t->addr) - 1, t->addr);
		rc = fd_client_init(&t->c, url, popt.timeout_ms, &err) < 0 ||
		     (t->netns[0] && from_itself(t, &err) < 0) ||
		     fd_client_call_ok(&t->c, "GET", "/v1/info", NULL, &status,
				       &info, &err) < 0;
		if (t->netns[0])
			netns_leave();
		if (rc)
			fd_die(FD_EXIT_RUNTIME, "%s: nothing changed", err.msg);
		name = fd_json_get_str(info, "name");
		if (!name)
			fd_die(FD_EXIT_RUNTIME,
			       "'%s' is not an fd node: nothing changed", t->addr);
		snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
		json_object_put(info);
		for (int k = 0; k < i; k++)
			if (strcmp(targets[k].name, t->name) == 0)
				fd_usage_die("'%s' and '%s' are the same node '%s'",
					     targets[k].addr, t->addr, t->name);
	}
}

void targets_release(void)
{
	for (int i = 0; i < ntargets; i++)
		fd_client_release(&targets[i].c);
}

int target_find(const char *s)
{
	char addr[FD_PEER_ADDR_LEN];

	for (int i = 0; i < ntargets; i++)
		if (strcmp(targets[i].name, s) == 0)
			return i;
	if (fd_peer_addr_norm(s, addr, sizeof(addr), NULL) == 0)
		for (int i = 0; i < ntargets; i++)
			if (strcmp(targets[i].addr, addr) == 0)
				return i;
	return -1;
}

void groups_check(int argc, char **argv)
{
	const char *tok[MAX_NODES];
	size_t len[MAX_NODES];
	int n = 0;

	for (int g = 0; g < argc; g++) {
		const char *p = argv[g];

		if (!*p)
			fd_usage_die("group %d is empty", g + 1);
		for (;;) {
			size_t l = strcspn(p, ",");

			if (l == 0)
				fd_usage_die("group %d ('%s') has an empty node name",
					     g + 1, argv[g]);
			for (int k = 0; k < n; k++)
				if (len[k] == l && strncmp(tok[k], p, l) == 0)
					fd_usage_die("node '%.*s' is named twice",
						     (int)l, p);
			if (n >= MAX_NODES)
				fd_usage_die("too many nodes (at most %d)", MAX_NODES);
			tok[n % MAX_NODES] = p;
			len[n % MAX_NODES] = l;
			n++;
			p += l;
			if (!*p)
				break;
			p++;
		}
	}
}

int groups_assign(int argc, char **argv)
{
	int rest = 0, ngroups = argc;

	for (int i = 0; i < ntargets; i++)
		targets[i].group = -1;
	for (int g = 0; g < argc; g++) {
		char *copy = strdup(argv[g]), *save = NULL;

		if (!copy)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		for (char *tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			int i = target_find(tok);

			if (i < 0)
				fd_usage_die("unknown node '%s' (not among the %d nodes given)",
					     tok, ntargets);
			if (targets[i < 0 ? 0 : i].group >= 0)
				fd_usage_die("node '%s' is named twice",
					     targets[i].name);
			targets[i < 0 ? 0 : i].group = g;
		}
		free(copy);
	}
	for (int i = 0; i < ntargets; i++)
		if (targets[i].group < 0) {
			targets[i].group = ngroups;
			rest = 1;
		}
	return ngroups + rest;
}
