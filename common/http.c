#include "http.h"

#include <stdbool.h>
#include <string.h>

/* Find the end of the head: the first empty line. Returns 0 when there is none. */
static size_t find_head_end(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (i + 1 < len && data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Length of the line at data, without its CRLF or LF. */
static size_t line_length(const uint8_t *data, size_t len, size_t *next)
{
	const uint8_t *newline = memchr(data, '\n', len);
	size_t end = newline != NULL ? (size_t)(newline - data) : len;

	*next = newline != NULL ? end + 1 : len;
	if (end > 0 && data[end - 1] == '\r')
		end--;
	return end;
}

static bool is_token_char(uint8_t c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_target_char(uint8_t c)
{
	return c > ' ' && c < 0x7f;
}

/* A header line: a name of visible characters, a colon, then text without control bytes. */
static bool is_header_line(const uint8_t *line, size_t len)
{
	size_t colon = 0;

	while (colon < len && line[colon] != ':') {
		if (!is_target_char(line[colon]))
			return false;
		colon++;
	}
	if (colon == 0 || colon == len)
		return false;
	for (size_t i = colon + 1; i < len; i++) {
		if ((line[i] < ' ' && line[i] != '\t') || line[i] == 0x7f)
			return false;
	}
	return true;
}

static enum http_result parse_request_line(struct http_request *request, const uint8_t *line, size_t len)
{
	size_t method_len = 0;
	size_t target_start;
	size_t target_len = 0;
	size_t path_len;
	const uint8_t *version;
	size_t version_len;

	while (method_len < len && is_token_char(line[method_len]))
		method_len++;
	if (method_len == 0 || method_len > HTTP_MAX_METHOD_LEN || method_len == len || line[method_len] != ' ')
		return HTTP_BAD_REQUEST;

	target_start = method_len + 1;
	while (target_start + target_len < len && is_target_char(line[target_start + target_len]))
		target_len++;
	if (target_len == 0 || line[target_start] != '/' || target_start + target_len == len ||
	    line[target_start + target_len] != ' ')
		return HTTP_BAD_REQUEST;

	version = line + target_start + target_len + 1;
	version_len = len - (target_start + target_len + 1);
	if (version_len != 8 || memcmp(version, "HTTP/", 5) != 0)
		return HTTP_BAD_REQUEST;
	if (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0)
		return HTTP_BAD_VERSION;

	path_len = 0;
	while (path_len < target_len && line[target_start + path_len] != '?')
		path_len++;
	if (path_len > HTTP_MAX_PATH_LEN)
		return HTTP_BAD_REQUEST;

	memcpy(request->method, line, method_len);
	request->method[method_len] = '\0';
	memcpy(request->path, line + target_start, path_len);
	request->path[path_len] = '\0';
	return HTTP_OK;
}

enum http_result http_parse_request(struct http_request *request, const uint8_t *data, size_t len)
{
	size_t head_len = find_head_end(data, len < HTTP_MAX_HEAD_LEN ? len : HTTP_MAX_HEAD_LEN);
	size_t offset;
	size_t line_len;
	enum http_result result;

	memset(request, 0, sizeof(*request));
	if (head_len == 0)
		return len >= HTTP_MAX_HEAD_LEN ? HTTP_HEAD_TOO_LARGE : HTTP_INCOMPLETE;

	line_len = line_length(data, head_len, &offset);
	result = parse_request_line(request, data, line_len);
	if (result != HTTP_OK)
		return result;

	/* Every line up to the empty one must be a header line. */
	for (;;) {
		size_t next;

		line_len = line_length(data + offset, head_len - offset, &next);
		if (line_len == 0)
			break;
		if (!is_header_line(data + offset, line_len))
			return HTTP_BAD_REQUEST;
		offset += next;
	}
	request->head_len = head_len;
	return HTTP_OK;
}
