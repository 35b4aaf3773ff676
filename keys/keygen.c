/*
 * walguard-keygen: make X25519 key pairs and pre-shared keys in the text
 * form that walguard's config and key files use (44 characters of base64).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "key.h"

#define EXIT_OK 0
#define EXIT_FAILURE_RUN 1
#define EXIT_USAGE 2

/* More than any key with surrounding whitespace needs; longer input is rejected. */
#define STDIN_MAX_LEN 1024

static const char usage_text[] =
	"Usage: walguard-keygen COMMAND\n"
	"\n"
	"Commands:\n"
	"  genkey      print a new private key\n"
	"  pubkey      read a private key on standard input and print its public key\n"
	"  genpsk      print a new pre-shared key\n"
	"  pair NAME   write a new private key to NAME.key (mode 0600) and its public\n"
	"              key to NAME.pub (mode 0644), and print the public key; neither\n"
	"              file may exist yet\n"
	"\n"
	"Options:\n"
	"  -h, --help     print this help\n"
	"  -V, --version  print the version\n"
	"\n"
	"Keys are 32 bytes written as 44 characters of base64 and a newline.\n"
	"Example: (umask 077; walguard-keygen genkey | tee host.key | walguard-keygen pubkey > host.pub)\n";

/* The secrets of one run, in sodium_malloc() memory that is wiped on release. */
struct secrets {
	uint8_t private_key[KEY_LEN];
	char text[KEY_BASE64_LEN + 2];	/* base64, newline, NUL */
	char input[STDIN_MAX_LEN + 1];
};

