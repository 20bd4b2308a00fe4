/* jsonl-cat: a test tool for the JSON-lines reader and writer.
 * Reads JSON lines on stdin and writes each good record compactly to stdout,
 * exactly as every fd binary reads and writes them: bad lines are reported on
 * stderr with their line number and skipped, exit 7 at the end (--strict:
 * at once); an empty input is bad input too; EPIPE ends quietly. */
#include "cli.h"
#include "jsonl.h"

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#define USAGE "jsonl-cat [--strict] [--plain] [--max-line SIZE]"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"strict", no_argument, NULL, 's'},
		{"plain", no_argument, NULL, 'p'},
		{"max-line", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct fd_jsonl_reader r;
	struct json_object *o;
	struct fd_err err;
	uint64_t max_line = 0;
	int strict = 0, plain = 0, c, rc = FD_EXIT_OK;

	fd_cli_init("jsonl-cat", USAGE);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': strict = 1; break;
		case 'p': plain = 1; break;
		case 'm':
			if (fd_parse_size(optarg, &max_line) < 0)
				fd_usage_die("invalid --max-line '%s'", optarg);
			break;
		case 'h': fd_help_exit(NULL);
		default: fd_usage_die("unknown option");
		}
	}
	fd_jsonl_reader_init(&r, STDIN_FILENO, (size_t)max_line);
	r.plain_ok = plain;
	for (;;) {
		int st = fd_jsonl_read(&r, &o, &err);

		if (st == FD_JSONL_EOF)
			break;
		if (st == FD_JSONL_IOERR) {
			fd_warn("unable to read stdin: %m");
			rc = FD_EXIT_RUNTIME;
			break;
		}
		if (st == FD_JSONL_BAD) {
			fd_warn("stdin: %s", err.msg);
			rc = FD_EXIT_DATA;
			if (strict)
				break;
			continue;
		}
		fd_emit_hold(fd_jsonl_pending(&r));
		fd_emit(o);
		json_object_put(o);
	}
	if (rc == FD_EXIT_OK && r.records == 0) {
		fd_warn("stdin: no records");
		rc = FD_EXIT_DATA;
	}
	fd_jsonl_reader_release(&r);
	fd_emit_hold(0);
	return fd_finish_stdout(rc);
}
