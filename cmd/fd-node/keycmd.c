/* fd-node keygen and fd-node keys: a new key file, and the key ring of a
 * running cluster through the local node's /v1/keys. */
#include "auth.h"
#include "cli.h"
#include "client.h"
#include "jsonl.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char keygen_help[] =
	"\n"
	"Writes a new cluster key (32 random bytes, base64) to FILE with mode 0600,\n"
	"or to stdout without FILE. An existing FILE is left alone unless --force.\n"
	"\n"
	"      --force             replace an existing FILE\n"
	"  -h, --help              show this help\n";

/* Writes text to path with mode 0600: created exclusively, or (force) as a
 * temporary file renamed over it. 0, or -1 with errno. */
static int write_new(const char *path, const char *text, int force)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd, e;

	if (!force) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	} else {
		if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
		    (int)sizeof(tmp)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = mkostemp(tmp, O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0600) < 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) < 0 || close(fd) < 0 || (force && rename(tmp, path) < 0)) {
		e = errno;
		close(fd);
		unlink(force ? tmp : path);
		errno = e;
		return -1;
	}
	return 0;
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct fd_key k;
	struct fd_err err;
	char line[FD_KEY_B64_LEN + 2];
	int c, force = 0;
	const char *path = NULL;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'h': fd_help_exit(keygen_help);
		default: fd_usage_getopt(c, argv);
		}
	}
	if (optind < argc)
		path = argv[optind++];
	if (optind < argc)
		fd_usage_die("unexpected argument '%s'", argv[optind]);
	if (fd_key_generate(&k, &err) < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to generate a key: %s", err.msg);
	fd_key_format(&k, line);
	line[FD_KEY_B64_LEN] = '\n';
	line[FD_KEY_B64_LEN + 1] = '\0';
	OPENSSL_cleanse(&k, sizeof(k));
	if (!path || strcmp(path, "-") == 0) {
		fputs(line, stdout);
		OPENSSL_cleanse(line, sizeof(line));
		return fd_finish_stdout(FD_EXIT_OK);
	}
	if (write_new(path, line, force) < 0) {
		int e = errno;

		OPENSSL_cleanse(line, sizeof(line));
		if (e == EEXIST)
			fd_die(FD_EXIT_CONFLICT,
			       "'%s' exists already (--force replaces it)", path);
		fd_die(FD_EXIT_RUNTIME, "unable to write '%s': %s", path,
		       strerror(e));
	}
	OPENSSL_cleanse(line, sizeof(line));
	return FD_EXIT_OK;
}

static const char keys_help[] =
	"\n"
	"The cluster's key ring, through the local node, which passes every change\n"
	"on to each live member and reports, one JSON line per member, whether it\n"
	"confirmed (exit 1 if any did not). Each node saves its ring to its\n"
	"--key-file.\n"
	"\n"
	"  list                    one JSON line per key id: the members holding it\n"
	"                          and those using it as their primary key\n"
	"  install KEY             add KEY (base64, as fd-node keygen writes; '-'\n"
	"                          reads it from stdin) as an accepted key\n"
	"  use KEYID               make the installed key KEYID the primary key\n"
	"  remove KEYID            drop KEYID (not the primary)\n"
	"\n"
	"Rotation: install NEW, use NEWID, remove OLDID, each on the whole cluster\n"
	"before the next.\n"
	"\n"
	"  -n, --node HOST:PORT    the node to ask (default $FD_NODE, else 127.0.0.1:4380)\n"
	"  -t, --timeout DURATION  how long to wait for the answer (default 10s)\n"
	"  -h, --help              show this help\n";

static int exit_for(long status)
{
	switch (status) {
	case 404: return FD_EXIT_NOTFOUND;
	case 409: return FD_EXIT_CONFLICT;
	default: return FD_EXIT_RUNTIME;
	}
}

