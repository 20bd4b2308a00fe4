/* Kubernetes answers into peers: the recorded lists in tests/data/k8s/,
 * hostile shapes, and random pod lists against a model of readiness. */
#include "dspec.h"
#include "jsonl.h"
#include "k8s.h"
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* tests/data/k8s/NAME: from $FD_ROOT, else from the executable's place
 * (BUILD/tests/test_k8s, BUILD being build/asan or build/release). */
static char *load(const char *name, size_t *len)
{
	char exe[PATH_MAX], path[PATH_MAX + 64], *buf;
	const char *root = getenv("FD_ROOT");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f;
	long sz;

	if (root)
		snprintf(path, sizeof(path), "%s/tests/data/k8s/%s", root, name);
	else {
		if (n < 0)
			return NULL;
		exe[n] = '\0';
		if (strrchr(exe, '/'))
			*strrchr(exe, '/') = '\0';
		snprintf(path, sizeof(path), "%s/../../../tests/data/k8s/%s",
			 exe, name);
	}
	f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)sz + 1);
	if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[sz] = '\0';
		*len = (size_t)sz;
	}
	return buf;
}

struct got {
	char text[4096];
	int n;
};

static int collect(const char *addr, const char *name, struct json_object *meta,
		   void *arg)
{
	struct got *g = arg;
	size_t l = strlen(g->text);

	snprintf(g->text + l, sizeof(g->text) - l, "%s %s %s\n", addr,
		 name ? name : "-",
		 meta ? json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN)
		      : "-");
	g->n++;
	return 0;
}

static void config(struct fd_k8s *k, enum fd_k8s_mode mode)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->selector, sizeof(k->selector), "app=fd");
	snprintf(k->ns, sizeof(k->ns), "prod");
	snprintf(k->port_name, sizeof(k->port_name), "fd");
	k->mode = mode;
}

TEST(pods_recorded)
{
	struct fd_k8s k;
	struct fd_k8s_stats st;
	struct got g = {0};
	size_t len;
	char *body = load("pods.json", &len);

	REQUIRE(body != NULL);
	config(&k, FD_K8S_PODS);
	CHECK_EQ(fd_k8s_parse(&k, body, len, collect, &g, &st, NULL), 2);
	CHECK_STR(g.text,
		  "10.244.0.12:4380 fd-0 "
		  "{\"namespace\":\"prod\",\"pod\":\"fd-0\",\"node\":\"worker-a\",\"ip\":\"10.244.0.12\"}\n"
		  "[fd00::4]:7946 fd-4 "
		  "{\"namespace\":\"prod\",\"pod\":\"fd-4\",\"node\":\"worker-c\",\"ip\":\"fd00::4\"}\n");
	CHECK_EQ(st.items, 6);
	CHECK_EQ(st.not_ready, 3); /* Ready=False, Pending, Succeeded */
	CHECK_EQ(st.terminating, 1);
	CHECK_EQ(st.no_ip, 0);
	/* An explicit port wins; a basename names peers BASENAME@IP. */
	k.port = 5000;
	snprintf(k.basename, sizeof(k.basename), "fd");
	g.text[0] = '\0';
	CHECK_EQ(fd_k8s_parse(&k, body, len, collect, &g, &st, NULL), 2);
	CHECK(strstr(g.text, "10.244.0.12:5000 fd@10.244.0.12 ") == g.text);
	CHECK(strstr(g.text, "\n[fd00::4]:5000 fd@fd00::4 ") != NULL);
	free(body);
}

TEST(endpoints_recorded)
{
	struct fd_k8s k;
	struct fd_k8s_stats st;
	struct got g = {0};
	size_t len;
	char *body = load("endpoints.json", &len);

	REQUIRE(body != NULL);
	config(&k, FD_K8S_ENDPOINTS);
	CHECK_EQ(fd_k8s_parse(&k, body, len, collect, &g, &st, NULL), 3);
	CHECK_STR(g.text,
		  "10.244.0.12:4380 fd-0 "
		  "{\"namespace\":\"prod\",\"pod\":\"fd-0\",\"node\":\"worker-a\",\"ip\":\"10.244.0.12\",\"service\":\"fd\"}\n"
		  "10.244.2.5:4380 fd-4 "
		  "{\"namespace\":\"prod\",\"pod\":\"fd-4\",\"node\":\"worker-c\",\"ip\":\"10.244.2.5\",\"service\":\"fd\"}\n"
		  "10.244.3.3:4380 - "
		  "{\"namespace\":\"prod\",\"ip\":\"10.244.3.3\",\"service\":\"fd-admin\"}\n");
	CHECK_EQ(st.items, 2);
	CHECK_EQ(st.not_ready, 1); /* notReadyAddresses are never peers */
	/* The port named "http" instead. */
	snprintf(k.port_name, sizeof(k.port_name), "http");
	g.text[0] = '\0';
	CHECK_EQ(fd_k8s_parse(&k, body, len, collect, &g, &st, NULL), 3);
	CHECK(strstr(g.text, "10.244.0.12:8080 ") == g.text);
	CHECK(strstr(g.text, "10.244.3.3:4380 ") != NULL);
	free(body);
}

