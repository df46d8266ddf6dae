/* Strict validation of JSON request bodies (jansson). Every helper writes a human-readable reason
 * into err and returns -1 on failure; the caller turns it into a 400 {"error": "validation_failed",
 * ...}. */
#ifndef AEGIS_JSONX_H
#define AEGIS_JSONX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* obj must be an object with no keys outside allowed (a NULL-terminated list). */
int jsonx_only_keys(const json_t *obj, const char *const *allowed, char *err, size_t errlen);

/* A string field of minlen..maxlen bytes of valid UTF-8 without control characters. *out is NULL
 * when absent and not required. The pointer lives as long as obj. */
int jsonx_str(const json_t *obj, const char *key, int required, size_t minlen, size_t maxlen,
              const char **out, char *err, size_t errlen);

/* An integer field in [min, max]. *present (may be NULL) tells whether it was there; null counts as
 * absent when allow_null is set. */
int jsonx_int(const json_t *obj, const char *key, int required, int allow_null, int64_t min,
              int64_t max, int64_t *out, int *present, char *err, size_t errlen);

/* A boolean field; *out keeps its value when absent and not required. */
int jsonx_bool(const json_t *obj, const char *key, int required, int *out, char *err,
               size_t errlen);

/* 1 if s (len bytes) is valid UTF-8 with no control characters, else 0. */
int jsonx_text_ok(const char *s, size_t len);

#endif
