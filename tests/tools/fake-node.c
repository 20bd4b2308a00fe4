/* fake-node: a stand-in for fd-node's join API, for testing the clients
 * (fd-join) before and apart from the real membership code.
 *
 * Listens on 127.0.0.1:0 and prints an identity line like fd-node's. Then:
 *   POST /v1/join {"addrs":[...]}  an address with port 1 fails with
 *        "connection refused"; any other is ok:true, name "peer-PORT", id
 *        "id-PORT", and becomes a member. Each request body is printed on
 *        stdout as {"type":"request","path":"/v1/join","body":{...}}.
 *   GET /v1/members  the fake itself and every joined address; a member is
 *        "suspect" for --alive-after after its join, then "alive".
 * --join-status CODE answers every join with CODE and {"error":"injected"}.
 * Stops on SIGINT/SIGTERM.
 */
#include "cli.h"
#include "clock.h"
#include "discover.h"
#include "http.h"
#include "jsonl.h"
#include "loop.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "fake-node [--join-status code] [--alive-after duration]"

struct fake {
	char addr[64];
	long join_status;
	int64_t alive_after;
	struct json_object *members; /* addr -> {name, joined (mono ms)} */
};

static void h_join(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	struct json_object *body = fd_http_json(req), *addrs, *log, *resp, *results;

	log = fd_json_record("request");
	json_object_object_add(log, "path",
			       json_object_new_string(fd_http_path(req)));
	json_object_object_add(log, "body", json_object_get(body));
	fd_emit(log);
	fd_emit_flush();
	json_object_put(log);
	if (f->join_status) {
		fd_http_reply_error(req, (unsigned)f->join_status, "injected");
		return;
	}
	if (!json_object_object_get_ex(body, "addrs", &addrs) ||
	    !json_object_is_type(addrs, json_type_array)) {
		fd_http_reply_error(req, 400, "expected {\"addrs\": [...]}");
		return;
	}
	results = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(addrs); i++) {
		const char *a = json_object_get_string(
			json_object_array_get_idx(addrs, i));
		const char *colon = strrchr(a, ':');
		struct json_object *r = json_object_new_object(), *m;
		char buf[64];

		json_object_object_add(r, "addr", json_object_new_string(a));
		if (colon && strcmp(colon, ":1") == 0) {
			json_object_object_add(r, "ok", json_object_new_boolean(0));
			json_object_object_add(
				r, "error",
				json_object_new_string("connection refused"));
		} else {
			json_object_object_add(r, "ok", json_object_new_boolean(1));
			snprintf(buf, sizeof(buf), "peer-%s",
				 colon ? colon + 1 : "x");
			json_object_object_add(r, "name",
					       json_object_new_string(buf));
			snprintf(buf, sizeof(buf), "id-%s", colon ? colon + 1 : "x");
			json_object_object_add(r, "id", json_object_new_string(buf));
			if (!json_object_object_get_ex(f->members, a, NULL)) {
				m = json_object_new_object();
				snprintf(buf, sizeof(buf), "peer-%s",
					 colon ? colon + 1 : "x");
				json_object_object_add(
					m, "name", json_object_new_string(buf));
				json_object_object_add(
					m, "joined",
					json_object_new_int64(fd_mono_ms()));
				json_object_object_add(f->members, a, m);
			}
		}
		json_object_array_add(results, r);
	}
	resp = json_object_new_object();
	json_object_object_add(resp, "results", results);
	fd_http_reply_json(req, 200, resp);
}

static struct json_object *member(const char *name, const char *addr, const char *state)
{
	struct json_object *m = fd_json_record("member");

	json_object_object_add(m, "name", json_object_new_string(name));
	json_object_object_add(m, "id", json_object_new_string(name));
	json_object_object_add(m, "addr", json_object_new_string(addr));
	json_object_object_add(m, "state", json_object_new_string(state));
	json_object_object_add(m, "incarnation", json_object_new_int(0));
	return m;
}

static void h_members(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	struct json_object *list = json_object_new_array(),
			   *resp = json_object_new_object();
	int64_t now = fd_mono_ms();

	json_object_array_add(list, member("fake", f->addr, "alive"));
	json_object_object_foreach(f->members, a, m)
	{
		int alive = now - fd_json_get_int(m, "joined", 0) >= f->alive_after;

		json_object_array_add(list, member(fd_json_get_str(m, "name"), a,
						   alive ? "alive" : "suspect"));
	}
	json_object_object_add(resp, "members", list);
	fd_http_reply_json(req, 200, resp);
}

static void on_stop(struct fd_loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	fd_loop_stop(loop);
}

static int listen_any(char *addr, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t salen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to listen: %m");
	snprintf(addr, len, "127.0.0.1:%d", ntohs(sa.sin_port));
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"join-status", required_argument, NULL, 'j'},
		{"alive-after", required_argument, NULL, 'a'},
		{0},
	};
	struct fake f = {0};
	struct fd_http_server_opts hopts = {0};
	struct fd_http_server *srv;
	struct fd_loop *loop;
	struct json_object *id;
	struct fd_err err;
	long long v;
	int c;

	fd_cli_init("fake-node", USAGE);
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (fd_parse_int(optarg, 100, 599, &v) < 0)
				fd_usage_die("invalid --join-status '%s'", optarg);
			f.join_status = (long)v;
			break;
		case 'a':
			if (fd_parse_duration(optarg, &f.alive_after) < 0)
				fd_usage_die("invalid --alive-after '%s'", optarg);
			break;
		default: fd_usage_getopt(c, argv);
		}
	}
	f.members = json_object_new_object();
	hopts.listen_fd = listen_any(f.addr, sizeof(f.addr));
	loop = fd_loop_new();
	if (!loop || fd_loop_signal(loop, SIGTERM, on_stop, NULL) < 0 ||
	    fd_loop_signal(loop, SIGINT, on_stop, NULL) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to set up the loop: %m");
	srv = fd_http_server_new(loop, &hopts, &err);
	if (!srv)
		fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
	fd_http_route(srv, "POST", "/v1/join", FD_HTTP_JSON, h_join, &f);
	fd_http_route(srv, "GET", "/v1/members", 0, h_members, &f);
	id = fd_json_record("node");
	json_object_object_add(id, "name", json_object_new_string("fake"));
	json_object_object_add(id, "addr", json_object_new_string(f.addr));
	json_object_object_add(id, "pid", json_object_new_int(getpid()));
	fd_emit(id);
	fd_emit_flush();
	json_object_put(id);
	fd_loop_run(loop);
	fd_http_server_free(srv);
	fd_loop_free(loop);
	json_object_put(f.members);
	return fd_finish_stdout(0);
}
