/* ota_cjson: canonical JSON encoder (see ota_cjson.h for the exact dialect). */
#include "ota_cjson.h"

#include "errbuf.h"

#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cbuf {
    char *p;
    size_t len, cap;
};

struct ckey {
    const char *s;
    size_t len;
    json_t *v;
};

static int
cbuf_put(struct cbuf *b, const void *data, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int
cbuf_ch(struct cbuf *b, char c)
{
    return cbuf_put(b, &c, 1);
}

/* Only '"' and '\' are escaped: the runs between them are copied whole. */
static int
put_string(struct cbuf *b, const char *s, size_t n)
{
    if (cbuf_ch(b, '"') < 0)
        return -1;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"' && s[i] != '\\')
            continue;
        if (cbuf_put(b, s + start, i - start) < 0 || cbuf_ch(b, '\\') < 0)
            return -1;
        start = i; /* the quote or backslash itself goes out with the next run */
    }
    if (cbuf_put(b, s + start, n - start) < 0)
        return -1;
    return cbuf_ch(b, '"');
}

static int
key_cmp(const void *a, const void *b)
{
    const struct ckey *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int encode(struct cbuf *b, const json_t *v, int depth, char *err, size_t errlen);

static int
encode_object(struct cbuf *b, const json_t *v, int depth, char *err, size_t errlen)
{
    int rc = -1;
    size_t n = json_object_size(v);
    struct ckey *keys = calloc(n ? n : 1, sizeof(*keys));
    if (keys == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return -1;
    }
    size_t i = 0;
    const char *k;
    json_t *val;
    void *it;
    /* json_object_iter_key_len: a key may hold a NUL (jansson >= 2.14), so lengths, not strcmp */
    for (it = json_object_iter((json_t *)v); it != NULL;
         it = json_object_iter_next((json_t *)v, it)) {
        assert(i < n);
        k = json_object_iter_key(it);
        val = json_object_iter_value(it);
        keys[i].s = k;
        keys[i].len = json_object_iter_key_len(it);
        keys[i].v = val;
        i++;
    }
    assert(i == n);
    qsort(keys, n, sizeof(*keys), key_cmp);
    if (cbuf_ch(b, '{') < 0)
        goto oom;
    for (i = 0; i < n; i++) {
        if ((i > 0 && cbuf_ch(b, ',') < 0) || put_string(b, keys[i].s, keys[i].len) < 0 ||
            cbuf_ch(b, ':') < 0)
            goto oom;
        if (encode(b, keys[i].v, depth + 1, err, errlen) < 0)
            goto out;
    }
    if (cbuf_ch(b, '}') < 0)
        goto oom;
    rc = 0;
    goto out;
oom:
    errbuf_set(err, errlen, "out of memory");
out:
    free(keys);
    return rc;
}

static int
encode_array(struct cbuf *b, const json_t *v, int depth, char *err, size_t errlen)
{
    if (cbuf_ch(b, '[') < 0)
        goto oom;
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (i > 0 && cbuf_ch(b, ',') < 0)
            goto oom;
        if (encode(b, json_array_get(v, i), depth + 1, err, errlen) < 0)
            return -1;
    }
    if (cbuf_ch(b, ']') < 0)
        goto oom;
    return 0;
oom:
    errbuf_set(err, errlen, "out of memory");
    return -1;
}

static int
encode(struct cbuf *b, const json_t *v, int depth, char *err, size_t errlen)
{
    char num[24];
    int r = 0;
    if (depth > OTA_CJSON_MAX_DEPTH) {
        errbuf_set(err, errlen, "canonical json: nested deeper than %d", OTA_CJSON_MAX_DEPTH);
        return -1;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return encode_object(b, v, depth, err, errlen);
    case JSON_ARRAY:
        return encode_array(b, v, depth, err, errlen);
    case JSON_STRING:
        r = put_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        r = cbuf_put(b, num, strlen(num));
        break;
    case JSON_TRUE:
        r = cbuf_put(b, "true", 4);
        break;
    case JSON_FALSE:
        r = cbuf_put(b, "false", 5);
        break;
    case JSON_NULL:
        r = cbuf_put(b, "null", 4);
        break;
    case JSON_REAL:
        errbuf_set(err, errlen, "canonical json: a real number (%g) is not allowed",
                   json_real_value(v));
        return -1;
    }
    if (r < 0)
        errbuf_set(err, errlen, "out of memory");
    return r;
}

int
ota_cjson_encode(const json_t *v, char **out, size_t *len, char *err, size_t errlen)
{
    struct cbuf b = {0};
    *out = NULL;
    *len = 0;
    if (v == NULL) {
        errbuf_set(err, errlen, "canonical json: no value");
        return -1;
    }
    if (encode(&b, v, 0, err, errlen) < 0) {
        free(b.p);
        return -1;
    }
    assert(b.p != NULL);
    *out = b.p;
    *len = b.len;
    return 0;
}
