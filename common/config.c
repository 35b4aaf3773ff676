#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#define CONFIG_FILE_MAX_SIZE (1024 * 1024)
#define PEER_NAME_MAX_LEN 32
#define HANDSHAKE_TIMEOUT_MIN_MS 100
#define HANDSHAKE_TIMEOUT_MAX_MS 120000
#define HOST_NAME_MAX_LEN 253
#define HOST_LABEL_MAX_LEN 63

#define HINT_HOST_PORT "expected host:port"
#define HINT_ADDRESS_PORT "expected an IP address and port, such as 127.0.0.1:5433 or [::1]:5433"
#define HINT_PUBLIC_KEY "use the output of 'walguard-keygen pubkey' on the peer's host"

/* ---- Error lines ---- */

static void config_errors_add(struct config_errors *errors, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static void config_errors_add(struct config_errors *errors, const char *format, ...)
{
	char **lines;
	char *line;
	va_list args;
	int n;

	if (errors == NULL)
		return;

	va_start(args, format);
	n = vasprintf(&line, format, args);
	va_end(args);
	if (n < 0)
		return;

	lines = realloc(errors->lines, (errors->count + 1) * sizeof(*lines));
	if (lines == NULL) {
		free(line);
		return;
	}
	lines[errors->count++] = line;
	errors->lines = lines;
}

void config_errors_free(struct config_errors *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		free(errors->lines[i]);
	free(errors->lines);
	errors->lines = NULL;
	errors->count = 0;
}

/* ---- Numbers, ports, addresses and host names ---- */

/* Parse decimal digits only: no sign, no spaces, no hex. */
static int config_parse_uint(const char *text, size_t len, uint64_t max, uint64_t *value)
{
	uint64_t result = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		result = result * 10 + (uint64_t)(text[i] - '0');
		if (result > max)
			return -1;
	}
	*value = result;
	return 0;
}

/*
 * Split "host:port" or "[v6]:port". On success *host points into text, and
 * *bracketed is true when the host was in brackets.
 */
static int config_split_host_port(const char *text, const char **host, size_t *host_len,
				  bool *bracketed, uint16_t *port, const char **error)
{
	const char *port_text;
	const char *close;
	const char *colon;
	uint64_t value;

	if (text[0] == '[') {
		close = strchr(text, ']');
		if (close == NULL) {
			*error = "missing ']' after the IPv6 address";
			return -1;
		}
		if (close[1] == '\0') {
			*error = "missing port";
			return -1;
		}
		if (close[1] != ':') {
			*error = "expected ':' and a port after ']'";
			return -1;
		}
		*host = text + 1;
		*host_len = (size_t)(close - text - 1);
		*bracketed = true;
		port_text = close + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*error = "missing port";
			return -1;
		}
		if (strchr(text, ':') != colon) {
			*error = "IPv6 address without [brackets]";
			return -1;
		}
		*host = text;
		*host_len = (size_t)(colon - text);
		*bracketed = false;
		port_text = colon + 1;
	}

	if (*host_len == 0) {
		*error = "empty host";
		return -1;
	}
	if (port_text[0] == '\0') {
		*error = "missing port";
		return -1;
	}
	for (const char *p = port_text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			*error = "port is not a number";
			return -1;
		}
	}
	if (config_parse_uint(port_text, strlen(port_text), 65535, &value) != 0 || value == 0) {
		*error = "port out of range 1..65535";
		return -1;
	}
	*port = (uint16_t)value;
	return 0;
}

/* Copy a host out of text so that inet_pton() can see it NUL-terminated. */
static int config_copy_host(char *out, size_t out_size, const char *host, size_t host_len)
{
	if (host_len >= out_size)
		return -1;
	memcpy(out, host, host_len);
	out[host_len] = '\0';
	return 0;
}

static bool config_is_host_name(const char *host, size_t len)
{
	size_t label_len = 0;

	if (len > HOST_NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];

		if (c == '.') {
			if (label_len == 0 || host[i - 1] == '-')
				return false;
			label_len = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label_len == 0)
			return false;
		if (++label_len > HOST_LABEL_MAX_LEN)
			return false;
	}
	return label_len > 0 && host[len - 1] != '-';
}

static bool config_is_dotted_numbers(const char *host, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (host[i] != '.' && (host[i] < '0' || host[i] > '9'))
			return false;
	}
	return true;
}

int config_parse_endpoint(struct config_endpoint *endpoint, const char *text, const char **error)
{
	char literal[INET6_ADDRSTRLEN];
	unsigned char scratch[sizeof(struct in6_addr)];
	const char *host;
	size_t host_len;
	bool bracketed;
	uint16_t port;

	if (config_split_host_port(text, &host, &host_len, &bracketed, &port, error) != 0)
		return -1;

	if (bracketed) {
		if (config_copy_host(literal, sizeof(literal), host, host_len) != 0 ||
		    inet_pton(AF_INET6, literal, scratch) != 1) {
			*error = "invalid IPv6 address";
			return -1;
		}
	} else if (config_is_dotted_numbers(host, host_len)) {
		/* A name may not be all digits, so this can only be meant as IPv4. */
		if (config_copy_host(literal, sizeof(literal), host, host_len) != 0 ||
		    inet_pton(AF_INET, literal, scratch) != 1) {
			*error = "invalid IPv4 address";
			return -1;
		}
	} else if (!config_is_host_name(host, host_len)) {
		*error = "invalid host name (use letters, digits, '-' and '.')";
		return -1;
	}

	endpoint->host = strndup(host, host_len);
	if (endpoint->host == NULL) {
		*error = "out of memory";
		return -1;
	}
	endpoint->port = port;
	return 0;
}

