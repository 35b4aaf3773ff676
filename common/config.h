/*
 * The INI configuration file, parsed with inih.
 *
 *   [interface]
 *   private_key_file = /etc/walguard/primary.key
 *   listen = 0.0.0.0:5434
 *   listen_udp = 0.0.0.0:5434
 *
 *   [peer standby-1]
 *   public_key = <base64>
 *   preshared_key_file = ab.psk
 *   endpoint = db1.example.net:5434
 *   forward_listen = 127.0.0.1:5433
 *   forward_target = 127.0.0.1:5432
 *   transport = udp
 *
 * Parsing is pure (config_parse_string); reading the file and the key files
 * are separate steps so that tests can run the parser on strings.
 */
#ifndef WALGUARD_CONFIG_H
#define WALGUARD_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "key.h"
#include "log.h"

#define CONFIG_DEFAULT_TARGET_HOST "127.0.0.1"
#define CONFIG_DEFAULT_TARGET_PORT 5432
#define CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS 5000
#define CONFIG_DEFAULT_MAX_CONNECTIONS_PER_PEER 1024
#define CONFIG_DEFAULT_KEEPALIVE_INTERVAL_MS 10000
#define CONFIG_DEFAULT_KEEPALIVE_TIMEOUT_MS 30000
#define CONFIG_DEFAULT_REKEY_INTERVAL_MS 120000
#define CONFIG_DEFAULT_REKEY_AFTER_RECORDS (UINT64_C(1) << 20)
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define CONFIG_DEFAULT_DIAL_BACKOFF_MAX_MS 5000
#define CONFIG_DEFAULT_SHUTDOWN_GRACE_MS 10000
#define CONFIG_MAX_PEERS 256

/* The transport this host dials a peer with: a TCP connection per forwarded connection, or the UDP transport. */
enum config_transport {
	CONFIG_TRANSPORT_TCP,
	CONFIG_TRANSPORT_UDP,
};

/* A host name or address literal and a port, as written in the file. */
struct config_endpoint {
	char *host;		/* without the brackets of an IPv6 literal */
	uint16_t port;
};

struct config_peer {
	char *name;			/* from [peer NAME] */
	int line;			/* line of the section header */
	uint8_t public_key[KEY_LEN];
	char *preshared_key_file;	/* resolved against the config file's folder, or NULL */
	int preshared_key_file_line;
	uint8_t *preshared_key;		/* sodium_malloc(), set by config_load_secrets(), or NULL */

	bool has_endpoint;
	struct config_endpoint endpoint;
	enum config_transport transport;	/* used to dial endpoint; TCP by default */

	bool has_forward_listen;
	struct sockaddr_storage forward_listen;	/* an address literal */

	/*
	 * Whether this peer may open connections here, and where they go.
	 * True when forward_target is set, or when forward_listen is not set
	 * (then the target is 127.0.0.1:5432).
	 */
	bool accepts_connections;
	struct config_endpoint forward_target;
};

struct config {
	char *path;

	/* [interface] */
	char *private_key_file;		/* resolved against the config file's folder */
	int private_key_file_line;
	uint8_t *private_key;		/* sodium_malloc(), set by config_load_secrets() */
	uint8_t public_key[KEY_LEN];	/* set by config_load_secrets() */
	bool has_listen;
	struct sockaddr_storage listen;
	bool has_listen_udp;
	struct sockaddr_storage listen_udp;	/* the UDP transport's socket, for peers that dial here over UDP */
	bool allow_remote_forward_listen;
	bool has_metrics_listen;
	struct sockaddr_storage metrics_listen;	/* HTTP, for Prometheus */
	bool allow_remote_metrics_listen;
	enum log_level log_level;
	uint32_t handshake_timeout_ms;
	uint32_t max_connections_per_peer;
	uint32_t keepalive_interval_ms;	/* send a KEEPALIVE after this much silence */
	uint32_t keepalive_timeout_ms;	/* a tunnel silent this long is dead */
	uint32_t rekey_interval_ms;
	uint64_t rekey_after_records;
	uint32_t connect_timeout_ms;	/* how long a client waits for dials to succeed */
	uint32_t dial_backoff_max_ms;
	uint32_t shutdown_grace_ms;	/* on SIGTERM, time left to open connections */
	char *user;			/* drop to this user after binding, or NULL */
	char *chroot_dir;		/* chroot here after binding, or NULL */

	struct config_peer *peers;
	size_t peer_count;
};

/*
 * Problems found while loading, each a full line such as "primary.conf:7:
 * [peer standby-1] key 'endpoint': missing port in 'db1.example.net'
 * (expected host:port)", sorted by line.
 */
struct config_errors {
	char **lines;
	size_t count;
};

/*
 * Parse the text of a config file. path names the file in messages and is
 * the base for relative key file paths. Returns 0 when there is no error;
 * otherwise -1, with every problem found appended to errors (parsing goes
 * on after the first), and config freed. config need not be initialised.
 */
int config_parse_string(struct config *config, const char *text, const char *path,
			struct config_errors *errors);

/* Read and parse a file; a file that cannot be read is one error. */
int config_load_file(struct config *config, const char *path, struct config_errors *errors);

/*
 * Load the private key and the pre-shared keys named by a parsed config,
 * check their file permissions, and derive the public key. Also rejects a
 * peer whose public key is this host's own.
 */
int config_load_secrets(struct config *config, struct config_errors *errors);

/* Free everything, wiping secret keys. The struct may then be reused. */
void config_free(struct config *config);

void config_errors_free(struct config_errors *errors);

/* Format a socket address as "1.2.3.4:5" or "[::1]:5". */
void config_format_address(char *out, size_t out_size, const struct sockaddr_storage *address);

/*
 * Parse "host:port" or "[v6]:port". Returns -1 and a static message in
 * *error when the text has no port, an empty host, or a port outside
 * 1..65535. host is malloc()ed.
 */
int config_parse_endpoint(struct config_endpoint *endpoint, const char *text, const char **error);

/* Parse an address literal with a port ("127.0.0.1:5433", "[::1]:5433"). */
int config_parse_socket_address(struct sockaddr_storage *address, const char *text, const char **error);

#endif
