/*
 * Tests of the config file parser: every field, the defaults, and one test
 * per kind of error that checks the exact FILE:LINE and the message. The
 * secret loading tests use real key files in a temporary folder that they
 * create and remove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"

/* Base64 of 32 bytes of 0x01, of 0x02 and of 0x03. */
#define KEY_A "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_B "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
#define KEY_C "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="

/* A valid [interface] that accepts connections; tests add peers to it. */
#define INTERFACE "[interface]\nprivate_key_file = host.key\nlisten = 0.0.0.0:5434\n"

/* The result of one parse, freed by parse_free(). */
struct parse {
	struct config config;
	struct config_errors errors;
	int result;
};

static char temp_dir[256];

static void parse_text(struct parse *parse, const char *text)
{
	memset(&parse->errors, 0, sizeof(parse->errors));
	parse->result = config_parse_string(&parse->config, text, "primary.conf", &parse->errors);
}

static void parse_free(struct parse *parse)
{
	config_free(&parse->config);
	config_errors_free(&parse->errors);
}

static void print_errors(const struct parse *parse)
{
	for (size_t i = 0; i < parse->errors.count; i++)
		print_message("  error: %s\n", parse->errors.lines[i]);
}

static void assert_parses(struct parse *parse, const char *text)
{
	parse_text(parse, text);
	if (parse->result != 0 || parse->errors.count != 0) {
		print_errors(parse);
		fail_msg("expected the config to parse");
	}
}

/* Return the error line that starts with prefix, or fail the test. */
static const char *find_error(const struct parse *parse, const char *prefix)
{
	for (size_t i = 0; i < parse->errors.count; i++) {
		if (strncmp(parse->errors.lines[i], prefix, strlen(prefix)) == 0)
			return parse->errors.lines[i];
	}
	print_errors(parse);
	fail_msg("no error starts with \"%s\"", prefix);
	return NULL;
}

static void assert_contains(const char *text, const char *part)
{
	if (strstr(text, part) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", part, text);
}

/*
 * Parse text and check that it fails with exactly one error, which starts
 * with prefix (file, line, section and key) and contains phrase.
 */
static void assert_one_error(const char *text, const char *prefix, const char *phrase)
{
	struct parse parse;

	parse_text(&parse, text);
	assert_int_equal(parse.result, -1);
	if (parse.errors.count != 1) {
		print_errors(&parse);
		fail_msg("expected 1 error, got %zu", parse.errors.count);
	}
	assert_contains(find_error(&parse, prefix), phrase);
	parse_free(&parse);
}

static uint16_t address_port(const struct sockaddr_storage *address)
{
	if (address->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)address)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)address)->sin6_port);
}

static void assert_address(const struct sockaddr_storage *address, const char *expected)
{
	char text[64];

	config_format_address(text, sizeof(text), address);
	assert_string_equal(text, expected);
}

/* ---- Valid files ---- */

static void timers_and_privileges_parse(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE
		      "keepalive_interval = 1s\n"
		      "keepalive_timeout = 3500ms\n"
		      "rekey_interval = 1s\n"
		      "rekey_after_records = 100\n"
		      "connect_timeout = 0\n"
		      "dial_backoff_max = 2m\n"
		      "shutdown_grace = 0s\n"
		      "user = walguard\n"
		      "chroot = /var/empty\n"
		      "[peer a]\npublic_key = " KEY_A "\n");
	assert_int_equal(parse.config.keepalive_interval_ms, 1000);
	assert_int_equal(parse.config.keepalive_timeout_ms, 3500);
	assert_int_equal(parse.config.rekey_interval_ms, 1000);
	assert_int_equal(parse.config.rekey_after_records, 100);
	assert_int_equal(parse.config.connect_timeout_ms, 0);
	assert_int_equal(parse.config.dial_backoff_max_ms, 120000);
	assert_int_equal(parse.config.shutdown_grace_ms, 0);
	assert_string_equal(parse.config.user, "walguard");
	assert_string_equal(parse.config.chroot_dir, "/var/empty");
	parse_free(&parse);
}

static void timer_values_out_of_range_rejected(void **unused)
{
	static const struct {
		const char *line;
		const char *prefix;
		const char *phrase;
	} cases[] = {
		{ "keepalive_interval = 50ms", "[interface] key 'keepalive_interval': ", "out of range (expected 100ms to 60m)" },
		{ "keepalive_timeout = 61m", "[interface] key 'keepalive_timeout': ", "out of range" },
		{ "rekey_interval = soon", "[interface] key 'rekey_interval': ", "invalid duration" },
		{ "rekey_after_records = 0", "[interface] key 'rekey_after_records': ", "invalid count" },
		{ "rekey_after_records = 1099511627777", "[interface] key 'rekey_after_records': ", "invalid count" },
		{ "connect_timeout = 11m", "[interface] key 'connect_timeout': ", "out of range (expected 0 to 10m)" },
		{ "dial_backoff_max = 0", "[interface] key 'dial_backoff_max': ", "out of range" },
		{ "shutdown_grace = -1s", "[interface] key 'shutdown_grace': ", "invalid duration" },
		{ "user =", "[interface] key 'user': ", "empty value" },
		{ "chroot = var/empty", "[interface] key 'chroot': ", "not an absolute path" },
	};
	char text[512];
	char prefix[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), INTERFACE "%s\n[peer a]\npublic_key = " KEY_A "\n", cases[i].line);
		snprintf(prefix, sizeof(prefix), "primary.conf:4: %s", cases[i].prefix);
		assert_one_error(text, prefix, cases[i].phrase);
	}
}

static void keepalive_timeout_must_exceed_interval(void **unused)
{
	assert_one_error(INTERFACE "keepalive_interval = 5s\nkeepalive_timeout = 5s\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:5: [interface] key 'keepalive_timeout': ", "not longer than keepalive_interval");
	assert_one_error(INTERFACE "keepalive_interval = 40s\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:1: [interface] key 'keepalive_timeout': ", "not longer than keepalive_interval");
}

