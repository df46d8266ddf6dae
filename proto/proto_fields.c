/* proto_fields: the protocol's field rules (proto_fields.h). */
#include "proto_fields.h"

#include <string.h>

static const char *const stage_names[] = {NULL, "bootloader", "os", "app"};

const char *
proto_stage_name(int stage)
{
    return stage >= PROTO_STAGE_BOOTLOADER && stage <= PROTO_STAGE_APP ? stage_names[stage] : NULL;
}

int
proto_name_index(const char *const *names, int first, int n, const char *name, size_t len)
{
    for (int i = first; name != NULL && i < n; i++) {
        if (strlen(names[i]) == len && memcmp(name, names[i], len) == 0)
            return i;
    }
    return -1;
}

int
proto_stage_parse(const char *name, size_t len)
{
    return proto_name_index(stage_names, PROTO_STAGE_BOOTLOADER, PROTO_STAGE_APP + 1, name, len);
}

int
proto_chars_ok(const char *s, size_t len, size_t min, size_t max, const char *set)
{
    /* a bitmap of the set, so each byte costs one lookup (this runs on every field of every
     * report an upload carries) */
    uint64_t in_set[4] = {0, 0, 0, 0};
    if (s == NULL || len < min || len > max)
        return 0;
    for (const unsigned char *c = (const unsigned char *)set; *c != '\0'; c++)
        in_set[*c >> 6] |= (uint64_t)1 << (*c & 63);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((in_set[c >> 6] >> (c & 63) & 1) == 0)
            return 0;
    }
    return 1;
}

int
proto_component_ok(const char *s, size_t len)
{
    /* "." and ".." are directory names wherever a component becomes a path segment (a URL, a
     * file of the simulator or of update distribution) */
    if (s != NULL && len <= 2 && len >= 1 && s[0] == '.' && s[len - 1] == '.')
        return 0;
    return proto_chars_ok(s, len, 1, PROTO_COMPONENT_MAX, PROTO_COMPONENT_CHARS);
}

int
proto_version_ok(const char *s, size_t len)
{
    if (s == NULL || len < 1 || len > PROTO_VERSION_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 1;
}

int
proto_hex_ok(const char *s, size_t len, size_t nbytes)
{
    return nbytes > 0 && len == 2 * nbytes && proto_chars_ok(s, len, len, len, "0123456789abcdef");
}

int
proto_digest_hex_ok(const char *s, size_t len)
{
    return proto_hex_ok(s, len, PROTO_HASH_LEN);
}

void
proto_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int
hexval(char c, int lower_only)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (!lower_only && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
proto_unhex(const char *hex, size_t len, uint8_t *out, size_t n, int lower_only)
{
    if (hex == NULL || len != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i], lower_only), lo = hexval(hex[2 * i + 1], lower_only);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