TEST(wrong_answers)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{}",
		"{\"items\":5}",
		"{\"kind\":\"Status\",\"items\":[]}",
		"{\"items\":[",
		"null",
		"{\"kind\":\"PodList\",\"items\":[]} x",
	};
	struct fd_k8s k;
	struct fd_k8s_stats st;
	struct fd_err err;
	struct got g = {0};
	size_t len;
	char *body = load("endpoints.json", &len);

	REQUIRE(body != NULL);
	config(&k, FD_K8S_PODS);
	CHECK_EQ(fd_k8s_parse(&k, body, len, collect, &g, &st, &err), -1);
	CHECK_STR(err.msg, "unexpected answer from the kubernetes API: not a PodList");
	free(body);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(fd_k8s_parse(&k, bad[i], strlen(bad[i]), collect, &g,
				      &st, &err),
			 -1);
	/* Odd items are skipped, not fatal: wrong types, bad IPs. */
	{
		const char *odd =
			"{\"kind\":\"PodList\",\"items\":[5,{},{\"status\":{\"phase\":\"Running\","
			"\"podIP\":\"not-an-ip\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}},"
			"{\"metadata\":7,\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\","
			"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}]}";

		g.text[0] = '\0';
		CHECK_EQ(fd_k8s_parse(&k, odd, strlen(odd), collect, &g, &st, &err),
			 1);
		CHECK_STR(g.text, "10.0.0.1:4380 - {\"ip\":\"10.0.0.1\"}\n");
		CHECK_EQ(st.items, 4);
		CHECK_EQ(st.bad_ip, 1);
	}
	/* An empty list parses: 0 peers, for the caller to refuse. */
	{
		char *empty = load("pods-empty.json", &len);

		REQUIRE(empty != NULL);
		CHECK_EQ(fd_k8s_parse(&k, empty, len, collect, &g, &st, &err), 0);
		free(empty);
	}
}

