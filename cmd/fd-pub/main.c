/* fd-pub: publish messages to a node (args, or JSON lines on stdin).
 *
 * Stdin is turned into PUB frames (psframe.h) and streamed to the node as
 * one chunked POST /v1/publish (Content-Type application/x-fd-pub): one
 * request for any number of messages, so millions of lines go at full
 * speed, and the node slows us down by not reading when its forwarding
 * queues are full. Lines are split and checked with jsonscan (no json-c
 * objects on the hot path). With --confirm, messages go in batches (one
 * POST each, continuing one publisher stream) so each can be confirmed with
 * its sequence number. */
#include "cli.h"
#include "client.h"
#include "jsonl.h"
#include "jsonscan.h"
#include "psframe.h"
#include "topic.h"
#include "utf8.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                        \
	"fd-pub [-n node] [-p high|normal|bulk] [-T topic] [--confirm] [--strict]\n" \
	"              [--max-payload size] [-t timeout] [topic [data...]]"

static const char help[] =
	"\n"
	"Publishes messages. Each DATA argument is one message on TOPIC (valid JSON\n"
	"is sent as JSON, anything else as a JSON string). Without DATA, each stdin\n"
	"line is a message: a JSON object with \"topic\" and \"data\"; without\n"
	"\"topic\" the default topic (TOPIC or --topic) applies; without \"data\" the\n"
	"whole line is the data. A bad line is reported with its number and\n"
	"skipped; the exit status is 7 at the end.\n"
	"\n"
	"Options:\n"
	"  -n, --node HOST:PORT    the node to publish through (default $FD_NODE, else\n"
	"                          127.0.0.1:4380)\n"
	"  -T, --topic TOPIC       default topic for stdin lines\n"
	"  -p, --priority PRIO     high, normal (default) or bulk\n"
	"  -c, --confirm           print {\"type\":\"published\",...} per message, with its seq\n"
	"      --strict            stop at the first bad input line (exit 7)\n"
	"      --max-payload SIZE  largest payload (default 8MiB, the node's default)\n"
	"  -t, --timeout DURATION  how long to wait for the node's answer (default 30s)\n" FD_CLIENT_HELP
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

#define BATCH_MSGS 1000

struct pub {
	unsigned prio;
	const char *topic; /* default */
	size_t max_payload;
	int strict, confirm;
	/* stdin */
	int eof;
	char *in;
	size_t in_cap, in_start, in_end;
	unsigned long lineno, bad, sent;
	int stop;
	const char *what; /* "line" or "argument" */
	/* frames ready to send */
	struct fd_buf out;
	size_t out_off;
	/* --confirm */
	unsigned long batch_msgs;
	uint64_t stream, last_seq;
	char node[256]; /* the node's name, from its answer */
};

struct fields {
	const char *topic, *data;
	size_t tlen, dlen;
	int has_topic, tesc;
	char tbuf[FD_TOPIC_MAX_LEN + 1];
};

static int on_member(void *arg, const struct fd_json_member *m)
{
	struct fields *f = arg;

	if (m->key_len == 5 && !m->key_escaped && memcmp(m->key, "topic", 5) == 0) {
		if (m->value[0] != '"')
			return 1;
		f->has_topic = 1;
		f->topic = m->value + 1;
		f->tlen = m->value_len - 2;
		f->tesc = m->value_escaped;
	} else if (m->key_len == 4 && !m->key_escaped &&
		   memcmp(m->key, "data", 4) == 0) {
		f->data = m->value;
		f->dlen = m->value_len;
	}
	return 0;
}

static void bad_line(struct pub *p, const char *what, const char *why)
{
	p->bad++;
	fd_warn("%s %lu: %s", what, p->lineno, why);
	if (p->strict) {
		fflush(stdout);
		exit(fd_finish_stdout(FD_EXIT_DATA));
	}
}

/* Checks and queues one message. Returns 0, or -1 when bad (reported). */
static int queue_msg(struct pub *p, const char *topic, size_t tlen,
		     const char *data, size_t dlen)
{
	struct fd_err err;

	if (fd_topic_valid_subject(topic, tlen, &err) < 0) {
		char why[300];

		snprintf(why, sizeof(why), "invalid topic '%.*s': %s",
			 (int)tlen, topic, err.msg);
		bad_line(p, p->what, why);
		return -1;
	}
	if (dlen > p->max_payload) {
		char why[120];

		snprintf(why, sizeof(why),
			 "payload of %zu bytes over the limit of %zu", dlen,
			 p->max_payload);
		bad_line(p, p->what, why);
		return -1;
	}
	if (fd_psf_put_pub(&p->out, p->prio, topic, tlen, data, dlen) < 0)
		fd_die(FD_EXIT_RUNTIME, "out of memory");
	p->batch_msgs++;
	return 0;
}

