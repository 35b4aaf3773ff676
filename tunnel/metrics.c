#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "http.h"

/* Lines about rejected metrics requests: a misconfigured scraper repeats them. */
#define METRICS_LOG_INTERVAL_MS 60000
#define METRICS_LOG_BURST 20

struct metrics_client {
	struct daemon *daemon;
	uv_tcp_t socket;
	uv_timer_t timer;
	uv_write_t write_request;
	uv_shutdown_t shutdown_request;
	char address[64];
	char *response;
	size_t received_len;
	uint8_t received[HTTP_MAX_HEAD_LEN];
	int open_handles;
	bool lingering;		/* response sent and FIN sent: reading until the client closes */
	bool closing;
	struct metrics_client *prev;
	struct metrics_client *next;
};

/* A response under construction; after a failed allocation it stays failed. */
struct text {
	char *data;
	size_t len;
	size_t capacity;
	bool failed;
};

static void text_printf(struct text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *text, const char *format, ...)
{
	va_list args;
	int needed;

	if (text->failed)
		return;
	for (;;) {
		size_t room = text->capacity - text->len;

		va_start(args, format);
		needed = vsnprintf(text->data != NULL ? text->data + text->len : NULL, room, format, args);
		va_end(args);
		if (needed < 0) {
			text->failed = true;
			return;
		}
		if ((size_t)needed < room) {
			text->len += (size_t)needed;
			return;
		}

		size_t capacity = text->capacity == 0 ? 4096 : text->capacity * 2;

		while (capacity - text->len <= (size_t)needed)
			capacity *= 2;
		char *data = realloc(text->data, capacity);

		if (data == NULL) {
			text->failed = true;
			return;
		}
		text->data = data;
		text->capacity = capacity;
	}
}

