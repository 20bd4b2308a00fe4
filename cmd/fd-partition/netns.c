/* fd-partition --backend netns: the same plans as nftables rules inside
 * the network namespaces (ip netns) the nodes run in, for nodes without a
 * fault gate in the way (or to cut what the gate cannot: any process's
 * traffic to those addresses).
 *
 * Each namespace gets one table, inet fd_partition (another --tag: 
 * fd_partition_TAG), replaced whole on every install, deleted on heal:
 *
 *	set cut, set lossy: (source . destination) IPv4 address pairs, each
 *	    element with a timeout (the rule's duration, 10m by default) and
 *	    a comment "NODE PEER DIRECTION ACTION" that status reads back;
 *	chains input and output: drop what matches cut, and what matches
 *	    lossy with the plan's probability (numgen random).
 *
 * The elements expire in the kernel: a crashed fd-partition leaves an empty
 * table, which cuts nothing. Cutting by address pairs means two nodes on
 * one address cannot be cut apart, and only drop and loss exist here
 * (delays need tc netem: use the gate). IPv4 only. */
#include "buf.h"
#include "cli.h"
#include "fault.h"
#include "jsonl.h"
#include "partition.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_LIFE_MS 600000 /* the gate's default --max-duration */

static int home_ns = -1;

int netns_name_ok(const char *ns)
{
	size_t n = strlen(ns);

	return n > 0 && n < 64 && ns[0] != '.' &&
	       strspn(ns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789._-") == n;
}

int netns_enter(const char *ns, struct fd_err *err)
{
	char path[128];
	int fd;

	if (home_ns < 0 &&
	    (home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		return fd_err_set(err, "unable to open /proc/self/ns/net: %s",
				  strerror(errno));
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return fd_err_set(err, "no network namespace '%s' (%s)", ns,
				  strerror(errno));
	if (setns(fd, CLONE_NEWNET) < 0) {
		close(fd);
		return fd_err_set(err, "unable to enter namespace '%s': %s", ns,
				  strerror(errno));
	}
	close(fd);
	return 0;
}

void netns_leave(void)
{
	if (home_ns >= 0 && setns(home_ns, CLONE_NEWNET) < 0)
		fd_die(FD_EXIT_RUNTIME,
		       "unable to return to our network namespace: %s",
		       strerror(errno));
}

static void table_name(char *buf, size_t len)
{
	if (strcmp(popt.tag, "fd-partition") == 0) {
		snprintf(buf, len, "fd_partition");
		return;
	}
	snprintf(buf, len, "fd_partition_%s", popt.tag);
	for (char *p = buf; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			*p = '_';
}

/* Runs nft args inside ns with input on its stdin; its stdout into out
 * (when not NULL). Returns 0, or -1 with err (nft's own message). */
static int nft(const char *ns, const char *const *args, const char *input,
	       struct fd_buf *out, struct fd_err *err)
{
	int in[2], op[2], ep[2], st;
	struct fd_buf ebuf = FD_BUF_INIT(4096);
	pid_t pid;

	if (pipe(in) < 0 || pipe(op) < 0 || pipe(ep) < 0)
		return fd_err_set(err, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fd_err_set(err, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct fd_err e;

		dup2(in[0], STDIN_FILENO);
		dup2(op[1], STDOUT_FILENO);
		dup2(ep[1], STDERR_FILENO);
		close(in[0]), close(in[1]), close(op[0]), close(op[1]);
		close(ep[0]), close(ep[1]);
		if (netns_enter(ns, &e) < 0) {
			dprintf(STDERR_FILENO, "%s", e.msg);
			_exit(126);
		}
		execvp("nft", (char *const *)args);
		dprintf(STDERR_FILENO,
			"unable to run nft: %s (apt-get install nftables)",
			strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(op[1]);
	close(ep[1]);
	if (input) {
		size_t len = strlen(input), off = 0;

		signal(SIGPIPE, SIG_IGN);
		while (off < len) {
			ssize_t k = write(in[1], input + off, len - off);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			off += (size_t)k;
		}
	}
	close(in[1]);
	/* nft writes little to stderr: read stdout to its end, then stderr */
	for (int pass = 0; pass < 2; pass++) {
		int fd = pass ? ep[0] : op[0];
		struct fd_buf *b = pass ? &ebuf : out;
		char chunk[4096];
		ssize_t k;

		while ((k = read(fd, chunk, sizeof(chunk))) != 0) {
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				break;
			if (b)
				fd_buf_append(b, chunk, (size_t)k);
		}
		close(fd);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		const char *m = fd_buf_str(&ebuf);
		size_t l = strlen(m);

		while (l && (m[l - 1] == '\n' || m[l - 1] == ' '))
			l--;
		fd_err_set(err, "nft in '%s': %.*s", ns, (int)(l > 200 ? 200 : l), m);
		fd_buf_release(&ebuf);
		return -1;
	}
	fd_buf_release(&ebuf);
	return 0;
}

static int ipv4_of(const struct target *t, char *ip, size_t len)
{
	char host[FD_PEER_ADDR_LEN];
	struct in_addr a;
	int port;

	if (fd_parse_hostport(t->addr, host, sizeof(host), -1, &port) < 0 ||
	    inet_pton(AF_INET, host, &a) != 1 ||
	    !inet_ntop(AF_INET, &a, ip, (socklen_t)len))
		return -1;
	return 0;
}

/* Everything checked before any namespace is touched. Returns 0, or -1
 * with err (a usage error). */
int netns_check(const struct plan *p, struct fd_err *err)
{
	double prob = 0;
	char ip[MAX_NODES][64];

	for (int i = 0; i < ntargets; i++)
		if (ipv4_of(&targets[i], ip[i], sizeof(ip[i])) < 0)
			return fd_err_set(err, "'%s' (%s): the netns backend needs an IPv4 address",
					  targets[i].name, targets[i].addr);
	for (int i = 0; i < ntargets; i++)
		for (int k = 0; k < p->nrules[i]; k++) {
			const struct prule *r = &p->rules[i][k];

			if (r->action != FD_FAULT_DROP && r->action != FD_FAULT_LOSS)
				return fd_err_set(
					err, "the netns backend only drops and loses messages (delays: use the gate)");
			if (r->action == FD_FAULT_LOSS) {
				if (prob && prob != r->probability)
					return fd_err_set(
						err, "the netns backend takes one loss probability at a time");
				prob = r->probability;
			}
			for (int j = 0; j < ntargets; j++)
				if ((r->peer == j || (r->peer < 0 && j != i)) &&
				    strcmp(ip[i], ip[j]) == 0)
					return fd_err_set(err, "'%s' and '%s' share the address %s: the netns backend cannot cut them apart",
							  targets[i].name,
							  targets[j].name, ip[i]);
		}
	return 0;
}

static void add_elem(struct fd_buf *b, const char *src, const char *dst,
		     int64_t life_ms, const char *comment)
{
	char line[512];

	/* a pair once per set: the first rule that asks for it names it
	 * (every element starts with ", ", skipped when written out) */
	snprintf(line, sizeof(line), ", %s . %s ", src, dst);
	if (strstr(fd_buf_str(b), line))
		return;
	snprintf(line, sizeof(line), ", %s . %s timeout %lldms comment \"%s\"",
		 src, dst, (long long)life_ms, comment);
	fd_buf_append(b, line, strlen(line));
}

/* The ruleset for namespace ns (the targets in it) into out. */
static void ruleset(const struct plan *p, const char *ns, int64_t life_ms,
		    struct fd_buf *out)
{
	struct fd_buf cut = FD_BUF_INIT(1 << 20), lossy = FD_BUF_INIT(1 << 20);
	char ip[MAX_NODES][64], table[96], text[1024];
	double prob = 0;

	for (int i = 0; i < ntargets; i++)
		ipv4_of(&targets[i], ip[i], sizeof(ip[i]));
	for (int i = 0; i < ntargets; i++) {
		if (strcmp(targets[i].netns, ns) != 0)
			continue;
		for (int k = 0; k < p->nrules[i]; k++) {
			const struct prule *r = &p->rules[i][k];
			struct fd_buf *set = r->action == FD_FAULT_LOSS ? &lossy
									: &cut;

			if (r->action == FD_FAULT_LOSS)
				prob = r->probability;
			for (int j = 0; j < ntargets; j++) {
				char comment[600];

				if (j == i || (r->peer >= 0 && r->peer != j))
					continue;
				snprintf(comment, sizeof(comment), "%s %s %s %s",
					 targets[i].name, targets[j].name,
					 fd_fault_dir_name(r->dir),
					 fd_fault_action_name(r->action));
				if (r->dir & FD_FAULT_IN)
					add_elem(set, ip[j], ip[i], life_ms, comment);
				if (r->dir & FD_FAULT_OUT)
					add_elem(set, ip[i], ip[j], life_ms, comment);
			}
		}
	}
	table_name(table, sizeof(table));
	snprintf(text, sizeof(text),
		 "table inet %s\ndelete table inet %s\n"
		 "table inet %s {\n\tcomment \"fd-partition tag %s\"\n",
		 table, table, table, popt.tag);
	fd_buf_append(out, text, strlen(text));
	for (int s = 0; s < 2; s++) {
		struct fd_buf *set = s ? &lossy : &cut;

		snprintf(text, sizeof(text),
			 "\tset %s {\n\t\ttype ipv4_addr . ipv4_addr\n\t\tflags timeout\n",
			 s ? "lossy" : "cut");
		fd_buf_append(out, text, strlen(text));
		if (set->len) {
			fd_buf_append(out, "\t\telements = { ", 14);
			fd_buf_append(out, set->data + 2, set->len - 2);
			fd_buf_append(out, " }\n", 3);
		}
		fd_buf_append(out, "\t}\n", 3);
	}
	for (int c = 0; c < 2; c++) {
		snprintf(text, sizeof(text),
			 "\tchain %s {\n"
			 "\t\ttype filter hook %s priority filter; policy accept;\n"
			 "\t\tip saddr . ip daddr @cut drop\n"
			 "\t\tip saddr . ip daddr @lossy numgen random mod 1000000 < %d drop\n"
			 "\t}\n",
			 c ? "output" : "input", c ? "output" : "input",
			 (int)(prob * 1000000 + 0.5));
		fd_buf_append(out, text, strlen(text));
	}
	fd_buf_append(out, "}\n", 2);
	fd_buf_release(&cut);
	fd_buf_release(&lossy);
}

/* The distinct namespaces of the targets: the index of each one's first. */
static int namespaces(int *first)
{
	int n = 0;

	for (int i = 0; i < ntargets; i++) {
		int seen = 0;

		for (int k = 0; k < n; k++)
			seen |= strcmp(targets[first[k]].netns, targets[i].netns) == 0;
		if (!seen)
			first[n++] = i;
	}
	return n;
}

static int remove_table(const char *ns, struct fd_err *err)
{
	static const char *const args[] = {"nft", "-f", "-", NULL};
	char table[96], text[256];

	table_name(table, sizeof(table));
	snprintf(text, sizeof(text), "table inet %s\ndelete table inet %s\n",
		 table, table);
	return nft(ns, args, text, NULL, err);
}

struct json_object *netns_rulesets(const struct plan *p, int64_t duration_ms)
{
	struct json_object *o = json_object_new_object();
	int first[MAX_NODES], nns = namespaces(first);

	for (int k = 0; k < nns; k++) {
		struct fd_buf b = FD_BUF_INIT(4 << 20);

		ruleset(p, targets[first[k]].netns,
			duration_ms ? duration_ms : DEFAULT_LIFE_MS, &b);
		json_object_object_add(o, targets[first[k]].netns,
				       json_object_new_string(fd_buf_str(&b)));
		fd_buf_release(&b);
	}
	return o;
}

int netns_install(const struct plan *p, int64_t duration_ms)
{
	static const char *const args[] = {"nft", "-f", "-", NULL};
	int first[MAX_NODES], nns = namespaces(first);

	for (int k = 0; k < nns; k++) {
		struct fd_buf b = FD_BUF_INIT(4 << 20);
		struct fd_err err;
		int rc;

		ruleset(p, targets[first[k]].netns,
			duration_ms ? duration_ms : DEFAULT_LIFE_MS, &b);
		rc = nft(targets[first[k]].netns, args, fd_buf_str(&b), NULL, &err);
		fd_buf_release(&b);
		if (rc == 0)
			continue;
		fd_warn("unable to install the rules in namespace '%s': %s",
			targets[first[k]].netns, err.msg);
		for (int u = 0; u <= k; u++)
			if (remove_table(targets[first[u]].netns, &err) < 0)
				fd_warn("unable to undo the rules in '%s': %s (they expire by themselves)",
					targets[first[u]].netns, err.msg);
		return -1;
	}
	return 0;
}

int netns_heal(void)
{
	int first[MAX_NODES], nns = namespaces(first), rc = 0;

	for (int k = 0; k < nns; k++) {
		struct fd_err err;

		if (remove_table(targets[first[k]].netns, &err) < 0) {
			fd_warn("unable to heal namespace '%s': %s",
				targets[first[k]].netns, err.msg);
			rc = -1;
		}
	}
	return rc;
}

/* Target i's rules read back from its namespace's table: one per peer,
 * direction and action, from the elements' comments. */
struct json_object *netns_status(int i, struct fd_err *err)
{
	static const char *const args[] = {"nft", "-j", "list", "ruleset", NULL};
	struct fd_buf b = FD_BUF_INIT(16 << 20);
	struct json_object *all = NULL, *list, *rules = json_object_new_array();
	char table[96];

	table_name(table, sizeof(table));
	if (nft(targets[i].netns, args, NULL, &b, err) < 0 ||
	    fd_json_parse_value(fd_buf_str(&b), b.len, &all, err) < 0) {
		fd_buf_release(&b);
		json_object_put(rules);
		return NULL;
	}
	fd_buf_release(&b);
	if (!json_object_object_get_ex(all, "nftables", &list))
		list = NULL;
	for (size_t k = 0; list && k < json_object_array_length(list); k++) {
		struct json_object *set, *elems;
		const char *tbl, *sname;

		if (!json_object_object_get_ex(json_object_array_get_idx(list, k),
					       "set", &set) ||
		    !(tbl = fd_json_get_str(set, "table")) || strcmp(tbl, table) ||
		    !(sname = fd_json_get_str(set, "name")) ||
		    !json_object_object_get_ex(set, "elem", &elems))
			continue;
		for (size_t e = 0; e < json_object_array_length(elems); e++) {
			struct json_object *el, *v, *r;
			char node[256], peer[256], dir[16], action[16];
			const char *c;
			int dup = 0;

			if (!json_object_object_get_ex(
				    json_object_array_get_idx(elems, e), "elem", &el) ||
			    !(c = fd_json_get_str(el, "comment")) ||
			    sscanf(c, "%255s %255s %15s %15s", node, peer, dir,
				   action) != 4 ||
			    strcmp(node, targets[i].name))
				continue;
			for (size_t x = 0; x < json_object_array_length(rules); x++) {
				struct json_object *o =
					json_object_array_get_idx(rules, x);

				dup |= strcmp(fd_json_get_str(o, "peer"), peer) == 0 &&
				       strcmp(fd_json_get_str(o, "direction"),
					      dir) == 0 &&
				       strcmp(fd_json_get_str(o, "action"),
					      action) == 0;
			}
			if (dup)
				continue;
			r = json_object_new_object();
			json_object_object_add(r, "peer",
					       json_object_new_string(peer));
			json_object_object_add(r, "direction",
					       json_object_new_string(dir));
			json_object_object_add(r, "action",
					       json_object_new_string(action));
			json_object_object_add(r, "set",
					       json_object_new_string(sname));
			if (json_object_object_get_ex(el, "expires", &v))
				json_object_object_add(
					r, "expires_in",
					json_object_new_int64(
						json_object_get_int64(v)));
			json_object_array_add(rules, r);
		}
	}
	json_object_put(all);
	return rules;
}
