/* Discovery specs and libcluster topologies. */
#include "dspec.h"
#include "jsonl.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

TEST(parse)
{
	struct fd_dspec sp;
	struct fd_err err;

	REQUIRE(fd_dspec_parse(&sp,
			       "  dns name=fd.test port=7946\tresolver=127.0.0.1:5353 "
			       "interval=2s ",
			       &err) == 0);
	CHECK_STR(sp.strategy, "dns");
	CHECK_EQ(sp.n, 4);
	CHECK_STR(fd_dspec_get(&sp, "name"), "fd.test");
	CHECK_STR(fd_dspec_get(&sp, "resolver"), "127.0.0.1:5353");
	CHECK(fd_dspec_get(&sp, "nope") == NULL);
	fd_dspec_release(&sp);

	/* Quotes: "..." with \" and \\, '...' as it is, pieces glued. */
	REQUIRE(fd_dspec_parse(&sp,
			       "exec cmd=\"echo \\\"a b\\\" \\\\\" x='it''s' y=a\"b c\"d "
			       "e=",
			       &err) == 0);
	CHECK_STR(fd_dspec_get(&sp, "cmd"), "echo \"a b\" \\");
	CHECK_STR(fd_dspec_get(&sp, "x"), "its");
	CHECK_STR(fd_dspec_get(&sp, "y"), "ab cd");
	CHECK_STR(fd_dspec_get(&sp, "e"), "");
	fd_dspec_release(&sp);

	/* go-discover's provider= form. */
	REQUIRE(fd_dspec_parse(&sp, "provider=kubernetes selector=app=fd", &err) == 0);
	CHECK_STR(sp.strategy, "kubernetes");
	CHECK_STR(fd_dspec_get(&sp, "selector"), "app=fd");
	fd_dspec_release(&sp);
}

TEST(parse_errors)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{"", "invalid spec: no strategy (expected STRATEGY key=value ...)"},
		{"name=x",
		 "invalid spec: no strategy (expected STRATEGY key=value ...)"},
		{"DNS name=x", "invalid spec: 'DNS' is not a strategy name"},
		{"dns name", "invalid spec: 'name' is not key=value"},
		{"dns =x", "invalid spec: '=x' is not key=value"},
		{"dns Name=x", "invalid spec: 'Name=x' is not key=value"},
		{"dns a=1 a=2", "invalid spec: 'a' given twice"},
		{"exec cmd='x", "invalid spec: unclosed quote"},
		{"exec cmd=\"x\\\"", "invalid spec: unclosed quote"},
		{"provider=Nope x=1", "invalid spec: 'Nope' is not a strategy name"},
	};
	struct fd_dspec sp;
	struct fd_err err;
	char big[FD_DSPEC_MAX_LEN + 8], *p = big;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(fd_dspec_parse(&sp, bad[i].spec, &err), -1);
		CHECK_STR(err.msg, bad[i].msg);
		fd_dspec_release(&sp);
	}
	p += sprintf(p, "dns");
	for (int i = 0; i <= FD_DSPEC_MAX; i++)
		p += sprintf(p, " k%d=v", i);
	CHECK_EQ(fd_dspec_parse(&sp, big, &err), -1);
	CHECK_STR(err.msg, "invalid spec: more than 32 settings");
	fd_dspec_release(&sp);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(fd_dspec_parse(&sp, big, &err), -1);
	CHECK_STR(err.msg, "invalid spec: longer than 4096 bytes");
	fd_dspec_release(&sp);
}