static void do_line(struct pub *p, const char *line, size_t len)
{
	struct fields f = {0};
	struct fd_err err;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
		       line[len - 1] == '\t'))
		len--;
	while (len && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (len == 0)
		return;
	if (fd_json_scan(line, len, on_member, &f, &err) < 0) {
		if (strstr(err.msg, "not an object") && p->topic &&
		    fd_json_scan(line, len, NULL, NULL, NULL) == 0) {
			queue_msg(p, p->topic, strlen(p->topic), line, len);
			return;
		}
		bad_line(p, p->what,
			 strstr(err.msg, "rejected") ? "\"topic\" is not a string"
						     : err.msg);
		return;
	}
	if (f.has_topic && f.tesc) {
		struct json_object *o = fd_json_parse(f.topic - 1, f.tlen + 2, NULL);
		const char *t = o ? json_object_get_string(o) : "";

		snprintf(f.tbuf, sizeof(f.tbuf), "%s", t);
		f.tlen = strlen(t) > FD_TOPIC_MAX_LEN ? FD_TOPIC_MAX_LEN + 1
						      : strlen(t);
		f.topic = f.tbuf;
		json_object_put(o);
	}
	if (!f.has_topic) {
		if (!p->topic) {
			bad_line(p, p->what, "no \"topic\" (and no default topic)");
			return;
		}
		f.topic = p->topic;
		f.tlen = strlen(p->topic);
	}
	if (!f.data) {
		f.data = line;
		f.dlen = len;
	}
	queue_msg(p, f.topic, f.tlen, f.data, f.dlen);
}

/* Reads what stdin has (blocking only when nothing is buffered) and turns
 * whole lines into frames. Stops at `want` bytes of frames or a batch. */
static void fill(struct pub *p, size_t want, int wait)
{
	for (;;) {
		char *nl;

		while (p->in_start < p->in_end &&
		       (nl = memchr(p->in + p->in_start, '\n',
				    p->in_end - p->in_start))) {
			size_t len = (size_t)(nl - (p->in + p->in_start));

			p->lineno++;
			do_line(p, p->in + p->in_start, len);
			p->in_start += len + 1;
			if (p->out.len - p->out_off >= want ||
			    (p->confirm && p->batch_msgs >= BATCH_MSGS))
				return;
		}
		if (p->eof) {
			if (p->in_start < p->in_end) {
				p->lineno++;
				do_line(p, p->in + p->in_start,
					p->in_end - p->in_start);
				p->in_start = p->in_end;
			}
			return;
		}
		if (p->out.len > p->out_off && !wait)
			return;
		if (p->confirm && p->batch_msgs > 0) {
			struct pollfd pfd = {0, POLLIN, 0};

			if (poll(&pfd, 1, 0) == 0)
				return; /* stdin is idle: confirm what we have */
		}
		/* make room and read */
		if (p->in_start > 0) {
			memmove(p->in, p->in + p->in_start, p->in_end - p->in_start);
			p->in_end -= p->in_start;
			p->in_start = 0;
		}
		if (p->in_end == p->in_cap) {
			size_t max = p->max_payload + 64 * 1024;

			if (p->in_cap >= max) {
				/* a line longer than any payload: skip it */
				char *nl2;
				ssize_t r;

				p->lineno++;
				bad_line(p, p->what, "line too long");
				p->in_end = 0;
				for (;;) {
					r = read(0, p->in, p->in_cap);
					if (r <= 0) {
						p->eof = 1;
						break;
					}
					nl2 = memchr(p->in, '\n', (size_t)r);
					if (nl2) {
						p->in_start =
							(size_t)(nl2 - p->in) + 1;
						p->in_end = (size_t)r;
						break;
					}
				}
				continue;
			}
			p->in_cap = p->in_cap * 2 < max ? p->in_cap * 2 : max;
			p->in = realloc(p->in, p->in_cap);
			if (!p->in)
				fd_die(FD_EXIT_RUNTIME, "out of memory");
		}
		{
			ssize_t r = read(0, p->in + p->in_end, p->in_cap - p->in_end);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				fd_die(FD_EXIT_RUNTIME, "unable to read stdin: %s",
				       strerror(errno));
			if (r == 0)
				p->eof = 1;
			p->in_end += (size_t)r;
		}
	}
}

static size_t on_read(char *buf, size_t len, void *arg)
{
	struct pub *p = arg;
	size_t n;

	if (p->out_off == p->out.len) {
		p->out.len = p->out_off = 0;
		if (!p->eof || p->in_start < p->in_end)
			fill(p, len, 1);
	}
	n = p->out.len - p->out_off;
	if (n > len)
		n = len;
	if (n)
		memcpy(buf, p->out.data + p->out_off, n);
	p->out_off += n;
	return n;
}

