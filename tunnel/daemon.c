#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "forward.h"
#include "metrics.h"
#include "privileges.h"
#include "tcp_channel.h"
#include "udp_transport.h"

/* Lines about rejected tunnel connections: a stranger can cause them. */
#define REJECTED_LOG_INTERVAL_MS 10000
#define REJECTED_LOG_BURST 20

/* Lines about failed dials to one peer, while clients wait for it. */
#define DIAL_LOG_INTERVAL_MS 10000
#define DIAL_LOG_BURST 5

uint64_t daemon_tick_period_ms(const struct config *config)
{
	uint64_t period = config->keepalive_interval_ms;

	if (config->keepalive_timeout_ms < period)
		period = config->keepalive_timeout_ms;
	if (config->rekey_interval_ms < period)
		period = config->rekey_interval_ms;
	period /= 4;
	if (period < 50)
		period = 50;
	if (period > 5000)
		period = 5000;
	return period;
}

uint64_t daemon_now_ms(const struct daemon *daemon)
{
	return uv_now(daemon->loop);
}

void daemon_format_peer_address(char *out, size_t out_size, const uv_tcp_t *handle)
{
	struct sockaddr_storage address;
	int length = sizeof(address);

	if (uv_tcp_getpeername(handle, (struct sockaddr *)&address, &length) != 0) {
		snprintf(out, out_size, "-");
		return;
	}
	config_format_address(out, out_size, &address);
}

struct peer *daemon_find_peer_by_key(struct daemon *daemon, const uint8_t public_key[KEY_LEN])
{
	for (size_t i = 0; i < daemon->peer_count; i++) {
		if (sodium_memcmp(daemon->peers[i].config->public_key, public_key, KEY_LEN) == 0)
			return &daemon->peers[i];
	}
	return NULL;
}

/* Lines about connections rejected at the descriptor limit. */
#define DESCRIPTOR_LOG_INTERVAL_MS 10000
#define DESCRIPTOR_LOG_BURST 5

/* Each forwarded connection has one socket on each side of the daemon. */
#define SOCKETS_PER_CONNECTION 2

bool daemon_has_descriptors(const struct daemon *daemon, size_t needed)
{
	size_t in_use = daemon->descriptors_at_start + daemon->sockets;

	return in_use + needed + DAEMON_DESCRIPTOR_RESERVE <= daemon->descriptor_limit;
}

static void on_rejected_closed(uv_handle_t *handle)
{
	free(handle);
}

/*
 * Take the waiting connection off the listener and reset it. libuv stops
 * reading a listener whose connection is not accepted, so it must be.
 */
static void reject_connection(struct daemon *daemon, uv_stream_t *listener, const char *listener_fields)
{
	char address[64] = "-";
	uv_tcp_t *handle = malloc(sizeof(*handle));
	uint64_t suppressed;

	/* NOTE: without memory the connection stays unaccepted, and libuv does not read this listener again. */
	if (handle == NULL) {
		log_event(LOG_ERROR, "accept_failed", "%s error=\"out of memory\"", listener_fields);
		return;
	}
	uv_tcp_init(daemon->loop, handle);
	if (uv_accept(listener, (uv_stream_t *)handle) == 0)
		daemon_format_peer_address(address, sizeof(address), handle);
	uv_tcp_close_reset(handle, on_rejected_closed);
	daemon->counters.connections_rejected++;
	if (log_ratelimit_allow(&daemon->descriptor_log, daemon_now_ms(daemon), &suppressed))
		log_event(LOG_WARN, "connection_rejected",
			  "%s addr=%s suppressed=%llu error=\"at the descriptor limit: %zu of %zu in use, "
			  "%d kept in reserve; raise the limit (LimitNOFILE= in the service unit, or ulimit -n)\"",
			  listener_fields, address, (unsigned long long)suppressed,
			  daemon->descriptors_at_start + daemon->sockets, daemon->descriptor_limit,
			  DAEMON_DESCRIPTOR_RESERVE);
}

