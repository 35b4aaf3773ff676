/*
 * The head of an HTTP/1.x request, as the metrics listener reads it: the
 * request line is parsed, the header lines are only checked for shape, and
 * any body is ignored. Pure code with no I/O, so that it can be fuzzed.
 */
#ifndef WALGUARD_HTTP_H
#define WALGUARD_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* A head that has not ended within this many bytes is rejected. */
#define HTTP_MAX_HEAD_LEN 4096
#define HTTP_MAX_METHOD_LEN 7
#define HTTP_MAX_PATH_LEN 255

enum http_result {
	HTTP_OK,
	HTTP_INCOMPLETE,	/* no blank line yet: read more */
	HTTP_BAD_REQUEST,	/* malformed: answer 400 */
	HTTP_HEAD_TOO_LARGE,	/* no blank line within HTTP_MAX_HEAD_LEN: answer 431 */
	HTTP_BAD_VERSION,	/* not HTTP/1.0 or HTTP/1.1: answer 505 */
};

struct http_request {
	char method[HTTP_MAX_METHOD_LEN + 1];
	char path[HTTP_MAX_PATH_LEN + 1];	/* the target up to any '?' */
	size_t head_len;	/* bytes up to and including the blank line */
};

/*
 * Parse the request head at the start of data. Lines may end in CRLF or a
 * bare LF. On HTTP_OK, request contains the method and the path.
 */
enum http_result http_parse_request(struct http_request *request, const uint8_t *data, size_t len);

#endif