int config_parse_socket_address(struct sockaddr_storage *address, const char *text, const char **error)
{
	char literal[INET6_ADDRSTRLEN];
	struct sockaddr_in *v4 = (struct sockaddr_in *)address;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
	const char *host;
	size_t host_len;
	bool bracketed;
	uint16_t port;

	if (config_split_host_port(text, &host, &host_len, &bracketed, &port, error) != 0)
		return -1;

	memset(address, 0, sizeof(*address));
	if (bracketed) {
		if (config_copy_host(literal, sizeof(literal), host, host_len) != 0 ||
		    inet_pton(AF_INET6, literal, &v6->sin6_addr) != 1) {
			*error = "invalid IPv6 address";
			return -1;
		}
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		return 0;
	}
	if (config_copy_host(literal, sizeof(literal), host, host_len) != 0 ||
	    inet_pton(AF_INET, literal, &v4->sin_addr) != 1) {
		*error = "not an IP address (a host name is not allowed here)";
		return -1;
	}
	v4->sin_family = AF_INET;
	v4->sin_port = htons(port);
	return 0;
}

void config_format_address(char *out, size_t out_size, const struct sockaddr_storage *address)
{
	char literal[INET6_ADDRSTRLEN];
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;

	if (address->ss_family == AF_INET) {
		inet_ntop(AF_INET, &v4->sin_addr, literal, sizeof(literal));
		snprintf(out, out_size, "%s:%u", literal, ntohs(v4->sin_port));
	} else if (address->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &v6->sin6_addr, literal, sizeof(literal));
		snprintf(out, out_size, "[%s]:%u", literal, ntohs(v6->sin6_port));
	} else {
		snprintf(out, out_size, "(address family %d)", address->ss_family);
	}
}

static bool config_address_is_loopback(const struct sockaddr_storage *address)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;

	if (address->ss_family == AF_INET)
		return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
	if (address->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static bool config_address_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return a6->sin6_port == b6->sin6_port &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
	return false;
}

/* ---- Parser state ---- */

enum section_kind {
	SECTION_NONE,		/* before the first header */
	SECTION_INTERFACE,
	SECTION_PEER,
	SECTION_SKIPPED,	/* a header already reported as wrong: its keys are ignored */
};

enum interface_key {
	INTERFACE_PRIVATE_KEY_FILE,
	INTERFACE_LISTEN,
	INTERFACE_LISTEN_UDP,
	INTERFACE_ALLOW_REMOTE_FORWARD_LISTEN,
	INTERFACE_LOG_LEVEL,
	INTERFACE_HANDSHAKE_TIMEOUT,
	INTERFACE_MAX_CONNECTIONS_PER_PEER,
	INTERFACE_KEEPALIVE_INTERVAL,
	INTERFACE_KEEPALIVE_TIMEOUT,
	INTERFACE_REKEY_INTERVAL,
	INTERFACE_REKEY_AFTER_RECORDS,
	INTERFACE_CONNECT_TIMEOUT,
	INTERFACE_DIAL_BACKOFF_MAX,
	INTERFACE_SHUTDOWN_GRACE,
	INTERFACE_USER,
	INTERFACE_CHROOT,
	INTERFACE_METRICS_LISTEN,
	INTERFACE_ALLOW_REMOTE_METRICS_LISTEN,
	INTERFACE_KEY_COUNT,
};

enum peer_key {
	PEER_PUBLIC_KEY,
	PEER_PRESHARED_KEY_FILE,
	PEER_ENDPOINT,
	PEER_FORWARD_LISTEN,
	PEER_FORWARD_TARGET,
	PEER_TRANSPORT,
	PEER_KEY_COUNT,
};