static void full_example_parses(void **unused)
{
	const char *text =
		"; The primary of a pair.\n"
		"[interface]\n"
		"private_key_file = /etc/walguard/primary.key\n"
		"listen = 0.0.0.0:5434\n"
		"allow_remote_forward_listen = no\n"
		"log_level = debug\n"
		"handshake_timeout = 250ms\n"
		"max_connections_per_peer = 64\n"
		"\n"
		"# The standby.\n"
		"[peer standby-1]\n"
		"public_key = " KEY_B "\n"
		"preshared_key_file = ab.psk\n"
		"endpoint = db1.example.net:5434\n"
		"forward_listen = 127.0.0.1:5433\n"
		"forward_target = 127.0.0.1:5432\n";
	struct parse parse;
	struct config *config = &parse.config;
	struct config_peer *peer;
	uint8_t key_b[KEY_LEN];

	memset(key_b, 2, sizeof(key_b));
	memset(&parse.errors, 0, sizeof(parse.errors));
	parse.result = config_parse_string(config, text, "/etc/walguard/primary.conf", &parse.errors);
	print_errors(&parse);
	assert_int_equal(parse.result, 0);
	assert_int_equal(parse.errors.count, 0);

	assert_string_equal(config->path, "/etc/walguard/primary.conf");
	assert_string_equal(config->private_key_file, "/etc/walguard/primary.key");
	assert_null(config->private_key);
	assert_true(config->has_listen);
	assert_address(&config->listen, "0.0.0.0:5434");
	assert_false(config->allow_remote_forward_listen);
	assert_int_equal(config->log_level, LOG_DEBUG);
	assert_int_equal(config->handshake_timeout_ms, 250);
	assert_int_equal(config->max_connections_per_peer, 64);

	assert_int_equal(config->peer_count, 1);
	peer = &config->peers[0];
	assert_string_equal(peer->name, "standby-1");
	assert_int_equal(peer->line, 11);
	assert_memory_equal(peer->public_key, key_b, KEY_LEN);
	assert_string_equal(peer->preshared_key_file, "/etc/walguard/ab.psk");
	assert_null(peer->preshared_key);
	assert_true(peer->has_endpoint);
	assert_string_equal(peer->endpoint.host, "db1.example.net");
	assert_int_equal(peer->endpoint.port, 5434);
	assert_true(peer->has_forward_listen);
	assert_address(&peer->forward_listen, "127.0.0.1:5433");
	assert_true(peer->accepts_connections);
	assert_string_equal(peer->forward_target.host, "127.0.0.1");
	assert_int_equal(peer->forward_target.port, 5432);

	parse_free(&parse);
}

static void defaults_applied(void **unused)
{
	struct parse parse;
	struct config_peer *peer;

	assert_parses(&parse, INTERFACE "[peer standby]\npublic_key = " KEY_A "\n");
	assert_false(parse.config.allow_remote_forward_listen);
	assert_int_equal(parse.config.log_level, LOG_INFO);
	assert_int_equal(parse.config.handshake_timeout_ms, CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS);
	assert_int_equal(parse.config.max_connections_per_peer, CONFIG_DEFAULT_MAX_CONNECTIONS_PER_PEER);
	assert_int_equal(parse.config.keepalive_interval_ms, CONFIG_DEFAULT_KEEPALIVE_INTERVAL_MS);
	assert_int_equal(parse.config.keepalive_timeout_ms, CONFIG_DEFAULT_KEEPALIVE_TIMEOUT_MS);
	assert_int_equal(parse.config.rekey_interval_ms, CONFIG_DEFAULT_REKEY_INTERVAL_MS);
	assert_int_equal(parse.config.rekey_after_records, CONFIG_DEFAULT_REKEY_AFTER_RECORDS);
	assert_int_equal(parse.config.connect_timeout_ms, CONFIG_DEFAULT_CONNECT_TIMEOUT_MS);
	assert_int_equal(parse.config.dial_backoff_max_ms, CONFIG_DEFAULT_DIAL_BACKOFF_MAX_MS);
	assert_int_equal(parse.config.shutdown_grace_ms, CONFIG_DEFAULT_SHUTDOWN_GRACE_MS);
	assert_null(parse.config.user);
	assert_null(parse.config.chroot_dir);

	peer = &parse.config.peers[0];
	assert_null(peer->preshared_key_file);
	assert_false(peer->has_endpoint);
	assert_false(peer->has_forward_listen);
	assert_true(peer->accepts_connections);
	assert_string_equal(peer->forward_target.host, CONFIG_DEFAULT_TARGET_HOST);
	assert_int_equal(peer->forward_target.port, CONFIG_DEFAULT_TARGET_PORT);
	parse_free(&parse);
}

static void udp_keys_parse(void **unused)
{
	struct parse parse;

	/* A responder reached only over UDP needs no TCP listen. */
	assert_parses(&parse,
		      "[interface]\nprivate_key_file = host.key\nlisten_udp = 0.0.0.0:5434\n"
		      "[peer standby]\npublic_key = " KEY_A "\n");
	assert_false(parse.config.has_listen);
	assert_true(parse.config.has_listen_udp);
	assert_address(&parse.config.listen_udp, "0.0.0.0:5434");
	assert_true(parse.config.peers[0].accepts_connections);
	parse_free(&parse);

	assert_parses(&parse,
		      "[interface]\nprivate_key_file = standby.key\n"
		      "[peer primary]\npublic_key = " KEY_A "\n"
		      "endpoint = 198.18.0.1:5434\nforward_listen = 127.0.0.1:5433\ntransport = udp\n");
	assert_int_equal(parse.config.peers[0].transport, CONFIG_TRANSPORT_UDP);
	assert_false(parse.config.has_listen_udp);
	parse_free(&parse);

	/* TCP and UDP may share an address and port: they are different sockets. */
	assert_parses(&parse,
		      "[interface]\nprivate_key_file = host.key\nlisten = [::1]:5434\nlisten_udp = [::1]:5434\n"
		      "[peer standby]\npublic_key = " KEY_A "\nendpoint = standby:5434\n"
		      "forward_listen = 127.0.0.1:5433\nforward_target = 127.0.0.1:5432\ntransport = tcp\n");
	assert_address(&parse.config.listen_udp, "[::1]:5434");
	assert_int_equal(parse.config.peers[0].transport, CONFIG_TRANSPORT_TCP);
	parse_free(&parse);
}

static void udp_keys_default(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "[peer standby]\npublic_key = " KEY_A "\nendpoint = standby:5434\n"
					"forward_listen = 127.0.0.1:5433\n");
	assert_false(parse.config.has_listen_udp);
	assert_int_equal(parse.config.peers[0].transport, CONFIG_TRANSPORT_TCP);
	parse_free(&parse);
}

static void transport_invalid_rejected(void **unused)
{
	static const char *const values[] = { "UDP", "sctp", "tcp,udp", "0" };
	char text[512];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(text, sizeof(text),
			 INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = a:5434\n"
				   "forward_listen = 127.0.0.1:5433\ntransport = %s\n",
			 values[i]);
		assert_one_error(text, "primary.conf:8: [peer a] key 'transport': ", "(expected tcp or udp)");
	}
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = a:5434\n"
				   "forward_listen = 127.0.0.1:5433\ntransport = sctp\n",
			 "primary.conf:8: [peer a] key 'transport': ", "invalid transport 'sctp'");
}

static void transport_without_endpoint_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\ntransport = udp\n",
			 "primary.conf:6: [peer a] key 'transport': ", "the peer has no endpoint");
}

static void listen_udp_invalid_rejected(void **unused)
{
	assert_one_error(INTERFACE "listen_udp = db1.example.net:5434\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'listen_udp': ", "not an IP address");
	assert_one_error(INTERFACE "listen_udp = 0.0.0.0\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'listen_udp': ", "missing port");
	assert_one_error(INTERFACE "listen_udp = 0.0.0.0:1\nlisten_udp = 0.0.0.0:2\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:5: [interface] key 'listen_udp': ", "given twice");
}

