/* sg_ilog: the signer's append-only issuance log, one JSON object per line (docs/security.md
 * "Issuance log"): every certificate the signer made, with the SHA-256 of the line before it, so a
 * line removed or changed later breaks the chain (sg_ilog_verify). Written only by the signer's
 * worker, into the PKI directory, which aegisd cannot open. Appends are buffered by the caller's
 * batch: sg_ilog_sync makes them durable (one fdatasync), and the signer answers no issuance
 * before the sync that covers its line. Not thread-safe. */
#ifndef AEGIS_SG_ILOG_H
#define AEGIS_SG_ILOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sg_ilog sg_ilog;

struct sg_ilog_rec {
    int64_t time;     /* unix s */
    const char *kind; /* "device_cert" or "ca" */
    int64_t tenant_id;
    const char *subject;    /* device_cert: the device id; ca: the CA's key name */
    const char *serial_hex; /* the certificate's serial, lowercase hex */
    const char *issuer;     /* the key name that signed it */
    int64_t not_after;      /* unix s */
};

/* Opens (creating it 0600, or refusing a file others may read or write) the log at path, reads its
 * last line's hash to continue the chain, and refuses a log whose last line is cut short. Returns
 * NULL on error (message in err). Free with sg_ilog_close. */
sg_ilog *sg_ilog_open(const char *path, char *err, size_t errlen);
void sg_ilog_close(sg_ilog *l);
/* Appends one record (written with O_APPEND, not yet durable). Returns 0 / -1. */
int sg_ilog_append(sg_ilog *l, const struct sg_ilog_rec *r, char *err, size_t errlen);
/* Makes every appended record durable (fdatasync; nothing when nothing is pending). Returns 0 /
 * -1; a failure is sticky (every later append and sync fails). */
int sg_ilog_sync(sg_ilog *l, char *err, size_t errlen);
/* The same in two steps, for a sync done elsewhere (the worker's syncer process, sg_sync.h, on
 * sg_ilog_fd's file): sg_ilog_sync_begin returns 1 when records were appended since the last
 * begin (they are now the flush's to cover), 0 when none were, -1 when the log has failed;
 * sg_ilog_sync_end reports the flush's outcome (synced: it succeeded) and returns 0, or -1 (the
 * failure is sticky, as sg_ilog_sync's; message in err). */
int sg_ilog_sync_begin(sg_ilog *l);
int sg_ilog_sync_end(sg_ilog *l, int synced, char *err, size_t errlen);
/* The log's descriptor (owned by l), for the syncer to flush. */
int sg_ilog_fd(const sg_ilog *l);
/* Checks the whole chain of the log at path: *lines gets the number of records. Returns 0, or -1
 * with the first broken line in err. */
int sg_ilog_verify(const char *path, size_t *lines, char *err, size_t errlen);

#endif
