#include "log.h"
#include "cli.h"
#include "clock.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum fd_log_level fd_log_level = FD_LOG_INFO;
enum fd_log_format fd_log_format = FD_LOG_TEXT;
const char *fd_log_trace;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

const char *fd_log_level_name(enum fd_log_level l)
{
	return (unsigned)l <= FD_LOG_OFF ? level_names[l] : "?";
}

int fd_log_parse_level(const char *s, enum fd_log_level *out)
{
	for (int i = 0; i <= FD_LOG_OFF; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum fd_log_level)i;
			return 0;
		}
	}
	return -1;
}

int fd_log_parse_format(const char *s, enum fd_log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = FD_LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = FD_LOG_JSON;
	else
		return -1;
	return 0;
}

int fd_log_render(char *buf, size_t len, int64_t wall_us,
		  enum fd_log_level level, const char *msg)
{
	char ts[FD_TS_LEN];
	struct json_object *o;
	int n;

	fd_ts_format(wall_us, ts, sizeof(ts));
	if (fd_log_format == FD_LOG_TEXT) {
		if (fd_log_trace)
			return snprintf(buf, len, "%s %s %s: %s [trace %s]", ts,
					fd_prog, fd_log_level_name(level), msg,
					fd_log_trace);
		return snprintf(buf, len, "%s %s %s: %s", ts, fd_prog,
				fd_log_level_name(level), msg);
	}
	o = json_object_new_object();
	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "level",
			       json_object_new_string(fd_log_level_name(level)));
	json_object_object_add(o, "prog", json_object_new_string(fd_prog));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	if (fd_log_trace)
		json_object_object_add(o, "trace",
				       json_object_new_string(fd_log_trace));
	n = snprintf(buf, len, "%s",
		     json_object_to_json_string_ext(
			     o, JSON_C_TO_STRING_PLAIN |
					JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return n;
}

void fd_log(enum fd_log_level level, const char *fmt, ...)
{
	char msg[2048], line[4096];
	va_list ap;
	int n;

	if (level < fd_log_level || level >= FD_LOG_OFF)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = fd_log_render(line, sizeof(line) - 1, fd_wall_us(), level, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line, so lines of concurrent processes do not mix. */
	fwrite(line, 1, (size_t)n, stderr);
}