static void accepting_peer_needs_a_listener(void **unused)
{
	assert_one_error("[interface]\nprivate_key_file = host.key\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [peer a]: ", "add listen or listen_udp to [interface]");
}

static void outbound_only_peer(void **unused)
{
	struct parse parse;
	struct config_peer *peer;

	/* A standby: it only connects out, so [interface] needs no listen. */
	assert_parses(&parse,
		      "[interface]\nprivate_key_file = standby.key\n"
		      "[peer primary]\npublic_key = " KEY_A "\n"
		      "endpoint = db0.example.net:5434\nforward_listen = 127.0.0.1:5433\n");
	peer = &parse.config.peers[0];
	assert_false(parse.config.has_listen);
	assert_false(peer->accepts_connections);
	assert_null(peer->forward_target.host);
	parse_free(&parse);
}

static void several_peers_in_order(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE
		      "[peer a]\npublic_key = " KEY_A "\n"
		      "[peer b.2_x-y]\npublic_key = " KEY_B "\n"
		      "[peer c]\npublic_key = " KEY_C "\n");
	assert_int_equal(parse.config.peer_count, 3);
	assert_string_equal(parse.config.peers[0].name, "a");
	assert_string_equal(parse.config.peers[1].name, "b.2_x-y");
	assert_string_equal(parse.config.peers[2].name, "c");
	assert_int_equal(parse.config.peers[0].line, 4);
	assert_int_equal(parse.config.peers[1].line, 6);
	assert_int_equal(parse.config.peers[2].line, 8);
	parse_free(&parse);
}

static void relative_paths_resolved(void **unused)
{
	static const struct {
		const char *config_path;
		const char *value;
		const char *expected;
	} cases[] = {
		{ "primary.conf", "host.key", "host.key" },
		{ "conf/primary.conf", "host.key", "conf/host.key" },
		{ "/etc/walguard/primary.conf", "keys/host.key", "/etc/walguard/keys/host.key" },
		{ "/primary.conf", "host.key", "/host.key" },
		{ "/etc/walguard/primary.conf", "/srv/host.key", "/srv/host.key" },
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config config;
		struct config_errors errors = { 0 };

		snprintf(text, sizeof(text),
			 "[interface]\nprivate_key_file = %s\nlisten = 0.0.0.0:5434\n"
			 "[peer a]\npublic_key = " KEY_A "\npreshared_key_file = %s\n",
			 cases[i].value, cases[i].value);
		assert_int_equal(config_parse_string(&config, text, cases[i].config_path, &errors), 0);
		assert_string_equal(config.private_key_file, cases[i].expected);
		assert_string_equal(config.peers[0].preshared_key_file, cases[i].expected);
		config_free(&config);
		config_errors_free(&errors);
	}
}

static void comments_bom_and_crlf(void **unused)
{
	struct parse parse;

	assert_parses(&parse,
		      "\xEF\xBB\xBF; comment\r\n"
		      "# another comment\r\n"
		      "[interface] ; a comment after the header\r\n"
		      "private_key_file = host.key ; a comment after the value\r\n"
		      "listen = 0.0.0.0:5434\r\n"
		      "\r\n"
		      "  [ peer  a ]\r\n"
		      "\tpublic_key = " KEY_A "\r\n");
	assert_string_equal(parse.config.private_key_file, "host.key");
	assert_string_equal(parse.config.peers[0].name, "a");
	assert_int_equal(parse.config.peers[0].line, 7);
	parse_free(&parse);
}

static void form_feed_indent_not_continuation(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "\v log_level = debug\n\f[peer a]\npublic_key = " KEY_A "\n");
	assert_int_equal(parse.config.log_level, LOG_DEBUG);
	assert_int_equal(parse.config.peer_count, 1);
	parse_free(&parse);
}

static void indented_key_not_continuation(void **unused)
{
	struct parse parse;

	/* inih would treat an indented line as more of the previous value. */
	assert_parses(&parse, "[interface]\nprivate_key_file = host.key\n    listen = 0.0.0.0:5434\n"
		      "[peer a]\npublic_key = " KEY_A "\n");
	assert_string_equal(parse.config.private_key_file, "host.key");
	assert_true(parse.config.has_listen);
	parse_free(&parse);
}

static void booleans_accepted(void **unused)
{
	static const struct {
		const char *text;
		bool value;
	} cases[] = {
		{ "yes", true }, { "true", true }, { "on", true }, { "1", true },
		{ "no", false }, { "false", false }, { "off", false }, { "0", false },
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parse parse;

		snprintf(text, sizeof(text), INTERFACE "allow_remote_forward_listen = %s\n"
			 "[peer a]\npublic_key = " KEY_A "\n", cases[i].text);
		assert_parses(&parse, text);
		assert_int_equal(parse.config.allow_remote_forward_listen, cases[i].value);
		parse_free(&parse);
	}
}

static void durations_accepted(void **unused)
{
	static const struct {
		const char *text;
		uint32_t ms;
	} cases[] = {
		{ "100ms", 100 }, { "1500ms", 1500 }, { "5s", 5000 }, { "7", 7000 },
		{ "2m", 120000 }, { "120s", 120000 },
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parse parse;

		snprintf(text, sizeof(text), INTERFACE "handshake_timeout = %s\n"
			 "[peer a]\npublic_key = " KEY_A "\n", cases[i].text);
		assert_parses(&parse, text);
		assert_int_equal(parse.config.handshake_timeout_ms, cases[i].ms);
		parse_free(&parse);
	}
}

static void log_levels_accepted(void **unused)
{
	static const struct {
		const char *text;
		enum log_level level;
	} cases[] = {
		{ "error", LOG_ERROR }, { "warn", LOG_WARN }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parse parse;

		snprintf(text, sizeof(text), INTERFACE "log_level = %s\n"
			 "[peer a]\npublic_key = " KEY_A "\n", cases[i].text);
		assert_parses(&parse, text);
		assert_int_equal(parse.config.log_level, cases[i].level);
		parse_free(&parse);
	}
}

static void ipv6_literals_in_brackets(void **unused)
{
	struct parse parse;
	struct config_peer *peer;

	assert_parses(&parse,
		      "[interface]\nprivate_key_file = host.key\nlisten = [::]:5434\n"
		      "[peer a]\npublic_key = " KEY_A "\n"
		      "endpoint = [2001:db8::1]:5434\n"
		      "forward_listen = [::1]:5433\n"
		      "forward_target = [::1]:5432\n");
	peer = &parse.config.peers[0];
	assert_int_equal(parse.config.listen.ss_family, AF_INET6);
	assert_address(&parse.config.listen, "[::]:5434");
	assert_string_equal(peer->endpoint.host, "2001:db8::1");
	assert_int_equal(peer->endpoint.port, 5434);
	assert_address(&peer->forward_listen, "[::1]:5433");
	assert_string_equal(peer->forward_target.host, "::1");
	assert_int_equal(peer->forward_target.port, 5432);
	parse_free(&parse);
}