static const char *const interface_key_names[INTERFACE_KEY_COUNT] = {
	[INTERFACE_PRIVATE_KEY_FILE] = "private_key_file",
	[INTERFACE_LISTEN] = "listen",
	[INTERFACE_LISTEN_UDP] = "listen_udp",
	[INTERFACE_ALLOW_REMOTE_FORWARD_LISTEN] = "allow_remote_forward_listen",
	[INTERFACE_LOG_LEVEL] = "log_level",
	[INTERFACE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[INTERFACE_MAX_CONNECTIONS_PER_PEER] = "max_connections_per_peer",
	[INTERFACE_KEEPALIVE_INTERVAL] = "keepalive_interval",
	[INTERFACE_KEEPALIVE_TIMEOUT] = "keepalive_timeout",
	[INTERFACE_REKEY_INTERVAL] = "rekey_interval",
	[INTERFACE_REKEY_AFTER_RECORDS] = "rekey_after_records",
	[INTERFACE_CONNECT_TIMEOUT] = "connect_timeout",
	[INTERFACE_DIAL_BACKOFF_MAX] = "dial_backoff_max",
	[INTERFACE_SHUTDOWN_GRACE] = "shutdown_grace",
	[INTERFACE_USER] = "user",
	[INTERFACE_CHROOT] = "chroot",
	[INTERFACE_METRICS_LISTEN] = "metrics_listen",
	[INTERFACE_ALLOW_REMOTE_METRICS_LISTEN] = "allow_remote_metrics_listen",
};

/* The duration keys of [interface]: where each goes and its allowed range. */
struct duration_key {
	enum interface_key key;
	size_t offset;		/* of a uint32_t in struct config */
	uint32_t min_ms;
	uint32_t max_ms;
	const char *range;	/* the range as the error message states it */
};

static const struct duration_key duration_keys[] = {
	{ INTERFACE_HANDSHAKE_TIMEOUT, offsetof(struct config, handshake_timeout_ms),
	  HANDSHAKE_TIMEOUT_MIN_MS, HANDSHAKE_TIMEOUT_MAX_MS, "100ms to 120s" },
	{ INTERFACE_KEEPALIVE_INTERVAL, offsetof(struct config, keepalive_interval_ms), 100, 3600000, "100ms to 60m" },
	{ INTERFACE_KEEPALIVE_TIMEOUT, offsetof(struct config, keepalive_timeout_ms), 300, 3600000, "300ms to 60m" },
	{ INTERFACE_REKEY_INTERVAL, offsetof(struct config, rekey_interval_ms), 100, 86400000, "100ms to 1440m" },
	{ INTERFACE_CONNECT_TIMEOUT, offsetof(struct config, connect_timeout_ms), 0, 600000, "0 to 10m" },
	{ INTERFACE_DIAL_BACKOFF_MAX, offsetof(struct config, dial_backoff_max_ms), 100, 600000, "100ms to 10m" },
	{ INTERFACE_SHUTDOWN_GRACE, offsetof(struct config, shutdown_grace_ms), 0, 600000, "0 to 10m" },
};

static const struct duration_key *duration_key_find(enum interface_key key)
{
	for (size_t i = 0; i < sizeof(duration_keys) / sizeof(duration_keys[0]); i++) {
		if (duration_keys[i].key == key)
			return &duration_keys[i];
	}
	return NULL;
}

static const char *const peer_key_names[PEER_KEY_COUNT] = {
	[PEER_PUBLIC_KEY] = "public_key",
	[PEER_PRESHARED_KEY_FILE] = "preshared_key_file",
	[PEER_ENDPOINT] = "endpoint",
	[PEER_FORWARD_LISTEN] = "forward_listen",
	[PEER_FORWARD_TARGET] = "forward_target",
	[PEER_TRANSPORT] = "transport",
};

/*
 * Parser data about a peer beyond struct config_peer: the line of each key
 * (0 when absent) and whether its value was valid.
 */
struct peer_lines {
	int key_line[PEER_KEY_COUNT];
	bool key_valid[PEER_KEY_COUNT];
};

/* An error held back so that all of them can be reported in line order. */
struct pending_error {
	int line;		/* 0 for the whole file */
	size_t sequence;
	char *text;
};

struct parse_state {
	struct config *config;
	struct pending_error *pending;
	size_t pending_count;
	size_t error_count;		/* may exceed pending_count when memory ran out */
	char *folder;			/* the config file's folder with a trailing '/', or "" */

	/* The reader's position in the text. */
	const char *next;
	int line;
	bool line_has_key;		/* the line handed to inih should reach the handler */
	bool handler_called;

	enum section_kind section;
	int interface_line;
	int interface_key_line[INTERFACE_KEY_COUNT];
	struct peer_lines *peer_lines;	/* parallel to config->peers */
	bool saw_interface_header;	/* even a broken one */
	bool saw_peer_header;		/* even a broken one */
	bool reported_too_many_peers;
};

static void config_error(struct parse_state *state, int line, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* Hold "FILE:LINE: " and the message; line 0 leaves the line out. */
static void config_error(struct parse_state *state, int line, const char *format, ...)
{
	struct pending_error *pending;
	char *message;
	char *text;
	va_list args;
	int n;

	va_start(args, format);
	n = vasprintf(&message, format, args);
	va_end(args);
	if (n < 0)
		message = NULL;

	if (line > 0)
		n = asprintf(&text, "%s:%d: %s", state->config->path, line,
			     message != NULL ? message : "out of memory");
	else
		n = asprintf(&text, "%s: %s", state->config->path,
			     message != NULL ? message : "out of memory");
	free(message);
	if (n < 0)
		text = NULL;

	/* Counted even if the text is lost, so that parsing still fails. */
	state->error_count++;
	pending = realloc(state->pending, (state->pending_count + 1) * sizeof(*pending));
	if (pending == NULL) {
		free(text);
		return;
	}
	state->pending = pending;
	pending[state->pending_count].line = line;
	pending[state->pending_count].sequence = state->pending_count;
	pending[state->pending_count].text = text;
	state->pending_count++;
}

static int config_compare_errors(const void *a, const void *b)
{
	const struct pending_error *x = a;
	const struct pending_error *y = b;
	/* Whole-file errors go last. */
	unsigned int x_line = x->line > 0 ? (unsigned int)x->line : UINT_MAX;
	unsigned int y_line = y->line > 0 ? (unsigned int)y->line : UINT_MAX;

	if (x_line != y_line)
		return x_line < y_line ? -1 : 1;
	return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
}

/* Move the held errors to errors, sorted by line and then in the order found. */
static void config_flush_errors(struct parse_state *state, struct config_errors *errors)
{
	if (state->pending_count > 0)
		qsort(state->pending, state->pending_count, sizeof(*state->pending),
		      config_compare_errors);
	for (size_t i = 0; i < state->pending_count; i++) {
		if (state->pending[i].text != NULL)
			config_errors_add(errors, "%s", state->pending[i].text);
		free(state->pending[i].text);
	}
	free(state->pending);
	state->pending = NULL;
	state->pending_count = 0;
}

/* ---- Values ---- */

static int config_parse_bool(const char *text, bool *value)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(text, yes[i]) == 0) {
			*value = true;
			return 0;
		}
		if (strcmp(text, no[i]) == 0) {
			*value = false;
			return 0;
		}
	}
	return -1;
}

/* A number of milliseconds, seconds or minutes: "250ms", "5s", "2m", "5". */
static int config_parse_duration_ms(const char *text, uint64_t *ms)
{
	const char *unit = text;
	uint64_t number;
	uint64_t scale;

	while (*unit >= '0' && *unit <= '9')
		unit++;
	if (strcmp(unit, "ms") == 0)
		scale = 1;
	else if (strcmp(unit, "s") == 0 || unit[0] == '\0')
		scale = 1000;
	else if (strcmp(unit, "m") == 0)
		scale = 60000;
	else
		return -1;

	/* A bound far above any allowed value keeps the product from overflowing. */
	if (config_parse_uint(text, (size_t)(unit - text), UINT32_MAX, &number) != 0)
		return -1;
	*ms = number * scale;
	return 0;
}

static bool config_is_peer_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > PEER_NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static char *config_resolve_path(const struct parse_state *state, const char *value)
{
	char *path;

	if (value[0] == '/' || state->folder[0] == '\0')
		return strdup(value);
	if (asprintf(&path, "%s%s", state->folder, value) < 0)
		return NULL;
	return path;
}

/* ---- [interface] keys ---- */

static void config_set_duration(struct parse_state *state, const struct duration_key *duration,
				const char *value)
{
	const char *name = interface_key_names[duration->key];
	uint64_t number;

	if (config_parse_duration_ms(value, &number) != 0) {
		config_error(state, state->line,
			     "[interface] key '%s': invalid duration '%s' (expected a whole number with unit ms, s or m, such as 5s)",
			     name, value);
		return;
	}
	if (number < duration->min_ms || number > duration->max_ms) {
		config_error(state, state->line, "[interface] key '%s': %s is out of range (expected %s)", name,
			     value, duration->range);
		return;
	}
	*(uint32_t *)((char *)state->config + duration->offset) = (uint32_t)number;
}