static void metric_header(struct text *text, const char *name, const char *type, const char *help)
{
	text_printf(text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_value(struct text *text, const char *name, const char *type, const char *help,
			 unsigned long long value)
{
	metric_header(text, name, type, help);
	text_printf(text, "%s %llu\n", name, value);
}

/*
 * Peer names are limited to letters, digits, '-', '_' and '.' by the
 * config parser, so they need no escaping inside a label value.
 */
static void format_metrics(struct daemon *daemon, struct text *text)
{
	const struct daemon_counters *counters = &daemon->counters;
	size_t connections = 0;

	for (const struct forward *forward = daemon->forwards; forward != NULL; forward = forward_next(forward))
		connections++;

	metric_header(text, "walguard_info", "gauge", "Version of the running daemon; the value is always 1.");
	text_printf(text, "walguard_info{version=\"%s\"} 1\n", WALGUARD_VERSION);
	metric_value(text, "walguard_start_time_seconds", "gauge", "Unix time at which the daemon started.",
		     (unsigned long long)daemon->start_time);
	metric_value(text, "walguard_connections", "gauge", "Forwarded connections open now, in both directions.",
		     connections);
	metric_value(text, "walguard_pending_handshakes", "gauge",
		     "Accepted tunnel connections whose handshake has not finished.", daemon->pending_handshakes);
	metric_value(text, "walguard_handshakes_completed_total", "counter",
		     "Handshakes completed, as responder or initiator.", counters->handshakes_completed);
	metric_value(text, "walguard_handshakes_rejected_total", "counter",
		     "Initiations rejected without a reply, evictions included.", counters->handshakes_rejected);
	metric_value(text, "walguard_handshakes_rate_limited_total", "counter",
		     "Initiations dropped by the per-address limit before any key work.",
		     counters->handshakes_rate_limited);
	metric_value(text, "walguard_handshakes_evicted_total", "counter",
		     "Pending handshakes closed to make room for new ones.", counters->handshakes_evicted);
	metric_value(text, "walguard_dials_failed_total", "counter", "Tunnel dials to a peer that failed.",
		     counters->dials_failed);
	metric_value(text, "walguard_connections_opened_total", "counter", "Forwarded connections opened.",
		     counters->connections_opened);
	metric_value(text, "walguard_connections_reset_total", "counter",
		     "Forwarded connections that ended with an error or a reset.", counters->connections_reset);
	metric_value(text, "walguard_connections_rejected_total", "counter",
		     "Connections reset on accept because the descriptor budget was spent.",
		     counters->connections_rejected);
	metric_value(text, "walguard_descriptors", "gauge", "Descriptors in use by the daemon's own count.",
		     daemon->descriptors_at_start + daemon->sockets);
	metric_value(text, "walguard_descriptor_limit", "gauge", "Soft limit on open descriptors.",
		     daemon->descriptor_limit);

	metric_header(text, "walguard_peer_connections", "gauge", "Forwarded connections open now with this peer.");
	for (size_t i = 0; i < daemon->peer_count; i++)
		text_printf(text, "walguard_peer_connections{peer=\"%s\"} %u\n", daemon->peers[i].name,
			    (unsigned)daemon->peers[i].connection_count);

	metric_header(text, "walguard_peer_sent_bytes_total", "counter",
		      "Bytes forwarded into the tunnel to this peer, before encryption.");
	for (size_t i = 0; i < daemon->peer_count; i++) {
		uint64_t sent;
		uint64_t received;

		forward_peer_bytes(&daemon->peers[i], &sent, &received);
		text_printf(text, "walguard_peer_sent_bytes_total{peer=\"%s\"} %llu\n", daemon->peers[i].name,
			    (unsigned long long)sent);
	}
	metric_header(text, "walguard_peer_received_bytes_total", "counter",
		      "Bytes received from this peer through the tunnel, after decryption.");
	for (size_t i = 0; i < daemon->peer_count; i++) {
		uint64_t sent;
		uint64_t received;

		forward_peer_bytes(&daemon->peers[i], &sent, &received);
		text_printf(text, "walguard_peer_received_bytes_total{peer=\"%s\"} %llu\n", daemon->peers[i].name,
			    (unsigned long long)received);
	}
	metric_header(text, "walguard_peer_last_handshake_time_seconds", "gauge",
		      "Unix time of the last completed handshake with this peer, 0 before the first.");
	for (size_t i = 0; i < daemon->peer_count; i++)
		text_printf(text, "walguard_peer_last_handshake_time_seconds{peer=\"%s\"} %lld\n",
			    daemon->peers[i].name, (long long)daemon->peers[i].last_handshake_time);
	metric_header(text, "walguard_peer_dial_failures", "gauge",
		      "Consecutive failed dials to this peer; 0 after a success.");
	for (size_t i = 0; i < daemon->peer_count; i++)
		text_printf(text, "walguard_peer_dial_failures{peer=\"%s\"} %u\n", daemon->peers[i].name,
			    (unsigned)daemon->peers[i].dial_failures);
}

static void client_free_if_done(struct metrics_client *client)
{
	struct daemon *daemon = client->daemon;

	if (client->open_handles > 0)
		return;
	if (client->prev != NULL)
		client->prev->next = client->next;
	else
		daemon->metrics_clients = client->next;
	if (client->next != NULL)
		client->next->prev = client->prev;
	daemon->metrics_client_count--;
	daemon->sockets--;
	free(client->response);
	free(client);
}

static void on_client_handle_closed(uv_handle_t *handle)
{
	struct metrics_client *client = handle->data;

	client->open_handles--;
	client_free_if_done(client);
}

static void client_close(struct metrics_client *client)
{
	if (client->closing)
		return;
	client->closing = true;
	uv_close((uv_handle_t *)&client->socket, on_client_handle_closed);
	uv_close((uv_handle_t *)&client->timer, on_client_handle_closed);
}

static void log_rejected_request(struct metrics_client *client, int status, const char *reason)
{
	uint64_t suppressed;

	if (log_ratelimit_allow(&client->daemon->metrics_log, daemon_now_ms(client->daemon), &suppressed))
		log_event(LOG_WARN, "metrics_request_rejected", "addr=%s status=%d suppressed=%llu error=\"%s\"",
			  client->address, status, (unsigned long long)suppressed, reason);
}

static void on_client_timeout(uv_timer_t *timer)
{
	struct metrics_client *client = timer->data;
	char reason[96];

	if (client->lingering) {
		client_close(client);
		return;
	}
	if (client->response != NULL)
		snprintf(reason, sizeof(reason), "response not read within %d ms", METRICS_REQUEST_TIMEOUT_MS);
	else
		snprintf(reason, sizeof(reason), "no complete request within %d ms", METRICS_REQUEST_TIMEOUT_MS);
	log_rejected_request(client, 0, reason);
	client_close(client);
}

static void on_client_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer);
static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer);

