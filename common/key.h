/*
 * Text encoding of 32-byte keys (standard base64 with padding, 44
 * characters, as WireGuard's tools use) and loading of key files.
 */
#ifndef WALGUARD_KEY_H
#define WALGUARD_KEY_H

#include <stddef.h>
#include <stdint.h>

#define KEY_LEN 32
#define KEY_BASE64_LEN 44

/*
 * Decode a base64 key. Whitespace (spaces, tabs, CR, LF) before and after
 * the key is accepted; anything else that is not exactly 44 base64
 * characters encoding 32 bytes is rejected. On failure returns -1 and sets
 * *error to a message such as "not valid base64", valid until the next call
 * in the same thread. The caller wipes text that held a secret.
 */
int key_decode(uint8_t key[KEY_LEN], const char *text, size_t len, const char **error);

/* Encode a key as 44 characters of base64 and a terminating NUL. */
void key_encode(char text[KEY_BASE64_LEN + 1], const uint8_t key[KEY_LEN]);

/*
 * Load a secret key (private key or pre-shared key) from a file into key,
 * which should be sodium_malloc() memory. The file, after following
 * symbolic links, must be a regular file that gives group and others no
 * permission at all; a symbolic link is followed only to such a file. On
 * failure returns -1 and writes a message that names the file and the fix,
 * for example "/etc/walguard/a.key: readable by group or others (mode
 * 0644); run 'chmod 600 /etc/walguard/a.key'", into error. Every temporary
 * copy of the key text is wiped.
 */
int key_load_secret_file(uint8_t key[KEY_LEN], const char *path, char *error, size_t error_size);

#endif