static void config_set_interface_key(struct parse_state *state, enum interface_key key,
				     const char *value)
{
	struct config *config = state->config;
	const char *name = interface_key_names[key];
	const char *error;
	uint64_t number;
	bool flag;

	switch (key) {
	case INTERFACE_PRIVATE_KEY_FILE:
		config->private_key_file = config_resolve_path(state, value);
		config->private_key_file_line = state->line;
		if (config->private_key_file == NULL)
			config_error(state, state->line, "[interface] key '%s': out of memory", name);
		break;
	case INTERFACE_LISTEN:
		if (config_parse_socket_address(&config->listen, value, &error) != 0) {
			config_error(state, state->line, "[interface] key '%s': %s in '%s' (%s)",
				     name, error, value, HINT_ADDRESS_PORT);
			break;
		}
		config->has_listen = true;
		break;
	case INTERFACE_METRICS_LISTEN:
		if (config_parse_socket_address(&config->metrics_listen, value, &error) != 0) {
			config_error(state, state->line, "[interface] key '%s': %s in '%s' (%s)",
				     name, error, value, HINT_ADDRESS_PORT);
			break;
		}
		config->has_metrics_listen = true;
		break;
	case INTERFACE_LISTEN_UDP:
		if (config_parse_socket_address(&config->listen_udp, value, &error) != 0) {
			config_error(state, state->line, "[interface] key '%s': %s in '%s' (%s)",
				     name, error, value, HINT_ADDRESS_PORT);
			break;
		}
		config->has_listen_udp = true;
		break;
	case INTERFACE_ALLOW_REMOTE_FORWARD_LISTEN:
	case INTERFACE_ALLOW_REMOTE_METRICS_LISTEN:
		if (config_parse_bool(value, &flag) != 0) {
			config_error(state, state->line,
				     "[interface] key '%s': invalid boolean '%s' (expected yes, no, true, false, on, off, 1 or 0)",
				     name, value);
			break;
		}
		if (key == INTERFACE_ALLOW_REMOTE_FORWARD_LISTEN)
			config->allow_remote_forward_listen = flag;
		else
			config->allow_remote_metrics_listen = flag;
		break;
	case INTERFACE_LOG_LEVEL:
		if (log_level_parse(value, &config->log_level) != 0)
			config_error(state, state->line,
				     "[interface] key '%s': invalid level '%s' (expected error, warn, info or debug)",
				     name, value);
		break;
	case INTERFACE_HANDSHAKE_TIMEOUT:
	case INTERFACE_KEEPALIVE_INTERVAL:
	case INTERFACE_KEEPALIVE_TIMEOUT:
	case INTERFACE_REKEY_INTERVAL:
	case INTERFACE_CONNECT_TIMEOUT:
	case INTERFACE_DIAL_BACKOFF_MAX:
	case INTERFACE_SHUTDOWN_GRACE:
		config_set_duration(state, duration_key_find(key), value);
		break;
	case INTERFACE_REKEY_AFTER_RECORDS:
		if (config_parse_uint(value, strlen(value), UINT64_C(1) << 40, &number) != 0 || number == 0) {
			config_error(state, state->line,
				     "[interface] key '%s': invalid count '%s' (expected a whole number from 1 to 1099511627776)",
				     name, value);
			break;
		}
		config->rekey_after_records = number;
		break;
	case INTERFACE_USER:
		config->user = strdup(value);
		if (config->user == NULL)
			config_error(state, state->line, "[interface] key '%s': out of memory", name);
		break;
	case INTERFACE_CHROOT:
		if (value[0] != '/') {
			config_error(state, state->line,
				     "[interface] key '%s': '%s' is not an absolute path (expected a folder such as /var/empty)",
				     name, value);
			break;
		}
		config->chroot_dir = strdup(value);
		if (config->chroot_dir == NULL)
			config_error(state, state->line, "[interface] key '%s': out of memory", name);
		break;
	case INTERFACE_MAX_CONNECTIONS_PER_PEER:
		if (config_parse_uint(value, strlen(value), 65535, &number) != 0 || number == 0) {
			config_error(state, state->line,
				     "[interface] key '%s': invalid count '%s' (expected a whole number from 1 to 65535)",
				     name, value);
			break;
		}
		config->max_connections_per_peer = (uint32_t)number;
		break;
	case INTERFACE_KEY_COUNT:
		break;
	}
}

/* ---- [peer NAME] keys ---- */

static void config_set_peer_key(struct parse_state *state, enum peer_key key, const char *value)
{
	size_t index = state->config->peer_count - 1;
	struct config_peer *peer = &state->config->peers[index];
	struct peer_lines *lines = &state->peer_lines[index];
	const char *name = peer_key_names[key];
	const char *error;
	int result = -1;

	switch (key) {
	case PEER_PUBLIC_KEY:
		result = key_decode(peer->public_key, value, strlen(value), &error);
		if (result != 0)
			config_error(state, state->line, "[peer %s] key '%s': %s (%s)",
				     peer->name, name, error, HINT_PUBLIC_KEY);
		break;
	case PEER_PRESHARED_KEY_FILE:
		peer->preshared_key_file = config_resolve_path(state, value);
		peer->preshared_key_file_line = state->line;
		result = peer->preshared_key_file != NULL ? 0 : -1;
		if (result != 0)
			config_error(state, state->line, "[peer %s] key '%s': out of memory",
				     peer->name, name);
		break;
	case PEER_ENDPOINT:
		result = config_parse_endpoint(&peer->endpoint, value, &error);
		if (result != 0)
			config_error(state, state->line, "[peer %s] key '%s': %s in '%s' (%s)",
				     peer->name, name, error, value, HINT_HOST_PORT);
		peer->has_endpoint = result == 0;
		break;
	case PEER_FORWARD_LISTEN:
		result = config_parse_socket_address(&peer->forward_listen, value, &error);
		if (result != 0)
			config_error(state, state->line, "[peer %s] key '%s': %s in '%s' (%s)",
				     peer->name, name, error, value, HINT_ADDRESS_PORT);
		peer->has_forward_listen = result == 0;
		break;
	case PEER_FORWARD_TARGET:
		result = config_parse_endpoint(&peer->forward_target, value, &error);
		if (result != 0)
			config_error(state, state->line, "[peer %s] key '%s': %s in '%s' (%s)",
				     peer->name, name, error, value, HINT_HOST_PORT);
		break;
	case PEER_TRANSPORT:
		result = 0;
		if (strcmp(value, "tcp") == 0)
			peer->transport = CONFIG_TRANSPORT_TCP;
		else if (strcmp(value, "udp") == 0)
			peer->transport = CONFIG_TRANSPORT_UDP;
		else {
			result = -1;
			config_error(state, state->line, "[peer %s] key '%s': invalid transport '%s' (expected tcp or udp)",
				     peer->name, name, value);
		}
		break;
	case PEER_KEY_COUNT:
		break;
	}
	lines->key_valid[key] = result == 0;
}