TEST(check_and_values)
{
	static const char *const keys[] = {"name", "port", NULL};
	struct fd_dspec sp;
	struct fd_err err;
	int64_t ms;
	long long v;

	REQUIRE(fd_dspec_parse(&sp, "dns name=x interval=250ms down_after=2 port=99",
			       &err) == 0);
	CHECK_EQ(fd_dspec_check(&sp, keys, &err), 0);
	CHECK_EQ(fd_dspec_duration(&sp, "interval", 5000, 10, 60000, &ms, &err), 0);
	CHECK_EQ(ms, 250);
	CHECK_EQ(fd_dspec_duration(&sp, "missing", 5000, 10, 60000, &ms, &err), 0);
	CHECK_EQ(ms, 5000);
	CHECK_EQ(fd_dspec_int(&sp, "port", 4380, 1, 65535, &v, &err), 0);
	CHECK_EQ(v, 99);
	CHECK_EQ(fd_dspec_int(&sp, "port", 4380, 100, 65535, &v, &err), -1);
	CHECK_STR(err.msg, "invalid port '99' (100 to 65535)");
	fd_dspec_release(&sp);
	REQUIRE(fd_dspec_parse(&sp, "dns nam=x", &err) == 0);
	CHECK_EQ(fd_dspec_check(&sp, keys, &err), -1);
	CHECK_STR(err.msg,
		  "unknown key 'nam' for dns (known: name, port, interval, down_after)");
	fd_dspec_release(&sp);
	REQUIRE(fd_dspec_parse(&sp, "dns interval=fast", &err) == 0);
	CHECK_EQ(fd_dspec_duration(&sp, "interval", 5000, 10, 86400000, &ms, &err),
		 -1);
	CHECK_STR(err.msg, "invalid interval 'fast' (a duration from 10ms to 86400s)");
	fd_dspec_release(&sp);
}

/* Randomized: format then parse gives the same spec back. */
TEST(format_roundtrip)
{
	static const char chars[] = "ab=,:'\" \\\t.-_x9";
	char text[FD_DSPEC_MAX_LEN + 1];

	for (int round = 0; round < 500 && !unit_failed; round++) {
		struct fd_dspec a = {0}, b;
		struct fd_err err;
		size_t n = unit_rand_below(6);

		REQUIRE(fd_dspec_set_strategy(&a, "exec") == 0);
		for (size_t i = 0; i < n; i++) {
			char key[24], val[24];
			size_t vl = unit_rand_below(sizeof(val));

			snprintf(key, sizeof(key), "k%zu", i);
			for (size_t j = 0; j < vl; j++)
				val[j] = chars[unit_rand_below(sizeof(chars) - 1)];
			val[vl] = '\0';
			REQUIRE(fd_dspec_set(&a, key, val) == 0);
		}
		REQUIRE(fd_dspec_format(&a, text, sizeof(text)) == 0);
		if (fd_dspec_parse(&b, text, &err) != 0) {
			unit_fail(__FILE__, __LINE__, "'%s': %s", text, err.msg);
		} else {
			CHECK_STR(b.strategy, "exec");
			CHECK_EQ(b.n, a.n);
			for (size_t i = 0; i < a.n; i++)
				CHECK_STR(fd_dspec_get(&b, a.keys[i]), a.vals[i]);
		}
		fd_dspec_release(&a);
		fd_dspec_release(&b);
	}
	{
		struct fd_dspec a = {0};
		char tiny[8];

		REQUIRE(fd_dspec_set_strategy(&a, "static") == 0);
		REQUIRE(fd_dspec_set(&a, "addrs", "a:1,b:2") == 0);
		CHECK_EQ(fd_dspec_format(&a, tiny, sizeof(tiny)), -1);
		CHECK_EQ(errno, ENOSPC);
		fd_dspec_release(&a);
	}
}

static int lc(const char *json, char *out, size_t len, char *note, struct fd_err *err)
{
	struct json_object *o = fd_json_parse(json, strlen(json), NULL);
	struct fd_dspec sp;
	int rc = fd_dspec_from_libcluster(&sp, o, note, 128, err);

	if (rc == 0)
		fd_dspec_format(&sp, out, len);
	fd_dspec_release(&sp);
	json_object_put(o);
	return rc;
}

