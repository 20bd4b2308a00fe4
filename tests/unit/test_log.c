#include "cli.h"
#include "clock.h"
#include "jsonl.h"
#include "log.h"
#include "unit.h"

TEST(ts_format)
{
	char buf[FD_TS_LEN];

	CHECK_STR(fd_ts_format(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000000Z");
	CHECK_STR(fd_ts_format(1795705591123456LL, buf, sizeof(buf)),
		  "2026-11-26T15:06:31.123456Z");
}

TEST(levels_and_formats_parse)
{
	enum fd_log_level l;
	enum fd_log_format f;

	CHECK_EQ(fd_log_parse_level("debug", &l), 0);
	CHECK_EQ(l, FD_LOG_DEBUG);
	CHECK_EQ(fd_log_parse_level("error", &l), 0);
	CHECK_EQ(l, FD_LOG_ERROR);
	CHECK_EQ(fd_log_parse_level("loud", &l), -1);
	CHECK_EQ(fd_log_parse_format("json", &f), 0);
	CHECK_EQ(f, FD_LOG_JSON);
	CHECK_EQ(fd_log_parse_format("xml", &f), -1);
}

TEST(render_text)
{
	char buf[256];

	fd_prog = "fd-test";
	fd_log_format = FD_LOG_TEXT;
	fd_log_trace = NULL;
	fd_log_render(buf, sizeof(buf), 0, FD_LOG_WARN, "it broke");
	CHECK_STR(buf, "1970-01-01T00:00:00.000000Z fd-test warn: it broke");
}

TEST(render_json_escapes_and_parses)
{
	char buf[512];
	struct json_object *o;

	fd_prog = "fd-test";
	fd_log_format = FD_LOG_JSON;
	fd_log_trace = "abc123";
	fd_log_render(buf, sizeof(buf), 0, FD_LOG_ERROR, "quote \" and\nnewline");
	o = fd_json_parse(buf, strlen(buf), NULL);
	REQUIRE(o != NULL);
	CHECK_STR(fd_json_get_str(o, "level"), "error");
	CHECK_STR(fd_json_get_str(o, "msg"), "quote \" and\nnewline");
	CHECK_STR(fd_json_get_str(o, "trace"), "abc123");
	CHECK_STR(fd_json_get_str(o, "ts"), "1970-01-01T00:00:00.000000Z");
	CHECK(strchr(buf, '\n') == NULL);
	json_object_put(o);
	fd_log_format = FD_LOG_TEXT;
	fd_log_trace = NULL;
}
