#include "run.h"
#include "scenario.h"
#include "cli.h"
#include "jsonl.h"
#include "bench.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct base_entry {
	char *key;
	struct fd_stats st;
};

struct baseline {
	struct base_entry *e;
	size_t n;
};

int bench_parse_nodes(struct bench_run *r, const char *list)
{
	char buf[256], *save = NULL, *tok;

	if (strlen(list) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", list);
	r->nnodes = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long long v;

		if (r->nnodes == MAX_SIZES || fd_parse_int(tok, 1, 1000, &v) < 0)
			return -1;
		r->nodes[r->nnodes++] = (int)v;
	}
	return r->nnodes ? 0 : -1;
}

/* "name|nodes=32,profile=local": the identity of a figure. */
static void figure_key(char *buf, size_t len, const char *name,
		       struct json_object *params)
{
	const char *keys[16];
	int nk = 0;
	size_t off;

	off = (size_t)snprintf(buf, len, "%s|", name);
	json_object_object_foreach(params, k, val)
	{
		(void)val;
		if (nk < 16)
			keys[nk++] = k;
	}
	for (int i = 1; i < nk; i++)
		for (int j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];

			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	for (int i = 0; i < nk && off < len; i++) {
		off += (size_t)snprintf(
			buf + off, len - off, "%s%s=%s", i ? "," : "", keys[i],
			json_object_get_string(
				json_object_object_get(params, keys[i])));
	}
}

static int baseline_load(const char *path, struct baseline *b)
{
	struct fd_jsonl_reader rd;
	struct json_object *o;
	struct fd_err err;
	int fd = open(path, O_RDONLY | O_CLOEXEC), st, bad = 0;

	if (fd < 0)
		fd_die(FD_EXIT_RUNTIME, "unable to open baseline '%s': %m", path);
	fd_jsonl_reader_init(&rd, fd, 0);
	while ((st = fd_jsonl_read(&rd, &o, &err)) != FD_JSONL_EOF) {
		struct json_object *params, *v;
		const char *name, *type;
		char key[512];
		struct base_entry *ne;

		if (st == FD_JSONL_IOERR)
			fd_die(FD_EXIT_RUNTIME,
			       "unable to read baseline '%s': %m", path);
		if (st == FD_JSONL_BAD) {
			fd_warn("%s: %s", path, err.msg);
			bad = 1;
			continue;
		}
		type = fd_json_get_str(o, "type");
		name = fd_json_get_str(o, "name");
		if (!type || strcmp(type, "result") != 0) {
			json_object_put(o);
			continue;
		}
		if (!name || !json_object_object_get_ex(o, "params", &params) ||
		    !json_object_object_get_ex(o, "value", &v)) {
			fd_warn("%s: line %lu: a result needs name, params and value",
				path, rd.lineno);
			bad = 1;
			json_object_put(o);
			continue;
		}
		figure_key(key, sizeof(key), name, params);
		ne = realloc(b->e, (b->n + 1) * sizeof(*b->e));
		if (!ne)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		b->e = ne;
		b->e[b->n].key = strdup(key);
		b->e[b->n].st.median = json_object_get_double(v);
		b->e[b->n].st.min = json_object_object_get_ex(o, "min", &v)
					    ? json_object_get_double(v)
					    : b->e[b->n].st.median;
		b->e[b->n].st.max = json_object_object_get_ex(o, "max", &v)
					    ? json_object_get_double(v)
					    : b->e[b->n].st.median;
		b->n++;
		json_object_put(o);
	}
	fd_jsonl_reader_release(&rd);
	close(fd);
	return bad ? -1 : 0;
}

static void baseline_free(struct baseline *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->e[i].key);
	free(b->e);
}

static struct json_object *num(double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.6g", v);
	return json_object_new_double_s(v, buf);
}

static void print_table_row(struct json_object *o)
{
	struct json_object *params;
	char pbuf[128] = "";
	const char *verdict = fd_json_get_str(o, "verdict");
	size_t off = 0;

	json_object_object_get_ex(o, "params", &params);
	json_object_object_foreach(params, k, val)
	{
		off += (size_t)snprintf(pbuf + off, sizeof(pbuf) - off,
					"%s%s=%s", off ? " " : "", k,
					json_object_get_string(val));
		if (off >= sizeof(pbuf))
			break;
	}
	printf("%-28s %-24s %12s %-6s [%s .. %s] runs=%s%s%s\n",
	       fd_json_get_str(o, "name"), pbuf,
	       json_object_get_string(json_object_object_get(o, "value")),
	       fd_json_get_str(o, "unit"),
	       json_object_get_string(json_object_object_get(o, "min")),
	       json_object_get_string(json_object_object_get(o, "max")),
	       json_object_get_string(json_object_object_get(o, "runs")),
	       verdict ? " " : "", verdict ? verdict : "");
	fd_emit_flush();
}