/*
 * Closing a socket with unread bytes in its receive queue sends a reset,
 * which may destroy the response before the client reads it (a request
 * head over the limit leaves such bytes). So after the FIN the client's
 * bytes are read and dropped until it closes, within the request timeout.
 */
static void on_shutdown_done(uv_shutdown_t *request, int status)
{
	struct metrics_client *client = request->data;

	if (client->closing)
		return;
	if (status < 0) {
		client_close(client);
		return;
	}
	client->lingering = true;
	client->received_len = 0;
	if (uv_read_start((uv_stream_t *)&client->socket, on_client_alloc, on_client_read) != 0)
		client_close(client);
}

static void on_response_written(uv_write_t *request, int status)
{
	struct metrics_client *client = request->data;

	if (client->closing)
		return;
	if (status < 0 || uv_shutdown(&client->shutdown_request, (uv_stream_t *)&client->socket, on_shutdown_done) != 0)
		client_close(client);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/* Send the status line, the headers and, unless send_body is false (HEAD), the body. */
static void client_respond(struct metrics_client *client, int status, const char *content_type,
			   const char *body, size_t body_len, bool send_body)
{
	struct text text = { 0 };
	uv_buf_t buffer;

	/* The timer keeps running: it also bounds a client that does not read the response. */
	uv_read_stop((uv_stream_t *)&client->socket);
	text_printf(&text, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n",
		    status, status_text(status), content_type, body_len);
	if (status == 405)
		text_printf(&text, "Allow: GET, HEAD\r\n");
	text_printf(&text, "\r\n");
	if (send_body && body_len > 0)
		text_printf(&text, "%.*s", (int)body_len, body);
	if (text.failed) {
		free(text.data);
		log_event(LOG_ERROR, "metrics_request_failed", "addr=%s error=\"out of memory\"", client->address);
		client_close(client);
		return;
	}
	client->response = text.data;
	buffer = uv_buf_init(text.data, (unsigned int)text.len);
	client->write_request.data = client;
	if (uv_write(&client->write_request, (uv_stream_t *)&client->socket, &buffer, 1, on_response_written) != 0)
		client_close(client);
}

static void respond_error(struct metrics_client *client, int status, const char *message)
{
	char body[192];
	int len = snprintf(body, sizeof(body), "%s\n", message);

	log_rejected_request(client, status, message);
	client_respond(client, status, "text/plain; charset=utf-8", body, (size_t)len, true);
}

static void handle_request(struct metrics_client *client, const struct http_request *request)
{
	bool head = strcmp(request->method, "HEAD") == 0;
	struct text metrics = { 0 };

	if (!head && strcmp(request->method, "GET") != 0) {
		respond_error(client, 405, "method not allowed: use GET /metrics");
		return;
	}
	if (strcmp(request->path, "/metrics") != 0) {
		respond_error(client, 404, "not found: the metrics are at /metrics");
		return;
	}
	format_metrics(client->daemon, &metrics);
	if (metrics.failed) {
		free(metrics.data);
		respond_error(client, 500, "out of memory");
		return;
	}
	log_event(LOG_DEBUG, "metrics_request", "addr=%s method=%s bytes=%zu", client->address, request->method,
		  metrics.len);
	client_respond(client, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.data, metrics.len, !head);
	free(metrics.data);
}

static void on_client_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
	struct metrics_client *client = handle->data;

	*buffer = uv_buf_init((char *)client->received + client->received_len,
			      (unsigned int)(sizeof(client->received) - client->received_len));
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer)
{
	struct metrics_client *client = stream->data;
	struct http_request request;

	if (client->closing || nread == 0)
		return;
	if (nread < 0) {
		/* A client that leaves before its request is complete gets nothing. */
		client_close(client);
		return;
	}
	if (client->lingering) {
		client->received_len = 0;
		return;
	}
	client->received_len += (size_t)nread;

	switch (http_parse_request(&request, client->received, client->received_len)) {
	case HTTP_OK:
		handle_request(client, &request);
		break;
	case HTTP_INCOMPLETE:
		break;
	case HTTP_BAD_REQUEST:
		respond_error(client, 400, "bad request: expected GET /metrics HTTP/1.1");
		break;
	case HTTP_HEAD_TOO_LARGE:
		respond_error(client, 431, "request head larger than 4096 bytes");
		break;
	case HTTP_BAD_VERSION:
		respond_error(client, 505, "HTTP version not supported: use HTTP/1.1 or HTTP/1.0");
		break;
	}
}

