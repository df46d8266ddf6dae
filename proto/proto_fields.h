/* proto_fields: the field rules of the Aegis device protocol (docs/protocol.md section 2,
 * docs/telemetry.md section 1), defined once for the service, the reference device, the simulator,
 * the CLI and the tests. Pure functions: no allocation, no global state, thread-safe. */
#ifndef AEGIS_PROTO_FIELDS_H
#define AEGIS_PROTO_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1            /* "version" of evidence and telemetry bodies */
#define PROTO_HASH_LEN 32          /* SHA-256 */
#define PROTO_HASH_HEX 64          /* its lower-case hex */
#define PROTO_COMPONENT_MAX 64     /* a component name: 1..64 of [a-z0-9._-] */
#define PROTO_VERSION_MAX 32       /* a version string: 1..32 of 0x21..0x7e */
#define PROTO_SVN_MAX 4294967295LL /* a security version: 0..2^32-1 */
#define PROTO_COMPONENT_CHARS "abcdefghijklmnopqrstuvwxyz0123456789._-"

/* Measured-boot stages, in the order the event log lists them. */
enum proto_stage {
    PROTO_STAGE_BOOTLOADER = 1,
    PROTO_STAGE_OS = 2,
    PROTO_STAGE_APP = 3,
};

/* "bootloader", "os", "app", or NULL for any other code. */
const char *proto_stage_name(int stage);
/* The stage of a name of len bytes, or -1. */
int proto_stage_parse(const char *name, size_t len);

/* The index i in [first, n) whose names[i] equals name[0..len), or -1 (NULL name: -1). The lookup
 * of every name list of the protocol (stages, report types, reboot reasons). */
int proto_name_index(const char *const *names, int first, int n, const char *name, size_t len);

/* Each: 1 when s[0..len) follows the rule, else 0 (NULL s: 0). */
int proto_component_ok(const char *s, size_t len); /* 1..64 of [a-z0-9._-], not "." or ".." */
int proto_version_ok(const char *s, size_t len);   /* 1..32 of 0x21..0x7e */
/* Exactly 2 * nbytes lower-case hex characters. */
int proto_hex_ok(const char *s, size_t len, size_t nbytes);
/* A SHA-256 digest or device id as the wire carries it: 64 lower-case hex characters. */
int proto_digest_hex_ok(const char *s, size_t len);
/* Every byte of s[0..len) is in set (a NUL-terminated list), and min <= len <= max. */
int proto_chars_ok(const char *s, size_t len, size_t min, size_t max, const char *set);

/* Lower-case hex of in[0..n) into out (2n + 1 bytes, NUL-terminated). */
void proto_hex(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n hex characters of hex[0..len) into out[0..n). lower_only: refuse upper case
 * (the wire format); otherwise either case (files and flags). Returns 0, or -1. */
int proto_unhex(const char *hex, size_t len, uint8_t *out, size_t n, int lower_only);

#endif