static void github_add(struct json_object *arr, struct json_object *o)
{
	struct json_object *e = json_object_new_object(), *params;
	char name[256], extra[128];
	size_t off;

	json_object_object_get_ex(o, "params", &params);
	off = (size_t)snprintf(name, sizeof(name), "%s", fd_json_get_str(o, "name"));
	json_object_object_foreach(params, k, val)
	{
		off += (size_t)snprintf(name + off, sizeof(name) - off, "%s%s=%s",
					off && name[off - 1] != '('
						? (strchr(name, '(') ? ", " : " (")
						: "",
					k, json_object_get_string(val));
		if (off >= sizeof(name))
			break;
	}
	if (strchr(name, '(') && off < sizeof(name) - 1)
		snprintf(name + off, sizeof(name) - off, ")");
	snprintf(extra, sizeof(extra), "min %s, max %s, runs %s; %s is better",
		 json_object_get_string(json_object_object_get(o, "min")),
		 json_object_get_string(json_object_object_get(o, "max")),
		 json_object_get_string(json_object_object_get(o, "runs")),
		 fd_bench_smaller_is_better(fd_json_get_str(o, "unit")) ? "smaller"
									: "bigger");
	json_object_object_add(e, "name", json_object_new_string(name));
	json_object_object_add(e, "unit",
			       json_object_new_string(fd_json_get_str(o, "unit")));
	json_object_object_add(
		e, "value", json_object_get(json_object_object_get(o, "value")));
	json_object_object_add(e, "extra", json_object_new_string(extra));
	json_object_array_add(arr, e);
}

/* Runs one scenario at one size; prints its figures. Returns an exit code. */
static int run_one(struct bench_run *r, const struct scenario *s, int nodes,
		   struct baseline *base, struct json_object *github)
{
	double samples[MAX_FIGURES][1000], vals[MAX_FIGURES];
	struct bench_opts opts = r->opts;
	struct fd_err err;
	int nfig = 0, rc = FD_EXIT_OK, got;

	if (!s->default_entries)
		opts.entries = 0;
	else if (!opts.entries)
		opts.entries = s->default_entries;

