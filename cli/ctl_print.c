#include "ctl_print.h"

#include "ctl_jsonpath.h"
#include "ctl_text.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MIN_CUT 5 /* a column is not cut narrower than this (or its header) */

void
ctl_sanitize(char *s)
{
    ctl_text_sanitize(s);
}

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

/* --- values as text --- */

/* The text of a scalar (malloc'd, unsafe yet; NULL when out of memory): "-" for absent or null,
 * and for an empty object or array (as in tables: "{}" reads as noise to people); other objects
 * and arrays as compact JSON. */
static char *
scalar_text(const json_t *v)
{
    char buf[64];
    if (v == NULL || json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_array(v) && json_array_size(v) == 0))
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

/* The text of a table cell (malloc'd, safe; NULL when out of memory): a scalar, or an array's
 * elements as "a,b", an object's members as "k=v,k=v" (deeper values as compact JSON). */
static char *
cell_text(const json_t *v)
{
    if (!json_is_array(v) && !json_is_object(v)) {
        char *t = scalar_text(v), *s = t != NULL ? ctl_text_safe(t, 0) : NULL;
        free(t);
        return s;
    }
    if (json_is_array(v) ? json_array_size(v) == 0 : json_object_size(v) == 0)
        return strdup("-");
    char *buf = NULL, *s = NULL;
    size_t len = 0;
    const json_t *e;
    int ok = 1;
    FILE *m = open_memstream(&buf, &len);
    if (m == NULL)
        return NULL;
    if (json_is_array(v)) {
        size_t i;
        json_array_foreach((json_t *)v, i, e)
        {
            char *t = scalar_text(e);
            ok &= t != NULL && fprintf(m, "%s%s", i > 0 ? "," : "", t) >= 0;
            free(t);
        }
    } else {
        const char *key, *sep = "";
        json_object_foreach((json_t *)v, key, e)
        {
            char *t = scalar_text(e);
            ok &= t != NULL && fprintf(m, "%s%s=%s", sep, key, t) >= 0;
            sep = ",";
            free(t);
        }
    }
    if (fclose(m) == 0 && ok)
        s = ctl_text_safe(buf, 0);
    free(buf);
    return s;
}

/* --- tables --- */

/* A table being laid out: the visible columns, the cells (row-major, safe text), their widths,
 * and the CTL_COL_DROP columns left out to fit a terminal. */
struct table {
    const struct ctl_col **col;
    size_t ncols, nrows;
    char **cell;
    size_t *w;
    unsigned char *dropped;
};

static void
table_free(struct table *t)
{
    if (t->cell != NULL)
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
            free(t->cell[i]);
    free(t->cell);
    free(t->col);
    free(t->w);
    free(t->dropped);
}

/* 1 when s is 64 hex digits: a device ID or a SHA-256 digest. */
static int
is_hex64(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == 64 && s[n] == '\0';
}

static int
cuttable(const struct ctl_col *col)
{
    return (col->flags & CTL_COL_CUT) || col->max > 0;
}

/* Fills t from items: the columns shown, each cell's text, each column's natural width. Returns
 * 0, or -1 when out of memory. */