/* ---- Section headers ---- */

static void config_start_peer(struct parse_state *state, const char *name, const char *label)
{
	struct config *config = state->config;
	struct config_peer *peers;
	struct peer_lines *lines;

	if (!config_is_peer_name(name)) {
		config_error(state, state->line,
			     "%s: invalid peer name '%s' (use 1 to %d letters, digits, '-', '_' or '.')",
			     label, name, PEER_NAME_MAX_LEN);
		state->section = SECTION_SKIPPED;
		return;
	}
	for (size_t i = 0; i < config->peer_count; i++) {
		if (strcmp(config->peers[i].name, name) == 0) {
			config_error(state, state->line,
				     "%s: peer name given twice (first on line %d; give each peer its own name)",
				     label, config->peers[i].line);
			state->section = SECTION_SKIPPED;
			return;
		}
	}
	if (config->peer_count == CONFIG_MAX_PEERS) {
		if (!state->reported_too_many_peers)
			config_error(state, state->line, "%s: too many peers (at most %d)",
				     label, CONFIG_MAX_PEERS);
		state->reported_too_many_peers = true;
		state->section = SECTION_SKIPPED;
		return;
	}

	peers = realloc(config->peers, (config->peer_count + 1) * sizeof(*peers));
	if (peers != NULL)
		config->peers = peers;
	lines = realloc(state->peer_lines, (config->peer_count + 1) * sizeof(*lines));
	if (lines != NULL)
		state->peer_lines = lines;
	if (peers == NULL || lines == NULL) {
		config_error(state, state->line, "%s: out of memory", label);
		state->section = SECTION_SKIPPED;
		return;
	}

	memset(&peers[config->peer_count], 0, sizeof(*peers));
	memset(&lines[config->peer_count], 0, sizeof(*lines));
	peers[config->peer_count].line = state->line;
	peers[config->peer_count].name = strdup(name);
	config->peer_count++;
	if (peers[config->peer_count - 1].name == NULL) {
		config_error(state, state->line, "%s: out of memory", label);
		state->section = SECTION_SKIPPED;
		return;
	}
	state->section = SECTION_PEER;
}

static char *config_trim_blanks(char *text)
{
	size_t len;

	while (*text == ' ' || *text == '\t')
		text++;
	len = strlen(text);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r'))
		len--;
	text[len] = '\0';
	return text;
}

/* Handle a line that starts with '['. inih never receives these lines. */
static void config_start_section(struct parse_state *state, char *header)
{
	char *close = strchr(header, ']');
	char *rest;
	char *name;
	char *label;

	if (close != NULL)
		*close = '\0';
	name = config_trim_blanks(header + 1);

	/* A broken header still shows which kind of section was meant. */
	if (strncmp(name, "interface", 9) == 0)
		state->saw_interface_header = true;
	if (strncmp(name, "peer", 4) == 0)
		state->saw_peer_header = true;

	if (close == NULL) {
		config_error(state, state->line, "section header without closing ']' (write [interface] or [peer NAME])");
		state->section = SECTION_SKIPPED;
		return;
	}
	rest = config_trim_blanks(close + 1);
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		config_error(state, state->line, "[%s]: unexpected text after ']' (start a comment with ';' or '#')", name);
		state->section = SECTION_SKIPPED;
		return;
	}

	if (strcmp(name, "interface") == 0) {
		if (state->interface_line != 0) {
			config_error(state, state->line,
				     "[interface]: section given twice (first on line %d; merge the two)",
				     state->interface_line);
			state->section = SECTION_SKIPPED;
			return;
		}
		state->interface_line = state->line;
		state->section = SECTION_INTERFACE;
		return;
	}

	if (strncmp(name, "peer", 4) != 0 || (name[4] != ' ' && name[4] != '\t' && name[4] != '\0')) {
		config_error(state, state->line,
			     "[%s]: unknown section (expected [interface] or [peer NAME])", name);
		state->section = SECTION_SKIPPED;
		return;
	}

	state->section = SECTION_SKIPPED;
	name = config_trim_blanks(name + 4);
	if (name[0] == '\0') {
		config_error(state, state->line, "[peer]: missing peer name (write [peer NAME])");
		return;
	}
	if (asprintf(&label, "[peer %s]", name) < 0) {
		config_error(state, state->line, "out of memory");
		return;
	}
	config_start_peer(state, name, label);
	free(label);
}

/* ---- inih callbacks ---- */

static void config_list_names(char *out, size_t out_size, const char *const *names, size_t count)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < count && used < out_size; i++)
		used += (size_t)snprintf(out + used, out_size - used, "%s%s", i > 0 ? ", " : "", names[i]);
}