TEST(messages)
{
	struct fd_k8s k;
	struct fd_k8s_stats st = {.items = 3, .not_ready = 2, .terminating = 1};
	char out[512];
	size_t len;
	char *body = load("status-403.json", &len);

	REQUIRE(body != NULL);
	fd_k8s_status_error(403, body, len, out, sizeof(out));
	CHECK_STR(out, "kubernetes API answered 403: pods is forbidden: User "
		       "\"system:serviceaccount:prod:default\" cannot list resource "
		       "\"pods\" in API group \"\" in the namespace \"prod\"");
	fd_k8s_status_error(500, "oops", 4, out, sizeof(out));
	CHECK_STR(out, "kubernetes API answered 500");
	free(body);
	config(&k, FD_K8S_PODS);
	fd_k8s_empty_error(&k, &st, out, sizeof(out));
	CHECK_STR(out, "no ready pods match 'app=fd' in namespace 'prod' (3 pods: 2 "
		       "not ready, 1 terminating, 0 without an IP)");
	st.items = 0;
	fd_k8s_empty_error(&k, &st, out, sizeof(out));
	CHECK_STR(out, "no pods match 'app=fd' in namespace 'prod'");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

TEST(config_and_requests)
{
	char dir[] = "/tmp/fd-k8s-XXXXXX", path[128], buf[2048];
	struct fd_dspec sp;
	struct fd_k8s k;
	struct fd_err err;

	REQUIRE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/namespace", dir);
	write_file(path, "prod\n");
	snprintf(path, sizeof(path), "%s/token", dir);
	write_file(path, "  eyJhbGciOi.payload.sig \n");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	snprintf(buf, sizeof(buf),
		 "kubernetes selector='app=fd,tier in (a,b)' sa_dir=%s", dir);
	REQUIRE(fd_dspec_parse(&sp, buf, &err) == 0);
	CHECK_EQ(fd_k8s_config(&k, &sp, &err), 0);
	fd_dspec_release(&sp);
	CHECK_STR(k.ns, "prod");
	CHECK_STR(k.api, "https://10.96.0.1:443");
	CHECK_EQ(k.mode, FD_K8S_ENDPOINTS);
	CHECK_STR(k.ca_file, ""); /* none there: the system's */
	CHECK_EQ(fd_k8s_url(&k, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "https://10.96.0.1:443/api/v1/namespaces/prod/endpoints?"
		       "labelSelector=app%3Dfd%2Ctier%20in%20%28a%2Cb%29");
	CHECK_EQ(fd_k8s_auth(&k, buf, sizeof(buf), &err), 0);
	CHECK_STR(buf, "Authorization: Bearer eyJhbGciOi.payload.sig");

	/* Flags win over the files and the environment. */
	snprintf(buf, sizeof(buf),
		 "kubernetes selector=app=fd namespace=dev mode=pods api=http://127.0.0.1:8001/ "
		 "sa_dir=%s cached=true token_file=%s/none",
		 dir, dir);
	REQUIRE(fd_dspec_parse(&sp, buf, &err) == 0);
	CHECK_EQ(fd_k8s_config(&k, &sp, &err), 0);
	fd_dspec_release(&sp);
	CHECK_EQ(fd_k8s_url(&k, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "http://127.0.0.1:8001/api/v1/namespaces/dev/pods?"
		       "labelSelector=app%3Dfd&resourceVersion=0");
	CHECK_EQ(fd_k8s_auth(&k, buf, sizeof(buf), &err), -1);
	CHECK(strstr(err.msg, "unable to read the token") == err.msg);

	/* What is missing or wrong is named. */
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{"kubernetes namespace=x",
		 "kubernetes needs a label selector (selector=, e.g. app=fd)"},
		{"kubernetes selector=a=b namespace=X_y", "invalid namespace 'X_y'"},
		{"kubernetes selector=a=b namespace=x mode=nodes",
		 "invalid mode 'nodes' (endpoints, pods)"},
		{"kubernetes selector=a=b namespace=x port=0",
		 "invalid port '0' (1 to 65535)"},
		{"kubernetes selector=a=b namespace=x api=ftp://h",
		 "invalid api 'ftp://h' (expected http[s]://HOST[:PORT])"},
		{"kubernetes selector=a=b namespace=x cached=yes",
		 "invalid cached 'yes' (true, false)"},
		{"kubernetes selector=a=b sa_dir=/nonexistent",
		 "no namespace= given and unable to read '/nonexistent/namespace': No such file or directory"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REQUIRE(fd_dspec_parse(&sp, bad[i].spec, &err) == 0);
		CHECK_EQ(fd_k8s_config(&k, &sp, &err), -1);
		CHECK_STR(err.msg, bad[i].msg);
		fd_dspec_release(&sp);
	}
	unsetenv("KUBERNETES_SERVICE_HOST");
	REQUIRE(fd_dspec_parse(&sp, "kubernetes selector=a=b namespace=x", &err) == 0);
	CHECK_EQ(fd_k8s_config(&k, &sp, &err), -1);
	CHECK_STR(err.msg, "no api= given and KUBERNETES_SERVICE_HOST is not set");
	fd_dspec_release(&sp);
	unsetenv("KUBERNETES_SERVICE_PORT");
	snprintf(path, sizeof(path), "%s/namespace", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/token", dir);
	unlink(path);
	rmdir(dir);
}

/* Random pod lists: the peers are exactly the pods the model calls ready. */
TEST(pods_model)
{
	static const char *const phases[] = {"Running", "Pending", "Succeeded",
					     "Failed", "Unknown"};
	struct fd_k8s k;
	struct fd_k8s_stats st;

	config(&k, FD_K8S_PODS);
	for (int round = 0; round < 300 && !unit_failed; round++) {
		struct json_object *list = json_object_new_object(),
				   *items = json_object_new_array();
		int n = (int)unit_rand_below(12), want = 0;
		struct got g = {0};
		const char *text;

		json_object_object_add(list, "kind",
				       json_object_new_string("PodList"));
		json_object_object_add(list, "items", items);
		for (int i = 0; i < n; i++) {
			struct json_object *pod = json_object_new_object(),
					   *md = json_object_new_object(),
					   *status = json_object_new_object(),
					   *conds = json_object_new_array();
			const char *phase = phases[unit_rand_below(5)];
			int ready = (int)unit_rand_below(3),
			    ip = unit_rand_below(4) != 0,
			    deleting = unit_rand_below(5) == 0;
			char name[16], addr[32];

			snprintf(name, sizeof(name), "p%d", i);
			snprintf(addr, sizeof(addr), "10.1.%d.%d", round % 250,
				 i + 1);
			json_object_object_add(md, "name",
					       json_object_new_string(name));
			if (deleting)
				json_object_object_add(
					md, "deletionTimestamp",
					json_object_new_string("2024-01-01T00:00:00Z"));
			json_object_object_add(status, "phase",
					       json_object_new_string(phase));
			if (ready) { /* 1: Ready=True, 2: Ready=False */
				struct json_object *c = json_object_new_object();

				json_object_object_add(
					c, "type", json_object_new_string("Ready"));
				json_object_object_add(
					c, "status",
					json_object_new_string(
						ready == 1 ? "True" : "False"));
				json_object_array_add(conds, c);
			}
			json_object_object_add(status, "conditions", conds);
			if (ip)
				json_object_object_add(status, "podIP",
						       json_object_new_string(addr));
			json_object_object_add(pod, "metadata", md);
			json_object_object_add(pod, "status", status);
			json_object_array_add(items, pod);
			want += !deleting && strcmp(phase, "Running") == 0 &&
				ready == 1 && ip;
		}
		text = json_object_to_json_string(list);
		CHECK_EQ(fd_k8s_parse(&k, text, strlen(text), collect, &g, &st, NULL),
			 want);
		CHECK_EQ(st.items, (unsigned)n);
		CHECK_EQ(st.items - st.not_ready - st.terminating - st.no_ip,
			 (unsigned)want);
		json_object_put(list);
	}
}
