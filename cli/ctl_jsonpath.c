#include "ctl_jsonpath.h"

#include "ctl_text.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NEST_MAX 16 /* {range} depth */

enum step_kind { S_KEY, S_INDEX, S_ALL };
struct step {
    enum step_kind kind;
    char *key; /* S_KEY (malloc'd) */
    long long index;
};

enum tok_kind { T_TEXT, T_PATH, T_RANGE, T_END };
struct tok {
    enum tok_kind kind;
    char *text;         /* T_TEXT (malloc'd) */
    int from_root;      /* T_PATH, T_RANGE: starts at $ (else at the current value) */
    struct step *steps; /* T_PATH, T_RANGE (malloc'd) */
    size_t nsteps;
    size_t end; /* T_RANGE: the index of its T_END */
};

/* A parsed template; owns its tokens. */
struct tmpl {
    struct tok *tok;
    size_t n, cap;
};

static void
tmpl_free(struct tmpl *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->tok[i].text);
        for (size_t j = 0; j < t->tok[i].nsteps; j++)
            free(t->tok[i].steps[j].key);
        free(t->tok[i].steps);
    }
    free(t->tok);
    memset(t, 0, sizeof(*t));
}

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A new token at the end of t (zeroed), or NULL when out of memory. */
static struct tok *
tmpl_add(struct tmpl *t, enum tok_kind kind)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct tok *nt = realloc(t->tok, cap * sizeof(*nt));
        if (nt == NULL)
            return NULL;
        t->tok = nt;
        t->cap = cap;
    }
    struct tok *k = &t->tok[t->n++];
    memset(k, 0, sizeof(*k));
    k->kind = kind;
    return k;
}

static struct step *
step_add(struct tok *k)
{
    struct step *ns = realloc(k->steps, (k->nsteps + 1) * sizeof(*ns));
    if (ns == NULL)
        return NULL;
    k->steps = ns;
    memset(&ns[k->nsteps], 0, sizeof(*ns));
    return &ns[k->nsteps++];
}

/* Parses a quoted string at *pp (opening quote included) with the escapes \n \t \r \\ and the
 * quote itself; *out gets it (malloc'd). Advances *pp past the closing quote. */
static int
parse_quoted(const char **pp, char **out, char *err, size_t errlen)
{
    const char *p = *pp;
    char q = *p++;
    char *s = malloc(strlen(p) + 1), *w = s;
    if (s == NULL)
        return fail(err, errlen, "out of memory");
    for (; *p != q; p++) {
        if (*p == '\0') {
            free(s);
            return fail(err, errlen, "unterminated string");
        }
        if (*p == '\\') {
            p++;
            switch (*p) {
            case 'n':
                *w++ = '\n';
                continue;
            case 't':
                *w++ = '\t';
                continue;
            case 'r':
                *w++ = '\r';
                continue;
            case '\\':
            case '"':
            case '\'':
                *w++ = *p;
                continue;
            default:
                free(s);
                return fail(err, errlen, "unknown escape \\%c", *p != '\0' ? *p : '0');
            }
        }
        *w++ = *p;
    }
    *w = '\0';
    *out = s;
    *pp = p + 1;
    return 0;
}

/* One step after '[': an index, '*' or a quoted key; then ']'. */
static int
parse_bracket(const char **pp, struct step *st, char *err, size_t errlen)
{
    const char *p = *pp;
    if (*p == '*') {
        st->kind = S_ALL;
        p++;
    } else if (*p == '\'' || *p == '"') {
        st->kind = S_KEY;
        if (parse_quoted(&p, &st->key, err, errlen) != 0)
            return -1;
    } else {
        char *end;
        errno = 0;
        st->kind = S_INDEX;
        st->index = strtoll(p, &end, 10);
        if (end == p || errno != 0 || (*p != '-' && (*p < '0' || *p > '9')))
            return fail(err, errlen, "expected an index, '*' or a quoted key after '['");
        p = end;
    }
    if (*p != ']')
        return fail(err, errlen, "expected ']'");
    *pp = p + 1;
    return 0;
}

/* The path of an expression, up to its '}': [$|@] then .name .* [n] [*] ['key'] steps. */
static int
parse_path(const char **pp, struct tok *k, char *err, size_t errlen)
{
    const char *p = *pp;
    if (*p == '$' || *p == '@') {
        k->from_root = *p == '$';
        p++;
    }
    while (*p != '}' && *p != ' ' && *p != '\0') {
        struct step *st = step_add(k);
        if (st == NULL)
            return fail(err, errlen, "out of memory");
        if (*p == '[') {
            p++;
            if (parse_bracket(&p, st, err, errlen) != 0)
                return -1;
            continue;
        }
        if (*p != '.')
            return fail(err, errlen, "unexpected '%c' (supported: .name, [n], [*], ['key'])", *p);
        p++;
        size_t n = strcspn(p, ".[]{}* \t\"'");
        if (*p == '*') {
            st->kind = S_ALL;
            p++;
        } else if (n == 0 && (*p == '}' || *p == ' ') && k->nsteps == 1) {
            k->nsteps = 0; /* "{.}": the current value */
        } else if (n == 0) {
            return fail(err, errlen, "expected a name after '.'");
        } else if ((st->key = strndup(p, n)) == NULL) {
            return fail(err, errlen, "out of memory");
        } else {
            st->kind = S_KEY;
            p += n;
        }
    }
    *pp = p;
    return 0;
}

