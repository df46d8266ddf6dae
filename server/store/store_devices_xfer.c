/* store_devices_xfer: handing a device registration to another tenant with a one-time transfer
 * code (store.h "devices"; migration 0008). Only the SHA-256 of a code is stored; a code is used up
 * by the claim that presents it, or by a newer code of the same holder for the same device. */
#include "store.h"
#include "store_devices_int.h"
#include "store_int.h"

#include "util.h"

#include <sqlite3.h>
#include <string.h>

static const char SQL_XFER_DROP_EXPIRED[] = "DELETE FROM device_transfers WHERE expires_at <= ?1";
/* UNIQUE (tenant_id, device_id): a new code replaces the holder's previous one. */
static const char SQL_XFER_ADD[] =
    "INSERT OR REPLACE INTO device_transfers (code_hash, device_id, tenant_id, created_at, "
    "expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_XFER_TAKE[] =
    "DELETE FROM device_transfers WHERE code_hash = ?1 AND device_id = ?2 AND expires_at > ?3 "
    "RETURNING tenant_id";
static const char SQL_SHADOW_DROP[] =
    "DELETE FROM device_shadows WHERE device_id = ?1 AND tenant_id = ?2";
/* The sender's tags of the device (migration 0014) go with its registration. */
static const char SQL_TAGS_DROP[] =
    "DELETE FROM device_tags WHERE device_id = ?1 AND tenant_id = ?2";
/* The owner's row becomes the receiver's, unclaimed (the claim that follows is audited as any
 * claim) and fresh: nothing of the sender's use of it stays. */
static const char SQL_DEVICE_HAND_OVER[] =
    "UPDATE devices SET registered_by = ?2, tenant_id = NULL, group_id = NULL, blocked = 0, "
    "claimed_at = NULL, attest_at = NULL, attest_result = NULL, attest_reason = NULL "
    "WHERE id = ?1";
static const char SQL_GROUP_OWNED[] =
    "SELECT 1 FROM device_groups WHERE id = ?1 AND tenant_id = ?2";

static int
xfer_hash_ok(const char *h)
{
    return h != NULL && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
}

/* Runs sql with ?1 device, ?2 tenant. */
static int
xfer_exec(store *s, struct conn *c, const char *sql, const char *device_id, int64_t tenant_id,
          const char *what)
{
    sqlite3_stmt *st = store__prep(s, c, sql);
    int rc;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, device_id) | sqlite3_bind_int64(st, 2, tenant_id));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, what);
    sqlite3_reset(st);
    return rc;
}

int
store_device_transfer_create(store *s, int64_t tenant_id, const char *device_id,
                             const char *code_hash, int64_t expires_at, const struct store_actor *a)
{
    struct store__device_reg o;
    struct conn *c = NULL;
    sqlite3_stmt *st;
    int64_t now = util_now();
    int rc = STORE_INVALID;

    if (!store__device_id_ok(device_id) || !xfer_hash_ok(code_hash) || expires_at <= now ||
        !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__device_reg(s, c, tenant_id, device_id, &o)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_XFER_DROP_EXPIRED)) == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, now))) == STORE_OK)
        rc = store__step_done(s, c, st, "transfer purge");
    sqlite3_reset(st);
    if (rc != STORE_OK || (st = store__prep(s, c, SQL_XFER_ADD)) == NULL) {
        rc = rc != STORE_OK ? rc : STORE_ERR;
        goto out;
    }
    rc = store__bound(s, c,
                      store__bind_text(st, 1, code_hash) | store__bind_text(st, 2, device_id) |
                          sqlite3_bind_int64(st, 3, tenant_id) | sqlite3_bind_int64(st, 4, now) |
                          sqlite3_bind_int64(st, 5, expires_at));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "transfer add");
    sqlite3_reset(st);
    if (rc == STORE_OK)
        rc = store__audit(s, c, tenant_id, a, "device.transfer", "device", 0, device_id,
                          json_pack("{s:I}", "expires_at", (json_int_t)expires_at));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

/* Uses up the code: STORE_OK with *from, the tenant that made it, or STORE_NOTFOUND. */
static int
xfer_take(store *s, struct conn *c, const char *device_id, const char *code_hash, int64_t now,
          int64_t *from)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_XFER_TAKE);
    int rc = STORE_ERR;

    if (st == NULL)
        return STORE_ERR;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, code_hash) | store__bind_text(st, 2, device_id) |
                          sqlite3_bind_int64(st, 3, now));
    if (rc == STORE_OK && (rc = store__step_row(s, c, st, "transfer take")) == STORE_OK)
        *from = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc;
}

/* Moves from's registration to the tenant, unclaimed. The owner's devices row is handed over (the
 * receiver's shadow, if any, goes); a shadow is dropped and the receiver gets a registration as an
 * import would give it, so that the receiver cannot tell the two apart either. */
static int
xfer_move(store *s, struct conn *c, int64_t tenant_id, int64_t from, const char *device_id,
          int64_t now)
{
    struct store__device_reg o, mine;
    int rc = store__device_reg(s, c, from, device_id, &o);

    if (rc != STORE_OK ||
        (rc = xfer_exec(s, c, SQL_TAGS_DROP, device_id, from, "tags drop")) != STORE_OK)
        return rc;
    if (!o.shadow) {
        if ((rc = xfer_exec(s, c, SQL_SHADOW_DROP, device_id, tenant_id, "shadow drop")) !=
            STORE_OK)
            return rc;
        return xfer_exec(s, c, SQL_DEVICE_HAND_OVER, device_id, tenant_id, "device hand over");
    }
    if ((rc = xfer_exec(s, c, SQL_SHADOW_DROP, device_id, from, "shadow drop")) != STORE_OK)
        return rc;
    rc = store__device_reg(s, c, tenant_id, device_id, &mine);
    if (rc != STORE_NOTFOUND)
        return rc; /* the receiver's own registration stays, claimed by the caller */
    /* The PEM is the registry's: a shadow is only ever made of a known device. */
    return store__device_register(s, c, device_id, NULL, tenant_id, 0, 0, now);
}

int
store_device_claim_transfer(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                            const char *code_hash, const struct store_actor *a, json_t **out)
{
    struct conn *c = NULL;
    json_t *obj = NULL;
    int64_t from = 0, now = util_now();
    int rc = STORE_INVALID;

    if (out != NULL)
        *out = NULL;
    if (!store__device_id_ok(device_id) || group_id < 0 || !xfer_hash_ok(code_hash) ||
        !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    if (group_id > 0 && (rc = store__owned(s, c, SQL_GROUP_OWNED, group_id, tenant_id)) != STORE_OK)
        goto out;
    if ((rc = xfer_take(s, c, device_id, code_hash, now, &from)) != STORE_OK)
        goto out;
    if (from != tenant_id && (rc = xfer_move(s, c, tenant_id, from, device_id, now)) != STORE_OK)
        goto out;
    if ((rc = store__device_claim_own(s, c, tenant_id, device_id, group_id,
                                      json_pack("{s:b}", "transfer", 1), a)) != STORE_OK)
        goto out;
    rc = store__device_load(s, c, tenant_id, device_id, &obj);
out:
    return store__device_finish(s, c, rc, device_id, obj, out);
}