static void ipv6_without_brackets_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = 2001:db8::1:5434\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "IPv6 address without [brackets]");
	assert_one_error("[interface]\nprivate_key_file = host.key\nlisten = [::1:5434\n"
			 "[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [interface] key 'listen': ", "missing ']'");
	assert_one_error("[interface]\nprivate_key_file = host.key\nlisten = [::g]:5434\n"
			 "[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [interface] key 'listen': ", "invalid IPv6 address");
}

/* ---- One error each ---- */

static void unknown_key_rejected(void **unused)
{
	assert_one_error(INTERFACE "listen_port = 5434\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'listen_port': ", "unknown key");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpiont = h:1\n",
			 "primary.conf:6: [peer a] key 'endpiont': ",
			 "unknown key (expected one of: public_key, preshared_key_file, endpoint, forward_listen, forward_target, transport)");
}

static void unknown_section_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\n[peers b]\npublic_key = " KEY_B "\n",
			 "primary.conf:6: [peers b]: ", "unknown section");
}

static void missing_interface_rejected(void **unused)
{
	assert_one_error("[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf: ", "no [interface] section");
}

static void missing_private_key_file_rejected(void **unused)
{
	assert_one_error("# host\n[interface]\nlisten = 0.0.0.0:5434\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:2: [interface]: ", "missing key 'private_key_file'");
}

static void missing_public_key_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\nendpoint = h:1\n",
			 "primary.conf:4: [peer a]: ", "missing key 'public_key'");
}

static void missing_peer_rejected(void **unused)
{
	assert_one_error(INTERFACE, "primary.conf: ", "no [peer NAME] section");
}

static void duplicate_key_rejected(void **unused)
{
	assert_one_error(INTERFACE "listen = 0.0.0.0:6000\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'listen': ", "given twice (first on line 3");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\npublic_key = " KEY_A "\n",
			 "primary.conf:6: [peer a] key 'public_key': ", "given twice (first on line 5");
}

static void duplicate_interface_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\n[interface]\nlog_level = debug\n",
			 "primary.conf:6: [interface]: ", "section given twice (first on line 1");
}

static void duplicate_peer_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\n[peer a]\npublic_key = " KEY_B "\n",
			 "primary.conf:6: [peer a]: ", "peer name given twice (first on line 4");
}

static void bad_peer_name_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a/b]\npublic_key = " KEY_A "\n[peer c]\npublic_key = " KEY_B "\n",
			 "primary.conf:4: [peer a/b]: ", "invalid peer name 'a/b'");
	/* 33 characters, one more than allowed. */
	assert_one_error(INTERFACE "[peer abcdefghijklmnopqrstuvwxyz0123456]\npublic_key = " KEY_A "\n"
			 "[peer c]\npublic_key = " KEY_B "\n",
			 "primary.conf:4: [peer abcdefghijklmnopqrstuvwxyz0123456]: ", "use 1 to 32 letters");
	assert_one_error(INTERFACE "[peer]\npublic_key = " KEY_A "\n[peer c]\npublic_key = " KEY_B "\n",
			 "primary.conf:4: [peer]: ", "missing peer name");
}

static void peer_name_of_32_accepted(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "[peer abcdefghijklmnopqrstuvwxyz012345]\npublic_key = " KEY_A "\n");
	assert_string_equal(parse.config.peers[0].name, "abcdefghijklmnopqrstuvwxyz012345");
	parse_free(&parse);
}

static void bad_base64_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = AQEBAQEBAQEBAQEBAQEBAQEB*QEBAQEBAQEBAQEBAQE=\n",
			 "primary.conf:5: [peer a] key 'public_key': ", "not valid base64");
	assert_one_error(INTERFACE "[peer a]\npublic_key = AQEB\n",
			 "primary.conf:5: [peer a] key 'public_key': ", "wrong length");
}

static void duplicate_public_key_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\n[peer b]\npublic_key = " KEY_A "\n",
			 "primary.conf:7: [peer b] key 'public_key': ", "same key as [peer a] on line 5");
}

static void forward_listen_without_endpoint(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nforward_listen = 127.0.0.1:5433\n",
			 "primary.conf:6: [peer a] key 'forward_listen': ", "needs endpoint");
}

static void remote_forward_listen_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\n"
			 "forward_listen = 192.0.2.1:5433\n",
			 "primary.conf:7: [peer a] key 'forward_listen': ",
			 "192.0.2.1:5433 is not a loopback address");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\n"
			 "forward_listen = [2001:db8::1]:5433\n",
			 "primary.conf:7: [peer a] key 'forward_listen': ", "not a loopback address");
}

static void remote_forward_listen_allowed(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "allow_remote_forward_listen = yes\n"
		      "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\nforward_listen = 0.0.0.0:5433\n");
	assert_address(&parse.config.peers[0].forward_listen, "0.0.0.0:5433");
	parse_free(&parse);

	/* The permission counts even when [interface] comes after the peer. */
	assert_parses(&parse, "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\n"
		      "forward_listen = 192.0.2.1:5433\n"
		      INTERFACE "allow_remote_forward_listen = on\n");
	parse_free(&parse);
}

static void metrics_listen_parsed(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "metrics_listen = 127.0.0.1:9187\n[peer a]\npublic_key = " KEY_A "\n");
	assert_true(parse.config.has_metrics_listen);
	assert_address(&parse.config.metrics_listen, "127.0.0.1:9187");
	parse_free(&parse);

	assert_parses(&parse, INTERFACE "[peer a]\npublic_key = " KEY_A "\n");
	assert_false(parse.config.has_metrics_listen);
	parse_free(&parse);
}

static void metrics_listen_errors(void **unused)
{
	assert_one_error(INTERFACE "metrics_listen = 127.0.0.1\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'metrics_listen': ", "missing port");
	assert_one_error(INTERFACE "metrics_listen = localhost:9187\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'metrics_listen': ", "localhost:9187");
	assert_one_error(INTERFACE "metrics_listen = 0.0.0.0:9187\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'metrics_listen': ",
			 "0.0.0.0:9187 is not a loopback address");
	assert_one_error(INTERFACE "metrics_listen = 0.0.0.0:5434\nallow_remote_metrics_listen = yes\n"
			 "[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'metrics_listen': ", "also the listen address");
	assert_one_error(INTERFACE "metrics_listen = 127.0.0.1:5433\n[peer a]\npublic_key = " KEY_A "\n"
			 "endpoint = h:1\nforward_listen = 127.0.0.1:5433\nforward_target = 127.0.0.1:5432\n",
			 "primary.conf:8: [peer a] key 'forward_listen': ", "also the [interface] metrics_listen address");
	assert_one_error(INTERFACE "allow_remote_metrics_listen = perhaps\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'allow_remote_metrics_listen': ", "invalid boolean 'perhaps'");
}