static int
table_build(struct table *t, const json_t *items, const struct ctl_col *cols,
            const struct ctl_table_opts *o)
{
    size_t all = 0;
    while (cols[all].header != NULL)
        all++;
    t->nrows = json_is_array(items) ? json_array_size(items) : 0;
    t->col = calloc(all + 1, sizeof(const struct ctl_col *));
    t->w = calloc(all + 1, sizeof(*t->w));
    t->dropped = calloc(all + 1, sizeof(*t->dropped));
    if (t->col == NULL || t->w == NULL || t->dropped == NULL)
        return -1;
    for (size_t j = 0; j < all; j++)
        if (o->wide || !(cols[j].flags & CTL_COL_WIDE))
            t->col[t->ncols++] = &cols[j];
    assert(t->ncols > 0);
    if ((t->cell = calloc(t->nrows * t->ncols + 1, sizeof(*t->cell))) == NULL)
        return -1;
    for (size_t j = 0; j < t->ncols && !o->no_headers; j++)
        t->w[j] = ctl_text_width(t->col[j]->header);
    for (size_t i = 0; i < t->nrows; i++) {
        const json_t *row = json_array_get(items, i);
        for (size_t j = 0; j < t->ncols; j++) {
            const json_t *v = json_is_object(row) ? json_object_get(row, t->col[j]->key) : NULL;
            char *s = cell_text(v);
            if (s == NULL)
                return -1;
            if (o->width > 0 && !o->wide && (t->col[j]->flags & CTL_COL_HASH) && is_hex64(s))
                s[CTL_HASH_SHORT] = '\0';
            t->cell[i * t->ncols + j] = s;
            size_t cw = ctl_text_width(s);
            if (cw > t->w[j])
                t->w[j] = cw;
        }
    }
    return 0;
}

/* Leaves out CTL_COL_DROP columns, the rightmost first, while the table would not fit width even
 * with every free-text column at its narrowest (minw); returns the width left to fit. */
static size_t
table_drop(struct table *t, const size_t *minw, size_t total, size_t width)
{
    size_t narrowest = 0;
    for (size_t j = 0; j < t->ncols; j++)
        narrowest += minw[j] + 2;
    for (size_t j = t->ncols; j-- > 0 && narrowest > width + 2;) {
        if (!(t->col[j]->flags & CTL_COL_DROP))
            continue;
        t->dropped[j] = 1;
        narrowest -= minw[j] + 2;
        total -= t->w[j] + 2;
    }
    return total;
}

/* Narrows the free-text columns to their caps, leaves out low-priority columns that cannot fit
 * (table_drop), then narrows the widest free-text column a column at a time until the table fits
 * width (or none can shrink more: the lines wrap), and cuts the cells to fit. */
static int
table_fit(struct table *t, size_t width)
{
    size_t total = 2 * (t->ncols - 1), *minw = calloc(t->ncols, sizeof(*minw));
    if (minw == NULL)
        return -1;
    for (size_t j = 0; j < t->ncols; j++) {
        const struct ctl_col *col = t->col[j];
        size_t hw = ctl_text_width(col->header);
        minw[j] = hw > MIN_CUT ? hw : MIN_CUT;
        if (col->max > 0 && t->w[j] > col->max)
            t->w[j] = col->max > minw[j] ? col->max : minw[j];
        if (!cuttable(col) || minw[j] > t->w[j])
            minw[j] = t->w[j];
        total += t->w[j];
    }
    total = table_drop(t, minw, total, width);
    while (total > width) {
        size_t best = t->ncols;
        for (size_t j = 0; j < t->ncols; j++)
            if (!t->dropped[j] && t->w[j] > minw[j] && (best == t->ncols || t->w[j] > t->w[best]))
                best = j;
        if (best == t->ncols)
            break;
        t->w[best]--;
        total--;
    }
    free(minw);
    for (size_t i = 0; i < t->nrows * t->ncols; i++) {
        size_t j = i % t->ncols;
        if (ctl_text_width(t->cell[i]) <= t->w[j])
            continue;
        char *cut = ctl_text_cut(t->cell[i], t->w[j]);
        if (cut == NULL)
            return -1;
        free(t->cell[i]);
        t->cell[i] = cut;
    }
    return 0;
}

/* One line of t: row i's cells, or the headers when i is the row count. */
static void
table_row(FILE *f, const struct table *t, size_t i)
{
    size_t last = t->ncols - 1;
    while (last > 0 && t->dropped[last])
        last--;
    for (size_t j = 0; j <= last; j++) {
        const char *s = i < t->nrows ? t->cell[i * t->ncols + j] : t->col[j]->header;
        if (t->dropped[j])
            continue;
        if (j < last) {
            ctl_text_pad(f, s, t->w[j]);
            fputs("  ", f);
        } else {
            fprintf(f, "%s\n", s);
        }
    }
}

