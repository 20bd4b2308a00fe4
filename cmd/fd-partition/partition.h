/* fd-partition: what its subcommands share. Each subcommand lives in its
 * own file and is called from main.c's table with its own words
 * (argv[0] is the subcommand); the options before the subcommand are
 * parsed already, into popt and the -n list. */
#ifndef FD_PARTITION_H
#define FD_PARTITION_H

#include "client.h"
#include "discover.h"

#include <getopt.h>
#include <json-c/json.h>
#include <stdint.h>

#define MAX_NODES 64

struct target {
	char addr[FD_PEER_ADDR_LEN];
	char name[256];
	char netns[64];	    /* the node's network namespace (ADDR@NETNS); "" */
	const char *scheme; /* "https://" or "http://" as given, else "" */
	int group;
	struct fd_client c;
};

/* The options every subcommand takes. */
struct popts {
	int64_t timeout_ms;  /* each node's answer */
	int64_t duration_ms; /* the rules' life; 0: the nodes' --max-duration */
	const char *tag;
	int dry_run;
	int netns;		      /* --backend netns */
	const char *nodes[MAX_NODES]; /* -n, in order */
	int nnodes;
};

extern struct popts popt;
extern struct target targets[MAX_NODES];
extern int ntargets;

/* main.c: parses a subcommand's own options and the common ones after it
 * (so `split n1 n2 --duration 30s` works); argv[0] is the subcommand.
 * extra (may be NULL, {0}-terminated) lists the subcommand's long options,
 * shortopts its short ones (without the common ones); each is handed to
 * on_opt. Returns the index of the first operand (getopt permutes them to
 * the end). */
int part_getopt(int argc, char **argv, const char *shortopts,
		const struct option *extra, void (*on_opt)(int c, const char *arg));

/* targets.c */
/* The nodes: the -n list, else the lines on stdin. Exits on bad input. */
void targets_load(void);
/* Connects to every node and learns its name; exits when one fails. */
void targets_resolve(void);
/* The index of the target named s (a name or an address), or -1. */
int target_find(const char *s);
/* Syntax of groups (NODE[,NODE...]), before any node is asked: no empty
 * group, no empty or repeated member. Exits 2. */
void groups_check(int argc, char **argv);
/* Sets each target's group from argv; the unlisted form one more. Returns
 * the number of groups; exits 2 on an unknown or repeated node. */
int groups_assign(int argc, char **argv);
void targets_release(void);

/* One rule of a plan, for one node. */
struct prule {
	int peer;   /* a target index; -1: every peer ("*") */
	int dir;    /* FD_FAULT_IN, FD_FAULT_OUT, FD_FAULT_BOTH */
	int action; /* FD_FAULT_DROP, FD_FAULT_LOSS, FD_FAULT_DELAY */
	int64_t delay_ms, jitter_ms;
	double probability;
};

/* The rules each target gets (a target without rules gets its tag's rules
 * removed: the plan replaces whatever the tag had). */
struct plan {
	int nrules[MAX_NODES];
	struct prule rules[MAX_NODES][MAX_NODES + 1];
};

struct fd_grudge;
/* nemesis.c */
/* Drop rules: "both" where two nodes drop each other, "in" where only one
 * does. */
void plan_grudge(struct plan *p, const struct fd_grudge *g);
/* Every message to or from a selected node delayed (delay) or lost
 * (probability) once, at its sender: a selected node's "out" to every
 * peer, the others' "out" to each selected node. */
void plan_links(struct plan *p, const uint8_t *sel, int action,
		int64_t delay_ms, int64_t jitter_ms, double probability);
/* Adds "duration", "dry_run" to rec, installs p (unless --dry-run), prints
 * rec. Returns the exit status; on a failed install everything installed
 * is undone first. */
int apply(const struct plan *p, struct json_object *rec);
/* The names of targets idx[0..n) as an array. */
struct json_object *names_json(const int *idx, int n);
/* The sides (side[i] of target i, 0..nsides) as [[names]...], each in
 * target order; empty sides left out. */
struct json_object *sides_json(const int *side, int nsides);
/* The grudge as {"n1": ["n2", ...], ...} (nodes dropping nobody left out). */
struct json_object *grudge_json(const struct fd_grudge *g);

/* --seed S (0 to 2^63-1); a random one; --loss P ("20%", "0.5%"). Return
 * 0, or -1 when s is invalid. */
int parse_seed(const char *s, uint64_t *seed);
uint64_t random_seed(void);
int parse_loss(const char *s, double *p);

/* netns.c: --backend netns (nftables inside the nodes' namespaces) */
int netns_name_ok(const char *ns);
/* Enters namespace ns (/run/netns/NS), and back. */
int netns_enter(const char *ns, struct fd_err *err);
void netns_leave(void);
/* Whether the netns backend can install p (IPv4, drop and loss, one
 * probability, nodes to cut apart on different addresses): 0 or -1. */
int netns_check(const struct plan *p, struct fd_err *err);
/* The nft input per namespace, for --dry-run. */
struct json_object *netns_rulesets(const struct plan *p, int64_t duration_ms);
int netns_install(const struct plan *p, int64_t duration_ms);
int netns_heal(void);
/* Target i's rules read back from its namespace; NULL with err. */
struct json_object *netns_status(int i, struct fd_err *err);

/* gate.c: output and the node gate */
/* A {"type":"fault","action":...,"tag":...,"ts":...} record. */
struct json_object *record(const char *action);
/* Writes o (and puts it); exits when stdout fails. */
void emit(struct json_object *o);
/* Removes the tag's rules from target t. Returns 0, or -1 with err. */
int gate_remove(struct target *t, struct fd_err *err);
/* Installs p's rules on target i (replacing the tag's), with
 * duration_ms (0: the node's default). Returns 0, or -1 with err and
 * *status the HTTP status (0: unreachable). */
int gate_install(const struct plan *p, int i, int64_t duration_ms, long *status,
		 struct fd_err *err);
/* Installs p everywhere through the backend, all or nothing: returns 0,
 * or -1 after undoing what was installed (warned about). */
int install_all(const struct plan *p, int64_t duration_ms);
/* Removes the tag's rules everywhere. Returns 0, or -1 when a node failed
 * (warned about). */
int heal_all(void);

/* Subcommands: each returns the exit status. */
int cmd_split(int argc, char **argv); /* split, isolate, halves */
int cmd_bridge(int argc, char **argv);
int cmd_ring(int argc, char **argv);
int cmd_grudge(int argc, char **argv);
int cmd_slow(int argc, char **argv); /* slow, flaky */
int cmd_chaos(int argc, char **argv);
int cmd_heal(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif
