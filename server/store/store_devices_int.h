/* store_devices_int: what store_devices.c shares with store_devices_xfer.c (transfers),
 * store_devices_life.c (tags) and store_devices_drop.c (deletion). Each
 * function runs on c inside the caller's transaction. */
#ifndef AEGIS_STORE_DEVICES_INT_H
#define AEGIS_STORE_DEVICES_INT_H

#include "store.h"
#include "store_int.h"

#include <jansson.h>
#include <stdint.h>

/* A tenant's registration of a device: the devices row while the tenant owns it, else the tenant's
 * shadow (device_shadows, migration 0008). */
struct store__device_reg {
    int64_t tenant_id; /* 0 while unclaimed */
    int64_t group_id;  /* 0 when in no group */
    int blocked;
    int shadow; /* 1: a device_shadows row */
};

/* STORE_OK with *o, STORE_NOTFOUND when the tenant has no registration of the device. */
int store__device_reg(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                      struct store__device_reg *o);
/* Makes the tenant's registration of a device it has none of: the devices row when the registry
 * does not know the device, else a shadow. Claimed into group_id (0 = none) when claim is set. */
int store__device_register(store *s, struct conn *c, const char *device_id, const char *pem,
                           int64_t tenant_id, int claim, int64_t group_id, int64_t now);
/* Claims the tenant's unclaimed registration (shadow says which table holds it). */
int store__device_claim_row(store *s, struct conn *c, const char *device_id, int64_t tenant_id,
                            int shadow, int64_t group_id, int64_t now);
/* Claims the tenant's registration if unclaimed (with a "device.claim" audit row whose detail is
 * detail, stolen, plus "group_id"); kept as it is when already claimed. STORE_NOTFOUND: no
 * registration, or group_id > 0 not the tenant's. */
int store__device_claim_own(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                            int64_t group_id, json_t *detail, const struct store_actor *a);
/* Moves the tenant's claimed registration o of a device to group_id (0 = none) with its audit row;
 * nothing when it is there already. STORE_NOTFOUND: the group is not the tenant's. */
int store__device_apply_move(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                             const struct store__device_reg *o, int64_t group_id,
                             const struct store_actor *a);
/* Deletes the tenant's registration o of a device (store_device_delete without its audit row);
 * *d gets what went. */
int store__device_drop(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                       const struct store__device_reg *o, struct store_device_dropped *d);
/* The device as the tenant sees it (store.h's device object; *out owned by the caller). */
int store__device_load(store *s, struct conn *c, int64_t tenant_id, const char *device_id,
                       json_t **out);

/* store__finish for a change of the device's registry state: after a commit, marks the change
 * (store__device_changed). */
int store__device_finish(store *s, struct conn *c, int rc, const char *device_id, json_t *obj,
                         json_t **out);

#endif