/* The node's answer: reports what it rejected. Returns the exit status. */
static int check_answer(struct fd_client *c, long status,
			struct json_object *resp, struct pub *p)
{
	struct json_object *errors;

	if (status == 200 || status == 400) {
		if (json_object_object_get_ex(resp, "errors", &errors)) {
			for (size_t i = 0; i < json_object_array_length(errors); i++) {
				struct json_object *e =
					json_object_array_get_idx(errors, i);

				fd_warn("message %lld: rejected by the node: %s",
					fd_json_get_int(e, "frame", 0),
					fd_json_get_str(e, "error"));
			}
		}
		p->stream = (uint64_t)fd_json_get_int(resp, "stream", 0);
		p->last_seq = (uint64_t)fd_json_get_int(resp, "last_seq", 0);
		if (fd_json_get_str(resp, "node"))
			snprintf(p->node, sizeof(p->node), "%s",
				 fd_json_get_str(resp, "node"));
		return fd_json_get_int(resp, "rejected", 0) ? FD_EXIT_DATA
							    : FD_EXIT_OK;
	}
	if ((status == 401 || status == 403) && fd_json_get_str(resp, "error")) {
		/* "publish to billing.x: forbidden: token "ci" lacks …" */
		if (fd_json_get_str(resp, "topic"))
			fd_warn("publish to %s: %s", fd_json_get_str(resp, "topic"),
				fd_json_get_str(resp, "error"));
		else
			fd_warn("publish: %s", fd_json_get_str(resp, "error"));
		if (fd_json_get_int(resp, "published", 0) > 0)
			fd_warn("%lld messages before it were published",
				fd_json_get_int(resp, "published", 0));
		return FD_EXIT_RUNTIME;
	}
	fd_warn("'%s' answered HTTP %ld: %s", c->addr, status,
		fd_json_get_str(resp, "error") ? fd_json_get_str(resp, "error") : "?");
	return FD_EXIT_RUNTIME;
}

static void die_transport(struct fd_err *err)
{
	fd_die(errno == ETIMEDOUT ? FD_EXIT_TIMEOUT : FD_EXIT_RUNTIME, "%s",
	       err->msg);
}

/* --confirm: one POST per batch, printing a line per message. */
static int send_batch(struct fd_client *c, struct pub *p)
{
	char path[128];
	long status;
	struct json_object *resp = NULL;
	struct fd_err err;
	int rc;
	uint64_t first;
	size_t off = 0;

	if (p->stream)
		snprintf(path, sizeof(path), "/v1/publish?stream=%llu&seq=%llu",
			 (unsigned long long)p->stream,
			 (unsigned long long)p->last_seq);
	else
		snprintf(path, sizeof(path), "/v1/publish");
	if (fd_client_post_bytes(c, path, "application/x-fd-pub", p->out.data,
				 p->out.len, &status, &resp, &err) < 0)
		die_transport(&err);
	rc = check_answer(c, status, resp, p);
	first = (uint64_t)fd_json_get_int(resp, "first_seq", 0);
	json_object_put(resp);
	if (rc == FD_EXIT_RUNTIME)
		exit(fd_finish_stdout(rc));
	/* one line per frame the node took (it rejects only what we would) */
	while (rc == FD_EXIT_OK && off + 4 <= p->out.len) {
		const unsigned char *u = (const unsigned char *)p->out.data + off;
		size_t flen = (size_t)u[0] | (size_t)u[1] << 8 |
			      (size_t)u[2] << 16 | (size_t)u[3] << 24;
		struct fd_psf f;
		struct json_object *o;

		if (fd_psf_parse(p->out.data + off + 4, flen, &f, NULL) == 0) {
			char topic[FD_TOPIC_MAX_LEN + 1];

			snprintf(topic, sizeof(topic), "%.*s", (int)f.topic_len,
				 f.topic);
			o = fd_json_record("published");
			json_object_object_add(o, "topic",
					       json_object_new_string(topic));
			json_object_object_add(
				o, "seq", json_object_new_int64((int64_t)first++));
			json_object_object_add(
				o, "stream",
				json_object_new_int64((int64_t)p->stream));
			if (p->node[0])
				json_object_object_add(
					o, "node", json_object_new_string(p->node));
			json_object_object_add(
				o, "bytes", json_object_new_int64((int64_t)f.len));
			fd_emit(o);
			json_object_put(o);
		}
		off += 4 + flen;
	}
	p->out.len = p->out_off = 0;
	p->batch_msgs = 0;
	return rc;
}