	while (nfig < MAX_FIGURES && s->figures[nfig].name)
		nfig++;
	for (int k = 0; k < r->runs; k++) {
		if (r->opts.progress)
			fprintf(stderr, "\rfd-bench: %s nodes=%d run %d/%d ",
				s->name, nodes, k + 1, r->runs);
		memset(vals, 0, sizeof(vals));
		got = s->run(&opts, nodes, vals, &err);
		if (got == BENCH_SKIP) {
			struct json_object *e = fd_json_record("error");

			if (r->opts.progress)
				fputc('\n', stderr);
			fd_warn("%s (nodes=%d): %s", s->name, nodes, err.msg);
			json_object_object_add(e, "name",
					       json_object_new_string(s->name));
			json_object_object_add(e, "skipped",
					       json_object_new_boolean(1));
			json_object_object_add(e, "error",
					       json_object_new_string(err.msg));
			if (strcmp(r->format, "json") == 0)
				fd_emit(e);
			json_object_put(e);
			return FD_EXIT_OK;
		}
		if (got < 0) {
			struct json_object *e = fd_json_record("error");

			if (r->opts.progress)
				fputc('\n', stderr);
			fd_warn("%s (nodes=%d) run %d failed: %s", s->name,
				nodes, k + 1, err.msg);
			json_object_object_add(e, "name",
					       json_object_new_string(s->name));
			json_object_object_add(e, "error",
					       json_object_new_string(err.msg));
			if (strcmp(r->format, "json") == 0)
				fd_emit(e);
			json_object_put(e);
			return FD_EXIT_RUNTIME;
		}
		for (int f = 0; f < nfig; f++)
			samples[f][k] = vals[f];
	}
	if (r->opts.progress)
		fprintf(stderr, "\r\033[K");
	for (int f = 0; f < nfig; f++) {
		struct json_object *o = fd_json_record("result"),
				   *params = json_object_new_object();
		struct fd_stats st;
		char key[512];

		fd_stats_of(samples[f], (size_t)r->runs, &st);
		if (s->uses_nodes)
			json_object_object_add(params, "nodes",
					       json_object_new_int(nodes));
		if (opts.entries)
			json_object_object_add(params, "entries",
					       json_object_new_int64(opts.entries));
		json_object_object_add(params, "profile",
				       json_object_new_string(r->opts.profile));
		if (r->opts.encrypt)
			json_object_object_add(params, "encrypt",
					       json_object_new_boolean(1));
		json_object_object_add(o, "name",
				       json_object_new_string(s->figures[f].name));
		json_object_object_add(o, "params", params);
		json_object_object_add(o, "unit",
				       json_object_new_string(s->figures[f].unit));
		json_object_object_add(o, "value", num(st.median));
		json_object_object_add(o, "min", num(st.min));
		json_object_object_add(o, "max", num(st.max));
		json_object_object_add(o, "runs", json_object_new_int(r->runs));
		figure_key(key, sizeof(key), s->figures[f].name, params);
		for (size_t i = 0; base && i < base->n; i++) {
			enum fd_bench_verdict v;
			double change;
			struct json_object *b;

			if (strcmp(base->e[i].key, key) != 0)
				continue;
			v = fd_bench_compare(
				&base->e[i].st, &st,
				fd_bench_smaller_is_better(s->figures[f].unit),
				r->threshold, &change);
			b = json_object_new_object();
			json_object_object_add(b, "value", num(base->e[i].st.median));
			json_object_object_add(b, "min", num(base->e[i].st.min));
			json_object_object_add(b, "max", num(base->e[i].st.max));
			json_object_object_add(o, "baseline", b);
			json_object_object_add(o, "change_pct", num(change));
			json_object_object_add(
				o, "verdict",
				json_object_new_string(
					v == FD_BENCH_REGRESSION ? "regression"
					: v == FD_BENCH_BETTER	 ? "better"
								 : "same"));
			if (v == FD_BENCH_REGRESSION) {
				fd_warn("%s regressed: %.6g %s against %.6g (%+.1f%%, beyond the "
					"%.0f%% threshold and the measured spread)",
					key, st.median, s->figures[f].unit,
					base->e[i].st.median, change, r->threshold);
				rc = FD_EXIT_REGRESSION;
			}
			break;
		}
		if (strcmp(r->format, "json") == 0)
			fd_emit(o);
		else if (strcmp(r->format, "table") == 0)
			print_table_row(o);
		else
			github_add(github, o);
		json_object_put(o);
	}
	return rc;
}

int bench_run_all(struct bench_run *r, int argc, char **argv)
{
	struct baseline base = {0};
	struct json_object *github = json_object_new_array();
	int rc = FD_EXIT_OK, bad_base = 0, regressed = 0;

	for (int i = 0; i < argc; i++) {
		if (!bench_scenario_find(argv[i]))
			fd_usage_die("unknown scenario '%s' (fd-bench list shows them)",
				     argv[i]);
	}
	if (r->baseline_path)
		bad_base = baseline_load(r->baseline_path, &base) < 0;
	for (int i = 0; i < argc; i++) {
		const struct scenario *s = bench_scenario_find(argv[i]);

		for (int k = 0;
		     k < (s->uses_nodes && r->nnodes ? r->nnodes : 1); k++) {
			int nodes = s->uses_nodes && r->nnodes ? r->nodes[k]
							       : s->default_nodes;
			int one = run_one(r, s, nodes,
					  r->baseline_path ? &base : NULL, github);

			if (one == FD_EXIT_REGRESSION)
				regressed = 1;
			else if (one != FD_EXIT_OK)
				rc = one;
		}
	}
	if (strcmp(r->format, "github") == 0) {
		size_t len;
		const char *s = json_object_to_json_string_length(
			github,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE,
			&len);

		fwrite(s, 1, len, stdout);
		putchar('\n');
	}
	json_object_put(github);
	baseline_free(&base);
	if (rc != FD_EXIT_OK)
		return rc;
	if (regressed)
		return FD_EXIT_REGRESSION;
	return bad_base ? FD_EXIT_DATA : FD_EXIT_OK;
}
