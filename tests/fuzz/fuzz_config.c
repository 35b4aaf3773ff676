/*
 * libFuzzer target: the text of a config file, checked the way
 * 'walguard --check' checks it. config_parse_string() runs with its checks
 * across sections, and then config_load_secrets() runs when every key file
 * the config names is one of the fixed files that this target writes into
 * a folder of its own at start-up. Key files elsewhere are never opened,
 * so an input cannot make the target read the rest of the file system.
 *
 * Beyond memory errors and leaks it checks the contract of config.h: a
 * failed parse reports at least one error, each error line starts with the
 * file's path, and the values of a parsed config are within their limits.
 */
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A key file that the target writes into its folder at start-up. */
struct key_file {
	const char *name;
	const char *text;	/* NULL: base64 of KEY_LEN copies of byte */
	uint8_t byte;
	mode_t mode;
};

/*
 * The seeds in tests/fuzz/corpus/config use these names: primary.key and
 * standby.key are the private keys of the seeds' two hosts.
 */
static const struct key_file key_files[] = {
	{ "primary.key", NULL, 0x41, 0600 },
	{ "standby.key", NULL, 0x42, 0600 },
	{ "ab.psk", NULL, 0x44, 0600 },
	{ "open.key", NULL, 0x45, 0644 },
	{ "bad.key", "not a key\n", 0, 0600 },
};

static char folder[] = "/tmp/walguard-fuzz-config.XXXXXX";
static char config_path[sizeof(folder) + 16];

static void folder_remove(void)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(key_files) / sizeof(key_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", folder, key_files[i].name);
		unlink(path);
	}
	rmdir(folder);
}

static int key_file_write(const struct key_file *file)
{
	char path[PATH_MAX];
	uint8_t key[KEY_LEN];
	char text[KEY_BASE64_LEN + 2];
	FILE *stream;
	int result;

	if (file->text != NULL) {
		snprintf(text, sizeof(text), "%s", file->text);
	} else {
		memset(key, file->byte, sizeof(key));
		key_encode(text, key);
		strcat(text, "\n");
	}

	snprintf(path, sizeof(path), "%s/%s", folder, file->name);
	stream = fopen(path, "w");
	if (stream == NULL)
		return -1;
	result = fputs(text, stream) < 0 ? -1 : 0;
	if (fclose(stream) != 0)
		result = -1;
	if (chmod(path, file->mode) != 0)
		result = -1;
	return result;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		return -1;
	if (mkdtemp(folder) == NULL) {
		perror("fuzz_config: mkdtemp");
		abort();
	}
	atexit(folder_remove);
	for (size_t i = 0; i < sizeof(key_files) / sizeof(key_files[0]); i++) {
		if (key_file_write(&key_files[i]) != 0) {
			perror("fuzz_config: writing a key file");
			abort();
		}
	}
	snprintf(config_path, sizeof(config_path), "%s/walguard.conf", folder);
	return 0;
}

/* Whether path names a file directly inside the target's folder. */
static bool path_in_folder(const char *path)
{
	size_t len = strlen(folder);

	return path != NULL && strncmp(path, folder, len) == 0 && path[len] == '/' &&
	       strchr(path + len + 1, '/') == NULL;
}

static bool key_files_in_folder(const struct config *config)
{
	if (!path_in_folder(config->private_key_file))
		return false;
	for (size_t i = 0; i < config->peer_count; i++) {
		if (config->peers[i].preshared_key_file != NULL &&
		    !path_in_folder(config->peers[i].preshared_key_file))
			return false;
	}
	return true;
}

static void check_errors(const struct config_errors *errors)
{
	size_t len = strlen(config_path);

	for (size_t i = 0; i < errors->count; i++) {
		if (strncmp(errors->lines[i], config_path, len) != 0)
			__builtin_trap();
	}
}

/* Check the limits that config.h and the daemon rely on after a successful parse. */
static void check_parsed(const struct config *config)
{
	char address[64];

	if (config->peer_count == 0 || config->peer_count > CONFIG_MAX_PEERS)
		__builtin_trap();
	if (config->private_key_file == NULL)
		__builtin_trap();
	if (config->handshake_timeout_ms == 0 || config->max_connections_per_peer == 0)
		__builtin_trap();
	if (config->keepalive_timeout_ms <= config->keepalive_interval_ms || config->rekey_after_records == 0)
		__builtin_trap();
	if (config->chroot_dir != NULL && config->chroot_dir[0] != '/')
		__builtin_trap();
	if (config->has_listen)
		config_format_address(address, sizeof(address), &config->listen);

	for (size_t i = 0; i < config->peer_count; i++) {
		const struct config_peer *peer = &config->peers[i];

		if (peer->name == NULL || peer->name[0] == '\0')
			__builtin_trap();
		if (peer->has_endpoint && (peer->endpoint.host == NULL || peer->endpoint.port == 0))
			__builtin_trap();
		if (peer->accepts_connections &&
		    (peer->forward_target.host == NULL || peer->forward_target.port == 0))
			__builtin_trap();
		if (peer->has_forward_listen)
			config_format_address(address, sizeof(address), &peer->forward_listen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config config;
	struct config_errors errors = { 0 };
	char *text;

	/* config_load_file() rejects a file with a NUL byte before parsing it. */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (config_parse_string(&config, text, config_path, &errors) != 0) {
		if (errors.count == 0 || config.peers != NULL || config.path != NULL)
			__builtin_trap();
	} else {
		if (errors.count != 0)
			__builtin_trap();
		check_parsed(&config);
		if (key_files_in_folder(&config))
			config_load_secrets(&config, &errors);
		config_free(&config);
	}

	check_errors(&errors);
	config_errors_free(&errors);
	free(text);
	return 0;
}