static void on_tunnel_connection(uv_stream_t *listener, int status)
{
	struct daemon *daemon = listener->data;

	if (status < 0) {
		uint64_t suppressed;

		/* On EMFILE and similar errors libuv drops the connection, so log it, rate-limited. */
		if (log_ratelimit_allow(&daemon->rejected_log, daemon_now_ms(daemon), &suppressed))
			log_event(LOG_WARN, "accept_failed", "listener=tunnel suppressed=%llu error=\"%s\"",
				  (unsigned long long)suppressed, uv_strerror(status));
		return;
	}
	if (!daemon_has_descriptors(daemon, SOCKETS_PER_CONNECTION)) {
		reject_connection(daemon, listener, "peer=- listener=tunnel");
		return;
	}
	tcp_channel_accept(daemon, listener);
}

static void on_forward_connection(uv_stream_t *listener, int status)
{
	struct peer *peer = listener->data;

	if (status < 0) {
		log_event(LOG_WARN, "accept_failed", "peer=%s listener=forward error=\"%s\"", peer->name,
			  uv_strerror(status));
		return;
	}
	/* Over UDP a connection needs only its local socket: the peer's session shares one. */
	if (!daemon_has_descriptors(peer->daemon,
				    peer->config->transport == CONFIG_TRANSPORT_UDP ? 1 : SOCKETS_PER_CONNECTION)) {
		char fields[128];

		snprintf(fields, sizeof(fields), "peer=%s listener=forward", peer->name);
		reject_connection(peer->daemon, listener, fields);
		return;
	}
	forward_accept_local(peer, listener);
}

static int listen_on(struct daemon *daemon, uv_tcp_t *handle, const struct sockaddr_storage *address,
		     uv_connection_cb callback, void *data, const char *what)
{
	char text[64];
	int error;

	config_format_address(text, sizeof(text), address);
	uv_tcp_init(daemon->loop, handle);
	handle->data = data;
	error = uv_tcp_bind(handle, (const struct sockaddr *)address, 0);
	if (error == 0)
		error = uv_listen((uv_stream_t *)handle, 511, callback);
	if (error < 0) {
		log_event(LOG_ERROR, "listen_failed", "%s addr=%s error=\"%s\"", what, text, uv_strerror(error));
		uv_close((uv_handle_t *)handle, NULL);
		return -1;
	}
	log_event(LOG_INFO, "listening", "%s addr=%s", what, text);
	return 0;
}

static size_t count_forwards(const struct daemon *daemon)
{
	size_t count = 0;

	for (const struct forward *forward = daemon->forwards; forward != NULL; forward = forward_next(forward))
		count++;
	return count;
}

/* The last handles go: the loop then ends. */
static void daemon_finish_stop(struct daemon *daemon)
{
	if (uv_is_closing((uv_handle_t *)&daemon->sigterm))
		return;
	udp_transport_close(daemon);
	uv_close((uv_handle_t *)&daemon->grace_timer, NULL);
	uv_close((uv_handle_t *)&daemon->sigterm, NULL);
	uv_close((uv_handle_t *)&daemon->sigint, NULL);
	uv_close((uv_handle_t *)&daemon->sigusr1, NULL);
}

static void log_status(struct daemon *daemon, const char *event)
{
	const struct daemon_counters *counters = &daemon->counters;

	log_event(LOG_INFO, event,
		  "connections=%zu pending_handshakes=%u handshakes_completed=%llu handshakes_rejected=%llu "
		  "handshakes_rate_limited=%llu handshakes_evicted=%llu dials_failed=%llu "
		  "connections_opened=%llu connections_reset=%llu connections_rejected=%llu "
		  "descriptors=%zu descriptor_limit=%zu rejections_not_logged=%llu",
		  count_forwards(daemon), (unsigned)daemon->pending_handshakes,
		  (unsigned long long)counters->handshakes_completed,
		  (unsigned long long)counters->handshakes_rejected,
		  (unsigned long long)counters->handshakes_rate_limited,
		  (unsigned long long)counters->handshakes_evicted, (unsigned long long)counters->dials_failed,
		  (unsigned long long)counters->connections_opened,
		  (unsigned long long)counters->connections_reset,
		  (unsigned long long)counters->connections_rejected,
		  daemon->descriptors_at_start + daemon->sockets, daemon->descriptor_limit,
		  (unsigned long long)daemon->rejected_log.suppressed);
}

static void on_status_signal(uv_signal_t *handle, int signal_number)
{
	log_status(handle->data, "status");
}