static void on_rejected_closed(uv_handle_t *handle)
{
	free(handle);
}

/* Over the client limit or the descriptor budget: accept and reset at once. */
static void reject_client(struct daemon *daemon, uv_stream_t *listener, const char *reason)
{
	uv_tcp_t *handle = malloc(sizeof(*handle));
	char address[64] = "-";
	uint64_t suppressed;

	/* NOTE: without memory the connection stays unaccepted, and libuv does not read this listener again. */
	if (handle == NULL) {
		log_event(LOG_ERROR, "accept_failed", "listener=metrics error=\"out of memory\"");
		return;
	}
	uv_tcp_init(daemon->loop, handle);
	if (uv_accept(listener, (uv_stream_t *)handle) == 0)
		daemon_format_peer_address(address, sizeof(address), handle);
	uv_tcp_close_reset(handle, on_rejected_closed);
	if (log_ratelimit_allow(&daemon->metrics_log, daemon_now_ms(daemon), &suppressed))
		log_event(LOG_WARN, "metrics_request_rejected", "addr=%s suppressed=%llu error=\"%s\"", address,
			  (unsigned long long)suppressed, reason);
}

static void on_metrics_connection(uv_stream_t *listener, int status)
{
	struct daemon *daemon = listener->data;
	struct metrics_client *client;

	if (status < 0) {
		log_event(LOG_WARN, "accept_failed", "listener=metrics error=\"%s\"", uv_strerror(status));
		return;
	}
	if (daemon->metrics_client_count >= METRICS_MAX_CLIENTS) {
		reject_client(daemon, listener, "too many metrics clients at once (at most 8)");
		return;
	}
	if (!daemon_has_descriptors(daemon, 1)) {
		reject_client(daemon, listener, "at the descriptor limit");
		return;
	}
	client = calloc(1, sizeof(*client));
	if (client == NULL) {
		reject_client(daemon, listener, "out of memory");
		return;
	}
	client->daemon = daemon;
	uv_tcp_init(daemon->loop, &client->socket);
	uv_timer_init(daemon->loop, &client->timer);
	client->socket.data = client;
	client->timer.data = client;
	client->shutdown_request.data = client;
	client->open_handles = 2;
	client->next = daemon->metrics_clients;
	if (daemon->metrics_clients != NULL)
		daemon->metrics_clients->prev = client;
	daemon->metrics_clients = client;
	daemon->metrics_client_count++;
	daemon->sockets++;

	if (uv_accept(listener, (uv_stream_t *)&client->socket) != 0) {
		client_close(client);
		return;
	}
	daemon_format_peer_address(client->address, sizeof(client->address), &client->socket);
	uv_timer_start(&client->timer, on_client_timeout, METRICS_REQUEST_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&client->socket, on_client_alloc, on_client_read);
}

int metrics_start(struct daemon *daemon)
{
	const struct config *config = daemon->config;
	struct log_ratelimit metrics_log = LOG_RATELIMIT_INIT(METRICS_LOG_INTERVAL_MS, METRICS_LOG_BURST);
	char text[64];
	int error;

	daemon->metrics_log = metrics_log;
	config_format_address(text, sizeof(text), &config->metrics_listen);
	uv_tcp_init(daemon->loop, &daemon->metrics_listener);
	daemon->metrics_listener.data = daemon;
	error = uv_tcp_bind(&daemon->metrics_listener, (const struct sockaddr *)&config->metrics_listen, 0);
	if (error == 0)
		error = uv_listen((uv_stream_t *)&daemon->metrics_listener, 64, on_metrics_connection);
	if (error < 0) {
		log_event(LOG_ERROR, "listen_failed", "listener=metrics addr=%s error=\"%s\"", text, uv_strerror(error));
		uv_close((uv_handle_t *)&daemon->metrics_listener, NULL);
		return -1;
	}
	daemon->has_metrics_listener = true;
	log_event(LOG_INFO, "listening", "listener=metrics addr=%s", text);
	return 0;
}

void metrics_stop(struct daemon *daemon)
{
	if (daemon->has_metrics_listener) {
		uv_close((uv_handle_t *)&daemon->metrics_listener, NULL);
		daemon->has_metrics_listener = false;
	}
	for (struct metrics_client *client = daemon->metrics_clients; client != NULL; client = client->next)
		client_close(client);
}
