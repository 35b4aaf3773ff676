/*
 * walguard: carries PostgreSQL connections between hosts over an
 * authenticated, encrypted tunnel (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b).
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

static void print_usage(FILE *out)
{
	fprintf(out,
		"Usage: walguard --config FILE [--check]\n"
		"\n"
		"Run the walguard daemon in the foreground, logging to stderr.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE  config file to load (required)\n"
		"      --check        validate the config and its key files, print every\n"
		"                     problem found, and exit: 0 when valid, 1 otherwise\n"
		"  -h, --help         show this help and exit\n"
		"  -V, --version      show the version and exit\n"
		"\n"
		"Keys are made with walguard-keygen. See docs/configuration.md for the file format.\n");
}

static int report_errors(const struct config_errors *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		fprintf(stderr, "%s\n", errors->lines[i]);
	return errors->count > 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct config config;
	struct config_errors errors = { 0 };
	const char *config_path = NULL;
	bool check_only = false;
	int option;
	int status;

	while ((option = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
		switch (option) {
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
		case 'V':
			printf("walguard %s\n", WALGUARD_VERSION);
			return 0;
		default:
			print_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "walguard: unexpected argument '%s'\n", argv[optind]);
		print_usage(stderr);
		return 2;
	}
	if (config_path == NULL) {
		fprintf(stderr, "walguard: missing --config FILE\n");
		print_usage(stderr);
		return 2;
	}

	if (sodium_init() < 0) {
		fprintf(stderr, "walguard: libsodium failed to initialize\n");
		return 1;
	}

	memset(&config, 0, sizeof(config));
	if (config_load_file(&config, config_path, &errors) == 0)
		config_load_secrets(&config, &errors);
	if (report_errors(&errors) != 0) {
		fprintf(stderr, "walguard: %s: %zu problem%s found\n", config_path, errors.count,
			errors.count == 1 ? "" : "s");
		config_errors_free(&errors);
		config_free(&config);
		return 1;
	}
	config_errors_free(&errors);

	if (check_only) {
		printf("%s: valid, %zu peer%s\n", config_path, config.peer_count,
		       config.peer_count == 1 ? "" : "s");
		config_free(&config);
		return 0;
	}

	log_set_level(config.log_level);
	status = daemon_run(&config);
	config_free(&config);
	return status;
}