void daemon_forward_removed(struct daemon *daemon)
{
	if (daemon->stopping && daemon->forwards == NULL)
		daemon_finish_stop(daemon);
}

static void on_grace_over(uv_timer_t *timer)
{
	struct daemon *daemon = timer->data;

	log_event(LOG_INFO, "grace_period_over", "connections=%zu", count_forwards(daemon));
	forward_close_all(daemon, "daemon stopping: grace period over");
}

/*
 * Stop accepting, then give open connections shutdown_grace to finish
 * before they are reset. A second signal resets them at once.
 */
static void daemon_stop(struct daemon *daemon, const char *why)
{
	if (daemon->stopping) {
		log_event(LOG_INFO, "stopping_now", "reason=\"%s again\" connections=%zu", why, count_forwards(daemon));
		forward_close_all(daemon, "daemon stopping");
		return;
	}
	daemon->stopping = true;
	log_event(LOG_INFO, "stopping", "reason=\"%s\" connections=%zu grace_ms=%u", why, count_forwards(daemon),
		  (unsigned)daemon->config->shutdown_grace_ms);

	if (daemon->has_tunnel_listener)
		uv_close((uv_handle_t *)&daemon->tunnel_listener, NULL);
	for (size_t i = 0; i < daemon->peer_count; i++) {
		if (daemon->peers[i].has_forward_listener)
			uv_close((uv_handle_t *)&daemon->peers[i].forward_listener, NULL);
	}
	tcp_channel_close_pending(daemon);
	metrics_stop(daemon);
	udp_transport_stop_listening(daemon);

	if (daemon->forwards == NULL) {
		daemon_finish_stop(daemon);
		return;
	}
	if (daemon->config->shutdown_grace_ms == 0) {
		forward_close_all(daemon, "daemon stopping");
		return;
	}
	uv_timer_start(&daemon->grace_timer, on_grace_over, daemon->config->shutdown_grace_ms, 0);
}

static void on_signal(uv_signal_t *handle, int signal_number)
{
	struct daemon *daemon = handle->data;

	daemon_stop(daemon, signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
}

/*
 * Count the open descriptors from /proc/self/fd, less the one reading it.
 * Without /proc, probe the first 1024: a daemon that has only just bound
 * its listeners has none above that.
 */
static size_t count_open_descriptors(void)
{
	DIR *directory = opendir("/proc/self/fd");
	struct dirent *entry;
	size_t count = 0;

	if (directory == NULL) {
		for (int fd = 0; fd < 1024; fd++) {
			if (fcntl(fd, F_GETFD) != -1)
				count++;
		}
		return count;
	}
	while ((entry = readdir(directory)) != NULL) {
		if (entry->d_name[0] != '.')
			count++;
	}
	closedir(directory);
	return count > 0 ? count - 1 : 0;
}

static void measure_descriptors(struct daemon *daemon)
{
	struct rlimit limit;

	daemon->descriptor_limit = SIZE_MAX / 2;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
	    limit.rlim_cur < daemon->descriptor_limit)
		daemon->descriptor_limit = limit.rlim_cur;
	daemon->descriptors_at_start = count_open_descriptors();
	log_event(LOG_DEBUG, "descriptor_budget", "open=%zu limit=%zu reserve=%d", daemon->descriptors_at_start,
		  daemon->descriptor_limit, DAEMON_DESCRIPTOR_RESERVE);
	if (!daemon_has_descriptors(daemon, SOCKETS_PER_CONNECTION))
		log_event(LOG_WARN, "descriptor_limit",
			  "error=\"the limit of %zu descriptors leaves no room for a connection: raise it "
			  "(LimitNOFILE= in the service unit, or ulimit -n)\"",
			  daemon->descriptor_limit);
}