static int config_handle_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse_state *state = user;
	const char *const *names;
	const char *label;
	int *key_line;
	size_t count;
	size_t index;
	char *peer_label = NULL;
	char known[256];

	state->handler_called = true;

	/* A build of inih with INI_ALLOW_NO_VALUE passes a bare "key" line here. */
	if (value == NULL) {
		state->handler_called = false;
		return 1;
	}

	switch (state->section) {
	case SECTION_NONE:
		config_error(state, state->line,
			     "key '%s': outside any section (put it under [interface] or [peer NAME])", key);
		return 1;
	case SECTION_SKIPPED:
		return 1;
	case SECTION_INTERFACE:
		names = interface_key_names;
		count = INTERFACE_KEY_COUNT;
		key_line = state->interface_key_line;
		label = "[interface]";
		break;
	case SECTION_PEER:
	default:
		names = peer_key_names;
		count = PEER_KEY_COUNT;
		key_line = state->peer_lines[state->config->peer_count - 1].key_line;
		if (asprintf(&peer_label, "[peer %s]",
			     state->config->peers[state->config->peer_count - 1].name) < 0) {
			config_error(state, state->line, "out of memory");
			return 1;
		}
		label = peer_label;
		break;
	}

	for (index = 0; index < count; index++) {
		if (strcmp(key, names[index]) == 0)
			break;
	}
	if (index == count) {
		config_list_names(known, sizeof(known), names, count);
		config_error(state, state->line, "%s key '%s': unknown key (expected one of: %s)",
			     label, key, known);
	} else if (key_line[index] != 0) {
		config_error(state, state->line, "%s key '%s': given twice (first on line %d; keep one)",
			     label, key, key_line[index]);
	} else {
		key_line[index] = state->line;
		if (value[0] == '\0')
			config_error(state, state->line, "%s key '%s': empty value", label, key);
		else if (state->section == SECTION_INTERFACE)
			config_set_interface_key(state, (enum interface_key)index, value);
		else
			config_set_peer_key(state, (enum peer_key)index, value);
	}

	free(peer_label);
	return 1;
}

/* Report the previous line if inih could not make a key and value of it. */
static void config_check_line(struct parse_state *state)
{
	if (state->line_has_key && !state->handler_called)
		config_error(state, state->line,
			     "expected 'key = value', a [section] header or a comment");
	state->line_has_key = false;
	state->handler_called = false;
}

/*
 * An fgets()-like reader for ini_parse_stream() that counts lines and
 * handles section headers itself. Whether inih passes a line number to the
 * handler is a build option (INI_HANDLER_LINENO) that its header cannot
 * reveal, and Debian 12's build (r55) never calls the handler for a section
 * header. Lines are handed over whole, with leading blanks stripped, so
 * that inih never treats one as the continuation of a multi-line value.
 */
