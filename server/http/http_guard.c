#include "http_guard.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What one pass over the header list found. */
struct guard_scan {
    unsigned content_length, transfer_encoding, host;
    int te_not_chunked;
    const char *bad;            /* the first rule broken, or NULL */
    uintptr_t block, block_end; /* the request line and headers in libmicrohttpd's read buffer */
    const char *value_end;      /* where the previous header's value ended, or NULL */
};

/* libmicrohttpd 0.9.75 keeps each header in place in its read buffer, turns the CR and LF that end
 * a line into NULs and hands out values as C strings, so a value with a NUL byte in it arrives cut
 * short. What lies between one value's end and the next name (or the end of the headers) shows it:
 * only NULs, CR, LF and blanks belong there. A header outside the buffer was moved there by
 * libmicrohttpd's joining of an obs-fold continuation line (RFC 9112 §5.2: reject). */
static const char *
check_gap(struct guard_scan *s, const char *next)
{
    if (s->value_end == NULL)
        return NULL;
    /* addresses compared as integers: next may lie outside the buffer (a moved header) */
    if ((uintptr_t)next < (uintptr_t)s->value_end || (uintptr_t)next > s->block_end)
        return "obsolete line folding in a header";
    for (const char *p = s->value_end; p < next; p++)
        if (strchr(" \t\r\n", *p) == NULL) /* the NUL terminator matches too */
            return "NUL byte in a header value";
    return NULL;
}

/* RFC 9110 §5.6.2 token characters: a header name with anything else (a space before the colon, a
 * control character) is read differently by different parsers. */
static int
is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
            size_t value_size)
{
    struct guard_scan *s = cls;
    (void)kind;
    s->bad = check_gap(s, key);
    if (s->bad == NULL && ((uintptr_t)value < s->block || (uintptr_t)value > s->block_end))
        s->bad = "obsolete line folding in a header";
    s->value_end = value != NULL ? value + value_size : NULL;
    if (s->bad == NULL && key_size == 0)
        s->bad = "empty header name";
    for (size_t i = 0; i < key_size && s->bad == NULL; i++)
        if (!is_tchar((unsigned char)key[i]))
            s->bad = "invalid character in a header name";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        s->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        s->host++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        s->transfer_encoding++;
        if (value == NULL || strcasecmp(value, "chunked") != 0)
            s->te_not_chunked = 1;
    }
    return s->bad == NULL ? MHD_YES : MHD_NO;
}

int
http_guard_check(struct MHD_Connection *c, const char *method, const char *version, char *why,
                 size_t whylen)
{
    struct guard_scan s;
    memset(&s, 0, sizeof(s));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    /* The request line (method first) starts the buffer. */
    s.block = (uintptr_t)method;
    s.block_end = s.block + (ci != NULL ? ci->header_size : 0);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &s);
    if (s.bad == NULL)
        s.bad = check_gap(&s, method + (s.block_end - s.block));
    if (s.bad == NULL && s.content_length > 1)
        s.bad = "more than one Content-Length header";
    if (s.bad == NULL && s.transfer_encoding > 0 && s.content_length > 0)
        s.bad = "both Transfer-Encoding and Content-Length";
    if (s.bad == NULL && (s.transfer_encoding > 1 || s.te_not_chunked))
        s.bad = "the only Transfer-Encoding accepted is chunked";
    if (s.bad == NULL && s.host > 1)
        s.bad = "more than one Host header";
    /* HTTP/1.0 predates Host; libmicrohttpd takes any other 1.x as 1.1. */
    if (s.bad == NULL && s.host == 0 &&
        (version == NULL || strcmp(version, MHD_HTTP_VERSION_1_0) != 0))
        s.bad = "HTTP/1.1 requires a Host header";
    if (s.bad == NULL)
        return 0;
    snprintf(why, whylen, "%s", s.bad);
    return -1;
}