static int daemon_start(struct daemon *daemon)
{
	struct config *config = daemon->config;

	uv_timer_init(daemon->loop, &daemon->grace_timer);
	daemon->grace_timer.data = daemon;
	uv_signal_init(daemon->loop, &daemon->sigterm);
	uv_signal_init(daemon->loop, &daemon->sigint);
	daemon->sigterm.data = daemon;
	daemon->sigint.data = daemon;
	uv_signal_start(&daemon->sigterm, on_signal, SIGTERM);
	uv_signal_start(&daemon->sigint, on_signal, SIGINT);
	uv_signal_init(daemon->loop, &daemon->sigusr1);
	daemon->sigusr1.data = daemon;
	uv_signal_start(&daemon->sigusr1, on_status_signal, SIGUSR1);

	daemon->peers = calloc(config->peer_count, sizeof(*daemon->peers));
	if (daemon->peers == NULL)
		return -1;
	daemon->peer_count = config->peer_count;

	for (size_t i = 0; i < config->peer_count; i++) {
		struct peer *peer = &daemon->peers[i];

		peer->daemon = daemon;
		peer->config = &config->peers[i];
		peer->name = config->peers[i].name;
		peer->dial_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(DIAL_LOG_INTERVAL_MS, DIAL_LOG_BURST);
	}


	if (config->has_listen) {
		if (listen_on(daemon, &daemon->tunnel_listener, &config->listen, on_tunnel_connection,
			      daemon, "listener=tunnel") != 0)
			return -1;
		daemon->has_tunnel_listener = true;
	}

	for (size_t i = 0; i < daemon->peer_count; i++) {
		struct peer *peer = &daemon->peers[i];
		char what[96];

		if (!peer->config->has_forward_listen)
			continue;
		snprintf(what, sizeof(what), "listener=forward peer=%s", peer->name);
		if (listen_on(daemon, &peer->forward_listener, &peer->config->forward_listen,
			      on_forward_connection, peer, what) != 0)
			return -1;
		peer->has_forward_listener = true;
	}

	if (config->has_metrics_listen && metrics_start(daemon) != 0)
		return -1;
	if (udp_transport_needed(config) && udp_transport_start(daemon) != 0)
		return -1;

	/* Before a chroot, which may hide /proc. */
	measure_descriptors(daemon);

	if (privileges_drop(config) != 0)
		return -1;
	return 0;
}

/*
 * Each forwarded connection takes two descriptors on each host, so the
 * usual soft limit of 1024 would cap a daemon near 500 connections. The
 * hard limit is the administrator's real bound.
 */
static void raise_descriptor_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
		return;
	limit.rlim_cur = limit.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
		log_event(LOG_WARN, "descriptor_limit", "error=\"cannot raise the soft limit: %s\"", strerror(errno));
}

int daemon_run(struct config *config)
{
	struct daemon daemon;
	struct log_ratelimit rejected_log = LOG_RATELIMIT_INIT(REJECTED_LOG_INTERVAL_MS, REJECTED_LOG_BURST);
	struct log_ratelimit descriptor_log = LOG_RATELIMIT_INIT(DESCRIPTOR_LOG_INTERVAL_MS, DESCRIPTOR_LOG_BURST);
	char public_key[KEY_BASE64_LEN + 1];
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	int status = 0;

	memset(&daemon, 0, sizeof(daemon));
	daemon.failed_handshakes = malloc(sizeof(*daemon.failed_handshakes));
	if (daemon.failed_handshakes == NULL) {
		log_event(LOG_ERROR, "start_failed", "error=\"out of memory\"");
		return 1;
	}
	randombytes_buf(hash_key, sizeof(hash_key));
	ratelimit_init(daemon.failed_handshakes, DAEMON_FAILED_HANDSHAKES_PER_SECOND,
		       DAEMON_FAILED_HANDSHAKE_BURST, hash_key);
	daemon.config = config;
	daemon.rejected_log = rejected_log;
	daemon.descriptor_log = descriptor_log;
	daemon.loop = uv_default_loop();
	daemon.start_time = time(NULL);

	/* A write to a connection the other side closed must fail, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	raise_descriptor_limit();

	key_encode(public_key, config->public_key);
	log_event(LOG_INFO, "started", "version=%s config=%s public_key=%s peers=%zu", WALGUARD_VERSION,
		  config->path, public_key, config->peer_count);

	if (daemon_start(&daemon) != 0) {
		status = 1;
		daemon_stop(&daemon, "start failed");
	}

	uv_run(daemon.loop, UV_RUN_DEFAULT);
	log_status(&daemon, "final_status");
	uv_loop_close(daemon.loop);
	free(daemon.peers);
	free(daemon.failed_handshakes);
	tcp_channel_free_cache();
	udp_transport_free(&daemon);
	log_event(LOG_INFO, "stopped", "status=%d", status);
	return status;
}
