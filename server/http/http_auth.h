/* http_auth (session part): the dashboard's sign-in sessions as the HTTP layer authenticates them
 * (docs/api.md "Sessions"). A session is 32 random bytes sent as the cookie aegis_session
 * (base64url, no padding); the database keeps only SHA-256 of them. Its CSRF token is derived from
 * those bytes (keyed BLAKE2b), so the session's holder can be told it again (GET /v1/session)
 * while the database keeps only its SHA-256 too. Neither ever reaches a log line. */
#ifndef AEGIS_HTTP_AUTH_H
#define AEGIS_HTTP_AUTH_H

#include "api.h"
#include "store.h"

#define HTTP_SESSION_COOKIE "aegis_session"
#define HTTP_CSRF_HEADER "X-CSRF-Token"
/* base64url without padding of 32 bytes, and its NUL */
#define HTTP_SESSION_TEXT 44

/* What a session's 32 random bytes give: the text of the cookie, the id hash the database keys on,
 * the CSRF token and its hash. */
struct http_session_keys {
    char cookie[HTTP_SESSION_TEXT];
    unsigned char id_hash[32];
    char csrf[HTTP_SESSION_TEXT];
    unsigned char csrf_hash[32];
};
void http_session_derive(const unsigned char sid[32], struct http_session_keys *k);

/* An authenticated session: its row, its token's state, and its keys (for the reply). */
struct http_session {
    struct store_session row;
    struct store_token tok;
    struct http_session_keys keys;
};

/* Checks the text of an API token (aegis_...): 0 with *tok, or -1 with a 401 (malformed, unknown,
 * revoked, expired) or 503 reply set. Compares in constant time. */
int http_token_check(api_req *r, const char *text, struct store_token *tok);

/* The session of the request's aegis_session cookie: 0 with *out filled and the caller set on r
 * (tenant_id, token_id, role = the token's role now, actor); -1 with a reply set: 401 unauthorized
 * (no, malformed or unknown session), 401 session_expired, 401 unauthorized/token_expired (its
 * token revoked/expired), 403 csrf when need_csrf and the X-CSRF-Token header is missing or wrong,
 * 503. out may hold key material: callers wipe it (sodium_memzero) when done. */
int http_session_auth(api_req *r, int need_csrf, struct http_session *out);

#endif