static void arg_message(struct pub *p, const char *topic, const char *data)
{
	size_t len = strlen(data);

	p->lineno++;
	if (fd_json_scan(data, len, NULL, NULL, NULL) == 0) {
		queue_msg(p, topic, strlen(topic), data, len);
	} else if (!fd_utf8_valid(data, len)) {
		bad_line(p, "argument", "not valid UTF-8");
	} else {
		size_t n = fd_json_quote(NULL, 0, data, len);
		char *q = malloc(n);

		if (!q)
			fd_die(FD_EXIT_RUNTIME, "out of memory");
		fd_json_quote(q, n, data, len);
		queue_msg(p, topic, strlen(topic), q, n);
		free(q);
	}
}

int main(int argc, char **argv)
{
	enum { OPT_STRICT = 256, OPT_MAX_PAYLOAD };
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"topic", required_argument, NULL, 'T'},
		{"priority", required_argument, NULL, 'p'},
		{"confirm", no_argument, NULL, 'c'},
		{"strict", no_argument, NULL, OPT_STRICT},
		{"max-payload", required_argument, NULL, OPT_MAX_PAYLOAD},
		{"timeout", required_argument, NULL, 't'},
		FD_CLIENT_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct pub p = {.prio = FD_PSF_NORMAL,
			.max_payload = 8 * 1024 * 1024,
			.what = "line"};
	const char *node = NULL;
	int64_t timeout = 30000;
	struct fd_client client;
	struct fd_err err;
	struct json_object *resp = NULL;
	long status;
	uint64_t size;
	int c, rc = FD_EXIT_OK;

	fd_cli_init("fd-pub", USAGE);
	while ((c = getopt_long(argc, argv, ":n:T:p:ct:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'T': p.topic = optarg; break;
		case 'p':
			if (strcmp(optarg, "high") == 0)
				p.prio = FD_PSF_HIGH;
			else if (strcmp(optarg, "normal") == 0)
				p.prio = FD_PSF_NORMAL;
			else if (strcmp(optarg, "bulk") == 0)
				p.prio = FD_PSF_BULK;
			else
				fd_usage_die("invalid --priority '%s' (high, normal, bulk)",
					     optarg);
			break;
		case 'c': p.confirm = 1; break;
		case OPT_STRICT: p.strict = 1; break;
		case OPT_MAX_PAYLOAD:
			if (fd_parse_size(optarg, &size) < 0 || size == 0 ||
			    size > (1ULL << 30))
				fd_usage_die("invalid --max-payload '%s' (1 byte to 1GiB)",
					     optarg);
			p.max_payload = (size_t)size;
			break;
		case 't':
			if (fd_parse_duration(optarg, &timeout) < 0 || timeout == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case 'h': fd_help_exit(help);
		case 'V': fd_version_exit();
		default:
			if (!fd_client_opt(c, optarg))
				fd_usage_getopt(c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 0) {
		if (p.topic)
			fd_usage_die("a TOPIC argument and --topic: give one");
		p.topic = argv[0];
	}
	if (p.topic && fd_topic_valid_subject(p.topic, strlen(p.topic), &err) < 0)
		fd_usage_die("invalid topic '%s': %s", p.topic, err.msg);
	p.out = (struct fd_buf)FD_BUF_INIT((size_t)-1 / 2);
	if (fd_client_init(&client, fd_node_addr(node), timeout, &err) < 0)
		fd_usage_die("%s", err.msg);

	if (argc > 1) {
		p.what = "argument";
		for (int i = 1; i < argc; i++)
			arg_message(&p, p.topic, argv[i]);
		if (p.out.len) {
			if (p.confirm) {
				rc = send_batch(&client, &p);
			} else {
				if (fd_client_post_bytes(&client, "/v1/publish",
							 "application/x-fd-pub",
							 p.out.data, p.out.len,
							 &status, &resp, &err) < 0)
					die_transport(&err);
				rc = check_answer(&client, status, resp, &p);
				json_object_put(resp);
			}
		}
	} else if (p.confirm) {
		p.in_cap = 1 << 20;
		p.in = malloc(p.in_cap);
		for (;;) {
			fill(&p, (size_t)-1, 1);
			if (p.batch_msgs > 0) {
				int r = send_batch(&client, &p);

				if (r != FD_EXIT_OK)
					rc = r;
			}
			if (p.eof && p.in_start == p.in_end)
				break;
		}
	} else {
		p.in_cap = 1 << 20;
		p.in = malloc(p.in_cap);
		if (fd_client_post_stream(&client, "/v1/publish", "application/x-fd-pub",
					  on_read, &p, &status, &resp, &err) < 0)
			die_transport(&err);
		rc = check_answer(&client, status, resp, &p);
		json_object_put(resp);
	}
	fd_client_release(&client);
	free(p.in);
	fd_buf_release(&p.out);
	if (p.bad && rc == FD_EXIT_OK)
		rc = FD_EXIT_DATA;
	return fd_finish_stdout(rc);
}
