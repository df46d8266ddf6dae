#include "auth.h"

#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_PREFIX "aegis_"

static void
hash_secret(const char *secret, size_t len, unsigned char hash[32])
{
    crypto_hash_sha256(hash, (const unsigned char *)secret, len);
}

int
auth_secret_new(char secret[AUTH_SECRET_LEN + 1], unsigned char hash[32])
{
    unsigned char raw[32];
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(secret, AUTH_SECRET_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    hash_secret(secret, AUTH_SECRET_LEN, hash);
    return 0;
}

int
auth_token_format(int64_t id, const char *secret, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, TOKEN_PREFIX "%lld_%s", (long long)id, secret);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int
auth_token_parse(const char *token, int64_t *id, unsigned char hash[32])
{
    size_t plen = strlen(TOKEN_PREFIX);
    if (strncmp(token, TOKEN_PREFIX, plen) != 0)
        return -1;
    const char *idp = token + plen;
    const char *us = strchr(idp, '_');
    if (us == NULL || us == idp || us - idp > 19)
        return -1;
    char idbuf[20];
    memcpy(idbuf, idp, (size_t)(us - idp));
    idbuf[us - idp] = '\0';
    if (util_parse_i64(idbuf, 1, INT64_MAX, id) != 0)
        return -1;
    const char *secret = us + 1;
    if (strlen(secret) != AUTH_SECRET_LEN)
        return -1;
    for (const char *p = secret; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return -1;
    }
    hash_secret(secret, AUTH_SECRET_LEN, hash);
    return 0;
}

int
auth_hash_equal(const unsigned char a[32], const unsigned char b[32])
{
    return sodium_memcmp(a, b, 32) == 0;
}

enum role
auth_role_parse(const char *s)
{
    if (strcmp(s, "reader") == 0)
        return ROLE_READER;
    if (strcmp(s, "operator") == 0)
        return ROLE_OPERATOR;
    if (strcmp(s, "admin") == 0)
        return ROLE_ADMIN;
    return ROLE_NONE;
}

const char *
auth_role_name(enum role r)
{
    switch (r) {
    case ROLE_READER:
        return "reader";
    case ROLE_OPERATOR:
        return "operator";
    case ROLE_ADMIN:
        return "admin";
    default:
        return "none";
    }
}
