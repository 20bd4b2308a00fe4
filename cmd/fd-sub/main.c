/* fd-sub: subscribe to patterns on a node and print the messages as JSON
 * lines. The node sends the lines ready-made (GET /v1/subscribe); we pass
 * them through, counting messages, or with --raw print only their data.
 * When the connection to the node breaks after the subscription started
 * (the node was restarted), a gap line says messages may have been missed
 * and we reconnect with backoff. */
#include "buf.h"
#include "cli.h"
#include "client.h"
#include "clock.h"
#include "jsonl.h"
#include "jsonscan.h"
#include "topic.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USAGE                                                        \
	"fd-sub [-n node] [-c count] [-t timeout] [-r] [-q group]\n" \
	"              [--overflow policy] [--queue n] [--queue-bytes size] pattern..."

static const char help[] =
	"\n"
	"Subscribes to PATTERNs (dot-separated tokens; '*' matches one token, '>'\n"
	"the rest) and prints each message as a JSON line:\n"
	"  {\"type\":\"message\",\"topic\":...,\"seq\":...,\"from\":...,\"stream\":...,\"ts\":...,\"data\":...}\n"
	"and {\"type\":\"gap\",\"topic\":...,\"missed\":N} where messages were lost.\n"
	"\n"
	"Options:\n"
	"  -n, --node HOST:PORT    the node to subscribe at (default $FD_NODE, else\n"
	"                          127.0.0.1:4380)\n"
	"  -c, --count N           stop after N messages\n"
	"  -t, --timeout DURATION  stop after DURATION; exit 5 if fewer than --count came\n"
	"  -r, --raw               print only each message's data (gaps go to stderr)\n"
	"  -q, --queue GROUP       join queue group GROUP: each message goes to one member\n"
	"      --overflow POLICY   when our queue at the node is full: drop-oldest,\n"
	"                          drop-new or disconnect (default: the node's)\n"
	"      --queue-len N       messages the node may queue for us\n"
	"      --queue-bytes SIZE  bytes the node may queue for us\n" FD_CLIENT_HELP
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n";

#define MSG_PREFIX "{\"type\":\"message\","
#define GAP_PREFIX "{\"type\":\"gap\","

struct sub {
	long long want; /* --count, 0: no limit */
	long long got;
	int raw;
	struct fd_buf line;
	int done;
	int subscribed;	   /* the node answered 200 at least once */
	int ended_by_node; /* a "reason" gap line: the node dropped us */
	int streaming;	   /* data came since the last failure */
};

struct data_span {
	const char *p;
	size_t len;
};

static int find_data(void *arg, const struct fd_json_member *m)
{
	struct data_span *d = arg;

	if (m->key_len == 4 && memcmp(m->key, "data", 4) == 0) {
		d->p = m->value;
		d->len = m->value_len;
	}
	return 0;
}

static void one_line(struct sub *s, const char *l, size_t len)
{
	if (len == 0)
		return;
	if (len >= sizeof(MSG_PREFIX) - 1 &&
	    memcmp(l, MSG_PREFIX, sizeof(MSG_PREFIX) - 1) == 0) {
		s->got++;
		if (s->raw) {
			struct data_span d = {0};

			if (fd_json_scan(l, len, find_data, &d, NULL) == 0 && d.p)
				fd_emit_raw(d.p, d.len);
		} else {
			fd_emit_raw(l, len);
		}
		if (s->want && s->got >= s->want)
			s->done = 1;
		return;
	}
	if (len >= sizeof(GAP_PREFIX) - 1 &&
	    memcmp(l, GAP_PREFIX, sizeof(GAP_PREFIX) - 1) == 0) {
		struct json_object *o = fd_json_parse(l, len, NULL);

		if (fd_json_get_str(o, "reason"))
			s->ended_by_node = 1;
		if (s->raw)
			fd_warn("gap: %lld messages missed on '%s'%s%s",
				fd_json_get_int(o, "missed", 0),
				fd_json_get_str(o, "topic"),
				fd_json_get_str(o, "reason") ? ": " : "",
				fd_json_get_str(o, "reason")
					? fd_json_get_str(o, "reason")
					: "");
		else
			fd_emit_raw(l, len);
		json_object_put(o);
	}
}