/* One {...} at *pp (after its '{'), appended to t; open holds the indices of open {range}s. */
static int
parse_expr(const char **pp, struct tmpl *t, size_t *open, size_t *nopen, char *err, size_t errlen)
{
    const char *p = *pp + strspn(*pp, " ");
    struct tok *k;
    if (*p == '"' || *p == '\'') {
        if ((k = tmpl_add(t, T_TEXT)) == NULL || parse_quoted(&p, &k->text, err, errlen) != 0)
            return k == NULL ? fail(err, errlen, "out of memory") : -1;
    } else if (strncmp(p, "end", 3) == 0 && strchr(" }", p[3]) != NULL && p[3] != '\0') {
        if (*nopen == 0)
            return fail(err, errlen, "{end} without {range}");
        if (tmpl_add(t, T_END) == NULL)
            return fail(err, errlen, "out of memory");
        t->tok[open[--*nopen]].end = t->n - 1;
        p += 3;
    } else {
        int range = strncmp(p, "range ", 6) == 0;
        if (range && *nopen == NEST_MAX)
            return fail(err, errlen, "{range} nested too deep");
        if ((k = tmpl_add(t, range ? T_RANGE : T_PATH)) == NULL)
            return fail(err, errlen, "out of memory");
        if (range) {
            open[(*nopen)++] = t->n - 1;
            p += 6 + strspn(p + 6, " ");
        }
        if (parse_path(&p, k, err, errlen) != 0)
            return -1;
    }
    p += strspn(p, " ");
    if (*p != '}')
        return fail(err, errlen, "expected '}'");
    *pp = p + 1;
    return 0;
}

static int
parse(const char *expr, struct tmpl *t, char *err, size_t errlen)
{
    size_t open[NEST_MAX], nopen = 0;
    const char *p = expr;
    memset(t, 0, sizeof(*t));
    while (*p != '\0') {
        if (*p == '{') {
            p++;
            if (parse_expr(&p, t, open, &nopen, err, errlen) != 0)
                goto bad;
            continue;
        }
        size_t n = strcspn(p, "{}");
        if (n == 0) {
            fail(err, errlen, "unmatched '}'");
            goto bad;
        }
        struct tok *k = tmpl_add(t, T_TEXT);
        if (k == NULL || (k->text = strndup(p, n)) == NULL) {
            fail(err, errlen, "out of memory");
            goto bad;
        }
        p += n;
    }
    if (nopen > 0) {
        fail(err, errlen, "{range} without {end}");
        goto bad;
    }
    return 0;
bad:
    tmpl_free(t);
    return -1;
}

int
ctl_jsonpath_check(const char *expr, char *err, size_t errlen)
{
    struct tmpl t;
    if (parse(expr, &t, err, errlen) != 0)
        return -1;
    tmpl_free(&t);
    return 0;
}

/* Appends to out the values the steps select from v. */
static int
select_values(const json_t *v, const struct step *st, size_t n, json_t *out)
{
    if (v == NULL)
        return 0;
    if (n == 0)
        return json_array_append(out, (json_t *)v);
    if (st->kind == S_KEY)
        return select_values(json_object_get(v, st->key), st + 1, n - 1, out);
    if (st->kind == S_INDEX) {
        long long i = st->index, size = (long long)json_array_size(v);
        if (i < 0)
            i += size;
        return i < 0 || i >= size ? 0
                                  : select_values(json_array_get(v, (size_t)i), st + 1, n - 1, out);
    }
    json_t *e;
    if (json_is_array(v)) {
        size_t i;
        json_array_foreach((json_t *)v, i, e)
        {
            if (select_values(e, st + 1, n - 1, out) != 0)
                return -1;
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_object_foreach((json_t *)v, key, e)
        {
            if (select_values(e, st + 1, n - 1, out) != 0)
                return -1;
        }
    }
    return 0;
}

static int
write_value(FILE *f, const json_t *v)
{
    char *raw = json_is_string(v) ? strdup(json_string_value(v))
                                  : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *safe = raw != NULL ? ctl_text_safe(raw, CTL_TEXT_KEEP_LINES) : NULL;
    if (safe != NULL)
        fputs(safe, f);
    free(raw);
    free(safe);
    return safe != NULL ? 0 : -1;
}

/* Runs tokens [from, to) with cur as the current value. */
static int
run(FILE *f, const struct tmpl *t, size_t from, size_t to, const json_t *root, const json_t *cur)
{
    for (size_t i = from; i < to; i++) {
        const struct tok *k = &t->tok[i];
        if (k->kind == T_TEXT) {
            fputs(k->text, f);
            continue;
        }
        assert(k->kind == T_PATH || k->kind == T_RANGE);
        json_t *vals = json_array();
        int rc =
            vals != NULL ? select_values(k->from_root ? root : cur, k->steps, k->nsteps, vals) : -1;
        size_t j;
        json_t *e;
        json_array_foreach(vals, j, e)
        {
            if (rc != 0)
                break;
            if (k->kind == T_RANGE) {
                rc = run(f, t, i + 1, k->end, root, e);
            } else {
                if (j > 0)
                    fputc(' ', f);
                rc = write_value(f, e);
            }
        }
        json_decref(vals);
        if (rc != 0)
            return -1;
        if (k->kind == T_RANGE)
            i = k->end; /* its body ran per value; its {end} is done */
    }
    return 0;
}

int
ctl_jsonpath_write(FILE *f, const char *expr, const json_t *v, char *err, size_t errlen)
{
    struct tmpl t;
    if (parse(expr, &t, err, errlen) != 0)
        return -1;
    int rc = run(f, &t, 0, t.n, v, v);
    if (rc != 0)
        fail(err, errlen, "out of memory");
    tmpl_free(&t);
    return rc;
}
