#include "jsonx.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

int
jsonx_only_keys(const json_t *obj, const char *const *allowed, char *err, size_t errlen)
{
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(*a, key) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            snprintf(err, errlen, "unknown field '%.64s'", key);
            util_utf8_repair(err); /* the name may have been cut inside a character */
            return -1;
        }
    }
    return 0;
}

int
jsonx_text_ok(const char *s, size_t len)
{
    /* jansson already guarantees valid UTF-8 for parsed strings; control characters are ours to
     * refuse. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

int
jsonx_str(const json_t *obj, const char *key, int required, size_t minlen, size_t maxlen,
          const char **out, char *err, size_t errlen)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (!required)
            return 0;
        snprintf(err, errlen, "field '%s' is required", key);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "field '%s' must be a string", key);
        return -1;
    }
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len < minlen || len > maxlen) {
        snprintf(err, errlen, "field '%s' must be %zu to %zu bytes long", key, minlen, maxlen);
        return -1;
    }
    if (strlen(s) != len || !jsonx_text_ok(s, len)) {
        snprintf(err, errlen, "field '%s' contains control characters", key);
        return -1;
    }
    *out = s;
    return 0;
}

int
jsonx_int(const json_t *obj, const char *key, int required, int allow_null, int64_t min,
          int64_t max, int64_t *out, int *present, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = 0;
    if (v == NULL || (allow_null && json_is_null(v))) {
        if (v != NULL && present != NULL)
            *present = 1;
        if (!required)
            return 0;
        snprintf(err, errlen, "field '%s' is required", key);
        return -1;
    }
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "field '%s' must be an integer", key);
        return -1;
    }
    json_int_t i = json_integer_value(v);
    if (i < min || i > max) {
        snprintf(err, errlen, "field '%s' must be from %lld to %lld", key, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = (int64_t)i;
    if (present != NULL)
        *present = 1;
    return 0;
}

int
jsonx_bool(const json_t *obj, const char *key, int required, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (!required)
            return 0;
        snprintf(err, errlen, "field '%s' is required", key);
        return -1;
    }
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "field '%s' must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}
