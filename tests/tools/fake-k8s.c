/* fake-k8s: a stand-in for the Kubernetes API server, for the tests of the
 * kubernetes strategy.
 *
 *   fake-k8s [--token TOKEN] DIR
 *
 * Listens on 127.0.0.1:0 and prints {"type":"node","addr":"127.0.0.1:PORT"}
 * as its first line. Then serves, reading the files at every request (so a
 * test swaps them with mv):
 *
 *   GET /api/v1/namespaces/NS/pods?labelSelector=S       DIR/NS/pods.json
 *   GET /api/v1/namespaces/NS/endpoints?labelSelector=S  DIR/NS/endpoints.json
 *   GET /api/v1/namespaces/NS/pods/NAME                  that pod of pods.json
 *
 * The list's items are filtered by the selector as the API server does for
 * equality-based selectors ("a=b,c==d,e!=f,g,!h" against metadata.labels).
 * A missing file is a 404 Status. While DIR/status holds a number (e.g.
 * 500), every request gets that status and a Status object. With --token,
 * a request without "Authorization: Bearer TOKEN" gets 401. Each request
 * is printed on stdout: {"type":"request","path":...,"selector":...,
 * "auth":true|false,"status":N}. Stops on SIGINT/SIGTERM.
 */
#include "cli.h"
#include "http.h"
#include "jsonl.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "fake-k8s [--token token] dir"

struct fake {
	const char *dir;
	const char *token;
};

static struct json_object *read_json(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;
	struct json_object *o;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	o = fd_json_parse(buf, (size_t)n, NULL);
	free(buf);
	return o;
}

static void reply_status(struct fd_http_req *req, unsigned code,
			 const char *reason, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string("Status"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(o, "metadata", json_object_new_object());
	json_object_object_add(o, "status", json_object_new_string("Failure"));
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "code", json_object_new_int((int)code));
	fd_http_reply_json(req, code, o);
}

/* One requirement of an equality-based selector against labels. */
static int requirement_ok(struct json_object *labels, const char *req)
{
	char key[256];
	const char *op = strpbrk(req, "=!"), *val = NULL;
	struct json_object *v;
	int neg = 0, have;

	if (req[0] == '!') {
		snprintf(key, sizeof(key), "%s", req + 1);
		return !json_object_object_get_ex(labels, key, NULL);
	}
	if (!op) {
		snprintf(key, sizeof(key), "%s", req);
		return json_object_object_get_ex(labels, key, NULL);
	}
	snprintf(key, sizeof(key), "%.*s", (int)(op - req), req);
	if (op[0] == '!' && op[1] == '=') {
		neg = 1;
		val = op + 2;
	} else if (op[1] == '=') {
		val = op + 2;
	} else {
		val = op + 1;
	}
	have = json_object_object_get_ex(labels, key, &v) &&
	       strcmp(json_object_get_string(v), val) == 0;
	return neg ? !have : have;
}

static int selected(struct json_object *item, const char *selector)
{
	struct json_object *md, *labels = NULL;
	char *copy, *save = NULL;
	int ok = 1;

	if (!selector || !*selector)
		return 1;
	if (json_object_object_get_ex(item, "metadata", &md))
		json_object_object_get_ex(md, "labels", &labels);
	copy = strdup(selector);
	for (char *r = strtok_r(copy, ",", &save); r && ok;
	     r = strtok_r(NULL, ",", &save))
		ok = requirement_ok(labels, r);
	free(copy);
	return ok;
}

static void log_request(struct fd_http_req *req, const char *selector, int auth,
			unsigned status)
{
	struct json_object *o = fd_json_record("request");

	json_object_object_add(o, "path", json_object_new_string(fd_http_path(req)));
	json_object_object_add(o, "selector",
			       selector ? json_object_new_string(selector) : NULL);
	json_object_object_add(o, "auth", json_object_new_boolean(auth));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	fd_emit(o);
	fd_emit_flush();
	json_object_put(o);
}