static struct json_object *call(const char *node, int64_t timeout,
				const char *method, struct json_object *body)
{
	struct fd_client client;
	struct json_object *resp = NULL, *results;
	struct fd_err err;
	long status = 0;

	if (fd_client_init(&client, fd_node_addr(node), timeout, &err) < 0)
		fd_usage_die("%s", err.msg);
	if (fd_client_call_ok(&client, method, "/v1/keys", body, &status, &resp,
			      &err) < 0) {
		json_object_put(resp);
		fd_client_release(&client);
		fd_die(status == 0 && errno == ETIMEDOUT ? FD_EXIT_TIMEOUT
		       : status				 ? exit_for(status)
							 : FD_EXIT_RUNTIME,
		       "%s", err.msg);
	}
	fd_client_release(&client);
	if (!json_object_object_get_ex(resp, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		fd_die(FD_EXIT_RUNTIME, "unexpected answer from '%s'",
		       fd_node_addr(node));
	return resp;
}

static int failed(struct json_object *res)
{
	struct json_object *v;

	if (json_object_object_get_ex(res, "ok", &v) && json_object_get_boolean(v))
		return 0;
	fd_warn("member '%s' did not confirm: %s", fd_json_get_str(res, "name"),
		fd_json_get_str(res, "error") ? fd_json_get_str(res, "error")
					      : "no answer");
	return 1;
}

static int keys_list(const char *node, int64_t timeout)
{
	struct json_object *resp = call(node, timeout, "GET", NULL), *results,
			   *byid = json_object_new_object(),
			   *order = json_object_new_array();
	int bad = 0, answered = 0;

	json_object_object_get_ex(resp, "results", &results);
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		struct json_object *res = json_object_array_get_idx(results, i),
				   *keys;
		const char *name = fd_json_get_str(res, "name"),
			   *primary = fd_json_get_str(res, "primary");

		if (failed(res)) {
			bad = 1;
			continue;
		}
		answered++;
		if (!json_object_object_get_ex(res, "keys", &keys))
			continue;
		for (size_t k = 0; k < json_object_array_length(keys); k++) {
			const char *id = json_object_get_string(
				json_object_array_get_idx(keys, k));
			struct json_object *o, *arr;

			if (!id)
				continue;
			if (!json_object_object_get_ex(byid, id, &o)) {
				o = fd_json_record("key");
				json_object_object_add(o, "id",
						       json_object_new_string(id));
				json_object_object_add(o, "members",
						       json_object_new_array());
				json_object_object_add(o, "primary_on",
						       json_object_new_array());
				json_object_object_add(byid, id, o);
				json_object_array_add(order,
						      json_object_new_string(id));
			}
			json_object_object_get_ex(o, "members", &arr);
			json_object_array_add(arr, json_object_new_string(name));
			if (primary && strcmp(primary, id) == 0) {
				json_object_object_get_ex(o, "primary_on", &arr);
				json_object_array_add(
					arr, json_object_new_string(name));
			}
		}
	}
	for (size_t i = 0; i < json_object_array_length(order); i++) {
		const char *id = json_object_get_string(
			json_object_array_get_idx(order, i));
		struct json_object *o, *m, *p;

		json_object_object_get_ex(byid, id, &o);
		json_object_object_get_ex(o, "members", &m);
		json_object_object_get_ex(o, "primary_on", &p);
		json_object_object_add(
			o, "primary",
			json_object_new_boolean((int)json_object_array_length(p) ==
						answered));
		json_object_object_add(
			o, "holders",
			json_object_new_int((int)json_object_array_length(m)));
		json_object_object_add(o, "answered", json_object_new_int(answered));
		fd_emit(o);
	}
	json_object_put(order);
	json_object_put(byid);
	json_object_put(resp);
	return fd_finish_stdout(bad ? FD_EXIT_RUNTIME : FD_EXIT_OK);
}

static int keys_change(const char *node, int64_t timeout, const char *op,
		       const char *arg)
{
	struct json_object *body = json_object_new_object(), *resp, *results;
	char text[256], *p;
	struct fd_key k;
	struct fd_err err;
	uint32_t id;
	int bad = 0;

	json_object_object_add(body, "op", json_object_new_string(op));
	if (strcmp(op, "install") == 0) {
		if (strcmp(arg, "-") == 0) {
			if (!fgets(text, sizeof(text), stdin))
				fd_die(FD_EXIT_DATA, "no key on stdin");
			p = text;
		} else {
			snprintf(text, sizeof(text), "%s", arg);
			p = text;
		}
		if (fd_key_parse(p, &k, &err) < 0)
			fd_usage_die("invalid KEY: %s", err.msg);
		fd_key_format(&k, text);
		OPENSSL_cleanse(&k, sizeof(k));
		json_object_object_add(body, "key", json_object_new_string(text));
		OPENSSL_cleanse(text, sizeof(text));
	} else {
		if (fd_key_id_parse(arg, &id) < 0)
			fd_usage_die("invalid KEYID '%s' (8 hex digits, as "
				     "'fd-node keys list' shows)",
				     arg);
		json_object_object_add(body, "id", json_object_new_string(arg));
	}
	resp = call(node, timeout, "POST", body);
	json_object_put(body);
	json_object_object_get_ex(resp, "results", &results);
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		struct json_object *res = json_object_array_get_idx(results, i),
				   *o = fd_json_record("key_change");

		json_object_object_add(o, "op", json_object_new_string(op));
		json_object_object_foreach(res, key, v)
		{
			json_object_object_add(o, key, json_object_get(v));
		}
		fd_emit(o);
		json_object_put(o);
		bad |= failed(res);
	}
	json_object_put(resp);
	return fd_finish_stdout(bad ? FD_EXIT_RUNTIME : FD_EXIT_OK);
}

int cmd_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *node = NULL, *action;
	int64_t timeout = 10000;
	int c, want;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 't':
			if (fd_parse_duration(optarg, &timeout) < 0 || timeout == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case 'h': fd_help_exit(keys_help);
		default: fd_usage_getopt(c, argv);
		}
	}
	if (optind >= argc)
		fd_usage_die("keys: expected list, install, use or remove");
	action = argv[optind++];
	want = strcmp(action, "list") == 0 ? 0 : 1;
	if (strcmp(action, "list") && strcmp(action, "install") &&
	    strcmp(action, "use") && strcmp(action, "remove"))
		fd_usage_die("keys: unknown action '%s' (list, install, use, remove)",
			     action);
	if (argc - optind < want)
		fd_usage_die("keys %s: expected %s", action,
			     strcmp(action, "install") == 0 ? "KEY" : "KEYID");
	if (argc - optind > want)
		fd_usage_die("unexpected argument '%s'", argv[optind + want]);
	if (!want)
		return keys_list(node, timeout);
	return keys_change(node, timeout, action, argv[optind]);
}