static void remote_metrics_listen_allowed(void **unused)
{
	struct parse parse;

	assert_parses(&parse, "[peer a]\npublic_key = " KEY_A "\n" INTERFACE
		      "metrics_listen = [::]:9187\nallow_remote_metrics_listen = yes\n");
	assert_address(&parse.config.metrics_listen, "[::]:9187");
	assert_true(parse.config.allow_remote_metrics_listen);
	parse_free(&parse);
}

static void loopback_range_accepted(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\n"
		      "forward_listen = 127.3.2.1:5433\n");
	parse_free(&parse);
}

static void shared_forward_listen_rejected(void **unused)
{
	assert_one_error(INTERFACE
			 "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\nforward_listen = 127.0.0.1:5433\n"
			 "[peer b]\npublic_key = " KEY_B "\nendpoint = h:2\nforward_listen = 127.0.0.1:5433\n",
			 "primary.conf:11: [peer b] key 'forward_listen': ",
			 "already used by [peer a] on line 7");
}

static void forward_listen_equal_to_listen(void **unused)
{
	assert_one_error("[interface]\nprivate_key_file = k\nlisten = 127.0.0.1:5434\n"
			 "[peer a]\npublic_key = " KEY_A "\nendpoint = h:1\nforward_listen = 127.0.0.1:5434\n",
			 "primary.conf:7: [peer a] key 'forward_listen': ", "also the [interface] listen address");
}

static void missing_port_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer standby-1]\npublic_key = " KEY_A "\nendpoint = db1.example.net\n",
			 "primary.conf:6: [peer standby-1] key 'endpoint': ",
			 "missing port in 'db1.example.net' (expected host:port)");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "missing port");
	assert_one_error("[interface]\nprivate_key_file = k\nlisten = [::]\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [interface] key 'listen': ", "missing port");
}

static void port_out_of_range_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:0\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "port out of range");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:70000\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "port out of range");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nforward_target = h:65536\n",
			 "primary.conf:6: [peer a] key 'forward_target': ", "port out of range");
	assert_one_error("[interface]\nprivate_key_file = k\nlisten = 0.0.0.0:0\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [interface] key 'listen': ", "port out of range");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = h:54x\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "port is not a number");
}

static void bad_hosts_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = :5434\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "empty host");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = db_1.example.net:5434\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "invalid host name");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = -db.example.net:5434\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "invalid host name");
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint = 300.1.1.1:5434\n",
			 "primary.conf:6: [peer a] key 'endpoint': ", "invalid IPv4 address");
	assert_one_error("[interface]\nprivate_key_file = k\nlisten = localhost:5434\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [interface] key 'listen': ", "not an IP address");
}

static void bad_duration_rejected(void **unused)
{
	static const char *const invalid[] = { "5h", "1.5s", "-5s", "s", "5 s", "99999999999999ms" };
	static const char *const out_of_range[] = { "99ms", "0", "121s", "3m" };
	char text[512];

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		snprintf(text, sizeof(text), INTERFACE "handshake_timeout = %s\n[peer a]\npublic_key = " KEY_A "\n",
			 invalid[i]);
		assert_one_error(text, "primary.conf:4: [interface] key 'handshake_timeout': ", "invalid duration");
	}
	for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
		snprintf(text, sizeof(text), INTERFACE "handshake_timeout = %s\n[peer a]\npublic_key = " KEY_A "\n",
			 out_of_range[i]);
		assert_one_error(text, "primary.conf:4: [interface] key 'handshake_timeout': ", "out of range");
	}
}

static void bad_values_rejected(void **unused)
{
	assert_one_error(INTERFACE "allow_remote_forward_listen = maybe\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'allow_remote_forward_listen': ", "invalid boolean 'maybe'");
	assert_one_error(INTERFACE "log_level = verbose\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'log_level': ", "invalid level 'verbose'");
	assert_one_error(INTERFACE "max_connections_per_peer = 0\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'max_connections_per_peer': ", "from 1 to 65535");
	assert_one_error(INTERFACE "max_connections_per_peer = 65536\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [interface] key 'max_connections_per_peer': ", "from 1 to 65535");
	assert_one_error(INTERFACE "[peer a]\npublic_key =\n",
			 "primary.conf:5: [peer a] key 'public_key': ", "empty value");
}

static void max_connections_bounds(void **unused)
{
	struct parse parse;

	assert_parses(&parse, INTERFACE "max_connections_per_peer = 65535\n[peer a]\npublic_key = " KEY_A "\n");
	assert_int_equal(parse.config.max_connections_per_peer, 65535);
	parse_free(&parse);
	assert_parses(&parse, INTERFACE "max_connections_per_peer = 1\n[peer a]\npublic_key = " KEY_A "\n");
	assert_int_equal(parse.config.max_connections_per_peer, 1);
	parse_free(&parse);
}

static void accepting_peer_needs_listen(void **unused)
{
	/* No forward_listen: the peer connects here, which needs listen. */
	assert_one_error("[interface]\nprivate_key_file = k\n[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:3: [peer a]: ", "[interface] has no listen");
	/* forward_target: the same. */
	assert_one_error("[interface]\nprivate_key_file = k\n[peer a]\npublic_key = " KEY_A "\n"
			 "endpoint = h:1\nforward_listen = 127.0.0.1:5433\nforward_target = 127.0.0.1:5432\n",
			 "primary.conf:3: [peer a]: ", "could never connect here");
}

static void key_outside_section_rejected(void **unused)
{
	assert_one_error("listen = 0.0.0.0:5434\n" INTERFACE "[peer a]\npublic_key = " KEY_A "\n",
			 "primary.conf:1: key 'listen': ", "outside any section");
}

static void line_without_equals_rejected(void **unused)
{
	assert_one_error(INTERFACE "[peer a]\npublic_key = " KEY_A "\nendpoint\n",
			 "primary.conf:6: ", "expected 'key = value'");
	assert_one_error(INTERFACE "[peer a\npublic_key = " KEY_A "\n",
			 "primary.conf:4: ", "without closing ']'");
	assert_one_error(INTERFACE "[peer a] x\npublic_key = " KEY_A "\n",
			 "primary.conf:4: [peer a]: ", "unexpected text after ']'");
}

static void long_line_rejected(void **unused)
{
	char text[1024];
	char value[400];

	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	snprintf(text, sizeof(text), INTERFACE "log_level = %s\n[peer a]\npublic_key = " KEY_A "\n", value);
	assert_one_error(text, "primary.conf:4: ", "line too long (at most 198 characters)");
}

