#include "log_json.h"

#include "util.h"

#include <assert.h>
#include <string.h>

/* More pairs than any caller writes; a body with more is kept whole as "msg". */
#define MAX_PAIRS 64
/* Kept free at all times for closing a cut string and the object: '"' and '}'. */
#define CLOSE_ROOM 2

struct pair {
    const char *key, *val;
    size_t klen, vlen;
    int quoted;
};

/* The object being written; full once something did not fit (nothing more is added). */
struct jw {
    char *buf;
    size_t cap, len;
    int full;
};

static const char hex[] = "0123456789abcdef";

/* The value of a lower-case hex digit (what log_quote writes), else -1. */
static int
hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int
jw_put(struct jw *w, const void *s, size_t n)
{
    if (w->full || w->len + n + CLOSE_ROOM > w->cap) {
        w->full = 1;
        return -1;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    return 0;
}

/* Writes the character at p as JSON string content; returns how many bytes of p it took. */
static size_t
jw_char(struct jw *w, const unsigned char *p)
{
    char t[6];
    size_t n = util_utf8_char_len((const char *)p);
    if (*p == '"' || *p == '\\') {
        t[0] = '\\';
        t[1] = (char)*p;
        jw_put(w, t, 2);
        return 1;
    }
    if (n == 0 || *p < 0x20 || *p == 0x7F) {
        /* A control byte as \u00HH; a byte that is not UTF-8 as the text \xHH (log_quote's way). */
        int ctl = n != 0;
        memcpy(t, ctl ? "\\u00" : "\\\\x", ctl ? 4 : 3);
        t[ctl ? 4 : 3] = hex[*p >> 4];
        t[ctl ? 5 : 4] = hex[*p & 15];
        jw_put(w, t, ctl ? 6 : 5);
        return 1;
    }
    jw_put(w, p, n);
    return n;
}

/* The content of a quoted value (log_quote's escapes undone into JSON's). */
static void
jw_quoted(struct jw *w, const unsigned char *p, const unsigned char *end)
{
    while (p < end && !w->full) {
        if (*p != '\\' || p + 1 >= end) {
            p += jw_char(w, p);
            continue;
        }
        unsigned char c = p[1];
        /* log_quote writes \xHH with lower-case digits; other forms are a stray backslash. */
        int hi = c == 'x' && p + 3 < end ? hex_digit(p[2]) : -1;
        int lo = hi >= 0 ? hex_digit(p[3]) : -1;
        if (lo >= 0) {
            int v = hi * 16 + lo;
            if (v < 0x20 || v == 0x7F) {
                char t[6] = {'\\', 'u', '0', '0', (char)p[2], (char)p[3]};
                jw_put(w, t, sizeof(t));
            } else {
                jw_put(w, "\\\\", 2); /* the text \xHH, as in the text format */
                jw_put(w, p + 1, 3);
            }
            p += 4;
        } else if (c == '"' || c == '\\' || c == 'n' || c == 'r' || c == 't') {
            jw_put(w, p, 2);
            p += 2;
        } else {
            jw_put(w, "\\\\", 2); /* a stray backslash stays one */
            p++;
        }
    }
}

static int
jw_string(struct jw *w, const char *s, size_t n, int quoted)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    if (jw_put(w, "\"", 1) != 0)
        return -1;
    if (quoted)
        jw_quoted(w, p, end);
    else
        while (p < end && !w->full)
            p += jw_char(w, p);
    assert(w->len + 1 < w->cap); /* CLOSE_ROOM */
    w->buf[w->len++] = '"';
    return 0;
}

static size_t
digits(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* Whether s[0..n) is a number by JSON's grammar. */
static int
is_json_number(const char *s, size_t n)
{
    size_t i = 0, d;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        i = digits(s, i, n);
    else
        return 0;
    if (i < n && s[i] == '.') {
        d = digits(s, ++i, n);
        if (d == i)
            return 0;
        i = d;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        d = digits(s, i, n);
        if (d == i)
            return 0;
        i = d;
    }
    return i == n;
}

/* ,"key": then the value; all or nothing for the key, a string value cut when it does not fit. */
static void
jw_member(struct jw *w, const char *key, size_t klen, const char *val, size_t vlen, int quoted)
{
    size_t mark = w->len;
    if (jw_put(w, w->len > 1 ? ",\"" : "\"", w->len > 1 ? 2 : 1) != 0 ||
        jw_put(w, key, klen) != 0 || jw_put(w, "\":", 2) != 0) {
        w->len = mark;
        return;
    }
    if (!quoted && is_json_number(val, vlen)) {
        if (jw_put(w, val, vlen) != 0)
            w->len = mark;
        return;
    }
    if (jw_string(w, val, vlen, quoted) != 0)
        w->len = mark;
}

static int
is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Splits s into pairs. Returns their number, or -1 when s is not made of key=value pairs. */
static int
parse_pairs(const char *s, struct pair *pv)
{
    int n = 0;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == '\0')
            return n;
        if (n == MAX_PAIRS)
            return -1;
        struct pair *p = &pv[n++];
        p->key = s;
        while (is_key_char(*s))
            s++;
        p->klen = (size_t)(s - p->key);
        if (p->klen == 0 || *s++ != '=')
            return -1;
        p->quoted = *s == '"';
        p->val = s + p->quoted;
        if (p->quoted) {
            for (s++; *s != '"'; s++) {
                if (*s == '\0')
                    return -1;
                if (*s == '\\' && s[1] != '\0')
                    s++;
            }
            p->vlen = (size_t)(s++ - p->val);
            if (*s != ' ' && *s != '\0')
                return -1;
        } else {
            s += strcspn(s, " ");
            p->vlen = (size_t)(s - p->val);
        }
    }
}

static int
seen(const struct pair *pv, int i)
{
    const struct pair *p = &pv[i];
    if ((p->klen == 2 && memcmp(p->key, "ts", 2) == 0) ||
        (p->klen == 5 && memcmp(p->key, "level", 5) == 0))
        return 1;
    for (int j = 0; j < i; j++)
        if (pv[j].klen == p->klen && memcmp(pv[j].key, p->key, p->klen) == 0)
            return 1;
    return 0;
}

size_t
log_json_line(char *out, size_t cap, const char *ts, const char *level, const char *body)
{
    assert(cap >= 64);
    struct jw w = {out, cap, 0, 0};
    struct pair pv[MAX_PAIRS];
    jw_put(&w, "{", 1);
    if (ts != NULL)
        jw_member(&w, "ts", 2, ts, strlen(ts), 0);
    jw_member(&w, "level", 5, level, strlen(level), 0);
    int n = parse_pairs(body, pv);
    if (n < 0)
        jw_member(&w, "msg", 3, body, strlen(body), 0);
    for (int i = 0; i < n && !w.full; i++)
        if (!seen(pv, i))
            jw_member(&w, pv[i].key, pv[i].klen, pv[i].val, pv[i].vlen, pv[i].quoted);
    assert(w.len < cap);
    out[w.len++] = '}';
    return w.len;
}