static int on_data(const char *data, size_t len, void *arg)
{
	struct sub *s = arg;
	size_t off = 0;

	s->subscribed = 1;
	s->streaming = 1;
	if (len == 0)
		return 0; /* connected */
	fd_emit_hold(1);
	if (s->line.len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t k = nl ? (size_t)(nl - data) : len;

		if (fd_buf_append(&s->line, data, k) < 0)
			fd_die(FD_EXIT_RUNTIME, "a line from the node is too long");
		if (!nl) {
			fd_emit_hold(0);
			return 0;
		}
		one_line(s, s->line.data, s->line.len);
		s->line.len = 0;
		off = k + 1;
	}
	while (off < len && !s->done) {
		const char *p = data + off, *nl = memchr(p, '\n', len - off);

		if (!nl) {
			if (fd_buf_append(&s->line, p, len - off) < 0)
				fd_die(FD_EXIT_RUNTIME,
				       "a line from the node is too long");
			break;
		}
		one_line(s, p, (size_t)(nl - p));
		off += (size_t)(nl - p) + 1;
	}
	fd_emit_hold(0);
	return s->done;
}

static void path_add(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);

	snprintf(out + n, cap - n, "%s", s);
}

static void path_escape(char *out, size_t cap, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t n = strlen(out);

	for (; *s && n + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~*", c)) {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hexd[c >> 4];
			out[n++] = hexd[c & 15];
		}
	}
	out[n] = '\0';
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	enum { OPT_OVERFLOW = 256, OPT_QLEN, OPT_QBYTES };
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"count", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"raw", no_argument, NULL, 'r'},
		{"queue", required_argument, NULL, 'q'},
		{"overflow", required_argument, NULL, OPT_OVERFLOW},
		{"queue-len", required_argument, NULL, OPT_QLEN},
		{"queue-bytes", required_argument, NULL, OPT_QBYTES},
		FD_CLIENT_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct sub s = {.line = FD_BUF_INIT(64 * 1024 * 1024)};
	const char *node = NULL, *group = NULL, *overflow = NULL, *qlen = NULL,
		   *qbytes = NULL;
	int64_t timeout = 0, deadline = 0, backoff = 100;
	struct fd_client client;
	struct fd_err err;
	char path[8192] = "/v1/subscribe?pattern=";
	long long v;
	uint64_t size;
	int c, rc = FD_EXIT_OK;

	fd_cli_init("fd-sub", USAGE);
	while ((c = getopt_long(argc, argv, ":n:c:t:rq:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'c':
			if (fd_parse_int(optarg, 1, 1LL << 62, &v) < 0)
				fd_usage_die("invalid --count '%s'", optarg);
			s.want = v;
			break;
		case 't':
			if (fd_parse_duration(optarg, &timeout) < 0 || timeout == 0)
				fd_usage_die("invalid --timeout '%s'", optarg);
			break;
		case 'r': s.raw = 1; break;
		case 'q':
			if (fd_topic_valid_group(optarg, &err) < 0)
				fd_usage_die("invalid --queue '%s': %s", optarg,
					     err.msg);
			group = optarg;
			break;
		case OPT_OVERFLOW:
			if (strcmp(optarg, "drop-oldest") &&
			    strcmp(optarg, "drop-new") &&
			    strcmp(optarg, "disconnect"))
				fd_usage_die("invalid --overflow '%s' (drop-oldest, drop-new, disconnect)",
					     optarg);
			overflow = optarg;
			break;
		case OPT_QLEN:
			if (fd_parse_int(optarg, 1, 10000000, &v) < 0)
				fd_usage_die("invalid --queue-len '%s' (1 to 10000000)",
					     optarg);
			qlen = optarg;
			break;
		case OPT_QBYTES:
			if (fd_parse_size(optarg, &size) < 0 || size == 0)
				fd_usage_die("invalid --queue-bytes '%s'", optarg);
			qbytes = optarg;
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
	if (argc == 0)
		fd_usage_die("no pattern given");
	for (int i = 0; i < argc; i++) {
		if (fd_topic_valid_pattern(argv[i], strlen(argv[i]), &err) < 0)
			fd_usage_die("invalid pattern '%s': %s", argv[i], err.msg);
		if (i)
			path_add(path, sizeof(path), "%20");
		path_escape(path, sizeof(path), argv[i]);
	}
	if (group) {
		path_add(path, sizeof(path), "&group=");
		path_escape(path, sizeof(path), group);
	}
	if (overflow) {
		path_add(path, sizeof(path), "&overflow=");
		path_escape(path, sizeof(path), overflow);
	}
	if (qlen) {
		path_add(path, sizeof(path), "&queue=");
		path_escape(path, sizeof(path), qlen);
	}
	if (qbytes) {
		path_add(path, sizeof(path), "&queue_bytes=");
		path_escape(path, sizeof(path), qbytes);
	}
	if (fd_client_init(&client, fd_node_addr(node), 5000, &err) < 0)
		fd_usage_die("%s", err.msg);
	if (timeout)
		deadline = fd_mono_ms() + timeout;

	for (;;) {
		int64_t left = deadline ? deadline - fd_mono_ms() : 0;
		long status;
		int r;

		if (deadline && left <= 0) {
			rc = s.want && s.got < s.want ? FD_EXIT_TIMEOUT : FD_EXIT_OK;
			break;
		}
		s.line.len = 0;
		r = fd_client_get_stream(&client, path, left, on_data, &s,
					 &status, &err);
		if (s.done) {
			rc = FD_EXIT_OK;
			break;
		}
		if (r == 0) {
			/* the node ended the stream */
			fd_warn("the node ended the subscription%s",
				s.ended_by_node ? " (our queue was full)" : "");
			rc = FD_EXIT_RUNTIME;
			break;
		}
		if (errno == ETIMEDOUT && deadline && fd_mono_ms() >= deadline - 5) {
			if (!s.subscribed)
				fd_warn("%s", err.msg);
			rc = s.want && s.got < s.want ? FD_EXIT_TIMEOUT
			     : s.subscribed	      ? FD_EXIT_OK
						      : FD_EXIT_TIMEOUT;
			break;
		}
		if (errno == EPROTO) {
			fd_warn("%s", err.msg);
			rc = status == 400 ? FD_EXIT_USAGE : FD_EXIT_RUNTIME;
			break;
		}
		if (!s.subscribed) {
			fd_warn("%s", err.msg);
			rc = FD_EXIT_RUNTIME;
			break;
		}
		if (s.streaming) {
			s.streaming = 0;
			backoff = 100;
			/* first failure since the last good stream: say so once */
			struct json_object *o = fd_json_record("gap");

			fd_warn("lost the subscription at '%s' (%s); reconnecting",
				client.addr, err.msg);
			json_object_object_add(o, "topic",
					       json_object_new_string(argv[0]));
			json_object_object_add(o, "missed", NULL);
			json_object_object_add(
				o, "reason",
				json_object_new_string("connection to the node lost"));
			if (!s.raw)
				fd_emit(o);
			json_object_put(o);
		}
		sleep_ms(deadline && backoff > deadline - fd_mono_ms()
				 ? (deadline - fd_mono_ms() > 0
					    ? deadline - fd_mono_ms()
					    : 0)
				 : backoff);
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
	fd_client_release(&client);
	fd_buf_release(&s.line);
	return fd_finish_stdout(rc);
}
