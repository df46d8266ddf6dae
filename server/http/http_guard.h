/* http_guard: the request-framing rules libmicrohttpd 0.9.75 does not enforce itself (RFC 9112
 * §3.2, §5, §6.1, §6.3), checked on a request's headers before its body is read. A request that
 * breaks one is answered 400 and its connection closed, so no trailing bytes can be taken for a
 * second request (smuggling). */
#ifndef AEGIS_HTTP_GUARD_H
#define AEGIS_HTTP_GUARD_H

#include <microhttpd.h>
#include <stddef.h>

/* Checks the headers of the request on c; method and version are the access handler's arguments
 * (the method must be libmicrohttpd's pointer into its read buffer, which the check relies on).
 * Returns 0 when they are acceptable, or -1 with the reason (a short English sentence, safe to
 * send to the client) in why. */
int http_guard_check(struct MHD_Connection *c, const char *method, const char *version, char *why,
                     size_t whylen);

#endif
