/* http_unescape: percent-decoding without NUL bytes (http_unescape.h). */
#include "http_unescape.h"

#include <assert.h>

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t
http_unescape(char *s)
{
    size_t r = 0, w = 0;
    assert(s != NULL);
    while (s[r] != '\0') {
        int hi = s[r] == '%' ? hexval(s[r + 1]) : -1;
        int lo = hi >= 0 ? hexval(s[r + 2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            s[w++] = (char)(hi << 4 | lo);
            r += 3;
        } else {
            s[w++] = s[r++]; /* "%00", a malformed escape or a plain byte: as written */
        }
    }
    s[w] = '\0';
    return w;
}

size_t
http_unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return http_unescape(s);
}
