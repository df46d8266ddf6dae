/* telemetry_parse: the body of a telemetry upload (docs/telemetry.md 1) into an ingest batch. The
 * batch is checked as a whole (invalid: the whole upload is refused), each report on its own (a
 * malformed one is marked rejected, with its reason, while the others go on). Pure and
 * thread-safe. */
#ifndef AEGIS_TELEMETRY_PARSE_H
#define AEGIS_TELEMETRY_PARSE_H

#include "devauth.h"
#include "ingest.h"

#include <jansson.h>
#include <stddef.h>

enum { TELEMETRY_PARSE_OK = 0, TELEMETRY_PARSE_INVALID = -1, TELEMETRY_PARSE_OOM = -2 };

/* Parses body (a JSON object, borrowed) uploaded by dev into a new batch *out (caller frees with
 * ingest_batch_free; it holds a reference to body). Returns TELEMETRY_PARSE_OK;
 * TELEMETRY_PARSE_INVALID with the reason in err (the upload is answered 400 invalid_batch); or
 * TELEMETRY_PARSE_OOM (503). *out is NULL unless OK. */
int telemetry_parse_batch(json_t *body, const struct devauth_identity *dev,
                          struct ingest_batch **out, char *err, size_t errlen);

#endif
