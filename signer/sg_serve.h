/* sg_serve: what the signer's worker does with one request frame (sg_wire.h): decode it strictly,
 * check it against the policy (sg_policy.h), do it with the keys (pki/keyring.h) and write the
 * reply frame. Issuances are appended to the issuance log (sg_ilog.h) and their replies must wait
 * for a flush of the log that began after their lines were appended (sg_serve_sync_begin, the
 * flush itself by the worker's syncer, sg_sync.h). Runs only in the worker; not thread-safe. */
#ifndef AEGIS_SG_SERVE_H
#define AEGIS_SG_SERVE_H

#include "signer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sg_serve sg_serve;

/* Loads what the worker needs before it takes requests: the keyring over o->pki_dir, the TLS key,
 * the policy and the issuance log. Returns NULL (message in err) on error. Free with
 * sg_serve_free. */
sg_serve *sg_serve_new(const struct signer_opts *o, char *err, size_t errlen);
void sg_serve_free(sg_serve *sv);

/* Answers the n-byte frame rx (n may exceed SG_WIRE_MAX: a frame that was cut; rx is written to
 * while decoding) with a reply frame in tx (SG_WIRE_MAX bytes). *needs_sync is set when the reply
 * is an issuance's, which may be sent only after a flush that began after this call. Returns the
 * reply's length (a malformed request gets an ERR reply, never nothing). */
size_t sg_serve_one(sg_serve *sv, unsigned char *rx, size_t n, unsigned char *tx, int *needs_sync);

/* A flush of the issuance log in two steps (sg_ilog_sync_begin/_end): begin returns 1 when lines
 * were appended since the last begin (the flush to start now covers them), 0 when none were, -1
 * when the log has failed; end takes the flush's outcome (synced: fdatasync succeeded) and returns
 * 0, or -1 (message in err): the replies that waited for it must then be errors (sg_serve_fail). */
int sg_serve_sync_begin(sg_serve *sv);
int sg_serve_sync_end(sg_serve *sv, int synced, char *err, size_t errlen);
/* The issuance log's descriptor (owned by sv), for the syncer to flush. */
int sg_serve_log_fd(const sg_serve *sv);

/* Rewrites the reply frame tx (written by sg_serve_one, same request id) into an ERR with msg.
 * Returns its length. */
size_t sg_serve_fail(unsigned char *tx, const char *msg);

/* An ERR frame with request id 0 and msg in tx (the worker's start failure). Returns its length. */
size_t sg_serve_start_failure(unsigned char *tx, const char *msg);

#endif