static int write_all(int fd, const char *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write a key as base64 and a newline, going around stdio so that no copy stays in its buffer. */
static int keygen_write_key(int fd, const uint8_t key[KEY_LEN], char text[KEY_BASE64_LEN + 2])
{
	int result;

	key_encode(text, key);
	text[KEY_BASE64_LEN] = '\n';
	text[KEY_BASE64_LEN + 1] = '\0';
	result = write_all(fd, text, KEY_BASE64_LEN + 1);
	sodium_memzero(text, KEY_BASE64_LEN + 2);
	return result;
}

static int keygen_print_key(const uint8_t key[KEY_LEN], char text[KEY_BASE64_LEN + 2])
{
	if (keygen_write_key(STDOUT_FILENO, key, text) != 0) {
		fprintf(stderr, "walguard-keygen: cannot write to standard output: %s\n", strerror(errno));
		return EXIT_FAILURE_RUN;
	}
	return EXIT_OK;
}

/* A random X25519 private key, clamped as RFC 7748 section 5 describes. */
static void keygen_make_private_key(uint8_t key[KEY_LEN])
{
	randombytes_buf(key, KEY_LEN);
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
}

static int keygen_genkey(struct secrets *secrets)
{
	keygen_make_private_key(secrets->private_key);
	return keygen_print_key(secrets->private_key, secrets->text);
}

static int keygen_genpsk(struct secrets *secrets)
{
	randombytes_buf(secrets->private_key, KEY_LEN);
	return keygen_print_key(secrets->private_key, secrets->text);
}

static int keygen_pubkey(struct secrets *secrets)
{
	uint8_t public_key[KEY_LEN];
	const char *error;
	size_t used = 0;
	ssize_t n;

	while (used < sizeof(secrets->input)) {
		n = read(STDIN_FILENO, secrets->input + used, sizeof(secrets->input) - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "walguard-keygen: cannot read standard input: %s\n", strerror(errno));
			return EXIT_FAILURE_RUN;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > STDIN_MAX_LEN) {
		fprintf(stderr, "walguard-keygen: pubkey: input too long to be a private key (more than %d bytes)\n",
			STDIN_MAX_LEN);
		return EXIT_FAILURE_RUN;
	}
	if (key_decode(secrets->private_key, secrets->input, used, &error) != 0) {
		fprintf(stderr, "walguard-keygen: pubkey: invalid private key on standard input: %s\n", error);
		return EXIT_FAILURE_RUN;
	}
	if (crypto_scalarmult_base(public_key, secrets->private_key) != 0) {
		fprintf(stderr, "walguard-keygen: pubkey: not a usable X25519 private key\n");
		return EXIT_FAILURE_RUN;
	}
	return keygen_print_key(public_key, secrets->text);
}

/* Create a file that must not exist yet, with exactly the given mode whatever the umask. */
static int keygen_create_file(const char *path, mode_t mode, const uint8_t key[KEY_LEN],
			      char text[KEY_BASE64_LEN + 2])
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0) {
		fprintf(stderr, "walguard-keygen: pair: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) != 0 || keygen_write_key(fd, key, text) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "walguard-keygen: pair: cannot write %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) != 0) {
		fprintf(stderr, "walguard-keygen: pair: cannot write %s: %s\n", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static int keygen_pair(struct secrets *secrets, const char *name)
{
	uint8_t public_key[KEY_LEN];
	char key_path[4096];
	char pub_path[4096];
	const char *paths[2] = { key_path, pub_path };
	struct stat st;

	if (snprintf(key_path, sizeof(key_path), "%s.key", name) >= (int)sizeof(key_path) ||
	    snprintf(pub_path, sizeof(pub_path), "%s.pub", name) >= (int)sizeof(pub_path)) {
		fprintf(stderr, "walguard-keygen: pair: NAME too long\n");
		return EXIT_USAGE;
	}

	/* Check both before writing either, so that a refusal leaves nothing behind. */
	for (size_t i = 0; i < 2; i++) {
		if (lstat(paths[i], &st) == 0) {
			fprintf(stderr, "walguard-keygen: pair: %s already exists and is left unchanged (choose another NAME or remove the file)\n",
				paths[i]);
			return EXIT_FAILURE_RUN;
		}
		if (errno != ENOENT) {
			fprintf(stderr, "walguard-keygen: pair: cannot check %s: %s\n", paths[i], strerror(errno));
			return EXIT_FAILURE_RUN;
		}
	}

	keygen_make_private_key(secrets->private_key);
	if (crypto_scalarmult_base(public_key, secrets->private_key) != 0) {
		fprintf(stderr, "walguard-keygen: pair: key generation failed\n");
		return EXIT_FAILURE_RUN;
	}

	if (keygen_create_file(key_path, 0600, secrets->private_key, secrets->text) != 0)
		return EXIT_FAILURE_RUN;
	if (keygen_create_file(pub_path, 0644, public_key, secrets->text) != 0) {
		unlink(key_path);
		return EXIT_FAILURE_RUN;
	}
	return keygen_print_key(public_key, secrets->text);
}

static int keygen_usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

static int keygen_usage_error(const char *format, ...)
{
	va_list args;

	fputs("walguard-keygen: ", stderr);
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputs("\nRun 'walguard-keygen --help' for usage.\n", stderr);
	return EXIT_USAGE;
}

static int keygen_run(int argc, char **argv, struct secrets *secrets)
{
	const char *command = argv[1];
	int expected_argc = 2;

	if (strcmp(command, "pair") == 0)
		expected_argc = 3;
	else if (strcmp(command, "genkey") != 0 && strcmp(command, "pubkey") != 0 &&
		 strcmp(command, "genpsk") != 0)
		return keygen_usage_error("unknown command '%s'", command);

	if (argc < expected_argc)
		return keygen_usage_error("%s: missing NAME", command);
	if (argc > expected_argc)
		return keygen_usage_error("unexpected argument '%s'", argv[expected_argc]);

	if (strcmp(command, "genkey") == 0)
		return keygen_genkey(secrets);
	if (strcmp(command, "genpsk") == 0)
		return keygen_genpsk(secrets);
	if (strcmp(command, "pubkey") == 0)
		return keygen_pubkey(secrets);
	if (argv[2][0] == '\0')
		return keygen_usage_error("%s: NAME is empty", command);
	return keygen_pair(secrets, argv[2]);
}

int main(int argc, char **argv)
{
	struct secrets *secrets;
	int status;

	if (argc < 2)
		return keygen_usage_error("missing command");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILURE_RUN;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("walguard-keygen %s\n", WALGUARD_VERSION);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILURE_RUN;
	}
	if (argv[1][0] == '-')
		return keygen_usage_error("unknown option '%s'", argv[1]);

	if (sodium_init() < 0) {
		fprintf(stderr, "walguard-keygen: libsodium failed to initialize\n");
		return EXIT_FAILURE_RUN;
	}
	secrets = sodium_malloc(sizeof(*secrets));
	if (secrets == NULL) {
		fprintf(stderr, "walguard-keygen: out of memory\n");
		return EXIT_FAILURE_RUN;
	}

	status = keygen_run(argc, argv, secrets);

	/* sodium_free() zeroes the memory before releasing it. */
	sodium_free(secrets);
	return status;
}