static void line_of_198_bytes_read(void **unused)
{
	char text[1024];
	char value[200];
	/*
	 * Debian 12's inih reads lines into 200 bytes, two of them for the
	 * line end and the NUL. "log_level = " is 12 bytes. Indentation and
	 * CRLF do not count.
	 */
	size_t value_len = 198 - 12;

	memset(value, 'x', value_len);
	value[value_len] = '\0';
	snprintf(text, sizeof(text), INTERFACE "  log_level = %s\r\n[peer a]\npublic_key = " KEY_A "\n", value);
	assert_one_error(text, "primary.conf:4: [interface] key 'log_level': ", "invalid level");

	value[value_len] = 'x';
	value[value_len + 1] = '\0';
	snprintf(text, sizeof(text), INTERFACE "log_level = %s\n[peer a]\npublic_key = " KEY_A "\n", value);
	assert_one_error(text, "primary.conf:4: ", "line too long");
}

static void too_many_peers_rejected(void **unused)
{
	size_t size = 128 * (CONFIG_MAX_PEERS + 2) + 256;
	char *text = malloc(size);
	size_t used;
	uint8_t key[KEY_LEN];
	char key_text[KEY_BASE64_LEN + 1];
	char prefix[64];

	assert_non_null(text);
	used = (size_t)snprintf(text, size, INTERFACE);
	for (int i = 0; i < CONFIG_MAX_PEERS + 2; i++) {
		memset(key, 0, sizeof(key));
		key[0] = (uint8_t)i;
		key[1] = (uint8_t)(i >> 8);
		key_encode(key_text, key);
		used += (size_t)snprintf(text + used, size - used, "[peer p%d]\npublic_key = %s\n", i, key_text);
	}
	/* Peer number CONFIG_MAX_PEERS (counting from 0) is the first one too many. */
	snprintf(prefix, sizeof(prefix), "primary.conf:%d: [peer p%d]: ", 4 + 2 * CONFIG_MAX_PEERS, CONFIG_MAX_PEERS);
	assert_one_error(text, prefix, "too many peers (at most 256)");
	free(text);
}

static void many_errors_all_reported(void **unused)
{
	const char *text =
		"[interface]\n"				/* 1 */
		"private_key_file = host.key\n"		/* 2 */
		"listen = 0.0.0.0\n"			/* 3: missing port */
		"log_level = loud\n"			/* 4: invalid level */
		"colour = blue\n"			/* 5: unknown key */
		"[peer a]\n"				/* 6 */
		"public_key = nope\n"			/* 7: wrong length */
		"endpoint = h:0\n"			/* 8: port out of range */
		"[peer b]\n"				/* 9: missing public_key */
		"endpoint = h:1\n"			/* 10 */
		"forward_listen = 10.0.0.1:5433\n"	/* 11: not loopback */
		"[other]\n";				/* 12: unknown section */
	static const char *const expected[] = {
		"primary.conf:3: [interface] key 'listen': missing port",
		"primary.conf:4: [interface] key 'log_level': invalid level",
		"primary.conf:5: [interface] key 'colour': unknown key",
		"primary.conf:7: [peer a] key 'public_key': wrong length",
		"primary.conf:8: [peer a] key 'endpoint': port out of range",
		"primary.conf:9: [peer b]: missing key 'public_key'",
		"primary.conf:11: [peer b] key 'forward_listen': 10.0.0.1:5433 is not a loopback address",
		"primary.conf:12: [other]: unknown section",
	};
	struct parse parse;
	size_t count = sizeof(expected) / sizeof(expected[0]);

	parse_text(&parse, text);
	assert_int_equal(parse.result, -1);
	if (parse.errors.count != count) {
		print_errors(&parse);
		fail_msg("expected %zu errors, got %zu", count, parse.errors.count);
	}
	/* Sorted by line, whatever order they were found in. */
	for (size_t i = 0; i < count; i++) {
		if (strncmp(parse.errors.lines[i], expected[i], strlen(expected[i])) != 0)
			fail_msg("error %zu: expected \"%s...\", got \"%s\"", i, expected[i], parse.errors.lines[i]);
	}
	assert_int_equal(parse.config.peer_count, 0);
	assert_null(parse.config.path);
	parse_free(&parse);
}

/* ---- The smaller functions ---- */

static void parse_endpoint_directly(void **unused)
{
	struct config_endpoint endpoint = { 0 };
	const char *error = NULL;

	assert_int_equal(config_parse_endpoint(&endpoint, "db1.example.net:5434", &error), 0);
	assert_string_equal(endpoint.host, "db1.example.net");
	assert_int_equal(endpoint.port, 5434);
	free(endpoint.host);

	assert_int_equal(config_parse_endpoint(&endpoint, "[fe80::1]:1", &error), 0);
	assert_string_equal(endpoint.host, "fe80::1");
	assert_int_equal(endpoint.port, 1);
	free(endpoint.host);

	assert_int_equal(config_parse_endpoint(&endpoint, "10.1.2.3:65535", &error), 0);
	assert_string_equal(endpoint.host, "10.1.2.3");
	assert_int_equal(endpoint.port, 65535);
	free(endpoint.host);

	assert_int_equal(config_parse_endpoint(&endpoint, "host", &error), -1);
	assert_string_equal(error, "missing port");
	assert_int_equal(config_parse_endpoint(&endpoint, ":1", &error), -1);
	assert_string_equal(error, "empty host");
	assert_int_equal(config_parse_endpoint(&endpoint, "[]:1", &error), -1);
	assert_string_equal(error, "empty host");
	assert_int_equal(config_parse_endpoint(&endpoint, "h:70000", &error), -1);
	assert_string_equal(error, "port out of range 1..65535");
	assert_int_equal(config_parse_endpoint(&endpoint, "h:+1", &error), -1);
	assert_string_equal(error, "port is not a number");
}

static void parse_socket_address_directly(void **unused)
{
	struct sockaddr_storage address;
	const char *error = NULL;

	assert_int_equal(config_parse_socket_address(&address, "127.0.0.1:5433", &error), 0);
	assert_int_equal(address.ss_family, AF_INET);
	assert_int_equal(address_port(&address), 5433);
	assert_address(&address, "127.0.0.1:5433");

	assert_int_equal(config_parse_socket_address(&address, "[::1]:5433", &error), 0);
	assert_int_equal(address.ss_family, AF_INET6);
	assert_int_equal(address_port(&address), 5433);
	assert_address(&address, "[::1]:5433");

	assert_int_equal(config_parse_socket_address(&address, "db.example.net:5433", &error), -1);
	assert_int_equal(config_parse_socket_address(&address, "1.2.3:5433", &error), -1);
	assert_int_equal(config_parse_socket_address(&address, "[::1]5433", &error), -1);
	assert_string_equal(error, "expected ':' and a port after ']'");
}

static void format_address_truncates(void **unused)
{
	struct sockaddr_storage address;
	const char *error = NULL;
	char small[8];

	assert_int_equal(config_parse_socket_address(&address, "[2001:db8::1]:5433", &error), 0);
	config_format_address(small, sizeof(small), &address);
	assert_string_equal(small, "[2001:d");
}