static char *config_read_line(char *buffer, int size, void *stream)
{
	struct parse_state *state = stream;
	const char *start = state->next;
	const char *end;
	size_t len;

	config_check_line(state);
	if (*start == '\0')
		return NULL;

	end = strchr(start, '\n');
	if (end == NULL)
		end = start + strlen(start);
	state->next = *end == '\n' ? end + 1 : end;
	state->line++;

	if (state->line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
		start += 3;
	/* Every character inih counts as space, or it would read the line as a continuation. */
	while (start < end && (*start == ' ' || *start == '\t' || *start == '\v' || *start == '\f'))
		start++;
	if (end > start && end[-1] == '\r')
		end--;
	len = (size_t)(end - start);

	/* Room for the line, a newline and the NUL. */
	if (size < 2 || len > (size_t)size - 2) {
		config_error(state, state->line, "line too long (at most %d characters)", size - 2);
		strcpy(buffer, "\n");
		return buffer;
	}
	memcpy(buffer, start, len);
	buffer[len] = '\0';

	if (buffer[0] == '[') {
		config_start_section(state, buffer);
		strcpy(buffer, "\n");
		return buffer;
	}

	state->line_has_key = buffer[0] != '\0' && buffer[0] != ';' && buffer[0] != '#';
	buffer[len] = '\n';
	buffer[len + 1] = '\0';
	return buffer;
}

/* ---- Checks across keys and sections ---- */

/* The metrics listener sends counters in clear text, so it stays on loopback unless allow_remote_metrics_listen is set. */
static void config_check_metrics_listen(struct parse_state *state)
{
	const struct config *config = state->config;
	int line = state->interface_key_line[INTERFACE_METRICS_LISTEN];
	char address[INET6_ADDRSTRLEN + 8];

	if (!config->has_metrics_listen)
		return;
	config_format_address(address, sizeof(address), &config->metrics_listen);
	if (!config->allow_remote_metrics_listen && !config_address_is_loopback(&config->metrics_listen))
		config_error(state, line,
			     "[interface] key 'metrics_listen': %s is not a loopback address (use 127.0.0.1 or [::1], or set allow_remote_metrics_listen = yes)",
			     address);
	if (config->has_listen && config_address_equal(&config->listen, &config->metrics_listen))
		config_error(state, line,
			     "[interface] key 'metrics_listen': %s is also the listen address (use another port)",
			     address);
}

static void config_check_interface(struct parse_state *state)
{
	if (state->interface_line == 0) {
		if (!state->saw_interface_header)
			config_error(state, 0, "no [interface] section (add one with private_key_file = PATH)");
		return;
	}
	if (state->interface_key_line[INTERFACE_PRIVATE_KEY_FILE] == 0)
		config_error(state, state->interface_line,
			     "[interface]: missing key 'private_key_file' (add private_key_file = PATH of this host's private key)");
	if (state->config->keepalive_timeout_ms <= state->config->keepalive_interval_ms) {
		int line = state->interface_key_line[INTERFACE_KEEPALIVE_TIMEOUT];

		config_error(state, line != 0 ? line : state->interface_line,
			     "[interface] key 'keepalive_timeout': %u ms is not longer than keepalive_interval (%u ms); make it at least twice as long",
			     (unsigned)state->config->keepalive_timeout_ms,
			     (unsigned)state->config->keepalive_interval_ms);
	}
	config_check_metrics_listen(state);
}

static void config_check_forward_listen(struct parse_state *state, size_t index)
{
	struct config *config = state->config;
	struct config_peer *peer = &config->peers[index];
	struct peer_lines *lines = &state->peer_lines[index];
	int line = lines->key_line[PEER_FORWARD_LISTEN];
	char address[INET6_ADDRSTRLEN + 8];

	if (line == 0)
		return;
	if (lines->key_line[PEER_ENDPOINT] == 0)
		config_error(state, line,
			     "[peer %s] key 'forward_listen': needs endpoint to connect to (add endpoint = host:port of the peer)",
			     peer->name);
	if (!peer->has_forward_listen)
		return;

	config_format_address(address, sizeof(address), &peer->forward_listen);
	if (!config->allow_remote_forward_listen && !config_address_is_loopback(&peer->forward_listen))
		config_error(state, line,
			     "[peer %s] key 'forward_listen': %s is not a loopback address (use 127.0.0.1 or [::1], or set allow_remote_forward_listen = yes in [interface])",
			     peer->name, address);
	if (config->has_listen && config_address_equal(&config->listen, &peer->forward_listen))
		config_error(state, line,
			     "[peer %s] key 'forward_listen': %s is also the [interface] listen address (use another port)",
			     peer->name, address);
	if (config->has_metrics_listen && config_address_equal(&config->metrics_listen, &peer->forward_listen))
		config_error(state, line,
			     "[peer %s] key 'forward_listen': %s is also the [interface] metrics_listen address (use another port)",
			     peer->name, address);
	for (size_t j = 0; j < index; j++) {
		if (config->peers[j].has_forward_listen &&
		    config_address_equal(&config->peers[j].forward_listen, &peer->forward_listen)) {
			config_error(state, line,
				     "[peer %s] key 'forward_listen': %s is already used by [peer %s] on line %d (give each peer its own port)",
				     peer->name, address, config->peers[j].name,
				     state->peer_lines[j].key_line[PEER_FORWARD_LISTEN]);
			break;
		}
	}
}

static void config_check_peer(struct parse_state *state, size_t index)
{
	struct config *config = state->config;
	struct config_peer *peer = &config->peers[index];
	struct peer_lines *lines = &state->peer_lines[index];

	if (lines->key_line[PEER_PUBLIC_KEY] == 0)
		config_error(state, peer->line,
			     "[peer %s]: missing key 'public_key' (add public_key = the output of 'walguard-keygen pubkey' on that host)",
			     peer->name);
	if (lines->key_valid[PEER_PUBLIC_KEY]) {
		for (size_t j = 0; j < index; j++) {
			if (state->peer_lines[j].key_valid[PEER_PUBLIC_KEY] &&
			    sodium_memcmp(config->peers[j].public_key, peer->public_key, KEY_LEN) == 0) {
				config_error(state, lines->key_line[PEER_PUBLIC_KEY],
					     "[peer %s] key 'public_key': same key as [peer %s] on line %d (each host needs its own key pair)",
					     peer->name, config->peers[j].name,
					     state->peer_lines[j].key_line[PEER_PUBLIC_KEY]);
				break;
			}
		}
	}

	config_check_forward_listen(state, index);
	if (lines->key_line[PEER_TRANSPORT] != 0 && lines->key_line[PEER_ENDPOINT] == 0)
		config_error(state, lines->key_line[PEER_TRANSPORT],
			     "[peer %s] key 'transport': sets how this host dials the peer, but the peer has no endpoint (add endpoint = host:port of the peer, or remove transport)",
			     peer->name);

	peer->accepts_connections = lines->key_line[PEER_FORWARD_TARGET] != 0 ||
				    lines->key_line[PEER_FORWARD_LISTEN] == 0;
	if (peer->accepts_connections && lines->key_line[PEER_FORWARD_TARGET] == 0) {
		peer->forward_target.host = strdup(CONFIG_DEFAULT_TARGET_HOST);
		peer->forward_target.port = CONFIG_DEFAULT_TARGET_PORT;
		if (peer->forward_target.host == NULL)
			config_error(state, peer->line, "[peer %s]: out of memory", peer->name);
	}

	/*
	 * Without [interface] at all, that one error is enough. A peer with an
	 * endpoint is most likely one this host dials, so its missing (or
	 * misspelled) forward_listen is the likelier fix.
	 */
	if (peer->accepts_connections && state->interface_line != 0 &&
	    state->interface_key_line[INTERFACE_LISTEN] == 0 && state->interface_key_line[INTERFACE_LISTEN_UDP] == 0) {
		if (peer->has_endpoint && !peer->has_forward_listen)
			config_error(state, peer->line,
				     "[peer %s]: has an endpoint but no forward_listen, so it would only accept connections, and [interface] has no listen (add forward_listen = 127.0.0.1:PORT if this host connects to the peer; add listen or listen_udp to [interface] if the peer connects here)",
				     peer->name);
		else
			config_error(state, peer->line,
				     "[peer %s]: accepts connections, but [interface] has no listen, so the peer could never connect here (add listen or listen_udp to [interface], or give this peer forward_listen and no forward_target if only this host connects)",
				     peer->name);
	}
}

/* ---- Entry points ---- */

static char *config_folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup("");
	return strndup(path, (size_t)(slash - path + 1));
}

int config_parse_string(struct config *config, const char *text, const char *path,
			struct config_errors *errors)
{
	struct parse_state state;
	int result;

	memset(config, 0, sizeof(*config));
	config->log_level = LOG_INFO;
	config->handshake_timeout_ms = CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	config->max_connections_per_peer = CONFIG_DEFAULT_MAX_CONNECTIONS_PER_PEER;
	config->keepalive_interval_ms = CONFIG_DEFAULT_KEEPALIVE_INTERVAL_MS;
	config->keepalive_timeout_ms = CONFIG_DEFAULT_KEEPALIVE_TIMEOUT_MS;
	config->rekey_interval_ms = CONFIG_DEFAULT_REKEY_INTERVAL_MS;
	config->rekey_after_records = CONFIG_DEFAULT_REKEY_AFTER_RECORDS;
	config->connect_timeout_ms = CONFIG_DEFAULT_CONNECT_TIMEOUT_MS;
	config->dial_backoff_max_ms = CONFIG_DEFAULT_DIAL_BACKOFF_MAX_MS;
	config->shutdown_grace_ms = CONFIG_DEFAULT_SHUTDOWN_GRACE_MS;