void
ctl_table_write(FILE *f, const json_t *items, const struct ctl_col *cols,
                const struct ctl_table_opts *o)
{
    struct table t;
    memset(&t, 0, sizeof(t));
    if (table_build(&t, items, cols, o) != 0 ||
        (o->width > 0 && !o->wide && table_fit(&t, o->width) != 0)) {
        ctl_err("out of memory");
        goto out;
    }
    if (!o->no_headers)
        table_row(f, &t, t.nrows);
    for (size_t i = 0; i < t.nrows; i++)
        table_row(f, &t, i);
out:
    table_free(&t);
}

/* The width to fit tables to: $COLUMNS or the terminal's, when stdout is a terminal; else 0. */
static size_t
term_width(void)
{
    struct winsize ws;
    if (!isatty(STDOUT_FILENO))
        return 0;
    const char *env = getenv("COLUMNS");
    if (env != NULL) {
        char *end;
        long n = strtol(env, &end, 10);
        if (end != env && *end == '\0' && n > 0 && n <= 100000)
            return (size_t)n;
    }
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

void
ctl_print_table(const struct ctl *c, const json_t *items, const struct ctl_col *cols)
{
    struct ctl_table_opts o = {c->output == CTL_OUT_WIDE, c->no_headers, term_width()};
    ctl_table_write(stdout, items, cols, &o);
}

/* --- key: value --- */

static void object_lines(FILE *f, const json_t *obj, size_t ind, int dash);

/* Starts a line at indentation ind; with *dash, as the first line of an array element ("- "). */
static void
indent(FILE *f, size_t ind, int *dash)
{
    assert(!*dash || ind >= 2);
    fprintf(f, "%*s%s", (int)(*dash ? ind - 2 : ind), "", *dash ? "- " : "");
    *dash = 0;
}

static int
is_nested(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

/* The lines of an array's elements at ind: "- value", or "- " starting an object's lines. */
static void
array_lines(FILE *f, const json_t *arr, size_t ind)
{
    size_t i;
    const json_t *e;
    json_array_foreach((json_t *)arr, i, e)
    {
        if (json_is_object(e) && json_object_size(e) > 0) {
            object_lines(f, e, ind + 2, 1);
        } else if (is_nested(e)) {
            fprintf(f, "%*s-\n", (int)ind, "");
            array_lines(f, e, ind + 2);
        } else {
            char *t = scalar_text(e), *s = t != NULL ? ctl_text_safe(t, 0) : NULL;
            fprintf(f, "%*s- %s\n", (int)ind, "", s != NULL ? s : "?");
            free(t);
            free(s);
        }
    }
}

/* A multi-line string's lines (PEM) below its key, at ind, empty lines left out. */
static void
text_lines(FILE *f, const char *text, size_t ind)
{
    char *t = strdup(text), *save = NULL;
    if (t == NULL)
        return;
    for (char *line = strtok_r(t, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        ctl_text_sanitize(line);
        fprintf(f, "%*s%s\n", (int)ind, "", line);
    }
    free(t);
}

/* An object's "key: value" lines at ind, values aligned by the keys' display width. */
static void
object_lines(FILE *f, const json_t *obj, size_t ind, int dash)
{
    const char *key;
    const json_t *v;
    size_t kw = 0;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t w = ctl_text_width(key);
        kw = w > kw ? w : kw;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        int nested = is_nested(v);
        char *k = ctl_text_safe(key, 0), *t = nested ? NULL : scalar_text(v);
        char *s = t != NULL ? ctl_text_safe(t, 0) : NULL;
        indent(f, ind, &dash);
        if (k == NULL || (!nested && (t == NULL || s == NULL))) {
            fputs("?: (out of memory)\n", f);
        } else if (nested) {
            fprintf(f, "%s:\n", k);
            if (json_is_object(v))
                object_lines(f, v, ind + 2, 0);
            else
                array_lines(f, v, ind + 2);
        } else if (json_is_string(v) && strchr(t, '\n') != NULL) {
            fprintf(f, "%s:\n", k);
            text_lines(f, t, ind + 4);
        } else if (s[0] == '\0') {
            fprintf(f, "%s:\n", k);
        } else {
            fprintf(f, "%s:", k);
            ctl_text_pad(f, "", kw - ctl_text_width(k));
            fprintf(f, " %s\n", s);
        }
        free(k);
        free(t);
        free(s);
    }
}

void
ctl_object_write(FILE *f, const json_t *obj)
{
    if (!json_is_object(obj)) {
        json_dumpf(obj, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
        fputc('\n', f);
        return;
    }
    object_lines(f, obj, 0, 0);
}

void
ctl_print_object(const json_t *obj)
{
    ctl_object_write(stdout, obj);
}

/* --- the data modes --- */

/* -o name: the ID of v, or of each of its items, one per line. */
static void
names_write(FILE *f, const json_t *v, const struct ctl_col *cols)
{
    const char *key = "id";
    if (cols != NULL && cols[0].header != NULL) {
        key = cols[0].key;
        for (size_t j = 0; cols[j].header != NULL; j++)
            if (cols[j].flags & CTL_COL_ID) {
                key = cols[j].key;
                break;
            }
    }
    const json_t *items = json_is_array(v) ? v : json_object_get(v, "items");
    size_t n = json_is_array(items) ? json_array_size(items) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *id =
            json_object_get(json_is_array(items) ? json_array_get(items, i) : v, key);
        if (!json_is_string(id) && !json_is_integer(id))
            continue;
        char *t = scalar_text(id), *s = t != NULL ? ctl_text_safe(t, 0) : NULL;
        if (s != NULL)
            fprintf(f, "%s\n", s);
        free(t);
        free(s);
    }
}

int
ctl_data_write(FILE *f, enum ctl_output mode, const char *jsonpath, const json_t *v,
               const struct ctl_col *cols, char *err, size_t errlen)
{
    switch (mode) {
    case CTL_OUT_JSON:
        json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
        fputc('\n', f);
        return 1;
    case CTL_OUT_JSONPATH:
        return ctl_jsonpath_write(f, jsonpath != NULL ? jsonpath : "", v, err, errlen) == 0 ? 1
                                                                                            : -1;
    case CTL_OUT_NAME:
        names_write(f, v, cols);
        return 1;
    case CTL_OUT_TABLE:
    case CTL_OUT_WIDE:
        return 0;
    }
    assert(0 && "every output mode handled");
    return 0;
}

int
ctl_print_text_mode(const struct ctl *c)
{
    return !c->json && (c->output == CTL_OUT_TABLE || c->output == CTL_OUT_WIDE);
}

int
ctl_print_data(const struct ctl *c, const json_t *v, const struct ctl_col *cols)
{
    char err[160];
    /* --json alone (c->json without c->output) is -o json too */
    enum ctl_output mode = c->json ? CTL_OUT_JSON : c->output;
    int r = ctl_data_write(stdout, mode, c->jsonpath, v, cols, err, sizeof(err));
    if (r < 0)
        ctl_err("-o jsonpath: %s", err);
    return r;
}

int
ctl_print_exit(int printed)
{
    return printed < 0 ? CTL_EXIT_LOCAL : CTL_EXIT_OK;
}

int
ctl_print_result(const struct ctl *c, const json_t *obj, const struct ctl_col *cols)
{
    int r = ctl_print_data(c, obj, cols);
    if (r == 0)
        ctl_print_object(obj);
    return ctl_print_exit(r);
}
