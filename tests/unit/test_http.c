#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static enum http_result parse_text(struct http_request *request, const char *text)
{
	return http_parse_request(request, (const uint8_t *)text, strlen(text));
}

static void request_crlf(void **unused)
{
	struct http_request request;
	const char *text = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9187\r\nAccept: */*\r\n\r\nbody";

	assert_int_equal(parse_text(&request, text), HTTP_OK);
	assert_string_equal(request.method, "GET");
	assert_string_equal(request.path, "/metrics");
	assert_int_equal(request.head_len, strlen(text) - strlen("body"));
}

static void request_bare_lf(void **unused)
{
	struct http_request request;

	assert_int_equal(parse_text(&request, "HEAD /metrics HTTP/1.0\nHost: x\n\n"), HTTP_OK);
	assert_string_equal(request.method, "HEAD");
	assert_string_equal(request.path, "/metrics");
}

static void request_without_headers(void **unused)
{
	struct http_request request;

	assert_int_equal(parse_text(&request, "GET / HTTP/1.1\r\n\r\n"), HTTP_OK);
	assert_string_equal(request.path, "/");
}

static void request_query_dropped(void **unused)
{
	struct http_request request;

	assert_int_equal(parse_text(&request, "GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), HTTP_OK);
	assert_string_equal(request.path, "/metrics");
}

static void request_incomplete(void **unused)
{
	static const char *const cases[] = {
		"",
		"G",
		"GET /metrics HTTP/1.1",
		"GET /metrics HTTP/1.1\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r",
	};
	struct http_request request;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(parse_text(&request, cases[i]), HTTP_INCOMPLETE);
}

static void request_malformed(void **unused)
{
	static const char *const cases[] = {
		"\r\n\r\n",
		"get /metrics HTTP/1.1\r\n\r\n",
		"GET\r\n\r\n",
		"GET  /metrics HTTP/1.1\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",
		"GET /metrics\r\n\r\n",
		"GET /metrics HTTP/1.1 extra\r\n\r\n",
		"GET /met\trics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTPS/1.1\r\n\r\n",
		"OPTIONSX /metrics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: a\rb\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
		"\x16\x03\x01\x02\x01\n\n",
	};
	struct http_request request;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %zu\n", i);
		assert_int_equal(parse_text(&request, cases[i]), HTTP_BAD_REQUEST);
	}
}

static void request_nul_byte(void **unused)
{
	static const uint8_t text[] = "GET /metrics HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	struct http_request request;

	assert_int_equal(http_parse_request(&request, text, sizeof(text) - 1), HTTP_BAD_REQUEST);
}

static void request_other_version(void **unused)
{
	struct http_request request;

	assert_int_equal(parse_text(&request, "GET /metrics HTTP/2.0\r\n\r\n"), HTTP_BAD_VERSION);
	assert_int_equal(parse_text(&request, "GET /metrics HTTP/0.9\r\n\r\n"), HTTP_BAD_VERSION);
}

static void request_path_too_long(void **unused)
{
	char text[HTTP_MAX_PATH_LEN + 64];
	struct http_request request;

	strcpy(text, "GET /");
	memset(text + 5, 'a', HTTP_MAX_PATH_LEN - 1);
	strcpy(text + 5 + HTTP_MAX_PATH_LEN - 1, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse_text(&request, text), HTTP_OK);
	assert_int_equal(strlen(request.path), HTTP_MAX_PATH_LEN);

	strcpy(text + 4, "/a");
	memset(text + 5, 'a', HTTP_MAX_PATH_LEN);
	strcpy(text + 5 + HTTP_MAX_PATH_LEN, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse_text(&request, text), HTTP_BAD_REQUEST);
}

static void request_head_too_large(void **unused)
{
	static uint8_t text[HTTP_MAX_HEAD_LEN + 16];
	struct http_request request;
	size_t prefix = strlen("GET / HTTP/1.1\r\nX: ");

	memcpy(text, "GET / HTTP/1.1\r\nX: ", prefix);
	memset(text + prefix, 'a', sizeof(text) - prefix);
	assert_int_equal(http_parse_request(&request, text, HTTP_MAX_HEAD_LEN - 1), HTTP_INCOMPLETE);
	assert_int_equal(http_parse_request(&request, text, HTTP_MAX_HEAD_LEN), HTTP_HEAD_TOO_LARGE);
	assert_int_equal(http_parse_request(&request, text, sizeof(text)), HTTP_HEAD_TOO_LARGE);

	/* The blank line just past the limit does not count. */
	memcpy(text + HTTP_MAX_HEAD_LEN - 3, "\r\n\r\n", 4);
	assert_int_equal(http_parse_request(&request, text, HTTP_MAX_HEAD_LEN + 1), HTTP_HEAD_TOO_LARGE);
	memcpy(text + HTTP_MAX_HEAD_LEN - 4, "\r\n\r\n", 4);
	assert_int_equal(http_parse_request(&request, text, HTTP_MAX_HEAD_LEN), HTTP_OK);
	assert_int_equal(request.head_len, HTTP_MAX_HEAD_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_crlf),
		cmocka_unit_test(request_bare_lf),
		cmocka_unit_test(request_without_headers),
		cmocka_unit_test(request_query_dropped),
		cmocka_unit_test(request_incomplete),
		cmocka_unit_test(request_malformed),
		cmocka_unit_test(request_nul_byte),
		cmocka_unit_test(request_other_version),
		cmocka_unit_test(request_path_too_long),
		cmocka_unit_test(request_head_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