static void free_zeroed_config(void **unused)
{
	struct config config;
	struct config_errors errors;

	memset(&config, 0, sizeof(config));
	memset(&errors, 0, sizeof(errors));
	config_free(&config);
	config_free(&config);
	config_errors_free(&errors);
}

/* ---- Files ---- */

static int temp_dir_create(void **unused)
{
	const char *base = getenv("TMPDIR");

	snprintf(temp_dir, sizeof(temp_dir), "%s/walguard-test-config.XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	return mkdtemp(temp_dir) != NULL ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int temp_dir_remove(void **unused)
{
	/* Depth first and without following links: only what the tests made goes. */
	return nftw(temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void temp_path(char *out, size_t out_size, const char *name)
{
	snprintf(out, out_size, "%s/%s", temp_dir, name);
}

static void write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	char path[512];
	int fd;

	temp_path(path, sizeof(path), name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void write_key(const char *name, const uint8_t key[KEY_LEN], mode_t mode)
{
	char text[KEY_BASE64_LEN + 2];

	key_encode(text, key);
	strcat(text, "\n");
	write_file(name, text, strlen(text), mode);
}

static void load_file_resolves_paths(void **unused)
{
	const char *text = INTERFACE "[peer a]\npublic_key = " KEY_A "\npreshared_key_file = a.psk\n";
	struct config config;
	struct config_errors errors = { 0 };
	char path[512];
	char expected[512];

	write_file("load.conf", text, strlen(text), 0644);
	temp_path(path, sizeof(path), "load.conf");
	assert_int_equal(config_load_file(&config, path, &errors), 0);
	assert_int_equal(errors.count, 0);
	assert_string_equal(config.path, path);
	temp_path(expected, sizeof(expected), "host.key");
	assert_string_equal(config.private_key_file, expected);
	temp_path(expected, sizeof(expected), "a.psk");
	assert_string_equal(config.peers[0].preshared_key_file, expected);
	config_free(&config);
}

static void load_file_missing(void **unused)
{
	struct config config;
	struct config_errors errors = { 0 };
	char path[512];
	char expected[600];

	temp_path(path, sizeof(path), "none.conf");
	assert_int_equal(config_load_file(&config, path, &errors), -1);
	assert_int_equal(errors.count, 1);
	snprintf(expected, sizeof(expected), "%s: cannot open: No such file or directory", path);
	assert_string_equal(errors.lines[0], expected);
	config_free(&config);
	config_errors_free(&errors);
}

static void load_file_directory(void **unused)
{
	struct config config;
	struct config_errors errors = { 0 };

	assert_int_equal(config_load_file(&config, temp_dir, &errors), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], temp_dir);
	assert_contains(errors.lines[0], "Is a directory");
	config_free(&config);
	config_errors_free(&errors);
}

static void load_file_too_large(void **unused)
{
	size_t size = 1024 * 1024 + 1;
	char *text = malloc(size);
	struct config config;
	struct config_errors errors = { 0 };
	char path[512];

	assert_non_null(text);
	/* Comment lines only, so that only the size is wrong. */
	memset(text, '\n', size);
	text[0] = '#';
	write_file("big.conf", text, size, 0644);
	free(text);
	temp_path(path, sizeof(path), "big.conf");
	assert_int_equal(config_load_file(&config, path, &errors), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], "too large for a config file");
	config_free(&config);
	config_errors_free(&errors);
}

static void load_file_with_nul_byte(void **unused)
{
	struct config config;
	struct config_errors errors = { 0 };
	char path[512];

	write_file("nul.conf", "[interface]\0x", 13, 0644);
	temp_path(path, sizeof(path), "nul.conf");
	assert_int_equal(config_load_file(&config, path, &errors), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], "NUL byte");
	config_free(&config);
	config_errors_free(&errors);
}

/* Parse a config in the temp folder that names host.key and, for peer a, a.psk. */
static int load_with_secrets(struct config *config, struct config_errors *errors, const char *peer_key)
{
	char text[512];
	char path[512];

	snprintf(text, sizeof(text), INTERFACE "[peer a]\npublic_key = %s\npreshared_key_file = a.psk\n"
		 "[peer b]\npublic_key = " KEY_B "\n", peer_key);
	write_file("secrets.conf", text, strlen(text), 0644);
	temp_path(path, sizeof(path), "secrets.conf");
	assert_int_equal(config_load_file(config, path, errors), 0);
	return config_load_secrets(config, errors);
}

static void load_secrets_good(void **unused)
{
	uint8_t private_key[KEY_LEN];
	uint8_t public_key[KEY_LEN];
	uint8_t psk[KEY_LEN];
	struct config config;
	struct config_errors errors = { 0 };

	randombytes_buf(private_key, sizeof(private_key));
	randombytes_buf(psk, sizeof(psk));
	assert_int_equal(crypto_scalarmult_base(public_key, private_key), 0);
	write_key("host.key", private_key, 0600);
	write_key("a.psk", psk, 0600);

	assert_int_equal(load_with_secrets(&config, &errors, KEY_A), 0);
	assert_int_equal(errors.count, 0);
	assert_non_null(config.private_key);
	assert_memory_equal(config.private_key, private_key, KEY_LEN);
	assert_memory_equal(config.public_key, public_key, KEY_LEN);
	assert_non_null(config.peers[0].preshared_key);
	assert_memory_equal(config.peers[0].preshared_key, psk, KEY_LEN);
	assert_null(config.peers[1].preshared_key);

	/* Loading again replaces the keys without leaking the first copies. */
	assert_int_equal(config_load_secrets(&config, &errors), 0);
	assert_memory_equal(config.private_key, private_key, KEY_LEN);
	config_free(&config);
	sodium_memzero(private_key, sizeof(private_key));
	sodium_memzero(psk, sizeof(psk));
}

static void load_secrets_bad_mode(void **unused)
{
	uint8_t key[KEY_LEN];
	struct config config;
	struct config_errors errors = { 0 };
	char psk_path[512];
	char fix[600];

	randombytes_buf(key, sizeof(key));
	write_key("host.key", key, 0600);
	write_key("a.psk", key, 0640);
	temp_path(psk_path, sizeof(psk_path), "a.psk");

	assert_int_equal(load_with_secrets(&config, &errors, KEY_A), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], ":6: [peer a] key 'preshared_key_file': ");
	assert_contains(errors.lines[0], "(mode 0640)");
	snprintf(fix, sizeof(fix), "chmod 600 %s", psk_path);
	assert_contains(errors.lines[0], fix);
	config_free(&config);
	config_errors_free(&errors);
	sodium_memzero(key, sizeof(key));
}

static void load_secrets_missing_private_key(void **unused)
{
	uint8_t key[KEY_LEN];
	struct config config;
	struct config_errors errors = { 0 };
	char key_path[512];

	randombytes_buf(key, sizeof(key));
	write_key("a.psk", key, 0600);
	temp_path(key_path, sizeof(key_path), "host.key");
	unlink(key_path);

	assert_int_equal(load_with_secrets(&config, &errors, KEY_A), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], ":2: [interface] key 'private_key_file': ");
	assert_contains(errors.lines[0], key_path);
	assert_contains(errors.lines[0], "No such file or directory");
	assert_null(config.private_key);
	config_free(&config);
	config_errors_free(&errors);
}

