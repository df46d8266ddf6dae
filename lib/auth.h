/* API tokens: "aegis_<id>_<secret>", the secret being 32 random bytes in unpadded base64url (43
 * chars). Only SHA-256(secret) is stored; a token is checked by loading its id's row and comparing
 * hashes in constant time. Roles are ordered: reader < operator < admin. */
#ifndef AEGIS_AUTH_H
#define AEGIS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_SECRET_LEN 43
#define AUTH_TOKEN_MAX 96

enum role { ROLE_NONE = 0, ROLE_READER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };

/* Makes a fresh secret (NUL-terminated, AUTH_SECRET_LEN chars) and its hash. Returns 0 / -1. */
int auth_secret_new(char secret[AUTH_SECRET_LEN + 1], unsigned char hash[32]);
/* Formats the full token into out (>= AUTH_TOKEN_MAX). Returns 0 / -1. */
int auth_token_format(int64_t id, const char *secret, char *out, size_t outlen);
/* Splits a presented token into its id and the hash of its secret. Returns 0, or -1 if
 * malformed. */
int auth_token_parse(const char *token, int64_t *id, unsigned char hash[32]);
/* Constant-time comparison of two hashes: 1 if equal. */
int auth_hash_equal(const unsigned char a[32], const unsigned char b[32]);
/* "reader" / "operator" / "admin" -> role, ROLE_NONE if unknown. */
enum role auth_role_parse(const char *s);
const char *auth_role_name(enum role r);

#endif
