/* ctl_client: aegisctl's session with the REST API (docs/api.md), on lib/rest: the server URL, the
 * token and the CA file (options, environment or the stored context: ctl_context) are checked on
 * the first request; API errors are printed as "error: <code>: <message>"; every function returns
 * an exit code (CTL_EXIT_*) with its error printed: an API error is CTL_EXIT_AUTH for 401 and 403,
 * CTL_EXIT_NOT_FOUND for 404, else CTL_EXIT_API. */
#ifndef AEGIS_CTL_CLIENT_H
#define AEGIS_CTL_CLIENT_H

#include "ctl.h"
#include "ctl_print.h"

#include <jansson.h>
#include <stdint.h>

/* Releases the session (c->api); safe when none was made. */
void ctl_client_cleanup(struct ctl *c);

/* One request; body (may be NULL) is sent as JSON. On 2xx *out (may be NULL) gets the parsed reply
 * (caller decrefs), or NULL for an empty one (204). */
int ctl_request(struct ctl *c, const char *method, const char *path, const json_t *body,
                json_t **out);
/* A request whose reply must be a JSON object. */
int ctl_request_object(struct ctl *c, const char *method, const char *path, const json_t *body,
                       json_t **out);
/* ctl_request_object for a batch of a list's entries: the indexes of an error reply's "errors"
 * entries are printed plus index_base (the batch's first entry in the whole list). */
int ctl_request_entries(struct ctl *c, const char *method, const char *path, const json_t *body,
                        int64_t index_base, json_t **out);
/* Sends the request and prints the object it answers (key: value, or as received with --json). */
/* POST path with the size bytes of in as an octet-stream body (streamed); *out as ctl_request. */
int ctl_upload(struct ctl *c, const char *path, FILE *in, uint64_t size, json_t **out);
int ctl_show(struct ctl *c, const char *method, const char *path, const json_t *body);
/* DELETE that answers 204; prints done (text mode). */
int ctl_delete_and_say(struct ctl *c, const char *path, const char *done);

/* A query string being built ("?a=1&b=2"); bad when it grew too long. */
struct ctl_query {
    char s[2048];
    int bad;
};
void ctl_query_add(struct ctl_query *q, const char *key, const char *value);
void ctl_query_add_i64(struct ctl_query *q, const char *key, int64_t v);

/* Fetches path (+ q, limit when > 0, cursor when not NULL) and, with all, every following page.
 * *result gets the page as received, or with all {"items": [every item], "next_cursor": null}. */
int ctl_fetch_list(struct ctl *c, const char *path, const struct ctl_query *q, int64_t limit,
                   const char *cursor, int all, json_t **result);
/* ctl_fetch_list, then prints the items as a table (or the result as JSON) and, when there is a
 * next page, how to get it (stderr). */
int ctl_list_print(struct ctl *c, const char *path, const struct ctl_query *q, int64_t limit,
                   const char *cursor, int all, const struct ctl_col *cols);

/* Streams GET path + q to stdout (no size cap or overall timeout). */
int ctl_download(struct ctl *c, const char *path, const struct ctl_query *q);

#endif