TEST(libcluster)
{
	static const struct {
		const char *json, *spec;
	} good[] = {
		{"{\"strategy\":\"Cluster.Strategy.Kubernetes\",\"config\":{"
		 "\"kubernetes_selector\":\"app=fd\",\"kubernetes_namespace\":\"prod\","
		 "\"kubernetes_node_basename\":\"fd\",\"kubernetes_ip_lookup_mode\":\":pods\","
		 "\"mode\":\":ip\",\"polling_interval\":10000,\"port\":7946}}",
		 "kubernetes selector=app=fd namespace=prod basename=fd mode=pods "
		 "interval=10000ms port=7946"},
		{"{\"strategy\":\"Elixir.Cluster.Strategy.Kubernetes\",\"config\":{"
		 "\"kubernetes_selector\":\"app=fd\",\"kubernetes_master\":\"k8s.local:6443\","
		 "\"kubernetes_use_cached_resources\":true,"
		 "\"kubernetes_service_account_path\":\"/sa\"}}",
		 "kubernetes selector=app=fd api=https://k8s.local:6443 cached=true sa_dir=/sa"},
		{"{\"strategy\":\"DNSPoll\",\"config\":{\"query\":\"fd.example.com\","
		 "\"node_basename\":\"fd\",\"polling_interval\":\"2s\"}}",
		 "dns name=fd.example.com basename=fd interval=2s"},
		{"{\"strategy\":\"Cluster.Strategy.Kubernetes.DNSSRV\",\"config\":{"
		 "\"service\":\"fd-headless\",\"namespace\":\"prod\","
		 "\"application_name\":\"fd\"}}",
		 "dns-srv basename=fd name=fd-headless.prod.svc.cluster.local"},
		{"{\"strategy\":\"Kubernetes.DNS\",\"config\":{\"service\":\"fd-headless\","
		 "\"application_name\":\"fd\",\"port\":4380}}",
		 "dns name=fd-headless basename=fd port=4380"},
		{"{\"strategy\":\"Epmd\",\"config\":{\"hosts\":[\"a@10.0.0.1\",\"10.0.0.2:4381\"]}}",
		 "static addrs=10.0.0.1,10.0.0.2:4381"},
		{"{\"strategy\":\"Gossip\",\"config\":{\"multicast_addr\":\"230.1.1.251\","
		 "\"port\":45892,\"if_addr\":\"0.0.0.0\",\"multicast_ttl\":1}}",
		 "gossip multicast_addr=230.1.1.251 port=45892 if_addr=0.0.0.0 multicast_ttl=1"},
		{"{\"strategy\":\"dns\",\"config\":{\"name\":\"fd.test\",\"polling_interval\":500}}",
		 "dns name=fd.test interval=500ms"},
		{"{\"strategy\":\"exec\",\"config\":{\"cmd\":\"cat /etc/peers\"}}",
		 "exec cmd=\"cat /etc/peers\""},
		{"{\"strategy\":\"static\"}", "static"},
	};
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"strategy\":\"Cluster.Strategy.Rancher\"}",
		 "strategy 'Cluster.Strategy.Rancher' has no fd equivalent: Rancher's "
		 "metadata service is not supported"},
		{"{\"strategy\":\"Consul\"}", "unknown strategy 'Consul'"},
		{"{\"config\":{}}", "a topology needs a \"strategy\" string"},
		{"{\"strategy\":\"dns\",\"config\":[]}", "\"config\" must be an object"},
		{"{\"strategy\":\"dns\",\"connect\":{}}",
		 "unknown topology field 'connect' (strategy, config)"},
		{"{\"strategy\":\"Kubernetes\",\"config\":{\"mode\":\"dns\"}}",
		 "option 'mode' of Kubernetes: 'dns' is not supported (only ip: fd peers "
		 "are addresses, not Erlang host names)"},
		{"{\"strategy\":\"Epmd\",\"config\":{\"hosts\":\"a@b\"}}",
		 "option 'hosts' of Epmd must be a list of hosts"},
		{"{\"strategy\":\"Kubernetes\",\"config\":{\"kubernetes_selector\":[1]}}",
		 "option 'kubernetes_selector' of Kubernetes must be a string or a number"},
		{"{\"strategy\":\"Kubernetes\",\"config\":{\"Weird Key\":1}}",
		 "unknown option 'Weird Key' for Kubernetes"},
		{"{\"strategy\":\"Kubernetes\",\"config\":{\"kubernetes_use_cached_resources\":1}}",
		 "option 'kubernetes_use_cached_resources' of Kubernetes must be true or false"},
	};
	char out[1024], note[128];
	struct fd_err err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (lc(good[i].json, out, sizeof(out), note, &err) < 0) {
			unit_fail(__FILE__, __LINE__, "%s: %s", good[i].json,
				  err.msg);
			continue;
		}
		CHECK_STR(out, good[i].spec);
	}
	CHECK_EQ(lc(good[0].json, out, sizeof(out), note, &err), 0);
	CHECK_STR(note, "Cluster.Strategy.Kubernetes is fd's kubernetes");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(lc(bad[i].json, out, sizeof(out), note, &err), -1);
		CHECK_STR(err.msg, bad[i].msg);
	}
}
