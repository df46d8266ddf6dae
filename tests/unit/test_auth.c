/* Unit tests for lib/auth.c: secrets, token format and parsing, hash comparison, roles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static int
is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void
test_secret_format(void **state)
{
    (void)state;
    char secret[AUTH_SECRET_LEN + 1], other[AUTH_SECRET_LEN + 1];
    unsigned char hash[32], ohash[32], want[32];

    assert_int_equal(auth_secret_new(secret, hash), 0);
    assert_int_equal(strlen(secret), 43);
    for (size_t i = 0; i < AUTH_SECRET_LEN; i++) {
        if (!is_b64url(secret[i]))
            fail_msg("secret has '%c' at %zu", secret[i], i);
    }
    /* The hash is SHA-256 of the secret text. */
    crypto_hash_sha256(want, (const unsigned char *)secret, AUTH_SECRET_LEN);
    assert_memory_equal(hash, want, 32);
    /* 32 random bytes: the unpadded base64url decodes to exactly 32. */
    unsigned char raw[64];
    size_t rawlen = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof(raw), secret, AUTH_SECRET_LEN, NULL, &rawlen,
                                       NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(rawlen, 32);
    /* Fresh every time. */
    assert_int_equal(auth_secret_new(other, ohash), 0);
    assert_string_not_equal(secret, other);
    assert_false(auth_hash_equal(hash, ohash));
}

static void
test_token_roundtrip(void **state)
{
    (void)state;
    char secret[AUTH_SECRET_LEN + 1], token[AUTH_TOKEN_MAX];
    unsigned char hash[32], parsed[32];
    int64_t id = 0;

    assert_int_equal(auth_secret_new(secret, hash), 0);
    assert_int_equal(auth_token_format(42, secret, token, sizeof(token)), 0);
    char want[AUTH_TOKEN_MAX];
    snprintf(want, sizeof(want), "aegis_42_%s", secret);
    assert_string_equal(token, want);
    assert_int_equal(auth_token_parse(token, &id, parsed), 0);
    assert_int_equal(id, 42);
    assert_memory_equal(parsed, hash, 32);
    assert_true(auth_hash_equal(parsed, hash));

    /* The largest id fits AUTH_TOKEN_MAX and round-trips. */
    assert_int_equal(auth_token_format(INT64_MAX, secret, token, sizeof(token)), 0);
    assert_true(strlen(token) < AUTH_TOKEN_MAX);
    assert_int_equal(auth_token_parse(token, &id, parsed), 0);
    assert_int_equal(id, INT64_MAX);
    assert_memory_equal(parsed, hash, 32);

    /* A secret made of '-' and '_' parses too. */
    char dashes[AUTH_SECRET_LEN + 1];
    memset(dashes, '-', AUTH_SECRET_LEN);
    dashes[AUTH_SECRET_LEN] = '\0';
    dashes[5] = '_';
    assert_int_equal(auth_token_format(1, dashes, token, sizeof(token)), 0);
    assert_int_equal(auth_token_parse(token, &id, parsed), 0);
    assert_int_equal(id, 1);

    /* Too small an output buffer. */
    assert_int_equal(auth_token_format(42, secret, token, 20), -1);
}

