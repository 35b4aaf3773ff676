/*
 * libFuzzer target: the bytes a client sends to the metrics listener, as
 * tunnel/metrics.c hands them to http_parse_request() after each read.
 *
 * Beyond memory errors it checks the contract of http.h: a request is
 * accepted with a NUL-terminated method and a path that starts with '/',
 * and its head fits in the bytes given and in HTTP_MAX_HEAD_LEN.
 */
#include <stdint.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request request;
	enum http_result result = http_parse_request(&request, data, size);

	if (result == HTTP_INCOMPLETE && size >= HTTP_MAX_HEAD_LEN)
		__builtin_trap();
	if (result != HTTP_OK)
		return 0;
	if (request.head_len == 0 || request.head_len > size || request.head_len > HTTP_MAX_HEAD_LEN)
		__builtin_trap();
	if (request.path[0] != '/' || strlen(request.path) > HTTP_MAX_PATH_LEN)
		__builtin_trap();
	if (request.method[0] == '\0' || strlen(request.method) > HTTP_MAX_METHOD_LEN)
		__builtin_trap();
	return 0;
}