static void h_api(struct fd_http_req *req, void *arg)
{
	struct fake *f = arg;
	const char *sub = fd_http_subpath(req),
		   *selector = fd_http_query(req, "labelSelector");
	const char *authz = fd_http_header(req, "Authorization");
	char ns[128], kind[64], name[256], path[1024], want[512];
	struct json_object *list, *items, *out;
	int auth = 1, n;
	FILE *sf;

	if (f->token) {
		snprintf(want, sizeof(want), "Bearer %s", f->token);
		auth = authz && strcmp(authz, want) == 0;
	}
	snprintf(path, sizeof(path), "%s/status", f->dir);
	sf = fopen(path, "r");
	if (sf) {
		int code = 0;

		if (fscanf(sf, "%d", &code) != 1)
			code = 500;
		fclose(sf);
		log_request(req, selector, auth, (unsigned)code);
		reply_status(req, (unsigned)code, "InternalError",
			     "injected by the test");
		return;
	}
	if (!auth) {
		log_request(req, selector, auth, 401);
		reply_status(req, 401, "Unauthorized", "Unauthorized");
		return;
	}
	name[0] = '\0';
	n = sscanf(sub, "%127[^/]/%63[^/]/%255[^/]", ns, kind, name);
	if (n < 2 || (strcmp(kind, "pods") != 0 && strcmp(kind, "endpoints") != 0) ||
	    (n == 3 && strcmp(kind, "pods") != 0)) {
		log_request(req, selector, auth, 404);
		reply_status(req, 404, "NotFound",
			     "the server could not find the requested resource");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/%s.json", f->dir, ns, kind);
	list = read_json(path);
	if (!list || !json_object_object_get_ex(list, "items", &items)) {
		json_object_put(list);
		log_request(req, selector, auth, 404);
		reply_status(req, 404, "NotFound",
			     "no such file in the fake's directory");
		return;
	}
	if (n == 3) { /* one pod by name */
		for (size_t i = 0; i < json_object_array_length(items); i++) {
			struct json_object *it = json_object_array_get_idx(items, i),
					   *md;

			if (json_object_object_get_ex(it, "metadata", &md) &&
			    fd_json_get_str(md, "name") &&
			    strcmp(fd_json_get_str(md, "name"), name) == 0) {
				log_request(req, selector, auth, 200);
				fd_http_reply_json(req, 200, json_object_get(it));
				json_object_put(list);
				return;
			}
		}
		json_object_put(list);
		log_request(req, selector, auth, 404);
		snprintf(want, sizeof(want), "pods \"%s\" not found", name);
		reply_status(req, 404, "NotFound", want);
		return;
	}
	out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *it = json_object_array_get_idx(items, i);

		if (selected(it, selector))
			json_object_array_add(out, json_object_get(it));
	}
	json_object_object_add(list, "items", out);
	log_request(req, selector, auth, 200);
	fd_http_reply_json(req, 200, list);
}

static void on_stop(struct fd_loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	fd_loop_stop(loop);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"token", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct fake f = {0};
	struct fd_http_server_opts hopts = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct fd_http_server *srv;
	struct fd_loop *loop;
	struct fd_err err;
	struct json_object *id;
	char addr[64];
	int c, fd;

	fd_cli_init("fake-k8s", USAGE);
	while ((c = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': f.token = optarg; break;
		case 'h': fd_help_exit("\n");
		default: fd_usage_getopt(c, argv);
		}
	}
	if (optind + 1 != argc)
		fd_usage_die("one DIR expected");
	f.dir = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to listen: %s", strerror(errno));
	loop = fd_loop_new();
	if (!loop || fd_loop_signal(loop, SIGINT, on_stop, NULL) < 0 ||
	    fd_loop_signal(loop, SIGTERM, on_stop, NULL) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to set up the loop");
	hopts.listen_fd = fd;
	srv = fd_http_server_new(loop, &hopts, &err);
	if (!srv)
		fd_die(FD_EXIT_RUNTIME, "%s", err.msg);
	fd_http_route(srv, "GET", "/api/v1/namespaces/", 0, h_api, &f);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	id = fd_json_record("node");
	json_object_object_add(id, "addr", json_object_new_string(addr));
	fd_emit(id);
	fd_emit_flush();
	json_object_put(id);
	fd_loop_run(loop);
	fd_http_server_free(srv);
	fd_loop_free(loop);
	return fd_finish_stdout(0);
}
