/* store_attest_int: what the attestation store files share (store_attest.c writes a record,
 * store_attest_sync.c makes records durable in groups). Private to server/store. */
#ifndef AEGIS_STORE_ATTEST_INT_H
#define AEGIS_STORE_ATTEST_INT_H

#include "store.h"

/* Writes one record in one transaction, as store_attestation_record says; light: the commit skips
 * the flush of the log (the caller makes it durable). */
int store__attestation_write(store *s, const struct store_attestation *a, int light, int64_t *id);

#endif