static void load_secrets_own_key_as_peer(void **unused)
{
	uint8_t private_key[KEY_LEN];
	uint8_t public_key[KEY_LEN];
	char public_text[KEY_BASE64_LEN + 1];
	struct config config;
	struct config_errors errors = { 0 };

	randombytes_buf(private_key, sizeof(private_key));
	assert_int_equal(crypto_scalarmult_base(public_key, private_key), 0);
	key_encode(public_text, public_key);
	write_key("host.key", private_key, 0600);
	write_key("a.psk", private_key, 0600);

	assert_int_equal(load_with_secrets(&config, &errors, public_text), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], ":4: [peer a]: ");
	assert_contains(errors.lines[0], "is this host's own public key");
	config_free(&config);
	config_errors_free(&errors);
	sodium_memzero(private_key, sizeof(private_key));
}

static void load_secrets_private_key_as_peer(void **unused)
{
	uint8_t private_key[KEY_LEN];
	char private_text[KEY_BASE64_LEN + 1];
	struct config config;
	struct config_errors errors = { 0 };

	randombytes_buf(private_key, sizeof(private_key));
	key_encode(private_text, private_key);
	write_key("host.key", private_key, 0600);
	write_key("a.psk", private_key, 0600);

	assert_int_equal(load_with_secrets(&config, &errors, private_text), -1);
	assert_int_equal(errors.count, 1);
	assert_contains(errors.lines[0], ":4: [peer a]: ");
	assert_contains(errors.lines[0], "is this host's private key");
	config_free(&config);
	config_errors_free(&errors);
	sodium_memzero(private_key, sizeof(private_key));
	sodium_memzero(private_text, sizeof(private_text));
}

static void endpoint_without_forward_listen_hint(void **unused)
{
	assert_one_error("[interface]\nprivate_key_file = host.key\n[peer a]\npublic_key = " KEY_A
			 "\nendpoint = 192.0.2.1:5434\n",
			 "primary.conf:3: [peer a]: ", "add forward_listen = 127.0.0.1:PORT");
}

int main(void)
{
	const struct CMUnitTest parse_tests[] = {
		cmocka_unit_test(endpoint_without_forward_listen_hint),
		cmocka_unit_test(full_example_parses),
		cmocka_unit_test(defaults_applied),
		cmocka_unit_test(timers_and_privileges_parse),
		cmocka_unit_test(timer_values_out_of_range_rejected),
		cmocka_unit_test(keepalive_timeout_must_exceed_interval),
		cmocka_unit_test(outbound_only_peer),
		cmocka_unit_test(udp_keys_parse),
		cmocka_unit_test(udp_keys_default),
		cmocka_unit_test(transport_invalid_rejected),
		cmocka_unit_test(transport_without_endpoint_rejected),
		cmocka_unit_test(listen_udp_invalid_rejected),
		cmocka_unit_test(accepting_peer_needs_a_listener),
		cmocka_unit_test(several_peers_in_order),
		cmocka_unit_test(relative_paths_resolved),
		cmocka_unit_test(comments_bom_and_crlf),
		cmocka_unit_test(indented_key_not_continuation),
		cmocka_unit_test(form_feed_indent_not_continuation),
		cmocka_unit_test(booleans_accepted),
		cmocka_unit_test(durations_accepted),
		cmocka_unit_test(log_levels_accepted),
		cmocka_unit_test(ipv6_literals_in_brackets),
		cmocka_unit_test(ipv6_without_brackets_rejected),
		cmocka_unit_test(unknown_key_rejected),
		cmocka_unit_test(unknown_section_rejected),
		cmocka_unit_test(missing_interface_rejected),
		cmocka_unit_test(missing_private_key_file_rejected),
		cmocka_unit_test(missing_public_key_rejected),
		cmocka_unit_test(missing_peer_rejected),
		cmocka_unit_test(duplicate_key_rejected),
		cmocka_unit_test(duplicate_interface_rejected),
		cmocka_unit_test(duplicate_peer_rejected),
		cmocka_unit_test(bad_peer_name_rejected),
		cmocka_unit_test(peer_name_of_32_accepted),
		cmocka_unit_test(bad_base64_rejected),
		cmocka_unit_test(duplicate_public_key_rejected),
		cmocka_unit_test(forward_listen_without_endpoint),
		cmocka_unit_test(remote_forward_listen_rejected),
		cmocka_unit_test(remote_forward_listen_allowed),
		cmocka_unit_test(loopback_range_accepted),
		cmocka_unit_test(shared_forward_listen_rejected),
		cmocka_unit_test(forward_listen_equal_to_listen),
		cmocka_unit_test(metrics_listen_parsed),
		cmocka_unit_test(metrics_listen_errors),
		cmocka_unit_test(remote_metrics_listen_allowed),
		cmocka_unit_test(missing_port_rejected),
		cmocka_unit_test(port_out_of_range_rejected),
		cmocka_unit_test(bad_hosts_rejected),
		cmocka_unit_test(bad_duration_rejected),
		cmocka_unit_test(bad_values_rejected),
		cmocka_unit_test(max_connections_bounds),
		cmocka_unit_test(accepting_peer_needs_listen),
		cmocka_unit_test(key_outside_section_rejected),
		cmocka_unit_test(line_without_equals_rejected),
		cmocka_unit_test(long_line_rejected),
		cmocka_unit_test(line_of_198_bytes_read),
		cmocka_unit_test(too_many_peers_rejected),
		cmocka_unit_test(many_errors_all_reported),
		cmocka_unit_test(parse_endpoint_directly),
		cmocka_unit_test(parse_socket_address_directly),
		cmocka_unit_test(format_address_truncates),
		cmocka_unit_test(free_zeroed_config),
	};
	const struct CMUnitTest file_tests[] = {
		cmocka_unit_test(load_file_resolves_paths),
		cmocka_unit_test(load_file_missing),
		cmocka_unit_test(load_file_directory),
		cmocka_unit_test(load_file_too_large),
		cmocka_unit_test(load_file_with_nul_byte),
		cmocka_unit_test(load_secrets_good),
		cmocka_unit_test(load_secrets_bad_mode),
		cmocka_unit_test(load_secrets_missing_private_key),
		cmocka_unit_test(load_secrets_own_key_as_peer),
		cmocka_unit_test(load_secrets_private_key_as_peer),
	};
	int failed = 0;

	if (sodium_init() < 0)
		return 1;
	failed += cmocka_run_group_tests_name("config parsing", parse_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("config files", file_tests, temp_dir_create, temp_dir_remove);
	return failed;
}
