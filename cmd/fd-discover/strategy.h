/* fd-discover internals shared by the files of cmd/fd-discover. */
#ifndef FD_DISCOVER_STRATEGY_H
#define FD_DISCOVER_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "discover.h"

struct dopts {
	int watch;
	int64_t interval_ms;
	unsigned down_after;
	int strict;
	int table;
	unsigned expect;    /* one-shot: at least this many peers (0: any) */
	int64_t timeout_ms; /* ... found within this long */
	const char *timeout_arg; /* as given, for messages */
	int64_t exec_timeout_ms; /* exec: longest run of the command */
	int port;		 /* dns: the peers' port */
	const char *resolver; /* dns: "IP:PORT" of the server to ask, or NULL */
	const char *basename; /* dns, kubernetes: name peers BASENAME@IP */
	/* kubernetes (NULL: not given) */
	const char *selector, *k8s_namespace, *k8s_mode, *api, *token_file,
		*ca_file, *sa_dir, *port_name;
	/* given on the command line (a spec does not override them) */
	int port_given, interval_given, down_after_given, exec_timeout_given;
	/* --auto, --config, --explain */
	int auto_pick, explain;
	const char *config, *topology;
};

/* Output: one record per line, JSON or a table row, from the same record. */
void out_init(const struct dopts *o, const char *strategy);
/* A peer event ("up" or "down"). */
void out_peer(const char *event, const char *addr);
/* The same with a name (NULL: none) and a meta object (borrowed; NULL:
 * none). */
void out_peer_meta(const char *event, const char *addr, const char *name,
		   struct json_object *meta);
/* A source that failed: an "error" record and the message on stderr. */
void out_error(const char *source, const char *msg);
/* fd_peerset_end() callback: prints "down" for addr, with the name and meta
 * the set knows when arg is the set (NULL: none). */
void out_down(const char *addr, void *arg);

/* Adds addr to the answer being built and prints "up" when it is new.
 * Returns 0, or -1 after a message when the set is full. */
int peer_add(struct fd_peerset *set, const char *addr);
/* The same, with the name and meta printed in the "up" line. */
int peer_add_meta(struct fd_peerset *set, const char *addr, const char *name,
		  struct json_object *meta);

/* Polled strategies (exec, dns, dns-srv): poll() builds one answer into set
 * (between the driver's fd_peerset_begin() and _end()) with peer_add*().
 * It returns 0, or -1 with err when the source failed: the answer is then
 * dropped (what it added is up, nothing goes down) and err reported.
 * bad_lines is set when the answer had lines that were skipped. */
struct poller {
	const char *source; /* names the source in error records */
	int (*poll)(struct poller *p, struct fd_peerset *set, struct fd_err *err);
	void *ctx;
	int bad_lines;
};

/* Runs p as o asks: one answer (retried every --interval until --expect
 * peers are up or --timeout), or --watch. Returns the exit status. */
int poll_run(struct poller *p, const struct dopts *o);

/* True when SIGINT or SIGTERM is pending under --watch (a poll in progress
 * gives up early). */
int stop_requested(void);

/* With --expect: the exit status for count peers found (5 with a message
 * when fewer than expected). */
int expect_status(const struct dopts *o, size_t count);

/* Runs until SIGINT or SIGTERM, doing nothing else (a --watch without a
 * source that can change). Returns 0, or -1 with errno set. */
int wait_for_signal(void);

/* Strategies: each returns the exit status. */
int strategy_static(int argc, char **argv, const struct dopts *o);
int strategy_file(int argc, char **argv, const struct dopts *o);
int strategy_exec(int argc, char **argv, const struct dopts *o);
int strategy_dns(int argc, char **argv, const struct dopts *o);
int strategy_dns_srv(int argc, char **argv, const struct dopts *o);
int strategy_kubernetes(int argc, char **argv, const struct dopts *o);

/* kubernetes (k8s.c): the options as a spec for fd_k8s_config(); a GET of
 * url with k's token and CA, the body in a new buffer (NUL-terminated).
 * Both return 0, or -1 (with err). */
struct fd_dspec;
struct fd_k8s;
int k8s_spec(const struct dopts *o, struct fd_dspec *sp);
int k8s_get(const struct fd_k8s *k, const char *url, char **out, size_t *len,
	    long *status, struct fd_err *err);

/* --auto, --config, FD_DISCOVER (auto.c): picks a spec and runs it with
 * the strategy of that name. Returns the exit status. */
int run_auto(const struct dopts *o);
/* Runs a strategy by name with its arguments (main.c). Returns the exit
 * status, or -1 when there is no such strategy. */
int run_strategy(const char *name, int argc, char **argv, const struct dopts *o);
/* Whether this fd-discover has a strategy of that name. */
int have_strategy(const char *name);
/* --explain for a strategy given on the command line. */
void explain_given(const char *strategy);
/* "IP" or "IP:PORT" (IPv6 in brackets) as c-ares takes it, into out (len
 * bytes); NULL when arg is not that. */
const char *resolver_arg(const char *arg, char *out, size_t len);

#endif
