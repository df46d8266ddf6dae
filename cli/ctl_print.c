#include "ctl_print.h"

#include "ctl.h"
#include "util.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
ctl_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
}

void
ctl_json_forget(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* Number of characters (UTF-8 code points) in s. */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Bytes of a character at p that must not reach a terminal as it is, else 0: C0 and C1 controls
 * and DEL (escape sequences), and the bidirectional controls and line separators that make a
 * table show something other than its text (U+061C, U+200E-F, U+2028-E, U+2066-9), and bytes
 * that are not UTF-8. */
static size_t
unsafe_len(const unsigned char *p)
{
    if (p[0] < 0x20 || p[0] == 0x7f || util_utf8_char_len((const char *)p) == 0)
        return 1; /* a control, or a byte of no well-formed character (a lone 0x9b is a CSI) */
    if ((p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) || (p[0] == 0xd8 && p[1] == 0x9c))
        return 2;
    if (p[0] == 0xe2 && p[1] == 0x80 &&
        (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae)))
        return 3;
    if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
        return 3;
    return 0;
}

void
ctl_sanitize(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = r;
    while (*r != '\0') {
        size_t n = unsafe_len(r);
        if (n > 0) {
            *w++ = '?';
            r += n;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Cuts s (in place) to at most max characters, ending in "..." when cut. */
static void
truncate_to(char *s, size_t max)
{
    if (max < 4 || width(s) <= max)
        return;
    size_t chars = 0;
    char *p = s;
    for (; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (chars == max - 3)
                break;
            chars++;
        }
    }
    memcpy(p, "...", 4);
}

/* The text of a JSON value for display (malloc'd), unsanitized; "-" for absent or null. */
static char *
value_text(const json_t *v)
{
    char buf[64];
    if (v == NULL || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return strdup(buf);
    }
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void
ctl_print_table(const json_t *items, const struct ctl_col *cols)
{
    size_t ncols = 0, nrows = json_is_array(items) ? json_array_size(items) : 0;
    while (cols[ncols].header != NULL)
        ncols++;
    size_t *w = calloc(ncols + 1, sizeof(*w));
    char **cells = calloc(nrows * ncols + 1, sizeof(*cells));
    if (w == NULL || cells == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    for (size_t j = 0; j < ncols; j++)
        w[j] = width(cols[j].header);
    for (size_t i = 0; i < nrows; i++) {
        const json_t *row = json_array_get(items, i);
        for (size_t j = 0; j < ncols; j++) {
            char *t = value_text(json_is_object(row) ? json_object_get(row, cols[j].key) : NULL);
            if (t == NULL) {
                ctl_err("out of memory");
                goto out;
            }
            ctl_sanitize(t);
            if (cols[j].max > 0)
                truncate_to(t, cols[j].max);
            cells[i * ncols + j] = t;
            if (width(t) > w[j])
                w[j] = width(t);
        }
    }
    for (size_t j = 0; j < ncols; j++) {
        if (j + 1 < ncols)
            printf("%s%*s  ", cols[j].header, (int)(w[j] - width(cols[j].header)), "");
        else
            printf("%s\n", cols[j].header);
    }
    for (size_t i = 0; i < nrows; i++) {
        for (size_t j = 0; j < ncols; j++) {
            const char *t = cells[i * ncols + j];
            if (j + 1 < ncols)
                printf("%s%*s  ", t, (int)(w[j] - width(t)), "");
            else
                printf("%s\n", t);
        }
    }
out:
    if (cells != NULL)
        for (size_t i = 0; i < nrows * ncols; i++)
            free(cells[i]);
    free(cells);
    free(w);
}

void
ctl_print_object(const json_t *obj)
{
    const char *key;
    const json_t *v;
    size_t kw = 0;
    if (!json_is_object(obj)) {
        ctl_print_json(obj);
        return;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strlen(key) > kw)
            kw = strlen(key);
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        char k[128];
        snprintf(k, sizeof(k), "%s", key);
        ctl_sanitize(k);
        char *t = value_text(v);
        if (t == NULL) {
            ctl_err("out of memory");
            return;
        }
        if (json_is_string(v) && strchr(t, '\n') != NULL) {
            printf("%s:\n", k);
            char *save = NULL;
            for (char *line = strtok_r(t, "\n", &save); line != NULL;
                 line = strtok_r(NULL, "\n", &save)) {
                ctl_sanitize(line);
                printf("    %s\n", line);
            }
        } else {
            ctl_sanitize(t);
            if (t[0] == '\0')
                printf("%s:\n", k);
            else
                printf("%s:%*s %s\n", k, (int)(kw - strlen(key)), "", t);
        }
        free(t);
    }
}

void
ctl_print_result(int json, const json_t *obj)
{
    if (json)
        ctl_print_json(obj);
    else
        ctl_print_object(obj);
}
