/* store_refval internals for store_attest.c (what an attestation attempt is checked against, read
 * inside the caller's transaction on its connection) and store_images.c (an app image's value).
 * Nothing outside server/store/ includes this header. Functions return STORE_OK or a negative
 * STORE_* code. */
#ifndef AEGIS_STORE_REFVAL_INT_H
#define AEGIS_STORE_REFVAL_INT_H

#include "store.h"
#include "store_int.h"

/* 1 when m follows the field rules of a measurement (stage, component, version, svn, digest). */
int store__measurement_ok(const struct store_measurement *m);
/* *known = 1 when m equals a reference value (the platform's for bootloader and os, the tenant's
 * for app), else 0. */
int store__refval_known(store *s, struct conn *c, int64_t tenant_id,
                        const struct store_measurement *m, int *known);
/* *min_svn = the tenant's minimum svn for component, or -1 when it has none. */
int store__minimum_of(store *s, struct conn *c, int64_t tenant_id, const char *component,
                      int64_t *min_svn);

/* Makes v (of tenant_id > 0, stage app) one of the tenant's reference values, with its audit row,
 * in the caller's transaction: STORE_OK when it is one already or was added, STORE_CONFLICT when
 * the tenant has a value of that component and version with another svn or digest. */
int store__refval_ensure(store *s, struct conn *c, int64_t tenant_id,
                         const struct store_measurement *v, const struct store_actor *a);

#endif
