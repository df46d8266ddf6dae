/* http_unescape: percent-decoding of request paths and query arguments for libmicrohttpd
 * (MHD_OPTION_UNESCAPE_CALLBACK). Its default decodes "%00" to a NUL byte, which ends the string
 * every handler sees: "DELETE /v1/tokens/3%00garbage" reached the handler as ".../3". Here "%00"
 * stays as it was written, so such a path or argument fails validation (400) instead. */
#ifndef AEGIS_HTTP_UNESCAPE_H
#define AEGIS_HTTP_UNESCAPE_H

#include <stddef.h>

/* Decodes %XX sequences of s in place, except "%00", which is kept as the three characters;
 * malformed sequences are kept too. Returns the new length (s stays NUL-terminated). */
size_t http_unescape(char *s);

/* The adapter libmicrohttpd calls (its cls and connection are not used). */
struct MHD_Connection;
size_t http_unescape_cb(void *cls, struct MHD_Connection *c, char *s);

#endif