static void
test_token_malformed(void **state)
{
    (void)state;
    char secret[AUTH_SECRET_LEN + 1], tok[256];
    unsigned char hash[32], parsed[32];
    int64_t id = 0;
    assert_int_equal(auth_secret_new(secret, hash), 0);

    char shorter[AUTH_SECRET_LEN];
    memcpy(shorter, secret, AUTH_SECRET_LEN - 1);
    shorter[AUTH_SECRET_LEN - 1] = '\0';
    char bad_char[AUTH_SECRET_LEN + 1];
    memcpy(bad_char, secret, sizeof(bad_char));

    struct {
        const char *fmt;
        const char *secret;
    } cases[] = {
        {"", ""},
        {"aegis_", ""},
        {"aegis_1", ""},
        {"aegis_1_", ""},
        {"Aegis_1_%s", secret},
        {"aegis-1_%s", secret},
        {"xaegis_1_%s", secret},
        {"token_1_%s", secret},
        {"aegis__%s", secret},
        {"aegis_%s", secret},
        {"aegis_0_%s", secret},
        {"aegis_-1_%s", secret},
        {"aegis_abc_%s", secret},
        {"aegis_1a_%s", secret},
        {"aegis_ 1_%s", secret},
        {"aegis_99999999999999999999_%s", secret},
        {"aegis_9223372036854775808_%s", secret},
        {"aegis_1_%s", shorter},
        {"aegis_1_%sA", secret},
        {"aegis_1_%s ", secret},
        {"aegis_1_ %s", secret},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(tok, sizeof(tok), cases[i].fmt, cases[i].secret);
        if (auth_token_parse(tok, &id, parsed) != -1)
            fail_msg("accepted '%s'", tok);
    }
    /* Each character outside base64url, at the start, middle and end of the secret. */
    static const char bad[] = "+/=.!~ \t%$";
    static const size_t at[] = {0, 21, AUTH_SECRET_LEN - 1};
    for (size_t b = 0; b < sizeof(bad) - 1; b++) {
        for (size_t a = 0; a < sizeof(at) / sizeof(at[0]); a++) {
            memcpy(bad_char, secret, sizeof(bad_char));
            bad_char[at[a]] = bad[b];
            snprintf(tok, sizeof(tok), "aegis_7_%s", bad_char);
            if (auth_token_parse(tok, &id, parsed) != -1)
                fail_msg("accepted '%s'", tok);
        }
    }
    /* A non-ASCII byte. */
    memcpy(bad_char, secret, sizeof(bad_char));
    bad_char[10] = (char)0xc3;
    snprintf(tok, sizeof(tok), "aegis_7_%s", bad_char);
    assert_int_equal(auth_token_parse(tok, &id, parsed), -1);
}

static void
test_hash_equal(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    for (int i = 0; i < 32; i++)
        a[i] = (unsigned char)(i * 7);
    memcpy(b, a, 32);
    assert_true(auth_hash_equal(a, b));
    assert_int_equal(auth_hash_equal(a, b), 1);
    b[0] ^= 1;
    assert_int_equal(auth_hash_equal(a, b), 0);
    b[0] ^= 1;
    b[31] ^= 0x80;
    assert_int_equal(auth_hash_equal(a, b), 0);
}

static void
test_roles(void **state)
{
    (void)state;
    assert_int_equal(auth_role_parse("reader"), ROLE_READER);
    assert_int_equal(auth_role_parse("operator"), ROLE_OPERATOR);
    assert_int_equal(auth_role_parse("admin"), ROLE_ADMIN);
    assert_int_equal(auth_role_parse("Admin"), ROLE_NONE);
    assert_int_equal(auth_role_parse("admin "), ROLE_NONE);
    assert_int_equal(auth_role_parse(""), ROLE_NONE);
    assert_int_equal(auth_role_parse("none"), ROLE_NONE);
    assert_int_equal(auth_role_parse("root"), ROLE_NONE);
    assert_string_equal(auth_role_name(ROLE_READER), "reader");
    assert_string_equal(auth_role_name(ROLE_OPERATOR), "operator");
    assert_string_equal(auth_role_name(ROLE_ADMIN), "admin");
    assert_string_equal(auth_role_name(ROLE_NONE), "none");
    /* Round trip and order. */
    for (enum role r = ROLE_READER; r <= ROLE_ADMIN; r++)
        assert_int_equal(auth_role_parse(auth_role_name(r)), r);
    assert_true(ROLE_READER < ROLE_OPERATOR && ROLE_OPERATOR < ROLE_ADMIN);
    assert_true(ROLE_NONE < ROLE_READER);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_format),   cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_token_malformed), cmocka_unit_test(test_hash_equal),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