	memset(&state, 0, sizeof(state));
	state.config = config;
	state.next = text;
	config->path = strdup(path);
	state.folder = config_folder_of(path);
	if (config->path == NULL || state.folder == NULL) {
		config_errors_add(errors, "%s: out of memory", path);
		free(state.folder);
		config_free(config);
		return -1;
	}

	result = ini_parse_stream(config_read_line, &state, config_handle_key, &state);
	if (result == -2)
		config_error(&state, 0, "out of memory");
	else if (result != 0 && state.error_count == 0)
		config_error(&state, result, "cannot parse this line");

	config_check_interface(&state);
	if (!state.saw_peer_header)
		config_error(&state, 0,
			     "no [peer NAME] section (add one for each host that connects here or that this host connects to)");
	for (size_t i = 0; i < config->peer_count; i++)
		config_check_peer(&state, i);

	free(state.folder);
	free(state.peer_lines);
	config_flush_errors(&state, errors);
	if (state.error_count != 0) {
		config_free(config);
		return -1;
	}
	return 0;
}

int config_load_file(struct config *config, const char *path, struct config_errors *errors)
{
	struct stat st;
	char *text = NULL;
	size_t used = 0;
	ssize_t n;
	int result = -1;
	int fd;

	memset(config, 0, sizeof(*config));

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		config_errors_add(errors, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		config_errors_add(errors, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CONFIG_FILE_MAX_SIZE) {
		config_errors_add(errors, "%s: too large for a config file (%lld bytes, at most %d)",
				  path, (long long)st.st_size, CONFIG_FILE_MAX_SIZE);
		goto out;
	}

	/* One byte more than the limit shows a file that grew, and one for the NUL. */
	text = malloc(CONFIG_FILE_MAX_SIZE + 2);
	if (text == NULL) {
		config_errors_add(errors, "%s: out of memory", path);
		goto out;
	}
	while (used < CONFIG_FILE_MAX_SIZE + 1) {
		n = read(fd, text + used, CONFIG_FILE_MAX_SIZE + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_errors_add(errors, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > CONFIG_FILE_MAX_SIZE) {
		config_errors_add(errors, "%s: too large for a config file (more than %d bytes)",
				  path, CONFIG_FILE_MAX_SIZE);
		goto out;
	}
	if (memchr(text, '\0', used) != NULL) {
		config_errors_add(errors, "%s: contains a NUL byte, so it is not a text file", path);
		goto out;
	}
	text[used] = '\0';

	result = config_parse_string(config, text, path, errors);
out:
	free(text);
	close(fd);
	return result;
}

static uint8_t *config_load_key(const struct config *config, const char *key_file, const char *label,
				const char *key_name, int line, struct config_errors *errors)
{
	char message[1024];
	uint8_t *key = sodium_malloc(KEY_LEN);

	if (key == NULL) {
		config_errors_add(errors, "%s: %s key '%s': out of memory", config->path, label, key_name);
		return NULL;
	}
	if (key_load_secret_file(key, key_file, message, sizeof(message)) != 0) {
		if (line > 0)
			config_errors_add(errors, "%s:%d: %s key '%s': %s", config->path, line, label,
					  key_name, message);
		else
			config_errors_add(errors, "%s: %s key '%s': %s", config->path, label, key_name,
					  message);
		sodium_free(key);
		return NULL;
	}
	return key;
}

int config_load_secrets(struct config *config, struct config_errors *errors)
{
	char label[PEER_NAME_MAX_LEN + 8];
	int result = 0;

	sodium_free(config->private_key);
	config->private_key = NULL;
	sodium_memzero(config->public_key, KEY_LEN);

	if (config->private_key_file == NULL) {
		config_errors_add(errors, "%s: [interface]: no private_key_file to load", config->path);
		result = -1;
	} else {
		config->private_key = config_load_key(config, config->private_key_file, "[interface]",
						      "private_key_file", config->private_key_file_line, errors);
		if (config->private_key == NULL)
			result = -1;
	}
	if (config->private_key != NULL &&
	    crypto_scalarmult_base(config->public_key, config->private_key) != 0) {
		config_errors_add(errors, "%s:%d: [interface] key 'private_key_file': %s: not a usable X25519 private key (make a new one with 'walguard-keygen genkey')",
				  config->path, config->private_key_file_line, config->private_key_file);
		sodium_free(config->private_key);
		config->private_key = NULL;
		result = -1;
	}

	for (size_t i = 0; i < config->peer_count; i++) {
		struct config_peer *peer = &config->peers[i];

		snprintf(label, sizeof(label), "[peer %s]", peer->name);
		sodium_free(peer->preshared_key);
		peer->preshared_key = NULL;
		if (peer->preshared_key_file != NULL) {
			peer->preshared_key = config_load_key(config, peer->preshared_key_file, label,
							      "preshared_key_file", peer->preshared_key_file_line, errors);
			if (peer->preshared_key == NULL)
				result = -1;
		}
		if (config->private_key != NULL &&
		    sodium_memcmp(peer->public_key, config->private_key, KEY_LEN) == 0) {
			config_errors_add(errors, "%s:%d: %s: public_key is this host's private key (use the peer's public key, the output of 'walguard-keygen pubkey' on the peer's host, and treat this private key as exposed)",
					  config->path, peer->line, label);
			result = -1;
		}
		if (config->private_key != NULL &&
		    sodium_memcmp(peer->public_key, config->public_key, KEY_LEN) == 0) {
			config_errors_add(errors, "%s:%d: %s: public_key is this host's own public key (use the public key of the peer's host)",
					  config->path, peer->line, label);
			result = -1;
		}
	}
	return result;
}

void config_free(struct config *config)
{
	free(config->path);
	free(config->private_key_file);
	free(config->user);
	free(config->chroot_dir);
	/* sodium_free() zeroes the memory before releasing it. */
	sodium_free(config->private_key);

	for (size_t i = 0; i < config->peer_count; i++) {
		struct config_peer *peer = &config->peers[i];

		free(peer->name);
		free(peer->preshared_key_file);
		sodium_free(peer->preshared_key);
		free(peer->endpoint.host);
		free(peer->forward_target.host);
	}
	free(config->peers);
	memset(config, 0, sizeof(*config));
}
